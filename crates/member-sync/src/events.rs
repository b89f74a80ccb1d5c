//! The app event each member write publishes: `member.created`,
//! `member.updated` (with what changed), `member.deactivated`,
//! `member.reactivated`. The store writes it to the tenant's outbox in the
//! member's own transaction (see `scim_store::events`).
//!
//! A link (an app member taken over by the link-by-email policy, or a
//! returning user's deactivated member) is a `member.updated` whose
//! `changed` names `managedBy`/`scimUserId`, or a `member.reactivated` when
//! it brings a deactivated member back: the app sees the same member id.

use scim_proto::ids::TenantId;
use scim_store::events::{AppEvent, EventType};
use scim_store::members::MemberWrite;

use crate::plan::Outcome;
use crate::report::MemberChangePreview;

/// What changed, as the event's `changed` lists it: member fields by name,
/// properties as `properties.<name>`.
fn changed(change: Option<&MemberChangePreview>) -> Vec<String> {
    let Some(c) = change else {
        return Vec::new();
    };
    c.fields
        .keys()
        .cloned()
        .chain(c.properties.keys().map(|k| format!("properties.{k}")))
        .collect()
}

fn reactivates(change: Option<&MemberChangePreview>) -> bool {
    change
        .and_then(|c| c.fields.get("status"))
        .is_some_and(|s| s.before == "deactivated" && s.after == "active")
}

/// The event of a write with `outcome` (none for a write nobody sees).
pub(crate) fn member_event(
    tenant: &TenantId,
    user_id: &str,
    outcome: Outcome,
    write: &MemberWrite,
    change: Option<&MemberChangePreview>,
) -> Option<AppEvent> {
    let kind = match outcome {
        Outcome::Created => EventType::MemberCreated,
        Outcome::Updated => EventType::MemberUpdated,
        Outcome::Deactivated => EventType::MemberDeactivated,
        Outcome::Reactivated => EventType::MemberReactivated,
        Outcome::Linked if reactivates(change) => EventType::MemberReactivated,
        Outcome::Linked => EventType::MemberUpdated,
        Outcome::Unchanged | Outcome::Failed => return None,
    };
    let changed = if kind == EventType::MemberCreated {
        Vec::new()
    } else {
        changed(change)
    };
    Some(AppEvent::member(
        kind,
        tenant,
        &write.member,
        Some(user_id),
        changed,
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::fixtures::provisioned;
    use crate::report::{ChangeAction, ValueChange};

    fn write() -> MemberWrite {
        MemberWrite {
            member: provisioned("u1", json!({})),
            expected_version: Some(1),
            claim_email: None,
            release_email: None,
            link: None,
            wait_add: None,
            wait_remove: None,
            event: None,
        }
    }

    fn change(fields: &[(&str, &str, &str)], props: &[&str]) -> MemberChangePreview {
        let vc = |b: &str, a: &str| ValueChange {
            before: json!(b),
            after: json!(a),
        };
        MemberChangePreview {
            action: ChangeAction::Update,
            member_id: "m-u1".into(),
            scim_user_id: "u1".into(),
            email: "a@b.c".into(),
            display_name: "A".into(),
            link: None,
            fields: fields
                .iter()
                .map(|(k, b, a)| ((*k).to_owned(), vc(b, a)))
                .collect(),
            properties: props
                .iter()
                .map(|k| ((*k).to_owned(), vc("x", "y")))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn t() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[test]
    fn an_update_lists_the_changed_fields_and_properties() {
        let c = change(&[("displayName", "A", "B")], &["jobTitle"]);
        let e = member_event(&t(), "u1", Outcome::Updated, &write(), Some(&c)).unwrap();
        assert_eq!(e.kind, EventType::MemberUpdated);
        assert_eq!(e.changed, vec!["displayName", "properties.jobTitle"]);
        assert_eq!(e.user_id.as_deref(), Some("u1"));
        assert_eq!(e.member_id.as_deref(), Some("m-u1"));
    }

    #[test]
    fn each_outcome_has_its_event_type_and_unseen_writes_have_none() {
        let w = write();
        let kind = |o| member_event(&t(), "u1", o, &w, None).map(|e| e.kind);
        assert_eq!(kind(Outcome::Created), Some(EventType::MemberCreated));
        assert_eq!(
            kind(Outcome::Deactivated),
            Some(EventType::MemberDeactivated)
        );
        assert_eq!(
            kind(Outcome::Reactivated),
            Some(EventType::MemberReactivated)
        );
        assert_eq!(kind(Outcome::Linked), Some(EventType::MemberUpdated));
        assert_eq!(kind(Outcome::Unchanged), None);
        assert_eq!(kind(Outcome::Failed), None);
    }

    #[test]
    fn a_link_that_brings_a_deactivated_member_back_is_a_reactivation() {
        let c = change(&[("status", "deactivated", "active")], &[]);
        let e = member_event(&t(), "u1", Outcome::Linked, &write(), Some(&c)).unwrap();
        assert_eq!(e.kind, EventType::MemberReactivated);
    }
}
