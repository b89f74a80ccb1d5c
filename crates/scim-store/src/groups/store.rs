//! [`DynamoGroupStore`]: the group item (through the resource mechanics
//! shared with users, [`crate::resources`]), its reads and deletes, and the
//! [`GroupStore`] methods, which hand membership writes to `batches`.

use std::collections::{BTreeSet, HashMap, VecDeque};

use async_trait::async_trait;
use scim_proto::ScimResult;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::resource::{GroupResource, Meta};

use super::batches::{Batch, Committed};
use super::{GroupStore, GroupUpdate, MemberWrites, MembersChange, MembershipChange, StoredGroup};
use crate::activity::{ActivityEntry, Origin, Outcome};
use crate::claims::ClaimedWrite;
use crate::deletion::{Deleted, Deletion};
use crate::dynamo::{self, Item, key, pk, s};
use crate::error::{StoreError, Unique};
use crate::resources::{Resource, Resources};

const GROUP: &str = "GROUP";

const GROUP_NAME: &str = "GROUPNAME";
const GROUP_EXT: &str = "GROUPEXT";

/// A membership change's mark on the group item: a new version and
/// `lastModified` (the expression, then its names and values), for the
/// plain write and for the transaction item alike.
pub(super) const VERSION_BUMP: &str = "SET #lm = :now ADD #v :one";

pub(super) fn version_bump() -> Result<(HashMap<String, String>, Item), StoreError> {
    let now = dynamo::now()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| StoreError::internal("formatting a time", e))?;
    let names = HashMap::from([
        ("#lm".to_owned(), "lastModified".to_owned()),
        ("#v".to_owned(), "version".to_owned()),
    ]);
    let values = Item::from([
        (":now".to_owned(), s(now)),
        (":one".to_owned(), dynamo::n(1)),
    ]);
    Ok((names, values))
}

impl Resource for StoredGroup {
    type Doc = GroupResource;
    const KIND: &'static str = GROUP;
    const NOUN: &'static str = "group";
    const COUNTER: &'static str = dynamo::GROUPS_COUNTER;
    const NAME_CLAIM: &'static str = GROUP_NAME;
    const NAME_UNIQUE: Unique = Unique::DisplayName;
    const EXT_CLAIM: &'static str = GROUP_EXT;
    const TYPE: &'static str = "Group";

    fn new(id: ResourceId, meta: Meta, group: GroupResource) -> Self {
        Self { id, meta, group }
    }
    fn id(&self) -> &ResourceId {
        &self.id
    }
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn doc(&self) -> &GroupResource {
        &self.group
    }
    fn json(group: &GroupResource) -> &serde_json::Map<String, serde_json::Value> {
        &group.doc
    }
    fn from_json(json: serde_json::Map<String, serde_json::Value>) -> ScimResult<GroupResource> {
        GroupResource::from_doc(json)
    }
    fn name_key(group: &GroupResource) -> String {
        group.display_name.key()
    }
    fn name(group: &GroupResource) -> &str {
        group.display_name.as_str()
    }
    fn external_id(group: &GroupResource) -> Option<&str> {
        group.external_id.as_ref().map(|e| e.as_str())
    }
    fn put_attributes(group: &GroupResource, item: &mut Item) {
        item.insert("displayName".into(), s(group.display_name.as_str()));
    }
}

/// The DynamoDB implementation (item layout in [`crate::tables`]).
#[derive(Debug, Clone)]
pub struct DynamoGroupStore {
    pub(super) groups: Resources<StoredGroup>,
}

impl DynamoGroupStore {
    pub fn new(client: impl Into<crate::lazy::DynamoDb>, table: impl Into<String>) -> Self {
        Self {
            groups: Resources::new(client, table),
        }
    }

    /// Logs `entry` on its own (one `PutItem`), for a change whose
    /// transactions had no room for it; a failure only logs: the change
    /// stands.
    pub(super) async fn log_apart(&self, tenant: &TenantId, entry: &ActivityEntry) {
        if let Err(e) = crate::activity::put(&self.groups.table, tenant, entry).await {
            tracing::warn!(%tenant, error = %format_args!("{e:#}"), "could not log a membership change");
        }
    }

    /// The activity entry of a membership change without an attribute write.
    fn members_entry(
        origin: Origin,
        group: &ResourceId,
        name: Option<&str>,
        members: &MemberWrites,
    ) -> ActivityEntry {
        let mut entry = ActivityEntry::now(
            origin.source(),
            origin.operation,
            <StoredGroup as Resource>::TYPE,
            Outcome::Updated,
        )
        .with_summary(format!(
            "members +{} -{}",
            members.add.len(),
            members.remove.len()
        ));
        entry.id = Some(group.as_str().to_owned());
        entry.name = name.map(str::to_owned);
        entry
    }

    /// A rename changes every member's group names (the sync maps them as
    /// written): the write of `stored` over `current` marks the group.
    fn mark_rename(
        &self,
        w: &mut ClaimedWrite,
        tenant: &TenantId,
        current: &StoredGroup,
        stored: &StoredGroup,
    ) -> Result<(), StoreError> {
        if current.group.display_name.as_str() != stored.group.display_name.as_str() {
            let subject = format!("{}{}", dynamo::GROUP_MARK, stored.id);
            w.push(
                self.groups
                    .table
                    .put(dynamo::membership_mark(tenant, subject), None)?,
            );
        }
        Ok(())
    }
}

#[async_trait]
impl GroupStore for DynamoGroupStore {
    async fn create(
        &self,
        tenant: &TenantId,
        group: GroupResource,
        origin: Origin,
    ) -> Result<StoredGroup, StoreError> {
        self.groups
            .create(tenant, group, origin, |_, _| Ok(()))
            .await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<StoredGroup>, StoreError> {
        self.groups.get(tenant, id).await
    }

    async fn get_many(
        &self,
        tenant: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<StoredGroup>, StoreError> {
        self.groups.get_many(tenant, ids).await
    }

    async fn replace(
        &self,
        tenant: &TenantId,
        current: &StoredGroup,
        next: GroupResource,
        origin: Origin,
    ) -> Result<StoredGroup, StoreError> {
        self.groups
            .replace(tenant, current, next, origin, |w, stored| {
                self.mark_rename(w, tenant, current, stored)
            })
            .await
    }

    async fn touch(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
        expected: Option<u64>,
    ) -> Result<StoredGroup, StoreError> {
        // A plain UpdateItem, not a transaction: concurrent membership PATCHes
        // each bump the version without conflicting with one another.
        let (names, values) = version_bump()?;
        let mut update = self
            .groups
            .table
            .client
            .update_item()
            .table_name(&self.groups.table.name)
            .set_key(Some(Resources::<StoredGroup>::key(tenant, id)))
            .update_expression(VERSION_BUMP)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        update = match expected {
            Some(v) => update
                .condition_expression("#v = :expected")
                .expression_attribute_values(":expected", dynamo::n(v)),
            None => update.condition_expression("attribute_exists(pk)"),
        };
        match dynamo::conditional(update.send().await)? {
            Some(out) => Resources::from_item(&out.attributes.unwrap_or_default()),
            None => Err(self.groups.lost_race(tenant, id).await),
        }
    }

    async fn change_members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        members: &MemberWrites,
        origin: Origin,
    ) -> Result<MembersChange, StoreError> {
        let entry = Self::members_entry(origin, group, None, members);
        self.change_in_one(tenant, group, members, &entry).await
    }

    async fn update(
        &self,
        tenant: &TenantId,
        current: &StoredGroup,
        next: Option<GroupResource>,
        members: &MemberWrites,
        expect_version: bool,
        origin: Origin,
    ) -> Result<GroupUpdate, StoreError> {
        let id = &current.id;
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
            let next = next.unwrap_or_else(|| current.group.clone());
            let (stored, mut w) = self.groups.replacement(tenant, current, next, origin)?;
            self.mark_rename(&mut w, tenant, current, &stored)?;
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
        // Members only: the entry rides on the first membership write if it
        // has room; it never displaces a member (that would split a change
        // one transaction holds).
        let mut apart = None;
        if written.is_none() {
            let name = Some(current.group.display_name.as_str());
            let entry = Self::members_entry(origin, id, name, members);
            if first.len() < dynamo::TX_MAX_ITEMS {
                first
                    .head
                    .push(self.groups.table.put(entry.to_item(tenant), None)?);
            } else {
                apart = Some(entry);
            }
        }
        // The request's first write: if it fails, nothing was written.
        if let Committed::Gone(users) = self.commit(tenant, id, &first).await? {
            return Ok(GroupUpdate::NotUsers(users));
        }
        let all_in_first = units.is_empty();
        // Past its first write the request must converge: a user deleted
        // since the caller checked it is left out, as if deleted right after
        // being added.
        self.commit_rest(tenant, id, units).await?;
        if let Some(entry) = apart {
            self.log_apart(tenant, &entry).await;
        }
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
            return Ok(Some(Resources::deletion_of(g, None)));
        }
        // Memberships of a group that is gone: an interrupted delete.
        let t = &self.groups.table;
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
        origin: Origin,
    ) -> Result<Deleted, StoreError> {
        let t = &self.groups.table;
        let Some(current) = target.resource() else {
            self.remove_all_members(tenant, &target.id).await?;
            return Ok(Deleted::Done);
        };
        let id = current.id.as_str();
        let mut w = self.groups.deletion(tenant, current, origin)?;
        // Per member: the membership, its mirror and the member's mark. The
        // first members that fit go in the transaction that decides the
        // delete, which for most groups is all of them; it keeps one item
        // for the cleanup entry of a group that does not fit.
        let room = (dynamo::TX_MAX_ITEMS - w.len() - 1) / 3;
        let members = dynamo::query_sort_keys(
            &t.client,
            &t.name,
            dynamo::members_pk(tenant, id),
            Some(room + 1),
        )
        .await?;
        for u in members.iter().take(room) {
            for item in t.unjoin(tenant, id, u)? {
                w.push(item);
            }
            w.push(t.mark_user(tenant, u)?);
        }
        let leftover = members.len() > room;
        if leftover {
            // The rest is removed in the background (`finish_deletes`): the
            // request is answered now, whatever the group's size. Reads skip
            // groups that are gone, and a membership PATCH racing this finds
            // the group gone when it bumps the version.
            w.push(t.put(
                dynamo::cleanup_item(tenant, dynamo::CLEANUP_GROUP, id),
                None,
            )?);
        }
        self.groups.decide_delete(tenant, w, &current.id).await?;
        Ok(if leftover {
            Deleted::CleanupPending
        } else {
            Deleted::Done
        })
    }

    async fn finish_deletes(&self, tenant: &TenantId) -> Result<usize, StoreError> {
        let t = &self.groups.table;
        let mut finished = 0;
        for (sk, group) in dynamo::pending_cleanups(t, tenant, dynamo::CLEANUP_GROUP).await? {
            let Some(group) = ResourceId::parse(&group) else {
                continue;
            };
            self.remove_all_members(tenant, &group).await?;
            dynamo::drop_cleanup(t, tenant, &sk).await?;
            tracing::info!(%tenant, %group, "memberships of a deleted group removed");
            finished += 1;
        }
        Ok(finished)
    }

    async fn find_by_display_name(
        &self,
        tenant: &TenantId,
        display_name: &str,
    ) -> Result<Option<StoredGroup>, StoreError> {
        self.groups.find_by_name(tenant, display_name).await
    }

    async fn find_by_external_id(
        &self,
        tenant: &TenantId,
        external_id: &str,
    ) -> Result<Option<StoredGroup>, StoreError> {
        self.groups.find_by_external_id(tenant, external_id).await
    }

    async fn count(&self, tenant: &TenantId) -> Result<usize, StoreError> {
        self.groups.count(tenant).await
    }

    async fn nth_id(&self, tenant: &TenantId, n: usize) -> Result<Option<ResourceId>, StoreError> {
        self.groups.nth_id(tenant, n).await
    }

    async fn page(
        &self,
        tenant: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<StoredGroup>, Option<ResourceId>), StoreError> {
        self.groups.page(tenant, after, limit).await
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
        dynamo::delete_memberships(&self.groups.table, tenant, &pairs, true).await
    }

    async fn remove_all_members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
    ) -> Result<(), StoreError> {
        /// Members read and deleted per round: bounds memory and request size.
        const ROUND: usize = 1000;
        let t = &self.groups.table;
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
        let members = dynamo::members_pk(tenant, group.as_str());
        self.groups.table.sort_key_ids(members, limit).await
    }

    async fn members_among(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        users: &[ResourceId],
    ) -> Result<Vec<ResourceId>, StoreError> {
        self.groups
            .table
            .existing_ids(users, |u| {
                dynamo::member_key(tenant, group.as_str(), u.as_str())
            })
            .await
    }

    async fn groups_of(
        &self,
        tenant: &TenantId,
        user: &ResourceId,
    ) -> Result<Vec<ResourceId>, StoreError> {
        // The membership head's sort key is no id: left out.
        let groups = dynamo::member_of_pk(tenant, user.as_str());
        self.groups.table.sort_key_ids(groups, None).await
    }

    async fn member_page(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<ResourceId>, Option<ResourceId>), StoreError> {
        let (items, next) = self
            .groups
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
            .groups
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
        self.groups
            .table
            .delete_if_unchanged(
                key(pk(tenant, dynamo::MARKS), change.key()),
                dynamo::MARK,
                s(change.mark.as_str()),
            )
            .await?;
        Ok(())
    }
}
