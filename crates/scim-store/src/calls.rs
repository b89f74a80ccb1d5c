//! The tenant's directory at a glance: how many users and groups are
//! provisioned, and when the identity provider last called (and which one).
//!
//! Both live in the tenant's `T#<tenant>#STATS` partition, so one strongly
//! consistent `Query` reads them: the counters item (`STATS`, kept by the
//! resource transactions) and the last call (`CALL`). The last call is its
//! own item so its plain `UpdateItem` never conflicts with a transaction
//! that bumps a counter.

use async_trait::async_trait;
use scim_proto::ids::TenantId;
use scim_proto::provider::Provider;

use crate::StoreError;
use crate::dynamo::{
    self, GROUPS_COUNTER, STATS, Table, USERS_COUNTER, get_opt_s, key, partition_query, pk, s,
};
use crate::error::from_sdk;

const CALL: &str = "CALL";

/// An authenticated request from the identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCall {
    /// RFC 3339, UTC.
    pub at: String,
    pub provider: Provider,
}

/// Counts of provisioned resources and the last call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectorySummary {
    pub users: usize,
    pub groups: usize,
    pub last_call: Option<ProviderCall>,
}

#[async_trait]
pub trait DirectoryStats: std::fmt::Debug + Send + Sync {
    /// Records `call` as the tenant's latest (one `UpdateItem`).
    async fn record_call(&self, tenant: &TenantId, call: &ProviderCall) -> Result<(), StoreError>;

    /// Counts and the last call (one `Query`).
    async fn summary(&self, tenant: &TenantId) -> Result<DirectorySummary, StoreError>;
}

#[derive(Debug, Clone)]
pub struct DynamoDirectoryStats {
    table: Table,
}

impl DynamoDirectoryStats {
    pub fn new(client: impl Into<crate::lazy::DynamoDb>, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

#[async_trait]
impl DirectoryStats for DynamoDirectoryStats {
    async fn record_call(&self, tenant: &TenantId, call: &ProviderCall) -> Result<(), StoreError> {
        self.table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(pk(tenant, STATS), CALL)))
            .update_expression("SET calledAt = :at, provider = :p")
            .expression_attribute_values(":at", s(&call.at))
            .expression_attribute_values(":p", s(call.provider.as_str()))
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(())
    }

    async fn summary(&self, tenant: &TenantId) -> Result<DirectorySummary, StoreError> {
        let out = partition_query(&self.table.client, &self.table.name, pk(tenant, STATS))
            .send()
            .await
            .map_err(from_sdk)?;
        let mut summary = DirectorySummary::default();
        for item in out.items() {
            match get_opt_s(item, crate::tables::SK) {
                Some(STATS) => {
                    summary.users = dynamo::counter_in(item, USERS_COUNTER)?;
                    summary.groups = dynamo::counter_in(item, GROUPS_COUNTER)?;
                }
                Some(CALL) => {
                    summary.last_call = get_opt_s(item, "calledAt").map(|at| ProviderCall {
                        at: at.to_owned(),
                        provider: get_opt_s(item, "provider")
                            .and_then(Provider::from_label)
                            .unwrap_or(Provider::Other),
                    });
                }
                _ => {}
            }
        }
        Ok(summary)
    }
}
