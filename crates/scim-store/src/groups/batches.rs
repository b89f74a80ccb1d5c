//! Membership writes in transactions: one unit of items per member (the
//! user's guard, the membership, its mirror, the member's mark), packed into
//! transactions of at most 100 items, the first carrying the group's own
//! write when a request has one. A user to add that is gone is left out
//! and its transaction retried without it, so a request converges.

use std::collections::{BTreeSet, VecDeque};

use aws_sdk_dynamodb::types::TransactWriteItem;
use scim_proto::ids::{ResourceId, TenantId};

use super::store::DynamoGroupStore;
use super::{GroupStore, StoredGroup};
use crate::dynamo::{self, Item, TxFailure, key, pk, s};
use crate::error::{StoreError, Unique};

/// One member's writes in a membership transaction.
pub(super) struct Unit {
    user: ResourceId,
    add: bool,
    items: Vec<TransactWriteItem>,
}

/// One membership transaction: the group's own write and its claims (the
/// first transaction of an update, when it has one), then member units.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) head: Vec<TransactWriteItem>,
    pub(super) claims: Vec<(usize, Unique)>,
    /// `head` starts with the version-checked write of the group item.
    pub(super) has_group: bool,
    pub(super) units: Vec<Unit>,
}

impl Batch {
    pub(super) fn len(&self) -> usize {
        self.head.len() + self.units.iter().map(|u| u.items.len()).sum::<usize>()
    }

    /// Moves units from the front of `units` while they fit.
    pub(super) fn fill(&mut self, units: &mut VecDeque<Unit>) {
        while let Some(unit) = units.front() {
            if self.len() + unit.items.len() > dynamo::TX_MAX_ITEMS {
                return;
            }
            if let Some(unit) = units.pop_front() {
                self.units.push(unit);
            }
        }
    }
}

pub(super) enum Committed {
    Yes,
    Gone(Vec<ResourceId>),
}

impl DynamoGroupStore {
    fn user_key(tenant: &TenantId, id: &ResourceId) -> Item {
        key(pk(tenant, "USER"), id.as_str())
    }

    /// The items that add `user` to `group` (its guard first: the user must
    /// exist, and its membership head gets a new [`dynamo::JOINED`] token;
    /// then the membership and its mirror) or remove it, and the user's mark
    /// for the Members sync.
    pub(super) fn member_unit(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        user: &ResourceId,
        add: bool,
        token: &str,
    ) -> Result<Unit, StoreError> {
        let t = &self.groups.table;
        let (g, u) = (group.as_str(), user.as_str());
        let mut items = Vec::with_capacity(4);
        if add {
            items.push(t.exists(Self::user_key(tenant, user))?);
            let head = dynamo::membership_head(tenant, u);
            items.push(t.update(head, vec![(dynamo::JOINED, s(token))], None)?);
            for item in dynamo::membership_items(tenant, g, u) {
                items.push(t.put(item, None)?);
            }
        } else {
            items.extend(t.unjoin(tenant, g, u)?);
        }
        items.push(t.mark_user(tenant, u)?);
        Ok(Unit {
            user: user.clone(),
            add,
            items,
        })
    }

    /// Commits one transaction of membership writes (after the group's own
    /// write, if `batch` has one). `Gone`: nothing was written, because these
    /// users to add are not users of the tenant.
    pub(super) async fn commit(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        batch: &Batch,
    ) -> Result<Committed, StoreError> {
        let mut items = batch.head.clone();
        let mut guards = Vec::new();
        for unit in &batch.units {
            if unit.add {
                guards.push((items.len(), &unit.user));
            }
            items.extend(unit.items.iter().cloned());
        }
        match dynamo::transact(&self.groups.table.client, items).await {
            Ok(()) => Ok(Committed::Yes),
            Err(TxFailure::Store(e)) => Err(e),
            Err(TxFailure::Cancelled(reasons)) => {
                if batch.has_group && TxFailure::condition_failed(&reasons, 0) {
                    return Err(self.groups.lost_race(tenant, group).await);
                }
                if batch
                    .claims
                    .iter()
                    .any(|(i, _)| TxFailure::condition_failed(&reasons, *i))
                {
                    return Err(crate::claims::taken(&reasons, &batch.claims));
                }
                let gone: Vec<ResourceId> = guards
                    .into_iter()
                    .filter(|(i, _)| TxFailure::condition_failed(&reasons, *i))
                    .map(|(_, u)| u.clone())
                    .collect();
                if gone.is_empty() {
                    Err(StoreError::Internal(
                        format!("membership transaction cancelled: {reasons:?}").into(),
                    ))
                } else {
                    Ok(Committed::Gone(gone))
                }
            }
        }
    }

    /// [`GroupStore::change_members`]: the group's version bump (which
    /// also requires the group to exist) and every member's unit in one
    /// transaction, when they fit in one.
    pub(super) async fn change_in_one(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        members: &super::MemberWrites,
        entry: &crate::activity::ActivityEntry,
    ) -> Result<super::MembersChange, StoreError> {
        use super::MembersChange;
        let units = members.add.len() + members.remove.len();
        if units == 0 {
            return Ok(MembersChange::Unsuitable);
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut items = vec![self.version_bump_item(tenant, group)?];
        let mut guards = Vec::new();
        for (users, add) in [(&members.add, true), (&members.remove, false)] {
            for u in users {
                let unit = self.member_unit(tenant, group, u, add, &token)?;
                if add {
                    guards.push((items.len(), u.clone()));
                }
                items.extend(unit.items);
                if items.len() > dynamo::TX_MAX_ITEMS {
                    return Ok(MembersChange::Unsuitable);
                }
            }
        }
        // The activity entry rides along if there is room; it never makes a
        // change that fits one transaction take the slower path.
        let apart = items.len() == dynamo::TX_MAX_ITEMS;
        if !apart {
            items.push(self.groups.table.put(entry.to_item(tenant), None)?);
        }
        match dynamo::transact(&self.groups.table.client, items).await {
            Ok(()) => {
                if apart {
                    self.log_apart(tenant, entry).await;
                }
                Ok(MembersChange::Applied)
            }
            Err(TxFailure::Store(e)) => Err(e),
            Err(TxFailure::Cancelled(reasons)) => {
                if TxFailure::condition_failed(&reasons, 0) {
                    return Ok(MembersChange::NoGroup);
                }
                let gone: Vec<ResourceId> = guards
                    .into_iter()
                    .filter(|(i, _)| TxFailure::condition_failed(&reasons, *i))
                    .map(|(_, u)| u)
                    .collect();
                if gone.is_empty() {
                    return Err(StoreError::Internal(
                        format!("membership transaction cancelled: {reasons:?}").into(),
                    ));
                }
                Ok(MembersChange::NotUsers(gone))
            }
        }
    }

    /// The transaction item that bumps the group's version and
    /// `lastModified`, failing unless the group exists.
    fn version_bump_item(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
    ) -> Result<TransactWriteItem, StoreError> {
        let t = &self.groups.table;
        let (names, values) = super::store::version_bump()?;
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&t.name)
            .set_key(Some(crate::resources::Resources::<StoredGroup>::key(
                tenant, group,
            )))
            .update_expression(super::store::VERSION_BUMP)
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(dynamo::build_failed)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Commits `units` in transactions of up to 100 items. A user to add
    /// that is gone is left out and its transaction retried without it;
    /// returns those users.
    pub(super) async fn commit_rest(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        mut units: VecDeque<Unit>,
    ) -> Result<Vec<ResourceId>, StoreError> {
        let mut gone = Vec::new();
        while !units.is_empty() {
            let mut batch = Batch::default();
            batch.fill(&mut units);
            loop {
                match self.commit(tenant, group, &batch).await? {
                    Committed::Yes => break,
                    Committed::Gone(users) => {
                        batch.units.retain(|u| !users.contains(&u.user));
                        gone.extend(users);
                        if batch.units.is_empty() {
                            break;
                        }
                    }
                }
            }
        }
        Ok(gone)
    }

    /// The version bump of a membership change, after its writes. It also
    /// closes the race with a delete of the group: a delete that read the
    /// group before this bump fails its version check (and retries, finding
    /// the new members); if the group is gone instead, the memberships this
    /// request added are removed again and the answer is `NotFound`.
    pub(super) async fn touch_after_members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        added: &BTreeSet<ResourceId>,
    ) -> Result<StoredGroup, StoreError> {
        match self.touch(tenant, group, None).await {
            Err(StoreError::NotFound) => {
                let pairs: Vec<(String, String)> = added
                    .iter()
                    .map(|u| (group.as_str().to_owned(), u.as_str().to_owned()))
                    .collect();
                // No marks: the group's deletion marked its members.
                dynamo::delete_memberships(&self.groups.table, tenant, &pairs, false).await?;
                Err(StoreError::NotFound)
            }
            other => other,
        }
    }
}
