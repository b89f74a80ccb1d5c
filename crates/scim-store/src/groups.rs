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

use std::collections::BTreeSet;
use std::fmt;

use async_trait::async_trait;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::resource::{GroupResource, Meta};

use crate::claims::{Claim, ClaimedWrite};
use crate::dynamo::{self, Item, Table, key, pk, s};
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
    /// Deletes the group and all its membership items.
    async fn delete(&self, tenant: &TenantId, current: &StoredGroup) -> Result<(), StoreError>;
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

    async fn delete(&self, tenant: &TenantId, current: &StoredGroup) -> Result<(), StoreError> {
        // Members first, in bounded batches: a DELETE interrupted half-way
        // leaves a smaller group that a retried DELETE finishes.
        self.remove_all_members(tenant, &current.id).await?;
        let (t, g, id) = (&self.table, &current.group, current.id.as_str());
        let mut w = ClaimedWrite::new(
            t.delete_versioned(Self::group_key(tenant, &current.id), current.meta.version)?,
        );
        w.change_claims(t, tenant, id, &Self::claims(g), &[])?;
        w.push(t.count_delta(tenant, GROUPS_COUNTER, -1)?);
        if w.commit_delete(t).await? {
            Ok(())
        } else {
            Err(self.lost_race(tenant, &current.id).await)
        }
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
        // A batch may not name an item twice.
        let users: BTreeSet<&ResourceId> = users.iter().collect();
        if users.is_empty() {
            return Ok(());
        }
        let t = &self.table;
        let mut requests = Vec::with_capacity(users.len() * 3);
        requests.extend(dynamo::user_marks(
            tenant,
            users.iter().map(|u| u.as_str()),
        )?);
        for u in &users {
            let mut m = dynamo::member_key(tenant, group.as_str(), u.as_str());
            m.insert("group".into(), s(group.as_str()));
            requests.push(dynamo::put_request(m)?);
            let mut r = dynamo::member_of_key(tenant, u.as_str(), group.as_str());
            r.insert("user".into(), s(u.as_str()));
            requests.push(dynamo::put_request(r)?);
        }
        dynamo::batch_write(&t.client, &t.name, requests).await?;
        // A user deleted between the caller's existence check and this write
        // would leave a dangling membership: look again and undo those.
        let still: BTreeSet<String> = t
            .get_unique(users.iter().copied(), |u| Self::user_key(tenant, u))
            .await?
            .iter()
            .filter_map(|i| dynamo::get_opt_s(i, crate::tables::SK).map(str::to_owned))
            .collect();
        let gone: Vec<(String, String)> = users
            .iter()
            .filter(|u| !still.contains(u.as_str()))
            .map(|u| (group.as_str().to_owned(), u.as_str().to_owned()))
            .collect();
        if !gone.is_empty() {
            // The user is gone: its own deletion tells the sync.
            dynamo::delete_memberships(t, tenant, &gone, false).await?;
            return Err(StoreError::NotFound);
        }
        Ok(())
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
