//! Checkpoints, resumption and the lease: what a run saves after every
//! batch, whether a sync resumes the saved run or starts one, and the
//! per-tenant lease every save renews. Changes when what survives an
//! interrupted run (or who may run) changes.

use std::time::Duration;

use scim_proto::ids::TenantId;
use scim_store::StoreError;
use scim_store::sync_state::{RunEnd, StoredReport, SyncState, SyncStateStore};
use serde::{Deserialize, Serialize};

use super::tally::Totals;
use super::{Run, SyncOptions, new_id, now};
use crate::error::SyncError;

/// The phases of a run, in order (see [`super::phases`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Phase {
    Memberships,
    Users,
    Links,
    Dirty,
    Waits,
    Done,
}

impl Phase {
    /// The phase after this one: only a full run reads every user and link.
    pub(super) fn next(self, full: bool) -> Phase {
        match self {
            Phase::Memberships if full => Phase::Users,
            Phase::Memberships => Phase::Dirty,
            Phase::Users => Phase::Links,
            Phase::Links => Phase::Dirty,
            Phase::Dirty => Phase::Waits,
            Phase::Waits | Phase::Done => Phase::Done,
        }
    }
}

/// A run's progress, saved after every batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Checkpoint {
    pub run_id: String,
    pub started: String,
    pub full: bool,
    pub mapping_version: u64,
    pub phase: Phase,
    /// Last user id (or link user id, or wait key, or membership change
    /// key) the phase finished.
    pub cursor: Option<String>,
    /// Inside a renamed group's members: how far the run got.
    #[serde(default)]
    pub group_progress: Option<GroupProgress>,
    /// `counts` and `errors`, at the top level as they always were.
    #[serde(flatten)]
    pub totals: Totals,
    /// Whether the run linked any member (the `waits` phase is then due).
    pub links_made: bool,
    pub invocations: u32,
}

/// What a running sync has done so far, as its last checkpoint says (for a
/// page that shows the run's progress).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunProgress {
    /// When the run started (RFC 3339).
    pub started: String,
    /// The phase it is in: memberships, users, links, dirty, waits, done.
    pub phase: String,
    /// Outcomes so far.
    pub counts: crate::SyncCounts,
}

impl RunProgress {
    /// The progress a stored checkpoint ([`SyncState::run`]) records, if it
    /// is one.
    pub fn from_checkpoint(run: &serde_json::Value) -> Option<Self> {
        let c = Checkpoint::deserialize(run).ok()?;
        let phase = serde_json::to_value(c.phase)
            .ok()?
            .as_str()
            .map(str::to_owned)?;
        Some(Self {
            started: c.started,
            phase,
            counts: c.totals.counts,
        })
    }
}

/// The members of a renamed group looked at so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GroupProgress {
    /// The group's membership change (`MembershipChange::key`).
    pub change: String,
    /// The last member looked at.
    pub member: String,
}

impl Checkpoint {
    /// Resumes the tenant's saved run when it still applies (same mapping
    /// version; a full request resumes only a full run; a dry run never
    /// resumes), else starts a run: full when asked or when the mapping
    /// changed since the last complete full sync.
    pub(super) fn resume_or_start(state: &SyncState, version: u64, options: &SyncOptions) -> Self {
        let saved = state
            .run
            .clone()
            .and_then(|v| serde_json::from_value::<Checkpoint>(v).ok())
            .filter(|cp| cp.mapping_version == version && (cp.full || !options.full));
        match saved {
            Some(mut cp) if !options.dry_run => {
                cp.invocations += 1;
                // Links may have been made after the last checkpoint.
                cp.links_made = true;
                cp
            }
            _ => Checkpoint {
                run_id: new_id(),
                started: now(),
                full: options.full || state.applied_mapping_version != Some(version),
                mapping_version: version,
                phase: Phase::Memberships,
                cursor: None,
                group_progress: None,
                totals: Totals::default(),
                links_made: false,
                invocations: 1,
            },
        }
    }

    /// Moves on to the phase after the current one.
    pub(super) fn advance(&mut self) {
        self.phase = self.phase.next(self.full);
        self.cursor = None;
        self.group_progress = None;
    }

    pub(super) fn to_json(&self) -> Result<serde_json::Value, SyncError> {
        serde_json::to_value(self)
            .map_err(|e| SyncError::Store(StoreError::internal("serializing a value", e)))
    }

    /// How an executed run ends: an incomplete run leaves its checkpoint
    /// for the next sync; a complete full run records the mapping version
    /// it applied (later syncs can then be incremental).
    pub(super) fn end(
        &self,
        complete: bool,
        finished: String,
        report: StoredReport,
    ) -> Result<RunEnd, SyncError> {
        Ok(RunEnd {
            checkpoint: if complete {
                None
            } else {
                Some(self.to_json()?)
            },
            applied_mapping_version: (complete && self.full).then_some(self.mapping_version),
            finished,
            report,
        })
    }
}

/// This invocation's hold on the tenant: only the owner may checkpoint or
/// finish the run.
#[derive(Debug, Clone)]
pub(super) struct Lease<'a> {
    state: &'a dyn SyncStateStore,
    tenant: &'a TenantId,
    pub owner: String,
    ttl: Duration,
}

impl<'a> Lease<'a> {
    /// Takes the lease, with the tenant's sync state; `None` when another
    /// sync holds it.
    pub(super) async fn acquire(
        state: &'a dyn SyncStateStore,
        tenant: &'a TenantId,
        ttl: Duration,
    ) -> Result<Option<(Self, SyncState)>, SyncError> {
        let owner = new_id();
        let acquired = state.acquire_lease(tenant, &owner, ttl).await?;
        Ok(acquired.map(|s| {
            let lease = Self {
                state,
                tenant,
                owner,
                ttl,
            };
            (lease, s)
        }))
    }

    /// Saves `cp`, renewing the lease in the same conditional write.
    pub(super) async fn checkpoint(&self, cp: &Checkpoint) -> Result<(), SyncError> {
        let json = cp.to_json()?;
        if self
            .state
            .checkpoint(self.tenant, &self.owner, &json, self.ttl)
            .await?
        {
            Ok(())
        } else {
            Err(self.lost())
        }
    }

    /// Ends the run and gives the lease up.
    pub(super) async fn finish(&self, end: &RunEnd) -> Result<(), SyncError> {
        match self.state.finish(self.tenant, &self.owner, end).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.lost()),
            Err(e) => {
                // The last checkpoint stays; let the next sync start now.
                self.release().await;
                Err(e.into())
            }
        }
    }

    /// Stores a report on the way out of a failed run (best effort).
    pub(super) async fn put_report(&self, report: &StoredReport) {
        let _ = self.state.put_report(self.tenant, report).await;
    }

    /// Gives the lease up (best effort: it expires anyway).
    pub(super) async fn release(&self) {
        let _ = self.state.release_lease(self.tenant, &self.owner).await;
    }

    fn lost(&self) -> SyncError {
        SyncError::LeaseHeld(self.tenant.to_string())
    }
}

impl Run<'_> {
    /// Ends a batch: saves the checkpoint (renewing the lease).
    pub(super) async fn batch_done(&mut self, cursor: String) -> Result<(), SyncError> {
        self.cp.cursor = Some(cursor);
        self.save().await
    }

    /// Saves the checkpoint as it is (a dry run saves nothing).
    pub(super) async fn save(&mut self) -> Result<(), SyncError> {
        self.batches += 1;
        match &self.lease {
            Some(lease) => lease.checkpoint(&self.cp).await,
            None => Ok(()),
        }
    }

    /// Whether the deadline has passed (at least one batch runs first).
    pub(super) fn out_of_time(&self) -> bool {
        self.batches > 0
            && self
                .deadline
                .is_some_and(|d| tokio::time::Instant::now() >= d)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::report::SyncIssue;

    fn state(run: Option<serde_json::Value>, applied: Option<u64>) -> SyncState {
        SyncState {
            applied_mapping_version: applied,
            run,
            lease_owner: None,
            lease_expires_ms: None,
            last_success: None,
            last_run: None,
        }
    }

    /// A run saved mid-way (full or not) for mapping `version`.
    fn saved(full: bool, version: u64) -> Checkpoint {
        let mut cp = Checkpoint::resume_or_start(
            &state(None, Some(version)),
            version,
            &options(false, full),
        );
        cp.phase = Phase::Dirty;
        cp.cursor = Some("u-42".into());
        cp.totals.counts.created = 7;
        cp
    }

    #[test]
    fn a_saved_checkpoint_reads_as_the_runs_progress() {
        let cp = saved(true, 3);
        let stored = serde_json::to_value(&cp).unwrap();

        let progress = RunProgress::from_checkpoint(&stored).unwrap();

        assert_eq!(progress.phase, "dirty");
        assert_eq!(progress.counts.created, 7);
        assert_eq!(progress.started, cp.started);
        assert_eq!(RunProgress::from_checkpoint(&json!({"not": "a run"})), None);
    }

    fn options(dry_run: bool, full: bool) -> SyncOptions {
        SyncOptions {
            dry_run,
            full,
            deadline: None,
        }
    }

    #[test]
    fn the_first_sync_of_a_tenant_is_a_full_run_from_the_first_phase() {
        let cp = Checkpoint::resume_or_start(&state(None, None), 0, &options(false, false));
        assert!(cp.full);
        assert_eq!(cp.phase, Phase::Memberships);
        assert_eq!(cp.invocations, 1);
        assert!(!cp.links_made);
    }

    #[test]
    fn a_sync_after_a_full_sync_of_the_same_mapping_is_incremental() {
        let cp = Checkpoint::resume_or_start(&state(None, Some(3)), 3, &options(false, false));
        assert!(!cp.full);
    }

    #[test]
    fn a_changed_mapping_makes_the_next_run_full() {
        let cp = Checkpoint::resume_or_start(&state(None, Some(3)), 4, &options(false, false));
        assert!(cp.full);
    }

    #[test]
    fn a_saved_run_of_the_same_mapping_is_resumed_assuming_links_were_made() {
        let before = saved(false, 3);
        let run = Some(before.to_json().unwrap());
        let cp = Checkpoint::resume_or_start(&state(run, Some(3)), 3, &options(false, false));
        assert_eq!(cp.run_id, before.run_id);
        assert_eq!(cp.phase, Phase::Dirty);
        assert_eq!(cp.cursor.as_deref(), Some("u-42"));
        assert_eq!(cp.totals.counts.created, 7);
        assert_eq!(cp.invocations, 2);
        assert!(cp.links_made);
    }

    #[test]
    fn a_saved_run_of_another_mapping_version_is_abandoned() {
        let run = Some(saved(true, 3).to_json().unwrap());
        let cp = Checkpoint::resume_or_start(&state(run, Some(3)), 4, &options(false, false));
        assert_eq!(cp.phase, Phase::Memberships);
        assert_eq!(cp.totals.counts.created, 0);
        assert!(cp.full);
    }

    #[test]
    fn a_full_request_does_not_resume_an_incremental_run() {
        let before = saved(false, 3);
        let run = Some(before.to_json().unwrap());
        let cp = Checkpoint::resume_or_start(&state(run, Some(3)), 3, &options(false, true));
        assert_ne!(cp.run_id, before.run_id);
        assert!(cp.full);
    }

    #[test]
    fn an_incremental_request_resumes_a_full_run() {
        let before = saved(true, 3);
        let run = Some(before.to_json().unwrap());
        let cp = Checkpoint::resume_or_start(&state(run, Some(2)), 3, &options(false, false));
        assert_eq!(cp.run_id, before.run_id);
        assert!(cp.full);
    }

    #[test]
    fn a_dry_run_never_resumes_a_saved_run() {
        let before = saved(false, 3);
        let run = Some(before.to_json().unwrap());
        let cp = Checkpoint::resume_or_start(&state(run, Some(3)), 3, &options(true, false));
        assert_ne!(cp.run_id, before.run_id);
        assert_eq!(cp.phase, Phase::Memberships);
    }

    #[test]
    fn an_unreadable_checkpoint_starts_a_new_run() {
        let run = Some(json!({"phase": "nonsense"}));
        let cp = Checkpoint::resume_or_start(&state(run, Some(3)), 3, &options(false, false));
        assert_eq!(cp.phase, Phase::Memberships);
        assert_eq!(cp.invocations, 1);
    }

    #[test]
    fn a_checkpoint_keeps_its_stored_shape_with_counts_and_errors_at_the_top() {
        let mut cp = saved(false, 3);
        cp.totals.errors.push(SyncIssue {
            scim_user_id: Some("u1".into()),
            member_id: None,
            message: "why".into(),
        });
        let v = cp.to_json().unwrap();
        assert_eq!(v["counts"]["created"], json!(7));
        assert_eq!(v["errors"][0]["scimUserId"], json!("u1"));
        assert_eq!(v["phase"], json!("dirty"));
        assert_eq!(v["mappingVersion"], json!(3));
        assert_eq!(v["linksMade"], json!(false));
        let back: Checkpoint = serde_json::from_value(v).unwrap();
        assert_eq!(back, cp);
    }

    #[test]
    fn an_incremental_run_goes_from_memberships_straight_to_the_dirty_set() {
        assert_eq!(Phase::Memberships.next(false), Phase::Dirty);
        assert_eq!(Phase::Dirty.next(false), Phase::Waits);
        assert_eq!(Phase::Waits.next(false), Phase::Done);
    }

    #[test]
    fn a_full_run_reads_every_user_then_every_link_before_the_dirty_set() {
        assert_eq!(Phase::Memberships.next(true), Phase::Users);
        assert_eq!(Phase::Users.next(true), Phase::Links);
        assert_eq!(Phase::Links.next(true), Phase::Dirty);
    }

    #[test]
    fn advancing_resets_the_cursor_and_group_progress() {
        let mut cp = saved(false, 3);
        cp.group_progress = Some(GroupProgress {
            change: "G#1".into(),
            member: "u-1".into(),
        });
        cp.advance();
        assert_eq!(cp.phase, Phase::Waits);
        assert_eq!(cp.cursor, None);
        assert_eq!(cp.group_progress, None);
    }

    #[test]
    fn an_incomplete_run_leaves_its_checkpoint_and_applies_no_mapping() {
        let cp = saved(true, 3);
        let report = StoredReport {
            key: "k".into(),
            report: json!({}),
            event: None,
        };
        let end = cp.end(false, "t".into(), report.clone()).unwrap();
        assert_eq!(end.checkpoint, Some(cp.to_json().unwrap()));
        assert_eq!(end.applied_mapping_version, None);
        let end = cp.end(true, "t".into(), report.clone()).unwrap();
        assert_eq!(end.checkpoint, None);
        assert_eq!(end.applied_mapping_version, Some(3));
    }

    #[test]
    fn a_complete_incremental_run_records_no_applied_mapping() {
        let cp = saved(false, 3);
        let report = StoredReport {
            key: "k".into(),
            report: json!({}),
            event: None,
        };
        let end = cp.end(true, "t".into(), report).unwrap();
        assert_eq!(end.applied_mapping_version, None);
    }
}
