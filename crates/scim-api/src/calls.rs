//! Recording when a tenant's identity provider last called, for the admin's
//! page ("the connection works"). A write per request would double Entra's
//! bill, so each instance writes a tenant's latest call at most once per
//! [`CALL_RECORD_INTERVAL`], concurrently with the request it rides on.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use scim_domain::tenancy::CALL_RECORD_INTERVAL;
use scim_proto::ids::TenantId;
use tokio::time::Instant;

/// Tenants tracked at once; the oldest entries are dropped first.
const MAX_TENANTS: usize = 10_000;

/// When this instance last recorded each tenant's call.
#[derive(Debug, Default)]
pub struct CallRecorder {
    recorded: Mutex<HashMap<TenantId, Instant>>,
}

impl CallRecorder {
    /// Whether a call of `tenant` at `now` should be recorded; if so, it
    /// counts as recorded from now on (a failed write is retried an
    /// interval later, not on every request).
    pub fn due(&self, tenant: &TenantId, now: Instant) -> bool {
        let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        if recorded
            .get(tenant)
            .is_some_and(|at| now.saturating_duration_since(*at) < CALL_RECORD_INTERVAL)
        {
            return false;
        }
        if recorded.len() >= MAX_TENANTS {
            recorded.retain(|_, at| now.saturating_duration_since(*at) < CALL_RECORD_INTERVAL);
        }
        recorded.insert(tenant.clone(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[test]
    fn a_tenants_call_is_recorded_once_per_interval() {
        let recorder = CallRecorder::default();
        let t0 = Instant::now();
        assert!(recorder.due(&tenant("acme"), t0));
        assert!(!recorder.due(&tenant("acme"), t0 + CALL_RECORD_INTERVAL / 2));
        assert!(recorder.due(&tenant("acme"), t0 + CALL_RECORD_INTERVAL));
    }

    #[test]
    fn tenants_are_recorded_independently() {
        let recorder = CallRecorder::default();
        let t0 = Instant::now();
        assert!(recorder.due(&tenant("acme"), t0));
        assert!(recorder.due(&tenant("globex"), t0));
    }
}
