//! SCIM error responses (RFC 7644 §3.12).
//!
//! Every failure a client can cause is a [`ScimError`] with the HTTP status and
//! the `scimType` the RFC assigns. The HTTP layer renders it; nothing here knows
//! about HTTP frameworks.

use serde::Serialize;

/// The URN every SCIM error body carries.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// `scimType` values from RFC 7644 §3.12, table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

/// A client-facing SCIM error: status, optional `scimType`, and a `detail`
/// that Entra shows verbatim in its provisioning log, so it must be actionable
/// and must never carry internal details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {scim_type:?}: {detail}")]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Mutability, detail)
    }
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::TooMany, detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(413, None, detail)
    }
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(405, None, detail)
    }
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(415, None, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, None, detail)
    }
    /// A server-side failure. The detail is deliberately generic: the cause is
    /// logged by the caller, never returned.
    pub fn internal() -> Self {
        Self::new(
            500,
            None,
            "The server could not complete the request; it can be retried.",
        )
    }
    pub fn unavailable() -> Self {
        Self::new(
            503,
            None,
            "The directory is temporarily unavailable; retry later.",
        )
    }

    /// The RFC 7644 §3.12 JSON body (`status` as a string).
    pub fn to_body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(obj)) = (self.scim_type, body.as_object_mut()) {
            obj.insert(
                "scimType".into(),
                serde_json::to_value(t).unwrap_or_default(),
            );
        }
        body
    }
}

pub type ScimResult<T> = Result<T, ScimError>;

/// Client input as echoed in a `detail`: at most 64 characters, cut on a
/// character boundary, so that a huge name cannot make a huge error body.
pub(crate) fn shorten(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    match s.char_indices().nth(MAX_CHARS) {
        None => s.to_owned(),
        Some((end, _)) => format!("{}…", s.get(..end).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_string_status_and_camel_case_scim_type() {
        let body = ScimError::uniqueness("userName taken").to_body();
        assert_eq!(body["status"], "409");
        assert_eq!(body["scimType"], "uniqueness");
        assert_eq!(body["schemas"][0], ERROR_SCHEMA);
    }

    #[test]
    fn error_body_without_scim_type_omits_the_key() {
        let body = ScimError::not_found("no such user").to_body();
        assert!(body.get("scimType").is_none());
    }
}
