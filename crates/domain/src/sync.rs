//! Members-sync operations: preview ("users available to be synced"),
//! synchronize, the attribute mapping, the Members, and the sync history.
//! The run itself is `member_sync`'s engine; this is what entry points call.

use std::sync::Arc;
use std::time::Duration;

use member_sync::mapping::{MappingEntry, MappingError};
use member_sync::{SyncCounts, SyncEngine, SyncError, SyncOptions, SyncReport};
use scim_proto::ids::{ResourceId, TenantId};
use scim_store::StoreError;
use scim_store::activity::Operation;
use scim_store::members::{Member, MemberStore};
use scim_store::sync_state::{DeprovisionPolicy, SyncStateStore};

use crate::Directory;
use crate::activity::Activity;

/// Runs `work` (which drives the sync engine on the handle it is given) on
/// a blocking-pool thread: the engine's futures hold borrows that rustc
/// cannot prove `Send` under the higher-ranked bounds of axum handlers and
/// `tokio::spawn`; this runtime's handle keeps the same I/O driver and
/// clients, and what callers await is `Send`.
async fn on_blocking_thread<T: Send + 'static>(
    work: impl FnOnce(tokio::runtime::Handle) -> Result<T, SyncError> + Send + 'static,
) -> Result<T, SyncError> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || work(handle))
        .await
        .map_err(|e| {
            SyncError::Store(StoreError::internal(
                "running the sync engine",
                e.to_string(),
            ))
        })?
}

/// Largest page of members read at once.
const MEMBER_PAGE: usize = 500;

/// What a sync is asked to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncRequest {
    /// Compute the report, write nothing (the preview).
    pub dry_run: bool,
    /// Full reconciliation even if the mapping did not change.
    pub full: bool,
}

/// Whether a sync runs now, and when the last ones finished.
#[derive(Debug, Clone, Default)]
pub struct SyncStatus {
    pub running: bool,
    /// While running: what the run has done so far (its last checkpoint).
    pub progress: Option<member_sync::RunProgress>,
    /// When the last complete run finished (RFC 3339).
    pub last_success: Option<String>,
    /// When the last run (complete or not) finished.
    pub last_run: Option<String>,
}

/// The Members sync of the tenants: runs, mapping, members, history.
#[derive(Debug, Clone)]
pub struct Members {
    engine: Arc<SyncEngine>,
    /// Deletes left to the background are finished before a run, so it
    /// sees every former member's mark.
    directory: Directory,
    members: Arc<dyn MemberStore>,
    state: Arc<dyn SyncStateStore>,
    /// Where runs' outcomes are logged.
    activity: Activity,
    /// App events ([`crate::events`]).
    pub(crate) outbox: Option<Arc<dyn scim_store::events::EventOutbox>>,
    pub(crate) sink: Option<Arc<dyn scim_store::events::EventSink>>,
}

impl Members {
    pub fn new(
        directory: &Directory,
        members: Arc<dyn MemberStore>,
        state: Arc<dyn SyncStateStore>,
        activity: Activity,
    ) -> Self {
        Self {
            engine: Arc::new(SyncEngine::new(
                directory.users.clone(),
                directory.groups.clone(),
                members.clone(),
                state.clone(),
            )),
            directory: directory.clone(),
            members,
            state,
            activity,
            outbox: None,
            sink: None,
        }
    }

    /// One invocation's worth of sync: stops (checkpointing) at `deadline`;
    /// the next call resumes. A run that completes or fails is logged in
    /// the tenant's activity (dry runs are not).
    pub async fn sync_once(
        &self,
        tenant: &TenantId,
        options: SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        if !options.dry_run {
            let finished = self
                .finish_deletes(tenant)
                .await
                .map_err(SyncError::Store)?;
            if finished > 0 {
                tracing::info!(%tenant, finished, "group deletes finished before the sync");
            }
        }
        let dry_run = options.dry_run;
        let engine = self.engine.clone();
        let owned = tenant.clone();
        let result = on_blocking_thread(move |handle| {
            handle.block_on(async move { engine.sync(&owned, options).await })
        })
        .await;
        if !dry_run {
            self.activity
                .record_run(tenant, Operation::Sync, &result)
                .await;
        }
        result
    }

    /// Immediate deprovisioning of the users disabled or deleted since the
    /// last pass (their writes left entries: `UserStore::deprovisions`).
    /// Under the tenant's `immediate` policy their members are deactivated
    /// now, nothing else of theirs is synced; under `with-sync` the entries
    /// are dropped and the next sync does it. How many members it
    /// deactivated. `LeaseHeld` while a sync runs: the entries stay, for
    /// the caller to retry.
    pub async fn deprovision(&self, tenant: &TenantId) -> Result<u64, SyncError> {
        let users = &self.directory.users;
        let entries = users.deprovisions(tenant).await?;
        if entries.is_empty() {
            return Ok(0);
        }
        let settings = self.state.settings(tenant).await?;
        let policy = settings.deprovision;
        let mut deactivated = 0;
        if policy == DeprovisionPolicy::Immediate {
            let ids: Vec<ResourceId> = entries.iter().map(|e| e.user.clone()).collect();
            let engine = self.engine.clone();
            let owned = tenant.clone();
            let result = on_blocking_thread(move |handle| {
                handle.block_on(async move { engine.deprovision(&owned, &ids, settings).await })
            })
            .await;
            // Logged when it did something (or failed): a user disabled
            // before it ever had a member is no news.
            let acted = result
                .as_ref()
                .map_or(true, |r| r.counts.deactivated + r.counts.failed > 0);
            if acted {
                self.activity
                    .record_run(tenant, Operation::Deprovision, &result)
                    .await;
            }
            deactivated = result?.counts.deactivated;
            if deactivated > 0 {
                // member.deactivated now, where a sink is configured (the
                // Members stream publishes it anyway).
                self.publish_after_run(tenant).await;
            }
        }
        for entry in &entries {
            users.drop_deprovision(tenant, entry).await?;
        }
        tracing::info!(%tenant, users = entries.len(), deactivated, policy = policy.as_str(), "deprovisioning done");
        Ok(deactivated)
    }

    /// The tenant's deprovisioning policy.
    pub async fn deprovision_policy(
        &self,
        tenant: &TenantId,
    ) -> Result<DeprovisionPolicy, StoreError> {
        Ok(self.state.settings(tenant).await?.deprovision)
    }

    pub async fn set_deprovision_policy(
        &self,
        tenant: &TenantId,
        policy: DeprovisionPolicy,
    ) -> Result<(), StoreError> {
        self.state.set_deprovision_policy(tenant, policy).await
    }

    /// Finishes the deletes the tenant left to the background; how many.
    pub async fn finish_deletes(&self, tenant: &TenantId) -> Result<usize, StoreError> {
        self.directory.finish_deletes(tenant).await
    }

    /// The tenants registered for the daily sync (activated at least once).
    pub async fn registered_tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        self.state.tenants().await
    }

    /// What a sync would do now, writing nothing.
    pub async fn preview(&self, tenant: &TenantId) -> Result<SyncReport, SyncError> {
        self.sync_once(
            tenant,
            SyncOptions {
                dry_run: true,
                ..SyncOptions::default()
            },
        )
        .await
    }

    /// A whole sync, run in slices of `slice` so that a huge tenant
    /// checkpoints as it goes (each slice resumes where the last stopped);
    /// `progress` sees the running totals after each slice. The report's
    /// counts are the whole run's. Then publishes the tenant's app events
    /// when a sink is configured (a failure leaves them pending).
    pub async fn synchronize(
        &self,
        tenant: &TenantId,
        request: SyncRequest,
        slice: Duration,
        progress: impl FnMut(&SyncCounts),
    ) -> Result<SyncReport, SyncError> {
        let result = self.run_slices(tenant, request, slice, progress).await;
        if !request.dry_run {
            self.publish_after_run(tenant).await;
        }
        result
    }

    async fn run_slices(
        &self,
        tenant: &TenantId,
        request: SyncRequest,
        slice: Duration,
        mut progress: impl FnMut(&SyncCounts),
    ) -> Result<SyncReport, SyncError> {
        let mut total = SyncCounts::default();
        let mut first = true;
        loop {
            let options = SyncOptions {
                dry_run: request.dry_run,
                full: request.full && first,
                deadline: (!request.dry_run).then(|| tokio::time::Instant::now() + slice),
            };
            first = false;
            let report = self.sync_once(tenant, options).await?;
            add(&mut total, &report.counts);
            progress(&total);
            if report.complete || request.dry_run {
                return Ok(SyncReport {
                    counts: total,
                    ..report
                });
            }
        }
    }

    /// Whether a sync of the tenant holds its lease now.
    pub async fn status(&self, tenant: &TenantId) -> Result<SyncStatus, StoreError> {
        let state = self.state.state(tenant).await?;
        let now_ms = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp())
            .unwrap_or_default()
            * 1000;
        let running =
            state.lease_owner.is_some() && state.lease_expires_ms.is_some_and(|e| e > now_ms);
        Ok(SyncStatus {
            running,
            progress: state
                .run
                .as_ref()
                .filter(|_| running)
                .and_then(member_sync::RunProgress::from_checkpoint),
            last_success: state.last_success,
            last_run: state.last_run,
        })
    }

    /// Checks a mapping without saving it: the first wrong row (1-based) and
    /// why.
    pub fn check_mapping(entries: &[MappingEntry]) -> Result<(), MappingError> {
        member_sync::mapping::validate(entries)
    }

    /// The tenant's mapping (the defaults when none is set).
    pub async fn mapping(&self, tenant: &TenantId) -> Result<Vec<MappingEntry>, SyncError> {
        member_sync::show_mapping(self.state.as_ref(), tenant).await
    }

    /// Replaces the mapping if every entry is valid (nothing saved
    /// otherwise); the next sync reconciles everyone. Returns it as saved.
    pub async fn set_mapping(
        &self,
        tenant: &TenantId,
        entries: Vec<MappingEntry>,
    ) -> Result<Vec<MappingEntry>, SyncError> {
        member_sync::set_mapping(self.state.as_ref(), tenant, entries).await?;
        tracing::info!(%tenant, "attribute mapping changed");
        self.mapping(tenant).await
    }

    /// Back to the default mapping; returns it.
    pub async fn reset_mapping(&self, tenant: &TenantId) -> Result<Vec<MappingEntry>, SyncError> {
        member_sync::reset_mapping(self.state.as_ref(), tenant).await?;
        tracing::info!(%tenant, "attribute mapping reset");
        self.mapping(tenant).await
    }

    /// The last `limit` sync reports, newest first.
    pub async fn history(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        self.state.history(tenant, limit).await
    }

    /// A page of Members in id order, and where the next page starts.
    pub async fn members_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Member>, Option<String>), StoreError> {
        self.members.list(tenant, after, limit).await
    }

    /// Every member of the tenant.
    pub async fn all_members(&self, tenant: &TenantId) -> Result<Vec<Member>, StoreError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (page, next) = self
                .members_page(tenant, after.as_deref(), MEMBER_PAGE)
                .await?;
            all.extend(page);
            match next {
                Some(n) => after = Some(n),
                None => return Ok(all),
            }
        }
    }

    /// A member the application manages itself (never touched by the sync).
    pub async fn add_app_member(
        &self,
        tenant: &TenantId,
        email: &str,
        name: &str,
    ) -> Result<Member, StoreError> {
        self.members.add_app_member(tenant, email, name).await
    }
}

fn add(total: &mut SyncCounts, c: &SyncCounts) {
    total.created += c.created;
    total.updated += c.updated;
    total.deactivated += c.deactivated;
    total.reactivated += c.reactivated;
    total.unchanged += c.unchanged;
    total.linked += c.linked;
    total.failed += c.failed;
}
