//! OneLogin, JumpCloud and PingOne/PingFederate as they provision
//! (`shared/docs/okta.md`, "OneLogin", "JumpCloud", "PingOne /
//! PingFederate"):
//!
//! - OneLogin: bodies from an admin-edited JSON template (the non-standard
//!   core URN `urn:scim:schemas:core:2.0`, `emails` as one object, `active`
//!   as the string `"true"`), lookups with `+` for spaces and a trailing
//!   `&`, updates by `PUT`, group membership by PATCH;
//! - JumpCloud: Test Connection (create a test user and a test group, delete
//!   both, repeatably), member add/remove with `path:"members"` and a value
//!   list, one replace per attribute with a dotted path;
//! - PingOne/PingFederate: full `PUT` updates of users, groups matched by
//!   listing them, filters with operators and attribute names in any case
//!   (RFC 7644 §3.4.2.2).
//!
//! Requests go out with each provider's `User-Agent` and `Content-Type:
//! application/json`. Every refused variant answers a SCIM error with a
//! string `status` and changes nothing.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, attrs, enc, listed_ids, members_of, set, spawn_app};
use crate::okta::{CORE_USER, GROUP, PATCH_OP, assert_error, send_as};

const ONELOGIN_UA: &str = "OneLogin SCIM";
const JUMPCLOUD_UA: &str = "JumpCloud SCIM Client";
const PINGONE_UA: &str = "PingOne-SCIM/1.0";
const PINGFEDERATE_UA: &str = "PingFederate";
/// The core URN as OneLogin's template may spell it.
const ONELOGIN_CORE: &str = "urn:scim:schemas:core:2.0";

async fn call(app: &TestApp, ua: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
    send_as(app, ua, &app.token, method, path, body).await
}

fn patch_body(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

async fn get_user(app: &TestApp, id: &str) -> Value {
    let reply = app.get(&format!("/Users/{id}")).await;
    assert_eq!(reply.status, 200, "GET /Users/{id}: {}", reply.body);
    reply.body
}

/// A standard user body, as JumpCloud and PingFederate send one.
fn standard_user(user_name: &str, given: &str, family: &str) -> Value {
    json!({
        "schemas": [CORE_USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "displayName": format!("{given} {family}"),
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "active": true
    })
}

async fn create_as(app: &TestApp, ua: &str, body: &Value) -> String {
    let reply = call(app, ua, "POST", "/Users", Some(body)).await;
    assert_eq!(reply.status, 201, "create: {}", reply.body);
    reply.body["id"].as_str().expect("id").to_owned()
}

async fn create_group_as(app: &TestApp, ua: &str, display_name: &str) -> String {
    let reply = call(
        app,
        ua,
        "POST",
        "/Groups",
        Some(&json!({"schemas": [GROUP], "displayName": display_name})),
    )
    .await;
    assert_eq!(reply.status, 201, "group create: {}", reply.body);
    reply.body["id"].as_str().expect("id").to_owned()
}

// ---------------------------------------------------------------------------
// OneLogin
// ---------------------------------------------------------------------------

/// A body from a OneLogin SCIM JSON template an admin edited: the
/// non-standard core URN, `emails` as one object, `active` as a string.
fn onelogin_user(user_name: &str, given: &str, family: &str, active: &str) -> Value {
    json!({
        "schemas": [ONELOGIN_CORE],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": {"value": user_name, "type": "work", "primary": true},
        "active": active
    })
}

#[tokio::test]
async fn onelogin_create_from_an_edited_template_is_201_with_a_standard_resource() {
    // Arrange
    let app = spawn_app().await;
    let body = onelogin_user("jane@acme.com", "Jane", "Doe", "true");

    // Act
    let reply = call(&app, ONELOGIN_UA, "POST", "/Users", Some(&body)).await;

    // Assert
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    assert!(
        reply.body["schemas"]
            .as_array()
            .is_some_and(|s| s.contains(&json!(CORE_USER))),
        "the resource names the standard core URN: {}",
        reply.body
    );
    assert_eq!(reply.body["userName"], "jane@acme.com");
    assert_eq!(
        reply.body["name"],
        json!({"givenName": "Jane", "familyName": "Doe"})
    );
    assert_eq!(
        reply.body["emails"],
        json!([{"value": "jane@acme.com", "type": "work", "primary": true}]),
        "one email object becomes a one-element list"
    );
    assert_eq!(reply.body["active"], json!(true), "a JSON boolean");
    assert_eq!(get_user(&app, &id).await, reply.body);
}

#[tokio::test]
async fn onelogin_lookup_with_plus_spaces_and_a_trailing_ampersand_finds_the_user() {
    // Arrange
    let app = spawn_app().await;
    let id = create_as(
        &app,
        ONELOGIN_UA,
        &onelogin_user("jane@acme.com", "Jane", "Doe", "true"),
    )
    .await;
    create_as(
        &app,
        ONELOGIN_UA,
        &onelogin_user("john@acme.com", "John", "Doe", "true"),
    )
    .await;

    // Act
    let found = call(
        &app,
        ONELOGIN_UA,
        "GET",
        r#"/Users?filter=userName+eq+"jane@acme.com"&"#,
        None,
    )
    .await;
    let absent = call(
        &app,
        ONELOGIN_UA,
        "GET",
        r#"/Users?filter=userName+eq+"nobody@acme.com"&"#,
        None,
    )
    .await;

    // Assert
    assert_eq!(listed_ids(&found), vec![id]);
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(listed_ids(&absent), Vec::<String>::new());
    assert_eq!(absent.body["totalResults"], 0);
}

#[tokio::test]
async fn onelogin_put_from_its_template_updates_and_deactivates_the_user() {
    // Arrange
    let app = spawn_app().await;
    let id = create_as(
        &app,
        ONELOGIN_UA,
        &onelogin_user("jane@acme.com", "Jane", "Doe", "true"),
    )
    .await;
    let path = format!("/Users/{id}");

    // Act
    let renamed = call(
        &app,
        ONELOGIN_UA,
        "PUT",
        &path,
        Some(&onelogin_user("jane@acme.com", "Jane", "Smith", "true")),
    )
    .await;
    let after_rename = get_user(&app, &id).await;
    let deactivated = call(
        &app,
        ONELOGIN_UA,
        "PUT",
        &path,
        Some(&onelogin_user("jane@acme.com", "Jane", "Smith", "false")),
    )
    .await;

    // Assert
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body, after_rename);
    assert_eq!(after_rename["name"]["familyName"], "Smith");
    assert_eq!(after_rename["active"], json!(true));
    assert_eq!(
        after_rename["emails"],
        json!([{"value": "jane@acme.com", "type": "work", "primary": true}])
    );
    assert_eq!(deactivated.status, 200, "{}", deactivated.body);
    let mut expected = attrs(&after_rename);
    expected["active"] = json!(false);
    assert_eq!(attrs(&get_user(&app, &id).await), expected);
}

#[tokio::test]
async fn onelogin_adds_and_removes_group_members_by_patch() {
    // Arrange
    let app = spawn_app().await;
    let u1 = create_as(
        &app,
        ONELOGIN_UA,
        &onelogin_user("jane@acme.com", "Jane", "Doe", "true"),
    )
    .await;
    let u2 = create_as(
        &app,
        ONELOGIN_UA,
        &onelogin_user("john@acme.com", "John", "Doe", "true"),
    )
    .await;
    let gid = create_group_as(&app, ONELOGIN_UA, "Support").await;
    let path = format!("/Groups/{gid}");

    // Act
    let added = call(
        &app,
        ONELOGIN_UA,
        "PATCH",
        &path,
        Some(&patch_body(json!([
            {"op": "add", "path": "members", "value": [{"value": u1}, {"value": u2}]}
        ]))),
    )
    .await;
    let after_add = members_of(&app, &gid).await;
    let removed = call(
        &app,
        ONELOGIN_UA,
        "PATCH",
        &path,
        Some(&patch_body(json!([
            {"op": "remove", "path": "members", "value": [{"value": u1}]}
        ]))),
    )
    .await;

    // Assert
    assert!(matches!(added.status, 200 | 204), "{}", added.body);
    assert_eq!(after_add, set(&[&u1, &u2]));
    assert!(matches!(removed.status, 200 | 204), "{}", removed.body);
    assert_eq!(members_of(&app, &gid).await, set(&[&u2]));
}

#[tokio::test]
async fn onelogin_templates_with_unreadable_values_are_400_scim_errors_and_change_nothing() {
    // Arrange
    let app = spawn_app().await;
    let id = create_as(
        &app,
        ONELOGIN_UA,
        &onelogin_user("jane@acme.com", "Jane", "Doe", "true"),
    )
    .await;
    let before = app.snapshot().await;
    let bad_active = onelogin_user("john@acme.com", "John", "Doe", "maybe");
    let mut bad_emails = onelogin_user("john@acme.com", "John", "Doe", "true");
    bad_emails["emails"] = json!(42);
    let mut bad_put = onelogin_user("jane@acme.com", "Jane", "Smith", "true");
    bad_put["active"] = json!("yes please");

    // Act
    let replies = [
        call(&app, ONELOGIN_UA, "POST", "/Users", Some(&bad_active)).await,
        call(&app, ONELOGIN_UA, "POST", "/Users", Some(&bad_emails)).await,
        call(
            &app,
            ONELOGIN_UA,
            "PUT",
            &format!("/Users/{id}"),
            Some(&bad_put),
        )
        .await,
    ];

    // Assert
    for reply in &replies {
        assert_error(reply, 400);
    }
    assert_eq!(app.snapshot().await, before);
}

// ---------------------------------------------------------------------------
// JumpCloud
// ---------------------------------------------------------------------------

#[tokio::test]
async fn jumpcloud_test_connection_creates_and_deletes_a_test_user_and_group_repeatably() {
    // Arrange
    let app = spawn_app().await;
    let user = standard_user("jumpcloud.test@acme.com", "JumpCloud", "Test");
    let group = json!({"schemas": [GROUP], "displayName": "JumpCloud Test Group"});
    let user_lookup = format!(
        "/Users?filter={}",
        enc(r#"userName eq "jumpcloud.test@acme.com""#)
    );
    let group_lookup = format!(
        "/Groups?filter={}",
        enc(r#"displayName eq "JumpCloud Test Group""#)
    );

    // Act + Assert: twice, as an admin clicks Test Connection again.
    for round in 1..=2 {
        let created_user = call(&app, JUMPCLOUD_UA, "POST", "/Users", Some(&user)).await;
        assert_eq!(
            created_user.status, 201,
            "round {round}: {}",
            created_user.body
        );
        let uid = created_user.body["id"].as_str().expect("id").to_owned();
        let created_group = call(&app, JUMPCLOUD_UA, "POST", "/Groups", Some(&group)).await;
        assert_eq!(
            created_group.status, 201,
            "round {round}: {}",
            created_group.body
        );
        let gid = created_group.body["id"].as_str().expect("id").to_owned();

        let user_deleted = call(&app, JUMPCLOUD_UA, "DELETE", &format!("/Users/{uid}"), None).await;
        let group_deleted = call(
            &app,
            JUMPCLOUD_UA,
            "DELETE",
            &format!("/Groups/{gid}"),
            None,
        )
        .await;

        assert_eq!(
            user_deleted.status, 204,
            "round {round}: {}",
            user_deleted.body
        );
        assert_eq!(
            group_deleted.status, 204,
            "round {round}: {}",
            group_deleted.body
        );
        assert_error(&app.get(&format!("/Users/{uid}")).await, 404);
        assert_error(&app.get(&format!("/Groups/{gid}")).await, 404);
        assert_eq!(app.get(&user_lookup).await.body["totalResults"], 0);
        assert_eq!(app.get(&group_lookup).await.body["totalResults"], 0);
        // The deleted user's `DIRTY` marker and deprovisioning entry aside:
        // they are the Members sync's to-do (tables.rs), not directory data.
        let snapshot = app.snapshot().await;
        assert!(
            !snapshot
                .keys()
                .filter(|(pk, sk)| !pk.ends_with("#DIRTY") && !sk.starts_with("CLEANUP#D#"))
                .any(|(pk, sk)| pk.contains(&uid) || pk.contains(&gid) || sk.contains(&uid)),
            "round {round}: nothing of the test user or group is left: {snapshot:?}"
        );
    }
}

#[tokio::test]
async fn jumpcloud_adds_and_removes_members_with_a_members_path_and_a_value_list() {
    // Arrange
    let app = spawn_app().await;
    let u1 = create_as(&app, JUMPCLOUD_UA, &standard_user("a@acme.com", "A", "A")).await;
    let u2 = create_as(&app, JUMPCLOUD_UA, &standard_user("b@acme.com", "B", "B")).await;
    let u3 = create_as(&app, JUMPCLOUD_UA, &standard_user("c@acme.com", "C", "C")).await;
    let gid = create_group_as(&app, JUMPCLOUD_UA, "Ops").await;
    let path = format!("/Groups/{gid}");

    // Act
    let added = call(
        &app,
        JUMPCLOUD_UA,
        "PATCH",
        &path,
        Some(&patch_body(json!([
            {"op": "add", "path": "members", "value": [{"value": u1}, {"value": u2}, {"value": u3}]}
        ]))),
    )
    .await;
    let after_add = members_of(&app, &gid).await;
    let removed = call(
        &app,
        JUMPCLOUD_UA,
        "PATCH",
        &path,
        Some(&patch_body(json!([
            {"op": "remove", "path": "members", "value": [{"value": u1}, {"value": u3}]}
        ]))),
    )
    .await;

    // Assert
    assert!(matches!(added.status, 200 | 204), "{}", added.body);
    assert_eq!(after_add, set(&[&u1, &u2, &u3]));
    assert!(matches!(removed.status, 200 | 204), "{}", removed.body);
    assert_eq!(members_of(&app, &gid).await, set(&[&u2]));
}

#[tokio::test]
async fn jumpcloud_updates_one_attribute_per_replace_with_dotted_paths_and_boolean_active() {
    // Arrange
    let app = spawn_app().await;
    let id = create_as(
        &app,
        JUMPCLOUD_UA,
        &standard_user("jane@acme.com", "Jane", "Doe"),
    )
    .await;
    let before = get_user(&app, &id).await;

    // Act
    let reply = call(
        &app,
        JUMPCLOUD_UA,
        "PATCH",
        &format!("/Users/{id}"),
        Some(&patch_body(json!([
            {"op": "replace", "path": "name.givenName", "value": "Janet"},
            {"op": "replace", "path": "name.familyName", "value": "Roe"},
            {"op": "replace", "path": "displayName", "value": "Janet Roe"},
            {"op": "replace", "path": "active", "value": false}
        ]))),
    )
    .await;

    // Assert
    assert_eq!(reply.status, 200, "{}", reply.body);
    let after = get_user(&app, &id).await;
    assert_eq!(reply.body, after);
    let mut expected = attrs(&before);
    expected["name"] = json!({"givenName": "Janet", "familyName": "Roe"});
    expected["displayName"] = json!("Janet Roe");
    expected["active"] = json!(false);
    assert_eq!(attrs(&after), expected);
}

#[tokio::test]
async fn jumpcloud_patches_with_a_bad_path_or_op_are_400_scim_errors_and_change_nothing() {
    // Arrange
    let app = spawn_app().await;
    let id = create_as(
        &app,
        JUMPCLOUD_UA,
        &standard_user("jane@acme.com", "Jane", "Doe"),
    )
    .await;
    let before = app.snapshot().await;
    let path = format!("/Users/{id}");

    // Act: each bad operation follows a good one, which must not stick.
    let mut replies = Vec::new();
    for bad in [
        json!({"op": "replace", "path": "name..givenName", "value": "Janet"}),
        json!({"op": "frobnicate", "path": "name.givenName", "value": "Janet"}),
        json!({"op": "replace", "path": "active", "value": "sometimes"}),
    ] {
        let ops = json!([
            {"op": "replace", "path": "name.familyName", "value": "Roe"},
            bad
        ]);
        replies.push(call(&app, JUMPCLOUD_UA, "PATCH", &path, Some(&patch_body(ops))).await);
    }

    // Assert
    for reply in &replies {
        assert_error(reply, 400);
    }
    assert_eq!(app.snapshot().await, before);
}

// ---------------------------------------------------------------------------
// PingOne / PingFederate
// ---------------------------------------------------------------------------

#[tokio::test]
async fn pingfederate_updates_users_with_full_puts_that_replace_the_whole_resource() {
    // Arrange
    let app = spawn_app().await;
    let mut body = standard_user("jane@acme.com", "Jane", "Doe");
    body["title"] = json!("Engineer");
    let id = create_as(&app, PINGFEDERATE_UA, &body).await;
    let before = get_user(&app, &id).await;

    // Act: the provisioner's next full body: new surname, no title.
    let mut next = standard_user("jane@acme.com", "Jane", "Smith");
    next["displayName"] = json!("Jane Smith");
    let reply = call(
        &app,
        PINGFEDERATE_UA,
        "PUT",
        &format!("/Users/{id}"),
        Some(&next),
    )
    .await;

    // Assert
    assert_eq!(reply.status, 200, "{}", reply.body);
    let after = get_user(&app, &id).await;
    assert_eq!(reply.body, after);
    let mut expected = attrs(&before);
    expected["name"]["familyName"] = json!("Smith");
    expected["displayName"] = json!("Jane Smith");
    expected.as_object_mut().expect("object").remove("title");
    assert_eq!(attrs(&after), expected);
    assert_eq!(after["meta"]["created"], before["meta"]["created"]);
}

#[tokio::test]
async fn pingfederate_matches_groups_by_listing_them() {
    // Arrange
    let app = spawn_app().await;
    let mut expected = BTreeSet::new();
    for name in ["Admins", "Developers", "Support"] {
        let gid = create_group_as(&app, PINGFEDERATE_UA, name).await;
        expected.insert((gid, name.to_owned()));
    }

    // Act
    let reply = call(&app, PINGFEDERATE_UA, "GET", "/Groups", None).await;

    // Assert
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["totalResults"], 3);
    let listed: BTreeSet<(String, String)> = reply.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|g| {
            (
                g["id"].as_str().expect("id").to_owned(),
                g["displayName"].as_str().expect("displayName").to_owned(),
            )
        })
        .collect();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn pingone_filter_operators_and_attribute_names_are_case_insensitive() {
    // Arrange
    let app = spawn_app().await;
    let jane = create_as(
        &app,
        PINGONE_UA,
        &standard_user("jane@acme.com", "Jane", "Doe"),
    )
    .await;
    create_as(
        &app,
        PINGONE_UA,
        &standard_user("john@acme.com", "John", "Doe"),
    )
    .await;

    // Act
    let mut replies = Vec::new();
    for filter in [
        r#"userName eq "jane@acme.com""#,
        r#"username Eq "jane@acme.com""#,
        r#"UserName eq "jane@acme.com""#,
        r#"userName EQ "jane@acme.com""#,
        r#"USERNAME eQ "jane@acme.com""#,
    ] {
        let path = format!("/Users?filter={}", enc(filter));
        replies.push((filter, call(&app, PINGONE_UA, "GET", &path, None).await));
    }

    // Assert
    for (filter, reply) in &replies {
        assert_eq!(reply.status, 200, "{filter}: {}", reply.body);
        assert_eq!(listed_ids(reply), vec![jane.clone()], "{filter}");
    }
}

#[tokio::test]
async fn pingone_logical_operators_are_case_insensitive_too() {
    // Arrange
    let app = spawn_app().await;
    let jane = create_as(
        &app,
        PINGONE_UA,
        &standard_user("jane@acme.com", "Jane", "Doe"),
    )
    .await;
    let john = create_as(
        &app,
        PINGONE_UA,
        &standard_user("john@acme.com", "John", "Doe"),
    )
    .await;
    create_as(
        &app,
        PINGONE_UA,
        &standard_user("joan@acme.com", "Joan", "Roe"),
    )
    .await;

    // Act
    let mut replies = Vec::new();
    for filter in [
        r#"userName eq "jane@acme.com" or userName eq "john@acme.com""#,
        r#"userName eq "jane@acme.com" OR userName eq "john@acme.com""#,
        r#"username Eq "jane@acme.com" Or UserName EQ "john@acme.com""#,
    ] {
        let path = format!("/Users?filter={}", enc(filter));
        replies.push((filter, call(&app, PINGONE_UA, "GET", &path, None).await));
    }

    // Assert
    let want: BTreeSet<String> = [jane, john].into_iter().collect();
    for (filter, reply) in &replies {
        assert_eq!(reply.status, 200, "{filter}: {}", reply.body);
        let got: BTreeSet<String> = listed_ids(reply).into_iter().collect();
        assert_eq!(got, want, "{filter}");
    }
}

#[tokio::test]
async fn pingone_malformed_filters_are_400_invalid_filter_errors_and_change_nothing() {
    // Arrange
    let app = spawn_app().await;
    create_as(
        &app,
        PINGONE_UA,
        &standard_user("jane@acme.com", "Jane", "Doe"),
    )
    .await;
    let before = app.snapshot().await;

    // Act
    let mut replies = Vec::new();
    for filter in [
        r#"username Xq "jane@acme.com""#,
        r#"username Eq"#,
        r#"username Eq "jane@acme.com"#,
    ] {
        let path = format!("/Users?filter={}", enc(filter));
        replies.push((filter, call(&app, PINGONE_UA, "GET", &path, None).await));
    }

    // Assert
    for (filter, reply) in &replies {
        assert_error(reply, 400);
        assert_eq!(
            reply.body["scimType"], "invalidFilter",
            "{filter}: {}",
            reply.body
        );
    }
    assert_eq!(app.snapshot().await, before);
}
