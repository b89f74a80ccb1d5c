//! The tenant's provisioning activity: what the identity provider did and
//! what we refused, for the admin ("why did this user not arrive?").
//!
//! One entry per SCIM write, per rejected SCIM request and per sync outcome,
//! in the tenant's `T#<tenant>#ACTIVITY` partition, sort key
//! `<time>#<random>` so a descending query reads newest first. Entries carry
//! `ttl` (epoch seconds) and DynamoDB drops them after [`RETENTION_DAYS`].
//!
//! A successful write's entry is one more item in the write's own
//! transaction ([`Origin`] says who asked and how; the store knows what
//! changed), so it costs no request and exists exactly when the write does.
//! Rejections and sync outcomes are one `PutItem` each
//! ([`ActivityLog::record`]); the HTTP layer rate-limits rejections.
//! Entries never hold a token or a request body: names, ids, the SCIM error.

use std::fmt;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use scim_proto::ids::TenantId;
use scim_proto::provider::Provider;

use crate::StoreError;
use crate::dynamo::{self, Item, Table, get_opt_s, key, n, partition_query, pk, s};
use crate::error::from_sdk;

/// Partition of the tenant's activity entries.
const ACTIVITY: &str = "ACTIVITY";
/// How long entries are kept.
pub const RETENTION_DAYS: i64 = 30;
/// The TTL attribute (the tables' `TimeToLiveSpecification`).
pub const TTL: &str = "ttl";
/// Entries a query looks at, at most, to find `limit` matching ones.
const MAX_SCANNED: usize = 5_000;

/// What the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Replace,
    Patch,
    Delete,
    Read,
    List,
    Search,
    /// A Members sync run.
    Sync,
    /// A member deactivated as its user was disabled or deleted.
    Deprovision,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Replace => "replace",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::Read => "read",
            Self::List => "list",
            Self::Search => "search",
            Self::Sync => "sync",
            Self::Deprovision => "deprovision",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Create,
            Self::Replace,
            Self::Patch,
            Self::Delete,
            Self::Read,
            Self::List,
            Self::Search,
            Self::Sync,
            Self::Deprovision,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Deactivated,
    Reactivated,
    Deleted,
    /// Refused with a SCIM error (see [`Rejection`]).
    Rejected,
    /// A sync run or deprovisioning that completed.
    Finished,
    /// A sync run or deprovisioning that failed.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deactivated => "deactivated",
            Self::Reactivated => "reactivated",
            Self::Deleted => "deleted",
            Self::Rejected => "rejected",
            Self::Finished => "finished",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Created,
            Self::Updated,
            Self::Deactivated,
            Self::Reactivated,
            Self::Deleted,
            Self::Rejected,
            Self::Finished,
            Self::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }

    /// A rejection or a failure: what `--failed` shows.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Rejected | Self::Failed)
    }
}

/// Who wrote, and through which request: what a store needs, besides the
/// resource, to log a write in the write's own transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Who called: the identity provider (from `User-Agent`), or
    /// `None` for our own processes (a load generator, a migration).
    pub provider: Option<Provider>,
    pub operation: Operation,
}

impl Origin {
    pub fn scim(provider: Provider, operation: Operation) -> Self {
        Self {
            provider: Some(provider),
            operation,
        }
    }

    /// A write of our own (tools), logged as `internal`.
    pub fn internal(operation: Operation) -> Self {
        Self {
            provider: None,
            operation,
        }
    }

    /// How the activity log names the caller.
    pub fn source(self) -> &'static str {
        self.provider.map_or("internal", Provider::as_str)
    }
}

/// The SCIM error a rejected request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: String,
}

/// One line of the activity log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEntry {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    /// `entra`, `okta`, ... (see [`Provider`]), `sync` or `internal`.
    pub source: String,
    pub operation: Operation,
    /// `User`, `Group` or `Sync`.
    pub resource_type: String,
    pub id: Option<String>,
    /// userName or displayName.
    pub name: Option<String>,
    pub outcome: Outcome,
    /// More about the outcome (member changes, a sync's counts).
    pub summary: Option<String>,
    pub rejection: Option<Rejection>,
    /// Rejections of the tenant not logged just before this one (rate limit).
    pub suppressed: u64,
}

impl ActivityEntry {
    /// An entry at the current time.
    pub fn now(
        source: impl Into<String>,
        operation: Operation,
        resource_type: impl Into<String>,
        outcome: Outcome,
    ) -> Self {
        Self {
            at: scim_proto::resource::format_time(dynamo::now()),
            source: source.into(),
            operation,
            resource_type: resource_type.into(),
            id: None,
            name: None,
            outcome,
            summary: None,
            rejection: None,
            suppressed: 0,
        }
    }

    /// The entry of a write `origin` asked for, as a store makes it.
    pub(crate) fn of_write(
        origin: Origin,
        resource_type: &str,
        id: &str,
        name: &str,
        outcome: Outcome,
    ) -> Self {
        Self {
            id: Some(id.to_owned()),
            name: Some(name.to_owned()),
            ..Self::now(origin.source(), origin.operation, resource_type, outcome)
        }
    }

    #[must_use]
    pub fn with_summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// The entry as an item of the tenant's activity partition.
    pub(crate) fn to_item(&self, tenant: &TenantId) -> Item {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let mut item = key(
            pk(tenant, ACTIVITY),
            format!("{}#{}", self.at, &suffix[..12]),
        );
        item.insert("at".into(), s(&self.at));
        item.insert("source".into(), s(&self.source));
        item.insert("op".into(), s(self.operation.as_str()));
        item.insert("type".into(), s(&self.resource_type));
        item.insert("outcome".into(), s(self.outcome.as_str()));
        let optional = [
            ("resourceId", self.id.as_deref()),
            ("name", self.name.as_deref()),
            ("summary", self.summary.as_deref()),
            ("detail", self.rejection.as_ref().map(|r| r.detail.as_str())),
            (
                "scimType",
                self.rejection.as_ref().and_then(|r| r.scim_type.as_deref()),
            ),
        ];
        for (name, value) in optional {
            // DynamoDB refuses empty strings in keys only, but an empty
            // value says nothing: leave it out.
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                item.insert(name.into(), s(v));
            }
        }
        if let Some(r) = &self.rejection {
            item.insert("status".into(), n(r.status));
        }
        if self.suppressed > 0 {
            item.insert("suppressed".into(), n(self.suppressed));
        }
        let expires = dynamo::now().unix_timestamp() + RETENTION_DAYS * 24 * 3600;
        item.insert(TTL.into(), n(expires));
        item
    }

    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let text = |name: &str| get_opt_s(item, name).map(str::to_owned);
        let bad = |what: &str| StoreError::Internal(format!("activity entry: bad {what}").into());
        let number = |name: &str| match item.get(name) {
            Some(AttributeValue::N(v)) => v.parse::<u64>().ok(),
            _ => None,
        };
        let outcome = get_opt_s(item, "outcome")
            .and_then(Outcome::parse)
            .ok_or_else(|| bad("outcome"))?;
        Ok(Self {
            at: dynamo::get_s(item, "at")?.to_owned(),
            source: text("source").unwrap_or_default(),
            operation: get_opt_s(item, "op")
                .and_then(Operation::parse)
                .ok_or_else(|| bad("operation"))?,
            resource_type: text("type").unwrap_or_default(),
            id: text("resourceId"),
            name: text("name"),
            outcome,
            summary: text("summary"),
            rejection: (outcome == Outcome::Rejected).then(|| Rejection {
                status: number("status")
                    .and_then(|v| u16::try_from(v).ok())
                    .unwrap_or(400),
                scim_type: text("scimType"),
                detail: text("detail").unwrap_or_default(),
            }),
            suppressed: number("suppressed").unwrap_or(0),
        })
    }
}

/// Which entries to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityQuery {
    /// Only entries about this resource id (a user's, usually).
    pub resource_id: Option<String>,
    /// Only rejections and failures.
    pub failed_only: bool,
    /// At most this many, newest first.
    pub limit: usize,
}

impl Default for ActivityQuery {
    fn default() -> Self {
        Self {
            resource_id: None,
            failed_only: false,
            limit: 50,
        }
    }
}

impl ActivityQuery {
    fn matches(&self, e: &ActivityEntry) -> bool {
        (!self.failed_only || e.outcome.is_failure())
            && self
                .resource_id
                .as_ref()
                .is_none_or(|id| e.id.as_ref() == Some(id))
    }
}

/// The tenant's activity log.
#[async_trait]
pub trait ActivityLog: fmt::Debug + Send + Sync {
    /// Adds `entry` (one `PutItem`).
    async fn record(&self, tenant: &TenantId, entry: &ActivityEntry) -> Result<(), StoreError>;
    /// Entries matching `query`, newest first (reads pages of the tenant's
    /// partition until `limit` match, looking at a bounded number).
    async fn recent(
        &self,
        tenant: &TenantId,
        query: &ActivityQuery,
    ) -> Result<Vec<ActivityEntry>, StoreError>;
}

#[derive(Debug, Clone)]
pub struct DynamoActivityLog {
    table: Table,
}

impl DynamoActivityLog {
    pub fn new(client: impl Into<crate::lazy::DynamoDb>, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

/// Writes `entry` on its own (one `PutItem`) into `table`: a rejection, a
/// run's outcome, or a write whose transaction had no room for it.
pub(crate) async fn put(
    table: &Table,
    tenant: &TenantId,
    entry: &ActivityEntry,
) -> Result<(), StoreError> {
    table
        .client
        .put_item()
        .table_name(&table.name)
        .set_item(Some(entry.to_item(tenant)))
        .send()
        .await
        .map_err(from_sdk)?;
    Ok(())
}

#[async_trait]
impl ActivityLog for DynamoActivityLog {
    async fn record(&self, tenant: &TenantId, entry: &ActivityEntry) -> Result<(), StoreError> {
        put(&self.table, tenant, entry).await
    }

    async fn recent(
        &self,
        tenant: &TenantId,
        query: &ActivityQuery,
    ) -> Result<Vec<ActivityEntry>, StoreError> {
        let limit = query.limit.max(1);
        let mut found = Vec::new();
        let mut scanned = 0;
        let mut start = None;
        loop {
            let page = i32::try_from(limit.clamp(25, 1000)).unwrap_or(1000);
            // Eventually consistent: a log read need not pay for the
            // strong reads the stores' partition queries make.
            let out = partition_query(&self.table.client, &self.table.name, pk(tenant, ACTIVITY))
                .consistent_read(false)
                .scan_index_forward(false)
                .limit(page)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(from_sdk)?;
            for item in out.items() {
                scanned += 1;
                let entry = ActivityEntry::from_item(item)?;
                if query.matches(&entry) {
                    found.push(entry);
                    if found.len() == limit {
                        return Ok(found);
                    }
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() || scanned >= MAX_SCANNED {
                return Ok(found);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[test]
    fn an_entry_reads_back_as_written_without_its_key() {
        let mut entry = ActivityEntry::now("okta", Operation::Create, "User", Outcome::Rejected);
        entry.name = Some("alice@example.com".into());
        entry.rejection = Some(Rejection {
            status: 409,
            scim_type: Some("uniqueness".into()),
            detail: "userName is taken".into(),
        });
        entry.suppressed = 3;
        let item = entry.to_item(&tenant());
        assert_eq!(ActivityEntry::from_item(&item).unwrap(), entry);
        assert!(item.contains_key(TTL));
    }

    #[test]
    fn entries_sort_by_time_in_the_tenants_partition() {
        let a = ActivityEntry::now("entra", Operation::Patch, "User", Outcome::Updated);
        let item = a.to_item(&tenant());
        let sk = dynamo::get_s(&item, crate::tables::SK).unwrap();
        assert!(sk.starts_with(&a.at));
        assert_eq!(
            dynamo::get_s(&item, crate::tables::PK).unwrap(),
            "T#acme#ACTIVITY"
        );
    }

    #[test]
    fn a_query_for_failures_of_one_user_skips_everything_else() {
        let q = ActivityQuery {
            resource_id: Some("u1".into()),
            failed_only: true,
            limit: 10,
        };
        let mut e = ActivityEntry::now("entra", Operation::Patch, "User", Outcome::Rejected);
        e.id = Some("u1".into());
        assert!(q.matches(&e));
        e.outcome = Outcome::Updated;
        assert!(!q.matches(&e));
        e.outcome = Outcome::Rejected;
        e.id = Some("u2".into());
        assert!(!q.matches(&e));
    }
}
