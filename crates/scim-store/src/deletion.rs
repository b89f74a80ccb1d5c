//! What a DELETE works on, and deletes too large for one transaction.
//!
//! A user or group delete removes the resource, its lookup items and its
//! memberships in one version-checked `TransactWriteItems` when they fit in
//! one (100 items): a delete that loses its version check writes nothing.
//! When they do not fit, that same transaction still decides the delete (the
//! resource and its claims go, the change is marked for the Members sync),
//! and the memberships that did not fit are removed after it. A delete
//! interrupted in between leaves memberships of a resource that is gone; the
//! next DELETE of that id finds them ([`Deletion::is_unfinished`]) and
//! removes them, so a retry converges. (A user's unfinished delete is
//! recorded on its membership head, see [`crate::dynamo::membership_head`];
//! a group's is found by its leftover membership items, which no read shows:
//! user `groups` and the Members sync skip groups that do not exist.)

use scim_proto::ids::ResourceId;
use scim_proto::resource::Meta;

/// How a DELETE ended: all done, or decided with memberships left to
/// remove in the background ([`crate::groups::GroupStore::finish_deletes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Deleted {
    Done,
    CleanupPending,
}

impl From<()> for Deleted {
    fn from((): ()) -> Self {
        Self::Done
    }
}

/// A resource as a DELETE reads it: the resource itself, or what is left of
/// a delete that was decided but interrupted.
#[derive(Debug, Clone, PartialEq)]
pub struct Deletion<R> {
    pub id: ResourceId,
    /// The metadata as read, which `If-Match` is checked against (for an
    /// unfinished delete, the resource's last when it is known).
    pub meta: Option<Meta>,
    pub(crate) target: Target<R>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target<R> {
    /// The resource as read, and its membership guard (users: the token of
    /// the last group add, so that a delete which read the user's groups
    /// before that add cannot miss the new membership).
    Live { resource: R, guard: Option<String> },
    /// Only memberships of a deleted resource are left to remove.
    Unfinished,
}

impl<R> Deletion<R> {
    pub(crate) fn live(id: ResourceId, meta: Meta, resource: R, guard: Option<String>) -> Self {
        Self {
            id,
            meta: Some(meta),
            target: Target::Live { resource, guard },
        }
    }

    pub(crate) fn unfinished(id: ResourceId, meta: Option<Meta>) -> Self {
        Self {
            id,
            meta,
            target: Target::Unfinished,
        }
    }

    /// The resource as read, unless only an unfinished delete is left.
    pub fn resource(&self) -> Option<&R> {
        match &self.target {
            Target::Live { resource, .. } => Some(resource),
            Target::Unfinished => None,
        }
    }

    /// The membership guard read with the resource (see [`Target::Live`]).
    pub(crate) fn guard(&self) -> Option<&str> {
        match &self.target {
            Target::Live { guard, .. } => guard.as_deref(),
            Target::Unfinished => None,
        }
    }

    /// The resource is gone and some of its memberships are left, which
    /// the delete removes.
    pub fn is_unfinished(&self) -> bool {
        matches!(self.target, Target::Unfinished)
    }
}
