//! Test fixtures shared by the unit tests: users, members, links.

use std::collections::BTreeMap;

use scim_proto::ids::ResourceId;
use scim_proto::resource::{Meta, UserResource};
use scim_store::members::{LinkKind, ManagedBy, Member, MemberLink, MemberStatus};
use scim_store::users::StoredUser;
use serde_json::{Value, json};

use crate::mapping::{Compiled, MappingEntry, default_mapping};

pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A stored user from a SCIM request body.
pub fn user(id: &str, body: Value) -> StoredUser {
    StoredUser {
        id: ResourceId::parse(id).unwrap(),
        meta: Meta::new(time::OffsetDateTime::UNIX_EPOCH),
        user: UserResource::from_request(body).unwrap(),
    }
}

/// An active user `<id>@x` with the given title.
pub fn titled(id: &str, title: &str) -> StoredUser {
    user(id, json!({"userName": format!("{id}@x"), "title": title}))
}

/// An active user `<id>@x` whose manager is `manager`.
pub fn managed(id: &str, manager: &str) -> StoredUser {
    user(
        id,
        json!({"userName": format!("{id}@x"), ENTERPRISE: {"manager": manager}}),
    )
}

/// An active app member.
pub fn app_member(id: &str, email: &str) -> Member {
    Member {
        id: id.into(),
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

/// The member the sync made for user `user_id` (`<user_id>@x`).
pub fn provisioned(user_id: &str, properties: Value) -> Member {
    let email = format!("{user_id}@x");
    Member {
        id: format!("m-{user_id}"),
        display_name: email.clone(),
        email,
        properties: serde_json::from_value(properties).unwrap(),
        scim_user_id: Some(user_id.into()),
        managed_by: ManagedBy::Provisioning,
        ..app_member("", "")
    }
}

pub fn link(user_id: &str, member_id: &str) -> MemberLink {
    MemberLink {
        user_id: user_id.into(),
        member_id: member_id.into(),
        how: LinkKind::Created,
        at: "t0".into(),
        run_id: "r0".into(),
    }
}

/// The default mapping.
pub fn mapping() -> Compiled {
    Compiled::new(&default_mapping()).unwrap()
}

/// The default mapping plus `groups=groups`.
pub fn mapping_with_groups() -> Compiled {
    let mut entries = default_mapping();
    entries.push(MappingEntry::new("groups", "groups"));
    Compiled::new(&entries).unwrap()
}
