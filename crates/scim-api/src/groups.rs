//! `/Groups` handlers: parse the request, call the directory's operation
//! (`scim_domain::groups`), render the group.

use axum::extract::State;
use scim_domain::groups::{group_json, group_location, member_refs};
use scim_proto::ScimError;
use scim_proto::ast::AttrPath;
use scim_proto::filter::parse_filter;
use scim_proto::ids::TenantId;
use scim_proto::patch::PatchRequest;
use scim_proto::projection::Projection;
use scim_proto::resource::GroupResource;
use scim_proto::schema::GROUP_RESOURCE;
use scim_proto::search::ListRequest;
use scim_store::deletion::Deleted;
use scim_store::groups::StoredGroup;
use serde_json::Value;

use crate::AppState;
use crate::auth::{Caller, Tenant};
use crate::error::{ApiError, ApiResult};
use crate::extract::{BaseUrl, IfMatch, Listing, PathSegment, ProjectionQuery, ScimJson};
use crate::response::ScimResponse;

/// Most members one response may carry. A member entry is ~160 bytes, so this
/// stays well inside Lambda's 6 MB response limit; larger groups must be read
/// with `excludedAttributes=members`.
pub const MAX_MEMBERS_RETURNED: usize = 20_000;

/// The group as returned; loads members only when the response includes
/// them, and refuses (400 `tooMany`) rather than truncating a huge list.
pub(crate) async fn render(
    state: &AppState,
    tenant: &TenantId,
    base: &str,
    g: &StoredGroup,
    projection: &Projection,
    budget: &mut usize,
) -> ApiResult<Value> {
    let mut map = group_json(base, g);
    if projection.wants(&AttrPath::simple("members")) {
        let members = state
            .directory()
            .group_members(tenant, &g.id, Some(*budget + 1))
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

/// `200` with the group and its ETag.
async fn ok(
    state: &AppState,
    tenant: &TenantId,
    base: &str,
    g: &StoredGroup,
    projection: &Projection,
) -> ApiResult<ScimResponse> {
    let mut budget = MAX_MEMBERS_RETURNED;
    let body = render(state, tenant, base, g, projection, &mut budget).await?;
    Ok(ScimResponse::ok(body).with_etag(g.meta.etag()))
}

pub async fn get(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    BaseUrl(base): BaseUrl,
    PathSegment(id): PathSegment,
    ProjectionQuery(projection): ProjectionQuery,
) -> ApiResult<ScimResponse> {
    let g = state.directory().group(&tenant, &id).await?;
    ok(&state, &tenant, &base, &g, &projection).await
}

pub async fn create(
    State(state): State<AppState>,
    Caller { tenant, provider }: Caller,
    BaseUrl(base): BaseUrl,
    ProjectionQuery(projection): ProjectionQuery,
    ScimJson(body): ScimJson,
) -> ApiResult<ScimResponse> {
    // A refused create is logged with the displayName it was about.
    let name = body
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let created = async {
        let (group, members) = GroupResource::from_request(body)?;
        Ok(state
            .directory()
            .create_group(&tenant, group, &members, provider)
            .await?)
    };
    let stored: StoredGroup = created.await.map_err(|e: ApiError| e.about(name))?;
    let mut budget = MAX_MEMBERS_RETURNED;
    let body = render(&state, &tenant, &base, &stored, &projection, &mut budget).await?;
    Ok(
        ScimResponse::created(body, group_location(&base, &stored.id))
            .with_etag(stored.meta.etag()),
    )
}

pub async fn replace(
    State(state): State<AppState>,
    Caller { tenant, provider }: Caller,
    BaseUrl(base): BaseUrl,
    PathSegment(id): PathSegment,
    IfMatch(pre): IfMatch,
    ProjectionQuery(projection): ProjectionQuery,
    ScimJson(body): ScimJson,
) -> ApiResult<ScimResponse> {
    let (next, members) = GroupResource::from_request(body)?;
    let stored = state
        .directory()
        .replace_group(&tenant, &id, next, &members, &pre, provider)
        .await?;
    ok(&state, &tenant, &base, &stored, &projection).await
}

pub async fn patch(
    State(state): State<AppState>,
    Caller { tenant, provider }: Caller,
    BaseUrl(base): BaseUrl,
    PathSegment(id): PathSegment,
    IfMatch(pre): IfMatch,
    ProjectionQuery(projection): ProjectionQuery,
    ScimJson(body): ScimJson,
) -> ApiResult<ScimResponse> {
    let request = PatchRequest::from_json(body)?;
    let directory = state.directory();
    let stored = directory
        .patch_group(&tenant, &id, &request, &pre, provider)
        .await?;
    // Entra wants 204 for group PATCH; a client that asks for attributes
    // gets the resource (read now if the PATCH did not need to).
    if projection.is_default() {
        return Ok(ScimResponse::no_content());
    }
    let stored = match stored {
        Some(g) => g,
        None => directory.group(&tenant, &id).await?,
    };
    ok(&state, &tenant, &base, &stored, &projection).await
}

pub async fn delete(
    State(state): State<AppState>,
    Caller { tenant, provider }: Caller,
    PathSegment(id): PathSegment,
    IfMatch(pre): IfMatch,
) -> ApiResult<ScimResponse> {
    let directory = state.directory();
    if directory.delete_group(&tenant, &id, &pre, provider).await? == Deleted::CleanupPending {
        state.background.finish_deletes(directory, tenant);
    }
    Ok(ScimResponse::no_content())
}

/// `GET /Groups` and `POST /Groups/.search`: one list, asked for in the
/// query string or in a body.
pub async fn list(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    BaseUrl(base): BaseUrl,
    Listing(query): Listing,
) -> ApiResult<ScimResponse> {
    let (resources, total) = find(&state, &tenant, &base, &query).await?;
    Ok(ScimResponse::listed(resources, total, &query))
}

/// The page of groups a list request asks for, rendered, and the total.
pub(crate) async fn find(
    state: &AppState,
    tenant: &TenantId,
    base: &str,
    query: &ListRequest,
) -> ApiResult<(Vec<Value>, usize)> {
    let filter = query.filter.as_deref().map(parse_filter).transpose()?;
    let page = state
        .directory()
        .list_groups(
            tenant,
            filter.as_ref(),
            &query.paging,
            query.sort.as_ref(),
            base,
        )
        .await?;
    let mut budget = MAX_MEMBERS_RETURNED;
    let mut resources = Vec::with_capacity(page.resources.len());
    for g in &page.resources {
        resources.push(render(state, tenant, base, g, &query.projection, &mut budget).await?);
    }
    Ok((resources, page.total))
}
