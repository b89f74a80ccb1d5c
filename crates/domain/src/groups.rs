//! Group operations: read, create, replace (PUT), PATCH, delete, list.
//! A PATCH or PUT is written by one `GroupStore::update`: attributes and
//! members in one transaction when they fit, so a request that fails
//! (version check, a member that vanished, storage) changes nothing.

use scim_proto::ScimError;
use scim_proto::ast::Filter;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::list::Paging;
use scim_proto::patch::{self, MemberChange, PatchRequest};
use scim_proto::provider::Provider;
use scim_proto::resource::{GroupResource, render};
use scim_proto::schema::GROUP_RESOURCE;
use scim_proto::sort::Sort;
use scim_store::StoreError;
use scim_store::activity::{Operation, Origin};
use scim_store::deletion::Deleted;
use scim_store::groups::{GroupStore, GroupUpdate, MemberWrites, MembersChange, StoredGroup};
use serde_json::{Map, Value, json};

use crate::Directory;
use crate::error::Result;
use crate::kind;
use crate::listing::{self, Page};
use crate::lookup::{GroupLookup, group_lookup, member_values};
use crate::membership::{
    member_gone, members_only, named_members, net_changes, not_a_user, writes_for,
};
use crate::precondition::Precondition;
use crate::retry::optimistic;

/// `{base}/Groups/{id}`: the group's `meta.location`.
pub fn group_location(base: &str, id: &ResourceId) -> String {
    format!("{base}/Groups/{id}")
}

/// The group as SCIM JSON, without `members` (those are read separately).
pub fn group_json(base: &str, g: &StoredGroup) -> Map<String, Value> {
    render(
        &GROUP_RESOURCE,
        &g.id,
        &g.group.doc,
        &g.meta,
        &group_location(base, &g.id),
    )
}

/// A group's `members` as SCIM JSON.
pub fn member_refs(base: &str, ids: &[ResourceId]) -> Value {
    Value::Array(
        ids.iter()
            .map(|id| json!({"value": id.as_str(), "$ref": format!("{base}/Users/{id}"), "type": "User"}))
            .collect(),
    )
}

fn group_id(raw: &str) -> Result<ResourceId> {
    kind::parse_id::<dyn GroupStore>(raw)
}

impl Directory {
    /// The group `id` (404 if there is none).
    pub async fn group(&self, tenant: &TenantId, id: &str) -> Result<StoredGroup> {
        self.load_group(tenant, &group_id(id)?).await
    }

    async fn load_group(&self, tenant: &TenantId, id: &ResourceId) -> Result<StoredGroup> {
        self.groups
            .get(tenant, id)
            .await?
            .ok_or_else(|| ScimError::not_found(format!("no group with id {id:?}")).into())
    }

    /// The group's member ids, at most `limit`.
    pub async fn group_members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        limit: Option<usize>,
    ) -> Result<Vec<ResourceId>> {
        Ok(self.groups.members(tenant, group, limit).await?)
    }

    /// POST: the group, then its members (each must be a user).
    pub async fn create_group(
        &self,
        tenant: &TenantId,
        group: GroupResource,
        members: &[String],
        provider: Provider,
    ) -> Result<StoredGroup> {
        let members = self.existing_users(tenant, members).await?;
        let origin = Origin::scim(provider, Operation::Create);
        let stored = self.groups.create(tenant, group, origin).await?;
        self.groups
            .add_members(tenant, &stored.id, &members)
            .await
            .map_err(member_gone)?;
        tracing::info!(group_id = %stored.id, members = members.len(), "group created");
        Ok(stored)
    }

    /// PUT: attributes `next` and exactly the members `members`.
    pub async fn replace_group(
        &self,
        tenant: &TenantId,
        id: &str,
        next: GroupResource,
        members: &[String],
        pre: &Precondition,
        provider: Provider,
    ) -> Result<StoredGroup> {
        let origin = Origin::scim(provider, Operation::Replace);
        let members = self.existing_users(tenant, members).await?;
        let id = &group_id(id)?;
        let change = &[MemberChange::Replace(
            members.iter().map(|m| m.as_str().to_owned()).collect(),
        )];
        let next = &next;
        optimistic(pre, "group", move |_| async move {
            let current = self.load_group(tenant, id).await?;
            pre.check(&current.meta.etag())?;
            let writes = self.member_writes(tenant, id, change).await?;
            self.update_group(tenant, &current, next.clone(), &writes, pre, origin)
                .await
        })
        .await
    }

    /// PATCH: attributes applied to the group as read and validated whole;
    /// member operations checked (every named member must be a user) and
    /// written with the attributes. A request of member adds and removes
    /// only (without `If-Match`) is one transaction that reads nothing
    /// first: the answer is then `None` (the caller reads the group if it
    /// must show it).
    pub async fn patch_group(
        &self,
        tenant: &TenantId,
        id: &str,
        request: &PatchRequest,
        pre: &Precondition,
        provider: Provider,
    ) -> Result<Option<StoredGroup>> {
        let id = &group_id(id)?;
        let origin = Origin::scim(provider, Operation::Patch);
        // Echoed read-only attributes (Okta's own `id`) go before any read.
        let request = &request.without_echoes(id.as_str())?;
        if !pre.is_set()
            && let Some(changes) = members_only(request)
            && self
                .change_members_at_once(tenant, id, &changes, origin)
                .await?
        {
            return Ok(None);
        }
        optimistic(pre, "group", move |_| async move {
            let current = self.load_group(tenant, id).await?;
            pre.check(&current.meta.etag())?;
            let mut doc = current.group.doc.clone();
            let outcome = patch::apply(&mut doc, request, &GROUP_RESOURCE)?;
            let next = GroupResource::from_doc(doc)?;
            let named = named_members(&outcome.member_changes);
            if !named.is_empty() {
                self.existing_users(tenant, &named).await?;
            }
            let writes = self
                .member_writes(tenant, id, &outcome.member_changes)
                .await?;
            self.update_group(tenant, &current, next, &writes, pre, origin)
                .await
        })
        .await
        .map(Some)
    }

    /// Member adds and removes with the group's version bump in one
    /// transaction; `false` when they do not fit in one (nothing written:
    /// the caller takes the path that reads first).
    async fn change_members_at_once(
        &self,
        tenant: &TenantId,
        id: &ResourceId,
        changes: &[MemberChange],
        origin: Origin,
    ) -> Result<bool> {
        for raw in named_members(changes) {
            ResourceId::parse(&raw).ok_or_else(|| not_a_user(&raw))?;
        }
        let (wanted, cleared) = net_changes(changes);
        if cleared {
            return Ok(false);
        }
        match self
            .groups
            .change_members(tenant, id, &writes_for(wanted, None), origin)
            .await?
        {
            MembersChange::Applied => Ok(true),
            MembersChange::Unsuitable => Ok(false),
            MembersChange::NoGroup => {
                Err(ScimError::not_found(format!("no group with id {id:?}")).into())
            }
            MembersChange::NotUsers(users) => Err(not_a_user(
                users.first().map(ResourceId::as_str).unwrap_or_default(),
            )),
        }
    }

    /// Writes attributes and member writes to the group `current` read.
    async fn update_group(
        &self,
        tenant: &TenantId,
        current: &StoredGroup,
        next: GroupResource,
        writes: &MemberWrites,
        pre: &Precondition,
        origin: Origin,
    ) -> Result<StoredGroup> {
        let next = (next != current.group).then_some(next);
        match self
            .groups
            .update(tenant, current, next, writes, pre.is_set(), origin)
            .await?
        {
            GroupUpdate::Written(stored) => Ok(stored),
            GroupUpdate::NotUsers(_) => Err(member_gone(StoreError::NotFound)),
        }
    }

    /// DELETE: the group, its claims and its memberships in one write.
    /// A group too large for one transaction is gone when this returns
    /// (`CleanupPending`); its remaining memberships wait for
    /// [`Directory::finish_deletes`].
    pub async fn delete_group(
        &self,
        tenant: &TenantId,
        id: &str,
        pre: &Precondition,
        provider: Provider,
    ) -> Result<Deleted> {
        kind::delete(self.groups.as_ref(), tenant, id, pre, provider).await
    }

    /// Removes the memberships that group and user deletes left to the
    /// background; how many deletes it finished. Resumable: run it again
    /// after a failure.
    pub async fn finish_deletes(&self, tenant: &TenantId) -> Result<usize, StoreError> {
        let groups = self.groups.finish_deletes(tenant).await?;
        let users = self.users.finish_deletes(tenant).await?;
        Ok(groups + users)
    }

    /// A page of the groups matching `filter` (all groups without one), in
    /// id order. A filter on `members` looks up only the members it names.
    pub async fn list_groups(
        &self,
        tenant: &TenantId,
        filter: Option<&Filter>,
        paging: &Paging,
        sort: Option<&Sort>,
        base: &str,
    ) -> Result<Page<StoredGroup>> {
        const HINT: &str = "id, displayName, externalId or members";
        let store = self.groups.as_ref();
        let Some(f) = filter else {
            let Some(sort) = sort else {
                return kind::unfiltered(store, tenant, paging).await;
            };
            // Sorting needs the whole result (bounded like a filter scan).
            let all = kind::scan(store, tenant, HINT).await?;
            return Ok(Self::sorted_page(all, paging, sort, base));
        };
        let named = member_values(f)?;
        let candidates = match group_lookup(f) {
            Some(lookup) => self.find_groups(tenant, &lookup).await?,
            None => kind::scan(store, tenant, HINT).await?,
        };
        let mut matching = Vec::new();
        for g in candidates {
            let mut doc = group_json(base, &g);
            if !named.is_empty() {
                // Only the members the filter names are looked up: enough
                // to evaluate `members eq "u"`, whatever the group's size.
                let present = store.members_among(tenant, &g.id, &named).await?;
                doc.insert("members".into(), member_refs(base, &present));
            }
            if f.matches(&Value::Object(doc), &GROUP_RESOURCE) {
                matching.push(g);
            }
        }
        Ok(match sort {
            Some(sort) => Self::sorted_page(matching, paging, sort, base),
            None => listing::matches_page(matching, |g| &g.id, paging, None),
        })
    }

    fn sorted_page(
        groups: Vec<StoredGroup>,
        paging: &Paging,
        sort: &Sort,
        base: &str,
    ) -> Page<StoredGroup> {
        let sorted = |groups: Vec<StoredGroup>| {
            sort.order(groups, &GROUP_RESOURCE, |g| {
                Value::Object(group_json(base, g))
            })
        };
        listing::matches_page(groups, |g| &g.id, paging, Some(&sorted))
    }

    async fn find_groups(
        &self,
        tenant: &TenantId,
        lookup: &GroupLookup,
    ) -> Result<Vec<StoredGroup>, StoreError> {
        let store = self.groups.as_ref();
        Ok(match lookup {
            GroupLookup::Id(id) => match ResourceId::parse(id) {
                Some(id) => store.get(tenant, &id).await?.into_iter().collect(),
                None => Vec::new(),
            },
            GroupLookup::DisplayName(v) => store
                .find_by_display_name(tenant, v)
                .await?
                .into_iter()
                .collect(),
            GroupLookup::ExternalId(v) => store
                .find_by_external_id(tenant, v)
                .await?
                .into_iter()
                .collect(),
            GroupLookup::Member(user) => match ResourceId::parse(user) {
                Some(user) => {
                    let ids = store.groups_of(tenant, &user).await?;
                    store.get_many(tenant, &ids).await?
                }
                None => Vec::new(),
            },
        })
    }
}
