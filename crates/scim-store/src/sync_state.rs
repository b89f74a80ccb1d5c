//! The Members sync's per-tenant state and the tenant registry: the
//! [`SyncStateStore`] capability and its DynamoDB implementation (Members
//! table). The sync engine (crate `member-sync`) gives the contents meaning;
//! this module stores them: mapping entries, checkpoints and reports are
//! opaque JSON here, so the store does not depend on the engine's types.
//!
//! # Item layout (Members table, `pk`/`sk`)
//!
//! | item     | pk                  | sk                               | attributes |
//! |----------|---------------------|----------------------------------|------------|
//! | tenant   | `TENANTS`           | `<tenant>`                       | `registered` |
//! | settings | `T#<tenant>#SYNC`   | `CONFIG`                         | `mapping` (JSON; absent = defaults), `mappingVersion`, `linkByEmail` |
//! | state    | `T#<tenant>#SYNC`   | `STATE`                          | `appliedMappingVersion`, `run` (checkpoint JSON), `leaseOwner`, `leaseExpires` (epoch ms), `lastSuccess`, `lastRun` |
//! | report   | `T#<tenant>#RUN`    | `<finished>#<run id>#<invocation>` | `report` (JSON) |
//!
//! A run's end also writes its app event (`sync.finished`, `sync.failed`)
//! to the tenant's outbox ([`crate::events`]) in the same transaction.
//!
//! `mappingVersion` only grows (a reset is a new version), so "the mapping
//! changed since the last full sync" is `appliedMappingVersion !=
//! mappingVersion`. The lease lives on the state item: taking it is a
//! conditional update (free, expired, or ours), and every checkpoint renews
//! it under the same condition, so a sync that lost its lease cannot
//! overwrite the next one's checkpoint.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem};
use scim_proto::ids::TenantId;

use crate::dynamo::{self, Item, Table, TxFailure, conditional, get_opt_s, get_s, key, n, pk, s};
use crate::error::{StoreError, from_sdk};

const TENANTS: &str = "TENANTS";
const SYNC: &str = "SYNC";
const CONFIG: &str = "CONFIG";
const STATE: &str = "STATE";
const RUN: &str = "RUN";

/// A tenant's attribute mapping as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMapping {
    /// The entries (JSON array); `None` when never set or reset: the
    /// engine's defaults apply.
    pub entries: Option<serde_json::Value>,
    /// 0 when never set; incremented by every set and reset.
    pub version: u64,
}

/// Everything a sync reads before it starts (one item).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSettings {
    pub mapping: StoredMapping,
    /// Link a new provisioned user to an existing app member with the same
    /// email (off by default).
    pub link_by_email: bool,
    /// When a disabled or deleted user's member is deactivated.
    pub deprovision: DeprovisionPolicy,
}

/// When the member of a user disabled or deleted in the identity provider
/// is deactivated: a tenant policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeprovisionPolicy {
    /// At once, driven by the user's write (seconds); creates and property
    /// updates still wait for the next sync. The default: someone who left
    /// must not keep access until tomorrow.
    #[default]
    Immediate,
    /// With the next sync (daily or "Synchronize"), like every other change.
    WithSync,
}

impl DeprovisionPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Immediate => "immediate",
            Self::WithSync => "with-sync",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "immediate" => Some(Self::Immediate),
            "with-sync" => Some(Self::WithSync),
            _ => None,
        }
    }
}

/// A tenant's sync state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncState {
    /// The mapping version the last complete full sync applied.
    pub applied_mapping_version: Option<u64>,
    /// The checkpoint of an unfinished run.
    pub run: Option<serde_json::Value>,
    pub lease_owner: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub lease_expires_ms: Option<u64>,
    /// When the last complete run finished (RFC 3339).
    pub last_success: Option<String>,
    /// When the last run (complete or not) finished.
    pub last_run: Option<String>,
}

/// How an invocation of a sync ends.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// `Some`: the run is not complete; the next sync resumes from this.
    pub checkpoint: Option<serde_json::Value>,
    /// Set when a complete full sync applied this mapping version.
    pub applied_mapping_version: Option<u64>,
    /// RFC 3339.
    pub finished: String,
    pub report: StoredReport,
}

/// A report and its sort key in the tenant's history.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    /// Sorts chronologically: starts with the finish time.
    pub key: String,
    pub report: serde_json::Value,
    /// The app event (`sync.finished`, `sync.failed`) written to the
    /// tenant's outbox in the same transaction as the report.
    pub event: Option<crate::events::AppEvent>,
}

#[async_trait]
pub trait SyncStateStore: Send + Sync + fmt::Debug {
    /// Records a tenant with provisioning active (idempotent).
    async fn register_tenant(&self, tenant: &TenantId) -> Result<(), StoreError>;
    /// Every registered tenant, in id order.
    async fn tenants(&self) -> Result<Vec<TenantId>, StoreError>;
    /// Mapping and policy (one item read).
    async fn settings(&self, tenant: &TenantId) -> Result<SyncSettings, StoreError>;
    async fn mapping(&self, tenant: &TenantId) -> Result<StoredMapping, StoreError>;
    /// Replaces the mapping (the caller validated it); returns the new version.
    async fn set_mapping(
        &self,
        tenant: &TenantId,
        entries: serde_json::Value,
    ) -> Result<StoredMapping, StoreError>;
    /// Back to the defaults (a new version).
    async fn reset_mapping(&self, tenant: &TenantId) -> Result<StoredMapping, StoreError>;
    async fn link_by_email(&self, tenant: &TenantId) -> Result<bool, StoreError>;
    async fn set_link_by_email(&self, tenant: &TenantId, on: bool) -> Result<(), StoreError>;
    async fn set_deprovision_policy(
        &self,
        tenant: &TenantId,
        policy: DeprovisionPolicy,
    ) -> Result<(), StoreError>;
    /// The state as it is (no lease taken).
    async fn state(&self, tenant: &TenantId) -> Result<SyncState, StoreError>;
    /// Takes the tenant's sync lease for `ttl` if it is free, expired or
    /// already `owner`'s, returning the state; `None` if another holds it.
    async fn acquire_lease(
        &self,
        tenant: &TenantId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<SyncState>, StoreError>;
    /// Saves a checkpoint and renews the lease; `false` if `owner` no
    /// longer holds the lease (nothing is written then).
    async fn checkpoint(
        &self,
        tenant: &TenantId,
        owner: &str,
        run: &serde_json::Value,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    /// Ends an invocation: stores the report, saves or clears the
    /// checkpoint and releases the lease, atomically. `false` if `owner` no
    /// longer held the lease (the report is stored anyway, the state is not
    /// touched).
    async fn finish(
        &self,
        tenant: &TenantId,
        owner: &str,
        end: &RunEnd,
    ) -> Result<bool, StoreError>;
    /// Releases the lease if `owner` holds it (after a failure).
    async fn release_lease(&self, tenant: &TenantId, owner: &str) -> Result<(), StoreError>;
    /// Stores a report on its own (a failed invocation's).
    async fn put_report(&self, tenant: &TenantId, report: &StoredReport) -> Result<(), StoreError>;
    /// Stored reports, newest first.
    async fn history(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, StoreError>;
}

/// The DynamoDB implementation.
#[derive(Debug, Clone)]
pub struct DynamoSyncState {
    table: Table,
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl DynamoSyncState {
    pub fn new(client: impl Into<crate::lazy::DynamoDb>, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    fn config_key(tenant: &TenantId) -> Item {
        key(pk(tenant, SYNC), CONFIG)
    }

    fn state_key(tenant: &TenantId) -> Item {
        key(pk(tenant, SYNC), STATE)
    }

    /// An `UpdateItem` of the state item that succeeds only while `owner`
    /// holds the lease (the caller adds the update expression).
    fn lease_update(
        &self,
        tenant: &TenantId,
        owner: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(Self::state_key(tenant)))
            .condition_expression("leaseOwner = :o")
            .expression_attribute_values(":o", s(owner))
    }

    fn settings_from(item: Option<&Item>) -> Result<SyncSettings, StoreError> {
        let Some(item) = item else {
            return Ok(SyncSettings {
                mapping: StoredMapping {
                    entries: None,
                    version: 0,
                },
                link_by_email: false,
                deprovision: DeprovisionPolicy::default(),
            });
        };
        let entries = get_opt_s(item, "mapping")
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| StoreError::internal("parsing the stored mapping", e))?;
        let version = if item.contains_key("mappingVersion") {
            dynamo::get_u64(item, "mappingVersion")?
        } else {
            0
        };
        Ok(SyncSettings {
            mapping: StoredMapping { entries, version },
            link_by_email: matches!(item.get("linkByEmail"), Some(AttributeValue::Bool(true))),
            deprovision: get_opt_s(item, "deprovision")
                .and_then(DeprovisionPolicy::parse)
                .unwrap_or_default(),
        })
    }

    fn state_from(item: Option<&Item>) -> Result<SyncState, StoreError> {
        let Some(item) = item else {
            return Ok(SyncState::default());
        };
        let opt_u64 = |name: &str| {
            item.contains_key(name)
                .then(|| dynamo::get_u64(item, name))
                .transpose()
        };
        Ok(SyncState {
            applied_mapping_version: opt_u64("appliedMappingVersion")?,
            run: get_opt_s(item, "run")
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| StoreError::internal("parsing the stored run", e))?,
            lease_owner: get_opt_s(item, "leaseOwner").map(str::to_owned),
            lease_expires_ms: opt_u64("leaseExpires")?,
            last_success: get_opt_s(item, "lastSuccess").map(str::to_owned),
            last_run: get_opt_s(item, "lastRun").map(str::to_owned),
        })
    }

    async fn update_config(
        &self,
        tenant: &TenantId,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Item, StoreError> {
        let mut req = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(Self::config_key(tenant)))
            .update_expression(expression)
            .return_values(ReturnValue::AllNew);
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        let out = req.send().await.map_err(from_sdk)?;
        Ok(out.attributes.unwrap_or_default())
    }

    fn report_item(tenant: &TenantId, report: &StoredReport) -> Result<Item, StoreError> {
        let mut item = key(pk(tenant, RUN), report.key.as_str());
        let json = serde_json::to_string(&report.report)
            .map_err(|e| StoreError::internal("serializing an item", e))?;
        item.insert("report".into(), s(json));
        Ok(item)
    }
}

#[async_trait]
impl SyncStateStore for DynamoSyncState {
    async fn register_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        let now = scim_proto::resource::format_time(dynamo::now());
        let mut item = key(TENANTS.to_owned(), tenant.as_str());
        item.insert("registered".into(), s(now));
        // Keeps the first registration time on re-activation.
        let result = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional(result)?;
        Ok(())
    }

    async fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let t = &self.table;
        let sks = dynamo::query_sort_keys(&t.client, &t.name, TENANTS.to_owned(), None).await?;
        sks.iter()
            .map(|sk| {
                TenantId::parse(sk)
                    .map_err(|e| StoreError::internal("parsing a registered tenant", e))
            })
            .collect()
    }

    async fn settings(&self, tenant: &TenantId) -> Result<SyncSettings, StoreError> {
        let item = self.table.get(Self::config_key(tenant)).await?;
        Self::settings_from(item.as_ref())
    }

    async fn mapping(&self, tenant: &TenantId) -> Result<StoredMapping, StoreError> {
        Ok(self.settings(tenant).await?.mapping)
    }

    async fn set_mapping(
        &self,
        tenant: &TenantId,
        entries: serde_json::Value,
    ) -> Result<StoredMapping, StoreError> {
        let json = serde_json::to_string(&entries)
            .map_err(|e| StoreError::internal("serializing an item", e))?;
        let item = self
            .update_config(
                tenant,
                "SET mapping = :m ADD mappingVersion :one",
                vec![(":m", s(json)), (":one", n(1))],
            )
            .await?;
        Ok(Self::settings_from(Some(&item))?.mapping)
    }

    async fn reset_mapping(&self, tenant: &TenantId) -> Result<StoredMapping, StoreError> {
        let item = self
            .update_config(
                tenant,
                "REMOVE mapping ADD mappingVersion :one",
                vec![(":one", n(1))],
            )
            .await?;
        Ok(Self::settings_from(Some(&item))?.mapping)
    }

    async fn link_by_email(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        Ok(self.settings(tenant).await?.link_by_email)
    }

    async fn set_link_by_email(&self, tenant: &TenantId, on: bool) -> Result<(), StoreError> {
        self.update_config(
            tenant,
            "SET linkByEmail = :on",
            vec![(":on", AttributeValue::Bool(on))],
        )
        .await?;
        Ok(())
    }

    async fn set_deprovision_policy(
        &self,
        tenant: &TenantId,
        policy: DeprovisionPolicy,
    ) -> Result<(), StoreError> {
        self.update_config(
            tenant,
            "SET deprovision = :p",
            vec![(":p", s(policy.as_str()))],
        )
        .await?;
        Ok(())
    }

    async fn state(&self, tenant: &TenantId) -> Result<SyncState, StoreError> {
        let item = self.table.get(Self::state_key(tenant)).await?;
        Self::state_from(item.as_ref())
    }

    async fn acquire_lease(
        &self,
        tenant: &TenantId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<SyncState>, StoreError> {
        let now = SystemTime::now();
        let result = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(Self::state_key(tenant)))
            .update_expression("SET leaseOwner = :o, leaseExpires = :e")
            .condition_expression(
                "attribute_not_exists(leaseOwner) OR leaseExpires < :now OR leaseOwner = :o",
            )
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":e", n(epoch_ms(now + ttl)))
            .expression_attribute_values(":now", n(epoch_ms(now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        conditional(result)?
            .map(|out| Self::state_from(out.attributes.as_ref()))
            .transpose()
    }

    async fn checkpoint(
        &self,
        tenant: &TenantId,
        owner: &str,
        run: &serde_json::Value,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(run)
            .map_err(|e| StoreError::internal("serializing an item", e))?;
        let result = self
            .lease_update(tenant, owner)
            .update_expression("SET run = :r, leaseExpires = :e")
            .expression_attribute_values(":r", s(json))
            .expression_attribute_values(":e", n(epoch_ms(SystemTime::now() + ttl)))
            .send()
            .await;
        Ok(conditional(result)?.is_some())
    }

    async fn finish(
        &self,
        tenant: &TenantId,
        owner: &str,
        end: &RunEnd,
    ) -> Result<bool, StoreError> {
        let mut update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table.name)
            .set_key(Some(Self::state_key(tenant)))
            .condition_expression("leaseOwner = :o")
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":f", s(end.finished.as_str()));
        update = match &end.checkpoint {
            Some(run) => {
                let json = serde_json::to_string(run)
                    .map_err(|e| StoreError::internal("serializing an item", e))?;
                update
                    .update_expression("SET run = :r, lastRun = :f REMOVE leaseOwner, leaseExpires")
                    .expression_attribute_values(":r", s(json))
            }
            None => match end.applied_mapping_version {
                Some(v) => update
                    .update_expression(
                        "SET lastRun = :f, lastSuccess = :f, appliedMappingVersion = :v \
                         REMOVE run, leaseOwner, leaseExpires",
                    )
                    .expression_attribute_values(":v", n(v)),
                None => update.update_expression(
                    "SET lastRun = :f, lastSuccess = :f REMOVE run, leaseOwner, leaseExpires",
                ),
            },
        };
        let mut items = vec![
            TransactWriteItem::builder()
                .update(update.build().map_err(dynamo::build_failed)?)
                .build(),
            self.table
                .put(Self::report_item(tenant, &end.report)?, None)?,
        ];
        if let Some(event) = &end.report.event {
            items.push(
                self.table
                    .put(crate::events::outbox_item(tenant, event)?, None)?,
            );
        }
        match dynamo::transact(&self.table.client, items).await {
            Ok(()) => Ok(true),
            Err(TxFailure::Cancelled(reasons)) if TxFailure::condition_failed(&reasons, 0) => {
                // The lease was lost: the report is kept, but the run did
                // not end here, so it announces nothing.
                let report = StoredReport {
                    event: None,
                    ..end.report.clone()
                };
                self.put_report(tenant, &report).await?;
                Ok(false)
            }
            Err(TxFailure::Cancelled(reasons)) => Err(StoreError::Internal(
                format!("finishing the sync failed: {reasons:?}").into(),
            )),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    async fn release_lease(&self, tenant: &TenantId, owner: &str) -> Result<(), StoreError> {
        let result = self
            .lease_update(tenant, owner)
            .update_expression("REMOVE leaseOwner, leaseExpires")
            .send()
            .await;
        conditional(result)?;
        Ok(())
    }

    async fn put_report(&self, tenant: &TenantId, report: &StoredReport) -> Result<(), StoreError> {
        if let Some(event) = &report.event {
            // The report and its event, one request.
            let items = vec![
                self.table.put(Self::report_item(tenant, report)?, None)?,
                self.table
                    .put(crate::events::outbox_item(tenant, event)?, None)?,
            ];
            return match dynamo::transact(&self.table.client, items).await {
                Ok(()) => Ok(()),
                Err(TxFailure::Store(e)) => Err(e),
                Err(TxFailure::Cancelled(reasons)) => Err(StoreError::Internal(
                    format!("storing the report failed: {reasons:?}").into(),
                )),
            };
        }
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(Self::report_item(tenant, report)?))
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(())
    }

    async fn history(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        self.table
            .newest_first(pk(tenant, RUN), limit)
            .await?
            .iter()
            .map(|item| {
                serde_json::from_str(get_s(item, "report")?)
                    .map_err(|e| StoreError::internal("parsing a stored document", e))
            })
            .collect()
    }
}
