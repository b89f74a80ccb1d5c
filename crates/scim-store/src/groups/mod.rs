//! Groups and their membership: the [`GroupStore`] capability and its
//! DynamoDB implementation.
//!
//! The group item holds only the group's own attributes. Membership is one
//! item per (group, member) plus a mirror per (member, group), written with
//! idempotent batch puts and deletes: a PATCH costs requests in proportion to
//! the members it names, never to the size of the group, and concurrent
//! PATCHes to one group cannot lose each other's updates because nothing
//! reads, modifies and writes back a member list.
//!
//! Every membership change and every rename also leaves a mark for the
//! Members sync ([`GroupStore::membership_changes`]), since a user's groups
//! are a mappable member property that no user write records.
//!
//! This module owns the [`GroupStore`] capability and its types (they change
//! with what the Groups endpoints and the sync need). Its children own the
//! DynamoDB implementation:
//! - `store`: [`DynamoGroupStore`], the group item and the group's own
//!   writes, reads and deletes (changes with the group layout).
//! - `batches`: membership writes cut into transactions of at most 100
//!   items, with their guards and retries (changes with the membership
//!   concurrency rules).

use std::collections::BTreeSet;
use std::fmt;

use async_trait::async_trait;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::resource::{GroupResource, Meta};

use crate::activity::Origin;
use crate::deletion::{Deleted, Deletion};
use crate::dynamo::{self, Item};
use crate::error::StoreError;

mod batches;
mod store;

pub use store::DynamoGroupStore;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredGroup {
    pub id: ResourceId,
    pub meta: Meta,
    pub group: GroupResource,
}

/// What the SCIM Groups endpoints need from storage.
#[async_trait]
pub trait GroupStore: Send + Sync + fmt::Debug {
    /// Stores a new, empty group; `Conflict` when its displayName or
    /// externalId is taken.
    async fn create(
        &self,
        tenant: &TenantId,
        group: GroupResource,
        origin: Origin,
    ) -> Result<StoredGroup, StoreError>;
    async fn get(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<StoredGroup>, StoreError>;
    /// Groups by id, skipping missing ones (strongly consistent).
    async fn get_many(
        &self,
        tenant: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<StoredGroup>, StoreError>;
    /// Replaces the group's attributes if unchanged since read.
    async fn replace(
        &self,
        tenant: &TenantId,
        current: &StoredGroup,
        next: GroupResource,
        origin: Origin,
    ) -> Result<StoredGroup, StoreError>;
    /// Records a membership change in `meta` (new version and lastModified).
    /// With `expected`, only if the version is still that one.
    async fn touch(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
        expected: Option<u64>,
    ) -> Result<StoredGroup, StoreError>;
    /// Writes a PATCH or PUT: the attributes `next` (`None`: unchanged) and
    /// the member changes `members` of the group `current` read. The
    /// attribute write, and with `expect_version` (`If-Match`) any write, is
    /// conditioned on the version read (`VersionMismatch`, nothing written).
    /// Everything is one transaction when it fits (100 items); otherwise the
    /// first transaction carries the attribute write and the rest follows
    /// in idempotent transactions, so a retried request converges.
    /// [`GroupUpdate::NotUsers`]: a user to add is not (or no longer) a user
    /// of the tenant, and nothing was written.
    async fn update(
        &self,
        tenant: &TenantId,
        current: &StoredGroup,
        next: Option<GroupResource>,
        members: &MemberWrites,
        expect_version: bool,
        origin: Origin,
    ) -> Result<GroupUpdate, StoreError>;
    /// Reads group `id` for a DELETE (strongly consistent): the group, or
    /// what is left of an interrupted delete of it (see [`crate::deletion`]);
    /// `None` when there is nothing to delete.
    async fn get_for_delete(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<Deletion<StoredGroup>>, StoreError>;
    /// Deletes the group `target` read and all its memberships, if unchanged
    /// since (`VersionMismatch` otherwise, `NotFound` if gone; nothing is
    /// written either way); or finishes an interrupted delete.
    async fn delete(
        &self,
        tenant: &TenantId,
        target: &Deletion<StoredGroup>,
        origin: Origin,
    ) -> Result<Deleted, StoreError>;
    /// Removes the memberships that group deletes left to the background
    /// (resumable: a group leaves the list only once all are gone); how
    /// many deletes it finished.
    async fn finish_deletes(&self, tenant: &TenantId) -> Result<usize, StoreError>;
    async fn find_by_display_name(
        &self,
        tenant: &TenantId,
        display_name: &str,
    ) -> Result<Option<StoredGroup>, StoreError>;
    async fn find_by_external_id(
        &self,
        tenant: &TenantId,
        external_id: &str,
    ) -> Result<Option<StoredGroup>, StoreError>;
    async fn count(&self, tenant: &TenantId) -> Result<usize, StoreError>;
    async fn page(
        &self,
        tenant: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<StoredGroup>, Option<ResourceId>), StoreError>;
    /// The id of the `n`th group in id order (n ≥ 1), reading keys only;
    /// `None` when the tenant has fewer groups.
    async fn nth_id(&self, tenant: &TenantId, n: usize) -> Result<Option<ResourceId>, StoreError>;

    /// Adds and removes members with the group's version bump in one
    /// transaction, reading nothing first (the users to add and the group
    /// are checked by conditions inside it). See [`MembersChange`].
    async fn change_members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        members: &MemberWrites,
        origin: Origin,
    ) -> Result<MembersChange, StoreError>;

    /// Adds members (the caller has checked they are users of the tenant).
    /// Idempotent: adding a member twice changes nothing.
    async fn add_members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        users: &[ResourceId],
    ) -> Result<(), StoreError>;
    /// Removes members; absent ones are ignored.
    async fn remove_members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        users: &[ResourceId],
    ) -> Result<(), StoreError>;
    /// Removes every member, in bounded batches.
    async fn remove_all_members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
    ) -> Result<(), StoreError>;
    /// Member ids in id order, at most `limit` when given.
    async fn members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        limit: Option<usize>,
    ) -> Result<Vec<ResourceId>, StoreError>;
    /// Which of `users` are members of `group` (one read each).
    async fn members_among(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        users: &[ResourceId],
    ) -> Result<Vec<ResourceId>, StoreError>;
    /// The groups `user` belongs to, in id order.
    async fn groups_of(
        &self,
        tenant: &TenantId,
        user: &ResourceId,
    ) -> Result<Vec<ResourceId>, StoreError>;
    /// One page of member ids after `after`, in id order, and whether more
    /// follow (the id to continue after).
    async fn member_page(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<ResourceId>, Option<ResourceId>), StoreError>;

    /// Membership changes not yet handled by the Members sync, in key order
    /// after `after` (a [`MembershipChange::key`]), and whether more follow.
    async fn membership_changes(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<MembershipChange>, bool), StoreError>;
    /// Marks a change as handled, unless it happened again since it was
    /// read (then it stays for the next sync).
    async fn clear_membership_change(
        &self,
        tenant: &TenantId,
        change: &MembershipChange,
    ) -> Result<(), StoreError>;
}

/// What [`GroupStore::change_members`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembersChange {
    /// Written, the group's version bumped.
    Applied,
    /// No such group: nothing written.
    NoGroup,
    /// These users to add are not users of the tenant: nothing written.
    NotUsers(Vec<ResourceId>),
    /// Empty, or more than one transaction holds: nothing written; the
    /// caller takes the path that reads the group first.
    Unsuitable,
}

/// The membership writes of one request, net of the order of its
/// operations: each named user ends up a member or not. Both are idempotent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberWrites {
    pub add: BTreeSet<ResourceId>,
    pub remove: BTreeSet<ResourceId>,
}

impl MemberWrites {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// How [`GroupStore::update`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupUpdate {
    /// Written (or nothing to write): the group as it now is.
    Written(StoredGroup),
    /// Nothing written: these users to add are not users of the tenant
    /// (any more: the caller checked them before).
    NotUsers(Vec<ResourceId>),
}

/// Whose groups changed without a user write saying so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangedGroups {
    /// The user joined or left a group.
    OfUser(ResourceId),
    /// The group was renamed: every member's group names changed.
    OfMembers(ResourceId),
}

/// A membership change the Members sync has not handled yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    pub subject: ChangedGroups,
    /// Differs each time the change is recorded again.
    pub mark: String,
}

impl MembershipChange {
    /// Where the change sits in the order of [`GroupStore::membership_changes`].
    pub fn key(&self) -> String {
        match &self.subject {
            ChangedGroups::OfUser(u) => format!("{}{u}", dynamo::USER_MARK),
            ChangedGroups::OfMembers(g) => format!("{}{g}", dynamo::GROUP_MARK),
        }
    }

    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let sk = dynamo::get_s(item, crate::tables::SK)?;
        let id = |rest: &str| {
            ResourceId::parse(rest).ok_or_else(|| {
                StoreError::Internal(format!("malformed membership mark {sk:?}").into())
            })
        };
        let subject = if let Some(u) = sk.strip_prefix(dynamo::USER_MARK) {
            ChangedGroups::OfUser(id(u)?)
        } else if let Some(g) = sk.strip_prefix(dynamo::GROUP_MARK) {
            ChangedGroups::OfMembers(id(g)?)
        } else {
            return Err(StoreError::Internal(
                format!("malformed membership mark {sk:?}").into(),
            ));
        };
        Ok(Self {
            subject,
            mark: dynamo::get_s(item, dynamo::MARK)?.to_owned(),
        })
    }
}
