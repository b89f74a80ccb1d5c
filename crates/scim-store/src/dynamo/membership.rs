//! Membership items (one per (group, member) plus a mirror per (member,
//! group)), the user's membership head, and the membership marks the
//! Members sync reads. Changes with the membership layout.

use aws_sdk_dynamodb::types::TransactWriteItem;
use scim_proto::ids::TenantId;

use super::{Item, Table, batch_write, delete_request, key, pk, put_request, s};
use crate::StoreError;

impl Table {
    /// The transaction items that remove `user` from `group`: the
    /// membership and its mirror.
    pub(crate) fn unjoin(
        &self,
        tenant: &TenantId,
        group: &str,
        user: &str,
    ) -> Result<[TransactWriteItem; 2], StoreError> {
        Ok([
            self.delete(member_key(tenant, group, user), None)?,
            self.delete(member_of_key(tenant, user, group), None)?,
        ])
    }

    /// The transaction item that marks `user`'s groups changed for the
    /// Members sync.
    pub(crate) fn mark_user(
        &self,
        tenant: &TenantId,
        user: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        self.put(membership_mark(tenant, format!("{USER_MARK}{user}")), None)
    }
}

// --- Membership items -------------------------------------------------------
// One item per (group, member) plus its mirror per (member, group): adding or
// removing a member touches two items whatever the group's size, and a user's
// groups are one query away.

pub(crate) fn member_key(tenant: &TenantId, group: &str, user: &str) -> Item {
    key(pk(tenant, &format!("GM#{group}")), user)
}

pub(crate) fn member_of_key(tenant: &TenantId, user: &str, group: &str) -> Item {
    key(pk(tenant, &format!("UG#{user}")), group)
}

pub(crate) fn members_pk(tenant: &TenantId, group: &str) -> String {
    pk(tenant, &format!("GM#{group}"))
}

pub(crate) fn member_of_pk(tenant: &TenantId, user: &str) -> String {
    pk(tenant, &format!("UG#{user}"))
}

/// The membership item and its mirror for (group, user), as put.
pub(crate) fn membership_items(tenant: &TenantId, group: &str, user: &str) -> [Item; 2] {
    let mut m = member_key(tenant, group, user);
    m.insert("group".into(), s(group));
    let mut r = member_of_key(tenant, user, group);
    r.insert("user".into(), s(user));
    [m, r]
}

/// A user's *membership head*: one item in the partition of the user's
/// memberships (sort key `#`, which no group id can be), written only by
/// membership changes and user deletes. Every group add sets its
/// [`JOINED`] token in the transaction that writes the membership (and only
/// if the user exists). A user delete reads the head before the user's
/// groups and is conditioned on the token it read: a membership added in
/// between makes the delete fail (and retry) instead of leaving a group
/// listing a user that does not exist. It lives with the memberships, not on
/// the user item, so that the Groups function never writes a user.
pub(crate) fn membership_head(tenant: &TenantId, user: &str) -> Item {
    key(member_of_pk(tenant, user), MEMBERSHIP_HEAD)
}

/// Sort key of the membership head (not a valid resource id).
pub(crate) const MEMBERSHIP_HEAD: &str = "#";

/// The membership head's token of the last group add.
pub(crate) const JOINED: &str = "joined";

/// On the membership head: the user is deleted but memberships that did not
/// fit the delete's transaction are left (see [`crate::deletion`]).
pub(crate) const UNFINISHED: &str = "unfinished";

/// Deletes the membership pairs of `pairs` (group, user) in batches. With
/// `mark_users`, each user's groups are also marked changed for the Members
/// sync (see [`membership_mark`]).
pub(crate) async fn delete_memberships(
    table: &Table,
    tenant: &TenantId,
    pairs: &[(String, String)],
    mark_users: bool,
) -> Result<(), StoreError> {
    // A batch may not name an item twice.
    let pairs: std::collections::BTreeSet<&(String, String)> = pairs.iter().collect();
    let mut requests = Vec::with_capacity(pairs.len() * 3);
    if mark_users {
        requests.extend(user_marks(tenant, pairs.iter().map(|(_, u)| u.as_str()))?);
    }
    for (g, u) in pairs {
        requests.push(delete_request(member_key(tenant, g, u))?);
        requests.push(delete_request(member_of_key(tenant, u, g))?);
    }
    batch_write(&table.client, &table.name, requests).await
}

// --- Membership marks ----------------------------------------------------------
// A user's `groups` (as the Members sync maps them) change when a membership
// changes and when one of its groups is renamed; neither changes the user
// item, so neither reaches the dirty set. Each such change also writes a mark
// in the tenant's GSYNC partition: `U#<user id>` (that user's groups changed)
// or `G#<group id>` (the group was renamed: all its members' groups changed).
// A mark carries a fresh token, so the sync removes one only if no change
// came after it read the mark.

/// Partition of the membership marks.
pub(crate) const MARKS: &str = "GSYNC";
/// Sort-key prefixes of the marks.
pub(crate) const USER_MARK: &str = "U#";
pub(crate) const GROUP_MARK: &str = "G#";
/// The attribute holding a mark's token.
pub(crate) const MARK: &str = "mark";

/// A mark item for `subject` (`U#<user id>` or `G#<group id>`).
pub(crate) fn membership_mark(tenant: &TenantId, subject: String) -> Item {
    let mut item = key(pk(tenant, MARKS), subject);
    item.insert(MARK.into(), s(uuid::Uuid::new_v4().simple().to_string()));
    item
}

/// Put requests marking `users` (each once: a batch may not name an item
/// twice). They go before the membership writes they describe: a change
/// interrupted half-way leaves a mark too many, never one too few.
pub(crate) fn user_marks<'a>(
    tenant: &TenantId,
    users: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<aws_sdk_dynamodb::types::WriteRequest>, StoreError> {
    users
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|u| put_request(membership_mark(tenant, format!("{USER_MARK}{u}"))))
        .collect()
}
