//! `/Groups` handlers.
//!
//! Membership never travels as a list through the group item: PATCH turns
//! member operations into [`MemberChange`]s, netted into per-member writes
//! ([`MemberWrites`]) that the store applies. Every member named by an add or
//! replace must be a user of the tenant; that is checked before anything is
//! written, so a bad member changes nothing. A PATCH or PUT is written by one
//! [`GroupStore::update`](scim_store::groups::GroupStore::update): attributes
//! and members in one transaction when they fit, so a request that fails
//! (version check, a member that vanished, storage) changes nothing.

use axum::extract::State;
use scim_proto::ScimError;
use scim_proto::ast::{AttrPath, AttrTest, CompValue, CompareOp, Filter};
use scim_proto::filter::parse_filter;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::list::list_response;
use scim_proto::patch::{self, MemberChange, PatchRequest};
use scim_proto::projection::Projection;
use scim_proto::resource::{GroupResource, render};
use scim_proto::schema::{GROUP_RESOURCE, GROUP_SCHEMA};
use scim_store::StoreError;
use scim_store::groups::{GroupUpdate, MemberWrites, StoredGroup};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult};
use crate::extract::{BaseUrl, IfMatch, ListQuery, PathSegment, ProjectionQuery, ScimJson};
use crate::response::ScimResponse;
use crate::{listing, retry};

/// Most members one response may carry. A member entry is ~160 bytes, so this
/// stays well inside Lambda's 6 MB response limit; larger groups must be read
/// with `excludedAttributes=members`.
pub const MAX_MEMBERS_RETURNED: usize = 20_000;

fn location(base: &str, id: &ResourceId) -> String {
    format!("{base}/Groups/{id}")
}

fn members_path() -> AttrPath {
    AttrPath::simple("members")
}

fn parse_id(raw: &str) -> ApiResult<ResourceId> {
    ResourceId::parse(raw)
        .ok_or_else(|| ScimError::not_found(format!("no group with id {raw:?}")).into())
}

async fn load(state: &AppState, tenant: &TenantId, id: &ResourceId) -> ApiResult<StoredGroup> {
    state
        .groups
        .get(tenant, id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no group with id {id:?}")).into())
}

fn member_refs(base: &str, ids: &[ResourceId]) -> Value {
    Value::Array(
        ids.iter()
            .map(|id| json!({"value": id.as_str(), "$ref": format!("{base}/Users/{id}"), "type": "User"}))
            .collect(),
    )
}

/// The group as returned; loads members only when the response includes
/// them, and refuses (400 `tooMany`) rather than truncating a huge list.
async fn project(
    state: &AppState,
    tenant: &TenantId,
    base: &str,
    g: &StoredGroup,
    projection: &Projection,
    budget: &mut usize,
) -> ApiResult<Value> {
    let mut map = render(
        &GROUP_RESOURCE,
        &g.id,
        &g.group.doc,
        &g.meta,
        &location(base, &g.id),
    );
    if projection.wants(&members_path()) {
        let members = state
            .groups
            .members(tenant, &g.id, Some(*budget + 1))
            .await?;
        if members.len() > *budget {
            return Err(ScimError::too_many(format!(
                "the response would list more than {MAX_MEMBERS_RETURNED} members; \
                 request the group with excludedAttributes=members"
            ))
            .into());
        }
        *budget -= members.len();
        map.insert("members".into(), member_refs(base, &members));
    }
    projection.apply(&mut map, &GROUP_RESOURCE);
    Ok(Value::Object(map))
}

/// Parses member ids and checks each is a user of the tenant (400
/// `invalidValue` naming the first that is not).
async fn existing_users(
    state: &AppState,
    tenant: &TenantId,
    raw: &[String],
) -> ApiResult<Vec<ResourceId>> {
    let invalid = |id: &str| {
        ApiError::from(ScimError::invalid_value(format!(
            "member {id:?} is not a user of this tenant; members must be existing users"
        )))
    };
    let mut ids = Vec::with_capacity(raw.len());
    for r in raw {
        ids.push(ResourceId::parse(r).ok_or_else(|| invalid(r))?);
    }
    ids.sort();
    ids.dedup();
    let found = state.users.existing(tenant, &ids).await?;
    if let Some(missing) = ids.iter().find(|id| found.binary_search(id).is_err()) {
        return Err(invalid(missing.as_str()));
    }
    Ok(ids)
}

fn parse_member_ids(raw: &[String]) -> Vec<ResourceId> {
    raw.iter().filter_map(|r| ResourceId::parse(r)).collect()
}

pub async fn get(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    BaseUrl(base): BaseUrl,
    PathSegment(id): PathSegment,
    ProjectionQuery(projection): ProjectionQuery,
) -> ApiResult<ScimResponse> {
    let g = load(&state, &tenant, &parse_id(&id)?).await?;
    let mut budget = MAX_MEMBERS_RETURNED;
    let body = project(&state, &tenant, &base, &g, &projection, &mut budget).await?;
    Ok(ScimResponse::ok(body).with_etag(g.meta.etag()))
}

pub async fn create(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    BaseUrl(base): BaseUrl,
    ProjectionQuery(projection): ProjectionQuery,
    ScimJson(body): ScimJson,
) -> ApiResult<ScimResponse> {
    let (group, members) = GroupResource::from_request(body)?;
    let members = existing_users(&state, &tenant, &members).await?;
    let stored = state.groups.create(&tenant, group).await?;
    state
        .groups
        .add_members(&tenant, &stored.id, &members)
        .await
        .map_err(member_gone)?;
    tracing::info!(group_id = %stored.id, members = members.len(), "group created");
    let mut budget = MAX_MEMBERS_RETURNED;
    let body = project(&state, &tenant, &base, &stored, &projection, &mut budget).await?;
    Ok(ScimResponse::created(body, location(&base, &stored.id)).with_etag(stored.meta.etag()))
}

/// A member deleted while being added: the client named a user that is gone.
fn member_gone(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ScimError::invalid_value(
            "a member was deleted while the request ran; members must be existing users",
        )
        .into(),
        other => other.into(),
    }
}

pub async fn replace(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    BaseUrl(base): BaseUrl,
    PathSegment(id): PathSegment,
    if_match: IfMatch,
    ProjectionQuery(projection): ProjectionQuery,
    ScimJson(body): ScimJson,
) -> ApiResult<ScimResponse> {
    let (next, members) = GroupResource::from_request(body)?;
    let members = existing_users(&state, &tenant, &members).await?;
    let id = parse_id(&id)?;
    let change = [MemberChange::Replace(
        members.iter().map(|m| m.as_str().to_owned()).collect(),
    )];
    let mut attempt = 0;
    // Like PATCH: a write lost to a concurrent one re-reads the group and
    // retries, unless `If-Match` pinned the version (412).
    let stored = loop {
        attempt += 1;
        let current = load(&state, &tenant, &id).await?;
        if_match.check(&current.meta.etag())?;
        let writes = member_writes(&state, &tenant, &id, &change).await?;
        match update(&state, &tenant, &current, next.clone(), &writes, &if_match).await {
            Err(ApiError::Store(StoreError::VersionMismatch))
                if !if_match.is_set() && attempt < retry::ATTEMPTS =>
            {
                retry::pause(attempt).await;
            }
            other => break other?,
        }
    };
    let mut budget = MAX_MEMBERS_RETURNED;
    let body = project(&state, &tenant, &base, &stored, &projection, &mut budget).await?;
    Ok(ScimResponse::ok(body).with_etag(stored.meta.etag()))
}

/// Writes the attributes `next` and the member writes of one PATCH or PUT
/// to the group `current` read. With `If-Match`, a concurrent change is 412
/// and nothing is written.
async fn update(
    state: &AppState,
    tenant: &TenantId,
    current: &StoredGroup,
    next: GroupResource,
    writes: &MemberWrites,
    if_match: &IfMatch,
) -> ApiResult<StoredGroup> {
    let next = (next != current.group).then_some(next);
    match state
        .groups
        .update(tenant, current, next, writes, if_match.is_set())
        .await
    {
        Ok(GroupUpdate::Written(stored)) => Ok(stored),
        Ok(GroupUpdate::NotUsers(_)) => Err(member_gone(StoreError::NotFound)),
        Err(StoreError::VersionMismatch) if if_match.is_set() => {
            Err(ScimError::precondition_failed(
                "the group changed while the request was processed (If-Match)",
            )
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

/// The member writes of `changes`, applied in request order (so
/// add-then-remove of one member ends without it). A replace or a remove of
/// every member is resolved against the group's current members, read once.
async fn member_writes(
    state: &AppState,
    tenant: &TenantId,
    group: &ResourceId,
    changes: &[MemberChange],
) -> ApiResult<MemberWrites> {
    // Per named user: member (true) or not (false) at the end.
    let mut wanted = std::collections::BTreeMap::new();
    // Every current member not in `wanted` is removed.
    let mut cleared = false;
    for change in changes {
        match change {
            MemberChange::Add(ids) => {
                wanted.extend(parse_member_ids(ids).into_iter().map(|id| (id, true)));
            }
            MemberChange::Remove(ids) => {
                wanted.extend(parse_member_ids(ids).into_iter().map(|id| (id, false)));
            }
            MemberChange::RemoveAll => {
                wanted.clear();
                cleared = true;
            }
            MemberChange::Replace(ids) => {
                wanted.clear();
                cleared = true;
                wanted.extend(parse_member_ids(ids).into_iter().map(|id| (id, true)));
            }
        }
    }
    let mut writes = MemberWrites::default();
    if cleared {
        let current: std::collections::BTreeSet<ResourceId> = state
            .groups
            .members(tenant, group, None)
            .await?
            .into_iter()
            .collect();
        for m in current.iter().filter(|m| !wanted.contains_key(*m)) {
            writes.remove.insert(m.clone());
        }
        // Only real changes: a replace by the same members writes nothing.
        for (id, member) in wanted {
            match (member, current.contains(&id)) {
                (true, false) => writes.add.insert(id),
                (false, true) => writes.remove.insert(id),
                _ => false,
            };
        }
    } else {
        // Adds and removes are idempotent: written without reading first.
        for (id, member) in wanted {
            if member {
                writes.add.insert(id);
            } else {
                writes.remove.insert(id);
            }
        }
    }
    Ok(writes)
}

pub async fn patch(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    BaseUrl(base): BaseUrl,
    PathSegment(id): PathSegment,
    if_match: IfMatch,
    query: ListQuery,
    ScimJson(body): ScimJson,
) -> ApiResult<ScimResponse> {
    let request = PatchRequest::from_json(body)?;
    let id = parse_id(&id)?;
    let mut attempt = 0;
    let stored = loop {
        attempt += 1;
        let current = load(&state, &tenant, &id).await?;
        if_match.check(&current.meta.etag())?;
        let mut doc = current.group.doc.clone();
        let outcome = patch::apply(&mut doc, &request, &GROUP_RESOURCE)?;
        let next = GroupResource::from_doc(doc)?;
        // Validate every member before writing anything.
        let named: Vec<String> = outcome
            .member_changes
            .iter()
            .filter_map(|change| match change {
                MemberChange::Add(ids) | MemberChange::Replace(ids) => Some(ids),
                _ => None,
            })
            .flatten()
            .cloned()
            .collect();
        if !named.is_empty() {
            existing_users(&state, &tenant, &named).await?;
        }
        let writes = member_writes(&state, &tenant, &id, &outcome.member_changes).await?;
        match update(&state, &tenant, &current, next, &writes, &if_match).await {
            Err(ApiError::Store(StoreError::VersionMismatch))
                if !if_match.is_set() && attempt < retry::ATTEMPTS =>
            {
                retry::pause(attempt).await;
            }
            other => break other?,
        }
    };
    // Entra wants 204 for group PATCH; a client that asks for attributes
    // gets the resource.
    if query.projection.is_default() {
        return Ok(ScimResponse::no_content());
    }
    let mut budget = MAX_MEMBERS_RETURNED;
    let body = project(
        &state,
        &tenant,
        &base,
        &stored,
        &query.projection,
        &mut budget,
    )
    .await?;
    Ok(ScimResponse::ok(body).with_etag(stored.meta.etag()))
}

pub async fn delete(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    PathSegment(id): PathSegment,
    if_match: IfMatch,
) -> ApiResult<ScimResponse> {
    let id = parse_id(&id)?;
    let store = state.groups.as_ref();
    let not_found = || ApiError::from(ScimError::not_found(format!("no group with id {id:?}")));
    for attempt in 1..=retry::ATTEMPTS {
        // The group, or what an interrupted DELETE of it left to remove.
        let target = store
            .get_for_delete(&tenant, &id)
            .await?
            .ok_or_else(not_found)?;
        match &target.meta {
            Some(meta) => if_match.check(&meta.etag())?,
            // An interrupted delete of a group whose last version is not
            // kept: no ETag can match it.
            None if if_match.is_set() => {
                return Err(ScimError::precondition_failed(
                    "the group is already deleted (If-Match)",
                )
                .into());
            }
            None => {}
        }
        // The memberships go in the same version-checked write as the group
        // (see scim_store::deletion): a delete that fails changes nothing.
        match store.delete(&tenant, &target).await {
            Ok(()) => {
                tracing::info!(group_id = %id, "group deleted");
                return Ok(ScimResponse::no_content());
            }
            Err(StoreError::VersionMismatch) if if_match.is_set() => {
                return Err(ScimError::precondition_failed(
                    "the group changed while the request was processed (If-Match)",
                )
                .into());
            }
            Err(StoreError::VersionMismatch) if attempt < retry::ATTEMPTS => {
                retry::pause(attempt).await;
            }
            Err(StoreError::NotFound) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::VersionMismatch.into())
}

pub async fn list(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    BaseUrl(base): BaseUrl,
    query: ListQuery,
) -> ApiResult<ScimResponse> {
    let store = state.groups.as_ref();
    let filter = query.filter.as_deref().map(parse_filter).transpose()?;
    let paging = query.paging;
    let tenant_ref = &tenant;
    let page_of = |after: Option<ResourceId>, limit| async move {
        store.page(tenant_ref, after.as_ref(), limit).await
    };
    let nth = |n| async move { store.nth_id(tenant_ref, n).await };
    let (page, total) = match &filter {
        None => {
            let total = store.count(&tenant).await?;
            let page = if paging.offset() < total {
                listing::window(paging.offset(), paging.count, nth, page_of).await?
            } else {
                Vec::new()
            };
            (page, total)
        }
        Some(f) => {
            let named = member_values(f)?;
            let candidates = match index_lookup(f) {
                Some(lookup) => lookup.run(&state, &tenant).await?,
                None => {
                    listing::scan_all("groups", "id, displayName, externalId or members", page_of)
                        .await?
                }
            };
            let mut matching = Vec::new();
            for g in candidates {
                let mut doc = render(
                    &GROUP_RESOURCE,
                    &g.id,
                    &g.group.doc,
                    &g.meta,
                    &location(&base, &g.id),
                );
                if !named.is_empty() {
                    // Only the members the filter names are looked up: enough
                    // to evaluate `members eq "u"`, whatever the group's size.
                    let present = store.members_among(&tenant, &g.id, &named).await?;
                    doc.insert("members".into(), member_refs(&base, &present));
                }
                if f.matches(&Value::Object(doc), &GROUP_RESOURCE) {
                    matching.push(g);
                }
            }
            matching.sort_by(|a, b| a.id.cmp(&b.id));
            matching.dedup_by(|a, b| a.id == b.id);
            let total = matching.len();
            (
                matching
                    .into_iter()
                    .skip(paging.offset())
                    .take(paging.count)
                    .collect(),
                total,
            )
        }
    };
    let mut budget = MAX_MEMBERS_RETURNED;
    let mut resources = Vec::with_capacity(page.len());
    for g in &page {
        resources.push(project(&state, &tenant, &base, g, &query.projection, &mut budget).await?);
    }
    Ok(ScimResponse::ok(list_response(
        resources,
        total,
        paging.start_index,
    )))
}

/// The member ids a filter compares `members` with. Only equality on a
/// member's value can be answered without loading whole groups, so any other
/// test of `members` is an `invalidFilter`.
fn member_values(f: &Filter) -> ApiResult<Vec<ResourceId>> {
    let mut out = Vec::new();
    collect_member_values(f, &mut out)?;
    Ok(out)
}

fn is_members(path: &AttrPath) -> bool {
    path.urn
        .as_deref()
        .is_none_or(|u| u.eq_ignore_ascii_case(GROUP_SCHEMA))
        && path.name.eq_ignore_ascii_case("members")
}

fn unsupported_members_filter() -> ApiError {
    ScimError::invalid_filter("members can only be filtered with members eq \"<user id>\" (or members[value eq \"<user id>\"])").into()
}

fn collect_member_values(f: &Filter, out: &mut Vec<ResourceId>) -> ApiResult<()> {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => {
            collect_member_values(a, out)?;
            collect_member_values(b, out)
        }
        Filter::Not(inner) => collect_member_values(inner, out),
        Filter::Attr { path, test } if is_members(path) => {
            let sub_ok = path
                .sub
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case("value"));
            match test {
                AttrTest::Compare(CompareOp::Eq, CompValue::Str(v)) if sub_ok => {
                    out.extend(ResourceId::parse(v));
                    Ok(())
                }
                _ => Err(unsupported_members_filter()),
            }
        }
        Filter::ValuePath { path, filter, sub } if is_members(path) => {
            if sub.is_some() {
                return Err(unsupported_members_filter());
            }
            collect_value_eq(filter, out)
        }
        _ => Ok(()),
    }
}

/// Inside `members[...]`: only `value eq "x"` terms (joined by and/or).
fn collect_value_eq(f: &Filter, out: &mut Vec<ResourceId>) -> ApiResult<()> {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => {
            collect_value_eq(a, out)?;
            collect_value_eq(b, out)
        }
        Filter::Attr {
            path,
            test: AttrTest::Compare(CompareOp::Eq, CompValue::Str(v)),
        } if path.is("value") => {
            out.extend(ResourceId::parse(v));
            Ok(())
        }
        _ => Err(unsupported_members_filter()),
    }
}

#[derive(Debug, PartialEq)]
enum Lookup {
    Id(String),
    DisplayName(String),
    ExternalId(String),
    Member(String),
}

impl Lookup {
    async fn run(&self, state: &AppState, tenant: &TenantId) -> ApiResult<Vec<StoredGroup>> {
        let store = state.groups.as_ref();
        Ok(match self {
            Self::Id(id) => match ResourceId::parse(id) {
                Some(id) => store.get(tenant, &id).await?.into_iter().collect(),
                None => Vec::new(),
            },
            Self::DisplayName(v) => store
                .find_by_display_name(tenant, v)
                .await?
                .into_iter()
                .collect(),
            Self::ExternalId(v) => store
                .find_by_external_id(tenant, v)
                .await?
                .into_iter()
                .collect(),
            Self::Member(user) => match ResourceId::parse(user) {
                Some(user) => {
                    let ids = store.groups_of(tenant, &user).await?;
                    store.get_many(tenant, &ids).await?
                }
                None => Vec::new(),
            },
        })
    }
}

/// Picks an indexed equality term from the filter's top-level `and` chain.
fn index_lookup(filter: &Filter) -> Option<Lookup> {
    filter.conjuncts().into_iter().find_map(|term| match term {
        Filter::Attr {
            path,
            test: AttrTest::Compare(CompareOp::Eq, CompValue::Str(v)),
        } if path
            .urn
            .as_deref()
            .is_none_or(|u| u.eq_ignore_ascii_case(GROUP_SCHEMA)) =>
        {
            if path.is("id") {
                Some(Lookup::Id(v.clone()))
            } else if path.is("displayName") {
                Some(Lookup::DisplayName(v.clone()))
            } else if path.is("externalId") {
                Some(Lookup::ExternalId(v.clone()))
            } else if is_members(path)
                && path
                    .sub
                    .as_deref()
                    .is_none_or(|s| s.eq_ignore_ascii_case("value"))
            {
                Some(Lookup::Member(v.clone()))
            } else {
                None
            }
        }
        Filter::ValuePath {
            path,
            filter,
            sub: None,
        } if is_members(path) => match filter.as_ref() {
            Filter::Attr {
                path: inner,
                test: AttrTest::Compare(CompareOp::Eq, CompValue::Str(v)),
            } if inner.is("value") => Some(Lookup::Member(v.clone())),
            _ => None,
        },
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(f: &str) -> Option<Lookup> {
        index_lookup(&parse_filter(f).unwrap())
    }

    #[test]
    fn entra_group_queries_are_planned_onto_key_reads() {
        assert_eq!(
            plan(r#"displayName eq "Sales""#),
            Some(Lookup::DisplayName("Sales".into()))
        );
        assert_eq!(
            plan(r#"externalId eq "g1""#),
            Some(Lookup::ExternalId("g1".into()))
        );
        assert_eq!(
            plan(r#"id eq "g" and members eq "u""#),
            Some(Lookup::Id("g".into()))
        );
        assert_eq!(
            plan(r#"members[value eq "u"]"#),
            Some(Lookup::Member("u".into()))
        );
    }

    #[test]
    fn members_filters_other_than_equality_are_invalid() {
        let f = parse_filter(r#"members co "u""#).unwrap();
        assert!(member_values(&f).is_err());
        let f = parse_filter(r#"members pr"#).unwrap();
        assert!(member_values(&f).is_err());
        let f = parse_filter(r#"id eq "g" and members eq "u""#).unwrap();
        assert_eq!(member_values(&f).unwrap().len(), 1);
    }
}
