//! Groups as Microsoft Entra ID provisions them (`shared/docs/entra.md`
//! §2.7–2.11, §3.1, §3.3, §3.5): match on `externalId`, create empty, then
//! membership PATCHes in both dialects — the default one (capitalised ops,
//! `Remove` with `path:"members"` and a value array) and the
//! `aadOptscim062020` one (lowercase ops, `members[value eq "…"]` removes,
//! path-less renames).
//!
//! Membership is stored one item per (group, member) under
//! `T#<tenant>#GM#<group>` with a mirror per (member, group) under
//! `T#<tenant>#UG#<user>`; tests look at those keys in a table snapshot to
//! prove that nothing is left behind and that rejected requests wrote nothing.

use scim_store::activity::{Operation, Origin};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::future::join_all;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::resource::{GroupResource, UserResource};
use scim_store::StoreError;
use scim_store::deletion::Deletion;
use scim_store::groups::{
    GroupStore, GroupUpdate, MemberWrites, MembersChange, MembershipChange, StoredGroup,
};
use scim_store::users::UserStore as _;
use serde_json::{Value, json};

use crate::helpers::{
    FIXTURE_MANAGER_ID, FIXTURE_TOKEN, FIXTURE_USER_ID, Reply, TestApp, enc, entra_user,
    listed_ids, members_of, read_event, set, spawn_app,
};

const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const MS_GROUP_SCHEMA: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

type Snapshot = BTreeMap<(String, String), String>;

// --- Requests as Entra sends them ------------------------------------------

/// The two ways Entra writes membership PATCHes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// Capitalised ops; remove = `path:"members"` + value array; rename =
    /// `Replace` with `path:"displayName"`.
    Default,
    /// The `aadOptscim062020` flag: lowercase ops; remove =
    /// `members[value eq "…"]`; rename = path-less `replace`.
    AadOpt,
}

impl Dialect {
    const BOTH: [Self; 2] = [Self::Default, Self::AadOpt];

    fn op(self, name: &str) -> String {
        match self {
            Self::Default => {
                let mut chars = name.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            }
            Self::AadOpt => name.to_ascii_lowercase(),
        }
    }

    /// `path` with `query`, carrying the flag in the flag dialect.
    fn url(self, path: &str, query: &str) -> String {
        let flag = match self {
            Self::Default => None,
            Self::AadOpt => Some("aadOptscim062020"),
        };
        let parts: Vec<&str> = flag
            .into_iter()
            .chain(Some(query).filter(|q| !q.is_empty()))
            .collect();
        if parts.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", parts.join("&"))
        }
    }

    fn group_url(self, group: &str) -> String {
        self.url(&format!("/Groups/{group}"), "")
    }

    fn add(self, users: &[&str]) -> Value {
        json!({"op": self.op("add"), "path": "members", "value": member_values(users)})
    }

    /// Removes exactly `users`, the way this dialect writes it.
    fn remove(self, users: &[&str]) -> Value {
        match self {
            Self::Default => {
                json!({"op": "Remove", "path": "members", "value": member_values(users)})
            }
            Self::AadOpt => {
                let terms: Vec<String> =
                    users.iter().map(|u| format!("value eq \"{u}\"")).collect();
                json!({"op": "remove", "path": format!("members[{}]", terms.join(" or "))})
            }
        }
    }

    /// `remove members` without a value: every member goes.
    fn clear(self) -> Value {
        json!({"op": self.op("remove"), "path": "members"})
    }

    fn replace_members(self, users: &[&str]) -> Value {
        json!({"op": self.op("replace"), "path": "members", "value": member_values(users)})
    }

    fn rename(self, display_name: &str) -> Value {
        match self {
            Self::Default => {
                json!({"op": "Replace", "path": "displayName", "value": display_name})
            }
            Self::AadOpt => json!({"op": "replace", "value": {"displayName": display_name}}),
        }
    }
}

fn member_values(users: &[&str]) -> Value {
    users
        .iter()
        .map(|u| json!({"$ref": null, "value": u}))
        .collect()
}

fn patch_body(operations: &[Value]) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

/// A group body as Entra's default group mapping POSTs it: no members.
fn entra_group(display_name: &str, external_id: &str) -> Value {
    json!({
        "schemas": [GROUP_SCHEMA, MS_GROUP_SCHEMA],
        "externalId": external_id,
        "displayName": display_name,
        "meta": {"resourceType": "Group"}
    })
}

fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn refs(ids: &[String]) -> Vec<&str> {
    ids.iter().map(String::as_str).collect()
}

// --- Arrange helpers --------------------------------------------------------

/// `n` users created through `POST /Users`.
async fn create_users(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let ext = new_guid();
        let name = format!("member{i}-{}@contoso.com", &ext[..8]);
        ids.push(app.create_user(&entra_user(&name, &ext)).await);
    }
    ids
}

/// `n` users written through the store directly (fast seeding: no HTTP, no
/// response rendering). One at a time: the emulator (moto) is not safe for
/// concurrent `TransactWriteItems` on one table and answers some with 500.
async fn seed_users(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let ext = new_guid();
        let user = UserResource::from_request(json!({
            "userName": format!("seeded{i}-{}@contoso.com", &ext[..8]),
            "externalId": ext,
            "active": true
        }))
        .expect("valid user");
        let stored = app
            .stores
            .users
            .create(&app.tenant, user, Origin::internal(Operation::Create))
            .await
            .expect("user stored");
        ids.push(stored.id.as_str().to_owned());
    }
    ids
}

/// Creates a group as Entra does and returns its id (asserting the 201).
async fn create_group(app: &TestApp, display_name: &str, external_id: &str) -> String {
    let reply = app
        .post("/Groups", &entra_group(display_name, external_id))
        .await;
    assert_eq!(reply.status, 201, "group create failed: {}", reply.body);
    reply.body["id"].as_str().expect("id").to_owned()
}

/// A group with these members, created and filled as Entra does.
async fn group_with(app: &TestApp, members: &[&str]) -> String {
    let ext = new_guid();
    let id = create_group(app, &format!("Group {}", &ext[..8]), &ext).await;
    if !members.is_empty() {
        let reply = app
            .patch(
                &format!("/Groups/{id}"),
                &patch_body(&[Dialect::Default.add(members)]),
            )
            .await;
        assert_eq!(reply.status, 204, "seeding members failed: {}", reply.body);
    }
    id
}

// --- Assert helpers ---------------------------------------------------------

async fn filter_groups(app: &TestApp, filter: &str) -> Reply {
    app.get(&format!("/Groups?filter={}", enc(filter))).await
}

/// Group ids listed in a user's read-only `groups`, with their `display`.
async fn groups_of_user(app: &TestApp, user: &str) -> BTreeMap<String, String> {
    let reply = app.get(&format!("/Users/{user}")).await;
    assert_eq!(reply.status, 200, "user GET failed: {}", reply.body);
    reply.body["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            (
                g["value"].as_str().expect("group value").to_owned(),
                g["display"].as_str().expect("group display").to_owned(),
            )
        })
        .collect()
}

/// Snapshot keys whose partition key contains `needle` (e.g. `#GM#<gid>`),
/// users' membership heads (`UG#<user>`, sort key `#`: the token a user
/// delete checks against group adds) aside: they are no membership.
fn keys_with(snapshot: &Snapshot, needle: &str) -> Vec<(String, String)> {
    snapshot
        .keys()
        .filter(|(pk, sk)| pk.contains(needle) && sk != "#")
        .cloned()
        .collect()
}

#[track_caller]
fn assert_no_content(reply: &Reply, step: &str) {
    assert_eq!(reply.status, 204, "{step}: {}", reply.body);
    assert_eq!(reply.body, Value::Null, "{step}: 204 carries no body");
}

// --- The life cycle, once per dialect ---------------------------------------

#[tokio::test]
async fn entra_group_life_cycle_in_the_default_dialect() {
    replay_entra_group_life_cycle(Dialect::Default).await;
}

#[tokio::test]
async fn entra_group_life_cycle_in_the_aadoptscim062020_dialect() {
    replay_entra_group_life_cycle(Dialect::AadOpt).await;
}

/// Match, create, fill, trim, rename, query and delete a group as Entra does.
async fn replay_entra_group_life_cycle(dialect: Dialect) {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 5).await;
    let [u1, u2, u3, u4, u5] = [0, 1, 2, 3, 4].map(|i| users[i].as_str());
    let ext = new_guid();
    let name = format!("Sales {}", &ext[..8]);
    let match_query = dialect.url(
        "/Groups",
        &format!(
            "excludedAttributes=members&filter={}",
            enc(&format!(r#"externalId eq "{ext}""#))
        ),
    );

    // Act + Assert, step by step.
    // 1. The match query finds nothing: 200 and an empty ListResponse.
    let before = app.get(&match_query).await;
    assert!(
        listed_ids(&before).is_empty(),
        "match before create: {}",
        before.body
    );
    assert_eq!(before.body["totalResults"], 0);

    // 2. POST with Microsoft's extra schema URI: 201, no members.
    let created = app
        .post(&dialect.url("/Groups", ""), &entra_group(&name, &ext))
        .await;
    assert_eq!(created.status, 201, "create: {}", created.body);
    let gid = created.body["id"].as_str().expect("id").to_owned();
    assert!(
        created.body.get("members").is_none() || created.body["members"] == json!([]),
        "a new group has no members: {}",
        created.body
    );
    assert_eq!(created.body["displayName"], json!(name));
    assert_eq!(created.body["externalId"], json!(ext));
    assert_eq!(created.body["meta"]["resourceType"], "Group");
    assert!(
        created
            .header("location")
            .is_some_and(|l| l.ends_with(&format!("/Groups/{gid}"))),
        "Location header: {:?}",
        created.header("location")
    );

    // 3. The match query now finds exactly it, without a `members` key.
    let after = app.get(&match_query).await;
    assert_eq!(listed_ids(&after), vec![gid.clone()], "match after create");
    assert!(
        after.body["Resources"][0].get("members").is_none(),
        "excludedAttributes=members leaves the key out: {}",
        after.body
    );

    let group_url = dialect.group_url(&gid);
    // 4. Add one member.
    let reply = app
        .patch(&group_url, &patch_body(&[dialect.add(&[u1])]))
        .await;
    assert_no_content(&reply, "add one");
    assert_eq!(members_of(&app, &gid).await, set(&[u1]), "after add one");

    // 5. Add three members in one operation.
    let reply = app
        .patch(&group_url, &patch_body(&[dialect.add(&[u2, u3, u4])]))
        .await;
    assert_no_content(&reply, "add three");
    assert_eq!(
        members_of(&app, &gid).await,
        set(&[u1, u2, u3, u4]),
        "after add three"
    );

    // 6. Adding a member again is idempotent.
    let reply = app
        .patch(&group_url, &patch_body(&[dialect.add(&[u2, u2])]))
        .await;
    assert_no_content(&reply, "duplicate add");
    assert_eq!(
        members_of(&app, &gid).await,
        set(&[u1, u2, u3, u4]),
        "after duplicate add"
    );

    // 7. Remove one member (value array / filter path): only that one goes.
    let reply = app
        .patch(&group_url, &patch_body(&[dialect.remove(&[u2])]))
        .await;
    assert_no_content(&reply, "remove one");
    assert_eq!(
        members_of(&app, &gid).await,
        set(&[u1, u3, u4]),
        "after remove one"
    );

    // 8. Removing a user who is not a member succeeds and changes nothing.
    let reply = app
        .patch(&group_url, &patch_body(&[dialect.remove(&[u5])]))
        .await;
    assert_no_content(&reply, "remove absent");
    assert_eq!(
        members_of(&app, &gid).await,
        set(&[u1, u3, u4]),
        "after remove absent"
    );

    // 9. Rename; the new name is found in any case, the old one no more.
    let new_name = format!("Sales EMEA {}", &ext[..8]);
    let reply = app
        .patch(&group_url, &patch_body(&[dialect.rename(&new_name)]))
        .await;
    assert_no_content(&reply, "rename");
    let by_new = app
        .get(&dialect.url(
            "/Groups",
            &format!(
                "excludedAttributes=members&filter={}",
                enc(&format!(
                    r#"displayName eq "{}""#,
                    new_name.to_ascii_uppercase()
                ))
            ),
        ))
        .await;
    assert_eq!(listed_ids(&by_new), vec![gid.clone()], "found by new name");
    assert_eq!(by_new.body["Resources"][0]["displayName"], json!(new_name));
    let by_old = filter_groups(&app, &format!(r#"displayName eq "{name}""#)).await;
    assert!(listed_ids(&by_old).is_empty(), "old name: {}", by_old.body);
    assert_eq!(
        members_of(&app, &gid).await,
        set(&[u1, u3, u4]),
        "a rename keeps the members"
    );

    // 10. Members' user resources list the group under its new name.
    assert_eq!(
        groups_of_user(&app, u1).await,
        BTreeMap::from([(gid.clone(), new_name.clone())])
    );
    assert!(groups_of_user(&app, u2).await.is_empty(), "u2 was removed");

    // 11. Delete: 204, then 404.
    let reply = app.send("DELETE", &group_url, None).await;
    assert_no_content(&reply, "delete");
    app.get(&format!("/Groups/{gid}"))
        .await
        .assert_scim_error(404, None);
    let gone = app.get(&match_query).await;
    assert!(listed_ids(&gone).is_empty(), "match after delete");
}

// --- Membership forms -------------------------------------------------------

#[tokio::test]
async fn remove_members_without_a_value_clears_the_group_in_both_dialects() {
    for dialect in Dialect::BOTH {
        // Arrange
        let app = spawn_app().await;
        let users = create_users(&app, 3).await;
        let gid = group_with(&app, &refs(&users)).await;

        // Act
        let reply = app
            .patch(&dialect.group_url(&gid), &patch_body(&[dialect.clear()]))
            .await;

        // Assert
        assert_no_content(&reply, &format!("{dialect:?} clear"));
        assert!(members_of(&app, &gid).await.is_empty(), "{dialect:?}");
        let snap = app.snapshot().await;
        assert!(keys_with(&snap, &format!("#GM#{gid}")).is_empty());
        for u in &users {
            assert!(keys_with(&snap, &format!("#UG#{u}")).is_empty(), "{u}");
        }
    }
}

#[tokio::test]
async fn remove_with_a_value_array_removes_only_the_listed_members() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 4).await;
    let gid = group_with(&app, &refs(&users)).await;

    // Act
    let reply = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_body(&[Dialect::Default.remove(&[&users[0], &users[2]])]),
        )
        .await;

    // Assert
    assert_no_content(&reply, "remove two");
    assert_eq!(members_of(&app, &gid).await, set(&[&users[1], &users[3]]));
}

#[tokio::test]
async fn replace_members_makes_the_membership_exactly_the_given_users() {
    for dialect in Dialect::BOTH {
        // Arrange
        let app = spawn_app().await;
        let users = create_users(&app, 4).await;
        let gid = group_with(&app, &[&users[0], &users[1]]).await;

        // Act
        let reply = app
            .patch(
                &dialect.group_url(&gid),
                &patch_body(&[dialect.replace_members(&[&users[1], &users[2], &users[3]])]),
            )
            .await;

        // Assert
        assert_no_content(&reply, &format!("{dialect:?} replace"));
        assert_eq!(
            members_of(&app, &gid).await,
            set(&[&users[1], &users[2], &users[3]]),
            "{dialect:?}"
        );
        let snap = app.snapshot().await;
        assert!(
            keys_with(&snap, &format!("#UG#{}", users[0])).is_empty(),
            "{dialect:?}: the replaced-out member's mirror is gone"
        );
    }
}

#[tokio::test]
async fn add_then_remove_in_one_request_applies_the_operations_in_order() {
    for dialect in Dialect::BOTH {
        // Arrange
        let app = spawn_app().await;
        let users = create_users(&app, 3).await;
        let gid = group_with(&app, &[&users[2]]).await;

        // Act
        let reply = app
            .patch(
                &dialect.group_url(&gid),
                &patch_body(&[
                    dialect.add(&[&users[0], &users[1]]),
                    dialect.remove(&[&users[0]]),
                ]),
            )
            .await;

        // Assert
        assert_no_content(&reply, &format!("{dialect:?} add then remove"));
        assert_eq!(
            members_of(&app, &gid).await,
            set(&[&users[1], &users[2]]),
            "{dialect:?}"
        );
    }
}

#[tokio::test]
async fn patch_answers_204_unless_the_client_asks_for_attributes() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 3).await;
    let gid = group_with(&app, &[]).await;
    let add = |u: &str| patch_body(&[Dialect::Default.add(&[u])]);

    // Act
    let plain = app.patch(&format!("/Groups/{gid}"), &add(&users[0])).await;
    let with_members = app
        .patch(
            &format!("/Groups/{gid}?attributes=members"),
            &add(&users[1]),
        )
        .await;
    let without_members = app
        .patch(
            &format!("/Groups/{gid}?excludedAttributes=members"),
            &add(&users[2]),
        )
        .await;

    // Assert
    assert_no_content(&plain, "no attributes asked for");
    assert_eq!(with_members.status, 200, "{}", with_members.body);
    assert_eq!(with_members.body["id"], json!(gid));
    let listed: Vec<&str> = with_members.body["members"]
        .as_array()
        .expect("members returned when asked for")
        .iter()
        .map(|m| m["value"].as_str().expect("value"))
        .collect();
    assert_eq!(set(&listed), set(&[&users[0], &users[1]]));
    assert!(
        with_members.header("etag").is_some(),
        "a 200 carries the ETag"
    );
    assert_eq!(without_members.status, 200, "{}", without_members.body);
    assert!(
        without_members.body.get("members").is_none(),
        "excludedAttributes=members: {}",
        without_members.body
    );
    assert!(without_members.body["displayName"].is_string());
    assert_eq!(members_of(&app, &gid).await, set(&users));
}

#[tokio::test]
async fn excluded_members_are_never_returned_while_a_plain_get_lists_them() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let gid = group_with(&app, &refs(&users)).await;

    // Act
    let plain = app.get(&format!("/Groups/{gid}")).await;
    let excluded_get = app
        .get(&format!("/Groups/{gid}?excludedAttributes=members"))
        .await;
    let excluded_list = app.get("/Groups?excludedAttributes=members").await;
    let excluded_filter = app
        .get(&format!(
            "/Groups?excludedAttributes=members&filter={}",
            enc(&format!(r#"id eq "{gid}""#))
        ))
        .await;

    // Assert
    assert_eq!(plain.status, 200);
    let members = plain.body["members"].as_array().expect("members listed");
    assert_eq!(members.len(), 2);
    for m in members {
        let value = m["value"].as_str().expect("value");
        assert!(users.iter().any(|u| u == value), "{m}");
        assert!(
            m["$ref"]
                .as_str()
                .is_some_and(|r| r.ends_with(&format!("/Users/{value}"))),
            "{m}"
        );
    }
    assert_eq!(plain.body["schemas"], json!([GROUP_SCHEMA]));
    assert!(plain.header("etag").is_some());
    assert_eq!(excluded_get.status, 200);
    assert!(excluded_get.body.get("members").is_none());
    assert_eq!(excluded_get.body["id"], json!(gid));
    for list in [&excluded_list, &excluded_filter] {
        assert_eq!(listed_ids(list), vec![gid.clone()]);
        assert!(
            list.body["Resources"][0].get("members").is_none(),
            "{}",
            list.body
        );
    }
}

#[tokio::test]
async fn the_store_accepts_a_member_named_twice_in_one_add_remove_or_lookup() {
    // Arrange: DynamoDB refuses a batch that names one key twice.
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let group = group_with(&app, &[]).await;
    let (store, tenant) = (&app.stores.groups, &app.tenant);
    let gid = ResourceId::parse(&group).unwrap();
    let ids: Vec<ResourceId> = users
        .iter()
        .map(|u| ResourceId::parse(u).unwrap())
        .collect();
    let twice = [ids[0].clone(), ids[1].clone(), ids[0].clone()];

    // Act + Assert
    store.add_members(tenant, &gid, &twice).await.expect("add");
    assert_eq!(
        members_of(&app, &group).await,
        users.iter().cloned().collect()
    );
    let among = store
        .members_among(tenant, &gid, &twice)
        .await
        .expect("lookup");
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(among, sorted, "each once, in id order");
    store
        .remove_members(tenant, &gid, &twice)
        .await
        .expect("remove");
    assert!(members_of(&app, &group).await.is_empty());
}

// --- Filters ----------------------------------------------------------------

#[tokio::test]
async fn display_name_filter_matches_ignoring_case() {
    // Arrange
    let app = spawn_app().await;
    let ext = new_guid();
    let gid = create_group(&app, "Retail Managers", &ext).await;

    // Act
    let lower = filter_groups(&app, r#"displayName eq "retail managers""#).await;
    let upper = filter_groups(&app, r#"displayName eq "RETAIL MANAGERS""#).await;
    let other = filter_groups(&app, r#"displayName eq "Retail""#).await;

    // Assert
    assert_eq!(listed_ids(&lower), vec![gid.clone()]);
    assert_eq!(listed_ids(&upper), vec![gid]);
    assert!(listed_ids(&other).is_empty());
    assert_eq!(lower.body["Resources"][0]["displayName"], "Retail Managers");
}

#[tokio::test]
async fn legacy_membership_check_returns_only_the_id_when_the_user_is_a_member() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let gid = group_with(&app, &[&users[0]]).await;
    let check = |user: &str| {
        format!(
            "/Groups?filter={}&attributes=id",
            enc(&format!(r#"id eq "{gid}" and members eq "{user}""#))
        )
    };

    // Act
    let member = app.get(&check(&users[0])).await;
    let not_member = app.get(&check(&users[1])).await;
    let unknown = app.get(&check(&new_guid())).await;

    // Assert
    assert_eq!(listed_ids(&member), vec![gid.clone()]);
    assert_eq!(member.body["totalResults"], 1);
    let resource = member.body["Resources"][0].as_object().expect("resource");
    let keys: BTreeSet<&str> = resource.keys().map(String::as_str).collect();
    assert!(
        keys.is_subset(&BTreeSet::from(["id", "schemas"])),
        "attributes=id returns the id only: {resource:?}"
    );
    for reply in [&not_member, &unknown] {
        assert!(listed_ids(reply).is_empty(), "{}", reply.body);
        assert_eq!(reply.body["totalResults"], 0);
    }
}

#[tokio::test]
async fn members_value_filter_returns_the_groups_of_a_user() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let both = group_with(&app, &refs(&users)).await;
    let first_only = group_with(&app, &[&users[0]]).await;
    let _second_only = group_with(&app, &[&users[1]]).await;
    let _empty = group_with(&app, &[]).await;

    // Act
    let of_first = filter_groups(&app, &format!(r#"members[value eq "{}"]"#, users[0])).await;
    let of_first_eq = filter_groups(&app, &format!(r#"members eq "{}""#, users[0])).await;
    let of_nobody = filter_groups(&app, &format!(r#"members[value eq "{}"]"#, new_guid())).await;

    // Assert
    let expected: BTreeSet<String> = set(&[&both, &first_only]);
    assert_eq!(set(&listed_ids(&of_first)), expected);
    assert_eq!(of_first.body["totalResults"], 2);
    assert_eq!(set(&listed_ids(&of_first_eq)), expected);
    assert!(listed_ids(&of_nobody).is_empty());
}

#[tokio::test]
async fn unsupported_members_filters_are_invalid_filter() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 1).await;
    let _gid = group_with(&app, &refs(&users)).await;

    for filter in [
        format!(r#"members co "{}""#, &users[0][..8]),
        "members pr".to_owned(),
        format!(r#"members[display eq "{}"]"#, users[0]),
        format!(r#"members ne "{}""#, users[0]),
    ] {
        // Act
        let reply = filter_groups(&app, &filter).await;

        // Assert
        assert_eq!(reply.status, 400, "{filter}: {}", reply.body);
        reply.assert_scim_error(400, Some("invalidFilter"));
    }
}

// --- Uniqueness, PUT, If-Match ---------------------------------------------

#[tokio::test]
async fn a_display_name_taken_in_another_case_is_a_uniqueness_conflict() {
    // Arrange
    let app = spawn_app().await;
    let taken = create_group(&app, "Finance", &new_guid()).await;
    let other = create_group(&app, "Legal", &new_guid()).await;
    let before = app.snapshot().await;

    // Act
    let post = app
        .post("/Groups", &entra_group("FINANCE", &new_guid()))
        .await;
    let rename = app
        .patch(
            &format!("/Groups/{other}"),
            &patch_body(&[Dialect::Default.rename("finance")]),
        )
        .await;

    // Assert
    post.assert_scim_error(409, Some("uniqueness"));
    rename.assert_scim_error(409, Some("uniqueness"));
    assert_eq!(app.snapshot().await, before, "nothing was written");
    let found = filter_groups(&app, r#"displayName eq "finance""#).await;
    assert_eq!(listed_ids(&found), vec![taken]);
}

#[tokio::test]
async fn an_external_id_taken_by_another_group_is_a_uniqueness_conflict() {
    // Arrange
    let app = spawn_app().await;
    let ext = new_guid();
    let taken = create_group(&app, "Finance", &ext).await;
    let before = app.snapshot().await;

    // Act
    let reply = app.post("/Groups", &entra_group("Audit", &ext)).await;

    // Assert
    reply.assert_scim_error(409, Some("uniqueness"));
    assert_eq!(app.snapshot().await, before, "nothing was written");
    let found = filter_groups(&app, &format!(r#"externalId eq "{ext}""#)).await;
    assert_eq!(listed_ids(&found), vec![taken]);
}

#[tokio::test]
async fn put_replaces_the_attributes_and_the_members() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 3).await;
    let (old_ext, new_ext) = (new_guid(), new_guid());
    let created = app
        .post(
            "/Groups",
            &json!({
                "schemas": [GROUP_SCHEMA],
                "displayName": "Marketing",
                "externalId": old_ext,
                "members": [{"value": users[0]}, {"value": users[1]}]
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let gid = created.body["id"].as_str().expect("id").to_owned();

    // Act
    let reply = app
        .put(
            &format!("/Groups/{gid}"),
            &json!({
                "schemas": [GROUP_SCHEMA, MS_GROUP_SCHEMA],
                "displayName": "Marketing EMEA",
                "externalId": new_ext,
                "members": [{"value": users[1]}, {"value": users[2]}]
            }),
        )
        .await;

    // Assert
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["displayName"], "Marketing EMEA");
    assert_eq!(reply.body["externalId"], json!(new_ext));
    let listed: Vec<&str> = reply.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["value"].as_str().expect("value"))
        .collect();
    assert_eq!(set(&listed), set(&[&users[1], &users[2]]));
    assert_eq!(members_of(&app, &gid).await, set(&[&users[1], &users[2]]));
    let by_old = filter_groups(&app, &format!(r#"externalId eq "{old_ext}""#)).await;
    assert!(
        listed_ids(&by_old).is_empty(),
        "the old externalId is released"
    );
    let by_new = filter_groups(&app, r#"displayName eq "marketing emea""#).await;
    assert_eq!(listed_ids(&by_new), vec![gid]);
    let snap = app.snapshot().await;
    assert!(keys_with(&snap, &format!("#UG#{}", users[0])).is_empty());
}

#[tokio::test]
async fn a_put_that_changes_only_the_members_is_a_new_version() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 1).await;
    let ext = new_guid();
    let gid = create_group(&app, "Payroll", &ext).await;
    let url = format!("/Groups/{gid}");
    let before = app.get(&url).await;
    let same_attributes_new_members = json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": "Payroll",
        "externalId": ext,
        "members": [{"value": users[0]}]
    });

    // Act
    let reply = app.put(&url, &same_attributes_new_members).await;

    // Assert
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_ne!(
        reply.header("etag"),
        before.header("etag"),
        "new members, new ETag"
    );
    assert_ne!(
        reply.body["meta"]["lastModified"],
        before.body["meta"]["lastModified"]
    );
    let after = app.get(&url).await;
    assert_eq!(after.header("etag"), reply.header("etag"));
    assert_eq!(members_of(&app, &gid).await, set(&users));
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let gid = group_with(&app, &[]).await;
    let url = format!("/Groups/{gid}");
    let stale = app.get(&url).await.header("etag").expect("ETag").to_owned();
    let add = |u: &str| patch_body(&[Dialect::Default.add(&[u])]);
    assert_no_content(&app.patch(&url, &add(&users[0])).await, "membership bump");
    let current = app.get(&url).await.header("etag").expect("ETag").to_owned();
    assert_ne!(current, stale, "a membership change is a new version");
    let before = app.snapshot().await;
    let if_match = [("if-match", stale.as_str())];

    // Act
    let patch = app
        .send_with("PATCH", &url, Some(&add(&users[1])), &app.token, &if_match)
        .await;
    let put = app
        .send_with(
            "PUT",
            &url,
            Some(&entra_group("Renamed", &new_guid())),
            &app.token,
            &if_match,
        )
        .await;
    let delete = app
        .send_with("DELETE", &url, None, &app.token, &if_match)
        .await;

    // Assert
    patch.assert_scim_error(412, None);
    put.assert_scim_error(412, None);
    delete.assert_scim_error(412, None);
    assert_eq!(app.snapshot().await, before, "nothing was written");
    let fresh = app
        .send_with(
            "PATCH",
            &url,
            Some(&add(&users[1])),
            &app.token,
            &[("if-match", current.as_str())],
        )
        .await;
    assert_no_content(&fresh, "the current ETag is accepted");
    assert_eq!(members_of(&app, &gid).await, set(&users));
}

// --- Deletes ----------------------------------------------------------------

#[tokio::test]
async fn deleting_a_user_removes_it_from_its_groups() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let (gone, stays) = (users[0].as_str(), users[1].as_str());
    let gid = group_with(&app, &[gone, stays]).await;
    let before = app.snapshot().await;
    assert_eq!(keys_with(&before, &format!("#UG#{gone}")).len(), 1);
    assert!(before.contains_key(&(
        format!("T#{}#GM#{gid}", app.tenant.as_str()),
        gone.to_owned()
    )));

    // Act
    let reply = app.delete(&format!("/Users/{gone}")).await;

    // Assert
    assert_no_content(&reply, "user delete");
    assert_eq!(members_of(&app, &gid).await, set(&[stays]));
    let after = app.snapshot().await;
    assert!(keys_with(&after, &format!("#UG#{gone}")).is_empty());
    let gm: Vec<String> = keys_with(&after, &format!("#GM#{gid}"))
        .into_iter()
        .map(|(_, sk)| sk)
        .collect();
    assert_eq!(gm, vec![stays.to_owned()]);
    let of_gone = filter_groups(&app, &format!(r#"members[value eq "{gone}"]"#)).await;
    assert!(listed_ids(&of_gone).is_empty());
}

#[tokio::test]
async fn deleting_a_group_removes_its_memberships_and_frees_its_name_and_external_id() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let ext = new_guid();
    let gid = create_group(&app, "Engineering", &ext).await;
    let reply = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_body(&[Dialect::Default.add(&refs(&users))]),
        )
        .await;
    assert_no_content(&reply, "fill");
    let other = group_with(&app, &[&users[0]]).await;
    let before = app.snapshot().await;
    assert_eq!(keys_with(&before, &format!("#GM#{gid}")).len(), 2);

    // Act
    let reply = app.delete(&format!("/Groups/{gid}")).await;

    // Assert
    assert_no_content(&reply, "group delete");
    app.get(&format!("/Groups/{gid}"))
        .await
        .assert_scim_error(404, None);
    let after = app.snapshot().await;
    assert!(keys_with(&after, &format!("#GM#{gid}")).is_empty());
    assert!(
        !after
            .keys()
            .any(|(pk, sk)| pk.contains("#UG#") && *sk == gid),
        "no user mirror points at the deleted group"
    );
    let other_name = app.get(&format!("/Groups/{other}")).await.body["displayName"]
        .as_str()
        .expect("name")
        .to_owned();
    assert_eq!(
        groups_of_user(&app, &users[0]).await,
        BTreeMap::from([(other.clone(), other_name)])
    );
    assert!(groups_of_user(&app, &users[1]).await.is_empty());
    assert_eq!(members_of(&app, &other).await, set(&[&users[0]]));
    let again = app.post("/Groups", &entra_group("ENGINEERING", &ext)).await;
    assert_eq!(
        again.status, 201,
        "name and externalId are reusable: {}",
        again.body
    );
}

#[tokio::test]
async fn a_user_get_lists_its_groups_with_value_and_display() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 1).await;
    let ext = new_guid();
    let gid = create_group(&app, "Support", &ext).await;
    assert!(groups_of_user(&app, &users[0]).await.is_empty());
    let reply = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_body(&[Dialect::Default.add(&[&users[0]])]),
        )
        .await;
    assert_no_content(&reply, "add");

    // Act
    let user = app.get(&format!("/Users/{}", users[0])).await;

    // Assert
    assert_eq!(user.status, 200);
    let groups = user.body["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1, "{}", user.body);
    assert_eq!(groups[0]["value"], json!(gid));
    assert_eq!(groups[0]["display"], "Support");
    assert!(
        groups[0]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with(&format!("/Groups/{gid}")))
    );
}

// --- Bad input: 400 and nothing written ------------------------------------

/// PATCHes `body` and asserts a 400 with `scim_type` that wrote nothing.
async fn assert_rejected_unchanged(
    app: &TestApp,
    url: &str,
    body: &Value,
    scim_type: &str,
    case: &str,
) {
    let before = app.snapshot().await;
    let reply = app.patch(url, body).await;
    assert_eq!(reply.status, 400, "{case}: {}", reply.body);
    reply.assert_scim_error(400, Some(scim_type));
    assert!(
        before == app.snapshot().await,
        "{case}: the rejected PATCH changed the table"
    );
}

#[tokio::test]
async fn a_member_that_is_not_a_user_of_the_tenant_is_invalid_value_and_nothing_changes() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let (member, valid) = (users[0].as_str(), users[1].as_str());
    let gid = group_with(&app, &[member]).await;
    let other_group = group_with(&app, &[]).await;
    let other_token = app.other_tenant(&format!("o{}", &new_guid()[..12])).await;
    let foreign = app
        .send_with(
            "POST",
            "/Users",
            Some(&entra_user("foreign@fabrikam.com", &new_guid())),
            &other_token,
            &[],
        )
        .await;
    assert_eq!(foreign.status, 201, "{}", foreign.body);
    let foreign = foreign.body["id"].as_str().expect("id").to_owned();
    let random = new_guid();

    for dialect in Dialect::BOTH {
        let cases: Vec<(String, Vec<Value>)> = vec![
            ("a random id".into(), vec![dialect.add(&[&random])]),
            ("a group's id".into(), vec![dialect.add(&[&other_group])]),
            (
                "a user of another tenant".into(),
                vec![dialect.add(&[&foreign])],
            ),
            (
                "a valid user mixed with a random id in one op".into(),
                vec![dialect.add(&[valid, &random])],
            ),
            (
                "the bad add as the second op".into(),
                vec![dialect.add(&[valid]), dialect.add(&[&foreign])],
            ),
            (
                "a rename, then a bad add".into(),
                vec![dialect.rename("Renamed"), dialect.add(&[&other_group])],
            ),
            (
                "a replace of members naming a non-user".into(),
                vec![dialect.replace_members(&[valid, &random])],
            ),
            (
                "an id that cannot be an id".into(),
                vec![dialect.add(&["a#b"])],
            ),
        ];
        for (case, ops) in cases {
            // Act + Assert
            assert_rejected_unchanged(
                &app,
                &dialect.group_url(&gid),
                &patch_body(&ops),
                "invalidValue",
                &format!("{dialect:?}: {case}"),
            )
            .await;
        }
    }
    assert_eq!(members_of(&app, &gid).await, set(&[member]));
}

#[tokio::test]
async fn post_and_put_with_a_member_that_is_not_a_user_are_invalid_value_and_nothing_changes() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 1).await;
    let gid = group_with(&app, &refs(&users)).await;
    let body = |name: &str| {
        json!({
            "schemas": [GROUP_SCHEMA],
            "displayName": name,
            "members": [{"value": users[0]}, {"value": new_guid()}]
        })
    };
    let before = app.snapshot().await;

    // Act
    let post = app.post("/Groups", &body("New group")).await;
    let put = app.put(&format!("/Groups/{gid}"), &body("Renamed")).await;

    // Assert
    post.assert_scim_error(400, Some("invalidValue"));
    put.assert_scim_error(400, Some("invalidValue"));
    assert!(before == app.snapshot().await, "nothing was written");
}

#[tokio::test]
async fn a_members_value_that_is_not_an_object_is_rejected_and_nothing_changes() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 1).await;
    let gid = group_with(&app, &refs(&users)).await;
    let url = format!("/Groups/{gid}");

    for (case, value) in [
        ("a number", json!(42)),
        ("an array of numbers", json!([42])),
        ("an array of arrays", json!([[users[0]]])),
        ("a boolean", json!([true])),
        ("an object whose value is a number", json!([{"value": 7}])),
        ("an object without value", json!([{"display": "x"}])),
        ("an empty value", json!([{"value": ""}])),
    ] {
        for op in ["Add", "Remove", "Replace"] {
            // Act + Assert
            assert_rejected_unchanged(
                &app,
                &url,
                &patch_body(&[json!({"op": op, "path": "members", "value": value})]),
                "invalidValue",
                &format!("{op} with {case}"),
            )
            .await;
        }
    }
    assert_eq!(members_of(&app, &gid).await, set(&users));
}

// --- Concurrency ------------------------------------------------------------

#[tokio::test]
async fn concurrent_single_member_patches_to_one_group_lose_nothing() {
    // Arrange
    let app = spawn_app().await;
    let users = seed_users(&app, 50).await;
    let gid = group_with(&app, &[]).await;
    let url = format!("/Groups/{gid}");

    // Act: 50 concurrent adds, one distinct user each.
    let bodies: Vec<Value> = users
        .iter()
        .map(|u| patch_body(&[Dialect::Default.add(&[u])]))
        .collect();
    let adds = join_all(bodies.iter().map(|b| app.patch(&url, b))).await;

    // Assert
    for (u, reply) in users.iter().zip(&adds) {
        assert_no_content(reply, &format!("concurrent add of {u}"));
    }
    assert_eq!(members_of(&app, &gid).await, set(&users));

    // Act: 20 concurrent removes of distinct members.
    let (removed, kept) = users.split_at(20);
    let bodies: Vec<Value> = removed
        .iter()
        .map(|u| patch_body(&[Dialect::Default.remove(&[u])]))
        .collect();
    let removes = join_all(bodies.iter().map(|b| app.patch(&url, b))).await;

    // Assert
    for (u, reply) in removed.iter().zip(&removes) {
        assert_no_content(reply, &format!("concurrent remove of {u}"));
    }
    assert_eq!(members_of(&app, &gid).await, set(kept));
    let snap = app.snapshot().await;
    assert_eq!(keys_with(&snap, &format!("#GM#{gid}")).len(), kept.len());
    assert_eq!(keys_with(&snap, "#UG#").len(), kept.len(), "mirrors match");
}

/// The real group store, except that the next `races` attribute writes or
/// deletes lose their version race to a membership PATCH: the group's version
/// is bumped (as a membership PATCH does) just before the write, which then
/// fails. On the emulator such races cannot be staged with real concurrent
/// requests: moto rolls a failed transaction back by restoring a copy of the
/// whole table, wiping or resurrecting concurrent requests' writes.
#[derive(Debug)]
struct LosesVersionRaces {
    inner: Arc<dyn GroupStore>,
    races: AtomicUsize,
}

impl LosesVersionRaces {
    /// Loses one race if any are left: bumps the version under the caller.
    async fn lose(&self, tenant: &TenantId, id: &ResourceId) -> Result<(), StoreError> {
        let take = |n: usize| n.checked_sub(1);
        if self
            .races
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, take)
            .is_ok()
        {
            self.inner.touch(tenant, id, None).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl GroupStore for LosesVersionRaces {
    async fn create(
        &self,
        t: &TenantId,
        g: GroupResource,
        origin: Origin,
    ) -> Result<StoredGroup, StoreError> {
        self.inner.create(t, g, origin).await
    }
    async fn finish_deletes(&self, t: &TenantId) -> Result<usize, StoreError> {
        self.inner.finish_deletes(t).await
    }
    async fn change_members(
        &self,
        t: &TenantId,
        group: &ResourceId,
        members: &MemberWrites,
        origin: Origin,
    ) -> Result<MembersChange, StoreError> {
        // Nothing read, so no version to lose a race on.
        self.inner.change_members(t, group, members, origin).await
    }
    async fn get(&self, t: &TenantId, id: &ResourceId) -> Result<Option<StoredGroup>, StoreError> {
        self.inner.get(t, id).await
    }
    async fn get_many(
        &self,
        t: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<StoredGroup>, StoreError> {
        self.inner.get_many(t, ids).await
    }
    async fn replace(
        &self,
        t: &TenantId,
        current: &StoredGroup,
        next: GroupResource,
        origin: Origin,
    ) -> Result<StoredGroup, StoreError> {
        // After a lost race the real store answers VersionMismatch itself.
        self.lose(t, &current.id).await?;
        self.inner.replace(t, current, next, origin).await
    }
    async fn touch(
        &self,
        t: &TenantId,
        id: &ResourceId,
        expected: Option<u64>,
    ) -> Result<StoredGroup, StoreError> {
        self.inner.touch(t, id, expected).await
    }
    async fn update(
        &self,
        t: &TenantId,
        current: &StoredGroup,
        next: Option<GroupResource>,
        members: &MemberWrites,
        expect_version: bool,
        origin: Origin,
    ) -> Result<GroupUpdate, StoreError> {
        self.lose(t, &current.id).await?;
        self.inner
            .update(t, current, next, members, expect_version, origin)
            .await
    }
    async fn get_for_delete(
        &self,
        t: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<Deletion<StoredGroup>>, StoreError> {
        self.inner.get_for_delete(t, id).await
    }
    async fn delete(
        &self,
        t: &TenantId,
        target: &Deletion<StoredGroup>,
        origin: Origin,
    ) -> Result<scim_store::deletion::Deleted, StoreError> {
        self.lose(t, &target.id).await?;
        self.inner.delete(t, target, origin).await
    }
    async fn find_by_display_name(
        &self,
        t: &TenantId,
        name: &str,
    ) -> Result<Option<StoredGroup>, StoreError> {
        self.inner.find_by_display_name(t, name).await
    }
    async fn find_by_external_id(
        &self,
        t: &TenantId,
        ext: &str,
    ) -> Result<Option<StoredGroup>, StoreError> {
        self.inner.find_by_external_id(t, ext).await
    }
    async fn count(&self, t: &TenantId) -> Result<usize, StoreError> {
        self.inner.count(t).await
    }
    async fn page(
        &self,
        t: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<StoredGroup>, Option<ResourceId>), StoreError> {
        self.inner.page(t, after, limit).await
    }
    async fn nth_id(&self, t: &TenantId, n: usize) -> Result<Option<ResourceId>, StoreError> {
        self.inner.nth_id(t, n).await
    }
    async fn add_members(
        &self,
        t: &TenantId,
        g: &ResourceId,
        users: &[ResourceId],
    ) -> Result<(), StoreError> {
        self.inner.add_members(t, g, users).await
    }
    async fn remove_members(
        &self,
        t: &TenantId,
        g: &ResourceId,
        users: &[ResourceId],
    ) -> Result<(), StoreError> {
        self.inner.remove_members(t, g, users).await
    }
    async fn remove_all_members(&self, t: &TenantId, g: &ResourceId) -> Result<(), StoreError> {
        self.inner.remove_all_members(t, g).await
    }
    async fn members(
        &self,
        t: &TenantId,
        g: &ResourceId,
        limit: Option<usize>,
    ) -> Result<Vec<ResourceId>, StoreError> {
        self.inner.members(t, g, limit).await
    }
    async fn members_among(
        &self,
        t: &TenantId,
        g: &ResourceId,
        users: &[ResourceId],
    ) -> Result<Vec<ResourceId>, StoreError> {
        self.inner.members_among(t, g, users).await
    }
    async fn groups_of(&self, t: &TenantId, u: &ResourceId) -> Result<Vec<ResourceId>, StoreError> {
        self.inner.groups_of(t, u).await
    }
    async fn member_page(
        &self,
        t: &TenantId,
        g: &ResourceId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<ResourceId>, Option<ResourceId>), StoreError> {
        self.inner.member_page(t, g, after, limit).await
    }
    async fn membership_changes(
        &self,
        t: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<MembershipChange>, bool), StoreError> {
        self.inner.membership_changes(t, after, limit).await
    }
    async fn clear_membership_change(
        &self,
        t: &TenantId,
        change: &MembershipChange,
    ) -> Result<(), StoreError> {
        self.inner.clear_membership_change(t, change).await
    }
}

/// Sends one request straight into the router built on `state`.
async fn call(
    app: &TestApp,
    state: scim_api::AppState,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    call_with(app, state, method, path, body, &[]).await
}

/// App state whose group store loses the next `races` version races.
fn losing_races(app: &TestApp, races: usize) -> scim_api::AppState {
    scim_api::AppState {
        groups: Arc::new(LosesVersionRaces {
            inner: app.state.groups.clone(),
            races: AtomicUsize::new(races),
        }),
        ..app.state.clone()
    }
}

/// More lost races than an immediate-retry loop of 5 attempts survives.
const LOST_RACES: usize = 8;

#[tokio::test]
async fn a_rename_that_keeps_losing_to_membership_patches_still_succeeds() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 1).await;
    let gid = group_with(&app, &refs(&users)).await;
    let state = losing_races(&app, LOST_RACES);

    // Act
    let (status, body) = call(
        &app,
        state,
        "PATCH",
        &format!("/Groups/{gid}"),
        Some(&patch_body(&[Dialect::AadOpt.rename("Renamed under load")])),
    )
    .await;

    // Assert
    assert_eq!(status, 204, "{body}");
    let group = app.get(&format!("/Groups/{gid}")).await;
    assert_eq!(group.body["displayName"], "Renamed under load");
    assert_eq!(members_of(&app, &gid).await, set(&users));
}

#[tokio::test]
async fn a_delete_that_keeps_losing_to_membership_patches_still_succeeds() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 1).await;
    let gid = group_with(&app, &refs(&users)).await;
    let state = losing_races(&app, LOST_RACES);

    // Act
    let (status, body) = call(&app, state, "DELETE", &format!("/Groups/{gid}"), None).await;

    // Assert
    assert_eq!(status, 204, "{body}");
    app.get(&format!("/Groups/{gid}"))
        .await
        .assert_scim_error(404, None);
}

/// Like [`call`], with extra request headers (`If-Match`).
async fn call_with(
    app: &TestApp,
    state: scim_api::AppState,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let reply = crate::helpers::call_with(app, state, method, path, body, headers).await;
    (reply.status, reply.body)
}

#[track_caller]
fn assert_scim_error_body(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(
        body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{body}"
    );
    assert_eq!(body["status"], expected.to_string(), "{body}");
}

/// The membership items and Members sync marks, with their attributes.
fn memberships_and_marks(snapshot: &Snapshot) -> Vec<((String, String), String)> {
    snapshot
        .iter()
        .filter(|((pk, _), _)| pk.contains("#GM#") || pk.contains("#UG#") || pk.contains("#GSYNC"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[tokio::test]
async fn a_group_delete_whose_if_match_loses_a_race_answers_412_and_keeps_memberships() {
    // Arrange: the ETag matches when read; a membership PATCH lands before
    // the delete is written.
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let gid = group_with(&app, &refs(&users)).await;
    let url = format!("/Groups/{gid}");
    let etag = app.get(&url).await.header("etag").expect("ETag").to_owned();
    let before = memberships_and_marks(&app.snapshot().await);
    let state = losing_races(&app, 1);

    // Act
    let (status, body) = call_with(&app, state, "DELETE", &url, None, &[("if-match", &etag)]).await;

    // Assert
    assert_scim_error_body(status, &body, 412);
    assert_eq!(members_of(&app, &gid).await, set(&users));
    assert_eq!(groups_of_user(&app, &users[0]).await.len(), 1);
    assert_eq!(
        memberships_and_marks(&app.snapshot().await),
        before,
        "no membership and no membership sync mark was written"
    );
}

#[tokio::test]
async fn a_membership_patch_whose_if_match_loses_a_race_answers_412_and_adds_no_one() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 1).await;
    let gid = group_with(&app, &[]).await;
    let url = format!("/Groups/{gid}");
    let etag = app.get(&url).await.header("etag").expect("ETag").to_owned();
    let before = memberships_and_marks(&app.snapshot().await);
    let state = losing_races(&app, 1);
    let body = patch_body(&[Dialect::Default.add(&refs(&users))]);

    // Act
    let (status, reply) = call_with(
        &app,
        state,
        "PATCH",
        &url,
        Some(&body),
        &[("if-match", &etag)],
    )
    .await;

    // Assert
    assert_scim_error_body(status, &reply, 412);
    assert!(members_of(&app, &gid).await.is_empty());
    assert_eq!(memberships_and_marks(&app.snapshot().await), before);
}

#[tokio::test]
async fn a_group_put_without_if_match_that_keeps_losing_races_still_succeeds() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let gid = group_with(&app, &[&users[0]]).await;
    let state = losing_races(&app, LOST_RACES);
    let body = json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": "Put under load",
        "members": [{"value": users[1]}]
    });

    // Act
    let (status, reply) = call(&app, state, "PUT", &format!("/Groups/{gid}"), Some(&body)).await;

    // Assert
    assert_eq!(status, 200, "{reply}");
    let group = app.get(&format!("/Groups/{gid}")).await;
    assert_eq!(group.body["displayName"], "Put under load");
    assert_eq!(members_of(&app, &gid).await, set(&users[1..]));
}

#[tokio::test]
async fn a_group_put_whose_if_match_loses_a_race_answers_412_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let gid = group_with(&app, &[&users[0]]).await;
    let url = format!("/Groups/{gid}");
    let before = app.get(&url).await;
    let etag = before.header("etag").expect("ETag").to_owned();
    let state = losing_races(&app, 1);
    let body = json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": "Renamed by PUT",
        "members": [{"value": users[1]}]
    });

    // Act
    let (status, reply) = call_with(
        &app,
        state,
        "PUT",
        &url,
        Some(&body),
        &[("if-match", &etag)],
    )
    .await;

    // Assert
    assert_scim_error_body(status, &reply, 412);
    assert_eq!(
        app.get(&url).await.body["displayName"],
        before.body["displayName"]
    );
    assert_eq!(members_of(&app, &gid).await, set(&users[..1]));
}

// --- Cost: requests per membership PATCH ------------------------------------

/// DynamoDB requests of one membership PATCH, by operation.
async fn count_patch(app: &TestApp, url: &str, op: Value) -> BTreeMap<String, u64> {
    app.requests.take();
    let reply = app.patch(url, &patch_body(&[op])).await;
    let counts = app.requests.take();
    assert_no_content(&reply, "counted PATCH");
    counts
}

#[tokio::test]
async fn a_single_member_patch_costs_the_same_requests_on_an_empty_and_a_large_group() {
    // Arrange
    const N: usize = 300;
    let app = spawn_app().await;
    let users = seed_users(&app, N + 2).await;
    let (seeded, new) = users.split_at(N);
    let (for_a, for_b) = (new[0].as_str(), new[1].as_str());
    let empty = group_with(&app, &[]).await;
    let large = group_with(&app, &[]).await;
    let ids: Vec<ResourceId> = seeded
        .iter()
        .map(|u| ResourceId::parse(u).expect("id"))
        .collect();
    app.stores
        .groups
        .add_members(&app.tenant, &ResourceId::parse(&large).expect("id"), &ids)
        .await
        .expect("members seeded");

    for dialect in Dialect::BOTH {
        // Act
        let add_a = count_patch(&app, &dialect.group_url(&empty), dialect.add(&[for_a])).await;
        let add_b = count_patch(&app, &dialect.group_url(&large), dialect.add(&[for_b])).await;
        let remove_a =
            count_patch(&app, &dialect.group_url(&empty), dialect.remove(&[for_a])).await;
        let remove_b =
            count_patch(&app, &dialect.group_url(&large), dialect.remove(&[for_b])).await;

        // Assert
        let total = |c: &BTreeMap<String, u64>| c.values().sum::<u64>();
        eprintln!(
            "{dialect:?} add one member: empty group {} requests {add_a:?}; {N}-member group {} requests {add_b:?}",
            total(&add_a),
            total(&add_b)
        );
        eprintln!(
            "{dialect:?} remove one member: 1-member group {} requests {remove_a:?}; {}-member group {} requests {remove_b:?}",
            total(&remove_a),
            N + 1,
            total(&remove_b)
        );
        assert_eq!(total(&add_a), total(&add_b), "{dialect:?} add");
        assert_eq!(add_a, add_b, "{dialect:?} add, per operation");
        assert_eq!(total(&remove_a), total(&remove_b), "{dialect:?} remove");
        assert_eq!(remove_a, remove_b, "{dialect:?} remove, per operation");
    }
    // The counted PATCHes did their work.
    assert!(members_of(&app, &empty).await.is_empty());
    assert_eq!(members_of(&app, &large).await, set(seeded));
}

// --- API Gateway fixtures (events/groups-*.json) ----------------------------

/// Placeholders of the groups fixtures (events/README.md), besides the
/// shared ones in `helpers`.
const FIXTURE_GROUP_ID: &str = "c1a5e0d4-3b7f-4e2a-9c86-5f0e2d7a9b13";
const FIXTURE_GROUP_EXTERNAL_ID: &str = "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159";
const FIXTURE_THIRD_USER_ID: &str = "e9e30dba-f08f-4109-8486-d5c6a331660a";

const GROUP_FIXTURES: [&str; 8] = [
    "groups-create.json",
    "groups-delete.json",
    "groups-get-by-externalid.json",
    "groups-membership-check.json",
    "groups-patch-add-members.json",
    "groups-patch-remove-member-aadopt.json",
    "groups-patch-remove-member-default.json",
    "groups-patch-rename.json",
];

/// Replays fixture `name` through the Lambda path (`from_str`, body mapped
/// as `host::run_lambda` does, `oneshot`) with the placeholders replaced.
async fn replay_event(app: &TestApp, name: &str, subst: &[(&str, &str)]) -> (u16, Value) {
    let mut text = read_event(name).replace(FIXTURE_TOKEN, &app.token);
    for (placeholder, real) in subst {
        text = text.replace(placeholder, real);
    }
    let mut event: Value = serde_json::from_str(&text).expect("fixture is JSON");
    if let Some(body) = event["body"].as_str().map(str::len) {
        event["headers"]["content-length"] = json!(body.to_string());
    }
    let reply = app.send_event(&event, name).await;
    (reply.status, reply.body)
}

#[test]
fn every_groups_fixture_in_events_is_replayed() {
    let on_disk: BTreeSet<String> =
        std::fs::read_dir(format!("{}/../events", env!("CARGO_MANIFEST_DIR")))
            .expect("events/")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("groups-") && n.ends_with(".json"))
            .collect();
    assert_eq!(on_disk, set(&GROUP_FIXTURES));
}

#[test]
fn every_groups_fixture_has_the_placeholder_token_and_a_true_content_length() {
    for name in GROUP_FIXTURES {
        let event: Value = serde_json::from_str(&read_event(name)).expect("JSON");
        assert_eq!(
            event["headers"]["authorization"],
            json!(format!("Bearer {FIXTURE_TOKEN}")),
            "{name}"
        );
        let body_len = event["body"].as_str().map_or(0, str::len);
        assert_eq!(
            event["headers"]["content-length"],
            json!(body_len.to_string()),
            "{name}"
        );
        lambda_http::request::from_str(&event.to_string())
            .unwrap_or_else(|e| panic!("{name} parses: {e}"));
    }
}

#[tokio::test]
async fn the_groups_fixtures_replayed_through_the_lambda_path_get_entra_s_statuses() {
    // Arrange
    let app = spawn_app().await;
    let users = create_users(&app, 3).await;
    let (user, manager, third) = (users[0].as_str(), users[1].as_str(), users[2].as_str());

    // Act + Assert, in Entra's order.
    let (status, created) = replay_event(&app, "groups-create.json", &[]).await;
    assert_eq!(status, 201, "create: {created}");
    let gid = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["externalId"], FIXTURE_GROUP_EXTERNAL_ID);
    let subst = [
        (FIXTURE_GROUP_ID, gid.as_str()),
        (FIXTURE_USER_ID, user),
        (FIXTURE_MANAGER_ID, manager),
        (FIXTURE_THIRD_USER_ID, third),
    ];

    let (status, matched) = replay_event(&app, "groups-get-by-externalid.json", &subst).await;
    assert_eq!(status, 200, "match: {matched}");
    assert_eq!(matched["totalResults"], 1);
    assert_eq!(matched["Resources"][0]["id"], json!(gid));
    assert!(matched["Resources"][0].get("members").is_none());

    let (status, body) = replay_event(&app, "groups-patch-add-members.json", &subst).await;
    assert_eq!(status, 204, "add members: {body}");
    assert_eq!(members_of(&app, &gid).await, set(&[user, manager, third]));

    let (status, body) =
        replay_event(&app, "groups-patch-remove-member-default.json", &subst).await;
    assert_eq!(status, 204, "remove (default): {body}");
    assert_eq!(members_of(&app, &gid).await, set(&[user, third]));

    let (status, body) = replay_event(&app, "groups-patch-remove-member-aadopt.json", &subst).await;
    assert_eq!(status, 204, "remove (aadopt): {body}");
    assert_eq!(members_of(&app, &gid).await, set(&[third]));

    let (status, body) = replay_event(&app, "groups-patch-rename.json", &subst).await;
    assert_eq!(status, 204, "rename: {body}");
    assert_eq!(
        app.get(&format!("/Groups/{gid}")).await.body["displayName"],
        "Sales Team EMEA"
    );

    let (status, checked) = replay_event(&app, "groups-membership-check.json", &subst).await;
    assert_eq!(status, 200, "membership check: {checked}");
    assert_eq!(checked["totalResults"], 1);
    assert_eq!(checked["Resources"][0]["id"], json!(gid));

    let (status, body) = replay_event(&app, "groups-delete.json", &subst).await;
    assert_eq!(status, 204, "delete: {body}");
    app.get(&format!("/Groups/{gid}"))
        .await
        .assert_scim_error(404, None);
}
