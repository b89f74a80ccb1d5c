//! What a sync reports: counts, the member changes, the users that failed.
//! The public shape of a run's result (returned to callers, stored in the
//! tenant's history); changes when the report's format changes.

use std::collections::BTreeMap;

use scim_store::members::LinkKind;
use serde::{Deserialize, Serialize};

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
