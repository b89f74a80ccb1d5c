//! What users and groups share as stored resources: the DELETE and the
//! unfiltered listing run the same way for both, over this one interface.

use std::future::Future;

use scim_proto::ScimError;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::list::Paging;
use scim_proto::provider::Provider;
use scim_store::StoreError;
use scim_store::activity::{Operation, Origin};
use scim_store::deletion::{Deleted, Deletion};
use scim_store::groups::{GroupStore, StoredGroup};
use scim_store::users::{StoredUser, UserStore};

use crate::error::Result;
use crate::listing::{self, Page};
use crate::precondition::Precondition;
use crate::retry::optimistic;

type StoreResult<T> = std::result::Result<T, StoreError>;

/// A kind of directory resource (user or group) as its store holds it.
pub(crate) trait Kind: Sync {
    type Stored: Send;
    /// How answers name the resource ("no user with id …").
    const NOUN: &'static str;

    fn get_for_delete(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
    ) -> impl Future<Output = StoreResult<Option<Deletion<Self::Stored>>>> + Send;
    fn delete(
        &self,
        tenant: &TenantId,
        target: &Deletion<Self::Stored>,
        origin: Origin,
    ) -> impl Future<Output = StoreResult<Deleted>> + Send;
    fn count(&self, tenant: &TenantId) -> impl Future<Output = StoreResult<usize>> + Send;
    fn nth_id(
        &self,
        tenant: &TenantId,
        n: usize,
    ) -> impl Future<Output = StoreResult<Option<ResourceId>>> + Send;
    #[allow(clippy::type_complexity)]
    fn page(
        &self,
        tenant: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<(Vec<Self::Stored>, Option<ResourceId>)>> + Send;
}

macro_rules! kind {
    ($store:ident, $stored:ty, $noun:literal) => {
        // For every lifetime of the trait object: the SCIM handlers' futures
        // must be Send for any borrow of the state.
        impl<'a> Kind for dyn $store + 'a {
            type Stored = $stored;
            const NOUN: &'static str = $noun;

            async fn get_for_delete(
                &self,
                tenant: &TenantId,
                id: &ResourceId,
            ) -> StoreResult<Option<Deletion<$stored>>> {
                $store::get_for_delete(self, tenant, id).await
            }
            async fn delete(
                &self,
                tenant: &TenantId,
                target: &Deletion<$stored>,
                origin: Origin,
            ) -> StoreResult<Deleted> {
                $store::delete(self, tenant, target, origin)
                    .await
                    .map(Into::into)
            }
            async fn count(&self, tenant: &TenantId) -> StoreResult<usize> {
                $store::count(self, tenant).await
            }
            async fn nth_id(&self, tenant: &TenantId, n: usize) -> StoreResult<Option<ResourceId>> {
                $store::nth_id(self, tenant, n).await
            }
            async fn page(
                &self,
                tenant: &TenantId,
                after: Option<&ResourceId>,
                limit: usize,
            ) -> StoreResult<(Vec<$stored>, Option<ResourceId>)> {
                $store::page(self, tenant, after, limit).await
            }
        }
    };
}

kind!(UserStore, StoredUser, "user");
kind!(GroupStore, StoredGroup, "group");

/// An id that cannot be one of this kind's answers as one that does not
/// exist.
pub(crate) fn parse_id<K: Kind + ?Sized>(raw: &str) -> Result<ResourceId> {
    ResourceId::parse(raw)
        .ok_or_else(|| ScimError::not_found(format!("no {} with id {raw:?}", K::NOUN)).into())
}

/// DELETE: read the resource (or what an interrupted delete of it left),
/// check `If-Match`, remove it with its claims and memberships in one
/// version-checked write (see `scim_store::deletion`), retrying lost races.
pub(crate) async fn delete<K: Kind + ?Sized>(
    store: &K,
    tenant: &TenantId,
    id: &str,
    pre: &Precondition,
    provider: Provider,
) -> Result<Deleted> {
    let noun = K::NOUN;
    let origin = Origin::scim(provider, Operation::Delete);
    let id = &parse_id::<K>(id)?;
    let not_found = &|| ScimError::not_found(format!("no {noun} with id {id:?}"));
    let deleted = optimistic(pre, noun, move |_| async move {
        let target = store
            .get_for_delete(tenant, id)
            .await?
            .ok_or_else(not_found)?;
        match &target.meta {
            Some(meta) => pre.check(&meta.etag())?,
            // An interrupted delete whose last version is not kept: no ETag
            // can match it.
            None if pre.is_set() => {
                return Err(ScimError::precondition_failed(format!(
                    "the {noun} is already deleted (If-Match)"
                ))
                .into());
            }
            None => {}
        }
        match store.delete(tenant, &target, origin).await {
            Err(StoreError::NotFound) => Err(not_found().into()),
            other => Ok(other?),
        }
    })
    .await?;
    tracing::info!(%id, ?deleted, "{noun} deleted");
    Ok(deleted)
}

/// The page of all resources of the kind, in id order.
pub(crate) async fn unfiltered<K: Kind + ?Sized>(
    store: &K,
    tenant: &TenantId,
    paging: &Paging,
) -> Result<Page<K::Stored>> {
    let total = store.count(tenant).await?;
    let nth = |n| store.nth_id(tenant, n);
    let page_of = |after: Option<ResourceId>, limit| async move {
        store.page(tenant, after.as_ref(), limit).await
    };
    listing::unfiltered(total, paging, nth, page_of).await
}

/// Every resource of the kind, for a filter no key read answers (bounded).
pub(crate) async fn scan<K: Kind + ?Sized>(
    store: &K,
    tenant: &TenantId,
    hint: &str,
) -> Result<Vec<K::Stored>> {
    let what = format!("{}s", K::NOUN);
    let page_of = |after: Option<ResourceId>, limit| async move {
        store.page(tenant, after.as_ref(), limit).await
    };
    listing::scan_all(&what, hint, page_of).await
}
