//! Users: the [`UserStore`] capability and its DynamoDB implementation.
//!
//! Every write is one `TransactWriteItems` that puts or deletes the user item
//! together with its uniqueness claims (`userName`, `externalId`), its email
//! index items and the tenant's user counter, so the directory never holds a
//! half-written user and the counter always equals the number of users.

use std::fmt;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::resource::{Meta, UserResource};

use crate::claims::{Claim, ClaimedWrite};
use crate::deletion::{Deletion, Target};
use crate::dynamo::{self, ID, Item, Table, get_opt_s, key, pk, s};
use crate::error::{StoreError, Unique};

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
    async fn create(&self, tenant: &TenantId, user: UserResource)
    -> Result<StoredUser, StoreError>;
    /// Strongly consistent read by id.
    async fn get(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<StoredUser>, StoreError>;
    /// Replaces `current` with `next` if nobody changed it since it was read
    /// (`VersionMismatch` otherwise, `NotFound` if it was deleted).
    async fn replace(
        &self,
        tenant: &TenantId,
        current: &StoredUser,
        next: UserResource,
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
    /// written either way); or finishes an interrupted delete.
    async fn delete(
        &self,
        tenant: &TenantId,
        target: &Deletion<StoredUser>,
    ) -> Result<(), StoreError>;
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
/// Tenant counter of users (on the stats item).
const USERS_COUNTER: &str = "users";

fn email_pk(tenant: &TenantId, email_key: &str) -> String {
    pk(tenant, &format!("EMAIL#{email_key}"))
}

/// The DynamoDB implementation (see [`crate::tables`] for the item layout).
#[derive(Debug, Clone)]
pub struct DynamoUserStore {
    table: Table,
}

impl DynamoUserStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            table: Table {
                client,
                name: table.into(),
            },
        }
    }

    fn user_key(tenant: &TenantId, id: &ResourceId) -> Item {
        key(pk(tenant, USER), id.as_str())
    }

    fn to_item(tenant: &TenantId, stored: &StoredUser) -> Result<Item, StoreError> {
        let u = &stored.user;
        let mut item = Self::user_key(tenant, &stored.id);
        let doc = serde_json::to_string(&u.doc).map_err(StoreError::internal)?;
        item.insert("doc".into(), s(doc));
        dynamo::put_meta(&mut item, &stored.meta)?;
        item.insert("userName".into(), s(u.user_name.as_str()));
        item.insert("active".into(), AttributeValue::Bool(u.active));
        if let Some(ext) = &u.external_id {
            item.insert("externalId".into(), s(ext.as_str()));
        }
        Ok(item)
    }

    fn from_item(item: &Item) -> Result<StoredUser, StoreError> {
        let id = dynamo::read_id(item)?;
        // Stored documents were validated on write; re-validation only fails
        // if validation rules tightened since, which we treat as corruption.
        let user = UserResource::from_doc(dynamo::read_doc(item)?).map_err(|e| {
            StoreError::Internal(format!("stored user {id} no longer validates: {e}"))
        })?;
        let meta = dynamo::read_meta(item)?;
        Ok(StoredUser { id, meta, user })
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

    async fn find_by_claim(
        &self,
        tenant: &TenantId,
        kind: &str,
        value: &str,
    ) -> Result<Option<StoredUser>, StoreError> {
        match self.table.claimed_by(pk(tenant, kind), value).await? {
            Some(id) => match ResourceId::parse(&id) {
                Some(id) => self.get(tenant, &id).await,
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// The uniqueness claims `user` holds.
    fn claims(user: &UserResource) -> Vec<Claim> {
        let mut claims = vec![Claim {
            kind: USER_NAME,
            value: user.user_name.key(),
            unique: Unique::UserName,
        }];
        if let Some(ext) = &user.external_id {
            claims.push(Claim {
                kind: USER_EXT,
                value: ext.as_str().to_owned(),
                unique: Unique::ExternalId,
            });
        }
        claims
    }

    /// The user's groups (membership mirrors), without its membership head.
    async fn group_ids(&self, tenant: &TenantId, id: &str) -> Result<Vec<String>, StoreError> {
        let t = &self.table;
        let mut groups =
            dynamo::query_sort_keys(&t.client, &t.name, dynamo::member_of_pk(tenant, id), None)
                .await?;
        groups.retain(|g| g != dynamo::MEMBERSHIP_HEAD);
        Ok(groups)
    }

    /// The end of a delete that did not fit one transaction: the user is
    /// gone (no group add can name it any more); its remaining memberships
    /// go now, and its membership head (the record of the unfinished delete)
    /// last.
    async fn remove_memberships(&self, tenant: &TenantId, id: &str) -> Result<(), StoreError> {
        let t = &self.table;
        let pairs: Vec<(String, String)> = self
            .group_ids(tenant, id)
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

    /// After a failed conditional write on the user item: changed or gone?
    async fn lost_race(&self, tenant: &TenantId, id: &ResourceId) -> StoreError {
        match self.get(tenant, id).await {
            Ok(Some(_)) => StoreError::VersionMismatch,
            Ok(None) => StoreError::NotFound,
            Err(e) => e,
        }
    }
}

#[async_trait]
impl UserStore for DynamoUserStore {
    async fn create(
        &self,
        tenant: &TenantId,
        user: UserResource,
    ) -> Result<StoredUser, StoreError> {
        let stored = StoredUser {
            id: ResourceId::from_uuid(uuid::Uuid::new_v4()),
            meta: Meta::new(dynamo::now()),
            user,
        };
        let (t, u, id) = (&self.table, &stored.user, stored.id.as_str());
        let mut w = ClaimedWrite::new(t.put(
            Self::to_item(tenant, &stored)?,
            Some("attribute_not_exists(pk)"),
        )?);
        let claims = Self::claims(u);
        w.change_claims(t, tenant, id, &[], &claims)?;
        for e in &u.email_keys {
            w.push(t.put(Self::email_item(tenant, e, &stored.id), None)?);
        }
        w.push(t.put(Self::dirty_item(tenant, &stored.id, 1, false), None)?);
        w.push(t.count_delta(tenant, USERS_COUNTER, 1)?);
        w.commit_create(t, tenant, id, &claims).await?;
        Ok(stored)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<StoredUser>, StoreError> {
        self.table
            .get(Self::user_key(tenant, id))
            .await?
            .map(|item| Self::from_item(&item))
            .transpose()
    }

    async fn replace(
        &self,
        tenant: &TenantId,
        current: &StoredUser,
        next: UserResource,
    ) -> Result<StoredUser, StoreError> {
        let stored = StoredUser {
            id: current.id.clone(),
            meta: current.meta.bumped(dynamo::now()),
            user: next,
        };
        let (t, old, new) = (&self.table, &current.user, &stored.user);
        let id = stored.id.as_str();
        let mut w = ClaimedWrite::new(
            t.put_versioned(Self::to_item(tenant, &stored)?, current.meta.version)?,
        );
        // A rename frees the old name in the same transaction.
        w.change_claims(t, tenant, id, &Self::claims(old), &Self::claims(new))?;
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
        w.push(t.put(
            Self::dirty_item(tenant, &stored.id, stored.meta.version, false),
            None,
        )?);
        if w.commit_replace(t).await? {
            Ok(stored)
        } else {
            Err(self.lost_race(tenant, &stored.id).await)
        }
    }

    async fn get_for_delete(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<Deletion<StoredUser>>, StoreError> {
        // The user and its membership head in one read, before the delete
        // reads the user's groups (see dynamo::membership_head).
        let head_key = dynamo::membership_head(tenant, id.as_str());
        let items = self
            .table
            .get_items(vec![Self::user_key(tenant, id), head_key.clone()])
            .await?;
        let is_head = |item: &&Item| item.get(crate::tables::PK) == head_key.get(crate::tables::PK);
        let head = items.iter().find(is_head);
        let user = items.iter().find(|i| !is_head(i));
        match (user, head) {
            (Some(item), head) => {
                let user = Self::from_item(item)?;
                let guard = head
                    .and_then(|h| get_opt_s(h, dynamo::JOINED))
                    .map(str::to_owned);
                let id = user.id.clone();
                Ok(Some(Deletion::live(id, user.meta, user, guard)))
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
    ) -> Result<(), StoreError> {
        let t = &self.table;
        let (current, guard) = match &target.target {
            Target::Live { resource, guard } => (resource, guard.as_deref()),
            Target::Unfinished => return self.remove_memberships(tenant, target.id.as_str()).await,
        };
        let (u, id) = (&current.user, current.id.as_str());
        // Read after the membership head: a group add since then changed the
        // head's token and fails the transaction below.
        let groups = self.group_ids(tenant, id).await?;
        let mut w = ClaimedWrite::new(
            t.delete_versioned(Self::user_key(tenant, &current.id), current.meta.version)?,
        );
        w.change_claims(t, tenant, id, &Self::claims(u), &[])?;
        for e in &u.email_keys {
            w.push(t.delete(key(email_pk(tenant, e), id), None)?);
        }
        w.push(t.put(
            Self::dirty_item(tenant, &current.id, current.meta.version + 1, true),
            None,
        )?);
        w.push(t.count_delta(tenant, USERS_COUNTER, -1)?);
        let head = dynamo::membership_head(tenant, id);
        // The head goes with the user, unless memberships are left after
        // this transaction: then it records the unfinished delete.
        let fits_all = w.len() + 1 + 2 * groups.len() <= dynamo::TX_MAX_ITEMS;
        if fits_all {
            w.push(t.delete_if_attr(head, dynamo::JOINED, guard)?);
        } else {
            let mut record = Item::new();
            dynamo::put_meta(&mut record, &current.meta)?;
            let mut set: Vec<(&str, AttributeValue)> = record
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            set.push((dynamo::UNFINISHED, AttributeValue::Bool(true)));
            w.push(t.update_if_attr(head, set, dynamo::JOINED, guard)?);
        }
        let room = (dynamo::TX_MAX_ITEMS - w.len()) / 2;
        // No membership marks: the user's own deletion tells the sync.
        for g in groups.iter().take(room) {
            w.push(t.delete(dynamo::member_key(tenant, g, id), None)?);
            w.push(t.delete(dynamo::member_of_key(tenant, id, g), None)?);
        }
        if !w.commit_delete(t).await? {
            return Err(self.lost_race(tenant, &current.id).await);
        }
        if fits_all {
            return Ok(());
        }
        self.remove_memberships(tenant, id).await
    }

    async fn find_by_user_name(
        &self,
        tenant: &TenantId,
        user_name: &str,
    ) -> Result<Option<StoredUser>, StoreError> {
        let wanted = user_name.to_lowercase();
        let found = self.find_by_claim(tenant, USER_NAME, &wanted).await?;
        // The claim and the user are two reads: a concurrent rename can make
        // them disagree, in which case the answer is "not found".
        Ok(found.filter(|u| u.user.user_name.key() == wanted))
    }

    async fn find_by_external_id(
        &self,
        tenant: &TenantId,
        external_id: &str,
    ) -> Result<Option<StoredUser>, StoreError> {
        let found = self.find_by_claim(tenant, USER_EXT, external_id).await?;
        Ok(found.filter(|u| {
            u.user
                .external_id
                .as_ref()
                .is_some_and(|e| e.as_str() == external_id)
        }))
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
        let t = &self.table;
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
        self.table.counter(tenant, USERS_COUNTER).await
    }

    async fn page(
        &self,
        tenant: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<StoredUser>, Option<ResourceId>), StoreError> {
        let (items, next) = self
            .table
            .page(pk(tenant, USER), after.map(ResourceId::as_str), limit)
            .await?;
        let users = items
            .iter()
            .map(Self::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((users, next.and_then(|n| ResourceId::parse(&n))))
    }

    async fn nth_id(&self, tenant: &TenantId, n: usize) -> Result<Option<ResourceId>, StoreError> {
        let key = self.table.nth_key(pk(tenant, USER), n).await?;
        Ok(key.and_then(|k| ResourceId::parse(&k)))
    }

    async fn existing(
        &self,
        tenant: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<ResourceId>, StoreError> {
        let mut found: Vec<ResourceId> = self
            .table
            .get_unique(ids, |id| Self::user_key(tenant, id))
            .await?
            .iter()
            .filter_map(|item| get_opt_s(item, crate::tables::SK).and_then(ResourceId::parse))
            .collect();
        found.sort();
        Ok(found)
    }

    async fn get_many(
        &self,
        tenant: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<StoredUser>, StoreError> {
        let mut users = self
            .table
            .get_unique(ids, |id| Self::user_key(tenant, id))
            .await?
            .iter()
            .map(Self::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        users.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(users)
    }

    async fn dirty(
        &self,
        tenant: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<DirtyUser>, Option<ResourceId>), StoreError> {
        let (items, next) = self
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
        self.table
            .delete_if_unchanged(
                key(pk(tenant, DIRTY), dirty.id.as_str()),
                "version",
                dynamo::n(dirty.version),
            )
            .await?;
        Ok(())
    }
}
