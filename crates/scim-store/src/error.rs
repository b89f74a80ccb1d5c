//! Storage errors. Callers branch on the variants; the `Unavailable`,
//! `Rejected` and `Internal` causes are logged by the HTTP layer and never
//! shown to clients.
//!
//! A [`Cause`] keeps the error underneath (an SDK error, a serde error, ...)
//! as [`std::error::Error::source`], so a log line can carry everything the
//! SDK knew: `{}` shows what failed, `{:#}` the whole chain of reasons.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;

/// An error of any kind, as a [`Cause`] keeps it.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

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

#[derive(Debug)]
pub enum StoreError {
    /// Another resource of the tenant already holds this value.
    Conflict(Unique),
    /// The resource changed since it was read (optimistic concurrency).
    VersionMismatch,
    /// The resource does not exist (or no longer does).
    NotFound,
    /// AWS answered with throttling, a timeout or a 5xx: retryable.
    Unavailable(Cause),
    /// DynamoDB refused a key or item as invalid (empty or oversized key,
    /// item over 400 KB): the input cannot be stored, and retrying will not
    /// help. The HTTP layer answers 400.
    Rejected(Cause),
    /// Anything else that is our fault (bad item shape, SDK misuse).
    Internal(Cause),
}

/// What a failed storage call was doing, and the error underneath it when
/// there is one (its [`Error::source`] chain is kept, not flattened).
#[derive(Debug)]
pub struct Cause {
    context: Cow<'static, str>,
    source: Option<BoxError>,
}

impl Cause {
    /// A cause with no error underneath (a condition we detected ourselves).
    pub fn new(context: impl Into<Cow<'static, str>>) -> Self {
        Self {
            context: context.into(),
            source: None,
        }
    }

    /// A cause that keeps `source` (and through it, its own sources).
    pub fn with_source(context: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        Self {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// What failed, without the reasons underneath.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The error underneath, if any.
    pub fn source(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl From<&'static str> for Cause {
    fn from(context: &'static str) -> Self {
        Self::new(context)
    }
}

impl From<String> for Cause {
    fn from(context: String) -> Self {
        Self::new(context)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)
    }
}

impl StoreError {
    /// An `Internal` error: `context` says what failed, `source` why.
    pub fn internal(context: impl Into<Cow<'static, str>>, source: impl Into<BoxError>) -> Self {
        Self::Internal(Cause::with_source(context, source))
    }

    /// The cause of an `Unavailable`, `Rejected` or `Internal` error.
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            Self::Unavailable(c) | Self::Rejected(c) | Self::Internal(c) => Some(c),
            Self::Conflict(_) | Self::VersionMismatch | Self::NotFound => None,
        }
    }
}

/// `{}`: what failed; `{:#}`: that, then every reason in the source chain
/// (`storage unavailable: GetItem: service error: ThrottlingException: ...`).
impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conflict(u) => return write!(f, "{} is already taken", u.attribute()),
            Self::VersionMismatch => return f.write_str("the resource was modified concurrently"),
            Self::NotFound => return f.write_str("not found"),
            Self::Unavailable(c) => write!(f, "storage unavailable: {c}")?,
            Self::Rejected(c) => write!(f, "storage refused the input: {c}")?,
            Self::Internal(c) => write!(f, "storage failure: {c}")?,
        }
        if f.alternate() {
            let mut next = self.source();
            while let Some(e) = next {
                write!(f, ": {e}")?;
                next = e.source();
            }
        }
        Ok(())
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        let source = self.cause()?.source()?;
        Some(source)
    }
}

/// The operation an SDK error type belongs to (`GetItemError` → `GetItem`).
pub(crate) fn operation<E>() -> &'static str {
    let name = std::any::type_name::<E>();
    let name = name.rsplit("::").next().unwrap_or(name);
    name.strip_suffix("Error").unwrap_or(name)
}

/// Classifies an SDK error: service-side transient problems are `Unavailable`.
/// The error itself is kept as the source.
pub(crate) fn from_sdk<E, R>(err: aws_sdk_dynamodb::error::SdkError<E, R>) -> StoreError
where
    E: Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    use aws_sdk_dynamodb::error::SdkError;
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
    let cause = Cause::with_source(operation::<E>(), err);
    if transient {
        StoreError::Unavailable(cause)
    } else if rejected {
        StoreError::Rejected(cause)
    } else {
        StoreError::Internal(cause)
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::{ErrorMetadata, SdkError};
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    fn sdk_error(code: &str, message: &str) -> SdkError<GetItemError, Response> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let status = StatusCode::try_from(400).unwrap();
        SdkError::service_error(
            GetItemError::generic(meta),
            Response::new(status, SdkBody::empty()),
        )
    }

    /// Every message of the source chain below `err`.
    fn chain(err: &dyn Error) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = err.source();
        while let Some(e) = next {
            out.push(e.to_string());
            next = e.source();
        }
        out
    }

    #[test]
    fn an_sdk_errors_source_chain_survives_classification() {
        let err = from_sdk(sdk_error(
            "ThrottlingException",
            "Rate of requests exceeded",
        ));
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let source = Error::source(&err).expect("the SDK error is kept as the source");
        assert!(
            source
                .downcast_ref::<SdkError<GetItemError, Response>>()
                .is_some()
        );
        let reasons = chain(&err).join(": ");
        assert!(reasons.contains("Rate of requests exceeded"), "{reasons}");
        // `{}` names what failed, `{:#}` adds every reason, each once.
        assert_eq!(err.to_string(), "storage unavailable: GetItem");
        let full = format!("{err:#}");
        assert!(full.starts_with("storage unavailable: GetItem: "), "{full}");
        assert_eq!(
            full.matches("Rate of requests exceeded").count(),
            1,
            "{full}"
        );
    }

    #[test]
    fn size_validations_are_rejected_with_their_source() {
        let err = from_sdk(sdk_error(
            "ValidationException",
            "Item size has exceeded the maximum allowed size",
        ));
        assert!(matches!(err, StoreError::Rejected(_)), "{err:?}");
        assert!(format!("{err:#}").contains("Item size has exceeded"));
    }

    #[test]
    fn internal_errors_keep_their_source_and_plain_causes_have_none() {
        let parse = serde_json::from_str::<u32>("x").unwrap_err();
        let reason = parse.to_string();
        let err = StoreError::internal("parsing a stored document", parse);
        assert_eq!(
            err.to_string(),
            "storage failure: parsing a stored document"
        );
        assert_eq!(Error::source(&err).map(ToString::to_string), Some(reason));
        let plain = StoreError::Unavailable("injected failure".into());
        assert!(Error::source(&plain).is_none());
        assert_eq!(
            format!("{plain:#}"),
            "storage unavailable: injected failure"
        );
        assert!(Error::source(&StoreError::NotFound).is_none());
    }
}
