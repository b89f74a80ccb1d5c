//! A tenant's stored mapping: reading it (defaults when unset), validating
//! and replacing it, resetting it. Changes with how mappings are stored,
//! not with what a mapping means (that is [`crate::mapping`]).

use scim_proto::ids::TenantId;
use scim_store::sync_state::{StoredMapping, SyncStateStore};

use crate::SyncError;
use crate::mapping::{self, MappingEntry, default_mapping};

/// The entries of a stored mapping (the defaults when none is set).
pub fn mapping_entries(stored: &StoredMapping) -> Result<Vec<MappingEntry>, SyncError> {
    match &stored.entries {
        None => Ok(default_mapping()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| SyncError::Mapping(format!("the stored mapping is unreadable: {e}"))),
    }
}

/// Validates `entries` and, only if they are all valid, replaces the
/// tenant's mapping (the next sync is then a full reconciliation).
pub async fn set_mapping(
    state: &dyn SyncStateStore,
    tenant: &TenantId,
    entries: Vec<MappingEntry>,
) -> Result<(), SyncError> {
    mapping::validate(&entries).map_err(|e| SyncError::Mapping(e.to_string()))?;
    let json = serde_json::to_value(&entries).map_err(|e| SyncError::Mapping(e.to_string()))?;
    state.set_mapping(tenant, json).await?;
    Ok(())
}

/// The tenant's mapping (the defaults when none is set).
pub async fn show_mapping(
    state: &dyn SyncStateStore,
    tenant: &TenantId,
) -> Result<Vec<MappingEntry>, SyncError> {
    mapping_entries(&state.mapping(tenant).await?)
}

/// Back to the default mapping (the next sync is a full reconciliation).
pub async fn reset_mapping(state: &dyn SyncStateStore, tenant: &TenantId) -> Result<(), SyncError> {
    state.reset_mapping(tenant).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_unset_mapping_reads_as_the_defaults() {
        let stored = StoredMapping {
            entries: None,
            version: 0,
        };
        assert_eq!(mapping_entries(&stored).unwrap(), default_mapping());
    }

    #[test]
    fn an_unreadable_stored_mapping_is_a_mapping_error() {
        let stored = StoredMapping {
            entries: Some(json!("not a list")),
            version: 3,
        };
        assert!(matches!(
            mapping_entries(&stored),
            Err(SyncError::Mapping(why)) if why.contains("unreadable")
        ));
    }
}
