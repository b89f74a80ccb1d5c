//! One batch's reads: the users, their links and members, their managers,
//! who holds the emails involved, their group names; then the plan and the
//! writes. Changes when what a batch must read changes (each read is an
//! AWS request the cost tests count).

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt, stream};
use scim_proto::ids::ResourceId;
use scim_store::StoreError;
use scim_store::users::StoredUser;

use super::decide::Batch;
use super::work::{Known, Work};
use super::{Run, now};
use crate::error::SyncError;
use crate::plan::{Outcome, Plan};

impl Run<'_> {
    /// Syncs the users of `work`: reads, plans, writes.
    pub(super) async fn process(&mut self, work: Vec<Work>) -> Result<(), SyncError> {
        let mut batch = self.read_users(work).await?;
        self.read_links(&mut batch).await?;
        self.read_email_owners(&mut batch).await?;
        if self.mapping.has_groups() {
            batch.groups = self.group_names_of(&batch.needing_groups()).await?;
        }
        let mut planned = batch.plan(&self.mapping, self.link_by_email, &now(), &self.cp.run_id);
        if self.only_deactivations {
            for p in &mut planned {
                let deactivates = matches!(
                    p.plan,
                    Plan::Write {
                        outcome: Outcome::Deactivated,
                        ..
                    }
                );
                if !deactivates {
                    p.plan = Plan::Skip;
                }
                // The next sync clears it, seeing the deactivation done.
                p.dirty = None;
            }
        }
        self.apply(planned).await
    }

    /// The users not known yet, read in one go.
    async fn read_users(&self, work: Vec<Work>) -> Result<Batch, SyncError> {
        let unknown: Vec<ResourceId> = work
            .iter()
            .filter(|w| matches!(w.known, Known::Unknown))
            .map(|w| w.id.clone())
            .collect();
        let mut users: HashMap<String, StoredUser> = HashMap::new();
        if !unknown.is_empty() {
            for u in self.e.users.get_many(self.tenant, &unknown).await? {
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
        Ok(Batch::new(items, users, self.mapping.has_manager()))
    }

    /// Links of the users and managers, linked members, and the users of
    /// managers without a member.
    async fn read_links(&self, batch: &mut Batch) -> Result<(), SyncError> {
        batch.links = self.links(&batch.link_ids()).await?;
        self.load_members(batch.linked_members(), &mut batch.members)
            .await?;
        let unlinked = batch.unlinked_managers();
        if !unlinked.is_empty() {
            for u in self.e.users.get_many(self.tenant, &unlinked).await? {
                batch.manager_users.insert(u.id.to_string(), u);
            }
        }
        Ok(())
    }

    /// Who holds the emails involved, and those members.
    async fn read_email_owners(&self, batch: &mut Batch) -> Result<(), SyncError> {
        let keys = batch.email_keys();
        if !keys.is_empty() {
            batch.owners = self.email_owners(&keys).await?;
        }
        let owners: Vec<String> = batch.owners.values().cloned().collect();
        self.load_members(owners, &mut batch.members).await
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
}
