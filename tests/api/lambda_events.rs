//! The API Gateway (HTTP API, payload 2.0) fixtures in `events/` replayed
//! through the Lambda path: parsed with `lambda_http::request::from_str`,
//! mapped to an axum body as `host::run_lambda` does, and driven through
//! `scim_api::app` with `oneshot` against the emulator-backed stores.
//!
//! Each fixture must get the status Entra expects, which proves the fixtures
//! and the router's routes agree. The fixtures' placeholder token and user
//! ids are replaced by the test tenant's token and real ids.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{
    FIXTURE_MANAGER_ID, FIXTURE_TOKEN, FIXTURE_USER_ID, Reply, TestApp, entra_user, read_event,
    spawn_app,
};

/// Values shared by the users fixtures (events/README.md); the token and
/// ids every fixture shares are in `helpers`.
const FIXTURE_EXTERNAL_ID: &str = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef";
const FIXTURE_USER_NAME: &str = "adele.vance@contoso.com";
/// `https://` + the fixtures' `host` + `/scim/v2`.
const FIXTURE_BASE: &str = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/scim/v2";

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Every fixture, each replayed by a test below.
const FIXTURES: [&str; 15] = [
    "service-provider-config.json",
    "users-create.json",
    "users-delete.json",
    "users-get-by-externalid.json",
    "users-get-by-username.json",
    "users-get.json",
    "users-list-page.json",
    "users-patch-aadopt-dialect.json",
    "users-patch-default-dialect.json",
    "users-patch-disable-aadopt.json",
    "users-patch-disable.json",
    "users-patch-enable.json",
    "users-patch-manager-clear.json",
    "users-patch-manager-set.json",
    "users-test-connection.json",
];

fn events_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../events").to_owned()
}

/// Substitutions for one replay.
#[derive(Default)]
struct Subst<'a> {
    /// Replaces the fixture's user id in the path.
    user: Option<&'a str>,
    /// Replaces the fixture's manager id in the body.
    manager: Option<&'a str>,
}

/// Replays `name` with the tenant's token and the given ids substituted.
async fn replay(app: &TestApp, name: &str, subst: Subst<'_>) -> Reply {
    let mut event: Value = serde_json::from_str(&read_event(name)).expect("fixture is JSON");

    // The token: the fixture must carry the documented placeholder.
    let auth = &mut event["headers"]["authorization"];
    assert_eq!(
        *auth,
        json!(format!("Bearer {FIXTURE_TOKEN}")),
        "{name}: authorization placeholder"
    );
    *auth = json!(format!("Bearer {}", app.token));

    // The user id in the path (rawPath, requestContext.http.path, proxy).
    let raw_path = event["rawPath"].as_str().expect("rawPath").to_owned();
    if raw_path.contains(FIXTURE_USER_ID) {
        let id = subst
            .user
            .unwrap_or_else(|| panic!("{name} names a user: pass its real id"));
        for pointer in [
            "/rawPath",
            "/requestContext/http/path",
            "/pathParameters/proxy",
        ] {
            let field = event
                .pointer_mut(pointer)
                .unwrap_or_else(|| panic!("{name}: no {pointer}"));
            let old = field.as_str().expect("path field").to_owned();
            assert!(old.contains(FIXTURE_USER_ID), "{name}: {pointer} = {old}");
            *field = json!(old.replace(FIXTURE_USER_ID, id));
        }
    } else {
        assert!(subst.user.is_none(), "{name} has no user id in its path");
    }

    // The manager id in the body, keeping content-length true.
    if let Some(manager) = subst.manager {
        let body = event["body"].as_str().expect("body").to_owned();
        assert!(body.contains(FIXTURE_MANAGER_ID), "{name}: no manager id");
        let body = body.replace(FIXTURE_MANAGER_ID, manager);
        event["headers"]["content-length"] = json!(body.len().to_string());
        event["body"] = json!(body);
    }

    app.send_event(&event, name).await
}

#[track_caller]
fn assert_status(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "body: {}", reply.body);
    if status != 204 {
        assert_eq!(
            reply.header("content-type"),
            Some("application/scim+json; charset=utf-8")
        );
    }
}

/// The fixture user, created through `users-create.json`.
async fn create_fixture_user(app: &TestApp) -> String {
    let reply = replay(app, "users-create.json", Subst::default()).await;
    assert_status(&reply, 201);
    reply.body["id"].as_str().expect("id").to_owned()
}

async fn get_user(app: &TestApp, id: &str) -> Value {
    let reply = app.get(&format!("/Users/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

fn without_meta(resource: &Value) -> Value {
    let mut v = resource.clone();
    v.as_object_mut().expect("object").remove("meta");
    v
}

fn fixture_body(name: &str) -> Value {
    let event: Value = serde_json::from_str(&read_event(name)).expect("fixture is JSON");
    serde_json::from_str(event["body"].as_str().expect("body")).expect("body is JSON")
}

#[test]
fn every_fixture_in_events_is_replayed_by_a_test() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(events_dir())
        .expect("events/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        // Group fixtures are replayed by groups_lifecycle.rs.
        // The portal's fixtures are replayed by template_routes.rs.
        .filter(|n| {
            !n.starts_with("groups-") && !n.starts_with("sync-") && !n.starts_with("portal-")
        })
        .collect();
    let replayed: BTreeSet<String> = FIXTURES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(on_disk, replayed);
}

#[test]
fn every_fixture_parses_with_its_documented_token_and_a_true_content_length() {
    for name in FIXTURES {
        let raw = read_event(name);
        let event: Value = serde_json::from_str(&raw).expect("JSON");
        let request = lambda_http::request::from_str(&raw)
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        assert_eq!(
            request.method().as_str(),
            event["requestContext"]["http"]["method"],
            "{name}"
        );
        assert_eq!(request.uri().path(), event["rawPath"], "{name}");
        assert_eq!(
            request.headers()["authorization"],
            format!("Bearer {FIXTURE_TOKEN}").as_str(),
            "{name}"
        );
        assert!(request.headers().get("user-agent").is_none(), "{name}");
        let body_len = event["body"].as_str().map_or(0, str::len);
        assert_eq!(
            event["headers"]["content-length"],
            json!(body_len.to_string()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn service_provider_config_event_gets_200() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let reply = replay(&app, "service-provider-config.json", Subst::default()).await;

    // Assert
    assert_status(&reply, 200);
    assert_eq!(
        reply.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(reply.body["patch"]["supported"], true);
    assert_eq!(
        reply.body["meta"]["location"],
        format!("{FIXTURE_BASE}/ServiceProviderConfig")
    );
}

#[tokio::test]
async fn test_connection_event_gets_200_and_an_empty_list() {
    // Arrange: the tenant has a user, just not the probed GUID.
    let app = spawn_app().await;
    create_fixture_user(&app).await;

    // Act
    let reply = replay(&app, "users-test-connection.json", Subst::default()).await;

    // Assert
    assert_status(&reply, 200);
    assert_eq!(
        reply.body,
        json!({"schemas": [LIST], "totalResults": 0, "itemsPerPage": 0, "startIndex": 1, "Resources": []})
    );
}

#[tokio::test]
async fn create_event_gets_201_with_the_api_gateway_location() {
    // Arrange
    let app = spawn_app().await;
    let sent = fixture_body("users-create.json");

    // Act
    let reply = replay(&app, "users-create.json", Subst::default()).await;

    // Assert: every attribute sent comes back as sent.
    assert_status(&reply, 201);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    let location = format!("{FIXTURE_BASE}/Users/{id}");
    assert_eq!(reply.header("location"), Some(location.as_str()));
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
    assert_eq!(reply.body["meta"]["location"], location);
    assert_eq!(reply.body["meta"]["resourceType"], "User");
    let mut expected = sent.clone();
    let map = expected.as_object_mut().expect("object");
    map.remove("meta");
    map.remove("roles"); // `"roles": []` is "no roles"
    map.insert("id".into(), json!(id));
    let mut got = without_meta(&reply.body);
    let roles = got.as_object_mut().expect("object").remove("roles");
    assert!(
        roles.is_none() || roles == Some(json!([])),
        "roles: {roles:?}"
    );
    assert_eq!(got, expected);
}

#[tokio::test]
async fn get_by_external_id_event_gets_200_and_finds_the_user() {
    // Arrange
    let app = spawn_app().await;
    let id = create_fixture_user(&app).await;
    app.create_user(&entra_user("alex@contoso.com", "another-external-id"))
        .await;

    // Act
    let reply = replay(&app, "users-get-by-externalid.json", Subst::default()).await;

    // Assert
    assert_status(&reply, 200);
    assert_eq!(reply.body["totalResults"], 1);
    assert_eq!(reply.body["Resources"][0]["id"], json!(id));
    assert_eq!(
        reply.body["Resources"][0]["externalId"],
        FIXTURE_EXTERNAL_ID
    );
}

#[tokio::test]
async fn get_by_user_name_event_gets_200_and_finds_the_user() {
    // Arrange
    let app = spawn_app().await;
    let id = create_fixture_user(&app).await;
    app.create_user(&entra_user("alex@contoso.com", "another-external-id"))
        .await;

    // Act
    let reply = replay(&app, "users-get-by-username.json", Subst::default()).await;

    // Assert
    assert_status(&reply, 200);
    assert_eq!(reply.body["totalResults"], 1);
    assert_eq!(reply.body["Resources"][0]["id"], json!(id));
    assert_eq!(reply.body["Resources"][0]["userName"], FIXTURE_USER_NAME);
}

#[tokio::test]
async fn get_event_gets_200_and_the_user() {
    // Arrange
    let app = spawn_app().await;
    let id = create_fixture_user(&app).await;

    // Act
    let reply = replay(
        &app,
        "users-get.json",
        Subst {
            user: Some(&id),
            ..Subst::default()
        },
    )
    .await;

    // Assert
    assert_status(&reply, 200);
    assert_eq!(reply.body["id"], json!(id));
    assert_eq!(reply.body["userName"], FIXTURE_USER_NAME);
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
}

#[tokio::test]
async fn patch_default_dialect_event_gets_200_and_applies_every_operation() {
    // Arrange
    let app = spawn_app().await;
    let id = create_fixture_user(&app).await;
    let before = get_user(&app, &id).await;

    // Act
    let reply = replay(
        &app,
        "users-patch-default-dialect.json",
        Subst {
            user: Some(&id),
            ..Subst::default()
        },
    )
    .await;

    // Assert
    assert_status(&reply, 200);
    let mut expected = without_meta(&before);
    expected["emails"][0]["value"] = json!("adele.vance@fabrikam.com");
    expected["name"]["familyName"] = json!("Vance-Smith");
    expected["name"]["formatted"] = json!("Adele Vance-Smith");
    expected["displayName"] = json!("Adele Vance-Smith");
    expected["addresses"][0]["locality"] = json!("Bellevue");
    expected[ENTERPRISE]["department"] = json!("Sales");
    assert_eq!(without_meta(&get_user(&app, &id).await), expected);
}

#[tokio::test]
async fn patch_aadopt_dialect_event_gets_200_and_applies_every_operation() {
    // Arrange
    let app = spawn_app().await;
    let id = create_fixture_user(&app).await;
    let before = get_user(&app, &id).await;

    // Act
    let reply = replay(
        &app,
        "users-patch-aadopt-dialect.json",
        Subst {
            user: Some(&id),
            ..Subst::default()
        },
    )
    .await;

    // Assert
    assert_status(&reply, 200);
    let mut expected = without_meta(&before);
    expected["emails"][0]["value"] = json!("adele.vance@fabrikam.com");
    expected["displayName"] = json!("Adele Vance-Smith");
    expected["name"]["familyName"] = json!("Vance-Smith");
    expected["name"]["formatted"] = json!("Adele Vance-Smith");
    expected["title"] = json!("Sales Manager");
    expected[ENTERPRISE]["employeeNumber"] = json!("100043");
    expected[ENTERPRISE]["department"] = json!("Sales");
    assert_eq!(without_meta(&get_user(&app, &id).await), expected);
}

#[tokio::test]
async fn disable_events_in_both_dialects_get_200_and_enable_restores() {
    // Arrange
    let app = spawn_app().await;
    let id = create_fixture_user(&app).await;
    let user = || Subst {
        user: Some(&id),
        ..Subst::default()
    };

    // Act / Assert
    let disabled = replay(&app, "users-patch-disable.json", user()).await;
    assert_status(&disabled, 200);
    assert_eq!(get_user(&app, &id).await["active"], json!(false));

    let enabled = replay(&app, "users-patch-enable.json", user()).await;
    assert_status(&enabled, 200);
    assert_eq!(get_user(&app, &id).await["active"], json!(true));

    let disabled_flag = replay(&app, "users-patch-disable-aadopt.json", user()).await;
    assert_status(&disabled_flag, 200);
    assert_eq!(get_user(&app, &id).await["active"], json!(false));
}

#[tokio::test]
async fn manager_set_and_clear_events_get_200() {
    // Arrange
    let app = spawn_app().await;
    let id = create_fixture_user(&app).await;
    let manager = app
        .create_user(&entra_user("megan@contoso.com", "megan-external-id"))
        .await;

    // Act
    let set = replay(
        &app,
        "users-patch-manager-set.json",
        Subst {
            user: Some(&id),
            manager: Some(&manager),
        },
    )
    .await;
    let after_set = get_user(&app, &id).await;
    let clear = replay(
        &app,
        "users-patch-manager-clear.json",
        Subst {
            user: Some(&id),
            ..Subst::default()
        },
    )
    .await;
    let after_clear = get_user(&app, &id).await;

    // Assert
    assert_status(&set, 200);
    assert_eq!(after_set[ENTERPRISE]["manager"]["value"], json!(manager));
    assert!(
        after_set[ENTERPRISE]["manager"]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with(&format!("/Users/{manager}"))),
        "{after_set}"
    );
    assert_status(&clear, 200);
    assert_eq!(
        after_clear[ENTERPRISE],
        json!({"employeeNumber": "100042", "department": "Retail"})
    );
}

#[tokio::test]
async fn delete_event_gets_204_and_the_get_event_then_404() {
    // Arrange
    let app = spawn_app().await;
    let id = create_fixture_user(&app).await;
    let user = || Subst {
        user: Some(&id),
        ..Subst::default()
    };

    // Act
    let deleted = replay(&app, "users-delete.json", user()).await;
    let get = replay(&app, "users-get.json", user()).await;

    // Assert
    assert_status(&deleted, 204);
    assert_eq!(deleted.body, Value::Null);
    assert_status(&get, 404);
    assert_eq!(get.body["status"], "404");
}

#[tokio::test]
async fn list_page_event_gets_200_with_start_index_6() {
    // Arrange: eleven users, so page 6..10 is full.
    let app = spawn_app().await;
    for n in 0..11 {
        app.create_user(&entra_user(
            &format!("user{n:02}@contoso.com"),
            &format!("ext-{n:02}"),
        ))
        .await;
    }
    let all = app.get("/Users").await;
    let all_ids: Vec<Value> = all.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["id"].clone())
        .collect();

    // Act
    let reply = replay(&app, "users-list-page.json", Subst::default()).await;

    // Assert
    assert_status(&reply, 200);
    assert_eq!(reply.body["startIndex"], 6);
    assert_eq!(reply.body["itemsPerPage"], 5);
    assert_eq!(reply.body["totalResults"], 11);
    let page: Vec<Value> = reply.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(page, all_ids[5..10].to_vec());
}
