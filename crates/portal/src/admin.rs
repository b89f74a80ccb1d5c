//! `POST /admin/v1/portal-links`: the app's backend mints a one-time link
//! for one tenant when its admin opens the settings page. API Gateway's
//! `AWS_IAM` authorizer guards the route; the handler also refuses any
//! request that did not come through an IAM-authorised route, so a request
//! reaching the function by another path cannot mint links.

use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use scim_domain::portal::{DEFAULT_LINK_TTL, PortalError};
use scim_proto::ids::TenantId;
use serde::Deserialize;
use serde_json::json;

use crate::PortalState;
use crate::session::api_error;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LinkRequest {
    tenant: String,
    return_url: Option<String>,
    ttl_seconds: Option<u64>,
}

/// Whether API Gateway authorised this request with IAM (SigV4).
fn iam_authorised(req: &Request) -> bool {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.authorizer.as_ref().is_some_and(|a| a.iam.is_some())
        }
        _ => false,
    }
}

pub async fn mint(State(state): State<PortalState>, req: Request) -> Response {
    if !iam_authorised(&req) {
        return api_error(
            StatusCode::FORBIDDEN,
            "this route needs IAM (SigV4) authorisation",
        );
    }
    let base = crate::pages::origin(req.headers());
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), 16 * 1024).await else {
        return api_error(StatusCode::PAYLOAD_TOO_LARGE, "body over 16 KiB");
    };
    let Ok(body) = serde_json::from_slice::<LinkRequest>(&bytes) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "expected {\"tenant\": \"<tenant id>\", \"returnUrl\": \"https://...\"} (returnUrl and ttlSeconds optional)",
        );
    };
    let Ok(tenant) = TenantId::parse(&body.tenant) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "tenant must be 1-63 characters of a-z, 0-9 and -",
        );
    };
    let ttl = body
        .ttl_seconds
        .map_or(DEFAULT_LINK_TTL, Duration::from_secs);
    match state
        .portal
        .mint_link(&tenant, &base, ttl, body.return_url.as_deref())
        .await
    {
        Ok(link) => (
            StatusCode::CREATED,
            Json(json!({
                "url": link.url,
                "expires": link.expires.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            })),
        )
            .into_response(),
        Err(PortalError::Invalid(m)) => api_error(StatusCode::BAD_REQUEST, &m),
        Err(PortalError::Store(e)) => {
            tracing::error!(error = %format_args!("{e:#}"), "minting a portal link failed");
            api_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable; retry")
        }
    }
}
