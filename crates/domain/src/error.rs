//! The one error every operation returns: a client mistake already phrased
//! as SCIM ([`ScimError`]), or a storage outcome the entry point renders
//! ([`StoreError`], source chain kept for the log).

use scim_proto::ScimError;
use scim_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The request is wrong or names something that does not exist.
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// Storage answered with a conflict, a lost race or a failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

impl DomainError {
    /// Whether this is a lost optimistic-concurrency race (retryable).
    pub fn is_version_mismatch(&self) -> bool {
        matches!(self, Self::Store(StoreError::VersionMismatch))
    }
}
