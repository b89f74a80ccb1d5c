//! The application's Members: the [`MemberStore`] capability and its DynamoDB
//! implementation (the Members table, [`crate::tables::MEMBERS`]).
//!
//! A member is managed by the app (created in the product, never touched by
//! the sync) or by provisioning (created, updated and deactivated by the
//! Members sync from a SCIM user). Every member write is one
//! `TransactWriteItems` that puts the member item together with its email
//! claim and, for provisioned members, its link to the SCIM user, so a sync
//! interrupted at any point never leaves a half-written member and a rerun
//! cannot create a second one.
//!
//! # Item layout (Members table, `pk`/`sk`)
//!
//! | item         | pk                      | sk                        | attributes |
//! |--------------|-------------------------|---------------------------|------------|
//! | member       | `T#<tenant>#MEMBER`     | `<member id>`             | `email`, `displayName`, `status`, `properties` (JSON), `scimUserId`?, `managedBy`, `created`, `updated`, `version`, `pendingManager`? |
//! | email claim  | `T#<tenant>#MEMAIL`     | `<lowercased email>`      | `id` (member id) |
//! | link         | `T#<tenant>#MLINK`      | `<SCIM user id>`          | `id` (member id), `how`, `at`, `runId` |
//! | link record  | `T#<tenant>#LINKLOG`    | `<at>#<SCIM user id>`     | `userId`, `memberId`, `how`, `runId`, `previousManagedBy` |
//! | manager wait | `T#<tenant>#WAIT`       | `<manager user id>#<report user id>` | `manager`, `report` |
//! | app event    | `T#<tenant>#OUTBOX`     | `OUTBOX#<time>#<event id>` | see [`crate::events`] |
//!
//! Provisioned members get the id `m-<SCIM user id>` (deterministic: a rerun
//! of an interrupted create finds the member it already wrote); app members
//! get `a-<uuid>`. The link item, not the id, is what ties a member to a SCIM
//! user: a member linked by email keeps its app id. Link records are never
//! deleted: every link ever made stays on record. A wait item exists while a
//! member's `manager` property cannot be resolved yet because the manager's
//! SCIM user has no member; the sync revisits those when it links members.
//!
//! This module owns the member model and the [`MemberStore`] capability
//! (they change with what the app and the sync need); `store` owns
//! [`DynamoMemberStore`], the item encoding and the member transaction
//! (changes with the layout above).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use async_trait::async_trait;
use scim_proto::ids::TenantId;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

mod store;

pub use store::DynamoMemberStore;

/// Longest member email or display name accepted from the app.
pub const MAX_FIELD_LEN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    Active,
    Deactivated,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "deactivated" => Some(Self::Deactivated),
            _ => None,
        }
    }
}

/// Who owns a member's lifecycle. The sync never changes an app member
/// (unless the tenant's link-by-email policy links it, which hands it over to
/// provisioning and is recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagedBy {
    Provisioning,
    App,
}

impl ManagedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::App => "app",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "provisioning" => Some(Self::Provisioning),
            "app" => Some(Self::App),
            _ => None,
        }
    }
}

/// A member of the application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub status: MemberStatus,
    /// Mapped properties (for provisioned members, exactly what the
    /// tenant's attribute mapping yields).
    pub properties: BTreeMap<String, serde_json::Value>,
    /// The SCIM user this member is linked to, if any.
    pub scim_user_id: Option<String>,
    pub managed_by: ManagedBy,
    /// RFC 3339, UTC, milliseconds.
    pub created: String,
    pub updated: String,
    /// Incremented on every write (optimistic concurrency).
    pub version: u64,
    /// The SCIM id of a manager that has no member yet: the `manager`
    /// property is absent until it has one (the sync then fills it in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_manager: Option<String>,
}

impl Member {
    /// The email claim key: the email, lowercased.
    pub fn email_key(&self) -> String {
        self.email.to_lowercase()
    }
}

/// How a member came to be linked to a SCIM user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// The sync created the member for the user.
    Created,
    /// An app member with the user's email, linked by the tenant's
    /// link-by-email policy.
    Email,
    /// A provisioned member whose SCIM user was deleted, taken over by a new
    /// SCIM user with the same email (a returning user).
    Relinked,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Email => "email",
            Self::Relinked => "relinked",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(Self::Created),
            "email" => Some(Self::Email),
            "relinked" => Some(Self::Relinked),
            _ => None,
        }
    }
}

/// A SCIM user → member link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberLink {
    pub user_id: String,
    pub member_id: String,
    pub how: LinkKind,
    pub at: String,
    pub run_id: String,
}

/// One entry of the permanent record of links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkRecord {
    pub at: String,
    pub user_id: String,
    pub member_id: String,
    pub how: LinkKind,
    pub run_id: String,
    /// Who managed the member before the link (`app` for a link by email).
    pub previous_managed_by: Option<ManagedBy>,
}

/// A member whose `manager` waits for the manager's member to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerWait {
    /// The manager's SCIM user id.
    pub manager: String,
    /// The SCIM user id of the member's user (the manager's report).
    pub report: String,
}

/// Link change written with a member.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkWrite {
    /// Link the member to a user (the link must not exist yet); also
    /// appends a [`LinkRecord`].
    Add {
        link: MemberLink,
        previous_managed_by: Option<ManagedBy>,
    },
    /// Remove the user's link (if it points at this member).
    Remove { user_id: String },
}

/// One atomic member write: the member's new state and everything that must
/// change with it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberWrite {
    /// The new state, its `version` already incremented (1 for a create).
    pub member: Member,
    /// `None`: create (the member must not exist); `Some(v)`: the stored
    /// member must still be at version `v`.
    pub expected_version: Option<u64>,
    /// Email claim (lowercased) to take: it must be free.
    pub claim_email: Option<String>,
    /// Email claim (lowercased) to give up: deleted if this member holds it.
    pub release_email: Option<String>,
    pub link: Option<LinkWrite>,
    pub wait_add: Option<ManagerWait>,
    pub wait_remove: Option<ManagerWait>,
    /// The app event this change publishes: written to the tenant's outbox
    /// in the same transaction ([`crate::events`]).
    pub event: Option<crate::events::AppEvent>,
}

/// What the Members sync and the app need from storage.
#[async_trait]
pub trait MemberStore: Send + Sync + fmt::Debug {
    /// Up to `limit` members in id order after `after`, and the id to
    /// continue from if there may be more.
    async fn list(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Member>, Option<String>), StoreError>;
    /// Strongly consistent read by id.
    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<Member>, StoreError>;
    /// Members by id, skipping missing ones, in id order.
    async fn get_many(&self, tenant: &TenantId, ids: &[String]) -> Result<Vec<Member>, StoreError>;
    /// Creates an app-managed member; `Conflict(Unique::Email)` when a member
    /// of the tenant already has this email (ignoring case).
    async fn add_app_member(
        &self,
        tenant: &TenantId,
        email: &str,
        display_name: &str,
    ) -> Result<Member, StoreError>;
    /// The member id holding each of `email_keys` (lowercased emails).
    async fn email_owners(
        &self,
        tenant: &TenantId,
        email_keys: &[String],
    ) -> Result<HashMap<String, String>, StoreError>;
    /// The links of `user_ids` that exist, by user id.
    async fn links(
        &self,
        tenant: &TenantId,
        user_ids: &[String],
    ) -> Result<HashMap<String, MemberLink>, StoreError>;
    /// Up to `limit` links in user-id order after `after`.
    async fn link_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<MemberLink>, Option<String>), StoreError>;
    /// The record of links made, newest first.
    async fn link_records(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<LinkRecord>, StoreError>;
    /// Up to `limit` manager waits after `after` (an opaque cursor).
    async fn waits(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ManagerWait>, Option<String>), StoreError>;
    /// Writes a member and its claim/link/wait changes in one transaction.
    /// `Conflict(Unique::Email)` when the email claim is taken;
    /// `VersionMismatch` when the member (or the link) changed since read.
    async fn write(&self, tenant: &TenantId, write: &MemberWrite) -> Result<(), StoreError>;
}

/// Checks an app member's email and name (callers should check first, for
/// a clean message: [`MemberStore::add_app_member`] reports a failure as
/// `Internal`).
pub fn validate_app_member(email: &str, display_name: &str) -> Result<(), String> {
    let valid =
        |v: &str| !v.is_empty() && v.len() <= MAX_FIELD_LEN && !v.chars().any(char::is_control);
    if valid(email) && email.contains('@') && valid(display_name) {
        Ok(())
    } else {
        Err(format!(
            "a member needs an email (with '@') and a name, each 1-{MAX_FIELD_LEN} printable characters"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_json_uses_the_documented_names_and_values() {
        let m = Member {
            id: "m-1".into(),
            email: "a@b.c".into(),
            display_name: "A".into(),
            status: MemberStatus::Deactivated,
            properties: BTreeMap::from([("city".into(), serde_json::json!("Oslo"))]),
            scim_user_id: Some("1".into()),
            managed_by: ManagedBy::Provisioning,
            created: "2026-01-01T00:00:00.000Z".into(),
            updated: "2026-01-01T00:00:00.000Z".into(),
            version: 2,
            pending_manager: None,
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["displayName"], "A");
        assert_eq!(v["status"], "deactivated");
        assert_eq!(v["managedBy"], "provisioning");
        assert_eq!(v["scimUserId"], "1");
        assert_eq!(v["properties"]["city"], "Oslo");
        assert!(v.get("pendingManager").is_none());
    }
}
