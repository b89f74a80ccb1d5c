//! What users and groups share: the resource item (document, metadata,
//! attributes), its reads, its lookups by uniqueness claim, and the write
//! mechanics every create, replace and delete goes through (the
//! version-checked write of the resource item with its claims and the
//! tenant counter, and the lost-race answer when that check fails).
//!
//! [`Resources`] is one implementation, generic over the [`Resource`] kind;
//! [`crate::users`] and [`crate::groups`] add only what is their own (email
//! index and dirty set; membership marks). Changes here when the shape of a
//! resource item or the concurrency rules of its writes change.

use std::marker::PhantomData;

use scim_proto::ScimResult;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::resource::Meta;

use crate::activity::{ActivityEntry, Origin, Outcome};
use crate::claims::{Claim, ClaimedWrite};
use crate::deletion::Deletion;
use crate::dynamo::{self, Cond, Item, Table, key, pk, s};
use crate::error::{StoreError, Unique};

/// A kind of SCIM resource as stored: `StoredUser` or `StoredGroup`.
pub(crate) trait Resource: Sized {
    /// The validated resource (`UserResource`, `GroupResource`).
    type Doc;
    /// Partition kind of the resource items (`USER`, `GROUP`).
    const KIND: &'static str;
    /// The resource as named in messages (`user`, `group`).
    const NOUN: &'static str;
    /// The tenant counter of this kind (on the stats item).
    const COUNTER: &'static str;
    /// Claim kind and rule of the name (`userName`, `displayName`).
    const NAME_CLAIM: &'static str;
    const NAME_UNIQUE: Unique;
    /// Claim kind of the externalId.
    const EXT_CLAIM: &'static str;
    /// The SCIM resource type (`User`, `Group`), as the activity log says.
    const TYPE: &'static str;

    fn new(id: ResourceId, meta: Meta, doc: Self::Doc) -> Self;
    fn id(&self) -> &ResourceId;
    fn meta(&self) -> &Meta;
    fn doc(&self) -> &Self::Doc;
    fn json(doc: &Self::Doc) -> &serde_json::Map<String, serde_json::Value>;
    fn from_json(json: serde_json::Map<String, serde_json::Value>) -> ScimResult<Self::Doc>;
    /// The name as claimed (lowercased).
    fn name_key(doc: &Self::Doc) -> String;
    /// The name as written (userName, displayName).
    fn name(doc: &Self::Doc) -> &str;
    /// `active`, for resources that have it.
    fn active(_doc: &Self::Doc) -> Option<bool> {
        None
    }
    fn external_id(doc: &Self::Doc) -> Option<&str>;
    /// Attributes of the item besides `doc` and the metadata.
    fn put_attributes(doc: &Self::Doc, item: &mut Item);
}

/// The resource items of one kind in the directory table.
pub(crate) struct Resources<R> {
    pub(crate) table: Table,
    kind: PhantomData<fn() -> R>,
}

impl<R> Clone for Resources<R> {
    fn clone(&self) -> Self {
        Self {
            table: self.table.clone(),
            kind: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for Resources<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.table.fmt(f)
    }
}

impl<R: Resource> Resources<R> {
    pub(crate) fn new(client: impl Into<crate::lazy::DynamoDb>, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
            kind: PhantomData,
        }
    }

    pub(crate) fn key(tenant: &TenantId, id: &ResourceId) -> Item {
        key(pk(tenant, R::KIND), id.as_str())
    }

    fn to_item(tenant: &TenantId, stored: &R) -> Result<Item, StoreError> {
        let mut item = Self::key(tenant, stored.id());
        let doc = serde_json::to_string(R::json(stored.doc()))
            .map_err(|e| StoreError::internal("serializing a resource document", e))?;
        item.insert("doc".into(), s(doc));
        dynamo::put_meta(&mut item, stored.meta())?;
        R::put_attributes(stored.doc(), &mut item);
        if let Some(ext) = R::external_id(stored.doc()) {
            item.insert("externalId".into(), s(ext));
        }
        Ok(item)
    }

    pub(crate) fn from_item(item: &Item) -> Result<R, StoreError> {
        let id = dynamo::read_id(item)?;
        // Stored documents were validated on write; re-validation only fails
        // if validation rules tightened since, which we treat as corruption.
        let doc = R::from_json(dynamo::read_doc(item)?).map_err(|e| {
            StoreError::internal(format!("stored {} {id} no longer validates", R::NOUN), e)
        })?;
        let meta = dynamo::read_meta(item)?;
        Ok(R::new(id, meta, doc))
    }

    /// The uniqueness claims `doc` holds.
    pub(crate) fn claims(doc: &R::Doc) -> Vec<Claim> {
        let mut claims = vec![Claim {
            kind: R::NAME_CLAIM,
            value: R::name_key(doc),
            unique: R::NAME_UNIQUE,
        }];
        if let Some(ext) = R::external_id(doc) {
            claims.push(Claim {
                kind: R::EXT_CLAIM,
                value: ext.to_owned(),
                unique: Unique::ExternalId,
            });
        }
        claims
    }

    pub(crate) async fn get(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<R>, StoreError> {
        self.table
            .get(Self::key(tenant, id))
            .await?
            .map(|item| Self::from_item(&item))
            .transpose()
    }

    /// Resources by id, skipping missing ones, in id order.
    pub(crate) async fn get_many(
        &self,
        tenant: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<R>, StoreError> {
        let mut found = self
            .table
            .get_unique(ids, |id| Self::key(tenant, id))
            .await?
            .iter()
            .map(Self::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        found.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(found)
    }

    /// The subset of `ids` that exist, in id order.
    pub(crate) async fn existing(
        &self,
        tenant: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<ResourceId>, StoreError> {
        self.table
            .existing_ids(ids, |id| Self::key(tenant, id))
            .await
    }

    pub(crate) async fn page(
        &self,
        tenant: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<R>, Option<ResourceId>), StoreError> {
        let (items, next) = self
            .table
            .page(pk(tenant, R::KIND), after.map(ResourceId::as_str), limit)
            .await?;
        let found = items
            .iter()
            .map(Self::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((found, next.and_then(|n| ResourceId::parse(&n))))
    }

    pub(crate) async fn nth_id(
        &self,
        tenant: &TenantId,
        n: usize,
    ) -> Result<Option<ResourceId>, StoreError> {
        let key = self.table.nth_key(pk(tenant, R::KIND), n).await?;
        Ok(key.and_then(|k| ResourceId::parse(&k)))
    }

    pub(crate) async fn count(&self, tenant: &TenantId) -> Result<usize, StoreError> {
        self.table.counter(tenant, R::COUNTER).await
    }

    /// The resource a claim points to. The claim and the resource are two
    /// reads: `holds` keeps the answer only if the resource still holds the
    /// value (a concurrent rename can make them disagree: "not found").
    async fn find_by_claim(
        &self,
        tenant: &TenantId,
        kind: &str,
        value: &str,
        holds: impl FnOnce(&R::Doc) -> bool,
    ) -> Result<Option<R>, StoreError> {
        let Some(id) = self.table.claimed_by(pk(tenant, kind), value).await? else {
            return Ok(None);
        };
        let Some(id) = ResourceId::parse(&id) else {
            return Ok(None);
        };
        Ok(self.get(tenant, &id).await?.filter(|r| holds(r.doc())))
    }

    /// Lookup by name, ignoring case (strongly consistent).
    pub(crate) async fn find_by_name(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<R>, StoreError> {
        let wanted = name.to_lowercase();
        self.find_by_claim(tenant, R::NAME_CLAIM, &wanted, |d| R::name_key(d) == wanted)
            .await
    }

    /// Lookup by externalId, case-exact (strongly consistent).
    pub(crate) async fn find_by_external_id(
        &self,
        tenant: &TenantId,
        external_id: &str,
    ) -> Result<Option<R>, StoreError> {
        self.find_by_claim(tenant, R::EXT_CLAIM, external_id, |d| {
            R::external_id(d) == Some(external_id)
        })
        .await
    }

    /// A resource as a DELETE read it, with its membership guard.
    pub(crate) fn deletion_of(resource: R, guard: Option<String>) -> Deletion<R> {
        let (id, meta) = (resource.id().clone(), *resource.meta());
        Deletion::live(id, meta, resource, guard)
    }

    /// After a failed conditional write on the resource item: changed or gone?
    pub(crate) async fn lost_race(&self, tenant: &TenantId, id: &ResourceId) -> StoreError {
        match self.get(tenant, id).await {
            Ok(Some(_)) => StoreError::VersionMismatch,
            Ok(None) => StoreError::NotFound,
            Err(e) => e,
        }
    }

    /// The activity entry of a write `origin` asked for, as an item of the
    /// write's transaction.
    pub(crate) fn activity(
        &self,
        tenant: &TenantId,
        origin: Origin,
        resource: &R,
        outcome: Outcome,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        let entry = ActivityEntry::of_write(
            origin,
            R::TYPE,
            resource.id().as_str(),
            R::name(resource.doc()),
            outcome,
        );
        self.table.put(entry.to_item(tenant), None)
    }

    /// What replacing `old` by `new` did, as the activity log says.
    pub(crate) fn change(old: &R::Doc, new: &R::Doc) -> Outcome {
        match (R::active(old), R::active(new)) {
            (Some(true), Some(false)) => Outcome::Deactivated,
            (Some(false), Some(true)) => Outcome::Reactivated,
            _ => Outcome::Updated,
        }
    }

    /// Creates a resource with a fresh id: its item, its claims, then what
    /// `more` adds, then the counter and the activity entry, in one
    /// transaction.
    pub(crate) async fn create(
        &self,
        tenant: &TenantId,
        doc: R::Doc,
        origin: Origin,
        more: impl FnOnce(&mut ClaimedWrite, &R) -> Result<(), StoreError>,
    ) -> Result<R, StoreError> {
        let stored = R::new(
            ResourceId::from_uuid(uuid::Uuid::new_v4()),
            Meta::new(dynamo::now()),
            doc,
        );
        let (t, id) = (&self.table, stored.id().as_str());
        let mut w =
            ClaimedWrite::new(t.put(Self::to_item(tenant, &stored)?, Some(Cond::absent()))?);
        let claims = Self::claims(stored.doc());
        w.change_claims(t, tenant, id, &[], &claims)?;
        more(&mut w, &stored)?;
        w.push(t.count_delta(tenant, R::COUNTER, 1)?);
        w.push(self.activity(tenant, origin, &stored, Outcome::Created)?);
        w.commit_create(t, tenant, id, &claims).await?;
        Ok(stored)
    }

    /// The write of `next` over `current` (checked against the version
    /// read), with the claims it changes and the activity entry; nothing is
    /// sent yet.
    pub(crate) fn replacement(
        &self,
        tenant: &TenantId,
        current: &R,
        next: R::Doc,
        origin: Origin,
    ) -> Result<(R, ClaimedWrite), StoreError> {
        let stored = R::new(
            current.id().clone(),
            current.meta().bumped(dynamo::now()),
            next,
        );
        let t = &self.table;
        let mut w = ClaimedWrite::new(t.put(
            Self::to_item(tenant, &stored)?,
            Some(Cond::version(current.meta().version)),
        )?);
        // A rename frees the old name in the same transaction.
        let (old, new) = (Self::claims(current.doc()), Self::claims(stored.doc()));
        w.change_claims(t, tenant, stored.id().as_str(), &old, &new)?;
        let outcome = Self::change(current.doc(), stored.doc());
        w.push(self.activity(tenant, origin, &stored, outcome)?);
        Ok((stored, w))
    }

    /// Replaces `current` with `next` and what `more` adds, if unchanged
    /// since read (`VersionMismatch` otherwise, `NotFound` if gone).
    pub(crate) async fn replace(
        &self,
        tenant: &TenantId,
        current: &R,
        next: R::Doc,
        origin: Origin,
        more: impl FnOnce(&mut ClaimedWrite, &R) -> Result<(), StoreError>,
    ) -> Result<R, StoreError> {
        let (stored, mut w) = self.replacement(tenant, current, next, origin)?;
        more(&mut w, &stored)?;
        if w.commit_replace(&self.table).await? {
            Ok(stored)
        } else {
            Err(self.lost_race(tenant, stored.id()).await)
        }
    }

    /// The version-checked delete of `current` with its claims, the counter
    /// and the activity entry; the caller adds the rest and commits with
    /// [`Self::decide_delete`].
    pub(crate) fn deletion(
        &self,
        tenant: &TenantId,
        current: &R,
        origin: Origin,
    ) -> Result<ClaimedWrite, StoreError> {
        let t = &self.table;
        let id = current.id();
        let mut w = ClaimedWrite::new(t.delete(
            Self::key(tenant, id),
            Some(Cond::version(current.meta().version)),
        )?);
        w.change_claims(t, tenant, id.as_str(), &Self::claims(current.doc()), &[])?;
        w.push(t.count_delta(tenant, R::COUNTER, -1)?);
        w.push(self.activity(tenant, origin, current, Outcome::Deleted)?);
        Ok(w)
    }

    /// Commits the transaction that decides a delete: nothing is written
    /// when it fails (`VersionMismatch` or `NotFound`, as read after).
    pub(crate) async fn decide_delete(
        &self,
        tenant: &TenantId,
        w: ClaimedWrite,
        id: &ResourceId,
    ) -> Result<(), StoreError> {
        if w.commit_delete(&self.table).await? {
            Ok(())
        } else {
            Err(self.lost_race(tenant, id).await)
        }
    }
}
