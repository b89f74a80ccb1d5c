//! App events (`member.*`, `sync.*`): the versioned event document, the
//! tenant's *outbox* in the Members table, and the [`EventSink`] that
//! delivers events (EventBridge deployed).
//!
//! Delivery is at least once and loses nothing: an event is written to the
//! outbox in the same `TransactWriteItems` as the change it describes (the
//! member write, the end of a sync run), so a change never exists without
//! its event. A publisher (`scim_domain::Members::publish_events`) reads the
//! outbox in order, sends it with `PutEvents`, and only then moves each
//! accepted event to the tenant's event log, atomically (delete from the
//! outbox + put into the log, one transaction per `PutEvents`). Killed at any
//! point, the next run re-sends what was not confirmed, with the same `id`,
//! so consumers drop duplicates by `id`.
//!
//! # Item layout (Members table, `pk`/`sk`)
//!
//! | item            | pk                  | sk                         | attributes |
//! |-----------------|---------------------|----------------------------|------------|
//! | pending event   | `T#<tenant>#OUTBOX` | `OUTBOX#<time>#<event id>` | `id`, `type`, `detail` (JSON) |
//! | published event | `T#<tenant>#EVENTS` | `<time>#<event id>`        | `id`, `type`, `detail`, `published`, `ttl` (30 days) |
//!
//! Pending events never expire. The `OUTBOX#` sort-key prefix is what the
//! deployed stream's event filter passes to the sync function (inserts of
//! pending events only).

use std::fmt;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;
use scim_proto::ids::TenantId;
use serde::{Deserialize, Serialize};

use crate::dynamo::{self, Item, Table, TxFailure, get_opt_s, get_s, key, n, pk, s};
use crate::error::StoreError;
use crate::members::Member;

/// A member event larger than this (a member with very large properties)
/// is sent without its `member` snapshot, so it always fits a `PutEvents`
/// entry (256 KB); the app reads the member instead.
pub const MAX_DETAIL_BYTES: usize = 128 * 1024;

/// The EventBridge `Source` of every event.
pub const SOURCE: &str = "scimsync";
/// The `schemaVersion` of the event document (a breaking change bumps it).
pub const SCHEMA_VERSION: &str = "1";
/// How long a published event stays readable in the tenant's event log.
pub const KEEP_PUBLISHED_SECS: i64 = 30 * 24 * 3600;

const OUTBOX: &str = "OUTBOX";
const OUTBOX_SK_PREFIX: &str = "OUTBOX#";
const LOG: &str = "EVENTS";

/// The event types (EventBridge `DetailType` and the document's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "member.created")]
    MemberCreated,
    #[serde(rename = "member.updated")]
    MemberUpdated,
    #[serde(rename = "member.deactivated")]
    MemberDeactivated,
    #[serde(rename = "member.reactivated")]
    MemberReactivated,
    #[serde(rename = "sync.finished")]
    SyncFinished,
    #[serde(rename = "sync.failed")]
    SyncFailed,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MemberCreated => "member.created",
            Self::MemberUpdated => "member.updated",
            Self::MemberDeactivated => "member.deactivated",
            Self::MemberReactivated => "member.reactivated",
            Self::SyncFinished => "sync.finished",
            Self::SyncFailed => "sync.failed",
        }
    }
}

/// One event: exactly the EventBridge entry's `Detail` (schema version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppEvent {
    pub schema_version: String,
    /// Deterministic per change: a re-sent event has the same id.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub tenant: String,
    /// RFC 3339, UTC: when the change was made.
    pub time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    /// The SCIM user id of the member's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// `member.updated` (and the others, when they change more): the member
    /// fields (`email`, `displayName`, `status`, `managedBy`, `scimUserId`)
    /// and `properties.<name>` that changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// The member as written (member events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<Member>,
    /// The sync run (sync events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// `sync.finished`: the run's counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<serde_json::Value>,
    /// `sync.failed`: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AppEvent {
    /// A `member.*` event for `member` as written (its `version` makes the
    /// id unique per change).
    pub fn member(
        kind: EventType,
        tenant: &TenantId,
        member: &Member,
        user_id: Option<&str>,
        changed: Vec<String>,
    ) -> Self {
        let mut event = Self {
            schema_version: SCHEMA_VERSION.to_owned(),
            id: format!("{tenant}/{}/{}", member.id, member.version),
            kind,
            tenant: tenant.to_string(),
            time: member.updated.clone(),
            member_id: Some(member.id.clone()),
            user_id: user_id.map(str::to_owned),
            changed,
            member: Some(member.clone()),
            run_id: None,
            counts: None,
            reason: None,
        };
        if event.detail().map_or(true, |d| d.len() > MAX_DETAIL_BYTES) {
            event.member = None;
        }
        event
    }

    /// `sync.finished` of run `run_id` (one per complete run).
    pub fn sync_finished(
        tenant: &TenantId,
        run_id: &str,
        time: &str,
        counts: serde_json::Value,
    ) -> Self {
        Self::sync(
            EventType::SyncFinished,
            tenant,
            format!("{tenant}/sync/{run_id}/finished"),
            run_id,
            time,
        )
        .with(|e| e.counts = Some(counts))
    }

    /// `sync.failed` of one invocation (`invocation`) of run `run_id`.
    pub fn sync_failed(
        tenant: &TenantId,
        run_id: &str,
        invocation: &str,
        time: &str,
        reason: String,
    ) -> Self {
        Self::sync(
            EventType::SyncFailed,
            tenant,
            format!("{tenant}/sync/{run_id}/failed/{invocation}"),
            run_id,
            time,
        )
        .with(|e| e.reason = Some(reason))
    }

    fn sync(kind: EventType, tenant: &TenantId, id: String, run_id: &str, time: &str) -> Self {
        Self {
            schema_version: SCHEMA_VERSION.to_owned(),
            id,
            kind,
            tenant: tenant.to_string(),
            time: time.to_owned(),
            member_id: None,
            user_id: None,
            changed: Vec::new(),
            member: None,
            run_id: Some(run_id.to_owned()),
            counts: None,
            reason: None,
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }

    /// Orders a tenant's events by time, then id.
    pub fn sort_key(&self) -> String {
        format!("{}#{}", self.time, self.id)
    }

    /// The document as sent (`Detail`).
    pub fn detail(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(|e| StoreError::internal("serializing an event", e))
    }
}

/// Where an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventState {
    /// In the outbox: not confirmed by the bus yet.
    Pending,
    /// Accepted by the bus.
    Published,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Published => "published",
        }
    }
}

/// An event of the tenant's log (`scimsync events tail`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub event: AppEvent,
    pub state: EventState,
    /// When the bus accepted it (RFC 3339).
    pub published: Option<String>,
}

/// The outbox item of `event` (written inside the change's transaction).
pub(crate) fn outbox_item(tenant: &TenantId, event: &AppEvent) -> Result<Item, StoreError> {
    let mut item = key(
        pk(tenant, OUTBOX),
        format!("{OUTBOX_SK_PREFIX}{}", event.sort_key()),
    );
    item.insert("id".into(), s(event.id.as_str()));
    item.insert("type".into(), s(event.kind.as_str()));
    item.insert("detail".into(), s(event.detail()?));
    Ok(item)
}

fn from_item(item: &Item) -> Result<AppEvent, StoreError> {
    serde_json::from_str(get_s(item, "detail")?)
        .map_err(|e| StoreError::internal("parsing a stored event", e))
}

/// The tenant's outbox and event log: what the publisher and
/// `events tail` need from storage.
#[async_trait]
pub trait EventOutbox: Send + Sync + fmt::Debug {
    /// Up to `limit` pending events after the cursor `after`, oldest first
    /// (strongly consistent), and the cursor to continue from if there may
    /// be more.
    async fn pending(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<AppEvent>, Option<String>), StoreError>;
    /// Moves `events` (accepted by the bus) from the outbox to the log,
    /// atomically per 50 events; idempotent.
    async fn mark_published(
        &self,
        tenant: &TenantId,
        events: &[AppEvent],
    ) -> Result<(), StoreError>;
    /// The last `limit` events, pending or published, newest first.
    async fn log(&self, tenant: &TenantId, limit: usize) -> Result<Vec<LoggedEvent>, StoreError>;
}

/// The DynamoDB implementation (Members table).
#[derive(Debug, Clone)]
pub struct DynamoEventOutbox {
    table: Table,
}

impl DynamoEventOutbox {
    pub fn new(client: impl Into<crate::lazy::DynamoDb>, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    fn log_item(
        tenant: &TenantId,
        event: &AppEvent,
        now: &str,
        ttl: i64,
    ) -> Result<Item, StoreError> {
        let mut item = key(pk(tenant, LOG), event.sort_key());
        item.insert("id".into(), s(event.id.as_str()));
        item.insert("type".into(), s(event.kind.as_str()));
        item.insert("detail".into(), s(event.detail()?));
        item.insert("published".into(), s(now));
        item.insert("ttl".into(), n(ttl));
        Ok(item)
    }
}

/// Events moved per transaction (two items each, 100 at most).
const MARK_PER_TRANSACTION: usize = dynamo::TX_MAX_ITEMS / 2;

#[async_trait]
impl EventOutbox for DynamoEventOutbox {
    async fn pending(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<AppEvent>, Option<String>), StoreError> {
        let (items, next) = self.table.page(pk(tenant, OUTBOX), after, limit).await?;
        let events = items.iter().map(from_item).collect::<Result<Vec<_>, _>>()?;
        Ok((events, next))
    }

    async fn mark_published(
        &self,
        tenant: &TenantId,
        events: &[AppEvent],
    ) -> Result<(), StoreError> {
        let now = dynamo::now();
        let stamp = scim_proto::resource::format_time(now);
        let ttl = now.unix_timestamp() + KEEP_PUBLISHED_SECS;
        for chunk in events.chunks(MARK_PER_TRANSACTION) {
            let mut items: Vec<TransactWriteItem> = Vec::with_capacity(chunk.len() * 2);
            for e in chunk {
                let outbox_key = key(
                    pk(tenant, OUTBOX),
                    format!("{OUTBOX_SK_PREFIX}{}", e.sort_key()),
                );
                items.push(self.table.delete(outbox_key, None)?);
                items.push(
                    self.table
                        .put(Self::log_item(tenant, e, &stamp, ttl)?, None)?,
                );
            }
            match dynamo::transact(&self.table.client, items).await {
                Ok(()) => {}
                Err(TxFailure::Store(e)) => return Err(e),
                Err(TxFailure::Cancelled(reasons)) => {
                    return Err(StoreError::Internal(
                        format!("marking events published was cancelled: {reasons:?}").into(),
                    ));
                }
            }
        }
        Ok(())
    }

    async fn log(&self, tenant: &TenantId, limit: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        let published = self.table.newest_first(pk(tenant, LOG), limit).await?;
        let pending = self.table.newest_first(pk(tenant, OUTBOX), limit).await?;
        let mut all = Vec::with_capacity(published.len() + pending.len());
        for item in &published {
            all.push(LoggedEvent {
                event: from_item(item)?,
                state: EventState::Published,
                published: get_opt_s(item, "published").map(str::to_owned),
            });
        }
        for item in &pending {
            all.push(LoggedEvent {
                event: from_item(item)?,
                state: EventState::Pending,
                published: None,
            });
        }
        all.sort_by_key(|e| std::cmp::Reverse(e.event.sort_key()));
        all.truncate(limit);
        Ok(all)
    }
}

/// A `PutEvents` that failed as a whole (nothing was accepted).
#[derive(Debug, thiserror::Error)]
#[error("sending events failed: {0}")]
pub struct SinkError(pub String);

/// Where events are delivered.
#[async_trait]
pub trait EventSink: Send + Sync + fmt::Debug {
    /// Sends up to [`MAX_EVENTS_PER_PUT`] events in one request. Per event,
    /// in order: `None` accepted, `Some(why)` rejected (it stays pending).
    async fn put_events(&self, events: &[AppEvent]) -> Result<Vec<Option<String>>, SinkError>;
}

/// EventBridge's limit of entries per `PutEvents`.
pub const MAX_EVENTS_PER_PUT: usize = 10;

/// The deployed sink: `PutEvents` on a bus (`EVENT_BUS_NAME`; the account's
/// default bus when unset).
#[derive(Debug, Clone)]
pub struct EventBridgeSink {
    client: crate::lazy::LazyClient<aws_sdk_eventbridge::Client>,
    bus: Option<String>,
}

impl EventBridgeSink {
    /// `client` may be built already or on first use ([`crate::lazy`]).
    pub fn new(
        client: impl Into<crate::lazy::LazyClient<aws_sdk_eventbridge::Client>>,
        bus: Option<String>,
    ) -> Self {
        Self {
            client: client.into(),
            bus: bus.filter(|b| !b.is_empty()),
        }
    }

    /// The sink of `EVENT_BUS_NAME` (the default bus if unset or empty),
    /// its client built on first use.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(
            crate::lazy::LazyClient::from_sdk(sdk, aws_sdk_eventbridge::Client::new),
            std::env::var("EVENT_BUS_NAME").ok(),
        )
    }
}

#[async_trait]
impl EventSink for EventBridgeSink {
    async fn put_events(&self, events: &[AppEvent]) -> Result<Vec<Option<String>>, SinkError> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let mut entries = Vec::with_capacity(events.len());
        for e in events {
            entries.push(
                PutEventsRequestEntry::builder()
                    .source(SOURCE)
                    .detail_type(e.kind.as_str())
                    .detail(e.detail().map_err(|e| SinkError(e.to_string()))?)
                    .set_event_bus_name(self.bus.clone())
                    .build(),
            );
        }
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                SinkError(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())
            })?;
        let results = out.entries();
        Ok((0..events.len())
            .map(|i| match results.get(i) {
                Some(r) if r.error_code().is_none() && r.event_id().is_some() => None,
                Some(r) => Some(format!(
                    "{}: {}",
                    r.error_code().unwrap_or("Unknown"),
                    r.error_message().unwrap_or("rejected")
                )),
                None => Some("no result for this entry".to_owned()),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::members::{ManagedBy, MemberStatus};

    fn member() -> Member {
        Member {
            id: "m-u1".into(),
            email: "a@b.c".into(),
            display_name: "A".into(),
            status: MemberStatus::Active,
            properties: BTreeMap::new(),
            scim_user_id: Some("u1".into()),
            managed_by: ManagedBy::Provisioning,
            created: "2026-01-01T00:00:00.000Z".into(),
            updated: "2026-01-02T00:00:00.000Z".into(),
            version: 3,
            pending_manager: None,
        }
    }

    #[test]
    fn a_member_event_has_the_documented_shape_and_a_deterministic_id() {
        let t = TenantId::parse("acme").unwrap();
        let e = AppEvent::member(
            EventType::MemberUpdated,
            &t,
            &member(),
            Some("u1"),
            vec!["properties.jobTitle".into()],
        );
        let v: serde_json::Value = serde_json::from_str(&e.detail().unwrap()).unwrap();
        assert_eq!(v["schemaVersion"], "1");
        assert_eq!(v["type"], "member.updated");
        assert_eq!(v["id"], "acme/m-u1/3");
        assert_eq!(v["tenant"], "acme");
        assert_eq!(v["memberId"], "m-u1");
        assert_eq!(v["userId"], "u1");
        assert_eq!(v["time"], "2026-01-02T00:00:00.000Z");
        assert_eq!(v["changed"][0], "properties.jobTitle");
        assert_eq!(v["member"]["email"], "a@b.c");
        assert!(v.get("runId").is_none());
        let again = AppEvent::member(EventType::MemberUpdated, &t, &member(), Some("u1"), vec![]);
        assert_eq!(again.id, e.id);
        let back: AppEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn a_member_too_large_for_an_event_is_left_out_of_it() {
        let t = TenantId::parse("acme").unwrap();
        let mut m = member();
        m.properties.insert(
            "notes".into(),
            serde_json::json!("x".repeat(MAX_DETAIL_BYTES)),
        );
        let e = AppEvent::member(EventType::MemberUpdated, &t, &m, Some("u1"), vec![]);
        assert_eq!(e.member, None);
        assert_eq!(e.member_id.as_deref(), Some("m-u1"));
        assert!(e.detail().unwrap().len() < MAX_DETAIL_BYTES);
    }

    #[test]
    fn sync_events_are_identified_by_their_run() {
        let t = TenantId::parse("acme").unwrap();
        let f = AppEvent::sync_finished(
            &t,
            "r1",
            "2026-01-01T00:00:00.000Z",
            serde_json::json!({"created": 1}),
        );
        assert_eq!(f.id, "acme/sync/r1/finished");
        assert_eq!(f.kind.as_str(), "sync.finished");
        let x = AppEvent::sync_failed(&t, "r1", "i1", "2026-01-01T00:00:00.000Z", "boom".into());
        assert_eq!(x.id, "acme/sync/r1/failed/i1");
        assert_eq!(x.reason.as_deref(), Some("boom"));
    }

    #[test]
    fn the_outbox_item_key_is_what_the_stream_filter_passes() {
        let t = TenantId::parse("acme").unwrap();
        let e =
            AppEvent::sync_finished(&t, "r1", "2026-01-01T00:00:00.000Z", serde_json::json!({}));
        let item = outbox_item(&t, &e).unwrap();
        assert_eq!(get_s(&item, "pk").unwrap(), "T#acme#OUTBOX");
        assert!(
            get_s(&item, "sk")
                .unwrap()
                .starts_with("OUTBOX#2026-01-01T00:00:00.000Z#")
        );
    }
}
