//! What one SCIM user means for its member: pure functions from the user,
//! its link and the members involved to the one write that reconciles them.

use std::collections::BTreeMap;

use scim_proto::resource::render;
use scim_proto::schema::USER_RESOURCE;
use scim_store::members::{
    LinkKind, LinkWrite, ManagedBy, ManagerWait, Member, MemberLink, MemberStatus, MemberWrite,
};
use scim_store::users::StoredUser;
use serde_json::Value;

use crate::mapping::{Compiled, Source, evaluate};
use crate::report::{ChangeAction, MemberChangePreview, ValueChange};

/// What the member of an active (or inactive) SCIM user should look like.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Desired {
    pub email: String,
    pub display_name: String,
    pub active: bool,
    pub properties: BTreeMap<String, Value>,
    pub pending_manager: Option<String>,
}

impl Desired {
    pub fn email_key(&self) -> String {
        self.email.to_lowercase()
    }
}

/// The manager's member, as far as the sync can tell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ManagerRef {
    /// No manager, or `manager` is not mapped.
    None,
    /// The manager's member id (existing, or the one this sync gives it).
    Member(String),
    /// The manager's SCIM user has no member (yet).
    Pending(String),
}

/// Member email: the primary email, else the work email, else userName.
pub(crate) fn member_email(user: &StoredUser) -> String {
    let emails: Vec<&serde_json::Map<String, Value>> = user
        .user
        .doc
        .get("emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    let value = |e: &&serde_json::Map<String, Value>| {
        e.get("value")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let is_type = |e: &&serde_json::Map<String, Value>, t: &str| {
        e.get("type")
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case(t))
    };
    emails
        .iter()
        .filter(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .find_map(value)
        .or_else(|| emails.iter().filter(|e| is_type(e, "work")).find_map(value))
        .unwrap_or_else(|| user.user.user_name.as_str().to_owned())
}

/// Member display name: displayName, else name.formatted, else userName.
pub(crate) fn member_display_name(user: &StoredUser) -> String {
    let doc = &user.user.doc;
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    text(doc.get("displayName"))
        .or_else(|| text(doc.get("name").and_then(|n| n.get("formatted"))))
        .unwrap_or_else(|| user.user.user_name.as_str().to_owned())
}

/// Evaluates the mapping on `user`. `groups` are the user's group names
/// (when `groups` is mapped).
pub(crate) fn desired(
    user: &StoredUser,
    mapping: &Compiled,
    groups: Option<&[String]>,
    manager: &ManagerRef,
) -> Desired {
    let location = format!("/Users/{}", user.id);
    let doc = Value::Object(render(
        &USER_RESOURCE,
        &user.id,
        &user.user.doc,
        &user.meta,
        &location,
    ));
    let mut properties = BTreeMap::new();
    let mut pending_manager = None;
    for (property, source) in &mapping.entries {
        let value = match source {
            Source::Path(p) => evaluate(&doc, p),
            Source::Groups => {
                let mut names: Vec<String> = groups.map(<[String]>::to_vec).unwrap_or_default();
                names.sort();
                names.dedup();
                Some(Value::Array(names.into_iter().map(Value::String).collect()))
            }
            Source::Manager => match manager {
                ManagerRef::None => None,
                ManagerRef::Member(id) => Some(Value::String(id.clone())),
                ManagerRef::Pending(m) => {
                    pending_manager = Some(m.clone());
                    None
                }
            },
        };
        if let Some(v) = value {
            properties.insert(property.clone(), v);
        }
    }
    Desired {
        email: member_email(user),
        display_name: member_display_name(user),
        active: user.user.active,
        properties,
        pending_manager,
    }
}

/// The member id a provisioned user gets when the sync creates its member.
pub(crate) fn provisioned_id(user_id: &str) -> String {
    format!("m-{user_id}")
}

/// What happened to one user's member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    Created,
    Updated,
    Deactivated,
    Reactivated,
    Unchanged,
    Linked,
    Failed,
}

/// The reconciliation of one user.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// Not a member's business (a deleted user that never had one).
    Skip,
    /// Nothing to write. Counted as unchanged ("left alone").
    Unchanged,
    Write {
        outcome: Outcome,
        write: Box<MemberWrite>,
        change: Option<Box<MemberChangePreview>>,
    },
    Fail(String),
}

/// Where a new active user's member comes from, given who holds its email.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target<'a> {
    Create,
    Link(&'a Member, LinkKind),
    Refuse(String),
}

pub(crate) fn target<'a>(
    email: &str,
    owner: Option<&'a Member>,
    link_by_email: bool,
) -> Target<'a> {
    match owner {
        None => Target::Create,
        Some(o) if o.managed_by == ManagedBy::App => {
            if link_by_email {
                Target::Link(o, LinkKind::Email)
            } else {
                Target::Refuse(format!(
                    "email {email} belongs to app member {}; linking by email is off for this \
                     tenant, so no member was created (turn the policy on to link them)",
                    o.id
                ))
            }
        }
        Some(o) if o.scim_user_id.is_none() => Target::Link(o, LinkKind::Relinked),
        Some(o) => Target::Refuse(format!(
            "email {email} is already used by member {} (SCIM user {})",
            o.id,
            o.scim_user_id.as_deref().unwrap_or("-")
        )),
    }
}

/// Everything known about one user when planning.
#[derive(Debug)]
pub(crate) struct Inputs<'a> {
    pub user_id: &'a str,
    pub user: Option<&'a StoredUser>,
    pub desired: Option<&'a Desired>,
    pub link: Option<&'a MemberLink>,
    /// The linked member.
    pub member: Option<&'a Member>,
    /// The member holding the desired email, when it is not `member`.
    pub email_owner: Option<&'a Member>,
    /// Another user of this batch already claims the desired email.
    pub email_taken_in_batch: bool,
    pub link_by_email: bool,
    pub now: &'a str,
    pub run_id: &'a str,
}

pub(crate) fn plan(i: &Inputs<'_>) -> Plan {
    match (i.user.zip(i.desired), i.link) {
        (None, None) => Plan::Skip,
        (None, Some(link)) => match i.member {
            Some(m) if m.managed_by == ManagedBy::Provisioning => unlink(i, link, m),
            // A dangling link, or (never) an app member: nothing to change.
            _ => Plan::Skip,
        },
        (Some((_, d)), Some(link)) => match i.member {
            Some(m) if m.managed_by == ManagedBy::App => Plan::Fail(format!(
                "member {} is linked to this user but managed by the app",
                m.id
            )),
            Some(m) => update(i, d, m),
            None => create(i, d, link.member_id.clone(), false),
        },
        (Some((_, d)), None) => {
            if !d.active {
                return Plan::Unchanged;
            }
            if i.email_taken_in_batch {
                return Plan::Fail(format!(
                    "another user in this sync has the email {}",
                    d.email
                ));
            }
            match target(&d.email, i.email_owner, i.link_by_email) {
                Target::Create => create(i, d, provisioned_id(i.user_id), true),
                Target::Link(owner, how) => link_existing(i, d, owner, how),
                Target::Refuse(why) => Plan::Fail(why),
            }
        }
    }
}

fn wait(manager: &str, report: &str) -> ManagerWait {
    ManagerWait {
        manager: manager.to_owned(),
        report: report.to_owned(),
    }
}

fn wait_changes(
    report: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> (Option<ManagerWait>, Option<ManagerWait>) {
    if old == new {
        return (None, None);
    }
    (new.map(|m| wait(m, report)), old.map(|m| wait(m, report)))
}

fn unlink(i: &Inputs<'_>, link: &MemberLink, m: &Member) -> Plan {
    let mut next = m.clone();
    next.status = MemberStatus::Deactivated;
    next.scim_user_id = None;
    next.pending_manager = None;
    next.version = m.version + 1;
    next.updated = i.now.to_owned();
    let (action, outcome) = if m.status == MemberStatus::Active {
        (ChangeAction::Deactivate, Outcome::Deactivated)
    } else {
        (ChangeAction::Update, Outcome::Updated)
    };
    let change = preview(action, i.user_id, Some(m), &next, None);
    Plan::Write {
        outcome,
        write: Box::new(MemberWrite {
            member: next,
            expected_version: Some(m.version),
            claim_email: None,
            release_email: None,
            link: Some(LinkWrite::Remove {
                user_id: link.user_id.clone(),
            }),
            wait_add: None,
            wait_remove: m.pending_manager.as_deref().map(|mg| wait(mg, i.user_id)),
            event: None,
        }),
        change: Some(Box::new(change)),
    }
}

fn apply(next: &mut Member, d: &Desired, user_id: &str) {
    next.email.clone_from(&d.email);
    next.display_name.clone_from(&d.display_name);
    next.status = if d.active {
        MemberStatus::Active
    } else {
        MemberStatus::Deactivated
    };
    next.properties.clone_from(&d.properties);
    next.pending_manager.clone_from(&d.pending_manager);
    next.scim_user_id = Some(user_id.to_owned());
    next.managed_by = ManagedBy::Provisioning;
}

fn update(i: &Inputs<'_>, d: &Desired, m: &Member) -> Plan {
    let mut next = m.clone();
    apply(&mut next, d, i.user_id);
    if next == *m {
        return Plan::Unchanged;
    }
    let (old_key, new_key) = (m.email_key(), d.email_key());
    let email_moves = old_key != new_key;
    if email_moves {
        if let Some(o) = i.email_owner.filter(|o| o.id != m.id) {
            return Plan::Fail(format!(
                "the user's new email {} is already used by member {}",
                d.email, o.id
            ));
        }
        if i.email_taken_in_batch {
            return Plan::Fail(format!(
                "another user in this sync has the email {}",
                d.email
            ));
        }
    }
    next.version = m.version + 1;
    next.updated = i.now.to_owned();
    let (action, outcome) = match (m.status, next.status) {
        (MemberStatus::Active, MemberStatus::Deactivated) => {
            (ChangeAction::Deactivate, Outcome::Deactivated)
        }
        (MemberStatus::Deactivated, MemberStatus::Active) => {
            (ChangeAction::Reactivate, Outcome::Reactivated)
        }
        _ => (ChangeAction::Update, Outcome::Updated),
    };
    let change = preview(action, i.user_id, Some(m), &next, None);
    // Only the pending manager changed: a write nobody sees.
    let visible = !change.fields.is_empty() || !change.properties.is_empty();
    let (wait_add, wait_remove) = wait_changes(
        i.user_id,
        m.pending_manager.as_deref(),
        next.pending_manager.as_deref(),
    );
    Plan::Write {
        outcome: if visible { outcome } else { Outcome::Unchanged },
        write: Box::new(MemberWrite {
            member: next,
            expected_version: Some(m.version),
            claim_email: email_moves.then_some(new_key),
            release_email: email_moves.then_some(old_key),
            link: None,
            wait_add,
            wait_remove,
            event: None,
        }),
        change: visible.then(|| Box::new(change)),
    }
}

fn create(i: &Inputs<'_>, d: &Desired, id: String, add_link: bool) -> Plan {
    let mut member = Member {
        id,
        email: String::new(),
        display_name: String::new(),
        status: MemberStatus::Active,
        properties: BTreeMap::new(),
        scim_user_id: None,
        managed_by: ManagedBy::Provisioning,
        created: i.now.to_owned(),
        updated: i.now.to_owned(),
        version: 1,
        pending_manager: None,
    };
    apply(&mut member, d, i.user_id);
    let link = add_link.then(|| LinkWrite::Add {
        link: MemberLink {
            user_id: i.user_id.to_owned(),
            member_id: member.id.clone(),
            how: LinkKind::Created,
            at: i.now.to_owned(),
            run_id: i.run_id.to_owned(),
        },
        previous_managed_by: None,
    });
    let change = preview(ChangeAction::Create, i.user_id, None, &member, None);
    Plan::Write {
        outcome: Outcome::Created,
        write: Box::new(MemberWrite {
            claim_email: Some(member.email_key()),
            wait_add: member
                .pending_manager
                .as_deref()
                .map(|m| wait(m, i.user_id)),
            member,
            expected_version: None,
            release_email: None,
            link,
            wait_remove: None,
            event: None,
        }),
        change: Some(Box::new(change)),
    }
}

fn link_existing(i: &Inputs<'_>, d: &Desired, owner: &Member, how: LinkKind) -> Plan {
    let mut next = owner.clone();
    apply(&mut next, d, i.user_id);
    next.version = owner.version + 1;
    next.updated = i.now.to_owned();
    let (wait_add, wait_remove) = wait_changes(
        i.user_id,
        owner.pending_manager.as_deref(),
        next.pending_manager.as_deref(),
    );
    let change = preview(ChangeAction::Link, i.user_id, Some(owner), &next, Some(how));
    Plan::Write {
        outcome: Outcome::Linked,
        write: Box::new(MemberWrite {
            link: Some(LinkWrite::Add {
                link: MemberLink {
                    user_id: i.user_id.to_owned(),
                    member_id: owner.id.clone(),
                    how,
                    at: i.now.to_owned(),
                    run_id: i.run_id.to_owned(),
                },
                previous_managed_by: Some(owner.managed_by),
            }),
            member: next,
            expected_version: Some(owner.version),
            claim_email: None,
            release_email: None,
            wait_add,
            wait_remove,
            event: None,
        }),
        change: Some(Box::new(change)),
    }
}

fn value_change(before: Option<Value>, after: Option<Value>) -> Option<ValueChange> {
    (before != after).then(|| ValueChange {
        before: before.unwrap_or(Value::Null),
        after: after.unwrap_or(Value::Null),
    })
}

/// The visible difference between `before` and `after`.
pub(crate) fn preview(
    action: ChangeAction,
    user_id: &str,
    before: Option<&Member>,
    after: &Member,
    link: Option<LinkKind>,
) -> MemberChangePreview {
    let mut fields = BTreeMap::new();
    let text = |s: &str| Some(Value::String(s.to_owned()));
    let pairs = [
        (
            "email",
            before.and_then(|b| text(&b.email)),
            text(&after.email),
        ),
        (
            "displayName",
            before.and_then(|b| text(&b.display_name)),
            text(&after.display_name),
        ),
        (
            "status",
            before.and_then(|b| text(b.status.as_str())),
            text(after.status.as_str()),
        ),
        (
            "managedBy",
            before.and_then(|b| text(b.managed_by.as_str())),
            text(after.managed_by.as_str()),
        ),
        (
            "scimUserId",
            before.and_then(|b| b.scim_user_id.as_deref().and_then(text)),
            after.scim_user_id.as_deref().and_then(text),
        ),
    ];
    for (name, b, a) in pairs {
        if let Some(c) = value_change(b, a) {
            fields.insert(name.to_owned(), c);
        }
    }
    let mut properties = BTreeMap::new();
    let empty = BTreeMap::new();
    let old = before.map_or(&empty, |b| &b.properties);
    for name in old.keys().chain(after.properties.keys()) {
        if let Some(c) = value_change(old.get(name).cloned(), after.properties.get(name).cloned()) {
            properties.insert(name.clone(), c);
        }
    }
    MemberChangePreview {
        action,
        member_id: after.id.clone(),
        scim_user_id: user_id.to_owned(),
        email: after.email.clone(),
        display_name: after.display_name.clone(),
        link,
        fields,
        properties,
    }
}

#[cfg(test)]
mod tests {
    use scim_proto::ids::ResourceId;
    use scim_proto::resource::{Meta, UserResource};
    use serde_json::json;

    use super::*;
    use crate::mapping::default_mapping;

    fn user(id: &str, body: Value) -> StoredUser {
        StoredUser {
            id: ResourceId::parse(id).unwrap(),
            meta: Meta::new(time::OffsetDateTime::UNIX_EPOCH),
            user: UserResource::from_request(body).unwrap(),
        }
    }

    fn app_member(email: &str) -> Member {
        Member {
            id: "a-1".into(),
            email: email.into(),
            display_name: "App".into(),
            status: MemberStatus::Active,
            properties: BTreeMap::new(),
            scim_user_id: None,
            managed_by: ManagedBy::App,
            created: "t0".into(),
            updated: "t0".into(),
            version: 1,
            pending_manager: None,
        }
    }

    fn inputs<'a>(u: &'a StoredUser, d: &'a Desired) -> Inputs<'a> {
        Inputs {
            user_id: u.id.as_str(),
            user: Some(u),
            desired: Some(d),
            link: None,
            member: None,
            email_owner: None,
            email_taken_in_batch: false,
            link_by_email: false,
            now: "t1",
            run_id: "r1",
        }
    }

    fn mapping() -> Compiled {
        Compiled::new(&default_mapping()).unwrap()
    }

    #[test]
    fn member_email_prefers_primary_then_work_then_user_name() {
        let u = user(
            "1",
            json!({"userName": "u@x", "emails": [{"type": "work", "value": "w@x"}, {"value": "p@x", "primary": true}]}),
        );
        assert_eq!(member_email(&u), "p@x");
        let u = user(
            "1",
            json!({"userName": "u@x", "emails": [{"type": "home", "value": "h@x"}, {"type": "Work", "value": "w@x"}]}),
        );
        assert_eq!(member_email(&u), "w@x");
        let u = user("1", json!({"userName": "u@x"}));
        assert_eq!(member_email(&u), "u@x");
    }

    #[test]
    fn display_name_falls_back_to_formatted_name_then_user_name() {
        let u = user("1", json!({"userName": "u@x", "name": {"formatted": "F"}}));
        assert_eq!(member_display_name(&u), "F");
        let u = user("1", json!({"userName": "u@x"}));
        assert_eq!(member_display_name(&u), "u@x");
    }

    #[test]
    fn an_unresolved_manager_is_absent_and_pending() {
        let u = user("1", json!({"userName": "u@x", "title": "T"}));
        let d = desired(&u, &mapping(), None, &ManagerRef::Pending("boss".into()));
        assert_eq!(d.properties.get("jobTitle"), Some(&json!("T")));
        assert!(!d.properties.contains_key("manager"));
        assert_eq!(d.pending_manager.as_deref(), Some("boss"));
    }

    #[test]
    fn a_new_active_user_creates_a_linked_member_with_a_deterministic_id() {
        let u = user("u1", json!({"userName": "u@x", "title": "T"}));
        let d = desired(&u, &mapping(), None, &ManagerRef::None);
        let Plan::Write {
            outcome,
            write,
            change,
        } = plan(&inputs(&u, &d))
        else {
            panic!("expected a write");
        };
        assert_eq!(outcome, Outcome::Created);
        assert_eq!(write.member.id, "m-u1");
        assert_eq!(write.expected_version, None);
        assert_eq!(write.claim_email.as_deref(), Some("u@x"));
        assert!(matches!(write.link, Some(LinkWrite::Add { .. })));
        let change = change.unwrap();
        assert_eq!(change.properties["jobTitle"].after, json!("T"));
        assert_eq!(change.properties["jobTitle"].before, Value::Null);
    }

    #[test]
    fn an_inactive_user_without_a_member_is_left_alone() {
        let u = user("u1", json!({"userName": "u@x", "active": false}));
        let d = desired(&u, &mapping(), None, &ManagerRef::None);
        assert_eq!(plan(&inputs(&u, &d)), Plan::Unchanged);
    }

    #[test]
    fn an_app_member_with_the_same_email_is_linked_only_when_the_policy_is_on() {
        let u = user("u1", json!({"userName": "U@x"}));
        let d = desired(&u, &mapping(), None, &ManagerRef::None);
        let owner = app_member("u@x");
        let mut i = inputs(&u, &d);
        i.email_owner = Some(&owner);
        assert!(matches!(plan(&i), Plan::Fail(why) if why.contains("linking by email is off")));
        i.link_by_email = true;
        let Plan::Write { outcome, write, .. } = plan(&i) else {
            panic!("expected a link");
        };
        assert_eq!(outcome, Outcome::Linked);
        assert_eq!(write.member.id, "a-1");
        assert_eq!(write.member.managed_by, ManagedBy::Provisioning);
        assert_eq!(write.expected_version, Some(1));
    }

    #[test]
    fn a_deleted_users_member_is_deactivated_and_unlinked() {
        let mut m = app_member("u@x");
        m.managed_by = ManagedBy::Provisioning;
        m.scim_user_id = Some("u1".into());
        let link = MemberLink {
            user_id: "u1".into(),
            member_id: m.id.clone(),
            how: LinkKind::Created,
            at: "t0".into(),
            run_id: "r0".into(),
        };
        let i = Inputs {
            user_id: "u1",
            user: None,
            desired: None,
            link: Some(&link),
            member: Some(&m),
            email_owner: None,
            email_taken_in_batch: false,
            link_by_email: false,
            now: "t1",
            run_id: "r1",
        };
        let Plan::Write { outcome, write, .. } = plan(&i) else {
            panic!("expected a write");
        };
        assert_eq!(outcome, Outcome::Deactivated);
        assert_eq!(write.member.status, MemberStatus::Deactivated);
        assert_eq!(write.member.scim_user_id, None);
    }

    #[test]
    fn an_unchanged_member_needs_no_write() {
        let u = user("u1", json!({"userName": "u@x", "title": "T"}));
        let d = desired(&u, &mapping(), None, &ManagerRef::None);
        let Plan::Write { write, .. } = plan(&inputs(&u, &d)) else {
            panic!("expected a create");
        };
        let link = MemberLink {
            user_id: "u1".into(),
            member_id: "m-u1".into(),
            how: LinkKind::Created,
            at: "t1".into(),
            run_id: "r1".into(),
        };
        let mut i = inputs(&u, &d);
        i.link = Some(&link);
        i.member = Some(&write.member);
        assert_eq!(plan(&i), Plan::Unchanged);
    }

    #[test]
    fn a_returning_user_relinks_the_deactivated_member_left_by_its_deleted_self() {
        let u = user("u2", json!({"userName": "u@x"}));
        let d = desired(&u, &mapping(), None, &ManagerRef::None);
        let mut old = app_member("u@x");
        old.managed_by = ManagedBy::Provisioning;
        old.status = MemberStatus::Deactivated;
        let mut i = inputs(&u, &d);
        i.email_owner = Some(&old);
        let Plan::Write { outcome, write, .. } = plan(&i) else {
            panic!("expected a link");
        };
        assert_eq!(outcome, Outcome::Linked);
        assert_eq!(write.member.status, MemberStatus::Active);
        assert!(matches!(
            write.link,
            Some(LinkWrite::Add { ref link, .. }) if link.how == LinkKind::Relinked
        ));
    }

    #[test]
    fn an_email_held_by_another_users_member_is_refused() {
        let u = user("u2", json!({"userName": "u@x"}));
        let d = desired(&u, &mapping(), None, &ManagerRef::None);
        let mut other = app_member("u@x");
        other.managed_by = ManagedBy::Provisioning;
        other.scim_user_id = Some("u1".into());
        let mut i = inputs(&u, &d);
        i.email_owner = Some(&other);
        i.link_by_email = true;
        assert!(matches!(plan(&i), Plan::Fail(why) if why.contains("SCIM user u1")));
    }

    #[test]
    fn a_new_email_held_by_another_member_blocks_the_update_not_the_member() {
        let u = user("u1", json!({"userName": "new@x"}));
        let d = desired(&u, &mapping(), None, &ManagerRef::None);
        let mut mine = app_member("old@x");
        mine.id = "m-u1".into();
        mine.managed_by = ManagedBy::Provisioning;
        mine.scim_user_id = Some("u1".into());
        let link = MemberLink {
            user_id: "u1".into(),
            member_id: "m-u1".into(),
            how: LinkKind::Created,
            at: "t0".into(),
            run_id: "r0".into(),
        };
        let holder = app_member("new@x");
        let mut i = inputs(&u, &d);
        i.link = Some(&link);
        i.member = Some(&mine);
        i.email_owner = Some(&holder);
        assert!(matches!(plan(&i), Plan::Fail(why) if why.contains("new@x")));
        i.email_owner = None;
        let Plan::Write {
            outcome,
            write,
            change,
        } = plan(&i)
        else {
            panic!("expected an update");
        };
        assert_eq!(outcome, Outcome::Updated);
        assert_eq!(write.claim_email.as_deref(), Some("new@x"));
        assert_eq!(write.release_email.as_deref(), Some("old@x"));
        assert_eq!(change.unwrap().fields["email"].after, json!("new@x"));
    }

    #[test]
    fn a_pending_manager_alone_is_written_but_not_reported() {
        let u = user("u1", json!({"userName": "u@x"}));
        let d = desired(&u, &mapping(), None, &ManagerRef::None);
        let Plan::Write { write, .. } = plan(&inputs(&u, &d)) else {
            panic!("expected a create");
        };
        let link = MemberLink {
            user_id: "u1".into(),
            member_id: "m-u1".into(),
            how: LinkKind::Created,
            at: "t1".into(),
            run_id: "r1".into(),
        };
        let pending = desired(&u, &mapping(), None, &ManagerRef::Pending("boss".into()));
        let mut i = inputs(&u, &pending);
        i.link = Some(&link);
        i.member = Some(&write.member);
        let Plan::Write {
            outcome,
            write,
            change,
        } = plan(&i)
        else {
            panic!("expected a write");
        };
        assert_eq!(outcome, Outcome::Unchanged);
        assert_eq!(change, None);
        assert_eq!(write.wait_add.map(|w| w.manager), Some("boss".to_owned()));
    }
}
