//! Storage errors. Callers branch on the variants; the `Unavailable` and
//! `Internal` sources are logged by the HTTP layer and never shown to clients.

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    UserName,
    ExternalId,
    DisplayName,
    /// A member's email (Members table; unique per tenant, ignoring case).
    Email,
}

impl Unique {
    pub fn attribute(self) -> &'static str {
        match self {
            Self::UserName => "userName",
            Self::ExternalId => "externalId",
            Self::DisplayName => "displayName",
            Self::Email => "email",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another resource of the tenant already holds this value.
    #[error("{} is already taken", .0.attribute())]
    Conflict(Unique),
    /// The resource changed since it was read (optimistic concurrency).
    #[error("the resource was modified concurrently")]
    VersionMismatch,
    /// The resource does not exist (or no longer does).
    #[error("not found")]
    NotFound,
    /// AWS answered with throttling, a timeout or a 5xx: retryable.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// DynamoDB refused a key or item as invalid (empty or oversized key,
    /// item over 400 KB): the input cannot be stored, and retrying will not
    /// help. The HTTP layer answers 400.
    #[error("storage refused the input: {0}")]
    Rejected(String),
    /// Anything else that is our fault (bad item shape, SDK misuse).
    #[error("storage failure: {0}")]
    Internal(String),
}

impl StoreError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

/// Classifies an SDK error: service-side transient problems are `Unavailable`.
pub(crate) fn from_sdk<E, R>(err: aws_sdk_dynamodb::error::SdkError<E, R>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => matches!(
            se.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "LimitExceededException"
            )
        ),
        _ => false,
    };
    let rejected = match &err {
        SdkError::ServiceError(se) => {
            se.err().code() == Some("ValidationException")
                && se.err().message().is_some_and(is_size_validation)
        }
        _ => false,
    };
    let text = DisplayErrorContext(err).to_string();
    if transient {
        StoreError::Unavailable(text)
    } else if rejected {
        StoreError::Rejected(text)
    } else {
        StoreError::Internal(text)
    }
}

/// Whether a `ValidationException` message is about a key's or an item's
/// size, i.e. about the data rather than about how we built the request
/// (a malformed expression stays an internal error).
pub(crate) fn is_size_validation(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "item size has exceeded",
        "size has exceeded",
        "exceeds the maximum",
        "key element",
        "key attribute value",
        "empty string",
        "cannot be empty",
        "must not be empty",
        "length of",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}
