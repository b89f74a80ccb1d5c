//! Users: the [`UserStore`] capability and its DynamoDB implementation.
//!
//! Every write is one `TransactWriteItems` that puts or deletes the user item
//! together with its uniqueness claims (`userName`, `externalId`), its email
//! index items and the tenant's user counter, so the directory never holds a
//! half-written user and the counter always equals the number of users.

use std::fmt;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::resource::{Meta, UserResource};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::dynamo::{self, Item, TxFailure, get_opt_s, get_s, get_u64, key, n, pk, s};
use crate::error::{StoreError, Unique, from_sdk};

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
    /// Deletes `current` and its lookup items, if unchanged since read.
    async fn delete(&self, tenant: &TenantId, current: &StoredUser) -> Result<(), StoreError>;
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
}

const USER: &str = "USER";
const USER_NAME: &str = "USERNAME";
const USER_EXT: &str = "USEREXT";
const STATS: &str = "STATS";

fn email_pk(tenant: &TenantId, email_key: &str) -> String {
    pk(tenant, &format!("EMAIL#{email_key}"))
}

/// The DynamoDB implementation (see [`crate::tables`] for the item layout).
#[derive(Clone)]
pub struct DynamoUserStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl fmt::Debug for DynamoUserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoUserStore")
            .field("table", &self.table)
            .finish()
    }
}

impl DynamoUserStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn user_key(&self, tenant: &TenantId, id: &ResourceId) -> Item {
        key(pk(tenant, USER), id.as_str())
    }

    fn to_item(&self, tenant: &TenantId, stored: &StoredUser) -> Result<Item, StoreError> {
        let u = &stored.user;
        let mut item = self.user_key(tenant, &stored.id);
        let doc = serde_json::to_string(&u.doc).map_err(StoreError::internal)?;
        item.insert("doc".into(), s(doc));
        item.insert("version".into(), n(stored.meta.version));
        item.insert("created".into(), s(fmt_time(stored.meta.created)?));
        item.insert(
            "lastModified".into(),
            s(fmt_time(stored.meta.last_modified)?),
        );
        item.insert("userName".into(), s(u.user_name.as_str()));
        item.insert("active".into(), AttributeValue::Bool(u.active));
        if let Some(ext) = &u.external_id {
            item.insert("externalId".into(), s(ext.as_str()));
        }
        if !u.email_keys.is_empty() {
            item.insert(
                "emailKeys".into(),
                AttributeValue::L(u.email_keys.iter().map(|e| s(e.as_str())).collect()),
            );
        }
        Ok(item)
    }

    fn from_item(item: &Item) -> Result<StoredUser, StoreError> {
        let id = ResourceId::parse(get_s(item, crate::tables::SK)?)
            .ok_or_else(|| StoreError::Internal("stored user id is malformed".into()))?;
        let doc: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(get_s(item, "doc")?).map_err(StoreError::internal)?;
        // Stored documents were validated on write; re-validation only fails
        // if validation rules tightened since, which we treat as corruption.
        let user = UserResource::from_doc(doc).map_err(|e| {
            StoreError::Internal(format!("stored user {id} no longer validates: {e}"))
        })?;
        let meta = Meta {
            created: parse_time(get_s(item, "created")?)?,
            last_modified: parse_time(get_s(item, "lastModified")?)?,
            version: get_u64(item, "version")?,
        };
        Ok(StoredUser { id, meta, user })
    }

    fn put(&self, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .map_err(StoreError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn put_versioned(&self, item: Item, expected: u64) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(expected))
            .build()
            .map_err(StoreError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete_item(
        &self,
        key: Item,
        owner: Option<&ResourceId>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut del = Delete::builder().table_name(&self.table).set_key(Some(key));
        if let Some(owner) = owner {
            // Only release a claim we hold: never another user's.
            del = del
                .condition_expression("#id = :id")
                .expression_attribute_names("#id", "id")
                .expression_attribute_values(":id", s(owner.as_str()));
        }
        Ok(TransactWriteItem::builder()
            .delete(del.build().map_err(StoreError::internal)?)
            .build())
    }

    fn delete_versioned(&self, key: Item, expected: u64) -> Result<TransactWriteItem, StoreError> {
        let del = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("#v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(expected))
            .build()
            .map_err(StoreError::internal)?;
        Ok(TransactWriteItem::builder().delete(del).build())
    }

    fn claim(
        &self,
        tenant: &TenantId,
        kind: &str,
        value: &str,
        id: &ResourceId,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(pk(tenant, kind), value);
        item.insert("id".into(), s(id.as_str()));
        self.put(item, "attribute_not_exists(pk)")
    }

    fn email_item(
        &self,
        tenant: &TenantId,
        email_key: &str,
        id: &ResourceId,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(email_pk(tenant, email_key), id.as_str());
        item.insert("id".into(), s(id.as_str()));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(StoreError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn count_delta(&self, tenant: &TenantId, delta: i64) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk(tenant, STATS), STATS)))
            .update_expression("ADD #users :d")
            .expression_attribute_names("#users", "users")
            .expression_attribute_values(":d", n(delta))
            .build()
            .map_err(StoreError::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(out.item)
    }

    async fn find_by_claim(
        &self,
        tenant: &TenantId,
        kind: &str,
        value: &str,
    ) -> Result<Option<StoredUser>, StoreError> {
        let Some(claim) = self.get_item(key(pk(tenant, kind), value)).await? else {
            return Ok(None);
        };
        let Some(id) = ResourceId::parse(get_s(&claim, "id")?) else {
            return Ok(None);
        };
        self.get(tenant, &id).await
    }

    /// Maps a cancelled transaction to the uniqueness rule it broke, given the
    /// transaction's item order.
    fn conflict_from(reasons: &[Option<String>], claims: &[(usize, Unique)]) -> StoreError {
        claims
            .iter()
            .find(|(i, _)| TxFailure::condition_failed(reasons, *i))
            .map_or(StoreError::VersionMismatch, |(_, u)| {
                StoreError::Conflict(*u)
            })
    }
}

fn fmt_time(t: OffsetDateTime) -> Result<String, StoreError> {
    t.format(&Rfc3339).map_err(StoreError::internal)
}

fn parse_time(s: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(StoreError::internal)
}

/// The current time, truncated to milliseconds: what we render is what we store.
fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t)
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
            meta: Meta::new(now()),
            user,
        };
        let u = &stored.user;
        let mut items = vec![self.put(self.to_item(tenant, &stored)?, "attribute_not_exists(pk)")?];
        let mut claims = vec![(items.len(), Unique::UserName)];
        items.push(self.claim(tenant, USER_NAME, &u.user_name.key(), &stored.id)?);
        if let Some(ext) = &u.external_id {
            claims.push((items.len(), Unique::ExternalId));
            items.push(self.claim(tenant, USER_EXT, ext.as_str(), &stored.id)?);
        }
        for e in &u.email_keys {
            items.push(self.email_item(tenant, e, &stored.id)?);
        }
        items.push(self.count_delta(tenant, 1)?);
        match dynamo::transact(&self.client, items).await {
            Ok(()) => Ok(stored),
            Err(TxFailure::Cancelled(reasons)) => Err(Self::conflict_from(&reasons, &claims)),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<StoredUser>, StoreError> {
        self.get_item(self.user_key(tenant, id))
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
            meta: current.meta.bumped(now()),
            user: next,
        };
        let (old, new) = (&current.user, &stored.user);
        let id = &stored.id;
        let mut items =
            vec![self.put_versioned(self.to_item(tenant, &stored)?, current.meta.version)?];
        let mut claims = Vec::new();
        if old.user_name.key() != new.user_name.key() {
            // A rename frees the old name in the same transaction.
            items
                .push(self.delete_item(key(pk(tenant, USER_NAME), old.user_name.key()), Some(id))?);
            claims.push((items.len(), Unique::UserName));
            items.push(self.claim(tenant, USER_NAME, &new.user_name.key(), id)?);
        }
        if old.external_id != new.external_id {
            if let Some(ext) = &old.external_id {
                items.push(self.delete_item(key(pk(tenant, USER_EXT), ext.as_str()), Some(id))?);
            }
            if let Some(ext) = &new.external_id {
                claims.push((items.len(), Unique::ExternalId));
                items.push(self.claim(tenant, USER_EXT, ext.as_str(), id)?);
            }
        }
        for e in old
            .email_keys
            .iter()
            .filter(|e| !new.email_keys.contains(e))
        {
            items.push(self.delete_item(key(email_pk(tenant, e), id.as_str()), None)?);
        }
        for e in new
            .email_keys
            .iter()
            .filter(|e| !old.email_keys.contains(e))
        {
            items.push(self.email_item(tenant, e, id)?);
        }
        match dynamo::transact(&self.client, items).await {
            Ok(()) => Ok(stored),
            Err(TxFailure::Cancelled(reasons)) => {
                if TxFailure::condition_failed(&reasons, 0) {
                    // Changed or deleted since read: tell which.
                    return match self.get(tenant, id).await? {
                        Some(_) => Err(StoreError::VersionMismatch),
                        None => Err(StoreError::NotFound),
                    };
                }
                Err(Self::conflict_from(&reasons, &claims))
            }
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    async fn delete(&self, tenant: &TenantId, current: &StoredUser) -> Result<(), StoreError> {
        let u = &current.user;
        let id = &current.id;
        let mut items =
            vec![self.delete_versioned(self.user_key(tenant, id), current.meta.version)?];
        items.push(self.delete_item(key(pk(tenant, USER_NAME), u.user_name.key()), Some(id))?);
        if let Some(ext) = &u.external_id {
            items.push(self.delete_item(key(pk(tenant, USER_EXT), ext.as_str()), Some(id))?);
        }
        for e in &u.email_keys {
            items.push(self.delete_item(key(email_pk(tenant, e), id.as_str()), None)?);
        }
        items.push(self.count_delta(tenant, -1)?);
        match dynamo::transact(&self.client, items).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Cancelled(_)) => match self.get(tenant, id).await? {
                Some(_) => Err(StoreError::VersionMismatch),
                None => Err(StoreError::NotFound),
            },
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    async fn find_by_user_name(
        &self,
        tenant: &TenantId,
        user_name: &str,
    ) -> Result<Option<StoredUser>, StoreError> {
        let found = self
            .find_by_claim(tenant, USER_NAME, &user_name.to_lowercase())
            .await?;
        // The claim and the user are two reads: a concurrent rename can make
        // them disagree, in which case the answer is "not found".
        Ok(found.filter(|u| u.user.user_name.key() == user_name.to_lowercase()))
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
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(email_pk(tenant, &email_key)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(from_sdk)?;
            for item in out.items() {
                if let Some(id) = get_opt_s(item, "id").and_then(ResourceId::parse) {
                    ids.push(id);
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(u) = self.get(tenant, &id).await?
                && u.user.email_keys.contains(&email_key)
            {
                users.push(u);
            }
        }
        Ok(users)
    }

    async fn count(&self, tenant: &TenantId) -> Result<usize, StoreError> {
        let item = self.get_item(key(pk(tenant, STATS), STATS)).await?;
        Ok(match item {
            Some(item) if item.contains_key("users") => {
                usize::try_from(get_u64(&item, "users")?).map_err(StoreError::internal)?
            }
            _ => 0,
        })
    }

    async fn page(
        &self,
        tenant: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<StoredUser>, Option<ResourceId>), StoreError> {
        let limit = i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        let start = after.map(|id| self.user_key(tenant, id));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk(tenant, USER)))
            .consistent_read(true)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(from_sdk)?;
        let users = out
            .items()
            .iter()
            .map(Self::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next = match &out.last_evaluated_key {
            Some(k) => k
                .get(crate::tables::SK)
                .and_then(|v| v.as_s().ok())
                .and_then(|v| ResourceId::parse(v)),
            None => None,
        };
        Ok((users, next))
    }
}
