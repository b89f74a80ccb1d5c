//! Bearer-token authentication. The token names its tenant, so one cached
//! secret read and a constant-time digest compare resolve who is calling; the
//! tenant then scopes every storage call. Tokens are never logged.

use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, Method, header};
use scim_proto::ScimError;
use scim_proto::ids::TenantId;
use scim_proto::provider::Provider;
use scim_store::tokens::ApiToken;
use secrecy::SecretString;
use tokio::time::Instant;

use crate::AppState;
use crate::activity;
use crate::error::{ApiError, scim_error_response};
use crate::limits::Admission;

/// Middleware: resolves the tenant from `Authorization: Bearer <token>` or
/// answers 401.
pub async fn require_tenant(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer_token(req.headers()) else {
        return scim_error_response(&ScimError::unauthorized(
            "send the tenant's API token as 'Authorization: Bearer <token>'",
        ));
    };
    match state.tenants().authenticate(&token).await {
        Ok(Some(tenant)) => {
            let provider = Provider::from_user_agent(
                req.headers()
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok()),
            );
            let span = tracing::Span::current();
            span.record("tenant", tenant.as_str());
            span.record("provider", provider.as_str());
            // Kept to describe the request if it is refused.
            let (method, uri) = (req.method().clone(), req.uri().clone());
            let now = Instant::now();
            if let Admission::Limited(wait) = state.limits.check(&tenant, now) {
                tracing::info!(%tenant, "tenant over its request rate limit");
                let refused = too_many_requests(wait);
                return log_rejection(&state, &tenant, provider, (&method, uri.path()), refused)
                    .await;
            }
            req.extensions_mut().insert(tenant.clone());
            req.extensions_mut().insert(provider);
            let response = if state.calls.due(&tenant, now) {
                // Written beside the request, not before it: no added
                // latency, and a failure to note the call never fails the
                // request.
                let tenants = state.tenants();
                let (response, recorded) =
                    tokio::join!(next.run(req), tenants.record_call(&tenant, provider));
                if let Err(e) = recorded {
                    tracing::warn!(%tenant, error = %format_args!("{e:#}"), "could not record the identity provider's call");
                }
                response
            } else {
                next.run(req).await
            };
            log_rejection(&state, &tenant, provider, (&method, uri.path()), response).await
        }
        Ok(None) => {
            tracing::info!("rejected a request with an invalid API token");
            scim_error_response(&ScimError::unauthorized(
                "the API token is not valid; copy the Secret Token shown when provisioning was activated",
            ))
        }
        Err(e) => ApiError::Store(e).into_response(),
    }
}

/// Logs `response` in the tenant's activity if it refused a client's
/// mistake and the tenant's rejection budget allows (a failure to log only
/// logs: the answer stands).
async fn log_rejection(
    state: &AppState,
    tenant: &TenantId,
    provider: Provider,
    request: (&Method, &str),
    response: Response,
) -> Response {
    let Some(mut entry) = activity::rejection_entry(
        provider,
        request,
        response.status(),
        response.extensions().get::<ScimError>(),
        response.extensions().get::<activity::Subject>(),
    ) else {
        return response;
    };
    let Some(suppressed) = state.rejections.admit(tenant, Instant::now()) else {
        return response;
    };
    entry.suppressed = suppressed;
    if let Err(e) = state.activity.record(tenant, &entry).await {
        tracing::warn!(%tenant, error = %format_args!("{e:#}"), "could not log a rejected request");
    }
    response
}

/// `429` with a whole-second `Retry-After` (Okta honours only integers).
fn too_many_requests(wait: Duration) -> Response {
    let mut res = scim_error_response(&ScimError::new(
        429,
        None,
        "too many requests for this tenant; retry after the number of seconds in Retry-After",
    ));
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    res
}

fn bearer_token(headers: &http::HeaderMap) -> Option<ApiToken> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
        .then(|| ApiToken::from_secret(SecretString::from(token.to_owned())))
}

/// The authenticated tenant, put there by [`require_tenant`].
#[derive(Debug, Clone)]
pub struct Tenant(pub TenantId);

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<TenantId>()
            .cloned()
            .map(Self)
            .ok_or_else(|| {
                tracing::error!("a tenant-scoped handler ran without the auth middleware");
                ApiError::Scim(ScimError::internal())
            })
    }
}

/// Who writes: the tenant, and the identity provider calling (from
/// `User-Agent`), whose name goes in the activity log. Both set by
/// [`require_tenant`].
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    pub provider: Provider,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Tenant(tenant) = Tenant::from_request_parts(parts, state).await?;
        let provider = parts
            .extensions
            .get::<Provider>()
            .copied()
            .unwrap_or(Provider::Unnamed);
        Ok(Self { tenant, provider })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    fn headers(auth: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let token = bearer_token(&headers("bearer abc")).unwrap();
        assert_eq!(token.expose(), "abc");
        let _ = SecretString::from("x").expose_secret().len();
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_not_tokens() {
        assert!(bearer_token(&headers("Basic abc")).is_none());
        assert!(bearer_token(&headers("Bearer ")).is_none());
        assert!(bearer_token(&http::HeaderMap::new()).is_none());
    }
}
