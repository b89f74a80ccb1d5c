//! The sync's error type. Changes when a new way for a whole sync to fail
//! appears (per-user failures are report entries, not errors).

use scim_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("another sync of tenant {0} is running")]
    LeaseHeld(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid mapping: {0}")]
    Mapping(String),
}
