//! `/Users` handlers: parse the request, call the directory's operation
//! (`scim_domain::users`), render the user.

use axum::extract::State;
use scim_domain::users::user_json;
use scim_proto::ast::AttrPath;
use scim_proto::filter::parse_filter;
use scim_proto::ids::TenantId;
use scim_proto::patch::PatchRequest;
use scim_proto::projection::Projection;
use scim_proto::resource::UserResource;
use scim_proto::schema::USER_RESOURCE;
use scim_proto::search::ListRequest;
use scim_store::deletion::Deleted;
use scim_store::users::StoredUser;
use serde_json::Value;

use crate::AppState;
use crate::auth::{Caller, Tenant};
use crate::error::{ApiError, ApiResult};
use crate::extract::{BaseUrl, IfMatch, Listing, PathSegment, ProjectionQuery, ScimJson};
use crate::response::ScimResponse;

/// The user as returned, with its read-only `groups` when `with_groups`
/// and the projection wants them.
pub(crate) async fn render(
    state: &AppState,
    tenant: &TenantId,
    base: &str,
    u: &StoredUser,
    projection: &Projection,
    with_groups: bool,
) -> ApiResult<Value> {
    let Value::Object(mut map) = user_json(base, u) else {
        return Ok(Value::Null);
    };
    if with_groups && projection.wants(&AttrPath::simple("groups")) {
        let groups = state.directory().user_groups(tenant, &u.id).await?;
        if !groups.is_empty() {
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

/// `200` with the user and its ETag.
async fn ok(
    state: &AppState,
    tenant: &TenantId,
    base: &str,
    user: &StoredUser,
    projection: &Projection,
) -> ApiResult<ScimResponse> {
    Ok(
        ScimResponse::ok(render(state, tenant, base, user, projection, true).await?)
            .with_etag(user.meta.etag()),
    )
}

pub async fn get(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    BaseUrl(base): BaseUrl,
    PathSegment(id): PathSegment,
    ProjectionQuery(projection): ProjectionQuery,
) -> ApiResult<ScimResponse> {
    let user = state.directory().user(&tenant, &id).await?;
    ok(&state, &tenant, &base, &user, &projection).await
}

pub async fn create(
    State(state): State<AppState>,
    Caller { tenant, provider }: Caller,
    BaseUrl(base): BaseUrl,
    ProjectionQuery(projection): ProjectionQuery,
    ScimJson(body): ScimJson,
) -> ApiResult<ScimResponse> {
    // A refused create is logged with the userName it was about.
    let name = body
        .get("userName")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let created = async {
        let user = UserResource::from_request(body)?;
        Ok(state
            .directory()
            .create_user(&tenant, user, provider)
            .await?)
    };
    let stored: StoredUser = created.await.map_err(|e: ApiError| e.about(name))?;
    Ok(ScimResponse::created(
        render(&state, &tenant, &base, &stored, &projection, false).await?,
        scim_domain::users::user_location(&base, &stored.id),
    )
    .with_etag(stored.meta.etag()))
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
    let next = UserResource::from_request(body)?;
    let stored = state
        .directory()
        .replace_user(&tenant, &id, next, &pre, provider)
        .await?;
    state.background.deprovision(tenant.clone());
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
    let stored = state
        .directory()
        .patch_user(&tenant, &id, &request, &pre, provider)
        .await?;
    state.background.deprovision(tenant.clone());
    ok(&state, &tenant, &base, &stored, &projection).await
}

pub async fn delete(
    State(state): State<AppState>,
    Caller { tenant, provider }: Caller,
    PathSegment(id): PathSegment,
    IfMatch(pre): IfMatch,
) -> ApiResult<ScimResponse> {
    let directory = state.directory();
    let deleted = directory.delete_user(&tenant, &id, &pre, provider).await?;
    state.background.deprovision(tenant.clone());
    if deleted == Deleted::CleanupPending {
        state.background.finish_deletes(directory, tenant);
    }
    Ok(ScimResponse::no_content())
}

/// `GET /Users` and `POST /Users/.search`: one list, asked for in the
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

/// The page of users a list request asks for, rendered, and the total.
pub(crate) async fn find(
    state: &AppState,
    tenant: &TenantId,
    base: &str,
    query: &ListRequest,
) -> ApiResult<(Vec<Value>, usize)> {
    let filter = query.filter.as_deref().map(parse_filter).transpose()?;
    let page = state
        .directory()
        .list_users(
            tenant,
            filter.as_ref(),
            &query.paging,
            query.sort.as_ref(),
            base,
        )
        .await?;
    // Groups cost a query per user: in lists only when explicitly asked for.
    let with_groups = !query.projection.is_default();
    let mut resources = Vec::with_capacity(page.resources.len());
    for u in &page.resources {
        resources.push(render(state, tenant, base, u, &query.projection, with_groups).await?);
    }
    Ok((resources, page.total))
}
