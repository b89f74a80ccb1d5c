//! Writing a planned batch: each member in its own transaction, several in
//! flight, or into the overlay for a dry run; then what each result means
//! (done, retried next sync, or the run stops) and which dirty items are
//! cleared. Changes when how writes are made or judged changes.

use futures::{StreamExt, TryStreamExt, stream};
use scim_store::StoreError;
use scim_store::error::Unique;
use scim_store::members::LinkWrite;
use scim_store::users::DirtyUser;

use super::Run;
use super::decide::Planned;
use crate::error::SyncError;
use crate::plan::{Outcome, Plan};
use crate::report::MemberChangePreview;

/// What to record for one planned user once its write is done.
#[derive(Debug, PartialEq)]
enum Settled {
    /// Not a member's business.
    Skipped,
    Unchanged,
    Written {
        outcome: Outcome,
        change: Option<MemberChangePreview>,
        /// A member got linked (manager waits may now resolve).
        linked: bool,
    },
    Failed {
        member_id: Option<String>,
        why: String,
    },
}

/// How a member write went: `Ok(None)` written, `Ok(Some(why))` lost a
/// race (the user stays dirty and is retried next sync), `Err` the run
/// stops.
fn judge(result: Result<(), StoreError>) -> Result<Option<String>, StoreError> {
    match result {
        Ok(()) => Ok(None),
        Err(StoreError::Conflict(Unique::Email)) => Ok(Some(
            "the email was taken by another member during the sync; retried next sync".to_owned(),
        )),
        Err(StoreError::VersionMismatch | StoreError::NotFound) => Ok(Some(
            "the member changed during the sync; retried next sync".to_owned(),
        )),
        Err(e) => Err(e),
    }
}

/// What `plan` comes to, given its write's `failure` (if any).
fn settle(plan: Plan, failure: Option<String>) -> Settled {
    match (plan, failure) {
        (Plan::Write { write, .. }, Some(why)) => Settled::Failed {
            member_id: Some(write.member.id),
            why,
        },
        (Plan::Fail(why), _) => Settled::Failed {
            member_id: None,
            why,
        },
        (Plan::Skip, _) => Settled::Skipped,
        (Plan::Unchanged, _) => Settled::Unchanged,
        (
            Plan::Write {
                outcome,
                write,
                change,
            },
            None,
        ) => Settled::Written {
            outcome,
            change: change.map(|c| *c),
            linked: matches!(write.link, Some(LinkWrite::Add { .. })),
        },
    }
}

/// The dirty item to clear once a user is synced: none if it failed, or if
/// the user changed again after it was read (its newer change is not
/// synced yet).
fn to_clear(
    synced: bool,
    dirty: Option<DirtyUser>,
    user_version: Option<u64>,
) -> Option<DirtyUser> {
    dirty.filter(|d| synced && user_version.is_none_or(|v| d.version <= v))
}

impl Run<'_> {
    /// Writes the batch, records each user's outcome, clears the dirty
    /// items of the users synced; the first unexpected store error stops
    /// the run once the rest is recorded.
    pub(super) async fn apply(&mut self, mut planned: Vec<Planned>) -> Result<(), SyncError> {
        if !self.dry_run {
            for p in &mut planned {
                if let Plan::Write {
                    outcome,
                    write,
                    change,
                } = &mut p.plan
                {
                    write.event = crate::events::member_event(
                        self.tenant,
                        &p.user_id,
                        *outcome,
                        write,
                        change.as_deref(),
                    );
                }
            }
        }
        let results = self.write(&planned).await;
        let mut first_error = None;
        let mut clear = Vec::new();
        for (p, result) in planned.into_iter().zip(results) {
            let failure = match judge(result) {
                Ok(failure) => failure,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            let synced = self.record(&p.user_id, settle(p.plan, failure));
            clear.extend(to_clear(synced, p.dirty, p.user_version));
        }
        self.clear_dirty(clear).await?;
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// The member writes, in order (a dry run's go to its overlay).
    async fn write(&mut self, planned: &[Planned]) -> Vec<Result<(), StoreError>> {
        if self.dry_run {
            for p in planned {
                if let Plan::Write { write, .. } = &p.plan {
                    self.overlay.apply(write);
                }
            }
            return planned.iter().map(|_| Ok(())).collect();
        }
        let (members, tenant) = (self.e.members.clone(), self.tenant);
        stream::iter(planned)
            .map(|p| {
                let members = members.clone();
                async move {
                    match &p.plan {
                        Plan::Write { write, .. } => members.write(tenant, write).await,
                        _ => Ok(()),
                    }
                }
            })
            .buffered(self.e.parallelism)
            .collect()
            .await
    }

    /// Tallies one user; `true` when it is synced.
    fn record(&mut self, user_id: &str, settled: Settled) -> bool {
        match settled {
            Settled::Skipped => true,
            Settled::Unchanged => {
                self.tally
                    .record(&mut self.cp.totals, user_id, Outcome::Unchanged, None);
                true
            }
            Settled::Written {
                outcome,
                change,
                linked,
            } => {
                self.cp.links_made |= linked;
                self.tally
                    .record(&mut self.cp.totals, user_id, outcome, change);
                true
            }
            Settled::Failed { member_id, why } => {
                self.tally
                    .record_failure(&mut self.cp.totals, user_id, member_id, why);
                false
            }
        }
    }

    /// Clears synced users' dirty items (a dry run keeps them).
    async fn clear_dirty(&self, clear: Vec<DirtyUser>) -> Result<(), SyncError> {
        if self.dry_run || clear.is_empty() {
            return Ok(());
        }
        let (users, tenant) = (self.e.users.clone(), self.tenant);
        stream::iter(clear)
            .map(|d| {
                let users = users.clone();
                async move { users.clear_dirty(tenant, &d).await }
            })
            .buffer_unordered(self.e.parallelism)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use scim_proto::ids::ResourceId;
    use scim_store::members::MemberWrite;
    use serde_json::json;

    use super::*;
    use crate::fixtures::provisioned;

    fn dirty(version: u64) -> DirtyUser {
        DirtyUser {
            id: ResourceId::parse("u1").unwrap(),
            version,
            deleted: false,
        }
    }

    fn write(link: Option<LinkWrite>) -> Plan {
        Plan::Write {
            outcome: Outcome::Created,
            write: Box::new(MemberWrite {
                member: provisioned("u1", json!({})),
                expected_version: None,
                claim_email: None,
                release_email: None,
                link,
                wait_add: None,
                wait_remove: None,
                event: None,
            }),
            change: None,
        }
    }

    #[test]
    fn an_email_taken_during_the_sync_is_a_failure_retried_next_sync() {
        let why = judge(Err(StoreError::Conflict(Unique::Email))).unwrap();
        assert!(why.unwrap().contains("retried next sync"));
    }

    #[test]
    fn a_member_changed_during_the_sync_is_a_failure_retried_next_sync() {
        assert!(judge(Err(StoreError::VersionMismatch)).unwrap().is_some());
        assert!(judge(Err(StoreError::NotFound)).unwrap().is_some());
        assert_eq!(judge(Ok(())).unwrap(), None);
    }

    #[test]
    fn any_other_store_error_stops_the_run() {
        let e = judge(Err(StoreError::Internal("boom".into()))).unwrap_err();
        assert!(matches!(e, StoreError::Internal(_)));
    }

    #[test]
    fn a_write_that_lost_its_race_fails_naming_the_member() {
        let settled = settle(write(None), Some("lost".into()));
        assert_eq!(
            settled,
            Settled::Failed {
                member_id: Some("m-u1".into()),
                why: "lost".into()
            }
        );
    }

    #[test]
    fn a_written_link_makes_the_waits_phase_due() {
        let add = LinkWrite::Add {
            link: crate::fixtures::link("u1", "m-u1"),
            previous_managed_by: None,
        };
        assert!(matches!(
            settle(write(Some(add)), None),
            Settled::Written {
                linked: true,
                outcome: Outcome::Created,
                ..
            }
        ));
        assert!(matches!(
            settle(write(None), None),
            Settled::Written { linked: false, .. }
        ));
    }

    #[test]
    fn planned_failures_skips_and_unchanged_users_settle_as_planned() {
        assert_eq!(settle(Plan::Skip, None), Settled::Skipped);
        assert_eq!(settle(Plan::Unchanged, None), Settled::Unchanged);
        assert_eq!(
            settle(Plan::Fail("no".into()), None),
            Settled::Failed {
                member_id: None,
                why: "no".into()
            }
        );
    }

    #[test]
    fn a_synced_users_dirty_item_is_cleared() {
        assert_eq!(to_clear(true, Some(dirty(3)), Some(3)), Some(dirty(3)));
        // A deleted user has no version to compare.
        assert_eq!(to_clear(true, Some(dirty(3)), None), Some(dirty(3)));
    }

    #[test]
    fn the_dirty_item_stays_when_the_user_changed_after_it_was_read() {
        assert_eq!(to_clear(true, Some(dirty(4)), Some(3)), None);
    }

    #[test]
    fn a_failed_users_dirty_item_stays_for_the_next_sync() {
        assert_eq!(to_clear(false, Some(dirty(3)), Some(3)), None);
    }
}
