//! The run's sequence: which phases run, in what order, and how each pages
//! through its source a batch at a time. Changes when the run looks at
//! users from a new source or in a new order.
//!
//! 0. `memberships`: users whose groups changed with no user write (they
//!    joined or left a group, or a group of theirs was renamed), recorded by
//!    the group store as marks. Looked at when the mapping uses `groups` and
//!    the run is incremental (a full run looks at every user anyway), then
//!    the marks are cleared;
//! 1. `users` (full runs only): every user in id order, merged with the
//!    dirty set (also in id order) so that deleted users are seen and the
//!    dirty items of the users handled are cleared;
//! 2. `links` (full runs only): every link whose SCIM user no longer exists
//!    (a safety net: deletions normally arrive through the dirty set);
//! 3. `dirty`: the users changed since they were last synced (for a full
//!    run, those changed during it and those that failed);
//! 4. `waits`: members whose manager had no member, when this run linked
//!    new members (their `manager` property can now be filled in).

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt, stream};
use scim_proto::ids::ResourceId;
use scim_store::groups::{ChangedGroups, MembershipChange};

use super::Run;
use super::checkpoint::{GroupProgress, Phase};
use super::overlay::wait_key;
use super::work::{Merge, Work};
use crate::error::SyncError;

impl Run<'_> {
    /// Runs phases until done (`true`) or out of time (`false`).
    pub(super) async fn execute(&mut self) -> Result<bool, SyncError> {
        loop {
            let finished = match self.cp.phase {
                Phase::Memberships => self.memberships_phase().await?,
                Phase::Users => self.users_phase().await?,
                Phase::Links => self.links_phase().await?,
                Phase::Dirty => self.dirty_phase().await?,
                Phase::Waits => self.waits_phase().await?,
                Phase::Done => return Ok(true),
            };
            if !finished {
                return Ok(false);
            }
            self.cp.advance();
        }
    }

    fn n(&self) -> usize {
        self.e.batch_size
    }

    fn cursor_id(&self) -> Option<ResourceId> {
        self.cp.cursor.as_deref().and_then(ResourceId::parse)
    }

    /// Users whose groups changed without a user write. Only worth reading
    /// when `groups` is mapped, and a full run reads every user next anyway;
    /// the marks are cleared either way (a dry run leaves them).
    async fn memberships_phase(&mut self) -> Result<bool, SyncError> {
        let look = self.mapping.has_groups() && !self.cp.full;
        if self.dry_run && !look {
            return Ok(true);
        }
        let groups = self.e.groups.clone();
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            let (changes, more) = groups
                .membership_changes(self.tenant, self.cp.cursor.as_deref(), self.n())
                .await?;
            let Some(last) = changes.last().map(MembershipChange::key) else {
                return Ok(true);
            };
            let mut users = Vec::new();
            for change in &changes {
                match &change.subject {
                    // Group changes sort first ("G#" < "U#"), each its own batches.
                    ChangedGroups::OfMembers(group) => {
                        if look && !self.renamed_group(change, group).await? {
                            return Ok(false);
                        }
                        self.clear_changes(std::slice::from_ref(change)).await?;
                        self.cp.group_progress = None;
                        self.batch_done(change.key()).await?;
                    }
                    ChangedGroups::OfUser(user) => users.push(Work::read(user.clone())),
                }
            }
            if !users.is_empty() {
                if look {
                    self.process(users).await?;
                }
                let handled: Vec<MembershipChange> = changes
                    .into_iter()
                    .filter(|c| matches!(c.subject, ChangedGroups::OfUser(_)))
                    .collect();
                self.clear_changes(&handled).await?;
                self.batch_done(last).await?;
            }
            if !more {
                return Ok(true);
            }
        }
    }

    /// Looks at every member of a renamed group, a batch at a time;
    /// `false` when out of time (the checkpoint says how far it got).
    async fn renamed_group(
        &mut self,
        change: &MembershipChange,
        group: &ResourceId,
    ) -> Result<bool, SyncError> {
        let key = change.key();
        let mut after = self
            .cp
            .group_progress
            .as_ref()
            .filter(|p| p.change == key)
            .and_then(|p| ResourceId::parse(&p.member));
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            let (ids, next) = self
                .e
                .groups
                .member_page(self.tenant, group, after.as_ref(), self.n())
                .await?;
            let Some(last) = ids.last().cloned() else {
                return Ok(true);
            };
            let work = ids.into_iter().map(Work::read).collect();
            self.process(work).await?;
            self.cp.group_progress = Some(GroupProgress {
                change: key.clone(),
                member: last.to_string(),
            });
            self.save().await?;
            after = Some(last);
            if next.is_none() {
                return Ok(true);
            }
        }
    }

    /// Clears handled membership changes (a dry run keeps them).
    async fn clear_changes(&self, changes: &[MembershipChange]) -> Result<(), SyncError> {
        if self.dry_run {
            return Ok(());
        }
        let (groups, tenant) = (&self.e.groups, self.tenant);
        stream::iter(changes)
            .map(|c| groups.clear_membership_change(tenant, c))
            .buffer_unordered(self.e.parallelism)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Every user, merged with the dirty set.
    async fn users_phase(&mut self) -> Result<bool, SyncError> {
        let n = self.n();
        let (users, tenant) = (self.e.users.clone(), self.tenant);
        let mut merge = Merge::default();
        let (mut users_after, mut dirty_after) = (self.cursor_id(), self.cursor_id());
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            if merge.users.len() < n && !merge.users_done {
                let (page, next) = users.page(tenant, users_after.as_ref(), n).await?;
                merge.users_done = next.is_none() || page.is_empty();
                if let Some(last) = page.last() {
                    users_after = Some(last.id.clone());
                }
                merge.users.extend(page);
            }
            if merge.dirty.len() < n && !merge.dirty_done {
                let (page, next) = users.dirty(tenant, dirty_after.as_ref(), n).await?;
                merge.dirty_done = next.is_none() || page.is_empty();
                if let Some(last) = page.last() {
                    dirty_after = Some(last.id.clone());
                }
                merge.dirty.extend(page);
            }
            if merge.is_empty() {
                return Ok(true);
            }
            let work = merge.take(n);
            let Some(last) = work.last().map(|w| w.id.to_string()) else {
                return Ok(true);
            };
            self.process(work).await?;
            self.batch_done(last).await?;
        }
    }

    /// Every link whose user no longer exists.
    async fn links_phase(&mut self) -> Result<bool, SyncError> {
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            let (links, next) = self
                .e
                .members
                .link_page(self.tenant, self.cp.cursor.as_deref(), self.n())
                .await?;
            let Some(last) = links.last().map(|l| l.user_id.clone()) else {
                return Ok(true);
            };
            let ids: Vec<ResourceId> = links
                .iter()
                .filter(|l| !self.overlay.removed_link(&l.user_id))
                .filter_map(|l| ResourceId::parse(&l.user_id))
                .collect();
            let existing: HashSet<ResourceId> = self
                .e
                .users
                .existing(self.tenant, &ids)
                .await?
                .into_iter()
                .collect();
            let gone: Vec<Work> = ids
                .into_iter()
                .filter(|id| !existing.contains(id))
                .map(Work::gone)
                .collect();
            if !gone.is_empty() {
                self.process(gone).await?;
            }
            self.batch_done(last).await?;
            if next.is_none() {
                return Ok(true);
            }
        }
    }

    /// The users changed since they were last synced.
    async fn dirty_phase(&mut self) -> Result<bool, SyncError> {
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            let after = self.cursor_id();
            let (page, next) = self
                .e
                .users
                .dirty(self.tenant, after.as_ref(), self.n())
                .await?;
            let Some(last) = page.last().map(|d| d.id.to_string()) else {
                return Ok(true);
            };
            let work = page.into_iter().map(Work::dirty).collect();
            self.process(work).await?;
            self.batch_done(last).await?;
            if next.is_none() {
                return Ok(true);
            }
        }
    }

    /// Members waiting for a manager that may now have a member.
    async fn waits_phase(&mut self) -> Result<bool, SyncError> {
        if !self.cp.links_made {
            return Ok(true);
        }
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            let (waits, more) = self.waits_page().await?;
            let Some(last) = waits.last().map(wait_key) else {
                return Ok(true);
            };
            let managers: Vec<String> = waits.iter().map(|w| w.manager.clone()).collect();
            let links = self.links(&managers).await?;
            let mut reports: Vec<ResourceId> = waits
                .iter()
                .filter(|w| links.contains_key(&w.manager))
                .filter_map(|w| ResourceId::parse(&w.report))
                .collect();
            reports.sort();
            reports.dedup();
            let work: Vec<Work> = reports.into_iter().map(Work::read).collect();
            if !work.is_empty() {
                self.process(work).await?;
            }
            self.batch_done(last).await?;
            if !more {
                return Ok(true);
            }
        }
    }
}
