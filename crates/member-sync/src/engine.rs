//! The sync run: phases, batches, checkpoints, lease, report.
//!
//! A run goes through phases, each a sequence of batches of at most
//! `batch_size` users (100: one `BatchGetItem` per read):
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
//!
//! Each user's member is written in one conditional transaction, then its
//! dirty item is cleared (only if the user did not change again meanwhile).
//! After every batch the checkpoint (phase, cursor, counts) is saved with
//! the lease renewed in the same conditional write. Whatever point a run
//! stops at, a rerun reads the state again and writes only what is still
//! missing: member ids of created members are deterministic (`m-<user id>`)
//! and created with their link item under `attribute_not_exists`, so no
//! member is ever created twice.
//!
//! A dry run takes the same path without writing: its writes go to an
//! in-memory overlay that its later reads see, so its report is what the
//! real run would do.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use scim_proto::ids::{ResourceId, TenantId};
use scim_store::StoreError;
use scim_store::error::Unique;
use scim_store::groups::{ChangedGroups, GroupStore, MembershipChange};
use scim_store::members::{LinkWrite, ManagerWait, Member, MemberLink, MemberStore, MemberWrite};
use scim_store::sync_state::{RunEnd, StoredReport, SyncState, SyncStateStore};
use scim_store::users::{DirtyUser, StoredUser, UserStore};
use serde::{Deserialize, Serialize};

use crate::mapping::Compiled;
use crate::plan::{self, Desired, Inputs, ManagerRef, Outcome, Plan, Target};
use crate::{
    MAX_CHANGES, MAX_ERRORS, MemberChangePreview, SyncCounts, SyncError, SyncIssue, SyncOptions,
    SyncReport, mapping_entries,
};

/// Users per batch (and per checkpoint).
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// How long a lease lasts without renewal (every checkpoint renews it).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(90);
/// Member writes (and dirty clears) in flight at once.
pub const DEFAULT_PARALLELISM: usize = 16;
/// Largest report stored (DynamoDB items stop at 400 KB); changes are
/// dropped from the stored copy beyond it.
const MAX_STORED_REPORT_BYTES: usize = 300 * 1024;

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
            let mut run = self.start(tenant, &options, String::new(), state).await?;
            let complete = run.execute().await?;
            return Ok(run.report(complete).0);
        }
        let owner = new_id();
        let Some(state) = self
            .state
            .acquire_lease(tenant, &owner, self.lease_ttl)
            .await?
        else {
            return Err(SyncError::LeaseHeld(tenant.to_string()));
        };
        let mut run = match self.start(tenant, &options, owner.clone(), state).await {
            Ok(run) => run,
            Err(e) => {
                let _ = self.state.release_lease(tenant, &owner).await;
                return Err(e);
            }
        };
        match run.execute().await {
            Ok(complete) => {
                let (report, stored) = run.report(complete);
                let end = RunEnd {
                    checkpoint: if complete {
                        None
                    } else {
                        Some(to_json(&run.cp)?)
                    },
                    applied_mapping_version: (complete && run.cp.full)
                        .then_some(run.cp.mapping_version),
                    finished: report.finished.clone(),
                    report: stored,
                };
                match self.state.finish(tenant, &owner, &end).await {
                    Ok(true) => Ok(report),
                    Ok(false) => Err(SyncError::LeaseHeld(tenant.to_string())),
                    Err(e) => {
                        // The last checkpoint stays; let the next sync start now.
                        let _ = self.state.release_lease(tenant, &owner).await;
                        Err(e.into())
                    }
                }
            }
            Err(e) => {
                // The last checkpoint stays: the next sync resumes from it.
                run.issue(None, None, format!("the run stopped: {e}"));
                let (_, stored) = run.report(false);
                let _ = self.state.put_report(tenant, &stored).await;
                let _ = self.state.release_lease(tenant, &owner).await;
                Err(e)
            }
        }
    }

    /// Loads settings and decides: resume the saved run, or start one.
    async fn start<'a>(
        &'a self,
        tenant: &'a TenantId,
        options: &SyncOptions,
        owner: String,
        state: SyncState,
    ) -> Result<Run<'a>, SyncError> {
        let settings = self.state.settings(tenant).await?;
        let entries = mapping_entries(&settings.mapping)?;
        let mapping = Compiled::new(&entries).map_err(|e| SyncError::Mapping(e.to_string()))?;
        let version = settings.mapping.version;
        let saved = state
            .run
            .and_then(|v| serde_json::from_value::<Checkpoint>(v).ok())
            .filter(|cp| cp.mapping_version == version && (cp.full || !options.full));
        let cp = match saved {
            Some(mut cp) if !options.dry_run => {
                cp.invocations += 1;
                // Links may have been made after the last checkpoint.
                cp.links_made = true;
                cp
            }
            _ => {
                let full = options.full || state.applied_mapping_version != Some(version);
                Checkpoint {
                    run_id: new_id(),
                    started: now(),
                    full,
                    mapping_version: version,
                    phase: Phase::Memberships,
                    cursor: None,
                    group_progress: None,
                    counts: SyncCounts::default(),
                    errors: Vec::new(),
                    links_made: false,
                    invocations: 1,
                }
            }
        };
        Ok(Run {
            e: self,
            tenant,
            dry_run: options.dry_run,
            mapping,
            link_by_email: settings.link_by_email,
            cp,
            owner,
            deadline: options.deadline,
            batches: 0,
            changes: Vec::new(),
            truncated: false,
            seen: HashMap::new(),
            overlay: Overlay::default(),
            group_names: HashMap::new(),
        })
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn now() -> String {
    scim_proto::resource::format_time(time::OffsetDateTime::now_utc())
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value, SyncError> {
    serde_json::to_value(v)
        .map_err(|e| SyncError::Store(StoreError::internal("serializing a value", e)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Phase {
    Memberships,
    Users,
    Links,
    Dirty,
    Waits,
    Done,
}

/// A run's progress, saved after every batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Checkpoint {
    run_id: String,
    started: String,
    full: bool,
    mapping_version: u64,
    phase: Phase,
    /// Last user id (or link user id, or wait key, or membership change
    /// key) the phase finished.
    cursor: Option<String>,
    /// Inside a renamed group's members: how far the run got.
    #[serde(default)]
    group_progress: Option<GroupProgress>,
    counts: SyncCounts,
    errors: Vec<SyncIssue>,
    /// Whether the run linked any member (the `waits` phase is then due).
    links_made: bool,
    invocations: u32,
}

/// The members of a renamed group looked at so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupProgress {
    /// The group's membership change ([`MembershipChange::key`]).
    change: String,
    /// The last member looked at.
    member: String,
}

/// What the run knows about a user before reading it.
#[derive(Debug)]
enum Known {
    Fetched(Box<StoredUser>),
    /// Deleted (the dirty set says so, or it is not in the directory).
    Absent,
    Unknown,
}

#[derive(Debug)]
struct Work {
    id: ResourceId,
    known: Known,
    dirty: Option<DirtyUser>,
}

impl Work {
    /// A user to read and sync, not from the dirty set.
    fn read(id: ResourceId) -> Self {
        Self {
            id,
            known: Known::Unknown,
            dirty: None,
        }
    }
}

/// `stored` (read for `keys`) as a dry run sees it: with the overlay's
/// writes (`Some`) and removals (`None`) of those keys applied.
fn overlaid<V: Clone>(
    mut stored: HashMap<String, V>,
    keys: &[String],
    overlay: &HashMap<String, Option<V>>,
) -> HashMap<String, V> {
    for k in keys {
        match overlay.get(k) {
            Some(Some(v)) => {
                stored.insert(k.clone(), v.clone());
            }
            Some(None) => {
                stored.remove(k);
            }
            None => {}
        }
    }
    stored
}

/// A dry run's writes, seen by its later reads.
#[derive(Debug, Default)]
struct Overlay {
    members: HashMap<String, Member>,
    /// `None`: removed.
    links: HashMap<String, Option<MemberLink>>,
    emails: HashMap<String, Option<String>>,
    waits: BTreeMap<(String, String), bool>,
}

impl Overlay {
    fn apply(&mut self, w: &MemberWrite) {
        let id = w.member.id.clone();
        if let Some(old) = &w.release_email {
            self.emails.insert(old.clone(), None);
        }
        if let Some(new) = &w.claim_email {
            self.emails.insert(new.clone(), Some(id.clone()));
        }
        match &w.link {
            Some(LinkWrite::Add { link, .. }) => {
                self.links.insert(link.user_id.clone(), Some(link.clone()));
            }
            Some(LinkWrite::Remove { user_id }) => {
                self.links.insert(user_id.clone(), None);
            }
            None => {}
        }
        if let Some(wait) = &w.wait_remove {
            self.waits
                .insert((wait.manager.clone(), wait.report.clone()), false);
        }
        if let Some(wait) = &w.wait_add {
            self.waits
                .insert((wait.manager.clone(), wait.report.clone()), true);
        }
        self.members.insert(id, w.member.clone());
    }
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    outcome: Outcome,
    change: Option<usize>,
}

struct Run<'a> {
    e: &'a SyncEngine,
    tenant: &'a TenantId,
    dry_run: bool,
    mapping: Compiled,
    link_by_email: bool,
    cp: Checkpoint,
    /// The lease owner (this invocation).
    owner: String,
    deadline: Option<tokio::time::Instant>,
    /// Batches done by this invocation.
    batches: usize,
    changes: Vec<MemberChangePreview>,
    truncated: bool,
    /// Outcome per user in this invocation: a user looked at twice (say,
    /// created, then given its manager) counts once.
    seen: HashMap<String, Seen>,
    overlay: Overlay,
    group_names: HashMap<ResourceId, String>,
}

/// One planned user, ready to write.
struct Planned {
    user_id: String,
    user_version: Option<u64>,
    dirty: Option<DirtyUser>,
    plan: Plan,
}

impl Run<'_> {
    /// Runs phases until done (`true`) or out of time (`false`).
    async fn execute(&mut self) -> Result<bool, SyncError> {
        loop {
            let (finished, next) = match self.cp.phase {
                Phase::Memberships => (
                    self.memberships_phase().await?,
                    if self.cp.full {
                        Phase::Users
                    } else {
                        Phase::Dirty
                    },
                ),
                Phase::Users => (self.users_phase().await?, Phase::Links),
                Phase::Links => (self.links_phase().await?, Phase::Dirty),
                Phase::Dirty => (self.dirty_phase().await?, Phase::Waits),
                Phase::Waits => (self.waits_phase().await?, Phase::Done),
                Phase::Done => return Ok(true),
            };
            if !finished {
                return Ok(false);
            }
            self.cp.phase = next;
            self.cp.cursor = None;
            self.cp.group_progress = None;
        }
    }

    fn n(&self) -> usize {
        self.e.batch_size
    }

    fn out_of_time(&self) -> bool {
        self.batches > 0
            && self
                .deadline
                .is_some_and(|d| tokio::time::Instant::now() >= d)
    }

    /// Ends a batch: saves the checkpoint (renewing the lease).
    async fn batch_done(&mut self, cursor: String) -> Result<(), SyncError> {
        self.cp.cursor = Some(cursor);
        self.save().await
    }

    /// Saves the checkpoint as it is (renewing the lease).
    async fn save(&mut self) -> Result<(), SyncError> {
        self.batches += 1;
        if self.dry_run {
            return Ok(());
        }
        let cp = to_json(&self.cp)?;
        if self
            .e
            .state
            .checkpoint(self.tenant, &self.owner, &cp, self.e.lease_ttl)
            .await?
        {
            Ok(())
        } else {
            Err(SyncError::LeaseHeld(self.tenant.to_string()))
        }
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

    async fn users_phase(&mut self) -> Result<bool, SyncError> {
        let n = self.n();
        let (users, tenant) = (self.e.users.clone(), self.tenant);
        let mut users_buf: VecDeque<StoredUser> = VecDeque::new();
        let mut dirty_buf: VecDeque<DirtyUser> = VecDeque::new();
        let (mut users_after, mut dirty_after) = (self.cursor_id(), self.cursor_id());
        let (mut users_done, mut dirty_done) = (false, false);
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            if users_buf.len() < n && !users_done {
                let (page, next) = users.page(tenant, users_after.as_ref(), n).await?;
                users_done = next.is_none() || page.is_empty();
                if let Some(last) = page.last() {
                    users_after = Some(last.id.clone());
                }
                users_buf.extend(page);
            }
            if dirty_buf.len() < n && !dirty_done {
                let (page, next) = users.dirty(tenant, dirty_after.as_ref(), n).await?;
                dirty_done = next.is_none() || page.is_empty();
                if let Some(last) = page.last() {
                    dirty_after = Some(last.id.clone());
                }
                dirty_buf.extend(page);
            }
            if users_buf.is_empty() && dirty_buf.is_empty() {
                return Ok(true);
            }
            // Both lists are complete up to `bound`.
            let bound = [
                (!users_done).then(|| users_buf.back().map(|u| u.id.clone())),
                (!dirty_done).then(|| dirty_buf.back().map(|d| d.id.clone())),
            ]
            .into_iter()
            .flatten()
            .flatten()
            .min();
            let mut work = Vec::new();
            while work.len() < n {
                let next_user = users_buf.front().map(|u| u.id.clone());
                let next_dirty = dirty_buf.front().map(|d| d.id.clone());
                let Some(id) = [next_user.clone(), next_dirty.clone()]
                    .into_iter()
                    .flatten()
                    .min()
                else {
                    break;
                };
                if bound.as_ref().is_some_and(|b| id > *b) {
                    break;
                }
                let user = if next_user.as_ref() == Some(&id) {
                    users_buf.pop_front()
                } else {
                    None
                };
                let dirty = if next_dirty.as_ref() == Some(&id) {
                    dirty_buf.pop_front()
                } else {
                    None
                };
                let known = match (user, &dirty) {
                    (Some(u), _) => Known::Fetched(Box::new(u)),
                    (None, Some(d)) if d.deleted => Known::Absent,
                    (None, _) => Known::Unknown,
                };
                work.push(Work { id, known, dirty });
            }
            let Some(last) = work.last().map(|w| w.id.to_string()) else {
                return Ok(true);
            };
            self.process(work).await?;
            self.batch_done(last).await?;
        }
    }

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
                .filter(|l| !matches!(self.overlay.links.get(&l.user_id), Some(None)))
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
                .map(|id| Work {
                    id,
                    known: Known::Absent,
                    dirty: None,
                })
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
            let work = page
                .into_iter()
                .map(|d| Work {
                    id: d.id.clone(),
                    known: if d.deleted {
                        Known::Absent
                    } else {
                        Known::Unknown
                    },
                    dirty: Some(d),
                })
                .collect();
            self.process(work).await?;
            self.batch_done(last).await?;
            if next.is_none() {
                return Ok(true);
            }
        }
    }

    /// One page of manager waits after the cursor (a dry run adds its own).
    async fn waits_page(&self) -> Result<(Vec<ManagerWait>, bool), SyncError> {
        let key = |w: &ManagerWait| format!("{}#{}", w.manager, w.report);
        if !self.dry_run {
            let (waits, next) = self
                .e
                .members
                .waits(self.tenant, self.cp.cursor.as_deref(), self.n())
                .await?;
            return Ok((waits, next.is_some()));
        }
        // Dry run: the stored waits plus the overlay's, read whole.
        let mut all: BTreeMap<String, ManagerWait> = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let (waits, next) = self
                .e
                .members
                .waits(self.tenant, after.as_deref(), 1000)
                .await?;
            all.extend(waits.into_iter().map(|w| (key(&w), w)));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        for ((manager, report), present) in &self.overlay.waits {
            let w = ManagerWait {
                manager: manager.clone(),
                report: report.clone(),
            };
            if *present {
                all.insert(key(&w), w);
            } else {
                all.remove(&key(&w));
            }
        }
        let page: Vec<ManagerWait> = all
            .into_iter()
            .filter(|(k, _)| self.cp.cursor.as_ref().is_none_or(|c| k > c))
            .map(|(_, w)| w)
            .take(self.n() + 1)
            .collect();
        let more = page.len() > self.n();
        Ok((page.into_iter().take(self.n()).collect(), more))
    }

    async fn waits_phase(&mut self) -> Result<bool, SyncError> {
        if !self.cp.links_made {
            return Ok(true);
        }
        loop {
            if self.out_of_time() {
                return Ok(false);
            }
            let (waits, more) = self.waits_page().await?;
            let Some(last) = waits.last().map(|w| format!("{}#{}", w.manager, w.report)) else {
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

    // --- Reads that see a dry run's own writes ---------------------------------

    async fn links(&self, user_ids: &[String]) -> Result<HashMap<String, MemberLink>, SyncError> {
        let links = self.e.members.links(self.tenant, user_ids).await?;
        Ok(overlaid(links, user_ids, &self.overlay.links))
    }

    async fn load_members(
        &self,
        ids: Vec<String>,
        into: &mut HashMap<String, Member>,
    ) -> Result<(), SyncError> {
        let missing: Vec<String> = ids
            .into_iter()
            .filter(|id| !into.contains_key(id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let (mine, stored): (Vec<String>, Vec<String>) = missing
            .into_iter()
            .partition(|id| self.overlay.members.contains_key(id));
        for id in mine {
            if let Some(m) = self.overlay.members.get(&id) {
                into.insert(id, m.clone());
            }
        }
        if !stored.is_empty() {
            for m in self.e.members.get_many(self.tenant, &stored).await? {
                into.insert(m.id.clone(), m);
            }
        }
        Ok(())
    }

    async fn email_owners(&self, keys: &[String]) -> Result<HashMap<String, String>, SyncError> {
        let owners = self.e.members.email_owners(self.tenant, keys).await?;
        Ok(overlaid(owners, keys, &self.overlay.emails))
    }

    /// Group names of each of `users` (cached per run).
    async fn group_names_of(
        &mut self,
        users: &[ResourceId],
    ) -> Result<HashMap<String, Vec<String>>, SyncError> {
        let (groups, tenant) = (self.e.groups.clone(), self.tenant);
        let memberships: Vec<(ResourceId, Vec<ResourceId>)> = stream::iter(users.iter().cloned())
            .map(|u| {
                let groups = groups.clone();
                async move {
                    let of = groups.groups_of(tenant, &u).await?;
                    Ok::<_, StoreError>((u, of))
                }
            })
            .buffered(self.e.parallelism)
            .try_collect()
            .await?;
        let unknown: Vec<ResourceId> = memberships
            .iter()
            .flat_map(|(_, g)| g.iter())
            .filter(|g| !self.group_names.contains_key(*g))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !unknown.is_empty() {
            for g in groups.get_many(tenant, &unknown).await? {
                self.group_names
                    .insert(g.id.clone(), g.group.display_name.as_str().to_owned());
            }
        }
        Ok(memberships
            .into_iter()
            .map(|(u, gs)| {
                let names = gs
                    .iter()
                    .filter_map(|g| self.group_names.get(g).cloned())
                    .collect();
                (u.to_string(), names)
            })
            .collect())
    }

    // --- One batch ---------------------------------------------------------------

    async fn process(&mut self, work: Vec<Work>) -> Result<(), SyncError> {
        let tenant = self.tenant;
        // 1. The users.
        let unknown: Vec<ResourceId> = work
            .iter()
            .filter(|w| matches!(w.known, Known::Unknown))
            .map(|w| w.id.clone())
            .collect();
        let mut users: HashMap<String, StoredUser> = HashMap::new();
        if !unknown.is_empty() {
            for u in self.e.users.get_many(tenant, &unknown).await? {
                users.insert(u.id.to_string(), u);
            }
        }
        let mut items = Vec::with_capacity(work.len());
        for w in work {
            if let Known::Fetched(u) = w.known {
                users.insert(w.id.to_string(), *u);
            }
            items.push((w.id.to_string(), w.dirty));
        }
        let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();

        // 2. Links of the users and of their managers, and linked members.
        let has_manager = self.mapping.has_manager();
        let manager_of = |u: &StoredUser| has_manager.then(|| u.user.manager.clone()).flatten();
        let managers: Vec<String> = ids
            .iter()
            .filter_map(|id| users.get(id).and_then(manager_of))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut link_ids = ids.clone();
        link_ids.extend(managers.iter().cloned());
        let links = self.links(&link_ids).await?;
        let mut members: HashMap<String, Member> = HashMap::new();
        let linked: Vec<String> = ids
            .iter()
            .filter_map(|id| links.get(id).map(|l| l.member_id.clone()))
            .collect();
        self.load_members(linked, &mut members).await?;

        // 3. Managers without a member: the member they will get, if any.
        let unlinked_managers: Vec<ResourceId> = managers
            .iter()
            .filter(|m| !links.contains_key(*m) && !users.contains_key(*m))
            .filter_map(|m| ResourceId::parse(m))
            .collect();
        let mut manager_users: HashMap<String, StoredUser> = HashMap::new();
        if !unlinked_managers.is_empty() {
            for u in self.e.users.get_many(tenant, &unlinked_managers).await? {
                manager_users.insert(u.id.to_string(), u);
            }
        }

        // 4. Who holds the emails involved.
        let mut keys: Vec<String> = Vec::new();
        for id in &ids {
            let Some(u) = users.get(id) else { continue };
            let key = plan::member_email(u).to_lowercase();
            let member_key = links
                .get(id)
                .and_then(|l| members.get(&l.member_id))
                .map(Member::email_key);
            if member_key.as_ref() != Some(&key) {
                keys.push(key);
            }
        }
        for m in &managers {
            if links.contains_key(m) {
                continue;
            }
            if let Some(u) = users.get(m).or_else(|| manager_users.get(m))
                && u.user.active
            {
                keys.push(plan::member_email(u).to_lowercase());
            }
        }
        let owners = if keys.is_empty() {
            HashMap::new()
        } else {
            self.email_owners(&keys).await?
        };
        self.load_members(owners.values().cloned().collect(), &mut members)
            .await?;

        // 5. Manager references.
        let mut manager_refs: HashMap<String, ManagerRef> = HashMap::new();
        for m in &managers {
            let r = if let Some(l) = links.get(m) {
                ManagerRef::Member(l.member_id.clone())
            } else {
                match users.get(m).or_else(|| manager_users.get(m)) {
                    Some(u) if u.user.active => {
                        let email = plan::member_email(u);
                        let owner = owners
                            .get(&email.to_lowercase())
                            .and_then(|id| members.get(id));
                        match plan::target(&email, owner, self.link_by_email) {
                            Target::Create => ManagerRef::Member(plan::provisioned_id(m)),
                            Target::Link(o, _) => ManagerRef::Member(o.id.clone()),
                            Target::Refuse(_) => ManagerRef::Pending(m.clone()),
                        }
                    }
                    _ => ManagerRef::Pending(m.clone()),
                }
            };
            manager_refs.insert(m.clone(), r);
        }

        // 6. Group names, for users whose member may change.
        let groups: HashMap<String, Vec<String>> = if self.mapping.has_groups() {
            let need: Vec<ResourceId> = ids
                .iter()
                .filter(|id| {
                    users
                        .get(*id)
                        .is_some_and(|u| u.user.active || links.contains_key(*id))
                })
                .filter_map(|id| ResourceId::parse(id))
                .collect();
            self.group_names_of(&need).await?
        } else {
            HashMap::new()
        };

        // 7. Plan, in id order, one user at a time.
        let now = now();
        let mut claimed: HashMap<String, String> = HashMap::new();
        let mut planned: Vec<Planned> = Vec::with_capacity(items.len());
        for (id, dirty) in items {
            let user = users.get(&id);
            let desired: Option<Desired> = user.map(|u| {
                let manager = manager_of(u)
                    .and_then(|m| manager_refs.get(&m).cloned())
                    .unwrap_or(ManagerRef::None);
                plan::desired(
                    u,
                    &self.mapping,
                    groups.get(&id).map(Vec::as_slice),
                    &manager,
                )
            });
            let link = links.get(&id);
            let member = link.and_then(|l| members.get(&l.member_id));
            let key = desired.as_ref().map(Desired::email_key);
            let email_owner = key
                .as_ref()
                .and_then(|k| owners.get(k))
                .and_then(|mid| members.get(mid))
                .filter(|o| member.is_none_or(|m| m.id != o.id));
            let email_taken_in_batch = key
                .as_ref()
                .and_then(|k| claimed.get(k))
                .is_some_and(|by| *by != id);
            let p = plan::plan(&Inputs {
                user_id: &id,
                user,
                desired: desired.as_ref(),
                link,
                member,
                email_owner,
                email_taken_in_batch,
                link_by_email: self.link_by_email,
                now: &now,
                run_id: &self.cp.run_id,
            });
            if let (Plan::Write { .. }, Some(k)) = (&p, key) {
                claimed.insert(k, id.clone());
            }
            planned.push(Planned {
                user_version: user.map(|u| u.meta.version),
                user_id: id,
                dirty,
                plan: p,
            });
        }

        // 8. Write (or, in a dry run, pretend to).
        self.apply(planned).await
    }

    async fn apply(&mut self, planned: Vec<Planned>) -> Result<(), SyncError> {
        let tenant = self.tenant;
        let results: Vec<Result<(), StoreError>> = if self.dry_run {
            planned
                .iter()
                .map(|p| {
                    if let Plan::Write { write, .. } = &p.plan {
                        self.overlay.apply(write);
                    }
                    Ok(())
                })
                .collect()
        } else {
            let members = self.e.members.clone();
            stream::iter(planned.iter())
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
        };
        let mut first_error = None;
        let mut to_clear = Vec::new();
        for (p, result) in planned.into_iter().zip(results) {
            let failure = match result {
                Ok(()) => None,
                Err(StoreError::Conflict(Unique::Email)) => Some(
                    "the email was taken by another member during the sync; retried next sync"
                        .to_owned(),
                ),
                Err(StoreError::VersionMismatch | StoreError::NotFound) => {
                    Some("the member changed during the sync; retried next sync".to_owned())
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            let ok = match (p.plan, failure) {
                (Plan::Write { write, .. }, Some(why)) => {
                    self.record_failure(&p.user_id, Some(write.member.id.clone()), why);
                    false
                }
                (Plan::Fail(why), _) => {
                    self.record_failure(&p.user_id, None, why);
                    false
                }
                (Plan::Skip, _) => true,
                (Plan::Unchanged, _) => {
                    self.record(&p.user_id, Outcome::Unchanged, None);
                    true
                }
                (
                    Plan::Write {
                        outcome,
                        write,
                        change,
                    },
                    None,
                ) => {
                    if matches!(write.link, Some(LinkWrite::Add { .. })) {
                        self.cp.links_made = true;
                    }
                    self.record(&p.user_id, outcome, change.map(|c| *c));
                    true
                }
            };
            // The change is synced: clear the user's dirty item, unless the
            // user changed again after we read it.
            if ok
                && let Some(d) = p.dirty
                && p.user_version.is_none_or(|v| d.version <= v)
            {
                to_clear.push(d);
            }
        }
        if !self.dry_run && !to_clear.is_empty() {
            let users = self.e.users.clone();
            stream::iter(to_clear)
                .map(|d| {
                    let users = users.clone();
                    async move { users.clear_dirty(tenant, &d).await }
                })
                .buffer_unordered(self.e.parallelism)
                .try_collect::<Vec<()>>()
                .await?;
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    // --- Tally -------------------------------------------------------------------

    fn count(&mut self, outcome: Outcome, delta: i64) {
        let c = &mut self.cp.counts;
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

    fn push_change(&mut self, change: Option<MemberChangePreview>) -> Option<usize> {
        let change = change?;
        if !self.dry_run && self.changes.len() >= MAX_CHANGES {
            self.truncated = true;
            return None;
        }
        self.changes.push(change);
        Some(self.changes.len() - 1)
    }

    fn record(&mut self, user_id: &str, outcome: Outcome, change: Option<MemberChangePreview>) {
        match self.seen.get(user_id).copied() {
            None => {
                self.count(outcome, 1);
                let idx = self.push_change(change);
                self.seen.insert(
                    user_id.to_owned(),
                    Seen {
                        outcome,
                        change: idx,
                    },
                );
            }
            Some(_) if outcome == Outcome::Unchanged => {}
            Some(prev) if matches!(prev.outcome, Outcome::Unchanged | Outcome::Failed) => {
                self.count(prev.outcome, -1);
                self.count(outcome, 1);
                let idx = self.push_change(change);
                self.seen.insert(
                    user_id.to_owned(),
                    Seen {
                        outcome,
                        change: idx,
                    },
                );
            }
            Some(prev) => {
                // Already changed in this run: fold the new change into it.
                if let (Some(i), Some(c)) = (prev.change, change)
                    && let Some(first) = self.changes.get_mut(i)
                {
                    first.email = c.email;
                    first.display_name = c.display_name;
                    for (k, v) in c.fields {
                        first
                            .fields
                            .entry(k)
                            .and_modify(|f| f.after = v.after.clone())
                            .or_insert(v);
                    }
                    for (k, v) in c.properties {
                        first
                            .properties
                            .entry(k)
                            .and_modify(|f| f.after = v.after.clone())
                            .or_insert(v);
                    }
                    first.fields.retain(|_, v| v.before != v.after);
                    first.properties.retain(|_, v| v.before != v.after);
                }
            }
        }
    }

    fn record_failure(&mut self, user_id: &str, member_id: Option<String>, message: String) {
        match self.seen.get(user_id).copied() {
            // Already reported in this run.
            Some(prev) if prev.outcome == Outcome::Failed => return,
            // Synced earlier in this run, failed now (a later pass): listed,
            // counted once.
            Some(prev) if prev.outcome != Outcome::Unchanged => {}
            Some(prev) => {
                self.count(prev.outcome, -1);
                self.count(Outcome::Failed, 1);
                self.seen.insert(
                    user_id.to_owned(),
                    Seen {
                        outcome: Outcome::Failed,
                        change: None,
                    },
                );
            }
            None => {
                self.count(Outcome::Failed, 1);
                self.seen.insert(
                    user_id.to_owned(),
                    Seen {
                        outcome: Outcome::Failed,
                        change: None,
                    },
                );
            }
        }
        self.issue(Some(user_id.to_owned()), member_id, message);
    }

    fn issue(&mut self, scim_user_id: Option<String>, member_id: Option<String>, message: String) {
        if self.cp.errors.len() < MAX_ERRORS {
            self.cp.errors.push(SyncIssue {
                scim_user_id,
                member_id,
                message,
            });
        }
    }

    /// The report, and the copy to store (within DynamoDB's item size).
    fn report(&self, complete: bool) -> (SyncReport, StoredReport) {
        let finished = now();
        let report = SyncReport {
            run_id: self.cp.run_id.clone(),
            tenant: self.tenant.to_string(),
            started: self.cp.started.clone(),
            finished: finished.clone(),
            dry_run: self.dry_run,
            full: self.cp.full,
            complete,
            counts: self.cp.counts.clone(),
            changes: self.changes.clone(),
            truncated: self.truncated,
            errors: self.cp.errors.clone(),
        };
        let mut stored = report.clone();
        while stored.changes.len() > 1
            && serde_json::to_vec(&stored).map_or(0, |v| v.len()) > MAX_STORED_REPORT_BYTES
        {
            stored.changes.truncate(stored.changes.len() / 2);
            stored.truncated = true;
        }
        let value = serde_json::to_value(&stored).unwrap_or(serde_json::Value::Null);
        let key = format!("{finished}#{}#{}", self.cp.run_id, self.owner);
        (report, StoredReport { key, report: value })
    }
}
