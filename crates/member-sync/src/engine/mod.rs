//! The sync engine: one tenant's run from the lease to the stored report.
//! This module owns [`SyncEngine`] (stores and tuning) and a run's life
//! cycle: take the lease, resume or start, execute, record how it ended.
//! It changes when that life cycle changes.
//!
//! A run goes through phases ([`phases`]), each a sequence of batches of at
//! most `batch_size` users. Each user's member is written in one
//! conditional transaction ([`apply`]), then its dirty item is cleared
//! (only if the user did not change again meanwhile). After every batch the
//! checkpoint (phase, cursor, counts) is saved with the lease renewed in the
//! same conditional write ([`checkpoint`]). Whatever point a run stops at, a
//! rerun reads the state again and writes only what is still missing:
//! member ids of created members are deterministic (`m-<user id>`) and
//! created with their link item under `attribute_not_exists`, so no member
//! is ever created twice.
//!
//! A dry run takes the same path without writing: its writes go to an
//! in-memory overlay that its later reads see ([`overlay`]), so its report
//! is what the real run would do.

mod apply;
mod batch;
mod checkpoint;
mod decide;
mod overlay;
mod phases;
mod tally;
mod work;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use scim_proto::ids::{ResourceId, TenantId};
use scim_store::events::AppEvent;
use scim_store::groups::GroupStore;
use scim_store::members::MemberStore;
use scim_store::sync_state::{StoredReport, SyncSettings, SyncState, SyncStateStore};
use scim_store::users::UserStore;

pub use self::checkpoint::RunProgress;
use self::checkpoint::{Checkpoint, Lease};
use self::overlay::Overlay;
use self::tally::Tally;
use crate::error::SyncError;
use crate::mapping::Compiled;
use crate::mapping_store::mapping_entries;
use crate::report::SyncReport;

/// Users per batch (and per checkpoint).
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// How long a lease lasts without renewal (every checkpoint renews it).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(90);
/// Member writes (and dirty clears) in flight at once.
pub const DEFAULT_PARALLELISM: usize = 16;

/// How to run a sync.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Preview only: compute the report, write nothing.
    pub dry_run: bool,
    /// Full reconciliation even if the mapping did not change.
    pub full: bool,
    /// Stop (checkpointing) once this instant has passed; the next sync
    /// resumes. At least one batch runs per invocation.
    pub deadline: Option<tokio::time::Instant>,
}

/// Syncs tenants' Members from their SCIM users.
#[derive(Debug, Clone)]
pub struct SyncEngine {
    users: Arc<dyn UserStore>,
    groups: Arc<dyn GroupStore>,
    members: Arc<dyn MemberStore>,
    state: Arc<dyn SyncStateStore>,
    batch_size: usize,
    lease_ttl: Duration,
    parallelism: usize,
}

impl SyncEngine {
    pub fn new(
        users: Arc<dyn UserStore>,
        groups: Arc<dyn GroupStore>,
        members: Arc<dyn MemberStore>,
        state: Arc<dyn SyncStateStore>,
    ) -> Self {
        Self {
            users,
            groups,
            members,
            state,
            batch_size: DEFAULT_BATCH_SIZE,
            lease_ttl: DEFAULT_LEASE_TTL,
            parallelism: DEFAULT_PARALLELISM,
        }
    }

    /// Users per batch, 1 to 100 (smaller batches checkpoint more often).
    #[must_use]
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.clamp(1, 100);
        self
    }

    /// Lease duration between renewals.
    #[must_use]
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Member writes in flight at once (at least 1).
    #[must_use]
    pub fn with_parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.max(1);
        self
    }

    /// Syncs one tenant. `LeaseHeld` when another sync of the tenant runs
    /// (dry runs take no lease).
    pub async fn sync(
        &self,
        tenant: &TenantId,
        options: SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        if options.dry_run {
            let state = self.state.state(tenant).await?;
            let mut run = self.start(tenant, &options, None, state).await?;
            let complete = run.execute().await?;
            return Ok(run.report(complete).0);
        }
        let Some((lease, state)) = Lease::acquire(&*self.state, tenant, self.lease_ttl).await?
        else {
            return Err(SyncError::LeaseHeld(tenant.to_string()));
        };
        let mut run = match self
            .start(tenant, &options, Some(lease.clone()), state)
            .await
        {
            Ok(run) => run,
            Err(e) => {
                lease.release().await;
                return Err(e);
            }
        };
        match run.execute().await {
            Ok(complete) => run.finish(&lease, complete).await,
            Err(e) => Err(run.stopped(&lease, e).await),
        }
    }

    /// Immediate deprovisioning: deactivates the members of `users` that a
    /// sync would deactivate now (their user is disabled or deleted), and
    /// writes nothing else. Creates and property updates wait for the next
    /// sync, and the users stay in the dirty set for it (which then finds
    /// the deactivation done). Takes the lease like a sync and leaves the
    /// saved run as it was: `LeaseHeld` while a sync runs (the caller
    /// retries; the running sync may deactivate them itself). `settings`
    /// are the tenant's, as the caller read them to check its policy.
    pub async fn deprovision(
        &self,
        tenant: &TenantId,
        users: &[ResourceId],
        settings: SyncSettings,
    ) -> Result<SyncReport, SyncError> {
        let Some((lease, _)) = Lease::acquire(&*self.state, tenant, self.lease_ttl).await? else {
            return Err(SyncError::LeaseHeld(tenant.to_string()));
        };
        let result = async {
            // A fresh run of its own: the saved one (if any) is not resumed,
            // and without the lease in the run nothing is checkpointed.
            let options = SyncOptions::default();
            let mut run =
                self.start_with(tenant, &options, None, SyncState::default(), settings)?;
            run.only_deactivations = true;
            for chunk in users.chunks(self.batch_size) {
                let work = chunk.iter().cloned().map(work::Work::read).collect();
                run.process(work).await?;
            }
            Ok(run.report(true).0)
        }
        .await;
        lease.release().await;
        result
    }

    /// Loads settings and decides: resume the saved run, or start one.
    async fn start<'a>(
        &'a self,
        tenant: &'a TenantId,
        options: &SyncOptions,
        lease: Option<Lease<'a>>,
        state: SyncState,
    ) -> Result<Run<'a>, SyncError> {
        let settings = self.state.settings(tenant).await?;
        self.start_with(tenant, options, lease, state, settings)
    }

    /// [`Self::start`] with the settings already read.
    fn start_with<'a>(
        &'a self,
        tenant: &'a TenantId,
        options: &SyncOptions,
        lease: Option<Lease<'a>>,
        state: SyncState,
        settings: SyncSettings,
    ) -> Result<Run<'a>, SyncError> {
        let entries = mapping_entries(&settings.mapping)?;
        let mapping = Compiled::new(&entries).map_err(|e| SyncError::Mapping(e.to_string()))?;
        let cp = Checkpoint::resume_or_start(&state, settings.mapping.version, options);
        Ok(Run {
            e: self,
            tenant,
            dry_run: options.dry_run,
            mapping,
            link_by_email: settings.link_by_email,
            cp,
            lease,
            deadline: options.deadline,
            batches: 0,
            tally: Tally::new(options.dry_run),
            overlay: Overlay::default(),
            group_names: HashMap::new(),
            only_deactivations: false,
        })
    }
}

/// One invocation's run of one tenant.
struct Run<'a> {
    e: &'a SyncEngine,
    tenant: &'a TenantId,
    dry_run: bool,
    mapping: Compiled,
    link_by_email: bool,
    /// What the next invocation resumes from (counts and errors included).
    cp: Checkpoint,
    /// `None` for a dry run (it takes no lease and saves nothing).
    lease: Option<Lease<'a>>,
    deadline: Option<tokio::time::Instant>,
    /// Batches done by this invocation.
    batches: usize,
    /// This invocation's changes and per-user outcomes.
    tally: Tally,
    overlay: Overlay,
    /// Group names read so far (cached per run).
    group_names: HashMap<ResourceId, String>,
    /// Immediate deprovisioning: every plan but a deactivation is skipped.
    only_deactivations: bool,
}

impl Run<'_> {
    /// Records the end of an executed run: the checkpoint stays when it is
    /// incomplete, the report goes to the tenant's history.
    async fn finish(&self, lease: &Lease<'_>, complete: bool) -> Result<SyncReport, SyncError> {
        let (report, mut stored) = self.report(complete);
        if complete {
            let counts = serde_json::to_value(&report.counts).unwrap_or_default();
            stored.event = Some(AppEvent::sync_finished(
                self.tenant,
                &report.run_id,
                &report.finished,
                counts,
            ));
        }
        let end = self.cp.end(complete, report.finished.clone(), stored)?;
        lease.finish(&end).await?;
        Ok(report)
    }

    /// Records a run stopped by `e` (the last checkpoint stays: the next
    /// sync resumes from it) and gives `e` back.
    async fn stopped(&mut self, lease: &Lease<'_>, e: SyncError) -> SyncError {
        self.cp
            .totals
            .issue(None, None, format!("the run stopped: {e}"));
        let (report, mut stored) = self.report(false);
        stored.event = Some(AppEvent::sync_failed(
            self.tenant,
            &report.run_id,
            &lease.owner,
            &report.finished,
            e.to_string(),
        ));
        lease.put_report(&stored).await;
        lease.release().await;
        e
    }

    /// The report, and the copy to store.
    fn report(&self, complete: bool) -> (SyncReport, StoredReport) {
        let owner = self.lease.as_ref().map_or("", |l| l.owner.as_str());
        self.tally.report(&self.cp, self.tenant, complete, owner)
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The current time as stored (RFC 3339).
fn now() -> String {
    scim_proto::resource::format_time(time::OffsetDateTime::now_utc())
}
