//! Okta as it provisions (`shared/docs/okta.md`), in both integration styles:
//!
//! - PATCH-based (Okta's SCIM 2.0 app template): an existence check by
//!   `userName` before every create, Okta's exact create body (with
//!   `groups: []`, an unsolicited `password`, `locale` and Okta's
//!   20-character user id as `externalId`), deactivate/reactivate by a
//!   path-less replace (Okta never deletes users), and Push Groups: create
//!   empty, look up by `displayName`, rename by a path-less replace whose
//!   value carries the group's own `id`, member adds with `display` and no
//!   `type`, removes by a `members[value eq "…"]` filter, full replaces and
//!   deletes;
//! - wizard-built (PUT-based): GET the resource, PUT the whole object back
//!   (with `id`, `meta`, `schemas`, `emails[].display` and `groups` echoed),
//!   deactivation included, and `PUT /Groups/{id}` with the member list.
//!
//! Every request goes out as Okta sends it: `User-Agent: Okta SCIM Client
//! 1.0.0` and `Content-Type: application/json` (not scim+json), on GETs and
//! DELETEs too (Okta's test tooling sends one there). Refused requests must
//! answer a SCIM error whose `status` is a string and change nothing.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use scim_proto::provider::Provider;
use scim_store::calls::DirectoryStats as _;
use scim_store::users::UserStore as _;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, attrs, enc, listed_ids, member_values, set, spawn_app};

pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const OKTA_UA: &str = "Okta SCIM Client 1.0.0";
/// The unsolicited password of Okta's create body: must never be kept.
const PASSWORD: &str = "t1meMa$heen-0kta-Pw";
/// A non-existent id in the shape Okta's own test suite uses.
const OKTA_BOGUS_ID: &str = "010101001010101011001010101011";

type Snapshot = BTreeMap<(String, String), String>;

// --- Requests as Okta sends them --------------------------------------------

/// Sends a request as a non-Entra SCIM client does: `Authorization: Bearer
/// <token>`, the client's `User-Agent`, and `Content-Type:
/// application/json` on every request, bodiless ones included.
pub async fn send_as(
    app: &TestApp,
    user_agent: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app
        .http
        .request(method, app.url(path))
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", user_agent)
        .header("content-type", "application/json");
    if let Some(body) = body {
        req = req.body(serde_json::to_vec(body).expect("json"));
    }
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.expect("body read");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("response is not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    Reply {
        status,
        headers,
        body,
    }
}

async fn okta(app: &TestApp, method: &str, path: &str, body: Option<&Value>) -> Reply {
    send_as(app, OKTA_UA, &app.token, method, path, body).await
}

async fn okta_get(app: &TestApp, path: &str) -> Reply {
    okta(app, "GET", path, None).await
}

fn patch_body(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

/// Okta's existence check: `userName eq` with Okta's paging parameters.
fn user_lookup(user_name: &str) -> String {
    format!(
        "/Users?filter={}&startIndex=1&count=100",
        enc(&format!(r#"userName eq "{user_name}""#))
    )
}

/// Okta's Push Groups lookup by `displayName`.
fn group_lookup(display_name: &str) -> String {
    format!(
        "/Groups?filter={}&startIndex=1&count=100",
        enc(&format!(r#"displayName eq "{display_name}""#))
    )
}

/// Okta's create body for a user, as its SCIM 2.0 template sends it.
fn okta_user(user_name: &str, given: &str, family: &str, external_id: &str) -> Value {
    json!({
        "schemas": [CORE_USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": format!("{given} {family}"),
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "password": PASSWORD,
        "active": true
    })
}

/// An Okta-style 20-character user id (`00u` and 17 more characters).
fn okta_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("00u{}", &hex[..17])
}

/// Creates a user as Okta does and returns its id (asserting the 201).
async fn create_okta_user(app: &TestApp, user_name: &str) -> String {
    let reply = okta(
        app,
        "POST",
        "/Users",
        Some(&okta_user(user_name, "Jane", "Doe", &okta_id())),
    )
    .await;
    assert_eq!(reply.status, 201, "create {user_name}: {}", reply.body);
    reply.body["id"].as_str().expect("id").to_owned()
}

/// Creates a group as Okta's Push Groups does and returns its id.
async fn create_okta_group(app: &TestApp, display_name: &str) -> String {
    let reply = okta(
        app,
        "POST",
        "/Groups",
        Some(&json!({"schemas": [GROUP], "displayName": display_name, "members": []})),
    )
    .await;
    assert_eq!(reply.status, 201, "group create: {}", reply.body);
    reply.body["id"].as_str().expect("id").to_owned()
}

/// Okta's member value: `value` and `display`, no `type`.
fn okta_member(id: &str, display: &str) -> Value {
    json!({"value": id, "display": display})
}

// --- Reading back -----------------------------------------------------------

async fn get_user(app: &TestApp, id: &str) -> Value {
    let reply = okta_get(app, &format!("/Users/{id}")).await;
    assert_eq!(reply.status, 200, "GET /Users/{id}: {}", reply.body);
    reply.body
}

async fn get_group(app: &TestApp, id: &str) -> Value {
    let reply = okta_get(app, &format!("/Groups/{id}")).await;
    assert_eq!(reply.status, 200, "GET /Groups/{id}: {}", reply.body);
    reply.body
}

/// The member ids `GET /Groups/{id}` lists.
async fn members_of(app: &TestApp, group: &str) -> BTreeSet<String> {
    member_values(&get_group(app, group).await)
}

/// Asserts a SCIM error as Okta reads it: the Error URN, `status` as a
/// string, a `detail`.
#[track_caller]
pub fn assert_error(reply: &Reply, status: u16) {
    assert_eq!(
        reply.status, status,
        "unexpected status; body: {}",
        reply.body
    );
    assert_eq!(
        reply.body["schemas"],
        json!([ERROR]),
        "not a SCIM error: {}",
        reply.body
    );
    assert_eq!(
        reply.body["status"],
        json!(status.to_string()),
        "status must be a string: {}",
        reply.body
    );
    assert!(
        reply.body["detail"].is_string(),
        "a SCIM error carries a detail: {}",
        reply.body
    );
}

/// A PATCH that succeeded: `200` with the resource or `204` without a body.
#[track_caller]
fn assert_patched(reply: &Reply, id: &str, step: &str) {
    match reply.status {
        200 => assert_eq!(reply.body["id"], id, "{step}: {}", reply.body),
        204 => assert_eq!(reply.body, Value::Null, "{step}: a 204 has no body"),
        other => panic!("{step}: expected 200 or 204, got {other}: {}", reply.body),
    }
}

/// Whether any stored item holds `needle` anywhere.
fn snapshot_contains(snapshot: &Snapshot, needle: &str) -> bool {
    snapshot.values().any(|fields| fields.contains(needle))
}

// ---------------------------------------------------------------------------
// Users, PATCH-based integrations
// ---------------------------------------------------------------------------

#[tokio::test]
async fn okta_existence_check_for_an_absent_user_name_is_200_with_zero_results() {
    // Arrange: another user exists, so "none" is the filter's doing.
    let app = spawn_app().await;
    create_okta_user(&app, "someone.else@acme.com").await;

    // Act
    let reply = okta_get(&app, &user_lookup("jane@acme.com")).await;

    // Assert
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "schemas": [LIST],
            "totalResults": 0,
            "itemsPerPage": 0,
            "startIndex": 1,
            "Resources": []
        })
    );
}

#[tokio::test]
async fn okta_create_with_its_exact_body_is_201_with_the_full_resource() {
    // Arrange
    let app = spawn_app().await;
    let body = okta_user("jane@acme.com", "Jane", "Doe", "00ujl29u0le5T6Aj10h7");

    // Act
    let reply = okta(&app, "POST", "/Users", Some(&body)).await;

    // Assert
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    assert!(!id.is_empty());
    assert_eq!(
        attrs(&reply.body),
        json!({
            "schemas": [CORE_USER],
            "id": id,
            "externalId": "00ujl29u0le5T6Aj10h7",
            "userName": "jane@acme.com",
            "name": {"givenName": "Jane", "familyName": "Doe"},
            "emails": [{"primary": true, "value": "jane@acme.com", "type": "work"}],
            "displayName": "Jane Doe",
            "locale": "en-US",
            "active": true
        })
    );
    assert_eq!(reply.body["meta"]["resourceType"], "User");
    let location = app.url(&format!("/Users/{id}"));
    assert_eq!(reply.body["meta"]["location"], json!(location));
    assert_eq!(reply.header("location"), Some(location.as_str()));
    assert_eq!(get_user(&app, &id).await, reply.body, "GET echoes the 201");
}

#[tokio::test]
async fn okta_unsolicited_password_is_neither_returned_nor_stored() {
    // Arrange
    let app = spawn_app().await;
    let body = okta_user("jane@acme.com", "Jane", "Doe", "00ujl29u0le5T6Aj10h7");

    // Act
    let created = okta(&app, "POST", "/Users", Some(&body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let fetched = get_user(&app, &id).await;
    let asked = okta_get(&app, &format!("/Users/{id}?attributes=password,userName")).await;
    let listed = okta_get(&app, &user_lookup("jane@acme.com")).await;
    let snapshot = app.snapshot().await;

    // Assert
    for (what, doc) in [
        ("201", &created.body),
        ("GET", &fetched),
        ("GET ?attributes=password", &asked.body),
        ("lookup", &listed.body),
    ] {
        assert!(doc.get("password").is_none(), "{what}: {doc}");
        assert!(!doc.to_string().contains(PASSWORD), "{what}: {doc}");
    }
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert_eq!(listed.body["totalResults"], 1, "{}", listed.body);
    assert!(!snapshot.is_empty(), "the user is stored");
    assert!(
        !snapshot_contains(&snapshot, PASSWORD),
        "the password is stored: {snapshot:?}"
    );
}

#[tokio::test]
async fn okta_existence_check_after_create_finds_exactly_the_created_user() {
    // Arrange
    let app = spawn_app().await;
    let id = create_okta_user(&app, "jane@acme.com").await;
    create_okta_user(&app, "john@acme.com").await;

    // Act
    let reply = okta_get(&app, &user_lookup("jane@acme.com")).await;

    // Assert
    assert_eq!(listed_ids(&reply), vec![id.clone()]);
    assert_eq!(reply.body["totalResults"], 1);
    assert_eq!(reply.body["itemsPerPage"], 1);
    assert_eq!(reply.body["startIndex"], 1);
    assert_eq!(reply.body["Resources"][0], get_user(&app, &id).await);
}

#[tokio::test]
async fn okta_create_of_an_existing_user_name_is_a_409_scim_error_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    create_okta_user(&app, "jane@acme.com").await;
    let before = app.snapshot().await;

    // Act: another Okta user with the same userName.
    let reply = okta(
        &app,
        "POST",
        "/Users",
        Some(&okta_user("jane@acme.com", "Janet", "Other", &okta_id())),
    )
    .await;

    // Assert
    assert_error(&reply, 409);
    assert_eq!(reply.body["scimType"], "uniqueness", "{}", reply.body);
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused create wrote nothing"
    );
}

#[tokio::test]
async fn okta_deactivates_and_reactivates_by_pathless_replace_keeping_id_and_other_updates() {
    // Arrange: a user, then an unrelated update Okta made earlier.
    let app = spawn_app().await;
    let id = create_okta_user(&app, "jane@acme.com").await;
    let path = format!("/Users/{id}");
    let retitled = okta(
        &app,
        "PATCH",
        &path,
        Some(&patch_body(
            json!([{"op": "replace", "value": {"title": "Engineer"}}]),
        )),
    )
    .await;
    assert_patched(&retitled, &id, "retitle");
    let before = get_user(&app, &id).await;
    assert_eq!(before["title"], "Engineer");

    // Act
    let deactivated = okta(
        &app,
        "PATCH",
        &path,
        Some(&patch_body(
            json!([{"op": "replace", "value": {"active": false}}]),
        )),
    )
    .await;
    let while_inactive = get_user(&app, &id).await;
    let reactivated = okta(
        &app,
        "PATCH",
        &path,
        Some(&patch_body(
            json!([{"op": "replace", "value": {"active": true}}]),
        )),
    )
    .await;
    let after = get_user(&app, &id).await;

    // Assert
    assert_patched(&deactivated, &id, "deactivate");
    if deactivated.status == 200 {
        assert_eq!(deactivated.body["active"], json!(false));
    }
    let mut expected = attrs(&before);
    expected["active"] = json!(false);
    assert_eq!(attrs(&while_inactive), expected, "only `active` changed");
    assert_patched(&reactivated, &id, "reactivate");
    assert_eq!(attrs(&after), attrs(&before), "back as it was, same id");
}

#[tokio::test]
async fn okta_never_deletes_so_unassign_and_reassign_is_one_user_deactivated_then_reactivated() {
    // Arrange
    let app = spawn_app().await;
    let id = create_okta_user(&app, "jane@acme.com").await;
    let path = format!("/Users/{id}");
    let deactivate = patch_body(json!([{"op": "replace", "value": {"active": false}}]));
    let reactivate = patch_body(json!([{"op": "replace", "value": {"active": true}}]));

    // Act: unassigned (deactivated), then reassigned: Okta's existence
    // check finds the inactive user, so it reactivates rather than creates.
    let unassigned = okta(&app, "PATCH", &path, Some(&deactivate)).await;
    let lookup = okta_get(&app, &user_lookup("jane@acme.com")).await;
    let reassigned = okta(&app, "PATCH", &path, Some(&reactivate)).await;
    let all = okta_get(&app, "/Users?startIndex=1&count=100").await;

    // Assert
    assert_patched(&unassigned, &id, "unassign");
    assert_eq!(listed_ids(&lookup), vec![id.clone()], "still found");
    assert_eq!(lookup.body["Resources"][0]["active"], json!(false));
    assert_patched(&reassigned, &id, "reassign");
    assert_eq!(get_user(&app, &id).await["active"], json!(true));
    assert_eq!(listed_ids(&all), vec![id], "one user, never a second one");
}

// ---------------------------------------------------------------------------
// Groups (Push Groups), PATCH-based integrations
// ---------------------------------------------------------------------------

#[tokio::test]
async fn okta_push_group_create_with_empty_members_is_201_and_found_by_display_name() {
    // Arrange
    let app = spawn_app().await;
    let absent = okta_get(&app, &group_lookup("Engineering")).await;

    // Act
    let created = okta(
        &app,
        "POST",
        "/Groups",
        Some(&json!({"schemas": [GROUP], "displayName": "Engineering", "members": []})),
    )
    .await;
    let found = okta_get(&app, &group_lookup("Engineering")).await;

    // Assert
    assert_eq!(absent.status, 200, "{}", absent.body);
    assert_eq!(absent.body["totalResults"], 0);
    assert_eq!(created.status, 201, "{}", created.body);
    let gid = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(created.body["displayName"], "Engineering");
    assert_eq!(created.body["schemas"], json!([GROUP]));
    assert!(
        created.body.get("members").is_none() || created.body["members"] == json!([]),
        "no members: {}",
        created.body
    );
    assert_eq!(listed_ids(&found), vec![gid]);
    assert_eq!(found.body["totalResults"], 1);
}

#[tokio::test]
async fn okta_rename_with_its_own_id_in_the_value_is_accepted() {
    // Arrange: a group with a member, so the rename must keep it.
    let app = spawn_app().await;
    let uid = create_okta_user(&app, "jane@acme.com").await;
    let gid = create_okta_group(&app, "Engineering").await;
    let add = patch_body(json!([
        {"op": "add", "path": "members", "value": [okta_member(&uid, "jane@acme.com")]}
    ]));
    let added = okta(&app, "PATCH", &format!("/Groups/{gid}"), Some(&add)).await;
    assert_patched(&added, &gid, "seed member");

    // Act
    let reply = okta(
        &app,
        "PATCH",
        &format!("/Groups/{gid}"),
        Some(&patch_body(json!([
            {"op": "replace", "value": {"id": gid, "displayName": "Engineering EMEA"}}
        ]))),
    )
    .await;

    // Assert
    assert_patched(&reply, &gid, "rename with own id");
    let group = get_group(&app, &gid).await;
    assert_eq!(group["id"], json!(gid), "the id is unchanged");
    assert_eq!(group["displayName"], "Engineering EMEA");
    assert_eq!(members_of(&app, &gid).await, set(&[&uid]), "members kept");
    let by_new = okta_get(&app, &group_lookup("Engineering EMEA")).await;
    assert_eq!(listed_ids(&by_new), vec![gid.clone()]);
    let by_old = okta_get(&app, &group_lookup("Engineering")).await;
    assert_eq!(by_old.body["totalResults"], 0, "{}", by_old.body);
}

#[tokio::test]
async fn okta_membership_update_preceded_by_a_replace_with_the_groups_own_id_is_accepted() {
    // Arrange
    let app = spawn_app().await;
    let uid = create_okta_user(&app, "jane@acme.com").await;
    let gid = create_okta_group(&app, "Engineering").await;

    // Act: Okta restates the group (own id, same name), then adds.
    let reply = okta(
        &app,
        "PATCH",
        &format!("/Groups/{gid}"),
        Some(&patch_body(json!([
            {"op": "replace", "value": {"id": gid, "displayName": "Engineering"}},
            {"op": "add", "path": "members", "value": [okta_member(&uid, "jane@acme.com")]}
        ]))),
    )
    .await;

    // Assert
    assert_patched(&reply, &gid, "restate + add");
    assert_eq!(get_group(&app, &gid).await["displayName"], "Engineering");
    assert_eq!(members_of(&app, &gid).await, set(&[&uid]));
}

#[tokio::test]
async fn okta_rename_with_a_different_id_in_the_value_is_a_400_scim_error_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let gid = create_okta_group(&app, "Engineering").await;
    let other = create_okta_group(&app, "Sales").await;
    let before = app.snapshot().await;

    // Act: another group's id, and an id that is no group's at all.
    let mut replies = Vec::new();
    for foreign in [other.clone(), uuid::Uuid::new_v4().to_string()] {
        replies.push(
            okta(
                &app,
                "PATCH",
                &format!("/Groups/{gid}"),
                Some(&patch_body(json!([
                    {"op": "replace", "value": {"id": foreign, "displayName": "Engineering EMEA"}}
                ]))),
            )
            .await,
        );
    }

    // Assert
    for reply in &replies {
        assert_error(reply, 400);
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused rename wrote nothing"
    );
    assert_eq!(get_group(&app, &gid).await["displayName"], "Engineering");
    assert_eq!(get_group(&app, &other).await["displayName"], "Sales");
}

#[tokio::test]
async fn okta_adds_a_member_with_display_and_no_type() {
    // Arrange
    let app = spawn_app().await;
    let u1 = create_okta_user(&app, "jane@acme.com").await;
    let u2 = create_okta_user(&app, "john@acme.com").await;
    let gid = create_okta_group(&app, "Engineering").await;

    // Act
    let reply = okta(
        &app,
        "PATCH",
        &format!("/Groups/{gid}"),
        Some(&patch_body(json!([
            {"op": "add", "path": "members", "value": [
                okta_member(&u1, "jane@acme.com"),
                okta_member(&u2, "john@acme.com")
            ]}
        ]))),
    )
    .await;

    // Assert
    assert_patched(&reply, &gid, "add");
    assert_eq!(members_of(&app, &gid).await, set(&[&u1, &u2]));
    let user = get_user(&app, &u1).await;
    let groups: Vec<&Value> = user["groups"].as_array().into_iter().flatten().collect();
    assert_eq!(groups.len(), 1, "{user}");
    assert_eq!(groups[0]["value"], json!(gid));
}

#[tokio::test]
async fn okta_removes_a_member_by_a_value_filter_path() {
    // Arrange
    let app = spawn_app().await;
    let u1 = create_okta_user(&app, "jane@acme.com").await;
    let u2 = create_okta_user(&app, "john@acme.com").await;
    let gid = create_okta_group(&app, "Engineering").await;
    let add = patch_body(json!([{"op": "add", "path": "members", "value": [
        okta_member(&u1, "jane@acme.com"), okta_member(&u2, "john@acme.com")
    ]}]));
    assert_patched(
        &okta(&app, "PATCH", &format!("/Groups/{gid}"), Some(&add)).await,
        &gid,
        "seed",
    );

    // Act
    let reply = okta(
        &app,
        "PATCH",
        &format!("/Groups/{gid}"),
        Some(&patch_body(json!([
            {"op": "remove", "path": format!("members[value eq \"{u1}\"]")}
        ]))),
    )
    .await;

    // Assert
    assert_patched(&reply, &gid, "remove");
    assert_eq!(members_of(&app, &gid).await, set(&[&u2]));
    assert_eq!(
        get_user(&app, &u1).await["active"],
        json!(true),
        "user kept"
    );
}

#[tokio::test]
async fn okta_adds_and_removes_members_in_one_request() {
    // Arrange
    let app = spawn_app().await;
    let u1 = create_okta_user(&app, "jane@acme.com").await;
    let u2 = create_okta_user(&app, "john@acme.com").await;
    let u3 = create_okta_user(&app, "joan@acme.com").await;
    let gid = create_okta_group(&app, "Engineering").await;
    let add = patch_body(json!([{"op": "add", "path": "members", "value": [
        okta_member(&u1, "jane@acme.com"), okta_member(&u2, "john@acme.com")
    ]}]));
    assert_patched(
        &okta(&app, "PATCH", &format!("/Groups/{gid}"), Some(&add)).await,
        &gid,
        "seed",
    );

    // Act
    let reply = okta(
        &app,
        "PATCH",
        &format!("/Groups/{gid}"),
        Some(&patch_body(json!([
            {"op": "add", "path": "members", "value": [okta_member(&u3, "joan@acme.com")]},
            {"op": "remove", "path": format!("members[value eq \"{u1}\"]")}
        ]))),
    )
    .await;

    // Assert
    assert_patched(&reply, &gid, "add + remove");
    assert_eq!(members_of(&app, &gid).await, set(&[&u2, &u3]));
}

#[tokio::test]
async fn okta_replaces_all_members_with_a_pathed_replace() {
    // Arrange
    let app = spawn_app().await;
    let u1 = create_okta_user(&app, "jane@acme.com").await;
    let u2 = create_okta_user(&app, "john@acme.com").await;
    let u3 = create_okta_user(&app, "joan@acme.com").await;
    let gid = create_okta_group(&app, "Engineering").await;
    let add = patch_body(json!([{"op": "add", "path": "members", "value": [
        okta_member(&u1, "jane@acme.com"), okta_member(&u2, "john@acme.com")
    ]}]));
    assert_patched(
        &okta(&app, "PATCH", &format!("/Groups/{gid}"), Some(&add)).await,
        &gid,
        "seed",
    );

    // Act
    let reply = okta(
        &app,
        "PATCH",
        &format!("/Groups/{gid}"),
        Some(&patch_body(json!([
            {"op": "replace", "path": "members", "value": [
                okta_member(&u2, "john@acme.com"), okta_member(&u3, "joan@acme.com")
            ]}
        ]))),
    )
    .await;

    // Assert
    assert_patched(&reply, &gid, "replace members");
    assert_eq!(members_of(&app, &gid).await, set(&[&u2, &u3]));
    assert!(
        get_user(&app, &u1).await["groups"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "the replaced-out member lost the group"
    );
}

#[tokio::test]
async fn okta_deletes_a_pushed_group_with_204_and_it_is_gone_but_its_users_stay() {
    // Arrange
    let app = spawn_app().await;
    let uid = create_okta_user(&app, "jane@acme.com").await;
    let gid = create_okta_group(&app, "Engineering").await;
    let add = patch_body(json!([
        {"op": "add", "path": "members", "value": [okta_member(&uid, "jane@acme.com")]}
    ]));
    assert_patched(
        &okta(&app, "PATCH", &format!("/Groups/{gid}"), Some(&add)).await,
        &gid,
        "seed",
    );

    // Act
    let reply = okta(&app, "DELETE", &format!("/Groups/{gid}"), None).await;

    // Assert
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(reply.body, Value::Null);
    assert_error(&okta_get(&app, &format!("/Groups/{gid}")).await, 404);
    let found = okta_get(&app, &group_lookup("Engineering")).await;
    assert_eq!(found.body["totalResults"], 0, "{}", found.body);
    let user = get_user(&app, &uid).await;
    assert_eq!(user["active"], json!(true));
    assert!(
        user["groups"].as_array().is_none_or(Vec::is_empty),
        "no group left on the user: {user}"
    );
    let snapshot = app.snapshot().await;
    assert!(
        !snapshot.keys().any(|(pk, _)| pk.contains(&gid)),
        "nothing of the group is left: {snapshot:?}"
    );
}

// ---------------------------------------------------------------------------
// Wizard-built (PUT-based) integrations
// ---------------------------------------------------------------------------

/// What Okta's wizard PUTs after a GET: the object as returned, with
/// `emails[].display` and `groups` as Okta's profile adds them.
fn as_okta_echoes(fetched: &Value) -> Value {
    let mut body = fetched.clone();
    if let Some(emails) = body["emails"].as_array_mut() {
        for email in emails {
            let value = email["value"].clone();
            email["display"] = value;
        }
    }
    if body.get("groups").is_none() {
        body["groups"] = json!([]);
    }
    body
}

/// `emails` without `display` (a sub-attribute a server may keep or drop).
fn without_email_display(resource: &Value) -> Value {
    let mut v = attrs(resource);
    if let Some(emails) = v["emails"].as_array_mut() {
        for email in emails {
            email
                .as_object_mut()
                .expect("email object")
                .remove("display");
        }
    }
    v
}

#[tokio::test]
async fn okta_put_of_the_whole_fetched_user_with_a_change_is_200_and_applies_it() {
    // Arrange
    let app = spawn_app().await;
    let id = create_okta_user(&app, "jane@acme.com").await;
    let fetched = get_user(&app, &id).await;
    let mut body = as_okta_echoes(&fetched);
    body["name"]["familyName"] = json!("Smith");
    body["displayName"] = json!("Jane Smith");

    // Act
    let reply = okta(&app, "PUT", &format!("/Users/{id}"), Some(&body)).await;

    // Assert
    assert_eq!(reply.status, 200, "{}", reply.body);
    let after = get_user(&app, &id).await;
    assert_eq!(reply.body, after, "the 200 is the stored resource");
    let mut expected = attrs(&fetched);
    expected["name"]["familyName"] = json!("Smith");
    expected["displayName"] = json!("Jane Smith");
    assert_eq!(without_email_display(&after), expected);
    assert_eq!(after["meta"]["created"], fetched["meta"]["created"]);
}

#[tokio::test]
async fn okta_put_echoing_the_groups_of_a_member_is_200_and_keeps_its_memberships() {
    // Arrange: the user is in a group, so GET returns a non-empty `groups`.
    let app = spawn_app().await;
    let uid = create_okta_user(&app, "jane@acme.com").await;
    let gid = create_okta_group(&app, "Engineering").await;
    let add = patch_body(json!([
        {"op": "add", "path": "members", "value": [okta_member(&uid, "jane@acme.com")]}
    ]));
    assert_patched(
        &okta(&app, "PATCH", &format!("/Groups/{gid}"), Some(&add)).await,
        &gid,
        "seed",
    );
    let fetched = get_user(&app, &uid).await;
    assert_eq!(fetched["groups"][0]["value"], json!(gid), "{fetched}");
    let mut body = as_okta_echoes(&fetched);
    body["title"] = json!("Staff Engineer");

    // Act
    let reply = okta(&app, "PUT", &format!("/Users/{uid}"), Some(&body)).await;

    // Assert
    assert_eq!(reply.status, 200, "{}", reply.body);
    let after = get_user(&app, &uid).await;
    assert_eq!(after["title"], "Staff Engineer");
    assert_eq!(after["groups"], fetched["groups"], "groups are read-only");
    assert_eq!(members_of(&app, &gid).await, set(&[&uid]));
}

#[tokio::test]
async fn okta_deactivates_and_reactivates_with_puts_of_the_whole_user() {
    // Arrange
    let app = spawn_app().await;
    let id = create_okta_user(&app, "jane@acme.com").await;
    let path = format!("/Users/{id}");
    let fetched = get_user(&app, &id).await;

    // Act
    let mut body = as_okta_echoes(&fetched);
    body["active"] = json!(false);
    let deactivated = okta(&app, "PUT", &path, Some(&body)).await;
    let inactive = get_user(&app, &id).await;
    let mut body = as_okta_echoes(&inactive);
    body["active"] = json!(true);
    let reactivated = okta(&app, "PUT", &path, Some(&body)).await;
    let after = get_user(&app, &id).await;

    // Assert
    assert_eq!(deactivated.status, 200, "{}", deactivated.body);
    assert_eq!(deactivated.body["active"], json!(false));
    let mut expected = attrs(&fetched);
    expected["active"] = json!(false);
    assert_eq!(without_email_display(&inactive), expected);
    assert_eq!(reactivated.status, 200, "{}", reactivated.body);
    assert_eq!(without_email_display(&after), attrs(&fetched));
    assert_eq!(after["id"], json!(id));
}

#[tokio::test]
async fn okta_put_of_a_group_with_display_name_and_members_replaces_both() {
    // Arrange
    let app = spawn_app().await;
    let u1 = create_okta_user(&app, "jane@acme.com").await;
    let u2 = create_okta_user(&app, "john@acme.com").await;
    let u3 = create_okta_user(&app, "joan@acme.com").await;
    let gid = create_okta_group(&app, "Engineering").await;
    let put = |name: &str, members: Vec<Value>| json!({"schemas": [GROUP], "displayName": name, "members": members});

    // Act
    let first = okta(
        &app,
        "PUT",
        &format!("/Groups/{gid}"),
        Some(&put(
            "Engineering EMEA",
            vec![
                okta_member(&u1, "jane@acme.com"),
                okta_member(&u2, "john@acme.com"),
            ],
        )),
    )
    .await;
    let after_first = members_of(&app, &gid).await;
    let second = okta(
        &app,
        "PUT",
        &format!("/Groups/{gid}"),
        Some(&put(
            "Engineering EMEA",
            vec![
                okta_member(&u2, "john@acme.com"),
                okta_member(&u3, "joan@acme.com"),
            ],
        )),
    )
    .await;

    // Assert
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["id"], json!(gid));
    assert_eq!(first.body["displayName"], "Engineering EMEA");
    assert_eq!(after_first, set(&[&u1, &u2]));
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(members_of(&app, &gid).await, set(&[&u2, &u3]));
    assert_eq!(
        get_group(&app, &gid).await["displayName"],
        "Engineering EMEA"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn okta_concurrent_puts_of_one_user_without_if_match_all_succeed() {
    // Arrange: Okta updates a user from several jobs at once, each a GET
    // then a PUT without If-Match: a lost version race must be retried.
    let app = spawn_app().await;
    let id = create_okta_user(&app, "jane@acme.com").await;
    let fetched = get_user(&app, &id).await;
    let titles: Vec<String> = (0..8).map(|i| format!("Title {i}")).collect();
    let bodies: Vec<Value> = titles
        .iter()
        .map(|t| {
            let mut body = as_okta_echoes(&fetched);
            body["title"] = json!(t);
            body
        })
        .collect();
    let path = format!("/Users/{id}");

    // Act
    let replies = join_all(bodies.iter().map(|b| okta(&app, "PUT", &path, Some(b)))).await;

    // Assert
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every PUT succeeds: {statuses:?}; {:?}",
        replies
            .iter()
            .map(|r| &r.body["detail"])
            .collect::<Vec<_>>()
    );
    let title = get_user(&app, &id).await["title"].clone();
    assert!(
        titles.iter().any(|t| json!(t) == title),
        "one of the PUTs is the last: {title}"
    );
}

// ---------------------------------------------------------------------------
// Paging, errors, headers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn okta_pages_of_100_from_start_index_101_are_stable_and_cover_everyone_once() {
    // Arrange: 130 users, stored directly (faster than 130 POSTs).
    let app = spawn_app().await;
    let mut created = BTreeSet::new();
    for n in 0..130 {
        let user = scim_proto::resource::UserResource::from_request(okta_user(
            &format!("user{n:03}@acme.com"),
            "User",
            &format!("N{n:03}"),
            &okta_id(),
        ))
        .expect("valid user");
        let stored = app
            .stores
            .users
            .create(
                &app.tenant,
                user,
                scim_store::activity::Origin::internal(scim_store::activity::Operation::Create),
            )
            .await
            .expect("stored");
        created.insert(stored.id.as_str().to_owned());
    }

    // Act
    let first = okta_get(&app, "/Users?startIndex=1&count=100").await;
    let second = okta_get(&app, "/Users?startIndex=101&count=100").await;
    let first_again = okta_get(&app, "/Users?startIndex=1&count=100").await;
    let second_again = okta_get(&app, "/Users?startIndex=101&count=100").await;

    // Assert
    for (page, start, len) in [(&first, 1, 100), (&second, 101, 30)] {
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body["totalResults"].is_u64(),
            "{}",
            page.body["totalResults"]
        );
        assert!(
            page.body["itemsPerPage"].is_u64(),
            "{}",
            page.body["itemsPerPage"]
        );
        assert!(
            page.body["startIndex"].is_u64(),
            "{}",
            page.body["startIndex"]
        );
        assert_eq!(page.body["totalResults"], 130);
        assert_eq!(page.body["itemsPerPage"], len);
        assert_eq!(page.body["startIndex"], start);
        assert_eq!(listed_ids(page).len(), len);
    }
    assert_eq!(listed_ids(&first_again), listed_ids(&first), "stable");
    assert_eq!(listed_ids(&second_again), listed_ids(&second), "stable");
    let seen: Vec<String> = listed_ids(&first)
        .into_iter()
        .chain(listed_ids(&second))
        .collect();
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no user on both pages");
    assert_eq!(unique, created, "no user missing");
}

#[tokio::test]
async fn okta_non_uuid_id_is_a_404_scim_error_on_every_verb_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    create_okta_user(&app, "jane@acme.com").await;
    create_okta_group(&app, "Engineering").await;
    let before = app.snapshot().await;
    let user = okta_user("ghost@acme.com", "Ghost", "User", &okta_id());
    let group = json!({"schemas": [GROUP], "displayName": "Ghosts", "members": []});
    let deactivate = patch_body(json!([{"op": "replace", "value": {"active": false}}]));
    let rename = patch_body(json!([{"op": "replace", "value": {"displayName": "X"}}]));

    // Act
    let mut replies = Vec::new();
    for (method, resource, body) in [
        ("GET", "Users", None),
        ("PUT", "Users", Some(&user)),
        ("PATCH", "Users", Some(&deactivate)),
        ("DELETE", "Users", None),
        ("GET", "Groups", None),
        ("PUT", "Groups", Some(&group)),
        ("PATCH", "Groups", Some(&rename)),
        ("DELETE", "Groups", None),
    ] {
        let reply = okta(&app, method, &format!("/{resource}/{OKTA_BOGUS_ID}"), body).await;
        replies.push((format!("{method} /{resource}"), reply));
    }

    // Assert
    for (what, reply) in &replies {
        assert_eq!(reply.status, 404, "{what}: {}", reply.body);
        assert_error(reply, 404);
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn okta_unknown_uuid_is_a_404_scim_error() {
    // Arrange
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4();

    // Act
    let user = okta_get(&app, &format!("/Users/{id}")).await;
    let group = okta_get(&app, &format!("/Groups/{id}")).await;

    // Assert
    assert_error(&user, 404);
    assert_error(&group, 404);
}

#[tokio::test]
async fn okta_with_a_bad_token_gets_a_401_scim_error_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let id = create_okta_user(&app, "jane@acme.com").await;
    let before = app.snapshot().await;
    let bad = format!("{}x", app.token);
    let body = okta_user("john@acme.com", "John", "Doe", &okta_id());
    let deactivate = patch_body(json!([{"op": "replace", "value": {"active": false}}]));

    // Act
    let replies = [
        send_as(
            &app,
            OKTA_UA,
            &bad,
            "GET",
            &user_lookup("jane@acme.com"),
            None,
        )
        .await,
        send_as(&app, OKTA_UA, &bad, "POST", "/Users", Some(&body)).await,
        send_as(
            &app,
            OKTA_UA,
            &bad,
            "PATCH",
            &format!("/Users/{id}"),
            Some(&deactivate),
        )
        .await,
        send_as(&app, OKTA_UA, "not-a-token", "GET", "/Users", None).await,
    ];

    // Assert
    for reply in &replies {
        assert_error(reply, 401);
    }
    assert_eq!(app.snapshot().await, before);
    assert_eq!(get_user(&app, &id).await["active"], json!(true));
}

#[tokio::test]
async fn okta_bodies_sent_as_application_json_are_read_like_scim_json() {
    // Arrange: the same create, once per content type.
    let app = spawn_app().await;
    let as_json = okta_user("jane@acme.com", "Jane", "Doe", &okta_id());
    let as_scim = okta_user("john@acme.com", "John", "Doe", &okta_id());

    // Act
    let json_reply = okta(&app, "POST", "/Users", Some(&as_json)).await;
    let scim_reply = app
        .send_with(
            "POST",
            "/Users",
            Some(&as_scim),
            &app.token,
            &[("user-agent", OKTA_UA)],
        )
        .await;

    // Assert
    assert_eq!(json_reply.status, 201, "{}", json_reply.body);
    assert_eq!(scim_reply.status, 201, "{}", scim_reply.body);
    let strip = |v: &Value| {
        let mut v = attrs(v);
        for k in [
            "id",
            "userName",
            "externalId",
            "emails",
            "name",
            "displayName",
        ] {
            v.as_object_mut().expect("object").remove(k);
        }
        v
    };
    assert_eq!(strip(&json_reply.body), strip(&scim_reply.body));
    assert_eq!(json_reply.body["userName"], "jane@acme.com");
    assert!(
        json_reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/scim+json")),
        "answers are SCIM JSON whatever the request's type"
    );
}

#[tokio::test]
async fn okta_requests_are_recorded_as_okta_calls_from_its_user_agent() {
    // Arrange
    let app = spawn_app().await;

    // Act: Okta's first request of the run.
    let reply = okta_get(&app, &user_lookup("jane@acme.com")).await;

    // Assert
    assert_eq!(reply.status, 200, "{}", reply.body);
    let summary = app
        .stores
        .stats
        .summary(&app.tenant)
        .await
        .expect("summary");
    let call = summary.last_call.expect("the call is recorded");
    assert_eq!(call.provider, Provider::Okta);
}
