//! The batch's decisions, apart from its reads: which links, members and
//! emails to look up, who each manager's member is, and the plan of every
//! user of the batch (one user at a time, see [`crate::plan`]). Pure, so
//! the sync's rules are tested without a store. Changes when a rule that
//! spans several users of a batch changes.

use std::collections::{HashMap, HashSet};

use scim_proto::ids::ResourceId;
use scim_store::members::{Member, MemberLink};
use scim_store::users::{DirtyUser, StoredUser};

use crate::mapping::Compiled;
use crate::plan::{self, Desired, Inputs, ManagerRef, Plan, Target};

/// Everything read for one batch.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// The batch's users in id order, each with its dirty item.
    pub items: Vec<(String, Option<DirtyUser>)>,
    /// The batch's users that exist.
    pub users: HashMap<String, StoredUser>,
    /// The distinct managers of the users (when `manager` is mapped).
    pub managers: Vec<String>,
    /// Links of the users and of their managers.
    pub links: HashMap<String, MemberLink>,
    /// Linked members and the members holding the emails involved.
    pub members: HashMap<String, Member>,
    /// Managers outside the batch that have no member (yet).
    pub manager_users: HashMap<String, StoredUser>,
    /// Email key to the member holding it.
    pub owners: HashMap<String, String>,
    /// Group names per user (when `groups` is mapped).
    pub groups: HashMap<String, Vec<String>>,
}

/// One planned user, ready to write.
#[derive(Debug)]
pub(super) struct Planned {
    pub user_id: String,
    /// The version of the user the plan was made from.
    pub user_version: Option<u64>,
    pub dirty: Option<DirtyUser>,
    pub plan: Plan,
}

impl Batch {
    /// A batch of `items` whose existing `users` are read; `has_manager`:
    /// the mapping uses the manager.
    pub(super) fn new(
        items: Vec<(String, Option<DirtyUser>)>,
        users: HashMap<String, StoredUser>,
        has_manager: bool,
    ) -> Self {
        let managers = items
            .iter()
            .filter_map(|(id, _)| users.get(id))
            .filter(|_| has_manager)
            .filter_map(|u| u.user.manager.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        Self {
            items,
            users,
            managers,
            ..Self::default()
        }
    }

    fn ids(&self) -> impl Iterator<Item = &String> {
        self.items.iter().map(|(id, _)| id)
    }

    /// The links to read: the users' and their managers'.
    pub(super) fn link_ids(&self) -> Vec<String> {
        self.ids().chain(&self.managers).cloned().collect()
    }

    /// The members linked to the batch's users.
    pub(super) fn linked_members(&self) -> Vec<String> {
        self.ids()
            .filter_map(|id| self.links.get(id).map(|l| l.member_id.clone()))
            .collect()
    }

    /// Managers with no link that are not in the batch: their users are
    /// read to tell what member they will get.
    pub(super) fn unlinked_managers(&self) -> Vec<ResourceId> {
        self.managers
            .iter()
            .filter(|m| !self.links.contains_key(*m) && !self.users.contains_key(*m))
            .filter_map(|m| ResourceId::parse(m))
            .collect()
    }

    fn user_or_manager(&self, id: &str) -> Option<&StoredUser> {
        self.users.get(id).or_else(|| self.manager_users.get(id))
    }

    /// The emails whose holder matters: each user's, unless its member
    /// already has it, and each active unlinked manager's.
    pub(super) fn email_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for id in self.ids() {
            let Some(u) = self.users.get(id) else {
                continue;
            };
            let key = plan::member_email(u).to_lowercase();
            let member_key = self
                .links
                .get(id)
                .and_then(|l| self.members.get(&l.member_id))
                .map(Member::email_key);
            if member_key.as_ref() != Some(&key) {
                keys.push(key);
            }
        }
        for m in &self.managers {
            if self.links.contains_key(m) {
                continue;
            }
            if let Some(u) = self.user_or_manager(m)
                && u.user.active
            {
                keys.push(plan::member_email(u).to_lowercase());
            }
        }
        keys
    }

    /// The users whose group names are needed: those whose member may
    /// change (active, or linked).
    pub(super) fn needing_groups(&self) -> Vec<ResourceId> {
        self.ids()
            .filter(|id| {
                self.users
                    .get(*id)
                    .is_some_and(|u| u.user.active || self.links.contains_key(*id))
            })
            .filter_map(|id| ResourceId::parse(id))
            .collect()
    }

    /// Each manager's member: its linked member, else the member it gets in
    /// this sync (created or linked by email), else pending.
    pub(super) fn manager_refs(&self, link_by_email: bool) -> HashMap<String, ManagerRef> {
        let mut refs = HashMap::new();
        for m in &self.managers {
            let r = if let Some(l) = self.links.get(m) {
                ManagerRef::Member(l.member_id.clone())
            } else {
                match self.user_or_manager(m) {
                    Some(u) if u.user.active => {
                        let email = plan::member_email(u);
                        let owner = self
                            .owners
                            .get(&email.to_lowercase())
                            .and_then(|id| self.members.get(id));
                        match plan::target(&email, owner, link_by_email) {
                            Target::Create => ManagerRef::Member(plan::provisioned_id(m)),
                            Target::Link(o, _) => ManagerRef::Member(o.id.clone()),
                            Target::Refuse(_) => ManagerRef::Pending(m.clone()),
                        }
                    }
                    _ => ManagerRef::Pending(m.clone()),
                }
            };
            refs.insert(m.clone(), r);
        }
        refs
    }

    /// Plans every user in id order; an email claimed by an earlier user of
    /// the batch is not given to a later one.
    pub(super) fn plan(
        self,
        mapping: &Compiled,
        link_by_email: bool,
        now: &str,
        run_id: &str,
    ) -> Vec<Planned> {
        let refs = self.manager_refs(link_by_email);
        let mut claimed: HashMap<String, String> = HashMap::new();
        let mut planned = Vec::with_capacity(self.items.len());
        for (id, dirty) in &self.items {
            let user = self.users.get(id);
            let desired: Option<Desired> = user.map(|u| {
                let manager = u
                    .user
                    .manager
                    .as_ref()
                    .and_then(|m| refs.get(m).cloned())
                    .unwrap_or(ManagerRef::None);
                let groups = self.groups.get(id).map(Vec::as_slice);
                plan::desired(u, mapping, groups, &manager)
            });
            let link = self.links.get(id);
            let member = link.and_then(|l| self.members.get(&l.member_id));
            let key = desired.as_ref().map(Desired::email_key);
            let email_owner = key
                .as_ref()
                .and_then(|k| self.owners.get(k))
                .and_then(|mid| self.members.get(mid))
                .filter(|o| member.is_none_or(|m| m.id != o.id));
            let email_taken_in_batch = key
                .as_ref()
                .and_then(|k| claimed.get(k))
                .is_some_and(|by| by != id);
            let p = plan::plan(&Inputs {
                user_id: id,
                user,
                desired: desired.as_ref(),
                link,
                member,
                email_owner,
                email_taken_in_batch,
                link_by_email,
                now,
                run_id,
            });
            if let (Plan::Write { .. }, Some(k)) = (&p, key) {
                claimed.insert(k, id.clone());
            }
            planned.push(Planned {
                user_version: user.map(|u| u.meta.version),
                user_id: id.clone(),
                dirty: dirty.clone(),
                plan: p,
            });
        }
        planned
    }
}

#[cfg(test)]
mod tests {
    use scim_store::members::{LinkKind, LinkWrite, ManagedBy, MemberStatus, MemberWrite};
    use serde_json::{Value, json};

    use super::*;
    use crate::fixtures::{
        ENTERPRISE, app_member, link, managed, mapping, mapping_with_groups, provisioned, titled,
        user,
    };
    use crate::plan::Outcome;
    use crate::report::{ChangeAction, MemberChangePreview};

    /// A batch of `users` (read, not deleted), `manager` mapped.
    fn batch(users: Vec<StoredUser>) -> Batch {
        let items = users.iter().map(|u| (u.id.to_string(), None)).collect();
        let users = users.into_iter().map(|u| (u.id.to_string(), u)).collect();
        Batch::new(items, users, true)
    }

    /// Links `user_id` to `member` in the batch.
    fn linked(mut b: Batch, user_id: &str, member: Member) -> Batch {
        b.links.insert(user_id.into(), link(user_id, &member.id));
        b.members.insert(member.id.clone(), member);
        b
    }

    /// `member` holds its email.
    fn holding(mut b: Batch, member: Member) -> Batch {
        b.owners.insert(member.email_key(), member.id.clone());
        b.members.insert(member.id.clone(), member);
        b
    }

    fn plans(b: Batch, link_by_email: bool) -> Vec<Plan> {
        b.plan(&mapping(), link_by_email, "t1", "r1")
            .into_iter()
            .map(|p| p.plan)
            .collect()
    }

    fn only(b: Batch, link_by_email: bool) -> Plan {
        let mut plans = plans(b, link_by_email);
        assert_eq!(plans.len(), 1);
        plans.remove(0)
    }

    fn written(p: Plan) -> (Outcome, MemberWrite, Option<MemberChangePreview>) {
        match p {
            Plan::Write {
                outcome,
                write,
                change,
            } => (outcome, *write, change.map(|c| *c)),
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn a_new_active_user_gets_a_created_member_linked_to_it() {
        let (outcome, write, change) = written(only(batch(vec![titled("u1", "Chef")]), false));
        assert_eq!(outcome, Outcome::Created);
        assert_eq!(write.member.id, "m-u1");
        assert_eq!(write.member.scim_user_id.as_deref(), Some("u1"));
        assert_eq!(write.member.properties["jobTitle"], json!("Chef"));
        assert!(matches!(
            write.link,
            Some(LinkWrite::Add { ref link, .. }) if link.how == LinkKind::Created
        ));
        assert_eq!(change.unwrap().action, ChangeAction::Create);
    }

    #[test]
    fn a_changed_attribute_updates_only_its_property() {
        let member = provisioned("u1", json!({"jobTitle": "Cook", "department": "Food"}));
        let u = user(
            "u1",
            json!({"userName": "u1@x", "title": "Chef",
                   ENTERPRISE: {"department": "Food"}}),
        );
        let b = linked(batch(vec![u]), "u1", member);
        let (outcome, write, change) = written(only(b, false));
        assert_eq!(outcome, Outcome::Updated);
        assert_eq!(write.expected_version, Some(1));
        assert_eq!(write.link, None);
        let change = change.unwrap();
        assert_eq!(change.action, ChangeAction::Update);
        assert!(change.fields.is_empty());
        assert_eq!(change.properties.len(), 1);
        assert_eq!(change.properties["jobTitle"].before, json!("Cook"));
        assert_eq!(change.properties["jobTitle"].after, json!("Chef"));
    }

    #[test]
    fn a_removed_attribute_removes_its_property() {
        let member = provisioned("u1", json!({"jobTitle": "Cook"}));
        let b = linked(
            batch(vec![user("u1", json!({"userName": "u1@x"}))]),
            "u1",
            member,
        );
        let (outcome, write, change) = written(only(b, false));
        assert_eq!(outcome, Outcome::Updated);
        assert!(!write.member.properties.contains_key("jobTitle"));
        assert_eq!(change.unwrap().properties["jobTitle"].after, Value::Null);
    }

    #[test]
    fn a_deactivated_user_deactivates_its_linked_member() {
        let member = provisioned("u1", json!({}));
        let u = user("u1", json!({"userName": "u1@x", "active": false}));
        let (outcome, write, change) = written(only(linked(batch(vec![u]), "u1", member), false));
        assert_eq!(outcome, Outcome::Deactivated);
        assert_eq!(write.member.status, MemberStatus::Deactivated);
        // Still linked: the user may come back.
        assert_eq!(write.member.scim_user_id.as_deref(), Some("u1"));
        assert_eq!(change.unwrap().action, ChangeAction::Deactivate);
    }

    #[test]
    fn a_reactivated_user_reactivates_its_member() {
        let mut member = provisioned("u1", json!({}));
        member.status = MemberStatus::Deactivated;
        let u = user("u1", json!({"userName": "u1@x", "active": true}));
        let (outcome, write, change) = written(only(linked(batch(vec![u]), "u1", member), false));
        assert_eq!(outcome, Outcome::Reactivated);
        assert_eq!(write.member.status, MemberStatus::Active);
        assert_eq!(change.unwrap().action, ChangeAction::Reactivate);
    }

    #[test]
    fn an_up_to_date_member_is_left_unchanged() {
        let member = provisioned("u1", json!({"jobTitle": "Chef"}));
        let b = linked(batch(vec![titled("u1", "Chef")]), "u1", member);
        assert_eq!(only(b, false), Plan::Unchanged);
    }

    #[test]
    fn an_app_member_with_the_same_email_is_linked_not_duplicated() {
        let b = holding(batch(vec![titled("u1", "Chef")]), app_member("a-7", "U1@x"));
        let (outcome, write, change) = written(only(b, true));
        assert_eq!(outcome, Outcome::Linked);
        assert_eq!(write.member.id, "a-7");
        assert_eq!(write.member.managed_by, ManagedBy::Provisioning);
        assert_eq!(write.claim_email, None);
        let Some(LinkWrite::Add {
            link,
            previous_managed_by,
        }) = write.link
        else {
            panic!("expected a link");
        };
        assert_eq!(
            (link.user_id.as_str(), link.member_id.as_str()),
            ("u1", "a-7")
        );
        assert_eq!(link.how, LinkKind::Email);
        assert_eq!(previous_managed_by, Some(ManagedBy::App));
        assert_eq!(change.unwrap().action, ChangeAction::Link);
    }

    #[test]
    fn an_app_member_with_the_same_email_blocks_the_user_when_linking_by_email_is_off() {
        let b = holding(batch(vec![titled("u1", "Chef")]), app_member("a-7", "u1@x"));
        assert!(matches!(only(b, false), Plan::Fail(why) if why.contains("a-7")));
    }

    #[test]
    fn an_app_managed_member_linked_to_a_user_is_left_untouched() {
        let b = linked(
            batch(vec![titled("u1", "Chef")]),
            "u1",
            app_member("a-7", "u1@x"),
        );
        assert!(matches!(only(b, true), Plan::Fail(why) if why.contains("managed by the app")));
    }

    #[test]
    fn a_deleted_user_linked_to_an_app_member_leaves_it_alone() {
        let mut b = linked(Batch::default(), "u1", app_member("a-7", "u1@x"));
        b.items.push(("u1".into(), None));
        assert_eq!(only(b, true), Plan::Skip);
    }

    #[test]
    fn a_deleted_users_member_is_deactivated_and_unlinked() {
        let mut b = linked(Batch::default(), "u1", provisioned("u1", json!({})));
        b.items.push(("u1".into(), None));
        let (outcome, write, _) = written(only(b, false));
        assert_eq!(outcome, Outcome::Deactivated);
        assert_eq!(write.member.scim_user_id, None);
        assert!(matches!(write.link, Some(LinkWrite::Remove { ref user_id }) if user_id == "u1"));
    }

    #[test]
    fn a_deleted_user_that_never_had_a_member_is_skipped() {
        let mut b = Batch::default();
        b.items.push(("u1".into(), None));
        assert_eq!(only(b, false), Plan::Skip);
    }

    #[test]
    fn a_manager_with_a_member_is_referenced_by_that_member_id() {
        let b = linked(
            batch(vec![managed("u1", "boss")]),
            "boss",
            app_member("a-9", "b@x"),
        );
        let (_, write, _) = written(only(b, false));
        assert_eq!(write.member.properties["manager"], json!("a-9"));
        assert_eq!(write.member.pending_manager, None);
        assert_eq!(write.wait_add, None);
    }

    #[test]
    fn a_manager_created_in_the_same_batch_is_referenced_by_the_member_it_gets() {
        let b = batch(vec![titled("boss", "CEO"), managed("u1", "boss")]);
        let plans = plans(b, false);
        let (_, boss, _) = written(plans[0].clone());
        let (_, report, _) = written(plans[1].clone());
        assert_eq!(boss.member.id, "m-boss");
        assert_eq!(report.member.properties["manager"], json!("m-boss"));
    }

    #[test]
    fn a_manager_linked_by_email_in_this_sync_is_referenced_by_the_app_member() {
        let mut b = batch(vec![managed("u1", "boss")]);
        b.manager_users
            .insert("boss".into(), user("boss", json!({"userName": "boss@x"})));
        let b = holding(b, app_member("a-9", "boss@x"));
        let (_, write, _) = written(only(b, true));
        assert_eq!(write.member.properties["manager"], json!("a-9"));
    }

    #[test]
    fn a_manager_without_a_member_leaves_the_report_waiting_for_it() {
        let mut b = batch(vec![managed("u1", "boss")]);
        let inactive = user("boss", json!({"userName": "boss@x", "active": false}));
        b.manager_users.insert("boss".into(), inactive);
        let (outcome, write, _) = written(only(b, false));
        assert_eq!(outcome, Outcome::Created);
        assert!(!write.member.properties.contains_key("manager"));
        assert_eq!(write.member.pending_manager.as_deref(), Some("boss"));
        let wait = write.wait_add.unwrap();
        assert_eq!(
            (wait.manager.as_str(), wait.report.as_str()),
            ("boss", "u1")
        );
    }

    #[test]
    fn an_unknown_manager_is_pending() {
        let b = batch(vec![managed("u1", "ghost")]);
        assert_eq!(
            b.manager_refs(false)["ghost"],
            ManagerRef::Pending("ghost".into())
        );
    }

    #[test]
    fn managers_are_ignored_when_the_mapping_does_not_use_them() {
        let u = managed("u1", "boss");
        let b = Batch::new(vec![("u1".into(), None)], [("u1".into(), u)].into(), false);
        assert!(b.managers.is_empty());
        assert!(b.manager_refs(false).is_empty());
    }

    #[test]
    fn the_groups_property_lists_the_users_group_names_sorted_and_once() {
        let mut b = batch(vec![titled("u1", "Chef")]);
        b.groups
            .insert("u1".into(), vec!["Ops".into(), "Dev".into(), "Ops".into()]);
        let plan = b
            .plan(&mapping_with_groups(), false, "t1", "r1")
            .remove(0)
            .plan;
        let (_, write, _) = written(plan);
        assert_eq!(write.member.properties["groups"], json!(["Dev", "Ops"]));
    }

    #[test]
    fn a_user_in_no_group_gets_an_empty_groups_property() {
        let b = batch(vec![titled("u1", "Chef")]);
        let plan = b
            .plan(&mapping_with_groups(), false, "t1", "r1")
            .remove(0)
            .plan;
        let (_, write, _) = written(plan);
        assert_eq!(write.member.properties["groups"], json!([]));
    }

    #[test]
    fn two_users_with_one_email_in_a_batch_do_not_both_get_it() {
        let a = user(
            "u1",
            json!({"userName": "u1@x", "emails": [{"value": "same@x", "primary": true}]}),
        );
        let b = user(
            "u2",
            json!({"userName": "u2@x", "emails": [{"value": "same@x", "primary": true}]}),
        );
        let plans = plans(batch(vec![a, b]), false);
        assert!(matches!(
            &plans[0],
            Plan::Write {
                outcome: Outcome::Created,
                ..
            }
        ));
        assert!(matches!(&plans[1], Plan::Fail(why) if why.contains("same@x")));
    }

    #[test]
    fn only_emails_the_members_do_not_already_hold_are_looked_up() {
        let b = linked(
            batch(vec![titled("u1", "Chef"), titled("u2", "Cook")]),
            "u1",
            provisioned("u1", json!({})),
        );
        assert_eq!(b.email_keys(), ["u2@x"]);
    }

    #[test]
    fn the_email_of_an_active_manager_without_a_member_is_looked_up() {
        let mut b = batch(vec![managed("u1", "boss"), managed("u2", "gone")]);
        b.manager_users
            .insert("boss".into(), user("boss", json!({"userName": "Boss@x"})));
        let mut keys = b.email_keys();
        keys.sort();
        assert_eq!(keys, ["boss@x", "u1@x", "u2@x"]);
    }

    #[test]
    fn only_managers_outside_the_batch_without_a_link_are_read() {
        let b = batch(vec![
            titled("boss", "CEO"),
            managed("u1", "boss"),
            managed("u2", "far"),
        ]);
        let b = linked(b, "far", app_member("a-1", "far@x"));
        assert!(b.unlinked_managers().is_empty());
        let b = batch(vec![managed("u1", "far")]);
        assert_eq!(b.unlinked_managers(), [ResourceId::parse("far").unwrap()]);
    }

    #[test]
    fn group_names_are_read_only_for_users_whose_member_may_change() {
        let inactive = user("u2", json!({"userName": "u2@x", "active": false}));
        let b = batch(vec![titled("u1", "Chef"), inactive]);
        assert_eq!(b.needing_groups(), [ResourceId::parse("u1").unwrap()]);
        let b = linked(b, "u2", provisioned("u2", json!({})));
        assert_eq!(b.needing_groups().len(), 2);
    }

    #[test]
    fn the_links_read_are_the_users_and_their_managers() {
        let b = batch(vec![managed("u1", "boss")]);
        assert_eq!(b.link_ids(), ["u1", "boss"]);
        let b = linked(b, "u1", provisioned("u1", json!({})));
        assert_eq!(b.linked_members(), ["m-u1"]);
    }
}
