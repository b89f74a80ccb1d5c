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

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use async_trait::async_trait;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::resource::{GroupResource, Meta};

use aws_sdk_dynamodb::types::TransactWriteItem;

use crate::claims::{Claim, ClaimedWrite};
use crate::deletion::{Deletion, Target};
use crate::dynamo::{self, Item, Table, TxFailure, key, pk, s};
use crate::error::{StoreError, Unique};

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
    ) -> Result<(), StoreError>;
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
            ResourceId::parse(rest)
                .ok_or_else(|| StoreError::Internal(format!("malformed membership mark {sk:?}")))
        };
        let subject = if let Some(u) = sk.strip_prefix(dynamo::USER_MARK) {
            ChangedGroups::OfUser(id(u)?)
        } else if let Some(g) = sk.strip_prefix(dynamo::GROUP_MARK) {
            ChangedGroups::OfMembers(id(g)?)
        } else {
            return Err(StoreError::Internal(format!(
                "malformed membership mark {sk:?}"
            )));
        };
        Ok(Self {
            subject,
            mark: dynamo::get_s(item, dynamo::MARK)?.to_owned(),
        })
    }
}

const GROUP: &str = "GROUP";
const GROUP_NAME: &str = "GROUPNAME";
const GROUP_EXT: &str = "GROUPEXT";
const GROUPS_COUNTER: &str = "groups";

/// One member's writes in a membership transaction.
struct Unit {
    user: ResourceId,
    add: bool,
    items: Vec<TransactWriteItem>,
}

/// One membership transaction: the group's own write and its claims (the
/// first transaction of an update, when it has one), then member units.
#[derive(Default)]
struct Batch {
    head: Vec<TransactWriteItem>,
    claims: Vec<(usize, Unique)>,
    /// `head` starts with the version-checked write of the group item.
    has_group: bool,
    units: Vec<Unit>,
}

impl Batch {
    fn len(&self) -> usize {
        self.head.len() + self.units.iter().map(|u| u.items.len()).sum::<usize>()
    }

    /// Moves units from the front of `units` while they fit.
    fn fill(&mut self, units: &mut VecDeque<Unit>) {
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

enum Committed {
    Yes,
    Gone(Vec<ResourceId>),
}

/// The DynamoDB implementation (item layout in [`crate::tables`]).
#[derive(Debug, Clone)]
pub struct DynamoGroupStore {
    table: Table,
}

impl DynamoGroupStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            table: Table {
                client,
                name: table.into(),
            },
        }
    }

    fn group_key(tenant: &TenantId, id: &ResourceId) -> Item {
        key(pk(tenant, GROUP), id.as_str())
    }

    fn user_key(tenant: &TenantId, id: &ResourceId) -> Item {
        key(pk(tenant, "USER"), id.as_str())
    }

    fn to_item(tenant: &TenantId, stored: &StoredGroup) -> Result<Item, StoreError> {
        let g = &stored.group;
        let mut item = Self::group_key(tenant, &stored.id);
        let doc = serde_json::to_string(&g.doc).map_err(StoreError::internal)?;
        item.insert("doc".into(), s(doc));
        dynamo::put_meta(&mut item, &stored.meta)?;
        item.insert("displayName".into(), s(g.display_name.as_str()));
        if let Some(ext) = &g.external_id {
            item.insert("externalId".into(), s(ext.as_str()));
        }
        Ok(item)
    }

    fn from_item(item: &Item) -> Result<StoredGroup, StoreError> {
        let id = dynamo::read_id(item)?;
        let group = GroupResource::from_doc(dynamo::read_doc(item)?).map_err(|e| {
            StoreError::Internal(format!("stored group {id} no longer validates: {e}"))
        })?;
        Ok(StoredGroup {
            id,
            meta: dynamo::read_meta(item)?,
            group,
        })
    }

    /// The uniqueness claims `group` holds.
    fn claims(group: &GroupResource) -> Vec<Claim> {
        let mut claims = vec![Claim {
            kind: GROUP_NAME,
            value: group.display_name.key(),
            unique: Unique::DisplayName,
        }];
        if let Some(ext) = &group.external_id {
            claims.push(Claim {
                kind: GROUP_EXT,
                value: ext.as_str().to_owned(),
                unique: Unique::ExternalId,
            });
        }
        claims
    }

    async fn lost_race(&self, tenant: &TenantId, id: &ResourceId) -> StoreError {
        match self.get(tenant, id).await {
            Ok(Some(_)) => StoreError::VersionMismatch,
            Ok(None) => StoreError::NotFound,
            Err(e) => e,
        }
    }

    /// The items that add `user` to `group` (its guard first: the user must
    /// exist, and its membership head gets a new [`dynamo::JOINED`] token;
    /// then the membership and its mirror) or remove it, and the user's mark
    /// for the Members sync.
    fn member_unit(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        user: &ResourceId,
        add: bool,
        token: &str,
    ) -> Result<Unit, StoreError> {
        let t = &self.table;
        let (g, u) = (group.as_str(), user.as_str());
        let mut items = Vec::with_capacity(4);
        if add {
            items.push(t.exists(Self::user_key(tenant, user))?);
            let head = dynamo::membership_head(tenant, u);
            items.push(t.set(head, dynamo::JOINED, s(token))?);
            for item in dynamo::membership_items(tenant, g, u) {
                items.push(t.put(item, None)?);
            }
        } else {
            items.push(t.delete(dynamo::member_key(tenant, g, u), None)?);
            items.push(t.delete(dynamo::member_of_key(tenant, u, g), None)?);
        }
        items.push(t.put(
            dynamo::membership_mark(tenant, format!("{}{u}", dynamo::USER_MARK)),
            None,
        )?);
        Ok(Unit {
            user: user.clone(),
            add,
            items,
        })
    }

    /// Commits one transaction of membership writes (after the group's own
    /// write, if `batch` has one). `Gone`: nothing was written, because these
    /// users to add are not users of the tenant.
    async fn commit(
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
        match dynamo::transact(&self.table.client, items).await {
            Ok(()) => Ok(Committed::Yes),
            Err(TxFailure::Store(e)) => Err(e),
            Err(TxFailure::Cancelled(reasons)) => {
                if batch.has_group && TxFailure::condition_failed(&reasons, 0) {
                    return Err(self.lost_race(tenant, group).await);
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
                    Err(StoreError::Internal(format!(
                        "membership transaction cancelled: {reasons:?}"
                    )))
                } else {
                    Ok(Committed::Gone(gone))
                }
            }
        }
    }

    /// Commits `units` in transactions of up to 100 items. A user to add
    /// that is gone is left out and its transaction retried without it;
    /// returns those users.
    async fn commit_rest(
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
    async fn touch_after_members(
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
                dynamo::delete_memberships(&self.table, tenant, &pairs, false).await?;
                Err(StoreError::NotFound)
            }
            other => other,
        }
    }

    async fn find_by_claim(
        &self,
        tenant: &TenantId,
        kind: &str,
        value: &str,
    ) -> Result<Option<StoredGroup>, StoreError> {
        match self.table.claimed_by(pk(tenant, kind), value).await? {
            Some(id) => match ResourceId::parse(&id) {
                Some(id) => self.get(tenant, &id).await,
                None => Ok(None),
            },
            None => Ok(None),
        }
    }
}

#[async_trait]
impl GroupStore for DynamoGroupStore {
    async fn create(
        &self,
        tenant: &TenantId,
        group: GroupResource,
    ) -> Result<StoredGroup, StoreError> {
        let stored = StoredGroup {
            id: ResourceId::from_uuid(uuid::Uuid::new_v4()),
            meta: Meta::new(dynamo::now()),
            group,
        };
        let (t, g, id) = (&self.table, &stored.group, stored.id.as_str());
        let mut w = ClaimedWrite::new(t.put(
            Self::to_item(tenant, &stored)?,
            Some("attribute_not_exists(pk)"),
        )?);
        let claims = Self::claims(g);
        w.change_claims(t, tenant, id, &[], &claims)?;
        w.push(t.count_delta(tenant, GROUPS_COUNTER, 1)?);
        w.commit_create(t, tenant, id, &claims).await?;
        Ok(stored)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<StoredGroup>, StoreError> {
        self.table
            .get(Self::group_key(tenant, id))
            .await?
            .map(|item| Self::from_item(&item))
            .transpose()
    }

    async fn get_many(
        &self,
        tenant: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<StoredGroup>, StoreError> {
        let mut groups = self
            .table
            .get_unique(ids, |id| Self::group_key(tenant, id))
            .await?
            .iter()
            .map(Self::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        groups.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(groups)
    }

    async fn replace(
        &self,
        tenant: &TenantId,
        current: &StoredGroup,
        next: GroupResource,
    ) -> Result<StoredGroup, StoreError> {
        let stored = StoredGroup {
            id: current.id.clone(),
            meta: current.meta.bumped(dynamo::now()),
            group: next,
        };
        let (t, old, new) = (&self.table, &current.group, &stored.group);
        let id = stored.id.as_str();
        let mut w = ClaimedWrite::new(
            t.put_versioned(Self::to_item(tenant, &stored)?, current.meta.version)?,
        );
        if old.display_name.as_str() != new.display_name.as_str() {
            // Members' group names changed (the sync maps them as written).
            w.push(t.put(
                dynamo::membership_mark(tenant, format!("{}{id}", dynamo::GROUP_MARK)),
                None,
            )?);
        }
        w.change_claims(t, tenant, id, &Self::claims(old), &Self::claims(new))?;
        if w.commit_replace(t).await? {
            Ok(stored)
        } else {
            Err(self.lost_race(tenant, &stored.id).await)
        }
    }

    async fn touch(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
        expected: Option<u64>,
    ) -> Result<StoredGroup, StoreError> {
        // A plain UpdateItem, not a transaction: concurrent membership PATCHes
        // each bump the version without conflicting with one another.
        let now = dynamo::now()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(StoreError::internal)?;
        let mut update = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(Self::group_key(tenant, id)))
            .update_expression("SET #lm = :now ADD #v :one")
            .expression_attribute_names("#lm", "lastModified")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":one", dynamo::n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        update = match expected {
            Some(v) => update
                .condition_expression("#v = :expected")
                .expression_attribute_values(":expected", dynamo::n(v)),
            None => update.condition_expression("attribute_exists(pk)"),
        };
        match update.send().await {
            Ok(out) => Self::from_item(&out.attributes.unwrap_or_default()),
            Err(e) if dynamo::is_condition_failure(&e) => Err(self.lost_race(tenant, id).await),
            Err(e) => Err(crate::error::from_sdk(e)),
        }
    }

    async fn update(
        &self,
        tenant: &TenantId,
        current: &StoredGroup,
        next: Option<GroupResource>,
        members: &MemberWrites,
        expect_version: bool,
    ) -> Result<GroupUpdate, StoreError> {
        let (t, id) = (&self.table, &current.id);
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut units = VecDeque::new();
        for u in &members.add {
            units.push_back(self.member_unit(tenant, id, u, true, &token)?);
        }
        for u in &members.remove {
            units.push_back(self.member_unit(tenant, id, u, false, &token)?);
        }
        // The group's own write, checked against the version read: the new
        // attributes, or (If-Match) just a new version.
        let mut first = Batch::default();
        let mut written = None;
        if next.is_some() || (expect_version && !units.is_empty()) {
            let stored = StoredGroup {
                id: id.clone(),
                meta: current.meta.bumped(dynamo::now()),
                group: next.unwrap_or_else(|| current.group.clone()),
            };
            let mut w = ClaimedWrite::new(
                t.put_versioned(Self::to_item(tenant, &stored)?, current.meta.version)?,
            );
            if current.group.display_name.as_str() != stored.group.display_name.as_str() {
                // Members' group names changed (the sync maps them as written).
                w.push(t.put(
                    dynamo::membership_mark(tenant, format!("{}{id}", dynamo::GROUP_MARK)),
                    None,
                )?);
            }
            let (old, new) = (Self::claims(&current.group), Self::claims(&stored.group));
            w.change_claims(t, tenant, id.as_str(), &old, &new)?;
            let (head, claims) = w.into_parts();
            first = Batch {
                head,
                claims,
                has_group: true,
                units: Vec::new(),
            };
            written = Some(stored);
        } else if units.is_empty() {
            return Ok(GroupUpdate::Written(current.clone()));
        }
        first.fill(&mut units);
        // The request's first write: if it fails, nothing was written.
        if let Committed::Gone(users) = self.commit(tenant, id, &first).await? {
            return Ok(GroupUpdate::NotUsers(users));
        }
        let all_in_first = units.is_empty();
        // Past its first write the request must converge: a user deleted
        // since the caller checked it is left out, as if deleted right after
        // being added.
        self.commit_rest(tenant, id, units).await?;
        match written {
            Some(stored) if all_in_first => Ok(GroupUpdate::Written(stored)),
            _ => self
                .touch_after_members(tenant, id, &members.add)
                .await
                .map(GroupUpdate::Written),
        }
    }

    async fn get_for_delete(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<Deletion<StoredGroup>>, StoreError> {
        if let Some(g) = self.get(tenant, id).await? {
            return Ok(Some(Deletion::live(g.id.clone(), g.meta, g, None)));
        }
        // Memberships of a group that is gone: an interrupted delete.
        let t = &self.table;
        let left = dynamo::query_sort_keys(
            &t.client,
            &t.name,
            dynamo::members_pk(tenant, id.as_str()),
            Some(1),
        )
        .await?;
        Ok((!left.is_empty()).then(|| Deletion::unfinished(id.clone(), None)))
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        target: &Deletion<StoredGroup>,
    ) -> Result<(), StoreError> {
        let t = &self.table;
        let current = match &target.target {
            Target::Live { resource, .. } => resource,
            Target::Unfinished => return self.remove_all_members(tenant, &target.id).await,
        };
        let (g, id) = (&current.group, current.id.as_str());
        let mut w = ClaimedWrite::new(
            t.delete_versioned(Self::group_key(tenant, &current.id), current.meta.version)?,
        );
        w.change_claims(t, tenant, id, &Self::claims(g), &[])?;
        w.push(t.count_delta(tenant, GROUPS_COUNTER, -1)?);
        // Per member: the membership, its mirror and the member's mark. The
        // first members that fit go in the transaction that decides the
        // delete, which for most groups is all of them.
        let room = (dynamo::TX_MAX_ITEMS - w.len()) / 3;
        let members = dynamo::query_sort_keys(
            &t.client,
            &t.name,
            dynamo::members_pk(tenant, id),
            Some(room + 1),
        )
        .await?;
        for u in members.iter().take(room) {
            w.push(t.delete(dynamo::member_key(tenant, id, u), None)?);
            w.push(t.delete(dynamo::member_of_key(tenant, u, id), None)?);
            w.push(t.put(
                dynamo::membership_mark(tenant, format!("{}{u}", dynamo::USER_MARK)),
                None,
            )?);
        }
        if !w.commit_delete(t).await? {
            return Err(self.lost_race(tenant, &current.id).await);
        }
        if members.len() <= room {
            return Ok(());
        }
        // The group is gone: a membership PATCH racing this finds it gone
        // when it bumps the version, and removes what it added. If this is
        // interrupted, the next DELETE of the id finishes it.
        self.remove_all_members(tenant, &current.id).await
    }

    async fn find_by_display_name(
        &self,
        tenant: &TenantId,
        display_name: &str,
    ) -> Result<Option<StoredGroup>, StoreError> {
        let wanted = display_name.to_lowercase();
        let found = self.find_by_claim(tenant, GROUP_NAME, &wanted).await?;
        Ok(found.filter(|g| g.group.display_name.key() == wanted))
    }

    async fn find_by_external_id(
        &self,
        tenant: &TenantId,
        external_id: &str,
    ) -> Result<Option<StoredGroup>, StoreError> {
        let found = self.find_by_claim(tenant, GROUP_EXT, external_id).await?;
        Ok(found.filter(|g| {
            g.group
                .external_id
                .as_ref()
                .is_some_and(|e| e.as_str() == external_id)
        }))
    }

    async fn count(&self, tenant: &TenantId) -> Result<usize, StoreError> {
        self.table.counter(tenant, GROUPS_COUNTER).await
    }

    async fn nth_id(&self, tenant: &TenantId, n: usize) -> Result<Option<ResourceId>, StoreError> {
        let key = self.table.nth_key(pk(tenant, GROUP), n).await?;
        Ok(key.and_then(|k| ResourceId::parse(&k)))
    }

    async fn page(
        &self,
        tenant: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<StoredGroup>, Option<ResourceId>), StoreError> {
        let (items, next) = self
            .table
            .page(pk(tenant, GROUP), after.map(ResourceId::as_str), limit)
            .await?;
        let groups = items
            .iter()
            .map(Self::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((groups, next.and_then(|n| ResourceId::parse(&n))))
    }

    async fn add_members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        users: &[ResourceId],
    ) -> Result<(), StoreError> {
        // A transaction may not name an item twice.
        let users: BTreeSet<&ResourceId> = users.iter().collect();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let units = users
            .into_iter()
            .map(|u| self.member_unit(tenant, group, u, true, &token))
            .collect::<Result<VecDeque<_>, _>>()?;
        // A user deleted before its transaction is left out (its guard
        // fails the transaction, which is retried without it).
        if self.commit_rest(tenant, group, units).await?.is_empty() {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn remove_members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        users: &[ResourceId],
    ) -> Result<(), StoreError> {
        let pairs: Vec<(String, String)> = users
            .iter()
            .map(|u| (group.as_str().to_owned(), u.as_str().to_owned()))
            .collect();
        dynamo::delete_memberships(&self.table, tenant, &pairs, true).await
    }

    async fn remove_all_members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
    ) -> Result<(), StoreError> {
        /// Members read and deleted per round: bounds memory and request size.
        const ROUND: usize = 1000;
        let t = &self.table;
        loop {
            let batch = dynamo::query_sort_keys(
                &t.client,
                &t.name,
                dynamo::members_pk(tenant, group.as_str()),
                Some(ROUND),
            )
            .await?;
            if batch.is_empty() {
                return Ok(());
            }
            let pairs: Vec<(String, String)> = batch
                .into_iter()
                .map(|u| (group.as_str().to_owned(), u))
                .collect();
            dynamo::delete_memberships(t, tenant, &pairs, true).await?;
        }
    }

    async fn members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        limit: Option<usize>,
    ) -> Result<Vec<ResourceId>, StoreError> {
        let t = &self.table;
        Ok(dynamo::query_sort_keys(
            &t.client,
            &t.name,
            dynamo::members_pk(tenant, group.as_str()),
            limit,
        )
        .await?
        .iter()
        .filter_map(|u| ResourceId::parse(u))
        .collect())
    }

    async fn members_among(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        users: &[ResourceId],
    ) -> Result<Vec<ResourceId>, StoreError> {
        let mut found: Vec<ResourceId> = self
            .table
            .get_unique(users, |u| {
                dynamo::member_key(tenant, group.as_str(), u.as_str())
            })
            .await?
            .iter()
            .filter_map(|i| dynamo::get_opt_s(i, crate::tables::SK).and_then(ResourceId::parse))
            .collect();
        found.sort();
        Ok(found)
    }

    async fn groups_of(
        &self,
        tenant: &TenantId,
        user: &ResourceId,
    ) -> Result<Vec<ResourceId>, StoreError> {
        let t = &self.table;
        Ok(dynamo::query_sort_keys(
            &t.client,
            &t.name,
            dynamo::member_of_pk(tenant, user.as_str()),
            None,
        )
        .await?
        .iter()
        .filter_map(|g| ResourceId::parse(g))
        .collect())
    }

    async fn member_page(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<ResourceId>, Option<ResourceId>), StoreError> {
        let (items, next) = self
            .table
            .page(
                dynamo::members_pk(tenant, group.as_str()),
                after.map(ResourceId::as_str),
                limit,
            )
            .await?;
        let ids = items
            .iter()
            .map(dynamo::read_id)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((ids, next.and_then(|n| ResourceId::parse(&n))))
    }

    async fn membership_changes(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<MembershipChange>, bool), StoreError> {
        let (items, next) = self
            .table
            .page(pk(tenant, dynamo::MARKS), after, limit)
            .await?;
        let changes = items
            .iter()
            .map(MembershipChange::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((changes, next.is_some()))
    }

    async fn clear_membership_change(
        &self,
        tenant: &TenantId,
        change: &MembershipChange,
    ) -> Result<(), StoreError> {
        // Recorded again since read (or already cleared): kept.
        self.table
            .delete_if_unchanged(
                key(pk(tenant, dynamo::MARKS), change.key()),
                dynamo::MARK,
                s(change.mark.as_str()),
            )
            .await?;
        Ok(())
    }
}
