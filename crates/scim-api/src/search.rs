//! `POST /.search` at the root (RFC 7644 §3.4.3): users and groups in one
//! list. A filter is evaluated on both (an attribute one type lacks simply
//! does not match); without `sortBy` users come first, then groups, and the
//! window runs across both; with `sortBy` both are merged in sort order.

use axum::extract::State;
use scim_domain::groups::group_json;
use scim_domain::listing::MAX_FILTER_SCAN;
use scim_domain::users::user_json;
use scim_proto::filter::parse_filter;
use scim_proto::ids::TenantId;
use scim_proto::list::Paging;
use scim_proto::schema::{GROUP_RESOURCE, USER_RESOURCE};
use scim_proto::search::ListRequest;
use scim_proto::sort::Sort;
use serde_json::Value;

use crate::AppState;
use crate::auth::Tenant;
use crate::error::ApiResult;
use crate::extract::{BaseUrl, Listing};
use crate::groups::MAX_MEMBERS_RETURNED;
use crate::response::ScimResponse;
use crate::{groups, users};

pub async fn search(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    BaseUrl(base): BaseUrl,
    Listing(query): Listing,
) -> ApiResult<ScimResponse> {
    let (resources, total) = match &query.sort {
        None => concatenated(&state, &tenant, &base, &query).await?,
        Some(sort) => merged(&state, &tenant, &base, &query, sort).await?,
    };
    Ok(ScimResponse::listed(resources, total, &query))
}

/// Users, then groups: the window's share of each, read as two pages.
async fn concatenated(
    state: &AppState,
    tenant: &TenantId,
    base: &str,
    query: &ListRequest,
) -> ApiResult<(Vec<Value>, usize)> {
    let (offset, count) = (query.paging.offset(), query.paging.count);
    let (mut resources, users_total) = users::find(state, tenant, base, query).await?;
    let groups_query = ListRequest {
        paging: Paging {
            start_index: offset.saturating_sub(users_total) + 1,
            count: count - resources.len(),
        },
        ..query.clone()
    };
    let (groups, groups_total) = groups::find(state, tenant, base, &groups_query).await?;
    resources.extend(groups);
    Ok((resources, users_total + groups_total))
}

/// Both whole results (bounded like a filter scan), merged in sort order;
/// only the window is rendered.
async fn merged(
    state: &AppState,
    tenant: &TenantId,
    base: &str,
    query: &ListRequest,
    sort: &Sort,
) -> ApiResult<(Vec<Value>, usize)> {
    let filter = query.filter.as_deref().map(parse_filter).transpose()?;
    let everything = Paging {
        start_index: 1,
        count: MAX_FILTER_SCAN,
    };
    let directory = state.directory();
    let users = directory
        .list_users(tenant, filter.as_ref(), &everything, Some(sort), base)
        .await?
        .resources;
    let groups = directory
        .list_groups(tenant, filter.as_ref(), &everything, Some(sort), base)
        .await?
        .resources;
    let total = users.len() + groups.len();
    // Each list is sorted already: a stable sort of the pair by key merges
    // them, users before groups on equal keys.
    let mut keyed: Vec<(scim_proto::sort::SortKey, Either<'_>)> = users
        .iter()
        .map(|u| {
            (
                sort.key(&user_json(base, u), &USER_RESOURCE),
                Either::User(u),
            )
        })
        .chain(groups.iter().map(|g| {
            let doc = Value::Object(group_json(base, g));
            (sort.key(&doc, &GROUP_RESOURCE), Either::Group(g))
        }))
        .collect();
    keyed.sort_by(|(a, _), (b, _)| sort.compare(a, b));
    let mut budget = MAX_MEMBERS_RETURNED;
    let with_groups = !query.projection.is_default();
    let mut resources = Vec::new();
    for (_, item) in keyed
        .into_iter()
        .skip(query.paging.offset())
        .take(query.paging.count)
    {
        resources.push(match item {
            Either::User(u) => {
                users::render(state, tenant, base, u, &query.projection, with_groups).await?
            }
            Either::Group(g) => {
                groups::render(state, tenant, base, g, &query.projection, &mut budget).await?
            }
        });
    }
    Ok((resources, total))
}

enum Either<'a> {
    User(&'a scim_store::users::StoredUser),
    Group(&'a scim_store::groups::StoredGroup),
}
