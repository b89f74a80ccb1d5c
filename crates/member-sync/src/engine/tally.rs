//! The run's tally: one outcome per user however often the run looks at
//! it, the changes listed (capped for real runs), the errors, and the report
//! built from them. Changes when what a report counts or lists changes.

use std::collections::HashMap;

use scim_proto::ids::TenantId;
use scim_store::sync_state::StoredReport;
use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use super::now;
use crate::plan::Outcome;
use crate::report::{
    MAX_CHANGES, MAX_ERRORS, MemberChangePreview, SyncCounts, SyncIssue, SyncReport,
};

/// Largest report stored (DynamoDB items stop at 400 KB); changes are
/// dropped from the stored copy beyond it.
const MAX_STORED_REPORT_BYTES: usize = 300 * 1024;

/// What the whole run counted so far (saved with the checkpoint: a resumed
/// run's counts include the earlier invocations').
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Totals {
    pub counts: SyncCounts,
    pub errors: Vec<SyncIssue>,
}

impl Totals {
    fn count(&mut self, outcome: Outcome, delta: i64) {
        let c = &mut self.counts;
        let slot = match outcome {
            Outcome::Created => &mut c.created,
            Outcome::Updated => &mut c.updated,
            Outcome::Deactivated => &mut c.deactivated,
            Outcome::Reactivated => &mut c.reactivated,
            Outcome::Unchanged => &mut c.unchanged,
            Outcome::Linked => &mut c.linked,
            Outcome::Failed => &mut c.failed,
        };
        *slot = slot.saturating_add_signed(delta);
    }

    /// Lists an error (at most [`MAX_ERRORS`]).
    pub(super) fn issue(
        &mut self,
        scim_user_id: Option<String>,
        member_id: Option<String>,
        message: String,
    ) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(SyncIssue {
                scim_user_id,
                member_id,
                message,
            });
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    outcome: Outcome,
    change: Option<usize>,
}

/// This invocation's changes and the outcome of each user seen.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// A dry run lists every change; a real run at most [`MAX_CHANGES`].
    list_all: bool,
    changes: Vec<MemberChangePreview>,
    truncated: bool,
    /// A user looked at twice (say, created, then given its manager)
    /// counts once.
    seen: HashMap<String, Seen>,
}

impl Tally {
    pub(super) fn new(list_all: bool) -> Self {
        Self {
            list_all,
            ..Self::default()
        }
    }

    fn push_change(&mut self, change: Option<MemberChangePreview>) -> Option<usize> {
        let change = change?;
        if !self.list_all && self.changes.len() >= MAX_CHANGES {
            self.truncated = true;
            return None;
        }
        self.changes.push(change);
        Some(self.changes.len() - 1)
    }

    fn first_outcome(
        &mut self,
        totals: &mut Totals,
        user_id: &str,
        outcome: Outcome,
        change: Option<MemberChangePreview>,
    ) {
        totals.count(outcome, 1);
        let change = self.push_change(change);
        self.seen
            .insert(user_id.to_owned(), Seen { outcome, change });
    }

    /// Records a user's outcome: the first counts; a change after an
    /// unchanged or failed look replaces it; a change after a change is
    /// folded into the first one.
    pub(super) fn record(
        &mut self,
        totals: &mut Totals,
        user_id: &str,
        outcome: Outcome,
        change: Option<MemberChangePreview>,
    ) {
        match self.seen.get(user_id).copied() {
            None => self.first_outcome(totals, user_id, outcome, change),
            Some(_) if outcome == Outcome::Unchanged => {}
            Some(prev) if matches!(prev.outcome, Outcome::Unchanged | Outcome::Failed) => {
                totals.count(prev.outcome, -1);
                self.first_outcome(totals, user_id, outcome, change);
            }
            Some(prev) => {
                if let (Some(i), Some(c)) = (prev.change, change)
                    && let Some(first) = self.changes.get_mut(i)
                {
                    fold(first, c);
                }
            }
        }
    }

    /// Records a user that could not be synced: counted once, listed once.
    pub(super) fn record_failure(
        &mut self,
        totals: &mut Totals,
        user_id: &str,
        member_id: Option<String>,
        message: String,
    ) {
        let failed = Seen {
            outcome: Outcome::Failed,
            change: None,
        };
        match self.seen.get(user_id).copied() {
            // Already reported in this run.
            Some(prev) if prev.outcome == Outcome::Failed => return,
            // Synced earlier in this run, failed now (a later pass): listed,
            // counted once.
            Some(prev) if prev.outcome != Outcome::Unchanged => {}
            Some(prev) => {
                totals.count(prev.outcome, -1);
                totals.count(Outcome::Failed, 1);
                self.seen.insert(user_id.to_owned(), failed);
            }
            None => {
                totals.count(Outcome::Failed, 1);
                self.seen.insert(user_id.to_owned(), failed);
            }
        }
        totals.issue(Some(user_id.to_owned()), member_id, message);
    }

    /// The report, and the copy to store (within DynamoDB's item size),
    /// keyed by finish time, run and lease owner.
    pub(super) fn report(
        &self,
        cp: &Checkpoint,
        tenant: &TenantId,
        complete: bool,
        owner: &str,
    ) -> (SyncReport, StoredReport) {
        let finished = now();
        let report = SyncReport {
            run_id: cp.run_id.clone(),
            tenant: tenant.to_string(),
            started: cp.started.clone(),
            finished: finished.clone(),
            dry_run: self.list_all,
            full: cp.full,
            complete,
            counts: cp.totals.counts.clone(),
            changes: self.changes.clone(),
            truncated: self.truncated,
            errors: cp.totals.errors.clone(),
        };
        let stored = fit(report.clone(), MAX_STORED_REPORT_BYTES);
        let value = serde_json::to_value(&stored).unwrap_or(serde_json::Value::Null);
        let key = format!("{finished}#{}#{owner}", cp.run_id);
        (
            report,
            StoredReport {
                key,
                report: value,
                event: None,
            },
        )
    }
}

/// Folds a later change of the same member into the first: the latest
/// values win, and what ends where it started is no change.
fn fold(first: &mut MemberChangePreview, later: MemberChangePreview) {
    first.email = later.email;
    first.display_name = later.display_name;
    for (k, v) in later.fields {
        first
            .fields
            .entry(k)
            .and_modify(|f| f.after = v.after.clone())
            .or_insert(v);
    }
    for (k, v) in later.properties {
        first
            .properties
            .entry(k)
            .and_modify(|f| f.after = v.after.clone())
            .or_insert(v);
    }
    first.fields.retain(|_, v| v.before != v.after);
    first.properties.retain(|_, v| v.before != v.after);
}

/// `report` with its changes halved until it serialises within `max` bytes.
fn fit(mut report: SyncReport, max: usize) -> SyncReport {
    while report.changes.len() > 1 && serde_json::to_vec(&report).map_or(0, |v| v.len()) > max {
        report.changes.truncate(report.changes.len() / 2);
        report.truncated = true;
    }
    report
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::*;
    use crate::report::{ChangeAction, ValueChange};

    fn change(property: &str, before: Value, after: Value) -> MemberChangePreview {
        MemberChangePreview {
            action: ChangeAction::Update,
            member_id: "m-u1".into(),
            scim_user_id: "u1".into(),
            email: "u1@x".into(),
            display_name: "U".into(),
            link: None,
            fields: BTreeMap::new(),
            properties: [(property.to_owned(), ValueChange { before, after })].into(),
        }
    }

    #[test]
    fn a_user_changed_twice_in_a_run_counts_once_with_its_changes_folded() {
        let (mut t, mut totals) = (Tally::new(false), Totals::default());
        t.record(
            &mut totals,
            "u1",
            Outcome::Created,
            Some(change("a", json!(null), json!(1))),
        );
        t.record(
            &mut totals,
            "u1",
            Outcome::Updated,
            Some(change("a", json!(1), json!(2))),
        );
        assert_eq!(totals.counts.created, 1);
        assert_eq!(totals.counts.updated, 0);
        assert_eq!(t.changes.len(), 1);
        assert_eq!(t.changes[0].properties["a"].before, json!(null));
        assert_eq!(t.changes[0].properties["a"].after, json!(2));
    }

    #[test]
    fn a_change_undone_later_in_the_run_is_no_change() {
        let (mut t, mut totals) = (Tally::new(false), Totals::default());
        t.record(
            &mut totals,
            "u1",
            Outcome::Updated,
            Some(change("a", json!(1), json!(2))),
        );
        t.record(
            &mut totals,
            "u1",
            Outcome::Updated,
            Some(change("a", json!(2), json!(1))),
        );
        assert!(t.changes[0].properties.is_empty());
    }

    #[test]
    fn a_user_left_alone_then_changed_counts_as_changed() {
        let (mut t, mut totals) = (Tally::new(false), Totals::default());
        t.record(&mut totals, "u1", Outcome::Unchanged, None);
        t.record(
            &mut totals,
            "u1",
            Outcome::Updated,
            Some(change("a", json!(1), json!(2))),
        );
        t.record(&mut totals, "u1", Outcome::Unchanged, None);
        assert_eq!(totals.counts.unchanged, 0);
        assert_eq!(totals.counts.updated, 1);
    }

    #[test]
    fn a_failed_user_counts_once_and_is_listed_once() {
        let (mut t, mut totals) = (Tally::new(false), Totals::default());
        t.record_failure(&mut totals, "u1", None, "no".into());
        t.record_failure(&mut totals, "u1", None, "no again".into());
        assert_eq!(totals.counts.failed, 1);
        assert_eq!(totals.errors.len(), 1);
        assert_eq!(totals.errors[0].scim_user_id.as_deref(), Some("u1"));
    }

    #[test]
    fn a_failure_after_a_change_is_listed_but_keeps_the_change_counted() {
        let (mut t, mut totals) = (Tally::new(false), Totals::default());
        t.record(&mut totals, "u1", Outcome::Created, None);
        t.record_failure(&mut totals, "u1", Some("m-u1".into()), "lost".into());
        assert_eq!((totals.counts.created, totals.counts.failed), (1, 0));
        assert_eq!(totals.errors[0].member_id.as_deref(), Some("m-u1"));
    }

    #[test]
    fn a_failure_replaces_an_unchanged_outcome() {
        let (mut t, mut totals) = (Tally::new(false), Totals::default());
        t.record(&mut totals, "u1", Outcome::Unchanged, None);
        t.record_failure(&mut totals, "u1", None, "no".into());
        assert_eq!((totals.counts.unchanged, totals.counts.failed), (0, 1));
    }

    #[test]
    fn a_real_run_lists_at_most_max_changes_and_says_so() {
        let (mut t, mut totals) = (Tally::new(false), Totals::default());
        for i in 0..=MAX_CHANGES {
            let c = change("a", json!(0), json!(1));
            t.record(&mut totals, &format!("u{i}"), Outcome::Updated, Some(c));
        }
        assert_eq!(t.changes.len(), MAX_CHANGES);
        assert!(t.truncated);
        assert_eq!(totals.counts.updated, MAX_CHANGES as u64 + 1);
    }

    #[test]
    fn a_dry_run_lists_every_change() {
        let (mut t, mut totals) = (Tally::new(true), Totals::default());
        for i in 0..=MAX_CHANGES {
            let c = change("a", json!(0), json!(1));
            t.record(&mut totals, &format!("u{i}"), Outcome::Updated, Some(c));
        }
        assert_eq!(t.changes.len(), MAX_CHANGES + 1);
        assert!(!t.truncated);
    }

    #[test]
    fn at_most_max_errors_are_listed_but_all_are_counted() {
        let (mut t, mut totals) = (Tally::new(false), Totals::default());
        for i in 0..=MAX_ERRORS {
            t.record_failure(&mut totals, &format!("u{i}"), None, "no".into());
        }
        assert_eq!(totals.errors.len(), MAX_ERRORS);
        assert_eq!(totals.counts.failed, MAX_ERRORS as u64 + 1);
    }

    #[test]
    fn the_stored_report_drops_changes_until_it_fits() {
        let report = SyncReport {
            run_id: "r".into(),
            tenant: "t".into(),
            started: "s".into(),
            finished: "f".into(),
            dry_run: false,
            full: false,
            complete: true,
            counts: SyncCounts::default(),
            changes: vec![change("a", json!("x".repeat(100)), json!(1)); 64],
            truncated: false,
            errors: Vec::new(),
        };
        let small = fit(report.clone(), 2000);
        assert!(small.truncated);
        assert!(small.changes.len() < 64 && !small.changes.is_empty());
        assert!(serde_json::to_vec(&small).unwrap().len() <= 2000);
        let whole = fit(report, usize::MAX);
        assert_eq!((whole.changes.len(), whole.truncated), (64, false));
    }
}
