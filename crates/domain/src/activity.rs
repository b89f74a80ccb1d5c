//! The tenant's provisioning activity, as the admin reads it (CLI, page):
//! every SCIM write, every rejected request and every sync outcome of the
//! last 30 days, newest first (see `scim_store::activity`).

use std::sync::Arc;

use member_sync::{SyncError, SyncReport};
use scim_proto::ids::TenantId;
use scim_store::StoreError;
use scim_store::activity::{ActivityEntry, ActivityLog, ActivityQuery, Operation, Outcome};

/// Reads a tenant's activity and records the outcomes of syncs.
#[derive(Debug, Clone)]
pub struct Activity {
    log: Arc<dyn ActivityLog>,
}

impl Activity {
    pub fn new(log: Arc<dyn ActivityLog>) -> Self {
        Self { log }
    }

    /// Entries matching `query`, newest first.
    pub async fn recent(
        &self,
        tenant: &TenantId,
        query: &ActivityQuery,
    ) -> Result<Vec<ActivityEntry>, StoreError> {
        self.log.recent(tenant, query).await
    }

    /// Logs how a sync run (or an immediate deprovisioning) ended: a
    /// completed run, or a failure; nothing for a run that continues in
    /// the next invocation, or that did not start because another runs.
    /// A failure to log only logs: the run's outcome stands.
    pub(crate) async fn record_run(
        &self,
        tenant: &TenantId,
        operation: Operation,
        result: &Result<SyncReport, SyncError>,
    ) {
        let entry = match result {
            Ok(report) if !report.complete => return,
            Err(SyncError::LeaseHeld(_)) => return,
            Ok(report) => {
                let c = &report.counts;
                ActivityEntry::now("sync", operation, "Sync", Outcome::Finished).with_summary(
                    format!(
                        "{} created, {} updated, {} deactivated, {} reactivated, {} linked, {} failed",
                        c.created, c.updated, c.deactivated, c.reactivated, c.linked, c.failed
                    ),
                )
            }
            Err(e) => ActivityEntry::now("sync", operation, "Sync", Outcome::Failed)
                .with_summary(run_failure(e)),
        };
        if let Err(e) = self.log.record(tenant, &entry).await {
            tracing::warn!(%tenant, error = %format_args!("{e:#}"), "could not log a sync outcome");
        }
    }
}

/// What the admin may read of a failed run (no internal detail).
fn run_failure(e: &SyncError) -> String {
    match e {
        SyncError::Mapping(why) => format!("the attribute mapping is invalid: {why}"),
        SyncError::Store(StoreError::Unavailable(_)) => {
            "storage was unavailable; the next sync resumes".to_owned()
        }
        SyncError::Store(_) => {
            "an internal error stopped the run; the next sync resumes".to_owned()
        }
        SyncError::LeaseHeld(_) => "another sync was running".to_owned(),
    }
}
