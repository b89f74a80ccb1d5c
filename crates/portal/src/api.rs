//! The JSON API behind the page, for apps that build their own settings
//! page: the same session cookie; writes need the `X-CSRF-Token` header
//! (its value is `GET /portal/api/status`'s `csrf`).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use member_sync::mapping::MappingEntry;
use scim_domain::Members;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::PortalState;
use crate::actions::row_error;
use crate::session::{ApiSession, api_error, csrf_ok};

pub fn routes() -> Router<PortalState> {
    Router::new()
        .route("/status", get(status))
        .route("/activate", axum::routing::post(activate))
        .route("/tokens", axum::routing::post(add_token))
        .route("/revoke", axum::routing::post(revoke))
        .route("/preview", get(preview))
        .route("/sync", get(sync_status).post(sync))
        .route("/mapping", get(mapping).put(set_mapping))
        .route("/members", get(members))
        .route("/history", get(history))
}

fn failed(e: &dyn std::error::Error) -> Response {
    tracing::error!(error = %format_args!("{e:#}"), "portal API request failed");
    api_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily unavailable; nothing was changed, retry",
    )
}

/// The refusal of a write without the session's `X-CSRF-Token`, if so.
fn refused(s: &ApiSession, headers: &HeaderMap) -> Option<Response> {
    let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    (!csrf_ok(&s.0, token)).then(|| {
        api_error(
            StatusCode::FORBIDDEN,
            "missing or wrong X-CSRF-Token header",
        )
    })
}

async fn status(State(state): State<PortalState>, s: ApiSession, headers: HeaderMap) -> Response {
    let tenant = &s.0.session.tenant;
    match state.tenants.status(tenant).await {
        Ok(st) => Json(json!({
            "tenant": tenant.as_str(),
            "provisioning": if st.active { "active" } else { "inactive" },
            "tenantUrl": format!("{}/scim/v2", crate::pages::origin(&headers)),
            "tokens": st.tokens.iter().map(|t| json!({"id": t.id, "created": t.created.unix_timestamp()})).collect::<Vec<_>>(),
            "users": st.users,
            "groups": st.groups,
            "lastCall": st.last_call.as_ref().map(|c| json!({"at": c.at, "provider": c.provider.as_str()})),
            "csrf": s.0.csrf,
        }))
        .into_response(),
        Err(e) => failed(&e),
    }
}

async fn activate(State(state): State<PortalState>, s: ApiSession, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&s, &headers) {
        return r;
    }
    match state.tenants.activate(&s.0.session.tenant, None).await {
        Ok(token) => (StatusCode::CREATED, Json(json!({"token": token.expose()}))).into_response(),
        Err(e) => failed(&e),
    }
}

async fn add_token(
    State(state): State<PortalState>,
    s: ApiSession,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refused(&s, &headers) {
        return r;
    }
    match state.tenants.rotate(&s.0.session.tenant).await {
        Ok(token) => (StatusCode::CREATED, Json(json!({"token": token.expose()}))).into_response(),
        Err(scim_domain::TenancyError::Token(scim_store::tokens::TokenError::NotActive)) => {
            api_error(
                StatusCode::CONFLICT,
                "provisioning is not active; activate it first",
            )
        }
        Err(e) => failed(&e),
    }
}

async fn revoke(State(state): State<PortalState>, s: ApiSession, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&s, &headers) {
        return r;
    }
    match state.tenants.revoke(&s.0.session.tenant).await {
        Ok(n) => Json(json!({"provisioning": "inactive", "revoked": n})).into_response(),
        Err(scim_domain::TenancyError::Token(scim_store::tokens::TokenError::NotActive)) => {
            Json(json!({"provisioning": "inactive", "revoked": 0})).into_response()
        }
        Err(e) => failed(&e),
    }
}

async fn preview(State(state): State<PortalState>, s: ApiSession) -> Response {
    match state.members.preview(&s.0.session.tenant).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => failed(&e),
    }
}

async fn sync_status(State(state): State<PortalState>, s: ApiSession) -> Response {
    match state.members.status(&s.0.session.tenant).await {
        Ok(st) => Json(
            json!({"running": st.running, "progress": st.progress, "lastSuccess": st.last_success, "lastRun": st.last_run}),
        )
        .into_response(),
        Err(e) => failed(&e),
    }
}

async fn sync(State(state): State<PortalState>, s: ApiSession, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&s, &headers) {
        return r;
    }
    match crate::launch::start(&state, &s.0.session.tenant).await {
        Ok(true) => (StatusCode::ACCEPTED, Json(json!({"started": true}))).into_response(),
        Ok(false) => (
            StatusCode::CONFLICT,
            Json(json!({"started": false, "error": "a synchronization is already running"})),
        )
            .into_response(),
        Err(e) => failed(e.as_ref()),
    }
}

async fn mapping(State(state): State<PortalState>, s: ApiSession) -> Response {
    match state.members.mapping(&s.0.session.tenant).await {
        Ok(m) => Json(json!({"mapping": m})).into_response(),
        Err(e) => failed(&e),
    }
}

#[derive(Debug, Deserialize)]
struct MappingBody {
    mapping: Vec<MappingEntry>,
}

async fn set_mapping(
    State(state): State<PortalState>,
    s: ApiSession,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = refused(&s, &headers) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<MappingBody>(&body) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "expected {\"mapping\": [{\"path\": ..., \"property\": ...}]}",
        );
    };
    if let Err(e) = Members::check_mapping(&body.mapping) {
        let (row, message) = row_error(&e);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": message, "row": row})),
        )
            .into_response();
    }
    match state
        .members
        .set_mapping(&s.0.session.tenant, body.mapping)
        .await
    {
        Ok(m) => Json(json!({"mapping": m})).into_response(),
        Err(e) => failed(&e),
    }
}

#[derive(Debug, Deserialize)]
struct MembersQuery {
    after: Option<String>,
    limit: Option<usize>,
}

async fn members(
    State(state): State<PortalState>,
    s: ApiSession,
    Query(q): Query<MembersQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    match state
        .members
        .members_page(&s.0.session.tenant, q.after.as_deref(), limit)
        .await
    {
        Ok((members, next)) => Json(json!({"members": members, "next": next})).into_response(),
        Err(e) => failed(&e),
    }
}

async fn history(State(state): State<PortalState>, s: ApiSession) -> Response {
    match state.members.history(&s.0.session.tenant, 50).await {
        Ok(runs) => Json(Value::Array(runs)).into_response(),
        Err(e) => failed(&e),
    }
}
