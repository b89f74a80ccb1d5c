//! One error type for every handler, rendered as a SCIM error body.
//!
//! Client mistakes carry their own actionable `detail`. Server-side failures
//! are logged here with their cause and answered with a generic message: no
//! internal detail ever reaches the response.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use scim_domain::DomainError;
use scim_proto::ScimError;
use scim_store::StoreError;
use scim_store::error::Unique;

use crate::response::SCIM_CONTENT_TYPE;

#[derive(Debug)]
pub enum ApiError {
    Scim(ScimError),
    Store(StoreError),
    /// An error about the resource named `name` (a refused create), which
    /// the activity log shows.
    About {
        error: Box<ApiError>,
        name: String,
    },
}

impl From<ScimError> for ApiError {
    fn from(e: ScimError) -> Self {
        Self::Scim(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Scim(e) => Self::Scim(e),
            DomainError::Store(e) => Self::Store(e),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The same error, about the resource named `name` (if any).
    #[must_use]
    pub fn about(self, name: Option<String>) -> Self {
        match name {
            Some(name) => Self::About {
                error: Box::new(self),
                name,
            },
            None => self,
        }
    }

    /// The client-facing error, logging what the client must not see.
    pub fn to_scim(&self) -> ScimError {
        match self {
            Self::About { error, .. } => error.to_scim(),
            Self::Scim(e) => e.clone(),
            Self::Store(StoreError::Conflict(u)) => ScimError::uniqueness(match u {
                Unique::UserName => "userName is already in use by another user of this tenant",
                Unique::ExternalId => {
                    "externalId is already in use by another resource of this tenant"
                }
                Unique::DisplayName => {
                    "displayName is already in use by another group of this tenant"
                }
                // Members are not served by the SCIM API; kept total for safety.
                Unique::Email => "email is already in use by another member of this tenant",
            }),
            Self::Store(StoreError::NotFound) => {
                ScimError::not_found("the resource does not exist")
            }
            Self::Store(StoreError::VersionMismatch) => ScimError::conflict(
                "the resource was modified by another request at the same time; retry",
            ),
            Self::Store(e @ StoreError::Unavailable(_)) => {
                tracing::warn!(error = %format_args!("{e:#}"), "storage unavailable");
                ScimError::unavailable()
            }
            Self::Store(e @ StoreError::Rejected(_)) => {
                tracing::info!(error = %format_args!("{e:#}"), "storage refused the request's data");
                ScimError::invalid_value(
                    "a value in the request is too large (or empty where a key is needed) to be stored",
                )
            }
            Self::Store(e @ StoreError::Internal(_)) => {
                tracing::error!(error = %format_args!("{e:#}"), "storage failure");
                ScimError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = scim_error_response(&self.to_scim());
        if let Self::About { name, .. } = self {
            response
                .extensions_mut()
                .insert(crate::activity::Subject(name));
        }
        response
    }
}

/// Renders a [`ScimError`] with the right status, content type and headers.
pub fn scim_error_response(err: &ScimError) -> Response {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&err.to_body()).unwrap_or_default();
    let mut res = (status, body).into_response();
    // For the activity log (`crate::auth`): what was refused, and why.
    res.extensions_mut().insert(err.clone());
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    match err.status {
        401 => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        503 => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        _ => {}
    }
    res
}
