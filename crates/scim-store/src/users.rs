//! Users: the [`UserStore`] capability and its DynamoDB implementation.
//!
//! Every write is one `TransactWriteItems` that puts or deletes the user item
//! together with its uniqueness claims (`userName`, `externalId`), its email
//! index items and the tenant's user counter, so the directory never holds a
//! half-written user and the counter always equals the number of users.

use std::fmt;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use scim_proto::ScimResult;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::resource::{Meta, UserResource};

use crate::activity::Origin;
use crate::deletion::{Deleted, Deletion};
use crate::dynamo::{self, Cond, ID, Item, get_opt_s, key, pk, s};
use crate::error::{StoreError, Unique};
use crate::resources::{Resource, Resources};

/// A user as stored: id, metadata and the validated resource.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredUser {
    pub id: ResourceId,
    pub meta: Meta,
    pub user: UserResource,
}

/// What the SCIM Users endpoints need from storage.
#[async_trait]
pub trait UserStore: Send + Sync + fmt::Debug {
    /// Stores a new user; `Conflict` when its userName or externalId is taken.
    async fn create(
        &self,
        tenant: &TenantId,
        user: UserResource,
        origin: Origin,
    ) -> Result<StoredUser, StoreError>;
    /// Strongly consistent read by id.
    async fn get(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<StoredUser>, StoreError>;
    /// Replaces `current` with `next` if nobody changed it since it was read
    /// (`VersionMismatch` otherwise, `NotFound` if it was deleted). A user
    /// made inactive leaves a deprovisioning entry (see
    /// [`UserStore::deprovisions`]).
    async fn replace(
        &self,
        tenant: &TenantId,
        current: &StoredUser,
        next: UserResource,
        origin: Origin,
    ) -> Result<StoredUser, StoreError>;
    /// Reads user `id` for a DELETE (strongly consistent): the user, or
    /// what is left of an interrupted delete of it (see [`crate::deletion`]);
    /// `None` when there is nothing to delete.
    async fn get_for_delete(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<Deletion<StoredUser>>, StoreError>;
    /// Deletes the user `target` read, with its lookup items and its
    /// memberships, if nobody changed it or added it to a group since
    /// (`VersionMismatch` otherwise, `NotFound` if it is gone; nothing is
    /// written either way); or finishes an interrupted delete. Leaves a
    /// deprovisioning entry.
    async fn delete(
        &self,
        tenant: &TenantId,
        target: &Deletion<StoredUser>,
        origin: Origin,
    ) -> Result<Deleted, StoreError>;
    /// Users disabled or deleted whose member may still be active: the
    /// deprovisioning entries their writes left, oldest first.
    async fn deprovisions(&self, tenant: &TenantId) -> Result<Vec<Deprovision>, StoreError>;
    /// Drops a deprovisioning entry once handled, unless the user was
    /// disabled or deleted again since it was read (then it stays).
    async fn drop_deprovision(
        &self,
        tenant: &TenantId,
        entry: &Deprovision,
    ) -> Result<(), StoreError>;
    /// Removes the memberships that user deletes left to the background
    /// (resumable); how many deletes it finished.
    async fn finish_deletes(&self, tenant: &TenantId) -> Result<usize, StoreError>;
    /// Lookup by `userName`, ignoring case (strongly consistent).
    async fn find_by_user_name(
        &self,
        tenant: &TenantId,
        user_name: &str,
    ) -> Result<Option<StoredUser>, StoreError>;
    /// Lookup by `externalId`, case-exact (strongly consistent).
    async fn find_by_external_id(
        &self,
        tenant: &TenantId,
        external_id: &str,
    ) -> Result<Option<StoredUser>, StoreError>;
    /// Users having an email with this value, ignoring case (strongly consistent).
    async fn find_by_email(
        &self,
        tenant: &TenantId,
        email: &str,
    ) -> Result<Vec<StoredUser>, StoreError>;
    /// Number of users in the tenant (one item read).
    async fn count(&self, tenant: &TenantId) -> Result<usize, StoreError>;
    /// Up to `limit` users in id order, starting after `after`. The second
    /// value is the id to continue from, if there may be more.
    async fn page(
        &self,
        tenant: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<StoredUser>, Option<ResourceId>), StoreError>;
    /// The id of the `n`th user in id order (n ≥ 1), reading keys only;
    /// `None` when the tenant has fewer users.
    async fn nth_id(&self, tenant: &TenantId, n: usize) -> Result<Option<ResourceId>, StoreError>;
    /// The subset of `ids` that are users of the tenant (strongly consistent).
    async fn existing(
        &self,
        tenant: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<ResourceId>, StoreError>;
    /// Users by id, skipping missing ones, in id order (strongly consistent).
    async fn get_many(
        &self,
        tenant: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<StoredUser>, StoreError>;
    /// Users changed since their last [`UserStore::clear_dirty`], in id order,
    /// after `after`: what an incremental Members sync must look at.
    async fn dirty(
        &self,
        tenant: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<DirtyUser>, Option<ResourceId>), StoreError>;
    /// Marks a change as synced, unless the user changed again since
    /// `dirty` was read (then it stays dirty for the next sync).
    async fn clear_dirty(&self, tenant: &TenantId, dirty: &DirtyUser) -> Result<(), StoreError>;
}

/// A user disabled or deleted since its member was last synced: the user
/// write's entry in the tenant's `CLEANUP` partition (sort key
/// `CLEANUP#D#<user id>`), which the directory stream hands to the sync
/// function for immediate deprovisioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprovision {
    pub user: ResourceId,
    /// The user's version at the write (the entry is dropped only if it
    /// still holds this one).
    pub version: u64,
}

/// A user changed since the last sync: its version at that change, and
/// whether the change was a deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyUser {
    pub id: ResourceId,
    pub version: u64,
    pub deleted: bool,
}

const USER: &str = "USER";
const USER_NAME: &str = "USERNAME";
const USER_EXT: &str = "USEREXT";
/// The dirty set: one item per user changed since the last sync, written in
/// the same transaction as the change, so no change can be missed.
const DIRTY: &str = "DIRTY";

fn email_pk(tenant: &TenantId, email_key: &str) -> String {
    pk(tenant, &format!("EMAIL#{email_key}"))
}

impl Resource for StoredUser {
    type Doc = UserResource;
    const KIND: &'static str = USER;
    const NOUN: &'static str = "user";
    const COUNTER: &'static str = dynamo::USERS_COUNTER;
    const NAME_CLAIM: &'static str = USER_NAME;
    const NAME_UNIQUE: Unique = Unique::UserName;
    const EXT_CLAIM: &'static str = USER_EXT;
    const TYPE: &'static str = "User";

    fn new(id: ResourceId, meta: Meta, user: UserResource) -> Self {
        Self { id, meta, user }
    }
    fn id(&self) -> &ResourceId {
        &self.id
    }
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn doc(&self) -> &UserResource {
        &self.user
    }
    fn json(user: &UserResource) -> &serde_json::Map<String, serde_json::Value> {
        &user.doc
    }
    fn from_json(json: serde_json::Map<String, serde_json::Value>) -> ScimResult<UserResource> {
        UserResource::from_doc(json)
    }
    fn name_key(user: &UserResource) -> String {
        user.user_name.key()
    }
    fn name(user: &UserResource) -> &str {
        user.user_name.as_str()
    }
    fn active(user: &UserResource) -> Option<bool> {
        Some(user.active)
    }
    fn external_id(user: &UserResource) -> Option<&str> {
        user.external_id.as_ref().map(|e| e.as_str())
    }
    fn put_attributes(user: &UserResource, item: &mut Item) {
        item.insert("userName".into(), s(user.user_name.as_str()));
        item.insert("active".into(), AttributeValue::Bool(user.active));
    }
}

/// The DynamoDB implementation (see [`crate::tables`] for the item layout).
#[derive(Debug, Clone)]
pub struct DynamoUserStore {
    users: Resources<StoredUser>,
}

impl DynamoUserStore {
    pub fn new(client: impl Into<crate::lazy::DynamoDb>, table: impl Into<String>) -> Self {
        Self {
            users: Resources::new(client, table),
        }
    }

    /// The deprovisioning entry of a user disabled or deleted at `version`.
    fn deprovision_item(tenant: &TenantId, id: &ResourceId, version: u64) -> Item {
        let mut item = dynamo::cleanup_item(tenant, dynamo::CLEANUP_DEPROVISION, id.as_str());
        item.insert("version".into(), dynamo::n(version));
        item
    }

    /// Marks the user changed (at `version`) for the Members sync.
    fn dirty_item(tenant: &TenantId, id: &ResourceId, version: u64, deleted: bool) -> Item {
        let mut item = key(pk(tenant, DIRTY), id.as_str());
        item.insert("version".into(), dynamo::n(version));
        item.insert("deleted".into(), AttributeValue::Bool(deleted));
        item
    }

    fn email_item(tenant: &TenantId, email_key: &str, id: &ResourceId) -> Item {
        let mut item = key(email_pk(tenant, email_key), id.as_str());
        item.insert(ID.into(), s(id.as_str()));
        item
    }

    /// The user's groups (membership mirrors), without its membership head.
    /// The user's group ids (at most `limit`, or all).
    async fn group_ids(
        &self,
        tenant: &TenantId,
        id: &str,
        limit: Option<usize>,
    ) -> Result<Vec<String>, StoreError> {
        let t = &self.users.table;
        // The membership head shares the partition: one key more.
        let mut groups = dynamo::query_sort_keys(
            &t.client,
            &t.name,
            dynamo::member_of_pk(tenant, id),
            limit.map(|l| l + 1),
        )
        .await?;
        groups.retain(|g| g != dynamo::MEMBERSHIP_HEAD);
        Ok(groups)
    }

    /// The end of a delete that did not fit one transaction: the user is
    /// gone (no group add can name it any more); its remaining memberships
    /// go now, and its membership head (the record of the unfinished delete)
    /// last.
    async fn remove_memberships(&self, tenant: &TenantId, id: &str) -> Result<(), StoreError> {
        let t = &self.users.table;
        let pairs: Vec<(String, String)> = self
            .group_ids(tenant, id, None)
            .await?
            .into_iter()
            .map(|g| (g, id.to_owned()))
            .collect();
        // No membership marks: the user's own deletion tells the sync.
        dynamo::delete_memberships(t, tenant, &pairs, false).await?;
        t.client
            .delete_item()
            .table_name(&t.name)
            .set_key(Some(dynamo::membership_head(tenant, id)))
            .send()
            .await
            .map_err(crate::error::from_sdk)?;
        Ok(())
    }
}

#[async_trait]
impl UserStore for DynamoUserStore {
    async fn create(
        &self,
        tenant: &TenantId,
        user: UserResource,
        origin: Origin,
    ) -> Result<StoredUser, StoreError> {
        let t = &self.users.table;
        self.users
            .create(tenant, user, origin, |w, stored| {
                for e in &stored.user.email_keys {
                    w.push(t.put(Self::email_item(tenant, e, &stored.id), None)?);
                }
                w.push(t.put(Self::dirty_item(tenant, &stored.id, 1, false), None)?);
                Ok(())
            })
            .await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<StoredUser>, StoreError> {
        self.users.get(tenant, id).await
    }

    async fn replace(
        &self,
        tenant: &TenantId,
        current: &StoredUser,
        next: UserResource,
        origin: Origin,
    ) -> Result<StoredUser, StoreError> {
        let t = &self.users.table;
        let old = &current.user;
        self.users
            .replace(tenant, current, next, origin, |w, stored| {
                let (new, id) = (&stored.user, stored.id.as_str());
                for e in old
                    .email_keys
                    .iter()
                    .filter(|e| !new.email_keys.contains(e))
                {
                    w.push(t.delete(key(email_pk(tenant, e), id), None)?);
                }
                for e in new
                    .email_keys
                    .iter()
                    .filter(|e| !old.email_keys.contains(e))
                {
                    w.push(t.put(Self::email_item(tenant, e, &stored.id), None)?);
                }
                let version = stored.meta.version;
                w.push(t.put(Self::dirty_item(tenant, &stored.id, version, false), None)?);
                if old.active && !new.active {
                    w.push(t.put(Self::deprovision_item(tenant, &stored.id, version), None)?);
                }
                Ok(())
            })
            .await
    }

    async fn get_for_delete(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<Deletion<StoredUser>>, StoreError> {
        // The user and its membership head in one read, before the delete
        // reads the user's groups (see dynamo::membership_head).
        let head_key = dynamo::membership_head(tenant, id.as_str());
        let user_key = Resources::<StoredUser>::key(tenant, id);
        let items = self
            .users
            .table
            .get_items(vec![user_key, head_key.clone()])
            .await?;
        let is_head = |item: &&Item| item.get(crate::tables::PK) == head_key.get(crate::tables::PK);
        let head = items.iter().find(is_head);
        let user = items.iter().find(|i| !is_head(i));
        match (user, head) {
            (Some(item), head) => {
                let guard = head
                    .and_then(|h| get_opt_s(h, dynamo::JOINED))
                    .map(str::to_owned);
                Ok(Some(Resources::deletion_of(
                    Resources::from_item(item)?,
                    guard,
                )))
            }
            (None, Some(head)) if head.contains_key(dynamo::UNFINISHED) => Ok(Some(
                Deletion::unfinished(id.clone(), Some(dynamo::read_meta(head)?)),
            )),
            (None, _) => Ok(None),
        }
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        target: &Deletion<StoredUser>,
        origin: Origin,
    ) -> Result<Deleted, StoreError> {
        let t = &self.users.table;
        let Some(current) = target.resource() else {
            self.remove_memberships(tenant, target.id.as_str()).await?;
            return Ok(Deleted::Done);
        };
        let (u, id) = (&current.user, current.id.as_str());
        // Read after the membership head: a group add since then changed the
        // head's token and fails the transaction below. Only as many as one
        // transaction could take (and one more, to know): the rest, however
        // many, go in the background.
        let groups = self
            .group_ids(tenant, id, Some(dynamo::TX_MAX_ITEMS / 2))
            .await?;
        let mut w = self.users.deletion(tenant, current, origin)?;
        for e in &u.email_keys {
            w.push(t.delete(key(email_pk(tenant, e), id), None)?);
        }
        let version = current.meta.version + 1;
        w.push(t.put(Self::dirty_item(tenant, &current.id, version, true), None)?);
        w.push(t.put(Self::deprovision_item(tenant, &current.id, version), None)?);
        let head = dynamo::membership_head(tenant, id);
        // The head goes with the user, unless memberships are left after
        // this transaction: then it records the unfinished delete, and a
        // cleanup entry hands the rest to the background.
        let fits_all = w.len() + 1 + 2 * groups.len() <= dynamo::TX_MAX_ITEMS;
        if fits_all {
            w.push(t.delete(head, Some(Cond::unchanged(dynamo::JOINED, target.guard())))?);
        } else {
            let mut record = Item::new();
            dynamo::put_meta(&mut record, &current.meta)?;
            let mut set: Vec<(&str, AttributeValue)> = record
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            set.push((dynamo::UNFINISHED, AttributeValue::Bool(true)));
            w.push(t.update(
                head,
                set,
                Some(Cond::unchanged(dynamo::JOINED, target.guard())),
            )?);
        }
        if !fits_all {
            w.push(t.put(dynamo::cleanup_item(tenant, dynamo::CLEANUP_USER, id), None)?);
        }
        let room = (dynamo::TX_MAX_ITEMS - w.len()) / 2;
        // No membership marks: the user's own deletion tells the sync.
        for g in groups.iter().take(room) {
            for item in t.unjoin(tenant, g, id)? {
                w.push(item);
            }
        }
        self.users.decide_delete(tenant, w, &current.id).await?;
        Ok(if fits_all {
            Deleted::Done
        } else {
            Deleted::CleanupPending
        })
    }

    async fn finish_deletes(&self, tenant: &TenantId) -> Result<usize, StoreError> {
        let t = &self.users.table;
        let mut finished = 0;
        for (sk, user) in dynamo::pending_cleanups(t, tenant, dynamo::CLEANUP_USER).await? {
            self.remove_memberships(tenant, &user).await?;
            dynamo::drop_cleanup(t, tenant, &sk).await?;
            tracing::info!(%tenant, %user, "memberships of a deleted user removed");
            finished += 1;
        }
        Ok(finished)
    }

    async fn deprovisions(&self, tenant: &TenantId) -> Result<Vec<Deprovision>, StoreError> {
        let t = &self.users.table;
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let page = dynamo::partition_query(&t.client, &t.name, pk(tenant, dynamo::CLEANUP))
                .key_condition_expression("pk = :pk AND begins_with(sk, :d)")
                .expression_attribute_values(":d", s(dynamo::CLEANUP_DEPROVISION))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(crate::error::from_sdk)?;
            for item in page.items() {
                let sk = dynamo::get_s(item, crate::tables::SK)?;
                let user = sk
                    .strip_prefix(dynamo::CLEANUP_DEPROVISION)
                    .and_then(ResourceId::parse)
                    .ok_or_else(|| {
                        StoreError::Internal(format!("bad deprovisioning entry {sk:?}").into())
                    })?;
                let version = dynamo::get_u64(item, "version")?;
                found.push(Deprovision { user, version });
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(found);
            }
        }
    }

    async fn drop_deprovision(
        &self,
        tenant: &TenantId,
        entry: &Deprovision,
    ) -> Result<(), StoreError> {
        let key = dynamo::cleanup_item(tenant, dynamo::CLEANUP_DEPROVISION, entry.user.as_str());
        self.users
            .table
            .delete_if_unchanged(key, "version", dynamo::n(entry.version))
            .await?;
        Ok(())
    }

    async fn find_by_user_name(
        &self,
        tenant: &TenantId,
        user_name: &str,
    ) -> Result<Option<StoredUser>, StoreError> {
        self.users.find_by_name(tenant, user_name).await
    }

    async fn find_by_external_id(
        &self,
        tenant: &TenantId,
        external_id: &str,
    ) -> Result<Option<StoredUser>, StoreError> {
        self.users.find_by_external_id(tenant, external_id).await
    }

    async fn find_by_email(
        &self,
        tenant: &TenantId,
        email: &str,
    ) -> Result<Vec<StoredUser>, StoreError> {
        let email_key = email.to_lowercase();
        // Stored emails are non-empty and at most MAX_NAME_LEN bytes once
        // lowercased; any other value has no index partition to read.
        if email_key.is_empty() || email_key.len() > scim_proto::ids::MAX_NAME_LEN {
            return Ok(Vec::new());
        }
        let t = &self.users.table;
        let ids =
            dynamo::query_sort_keys(&t.client, &t.name, email_pk(tenant, &email_key), None).await?;
        let ids: Vec<ResourceId> = ids.iter().filter_map(|id| ResourceId::parse(id)).collect();
        let mut users = self.get_many(tenant, &ids).await?;
        // The index item and the user are two reads: keep users that still
        // have the email.
        users.retain(|u| u.user.email_keys.contains(&email_key));
        Ok(users)
    }

    async fn count(&self, tenant: &TenantId) -> Result<usize, StoreError> {
        self.users.count(tenant).await
    }

    async fn page(
        &self,
        tenant: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<StoredUser>, Option<ResourceId>), StoreError> {
        self.users.page(tenant, after, limit).await
    }

    async fn nth_id(&self, tenant: &TenantId, n: usize) -> Result<Option<ResourceId>, StoreError> {
        self.users.nth_id(tenant, n).await
    }

    async fn existing(
        &self,
        tenant: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<ResourceId>, StoreError> {
        self.users.existing(tenant, ids).await
    }

    async fn get_many(
        &self,
        tenant: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<StoredUser>, StoreError> {
        self.users.get_many(tenant, ids).await
    }

    async fn dirty(
        &self,
        tenant: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<DirtyUser>, Option<ResourceId>), StoreError> {
        let (items, next) = self
            .users
            .table
            .page(pk(tenant, DIRTY), after.map(ResourceId::as_str), limit)
            .await?;
        let dirty = items
            .iter()
            .map(|item| {
                Ok(DirtyUser {
                    id: dynamo::read_id(item)?,
                    version: dynamo::get_u64(item, "version")?,
                    deleted: matches!(item.get("deleted"), Some(AttributeValue::Bool(true))),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((dirty, next.and_then(|n| ResourceId::parse(&n))))
    }

    async fn clear_dirty(&self, tenant: &TenantId, dirty: &DirtyUser) -> Result<(), StoreError> {
        // Changed again since read (or already cleared): kept for the next sync.
        self.users
            .table
            .delete_if_unchanged(
                key(pk(tenant, DIRTY), dirty.id.as_str()),
                "version",
                dynamo::n(dirty.version),
            )
            .await?;
        Ok(())
    }
}
