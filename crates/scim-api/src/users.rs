//! `/Users` handlers.
//!
//! Lookups Entra makes (`id`, `userName`, `externalId`, work email, and `and`
//! combinations of them) are planned onto key reads; the full filter is then
//! evaluated on the candidates, so the answer is exact whatever else the
//! filter says. Other filters walk the tenant's users, up to a bound.

use axum::extract::State;
use scim_proto::ScimError;
use scim_proto::ast::{AttrPath, AttrTest, CompValue, CompareOp, Filter};
use scim_proto::filter::parse_filter;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::list::list_response;
use scim_proto::patch::{self, PatchRequest};
use scim_proto::projection::Projection;
use scim_proto::resource::{UserResource, render};
use scim_proto::schema::{USER_RESOURCE, USER_SCHEMA};
use scim_store::StoreError;
use scim_store::users::{StoredUser, UserStore};
use serde_json::Value;

use crate::AppState;
use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult};
use crate::extract::{BaseUrl, IfMatch, ListQuery, PathSegment, ProjectionQuery, ScimJson};
use crate::response::ScimResponse;
use crate::{listing, retry};

fn location(base: &str, id: &ResourceId) -> String {
    format!("{base}/Users/{id}")
}

fn to_json(base: &str, u: &StoredUser) -> Value {
    Value::Object(render(
        &USER_RESOURCE,
        &u.id,
        &u.user.doc,
        &u.meta,
        &location(base, &u.id),
    ))
}

/// The user as returned, with its read-only `groups` when `with_groups`.
async fn project(
    state: &AppState,
    tenant: &TenantId,
    base: &str,
    u: &StoredUser,
    projection: &Projection,
    with_groups: bool,
) -> ApiResult<Value> {
    let Value::Object(mut map) = to_json(base, u) else {
        return Ok(Value::Null);
    };
    if with_groups && projection.wants(&AttrPath::simple("groups")) {
        let ids = state.groups.groups_of(tenant, &u.id).await?;
        if !ids.is_empty() {
            let groups = state.groups.get_many(tenant, &ids).await?;
            let refs: Vec<Value> = groups
                .iter()
                .map(|g| {
                    serde_json::json!({
                        "value": g.id.as_str(),
                        "$ref": format!("{base}/Groups/{}", g.id),
                        "display": g.group.display_name.as_str(),
                        "type": "direct",
                    })
                })
                .collect();
            map.insert("groups".into(), Value::Array(refs));
        }
    }
    projection.apply(&mut map, &USER_RESOURCE);
    Ok(Value::Object(map))
}

fn parse_id(raw: &str) -> ApiResult<ResourceId> {
    ResourceId::parse(raw)
        .ok_or_else(|| ScimError::not_found(format!("no user with id {raw:?}")).into())
}

async fn load(store: &dyn UserStore, tenant: &TenantId, id: &ResourceId) -> ApiResult<StoredUser> {
    store
        .get(tenant, id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no user with id {id:?}")).into())
}

pub async fn get(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    BaseUrl(base): BaseUrl,
    PathSegment(id): PathSegment,
    ProjectionQuery(projection): ProjectionQuery,
) -> ApiResult<ScimResponse> {
    let user = load(state.users.as_ref(), &tenant, &parse_id(&id)?).await?;
    Ok(
        ScimResponse::ok(project(&state, &tenant, &base, &user, &projection, true).await?)
            .with_etag(user.meta.etag()),
    )
}

pub async fn create(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    BaseUrl(base): BaseUrl,
    ProjectionQuery(projection): ProjectionQuery,
    ScimJson(body): ScimJson,
) -> ApiResult<ScimResponse> {
    let user = UserResource::from_request(body)?;
    let stored = state.users.create(&tenant, user).await?;
    tracing::info!(user_id = %stored.id, "user created");
    Ok(ScimResponse::created(
        project(&state, &tenant, &base, &stored, &projection, false).await?,
        location(&base, &stored.id),
    )
    .with_etag(stored.meta.etag()))
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
    let next = UserResource::from_request(body)?;
    let id = parse_id(&id)?;
    let store = state.users.as_ref();
    let mut attempt = 0;
    // Like PATCH: a write lost to a concurrent one re-reads the user and
    // retries (the body replaces whatever it finds; uniqueness is checked
    // again by the write), unless `If-Match` pinned the version (412).
    let stored = loop {
        attempt += 1;
        let current = load(store, &tenant, &id).await?;
        if_match.check(&current.meta.etag())?;
        match write(store, &tenant, &current, next.clone(), &if_match).await {
            Err(ApiError::Store(StoreError::VersionMismatch))
                if !if_match.is_set() && attempt < retry::ATTEMPTS =>
            {
                retry::pause(attempt).await;
            }
            other => break other?,
        }
    };
    Ok(
        ScimResponse::ok(project(&state, &tenant, &base, &stored, &projection, true).await?)
            .with_etag(stored.meta.etag()),
    )
}

pub async fn patch(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    BaseUrl(base): BaseUrl,
    PathSegment(id): PathSegment,
    if_match: IfMatch,
    ProjectionQuery(projection): ProjectionQuery,
    ScimJson(body): ScimJson,
) -> ApiResult<ScimResponse> {
    let request = PatchRequest::from_json(body)?;
    let id = parse_id(&id)?;
    let store = state.users.as_ref();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = load(store, &tenant, &id).await?;
        if_match.check(&current.meta.etag())?;
        let mut doc = current.user.doc.clone();
        let outcome = patch::apply(&mut doc, &request, &USER_RESOURCE)?;
        if !outcome.member_changes.is_empty() {
            return Err(ScimError::invalid_path("users have no members attribute").into());
        }
        let next = UserResource::from_doc(doc)?;
        if next == current.user {
            // Nothing changed: no write, same version (Entra re-sends a lot).
            return Ok(ScimResponse::ok(
                project(&state, &tenant, &base, &current, &projection, true).await?,
            )
            .with_etag(current.meta.etag()));
        }
        match write(store, &tenant, &current, next, &if_match).await {
            Err(ApiError::Store(StoreError::VersionMismatch))
                if !if_match.is_set() && attempt < retry::ATTEMPTS =>
            {
                retry::pause(attempt).await;
                continue;
            }
            Err(e) => return Err(e),
            Ok(stored) => {
                return Ok(ScimResponse::ok(
                    project(&state, &tenant, &base, &stored, &projection, true).await?,
                )
                .with_etag(stored.meta.etag()));
            }
        }
    }
}

/// Writes `next` over `current`; with `If-Match`, a concurrent change is 412.
async fn write(
    store: &dyn UserStore,
    tenant: &TenantId,
    current: &StoredUser,
    next: UserResource,
    if_match: &IfMatch,
) -> ApiResult<StoredUser> {
    match store.replace(tenant, current, next).await {
        Err(StoreError::VersionMismatch) if if_match.is_set() => {
            Err(ScimError::precondition_failed(
                "the resource changed while the request was processed (If-Match)",
            )
            .into())
        }
        other => Ok(other?),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    PathSegment(id): PathSegment,
    if_match: IfMatch,
) -> ApiResult<ScimResponse> {
    let id = parse_id(&id)?;
    let store = state.users.as_ref();
    let not_found = || ApiError::from(ScimError::not_found(format!("no user with id {id:?}")));
    for attempt in 1..=retry::ATTEMPTS {
        // The user, or what an interrupted DELETE of it left to remove.
        let target = store
            .get_for_delete(&tenant, &id)
            .await?
            .ok_or_else(not_found)?;
        match &target.meta {
            Some(meta) => if_match.check(&meta.etag())?,
            // An interrupted delete of a user whose last version is not
            // kept: no ETag can match it.
            None if if_match.is_set() => {
                return Err(ScimError::precondition_failed(
                    "the user is already deleted (If-Match)",
                )
                .into());
            }
            None => {}
        }
        // The memberships go in the same version-checked write as the user
        // (see scim_store::deletion): a delete that fails changes nothing.
        match store.delete(&tenant, &target).await {
            Ok(()) => {
                tracing::info!(user_id = %id, "user deleted");
                return Ok(ScimResponse::no_content());
            }
            Err(StoreError::VersionMismatch) if if_match.is_set() => {
                return Err(ScimError::precondition_failed(
                    "the user changed while the request was processed (If-Match)",
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
    let store = state.users.as_ref();
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
            let candidates = match index_lookup(f) {
                Some(lookup) => lookup.run(store, &tenant).await?,
                None => {
                    listing::scan_all("users", "id, userName, externalId or emails", page_of)
                        .await?
                }
            };
            let mut matching: Vec<StoredUser> = candidates
                .into_iter()
                .filter(|u| f.matches(&to_json(&base, u), &USER_RESOURCE))
                .collect();
            matching.sort_by(|a, b| a.id.cmp(&b.id));
            matching.dedup_by(|a, b| a.id == b.id);
            let total = matching.len();
            let page = matching
                .into_iter()
                .skip(paging.offset())
                .take(paging.count)
                .collect();
            (page, total)
        }
    };
    // Groups cost a query per user: in lists only when explicitly asked for.
    let with_groups = !query.projection.is_default();
    let mut resources = Vec::with_capacity(page.len());
    for u in &page {
        resources.push(project(&state, &tenant, &base, u, &query.projection, with_groups).await?);
    }
    Ok(ScimResponse::ok(list_response(
        resources,
        total,
        paging.start_index,
    )))
}

/// A key read that yields every user a filter can match.
#[derive(Debug, PartialEq)]
enum Lookup {
    Id(String),
    UserName(String),
    ExternalId(String),
    Email(String),
}

impl Lookup {
    async fn run(&self, store: &dyn UserStore, tenant: &TenantId) -> ApiResult<Vec<StoredUser>> {
        Ok(match self {
            Self::Id(id) => match ResourceId::parse(id) {
                Some(id) => store.get(tenant, &id).await?.into_iter().collect(),
                None => Vec::new(),
            },
            Self::UserName(v) => store
                .find_by_user_name(tenant, v)
                .await?
                .into_iter()
                .collect(),
            Self::ExternalId(v) => store
                .find_by_external_id(tenant, v)
                .await?
                .into_iter()
                .collect(),
            Self::Email(v) => store.find_by_email(tenant, v).await?,
        })
    }
}

/// Picks an indexed equality term from the filter's top-level `and` chain.
fn index_lookup(filter: &Filter) -> Option<Lookup> {
    filter.conjuncts().into_iter().find_map(|term| match term {
        Filter::Attr {
            path,
            test: AttrTest::Compare(CompareOp::Eq, value),
        } => {
            let v = literal(value)?;
            if !core(path) {
                return None;
            }
            let is_email = path.name.eq_ignore_ascii_case("emails")
                && path
                    .sub
                    .as_deref()
                    .is_none_or(|s| s.eq_ignore_ascii_case("value"));
            if path.is("id") {
                Some(Lookup::Id(v))
            } else if path.is("userName") {
                Some(Lookup::UserName(v))
            } else if path.is("externalId") {
                Some(Lookup::ExternalId(v))
            } else if is_email {
                Some(Lookup::Email(v))
            } else {
                None
            }
        }
        Filter::ValuePath {
            path,
            sub: Some((sub, AttrTest::Compare(CompareOp::Eq, value))),
            ..
        } if core(path)
            && path.name.eq_ignore_ascii_case("emails")
            && sub.eq_ignore_ascii_case("value") =>
        {
            literal(value).map(Lookup::Email)
        }
        _ => None,
    })
}

fn core(path: &AttrPath) -> bool {
    path.urn
        .as_deref()
        .is_none_or(|u| u.eq_ignore_ascii_case(USER_SCHEMA))
}

/// Literal as the string it is compared with (legacy unquoted numbers too).
fn literal(v: &CompValue) -> Option<String> {
    match v {
        CompValue::Str(s) => Some(s.clone()),
        CompValue::Num(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(f: &str) -> Option<Lookup> {
        index_lookup(&parse_filter(f).unwrap())
    }

    #[test]
    fn entra_match_queries_are_planned_onto_key_reads() {
        assert_eq!(
            plan(r#"externalId eq "abc""#),
            Some(Lookup::ExternalId("abc".into()))
        );
        assert_eq!(
            plan(r#"userName eq "A@b.c""#),
            Some(Lookup::UserName("A@b.c".into()))
        );
        assert_eq!(
            plan(r#"emails[type eq "work"].value eq "a@b.c""#),
            Some(Lookup::Email("a@b.c".into()))
        );
        assert_eq!(
            plan(r#"id eq "u1" and manager eq "m1""#),
            Some(Lookup::Id("u1".into()))
        );
        assert_eq!(
            plan(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#),
            Some(Lookup::UserName("x".into()))
        );
    }

    #[test]
    fn filters_without_an_indexed_equality_are_not_planned() {
        assert_eq!(plan(r#"userName sw "a""#), None);
        assert_eq!(plan(r#"userName eq "a" or externalId eq "b""#), None);
        assert_eq!(plan(r#"title eq "CEO""#), None);
    }
}
