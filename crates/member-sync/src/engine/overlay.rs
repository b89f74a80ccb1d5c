//! The dry-run overlay: a dry run's writes kept in memory, and the reads
//! that see them, so a preview reports what the real run would do. Changes
//! when the run reads or writes a new kind of item.

use std::collections::{BTreeMap, HashMap, HashSet};

use scim_store::members::{LinkWrite, ManagerWait, Member, MemberLink, MemberWrite};

use super::Run;
use crate::error::SyncError;

/// The key waits are paged by.
pub(super) fn wait_key(w: &ManagerWait) -> String {
    format!("{}#{}", w.manager, w.report)
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
pub(super) struct Overlay {
    members: HashMap<String, Member>,
    /// `None`: removed.
    links: HashMap<String, Option<MemberLink>>,
    emails: HashMap<String, Option<String>>,
    /// `(manager, report)`: present or removed.
    waits: BTreeMap<(String, String), bool>,
}

impl Overlay {
    /// Records `w` as if written.
    pub(super) fn apply(&mut self, w: &MemberWrite) {
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

    /// Whether this run removed the user's link.
    pub(super) fn removed_link(&self, user_id: &str) -> bool {
        matches!(self.links.get(user_id), Some(None))
    }

    /// The stored waits (all of them, by key) with this run's applied.
    fn waits_over(&self, mut all: BTreeMap<String, ManagerWait>) -> BTreeMap<String, ManagerWait> {
        for ((manager, report), present) in &self.waits {
            let w = ManagerWait {
                manager: manager.clone(),
                report: report.clone(),
            };
            if *present {
                all.insert(wait_key(&w), w);
            } else {
                all.remove(&wait_key(&w));
            }
        }
        all
    }
}

/// The page of at most `n` waits after `cursor`, and whether more follow.
fn page_after(
    all: BTreeMap<String, ManagerWait>,
    cursor: Option<&String>,
    n: usize,
) -> (Vec<ManagerWait>, bool) {
    let page: Vec<ManagerWait> = all
        .into_iter()
        .filter(|(k, _)| cursor.is_none_or(|c| k > c))
        .map(|(_, w)| w)
        .take(n + 1)
        .collect();
    let more = page.len() > n;
    (page.into_iter().take(n).collect(), more)
}

impl Run<'_> {
    /// Links of `user_ids`.
    pub(super) async fn links(
        &self,
        user_ids: &[String],
    ) -> Result<HashMap<String, MemberLink>, SyncError> {
        let links = self.e.members.links(self.tenant, user_ids).await?;
        Ok(overlaid(links, user_ids, &self.overlay.links))
    }

    /// Adds the members `ids` not yet in `into`.
    pub(super) async fn load_members(
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

    /// The member holding each of the email `keys`.
    pub(super) async fn email_owners(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, String>, SyncError> {
        let owners = self.e.members.email_owners(self.tenant, keys).await?;
        Ok(overlaid(owners, keys, &self.overlay.emails))
    }

    /// One page of manager waits after the cursor, and whether more follow
    /// (a dry run reads them whole and adds its own).
    pub(super) async fn waits_page(&self) -> Result<(Vec<ManagerWait>, bool), SyncError> {
        let n = self.e.batch_size;
        if !self.dry_run {
            let (waits, next) = self
                .e
                .members
                .waits(self.tenant, self.cp.cursor.as_deref(), n)
                .await?;
            return Ok((waits, next.is_some()));
        }
        let mut all: BTreeMap<String, ManagerWait> = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let (waits, next) = self
                .e
                .members
                .waits(self.tenant, after.as_deref(), 1000)
                .await?;
            all.extend(waits.into_iter().map(|w| (wait_key(&w), w)));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let all = self.overlay.waits_over(all);
        Ok(page_after(all, self.cp.cursor.as_ref(), n))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fixtures::{link, provisioned};

    fn wait(manager: &str, report: &str) -> ManagerWait {
        ManagerWait {
            manager: manager.into(),
            report: report.into(),
        }
    }

    fn create(user_id: &str) -> MemberWrite {
        let member = provisioned(user_id, json!({}));
        MemberWrite {
            claim_email: Some(member.email_key()),
            link: Some(LinkWrite::Add {
                link: link(user_id, &member.id),
                previous_managed_by: None,
            }),
            member,
            expected_version: None,
            release_email: None,
            wait_add: None,
            wait_remove: None,
            event: None,
        }
    }

    #[test]
    fn a_dry_run_sees_the_member_link_and_email_it_created() {
        let mut o = Overlay::default();
        o.apply(&create("u1"));
        let keys = ["u1".to_owned()];
        let links = overlaid(HashMap::new(), &keys, &o.links);
        assert_eq!(links["u1"].member_id, "m-u1");
        let owners = overlaid(HashMap::new(), &["u1@x".to_owned()], &o.emails);
        assert_eq!(owners["u1@x"], "m-u1");
        assert!(o.members.contains_key("m-u1"));
    }

    #[test]
    fn a_link_removed_by_a_dry_run_is_gone_from_its_later_reads() {
        let mut o = Overlay::default();
        let mut w = create("u1");
        w.link = Some(LinkWrite::Remove {
            user_id: "u1".into(),
        });
        o.apply(&w);
        assert!(o.removed_link("u1"));
        assert!(!o.removed_link("u2"));
        let stored: HashMap<String, MemberLink> = [
            ("u1".to_owned(), link("u1", "m-u1")),
            ("u2".to_owned(), link("u2", "m-u2")),
        ]
        .into();
        let keys = ["u1".to_owned(), "u2".to_owned()];
        let seen = overlaid(stored, &keys, &o.links);
        assert_eq!(seen.keys().collect::<Vec<_>>(), ["u2"]);
    }

    #[test]
    fn a_moved_email_is_released_and_claimed() {
        let mut o = Overlay::default();
        let mut w = create("u1");
        w.claim_email = Some("new@x".into());
        w.release_email = Some("old@x".into());
        o.apply(&w);
        let stored: HashMap<String, String> = [("old@x".to_owned(), "m-u1".to_owned())].into();
        let keys = ["old@x".to_owned(), "new@x".to_owned()];
        let seen = overlaid(stored, &keys, &o.emails);
        assert_eq!(seen.get("old@x"), None);
        assert_eq!(seen["new@x"], "m-u1");
    }

    #[test]
    fn only_the_keys_read_are_overlaid() {
        let mut o = Overlay::default();
        o.apply(&create("u1"));
        let seen = overlaid(HashMap::new(), &["u2".to_owned()], &o.links);
        assert!(seen.is_empty());
    }

    #[test]
    fn a_dry_run_pages_the_stored_waits_with_its_own_added_and_removed() {
        let mut o = Overlay::default();
        let mut w = create("u1");
        w.wait_add = Some(wait("b", "u1"));
        w.wait_remove = Some(wait("a", "u9"));
        o.apply(&w);
        let stored: BTreeMap<String, ManagerWait> = [wait("a", "u9"), wait("c", "u3")]
            .into_iter()
            .map(|w| (wait_key(&w), w))
            .collect();
        let all = o.waits_over(stored);
        let (page, more) = page_after(all.clone(), None, 1);
        assert_eq!((page, more), (vec![wait("b", "u1")], true));
        let (page, more) = page_after(all, Some(&"b#u1".to_owned()), 1);
        assert_eq!((page, more), (vec![wait("c", "u3")], false));
    }
}
