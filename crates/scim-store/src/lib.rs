//! Storage for scimsync: the SCIM directory in DynamoDB and the tenants' API
//! tokens in Secrets Manager, each behind a small trait so that the HTTP layer
//! and the sync engine depend on capabilities, not on AWS.
//!
//! Layout (one line per module: what it owns, and why it changes):
//! - [`config`]: table and secret names from the environment; AWS clients.
//!   Changes with the deployment's configuration.
//! - [`tables`]: the DynamoDB table definitions (mirrored by
//!   `infra/template.yaml`). Changes with the key schema.
//! - [`error`]: the `StoreError` callers branch on, whose causes keep their
//!   source error. Changes with how failures are classified.
//! - [`users`]: [`users::UserStore`] and its DynamoDB implementation: what
//!   only users have (email index, dirty set for the Members sync, the
//!   membership head a delete is guarded by).
//! - [`groups`]: [`groups::GroupStore`]: groups and one item per membership;
//!   `groups::store` (the group's own writes) and `groups::batches`
//!   (membership writes in transactions of at most 100 items).
//! - [`members`]: [`members::MemberStore`]: the application's Members and
//!   their links to SCIM users (Members table); `members::store` is the
//!   DynamoDB encoding and the member transaction.
//! - [`sync_state`]: [`sync_state::SyncStateStore`]: per-tenant mapping,
//!   policy, lease, checkpoint and reports of the Members sync; the tenant
//!   registry (Members table).
//! - [`events`]: app events: the event document, the tenant's outbox
//!   (written in the changes' own transactions) and event log, and the
//!   [`events::EventSink`] (EventBridge).
//! - [`portal`]: the User Provisioning page's one-time links and the key
//!   that signs its sessions.
//! - [`tokens`]: token format, secret document and [`tokens::TokenStore`];
//!   `tokens::secrets` (Secrets Manager reads and compare-and-swap writes)
//!   and `tokens::cache` (per-instance digest cache, unseen-tenant budget).
//! - [`calls`]: [`calls::DirectoryStats`]: the tenant's resource counts and
//!   the identity provider's last call. Changes with what the page shows of
//!   the connection.
//! - [`activity`]: [`activity::ActivityLog`]: the tenant's provisioning
//!   activity (writes, rejections, sync outcomes), 30 days. Changes with what
//!   the admin sees of the identity provider's traffic.
//! - [`metrics`]: counting AWS requests (benchmarks, cost tests).
//! - [`deletion`]: what a DELETE works on; deletes larger than one
//!   transaction.
//! - `resources` (private): the one implementation of what users and groups
//!   share (resource item, reads, lookups by claim, create/replace/delete
//!   transactions, the lost-race answer), generic over the resource kind.
//!   Changes with the resource item or its concurrency rules.
//! - `claims` (private): uniqueness claims and the transactions that take
//!   and release them. Changes with the uniqueness rules.
//! - `dynamo` (private): DynamoDB helpers: item attributes and keys; `tx`
//!   (retrying transactions, batches, queries), `table` (the `Table`
//!   reads), `writes` (conditional transaction items), `membership`
//!   (membership items, head and marks).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod activity;
pub mod calls;
mod claims;
pub mod config;
pub mod deletion;
mod dynamo;
pub mod error;
pub mod events;
pub mod groups;
pub mod lazy;
pub mod members;
pub mod metrics;
pub mod portal;
mod resources;
pub mod sync_state;
pub mod tables;
pub mod tokens;
pub mod users;

pub use error::StoreError;

use std::sync::Arc;

/// The real stores, built once per process from one AWS configuration
/// (clients are cheap to clone and reuse connections across invocations).
#[derive(Debug, Clone)]
pub struct Stores {
    pub users: Arc<users::DynamoUserStore>,
    pub groups: Arc<groups::DynamoGroupStore>,
    pub tokens: Arc<tokens::SecretsManagerTokenStore>,
    /// Counts and the identity provider's last call (directory table).
    pub stats: Arc<calls::DynamoDirectoryStats>,
    /// The tenants' activity logs (directory table).
    pub activity: Arc<activity::DynamoActivityLog>,
    /// Members and sync state: present when `StoreConfig::members_table` is.
    pub members: Option<Arc<members::DynamoMemberStore>>,
    pub sync_state: Option<Arc<sync_state::DynamoSyncState>>,
    /// The User Provisioning page's one-time links (Members table).
    pub portal_links: Option<Arc<portal::DynamoPortalLinks>>,
    /// Where app events are published (`None`: they wait in the outbox).
    pub event_sink: Option<Arc<dyn events::EventSink>>,
}

impl Stores {
    /// The stores of a deployment; their SDK clients are built on first
    /// use ([`lazy`]).
    pub fn new(sdk: &aws_config::SdkConfig, config: &config::StoreConfig) -> Self {
        Self::from_clients(
            lazy::LazyClient::from_sdk(sdk, aws_sdk_dynamodb::Client::new),
            lazy::LazyClient::from_sdk(sdk, aws_sdk_secretsmanager::Client::new),
            config,
        )
    }

    /// Like [`Stores::new`], counting every DynamoDB request in `counter`.
    pub fn counted(
        sdk: &aws_config::SdkConfig,
        config: &config::StoreConfig,
        counter: metrics::RequestCounter,
    ) -> Self {
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(counter)
            .build();
        Self::from_clients(
            aws_sdk_dynamodb::Client::from_conf(dynamodb),
            aws_sdk_secretsmanager::Client::new(sdk),
            config,
        )
    }

    /// Publishes app events to `sink` (see [`events`]).
    #[must_use]
    pub fn with_event_sink(mut self, sink: Arc<dyn events::EventSink>) -> Self {
        self.event_sink = Some(sink);
        self
    }

    /// The Members and sync-state stores, which exist only when the
    /// configuration names a Members table (`MEMBERS_TABLE`).
    #[allow(clippy::type_complexity)]
    pub fn sync_stores(
        &self,
    ) -> Result<
        (
            Arc<dyn members::MemberStore>,
            Arc<dyn sync_state::SyncStateStore>,
        ),
        config::MissingEnv,
    > {
        match (&self.members, &self.sync_state) {
            (Some(m), Some(s)) => Ok((m.clone(), s.clone())),
            _ => Err(config::MissingEnv("MEMBERS_TABLE")),
        }
    }

    pub fn from_clients(
        dynamodb: impl Into<lazy::DynamoDb>,
        secrets: impl Into<lazy::SecretsManager>,
        config: &config::StoreConfig,
    ) -> Self {
        let (dynamodb, secrets) = (dynamodb.into(), secrets.into());
        Self {
            users: Arc::new(users::DynamoUserStore::new(
                dynamodb.clone(),
                &config.directory_table,
            )),
            groups: Arc::new(groups::DynamoGroupStore::new(
                dynamodb.clone(),
                &config.directory_table,
            )),
            stats: Arc::new(calls::DynamoDirectoryStats::new(
                dynamodb.clone(),
                &config.directory_table,
            )),
            activity: Arc::new(activity::DynamoActivityLog::new(
                dynamodb.clone(),
                &config.directory_table,
            )),
            members: config
                .members_table
                .as_ref()
                .map(|t| Arc::new(members::DynamoMemberStore::new(dynamodb.clone(), t))),
            sync_state: config
                .members_table
                .as_ref()
                .map(|t| Arc::new(sync_state::DynamoSyncState::new(dynamodb.clone(), t))),
            portal_links: config
                .members_table
                .as_ref()
                .map(|t| Arc::new(portal::DynamoPortalLinks::new(dynamodb.clone(), t))),
            tokens: Arc::new(tokens::SecretsManagerTokenStore::new(
                secrets,
                &config.token_secret_prefix,
            )),
            event_sink: None,
        }
    }
}
