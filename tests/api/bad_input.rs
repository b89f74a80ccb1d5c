//! Bad input gets a 4xx SCIM error with the right `scimType`, and changes
//! nothing.
//!
//! Every test seeds a user, snapshots the whole table, sends the bad request
//! and then compares the table with the snapshot, item by item.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, enc, entra_user, spawn_app};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCIM_JSON: &str = "application/scim+json; charset=utf-8";

type Snapshot = BTreeMap<(String, String), String>;

/// An app holding one user (Adele), her id, and the table as it is now.
async fn app_with_adele() -> (TestApp, String, Snapshot) {
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", "ext-adele"))
        .await;
    let before = app.snapshot().await;
    assert!(
        before.keys().any(|(_, sk)| sk == &id),
        "the seeded user is in the snapshot: {before:?}"
    );
    (app, id, before)
}

/// Asserts that the table holds exactly what it held in `before`.
async fn assert_unchanged(app: &TestApp, before: &Snapshot, after_what: &str) {
    let after = app.snapshot().await;
    assert!(
        after == *before,
        "{after_what} changed the table:\nbefore: {before:#?}\nafter: {after:#?}"
    );
}

fn patch_body(operations: &Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

/// A request with exactly this `Authorization` header (or none).
async fn send_authorized_as(
    app: &TestApp,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app.http.request(method, app.url(path));
    if let Some(auth) = authorization {
        req = req.header("authorization", auth);
    }
    if let Some(body) = body {
        req = req
            .header("content-type", SCIM_JSON)
            .body(serde_json::to_vec(body).expect("json"));
    }
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.expect("body read");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "{path}: response is not JSON: {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    Reply {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn the_snapshot_sees_a_successful_patch_so_the_unchanged_checks_can_fail() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let patch = patch_body(&json!([{"op": "replace", "path": "displayName", "value": "Changed"}]));

    // Act
    let reply = app.patch(&format!("/Users/{id}"), &patch).await;

    // Assert
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_ne!(app.snapshot().await, before);
}

// --- Unparseable bodies ------------------------------------------------------

#[tokio::test]
async fn malformed_json_on_post_put_and_patch_is_invalid_syntax() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let user = format!("/Users/{id}");
    let bodies: [&[u8]; 6] = [
        br#"{"userName": "new@contoso.com""#,
        br#"{userName: "new@contoso.com"}"#,
        br#"{"userName": "new@contoso.com",}"#,
        br#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add"]}"#,
        b"",
        b"not json at all",
    ];
    for (method, path) in [("POST", "/Users"), ("PUT", &user), ("PATCH", &user)] {
        for body in bodies {
            // Act
            let reply = app.send_raw(method, path, SCIM_JSON, body.to_vec()).await;

            // Assert
            reply.assert_scim_error(400, Some("invalidSyntax"));
            assert_unchanged(
                &app,
                &before,
                &format!("{method} {path} {}", String::from_utf8_lossy(body)),
            )
            .await;
        }
    }
}

#[tokio::test]
async fn a_json_body_that_is_not_an_object_is_invalid_syntax() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let user = format!("/Users/{id}");
    let bodies = [
        json!([]),
        json!([entra_user("new@contoso.com", "ext-new")]),
        json!("new@contoso.com"),
        json!(42),
        json!(true),
        Value::Null,
    ];
    for (method, path) in [("POST", "/Users"), ("PUT", &user), ("PATCH", &user)] {
        for body in &bodies {
            // Act
            let reply = app.send(method, path, Some(body)).await;

            // Assert
            reply.assert_scim_error(400, Some("invalidSyntax"));
            assert_unchanged(&app, &before, &format!("{method} {path} {body}")).await;
        }
    }
}

// --- Filters -----------------------------------------------------------------

#[tokio::test]
async fn malformed_filters_are_invalid_filter() {
    // Arrange
    let (app, _, before) = app_with_adele().await;
    let filters = [
        "userName eq",
        r#"userName zz "x""#,
        r#"userName "x""#,
        r#"(userName eq "adele@contoso.com""#,
        r#"userName eq "adele@contoso.com")"#,
        r#"emails[type eq "work".value eq "adele@contoso.com""#,
        r#"emails[type eq "work"]].value eq "adele@contoso.com""#,
        r#"userName eq "adele@contoso.com"#,
        r#"userName eq "adele@contoso.com" and"#,
        r#"not userName eq "x""#,
    ];
    for filter in filters {
        // Act
        let reply = app.get(&format!("/Users?filter={}", enc(filter))).await;

        // Assert
        reply.assert_scim_error(400, Some("invalidFilter"));
        assert!(
            reply.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{filter}: the error says what is wrong: {}",
            reply.body
        );
        assert_unchanged(&app, &before, filter).await;
    }
}

#[tokio::test]
async fn a_filter_nested_too_deep_or_longer_than_4096_bytes_is_invalid_filter() {
    // Arrange
    let (app, _, before) = app_with_adele().await;
    let too_deep = format!(
        r#"{}userName eq "adele@contoso.com"{}"#,
        "(".repeat(40),
        ")".repeat(40)
    );
    let too_long = format!(r#"userName eq "{}""#, "a".repeat(4100));
    let many_terms = vec![r#"userName eq "adele@contoso.com""#; 100].join(" or ");
    for filter in [&too_deep, &too_long, &many_terms] {
        // Act
        let reply = app.get(&format!("/Users?filter={}", enc(filter))).await;

        // Assert
        reply.assert_scim_error(400, Some("invalidFilter"));
        assert_unchanged(&app, &before, &filter[..40]).await;
    }
}

#[tokio::test]
async fn valid_filters_on_attributes_without_an_index_are_answered_not_refused() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let cases = [
        (r#"title eq "Retail Manager""#, 1),
        (r#"displayName co "dele""#, 1),
        (r#"title eq "x""#, 0),
        (r#"userName sw "ADELE""#, 1),
        (r#"active eq true and name.familyName eq "Vance""#, 1),
        (r#"userName eq "adele@contoso.com" or title pr"#, 1),
    ];
    for (filter, expected) in cases {
        // Act
        let reply = app.get(&format!("/Users?filter={}", enc(filter))).await;

        // Assert
        assert_eq!(reply.status, 200, "{filter}: {}", reply.body);
        assert_eq!(reply.body["totalResults"], expected, "{filter}");
        if expected == 1 {
            assert_eq!(reply.body["Resources"][0]["id"], json!(id), "{filter}");
        }
        assert_unchanged(&app, &before, filter).await;
    }
}

#[tokio::test]
async fn non_integer_start_index_or_count_is_invalid_value() {
    // Arrange
    let (app, _, before) = app_with_adele().await;
    let queries = [
        "startIndex=abc",
        "startIndex=1.5",
        "count=ten",
        "count=1e2",
        "startIndex=99999999999999999999999",
        "count=-99999999999999999999999",
    ];
    for query in queries {
        // Act
        let reply = app.get(&format!("/Users?{query}")).await;

        // Assert
        reply.assert_scim_error(400, Some("invalidValue"));
        assert_unchanged(&app, &before, query).await;
    }
}

// --- Create / replace validation -------------------------------------------

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

#[tokio::test]
async fn attributes_of_the_wrong_type_on_post_and_put_are_invalid_value() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let user = format!("/Users/{id}");
    let new = || entra_user("new@contoso.com", "ext-new");
    let bodies = [
        with(new(), "userName", json!(42)),
        with(new(), "userName", json!(["new@contoso.com"])),
        with(new(), "active", json!("maybe")),
        with(new(), "active", json!(1)),
        with(new(), "name", json!("New User")),
        with(new(), "emails", json!([{"type": "work", "value": 42}])),
        with(
            new(),
            "emails",
            json!([{"type": "work", "primary": "perhaps"}]),
        ),
        with(new(), "externalId", json!(7)),
        with(new(), "displayName", json!({"text": "New"})),
    ];
    for (method, path) in [("POST", "/Users"), ("PUT", &user)] {
        for body in &bodies {
            // Act
            let reply = app.send(method, path, Some(body)).await;

            // Assert
            reply.assert_scim_error(400, Some("invalidValue"));
            assert_unchanged(&app, &before, &format!("{method} {body}")).await;
        }
    }
}

#[tokio::test]
async fn a_user_without_a_user_name_is_invalid_value() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let user = format!("/Users/{id}");
    let mut missing = entra_user("new@contoso.com", "ext-new");
    missing.as_object_mut().expect("object").remove("userName");
    let bodies = [
        missing,
        with(entra_user("x", "ext-new"), "userName", Value::Null),
        with(entra_user("x", "ext-new"), "userName", json!("")),
        with(entra_user("x", "ext-new"), "userName", json!("   ")),
        with(entra_user("x", "ext-new"), "userName", json!("a\u{0}b")),
        with(
            entra_user("x", "ext-new"),
            "userName",
            json!("a".repeat(2000)),
        ),
    ];
    for (method, path) in [("POST", "/Users"), ("PUT", &user)] {
        for body in &bodies {
            // Act
            let reply = app.send(method, path, Some(body)).await;

            // Assert
            reply.assert_scim_error(400, Some("invalidValue"));
            assert_unchanged(&app, &before, &format!("{method} {}", body["userName"])).await;
        }
    }
}

#[tokio::test]
async fn a_user_name_taken_in_another_case_is_409_uniqueness() {
    // Arrange
    let (app, _, before) = app_with_adele().await;
    let body = entra_user("ADELE@Contoso.COM", "ext-someone-else");

    // Act
    let reply = app.post("/Users", &body).await;

    // Assert
    reply.assert_scim_error(409, Some("uniqueness"));
    assert_unchanged(&app, &before, "a duplicate userName").await;
}

#[tokio::test]
async fn an_external_id_taken_by_another_user_is_409_uniqueness() {
    // Arrange
    let (app, _, before) = app_with_adele().await;
    let body = entra_user("someone-else@contoso.com", "ext-adele");

    // Act
    let reply = app.post("/Users", &body).await;

    // Assert
    reply.assert_scim_error(409, Some("uniqueness"));
    assert_unchanged(&app, &before, "a duplicate externalId").await;
}

#[tokio::test]
async fn renaming_a_user_to_a_taken_user_name_is_409_uniqueness() {
    // Arrange
    let (app, adele, _) = app_with_adele().await;
    let megan = app
        .create_user(&entra_user("megan@contoso.com", "ext-megan"))
        .await;
    let before = app.snapshot().await;
    let path = format!("/Users/{megan}");
    let requests = [
        (
            "PATCH",
            patch_body(
                &json!([{"op": "Replace", "path": "userName", "value": "Adele@Contoso.com"}]),
            ),
        ),
        (
            "PATCH",
            patch_body(&json!([{"op": "replace", "value": {"externalId": "ext-adele"}}])),
        ),
        ("PUT", entra_user("adele@contoso.com", "ext-megan")),
        ("PUT", entra_user("megan@contoso.com", "ext-adele")),
    ];
    for (method, body) in &requests {
        // Act
        let reply = app.send(method, &path, Some(body)).await;

        // Assert
        reply.assert_scim_error(409, Some("uniqueness"));
        assert_unchanged(&app, &before, &format!("{method} {body}")).await;
    }
    let adele_now = app.get(&format!("/Users/{adele}")).await;
    assert_eq!(adele_now.body["userName"], "adele@contoso.com");
}

#[tokio::test]
async fn a_document_over_the_128_kib_storage_cap_is_invalid_value() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let user = format!("/Users/{id}");
    let big = "x".repeat(200 * 1024);
    let requests = [
        (
            "POST",
            "/Users",
            with(
                entra_user("new@contoso.com", "ext-new"),
                "displayName",
                json!(big),
            ),
        ),
        (
            "PUT",
            &user,
            with(
                entra_user("adele@contoso.com", "ext-adele"),
                "displayName",
                json!(big),
            ),
        ),
        (
            "PATCH",
            &user,
            patch_body(&json!([{"op": "replace", "path": "displayName", "value": big}])),
        ),
        (
            "PATCH",
            &user,
            patch_body(&json!([
                {"op": "add", "path": "nickName", "value": "x".repeat(100 * 1024)},
                {"op": "add", "path": "title", "value": "x".repeat(100 * 1024)}
            ])),
        ),
    ];
    for (method, path, body) in &requests {
        // Act
        let reply = app.send(method, path, Some(body)).await;

        // Assert
        reply.assert_scim_error(400, Some("invalidValue"));
        assert_unchanged(&app, &before, &format!("{method} {path}")).await;
    }
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413_and_nothing_is_written() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let user = format!("/Users/{id}");
    let huge = "x".repeat(1100 * 1024);
    let requests = [
        (
            "POST",
            "/Users",
            with(
                entra_user("new@contoso.com", "ext-new"),
                "displayName",
                json!(huge),
            ),
        ),
        (
            "PUT",
            &user,
            with(
                entra_user("adele@contoso.com", "ext-adele"),
                "displayName",
                json!(huge),
            ),
        ),
        (
            "PATCH",
            &user,
            patch_body(&json!([{"op": "replace", "path": "displayName", "value": huge}])),
        ),
    ];
    for (method, path, body) in &requests {
        // Act
        let reply = app.send(method, path, Some(body)).await;

        // Assert
        reply.assert_scim_error(413, None);
        assert_unchanged(&app, &before, &format!("{method} {path}")).await;
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_by_content_type_is_415() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let user = format!("/Users/{id}");
    let create = serde_json::to_vec(&entra_user("new@contoso.com", "ext-new")).expect("json");
    let patch = serde_json::to_vec(&patch_body(
        &json!([{"op": "replace", "path": "displayName", "value": "Changed"}]),
    ))
    .expect("json");
    let requests = [
        ("POST", "/Users", &create),
        ("PUT", &user, &create),
        ("PATCH", &user, &patch),
    ];
    for content_type in [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
    ] {
        for (method, path, body) in &requests {
            // Act
            let reply = app
                .send_raw(method, path, content_type, body.to_vec())
                .await;

            // Assert
            reply.assert_scim_error(415, None);
            assert_unchanged(&app, &before, &format!("{method} {path} as {content_type}")).await;
        }
    }
}

// --- PATCH -------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_patch_op_is_invalid_syntax() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let ops = [
        json!([{"op": "merge", "path": "displayName", "value": "Changed"}]),
        json!([{"op": "", "path": "displayName", "value": "Changed"}]),
        json!([{"op": 1, "path": "displayName", "value": "Changed"}]),
        json!([{"path": "displayName", "value": "Changed"}]),
    ];
    for op in ops {
        // Act
        let reply = app.patch(&format!("/Users/{id}"), &patch_body(&op)).await;

        // Assert
        reply.assert_scim_error(400, Some("invalidSyntax"));
        assert_unchanged(&app, &before, &op.to_string()).await;
    }
}

#[tokio::test]
async fn a_patch_without_the_patch_op_schema_or_operations_is_invalid_syntax() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let op = json!({"op": "replace", "path": "displayName", "value": "Changed"});
    let bodies = [
        json!({"Operations": [op]}),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": [op]}),
        json!({"schemas": [PATCH_OP]}),
        json!({"schemas": [PATCH_OP], "Operations": []}),
        json!({"schemas": [PATCH_OP], "Operations": op}),
        json!({"schemas": [PATCH_OP], "Operations": ["replace displayName"]}),
        json!({"schemas": [PATCH_OP], "Operations": null}),
    ];
    for body in &bodies {
        // Act
        let reply = app.patch(&format!("/Users/{id}"), body).await;

        // Assert
        reply.assert_scim_error(400, Some("invalidSyntax"));
        assert_unchanged(&app, &before, &body.to_string()).await;
    }
}

#[tokio::test]
async fn a_patch_path_that_does_not_parse_is_invalid_path() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let paths = [
        json!("emails[type eq"),
        json!(r#"emails[type eq "work""#),
        json!(r#"emails[type zz "work"].value"#),
        json!("1displayName"),
        json!("display name"),
        json!(42),
    ];
    for path in paths {
        // Act
        let reply = app
            .patch(
                &format!("/Users/{id}"),
                &patch_body(&json!([{"op": "replace", "path": path, "value": "x"}])),
            )
            .await;

        // Assert
        reply.assert_scim_error(400, Some("invalidPath"));
        assert_unchanged(&app, &before, &path.to_string()).await;
    }
}

#[tokio::test]
async fn a_patch_of_a_read_only_attribute_is_mutability() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let ops = [
        json!({"op": "replace", "path": "id", "value": "another-id"}),
        json!({"op": "remove", "path": "id"}),
        json!({"op": "replace", "path": "meta.created", "value": "2001-01-01T00:00:00Z"}),
        json!({"op": "replace", "path": "meta", "value": {"version": "1"}}),
        json!({"op": "add", "path": "groups", "value": [{"value": "g1"}]}),
        json!({"op": "replace", "value": {"id": "another-id"}}),
    ];
    for op in ops {
        // Act
        let reply = app
            .patch(&format!("/Users/{id}"), &patch_body(&json!([op])))
            .await;

        // Assert
        reply.assert_scim_error(400, Some("mutability"));
        assert_unchanged(&app, &before, &op.to_string()).await;
    }
}

#[tokio::test]
async fn a_remove_without_a_path_is_no_target() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let ops = [
        json!({"op": "remove"}),
        json!({"op": "Remove", "value": {"displayName": "Adele Vance"}}),
        json!({"op": "remove", "path": ""}),
    ];
    for op in ops {
        // Act
        let reply = app
            .patch(&format!("/Users/{id}"), &patch_body(&json!([op])))
            .await;

        // Assert
        reply.assert_scim_error(400, Some("noTarget"));
        assert_unchanged(&app, &before, &op.to_string()).await;
    }
}

#[tokio::test]
async fn an_add_or_replace_without_a_value_is_invalid_value() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let ops = [
        json!({"op": "add", "path": "title"}),
        json!({"op": "Replace", "path": "displayName"}),
        json!({"op": "add"}),
        json!({"op": "replace", "value": "not an object"}),
        json!({"op": "replace", "path": "active", "value": "maybe"}),
        json!({"op": "replace", "path": "name", "value": "Adele Vance"}),
    ];
    for op in ops {
        // Act
        let reply = app
            .patch(&format!("/Users/{id}"), &patch_body(&json!([op])))
            .await;

        // Assert
        reply.assert_scim_error(400, Some("invalidValue"));
        assert_unchanged(&app, &before, &op.to_string()).await;
    }
}

#[tokio::test]
async fn a_patch_whose_last_operation_is_invalid_applies_none_of_its_operations() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let valid = json!([
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "add", "path": "nickName", "value": "Ady"},
        {"op": "remove", "path": "title"},
        {"op": "replace", "path": "userName", "value": "renamed@contoso.com"}
    ]);
    let last_ops = [
        (
            json!({"op": "replace", "path": "active", "value": "maybe"}),
            "invalidValue",
        ),
        (
            json!({"op": "replace", "path": "id", "value": "x"}),
            "mutability",
        ),
        (json!({"op": "remove"}), "noTarget"),
        (
            json!({"op": "add", "path": "emails[type eq"}),
            "invalidPath",
        ),
    ];
    for (last, scim_type) in last_ops {
        let mut ops = valid.as_array().expect("array").clone();
        ops.push(last.clone());

        // Act
        let reply = app
            .patch(&format!("/Users/{id}"), &patch_body(&json!(ops)))
            .await;

        // Assert
        reply.assert_scim_error(400, Some(scim_type));
        assert_unchanged(&app, &before, &last.to_string()).await;
        let user = app.get(&format!("/Users/{id}")).await;
        assert_eq!(user.body["displayName"], "Adele Vance");
        assert_eq!(user.body["userName"], "adele@contoso.com");
        assert_eq!(user.body["title"], "Retail Manager");
        assert!(user.body.get("nickName").is_none(), "{}", user.body);
    }
    let by_old_name = app
        .get(&format!(
            "/Users?filter={}",
            enc(r#"userName eq "adele@contoso.com""#)
        ))
        .await;
    assert_eq!(by_old_name.body["totalResults"], 1);
}

// --- Routing and authentication ---------------------------------------------

#[tokio::test]
async fn an_unknown_endpoint_is_a_scim_404() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let paths = [
        "/Userz".to_owned(),
        "/Groupz".to_owned(),
        format!("/Users/{id}/manager"),
        "/".to_owned(),
    ];
    for path in &paths {
        for method in ["GET", "POST", "DELETE"] {
            // Act
            let reply = app
                .send(method, path, (method == "POST").then_some(&json!({})))
                .await;

            // Assert
            reply.assert_scim_error(404, None);
            assert_unchanged(&app, &before, &format!("{method} {path}")).await;
        }
    }
}

#[tokio::test]
async fn an_unsupported_method_is_a_scim_405() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let user = format!("/Users/{id}");
    let new = entra_user("new@contoso.com", "ext-new");
    let requests = [
        ("POST", user.as_str(), Some(&new)),
        ("DELETE", "/Users", None),
        ("PUT", "/Users", Some(&new)),
        ("PATCH", "/Users", Some(&new)),
        ("POST", "/ServiceProviderConfig", Some(&new)),
    ];
    for (method, path, body) in requests {
        // Act
        let reply = app.send(method, path, body).await;

        // Assert
        reply.assert_scim_error(405, None);
        assert_unchanged(&app, &before, &format!("{method} {path}")).await;
    }
}

#[tokio::test]
async fn requests_without_a_valid_bearer_token_are_401_and_change_nothing() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let tenant = app.tenant.as_str();
    let wrong_secret = format!("Bearer scimsync_{tenant}_{}", "0".repeat(64));
    let unknown_tenant = format!("Bearer scimsync_nosuchtenant_{}", "ab".repeat(32));
    let own_token_basic = format!("Basic {}", app.token);
    let own_token_no_scheme = app.token.clone();
    let authorizations = [
        None,
        Some("Bearer"),
        Some("Bearer "),
        Some(wrong_secret.as_str()),
        Some(unknown_tenant.as_str()),
        Some("Bearer not-a-scimsync-token"),
        Some("Bearer scimsync_"),
        Some("Basic YWRtaW46YWRtaW4="),
        Some(own_token_basic.as_str()),
        Some(own_token_no_scheme.as_str()),
    ];
    let user = format!("/Users/{id}");
    let create = entra_user("new@contoso.com", "ext-new");
    let patch = patch_body(&json!([{"op": "replace", "path": "displayName", "value": "Changed"}]));
    let requests = [
        ("GET", "/Users", None),
        ("GET", user.as_str(), None),
        ("POST", "/Users", Some(&create)),
        ("PUT", user.as_str(), Some(&create)),
        ("PATCH", user.as_str(), Some(&patch)),
        ("DELETE", user.as_str(), None),
    ];
    for auth in authorizations {
        for (method, path, body) in requests {
            // Act
            let reply = send_authorized_as(&app, method, path, auth, body).await;

            // Assert
            reply.assert_scim_error(401, None);
            assert!(
                reply
                    .header("www-authenticate")
                    .is_some_and(|h| h.starts_with("Bearer")),
                "{method} {path} with {auth:?}: WWW-Authenticate names the scheme: {:?}",
                reply.headers
            );
            assert_unchanged(&app, &before, &format!("{method} {path} with {auth:?}")).await;
        }
    }
}

#[tokio::test]
async fn get_put_patch_and_delete_of_an_unknown_id_are_404() {
    // Arrange
    let (app, _, before) = app_with_adele().await;
    let replace = entra_user("adele@contoso.com", "ext-adele");
    let patch = patch_body(&json!([{"op": "replace", "path": "displayName", "value": "Changed"}]));
    let ids = [
        uuid::Uuid::new_v4().to_string(),
        "not-an-id".to_owned(),
        "a%23b".to_owned(),
        "%20".to_owned(),
    ];
    for id in &ids {
        let path = format!("/Users/{id}");
        for (method, body) in [
            ("GET", None),
            ("PUT", Some(&replace)),
            ("PATCH", Some(&patch)),
            ("DELETE", None),
        ] {
            // Act
            let reply = app.send(method, &path, body).await;

            // Assert
            reply.assert_scim_error(404, None);
            assert_unchanged(&app, &before, &format!("{method} {path}")).await;
        }
    }
}

// --- Garbage -----------------------------------------------------------------

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() & 0xff) as u8).collect()
    }
}

#[tokio::test]
async fn garbage_bodies_and_filters_never_cause_a_server_error() {
    // Arrange
    let (app, id, before) = app_with_adele().await;
    let user = format!("/Users/{id}");
    let mut rng = Lcg(0x5c1a_5eed);
    let mut bodies: Vec<Vec<u8>> = (0..24)
        .map(|i| {
            let len = 1 + (rng.next() as usize % 300) * (i % 3 + 1);
            rng.bytes(len)
        })
        .collect();
    bodies.extend([
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes(),
        format!(
            r#"{{"schemas":["{PATCH_OP}"],"Operations":[{{"op":"add","path":"title","value":{}1{}}}]}}"#,
            "[".repeat(5_000),
            "]".repeat(5_000)
        )
        .into_bytes(),
        br#"{"userName": 1e999}"#.to_vec(),
        br#"{"userName": "n@contoso.com", "active": -1e400}"#.to_vec(),
        format!(r#"{{"userName": {}}}"#, "9".repeat(20_000)).into_bytes(),
        br#"{"userName": 123456789012345678901234567890}"#.to_vec(),
        b"{\"userName\": \"\xff\xfe\xfd@contoso.com\"}".to_vec(),
        b"\xef\xbb\xbf{\"userName\": \"bom@contoso.com\"}".to_vec(),
        b"{\"userName\": \"nul\\u0000@contoso.com\"}".to_vec(),
        br#"{"userName": "surrogate\ud800@contoso.com"}"#.to_vec(),
        vec![0; 1000],
    ]);
    let mut filters: Vec<String> = (0..24)
        .map(|_| {
            let len = 1 + rng.next() as usize % 200;
            rng.bytes(len).iter().map(|b| format!("%{b:02X}")).collect()
        })
        .collect();
    filters.extend(
        [
            "%FF%FE",
            "%00",
            &enc(&"(".repeat(4096)),
            &enc(&"[".repeat(4000)),
            &enc(&"\"".repeat(5000)),
            &enc(r#"userName eq "\ud800""#),
            &enc("age gt 1e99999"),
            &enc(&format!("title eq {}", "9".repeat(4000))),
            &enc(r#"emails[type eq "work"].value"#),
            &enc("emails[]"),
        ]
        .map(str::to_owned),
    );
    let mut statuses = Vec::new();

    // Act
    for body in &bodies {
        for (method, path) in [("POST", "/Users"), ("PUT", &user), ("PATCH", &user)] {
            let reply = app.send_raw(method, path, SCIM_JSON, body.clone()).await;
            statuses.push((
                reply.status,
                format!("{method} {:?}", &body[..body.len().min(40)]),
            ));
        }
    }
    for filter in &filters {
        let reply = app.get(&format!("/Users?filter={filter}")).await;
        statuses.push((
            reply.status,
            format!("filter {}", &filter[..filter.len().min(60)]),
        ));
    }
    for path in [
        "/Users/%FF",
        "/Users/%00",
        "/Users/%C0%AF",
        "/Users?count=%FF&startIndex=%00",
    ] {
        let reply = app.get(path).await;
        statuses.push((reply.status, format!("GET {path}")));
    }

    // Assert
    let not_4xx: Vec<_> = statuses
        .iter()
        .filter(|(status, _)| !(400..500).contains(status))
        .collect();
    assert!(not_4xx.is_empty(), "expected only 4xx: {not_4xx:#?}");
    assert_unchanged(&app, &before, "the garbage requests").await;
}
