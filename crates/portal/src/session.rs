//! The session cookie: set when a one-time link is opened, checked on every
//! page and API call. State-changing requests must also echo the session's
//! CSRF token (a form field, or the `X-CSRF-Token` header for the API).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scim_domain::portal::{SESSION_TTL, Session};

use crate::PortalState;
use crate::pages;

/// The cookie's name.
pub const COOKIE: &str = "scimsync_portal";

/// A page request with a valid session.
#[derive(Debug, Clone)]
pub struct PageSession {
    pub session: Session,
    pub csrf: String,
}

/// An API request with a valid session.
#[derive(Debug, Clone)]
pub struct ApiSession(pub PageSession);

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

async fn resolve(parts: &Parts, state: &PortalState) -> Result<Option<PageSession>, Response> {
    let Some(value) = cookie_value(&parts.headers) else {
        return Ok(None);
    };
    let session = match state.portal.session(value).await {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        Err(e) => return Err(pages::failure(&e)),
    };
    match state.portal.csrf_token(&session).await {
        Ok(csrf) => Ok(Some(PageSession { session, csrf })),
        Err(e) => Err(pages::failure(&e)),
    }
}

impl FromRequestParts<PortalState> for PageSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PortalState,
    ) -> Result<Self, Self::Rejection> {
        resolve(parts, state)
            .await?
            .ok_or_else(|| pages::session_ended(&state.config))
    }
}

impl FromRequestParts<PortalState> for ApiSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PortalState,
    ) -> Result<Self, Self::Rejection> {
        match resolve(parts, state).await? {
            Some(s) => Ok(Self(s)),
            None => Err(api_error(
                StatusCode::UNAUTHORIZED,
                "no valid portal session; open User Provisioning again from the app",
            )),
        }
    }
}

/// A JSON error body.
pub fn api_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({"error": message}))).into_response()
}

/// Whether the request came to a loopback host (local development), where
/// a `Secure` cookie would never be sent back over plain http.
fn loopback(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|h| host == *h || host.starts_with(&format!("{h}:")))
}

/// The `Set-Cookie` value starting a session.
pub fn set_cookie(headers: &HeaderMap, value: &str) -> String {
    let secure = if loopback(headers) { "" } else { "; Secure" };
    format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/portal; Max-Age={}{secure}",
        SESSION_TTL.as_secs()
    )
}

/// Whether a submitted CSRF token is the session's (constant time).
pub fn csrf_ok(session: &PageSession, submitted: Option<&str>) -> bool {
    submitted.is_some_and(|t| scim_domain::portal::same_token(&session.csrf, t))
}

/// A form POST with a valid session that carries the session's CSRF token
/// (field `csrf`); anything else is refused before the handler runs, so
/// nothing changes.
#[derive(Debug)]
pub struct CheckedForm {
    pub session: PageSession,
    /// The form's fields, repeated names kept in order.
    pub fields: Vec<(String, String)>,
}

/// Largest form accepted (the mapping form with 100 rows fits easily).
const MAX_FORM_BYTES: usize = 64 * 1024;

impl FromRequest<PortalState> for CheckedForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &PortalState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = PageSession::from_request_parts(&mut parts, state).await?;
        let refused = || {
            pages::message_page(
                &state.config,
                StatusCode::FORBIDDEN,
                "This form could not be accepted",
                "It did not come from your User Provisioning page, or the page was open too long. Nothing was changed. Go back to the page and try again.",
            )
        };
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return Err(refused());
        };
        let fields: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        if !csrf_ok(&session, field(&fields, "csrf")) {
            return Err(refused());
        }
        Ok(Self { session, fields })
    }
}

/// The first value of a form field.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
