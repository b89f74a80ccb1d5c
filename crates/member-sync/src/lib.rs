//! The Members sync: turns a tenant's provisioned SCIM users into the
//! application's Members, following the tenant's attribute mapping. Used by
//! the `sync` Lambda (daily schedule and on-demand) and by the CLI.
//!
//! - [`SyncEngine::sync`] with `dry_run` is the preview: what would be
//!   created, updated (per property, before/after), deactivated, reactivated,
//!   linked, left alone; it writes nothing at all.
//! - Without `dry_run` it applies exactly that, in batches, each user's
//!   member in one transaction, under a per-tenant lease, with a checkpoint
//!   after every batch: a run stopped by its deadline (or crashed) is resumed
//!   by the next sync and ends in the same state as an uninterrupted one.
//! - Incremental by default: only users in the directory's dirty set (every
//!   SCIM user write marks its user) are read. A full reconciliation reads
//!   every user and every link; it runs when asked (`full`), on the first
//!   sync of a tenant, and whenever the mapping changed since the last
//!   complete full sync.
//!
//! See `engine.rs` for the run, `plan.rs` for what one user means for its
//! member, [`mapping`] for the attribute mapping.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod engine;
pub mod mapping;
mod plan;

use std::collections::BTreeMap;

use scim_proto::ids::TenantId;
use scim_store::StoreError;
use scim_store::members::LinkKind;
use scim_store::sync_state::{StoredMapping, SyncStateStore};
use serde::{Deserialize, Serialize};

pub use engine::SyncEngine;
use mapping::{MappingEntry, default_mapping};

/// How to run a sync.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Preview only: compute the report, write nothing.
    pub dry_run: bool,
    /// Full reconciliation even if the mapping did not change.
    pub full: bool,
    /// Stop (checkpointing) once this instant has passed; the next sync
    /// resumes. At least one batch runs per invocation.
    pub deadline: Option<tokio::time::Instant>,
}

/// What a sync did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub run_id: String,
    pub tenant: String,
    /// When the run started (a resumed run keeps its first start).
    pub started: String,
    pub finished: String,
    pub dry_run: bool,
    pub full: bool,
    /// False when the deadline stopped the run (the next sync resumes it)
    /// or it failed.
    pub complete: bool,
    /// Per user, over the whole run (a resumed run's counts include the
    /// earlier invocations').
    pub counts: SyncCounts,
    /// Every member change (dry run); at most [`MAX_CHANGES`] of this
    /// invocation's changes otherwise, `truncated` telling.
    pub changes: Vec<MemberChangePreview>,
    pub truncated: bool,
    /// Users that could not be synced (at most [`MAX_ERRORS`] listed; all
    /// counted in `counts.failed`). They stay in the dirty set and are
    /// retried by the next sync.
    pub errors: Vec<SyncIssue>,
}

/// Most changes listed in the report of a real run.
pub const MAX_CHANGES: usize = 1000;
/// Most errors listed in a report.
pub const MAX_ERRORS: usize = 200;

/// One outcome per user considered: `created + updated + deactivated +
/// reactivated + unchanged + linked + failed` users were looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCounts {
    pub created: u64,
    pub updated: u64,
    pub deactivated: u64,
    pub reactivated: u64,
    /// Left alone: nothing to change (including inactive users without a
    /// member).
    pub unchanged: u64,
    /// Linked to an existing member: an app member with the same email
    /// (tenant policy) or the deactivated member of a deleted user with the
    /// same email (a returning user).
    pub linked: u64,
    pub failed: u64,
}

/// One member change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberChangePreview {
    pub action: ChangeAction,
    pub member_id: String,
    pub scim_user_id: String,
    /// The member's email and name after the change.
    pub email: String,
    pub display_name: String,
    /// For `link`: how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkKind>,
    /// Member fields that change: `email`, `displayName`, `status`,
    /// `managedBy`, `scimUserId`.
    pub fields: BTreeMap<String, ValueChange>,
    /// Properties that change (`null` = absent).
    pub properties: BTreeMap<String, ValueChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    Create,
    Update,
    Deactivate,
    Reactivate,
    Link,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueChange {
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// A user that could not be synced, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncIssue {
    pub scim_user_id: Option<String>,
    pub member_id: Option<String>,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("another sync of tenant {0} is running")]
    LeaseHeld(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid mapping: {0}")]
    Mapping(String),
}

/// The entries of a stored mapping (the defaults when none is set).
pub fn mapping_entries(stored: &StoredMapping) -> Result<Vec<MappingEntry>, SyncError> {
    match &stored.entries {
        None => Ok(default_mapping()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| SyncError::Mapping(format!("the stored mapping is unreadable: {e}"))),
    }
}

/// Validates `entries` and, only if they are all valid, replaces the
/// tenant's mapping (the next sync is then a full reconciliation).
pub async fn set_mapping(
    state: &dyn SyncStateStore,
    tenant: &TenantId,
    entries: Vec<MappingEntry>,
) -> Result<(), SyncError> {
    mapping::validate(&entries).map_err(|e| SyncError::Mapping(e.to_string()))?;
    let json = serde_json::to_value(&entries).map_err(|e| SyncError::Mapping(e.to_string()))?;
    state.set_mapping(tenant, json).await?;
    Ok(())
}

/// The tenant's mapping (the defaults when none is set).
pub async fn show_mapping(
    state: &dyn SyncStateStore,
    tenant: &TenantId,
) -> Result<Vec<MappingEntry>, SyncError> {
    mapping_entries(&state.mapping(tenant).await?)
}

/// Back to the default mapping (the next sync is a full reconciliation).
pub async fn reset_mapping(state: &dyn SyncStateStore, tenant: &TenantId) -> Result<(), SyncError> {
    state.reset_mapping(tenant).await?;
    Ok(())
}
