//! User operations: read, create, replace (PUT), PATCH, delete, list.
//! PATCH is applied to the stored document and validated as a whole before
//! anything is written; a write lost to a concurrent one is retried from a
//! fresh read ([`crate::retry`]).

use scim_proto::ScimError;
use scim_proto::ast::Filter;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::list::Paging;
use scim_proto::patch::{self, PatchRequest};
use scim_proto::provider::Provider;
use scim_proto::resource::{UserResource, render};
use scim_proto::schema::USER_RESOURCE;
use scim_proto::sort::Sort;
use scim_store::StoreError;
use scim_store::activity::{Operation, Origin};
use scim_store::deletion::Deleted;
use scim_store::groups::StoredGroup;
use scim_store::users::{StoredUser, UserStore};
use serde_json::Value;

use crate::Directory;
use crate::error::Result;
use crate::kind;
use crate::listing::{self, Page};
use crate::lookup::{UserLookup, user_lookup};
use crate::precondition::Precondition;
use crate::retry::optimistic;

/// `{base}/Users/{id}`: the user's `meta.location`.
pub fn user_location(base: &str, id: &ResourceId) -> String {
    format!("{base}/Users/{id}")
}

/// The user as SCIM JSON (without its read-only `groups`).
pub fn user_json(base: &str, u: &StoredUser) -> Value {
    Value::Object(render(
        &USER_RESOURCE,
        &u.id,
        &u.user.doc,
        &u.meta,
        &user_location(base, &u.id),
    ))
}

fn user_id(raw: &str) -> Result<ResourceId> {
    kind::parse_id::<dyn UserStore>(raw)
}

impl Directory {
    /// The user `id` (404 if there is none).
    pub async fn user(&self, tenant: &TenantId, id: &str) -> Result<StoredUser> {
        self.load_user(tenant, &user_id(id)?).await
    }

    async fn load_user(&self, tenant: &TenantId, id: &ResourceId) -> Result<StoredUser> {
        self.users
            .get(tenant, id)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("no user with id {id:?}")).into())
    }

    /// The groups `user` is a direct member of (its read-only `groups`).
    pub async fn user_groups(
        &self,
        tenant: &TenantId,
        user: &ResourceId,
    ) -> Result<Vec<StoredGroup>> {
        let ids = self.groups.groups_of(tenant, user).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.groups.get_many(tenant, &ids).await?)
    }

    pub async fn create_user(
        &self,
        tenant: &TenantId,
        user: UserResource,
        provider: Provider,
    ) -> Result<StoredUser> {
        let origin = Origin::scim(provider, Operation::Create);
        let stored = self.users.create(tenant, user, origin).await?;
        tracing::info!(user_id = %stored.id, "user created");
        Ok(stored)
    }

    /// PUT: `next` replaces whatever the user is when it is written
    /// (uniqueness is checked again by the write).
    pub async fn replace_user(
        &self,
        tenant: &TenantId,
        id: &str,
        next: UserResource,
        pre: &Precondition,
        provider: Provider,
    ) -> Result<StoredUser> {
        let id = &user_id(id)?;
        let next = &next;
        let origin = Origin::scim(provider, Operation::Replace);
        optimistic(pre, "user", move |_| async move {
            let current = self.load_user(tenant, id).await?;
            pre.check(&current.meta.etag())?;
            Ok(self
                .users
                .replace(tenant, &current, next.clone(), origin)
                .await?)
        })
        .await
    }

    /// PATCH: applied to the user as read, validated whole, written only if
    /// it changed anything (Entra re-sends a lot; no write, same version).
    pub async fn patch_user(
        &self,
        tenant: &TenantId,
        id: &str,
        request: &PatchRequest,
        pre: &Precondition,
        provider: Provider,
    ) -> Result<StoredUser> {
        let id = &user_id(id)?;
        let origin = Origin::scim(provider, Operation::Patch);
        // Echoed read-only attributes (Okta's own `id`) go before any read.
        let request = &request.without_echoes(id.as_str())?;
        optimistic(pre, "user", move |_| async move {
            let current = self.load_user(tenant, id).await?;
            pre.check(&current.meta.etag())?;
            let mut doc = current.user.doc.clone();
            let outcome = patch::apply(&mut doc, request, &USER_RESOURCE)?;
            if !outcome.member_changes.is_empty() {
                return Err(ScimError::invalid_path("users have no members attribute").into());
            }
            let next = UserResource::from_doc(doc)?;
            if next == current.user {
                return Ok(current);
            }
            Ok(self.users.replace(tenant, &current, next, origin).await?)
        })
        .await
    }

    /// DELETE: the user, its claims and its memberships in one write.
    /// A user in more groups than one transaction holds is gone when this
    /// returns (`CleanupPending`); its remaining memberships wait for
    /// [`Directory::finish_deletes`].
    pub async fn delete_user(
        &self,
        tenant: &TenantId,
        id: &str,
        pre: &Precondition,
        provider: Provider,
    ) -> Result<Deleted> {
        kind::delete(self.users.as_ref(), tenant, id, pre, provider).await
    }

    /// A page of the users matching `filter` (all users without one), in id
    /// order. `base` is the SCIM base URL the filter sees in `meta.location`.
    pub async fn list_users(
        &self,
        tenant: &TenantId,
        filter: Option<&Filter>,
        paging: &Paging,
        sort: Option<&Sort>,
        base: &str,
    ) -> Result<Page<StoredUser>> {
        const HINT: &str = "id, userName, externalId or emails";
        let store = self.users.as_ref();
        let candidates = match (filter, sort) {
            (None, None) => return kind::unfiltered(store, tenant, paging).await,
            // Sorting needs the whole result (bounded like a filter scan).
            (None, Some(_)) => kind::scan(store, tenant, HINT).await?,
            (Some(f), _) => match user_lookup(f) {
                Some(lookup) => self.find_users(tenant, &lookup).await?,
                None => kind::scan(store, tenant, HINT).await?,
            },
        };
        let matching = candidates
            .into_iter()
            .filter(|u| filter.is_none_or(|f| f.matches(&user_json(base, u), &USER_RESOURCE)))
            .collect();
        let sorted = sort.map(|s| {
            move |users: Vec<StoredUser>| s.order(users, &USER_RESOURCE, |u| user_json(base, u))
        });
        Ok(listing::matches_page(
            matching,
            |u| &u.id,
            paging,
            sorted
                .as_ref()
                .map(|f| f as &dyn Fn(Vec<StoredUser>) -> Vec<StoredUser>),
        ))
    }

    async fn find_users(
        &self,
        tenant: &TenantId,
        lookup: &UserLookup,
    ) -> Result<Vec<StoredUser>, StoreError> {
        let store = self.users.as_ref();
        Ok(match lookup {
            UserLookup::Id(id) => match ResourceId::parse(id) {
                Some(id) => store.get(tenant, &id).await?.into_iter().collect(),
                None => Vec::new(),
            },
            UserLookup::UserName(v) => store
                .find_by_user_name(tenant, v)
                .await?
                .into_iter()
                .collect(),
            UserLookup::ExternalId(v) => store
                .find_by_external_id(tenant, v)
                .await?
                .into_iter()
                .collect(),
            UserLookup::Email(v) => store.find_by_email(tenant, v).await?,
        })
    }
}
