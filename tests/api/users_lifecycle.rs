//! An Entra-shaped replay of the user life-cycle (entra.md §2.1–2.6, 2.11,
//! §3, §5.3): Test Connection, match queries, create, update in both PATCH
//! dialects, disable/re-enable, manager, rename, hard delete, paging,
//! projections, ETags, PUT, unknown extensions, content types, tenant
//! isolation and a tenant URL typed with a trailing slash.
//!
//! Default dialect: capitalised `Replace`/`Add`, `"False"`/`"True"` strings,
//! one operation per path. `aadOptscim062020` dialect: lowercase ops,
//! path-less replace with dotted and URN keys, JSON booleans; its requests
//! carry `?aadOptscim062020` to prove the router ignores the flag.

use std::collections::BTreeSet;

use scim_store::users::UserStore as _;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, enc, entra_user, spawn_app};

const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The flag as vendors tell customers to append it to the Tenant URL.
const FLAG: &str = "aadOptscim062020";

fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn patch_body(ops: Value) -> Value {
    let mut body = json!({"schemas": [PATCH_OP]});
    body["Operations"] = ops;
    body
}

/// The resource without `meta` (which every write changes).
fn attrs(resource: &Value) -> Value {
    let mut v = resource.clone();
    v.as_object_mut().expect("a resource object").remove("meta");
    v
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no Resources array: {}", reply.body))
        .iter()
        .map(|r| r["id"].as_str().expect("resource id").to_owned())
        .collect()
}

#[track_caller]
fn assert_scim_json(reply: &Reply) {
    assert_eq!(
        reply.header("content-type"),
        Some("application/scim+json; charset=utf-8"),
        "responses are application/scim+json"
    );
}

async fn get_user(app: &TestApp, id: &str) -> Value {
    let reply = app.get(&format!("/Users/{id}")).await;
    assert_eq!(reply.status, 200, "GET /Users/{id}: {}", reply.body);
    reply.body
}

async fn find(app: &TestApp, filter: &str) -> Reply {
    let reply = app.get(&format!("/Users?filter={}", enc(filter))).await;
    assert_eq!(reply.status, 200, "filter {filter}: {}", reply.body);
    reply
}

async fn patch_ok(app: &TestApp, path: &str, ops: Value) -> Reply {
    let reply = app.patch(path, &patch_body(ops)).await;
    assert_eq!(reply.status, 200, "PATCH {path}: {}", reply.body);
    reply
}

/// `entra_user` without the enterprise `department` (so Entra `Add`s it).
fn user_without_department(user_name: &str, external_id: &str) -> Value {
    let mut body = entra_user(user_name, external_id);
    body[ENTERPRISE]
        .as_object_mut()
        .expect("enterprise object")
        .remove("department");
    body
}

/// A GET sent byte for byte as Entra does: no `Accept`, no `User-Agent`
/// (reqwest always adds `accept: */*`, so the harness cannot send this).
async fn bare_get(app: &TestApp, path_and_query: &str) -> (u16, String, Value) {
    let authority = app
        .base
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .expect("http base URL")
        .to_owned();
    let target = format!("/scim/v2{path_and_query}");
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        app.token
    );
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(&authority).expect("connect");
        stream.write_all(request.as_bytes()).expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        raw
    })
    .await
    .expect("blocking task");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body split");
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "expected a content-length body: {head}"
    );
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (
        status,
        content_type,
        serde_json::from_str(body).expect("JSON body"),
    )
}

// ---------------------------------------------------------------------------
// Test Connection and match queries
// ---------------------------------------------------------------------------

#[tokio::test]
async fn test_connection_probe_without_accept_or_user_agent_gets_an_empty_scim_list() {
    // Arrange: the tenant has a user, so "empty" is the filter's doing.
    let app = spawn_app().await;
    app.create_user(&entra_user("adele@contoso.com", &guid()))
        .await;
    let probe = guid();

    // Act: on the wire, `+` for spaces and `%22` for quotes.
    let (status, content_type, body) =
        bare_get(&app, &format!("/Users?filter=externalId+eq+%22{probe}%22")).await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/scim+json; charset=utf-8");
    assert_eq!(
        body,
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
async fn test_connection_probe_on_user_name_with_the_flag_in_the_query_gets_an_empty_list() {
    // Arrange
    let app = spawn_app().await;
    app.create_user(&entra_user("adele@contoso.com", &guid()))
        .await;

    // Act
    let (status, content_type, body) = bare_get(
        &app,
        &format!("/Users?{FLAG}&filter=userName+eq+%22{}%22", guid()),
    )
    .await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/scim+json; charset=utf-8");
    assert_eq!(body["totalResults"], 0);
    assert_eq!(body["Resources"], json!([]));
}

#[tokio::test]
async fn create_returns_201_with_location_etag_and_the_full_resource_echoed() {
    // Arrange
    let app = spawn_app().await;
    let external_id = guid();
    let body = entra_user("adele.vance@contoso.com", &external_id);

    // Act
    let reply = app.post("/Users", &body).await;

    // Assert
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_scim_json(&reply);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    let location = app.url(&format!("/Users/{id}"));
    let created = reply.body["meta"]["created"].as_str().expect("created");
    assert_eq!(created.len(), "2026-01-01T00:00:00.000Z".len());
    assert!(created.ends_with('Z'), "{created}");
    assert_eq!(
        reply.body,
        json!({
            "schemas": [CORE, ENTERPRISE],
            "id": id,
            "externalId": external_id,
            "userName": "adele.vance@contoso.com",
            "active": true,
            "displayName": "Adele Vance",
            "title": "Retail Manager",
            "emails": [{"primary": true, "type": "work", "value": "adele.vance@contoso.com"}],
            "name": {"formatted": "Adele Vance", "familyName": "Vance", "givenName": "Adele"},
            ENTERPRISE: {"employeeNumber": "100042", "department": "Retail"},
            "meta": {
                "resourceType": "User",
                "created": created,
                "lastModified": created,
                "location": location,
                "version": "W/\"1\""
            }
        })
    );
    assert_eq!(reply.header("location"), Some(location.as_str()));
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
    assert_eq!(get_user(&app, &id).await, reply.body, "GET echoes the 201");
}

#[tokio::test]
async fn create_accepts_string_booleans_and_nulls_and_returns_json_booleans() {
    // Arrange: Entra's string booleans, and the legacy explicit nulls.
    let app = spawn_app().await;
    let mut body = entra_user("adele@contoso.com", &guid());
    body["active"] = json!("False");
    body["emails"][0]["primary"] = json!("True");
    body["roles"] =
        json!([{"primary": "True", "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}]);
    body["addresses"] = Value::Null;
    body["nickName"] = Value::Null;
    body[ENTERPRISE]["manager"] = Value::Null;

    // Act
    let reply = app.post("/Users", &body).await;

    // Assert
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    let fetched = get_user(&app, &id).await;
    assert_eq!(fetched, reply.body);
    assert_eq!(fetched["active"], json!(false));
    assert_eq!(fetched["emails"][0]["primary"], json!(true));
    assert_eq!(
        fetched["roles"],
        json!([{"primary": true, "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}])
    );
    let map = fetched.as_object().expect("object");
    assert!(!map.contains_key("addresses") && !map.contains_key("nickName"));
    assert_eq!(
        fetched[ENTERPRISE],
        json!({"employeeNumber": "100042", "department": "Retail"})
    );
}

#[tokio::test]
async fn patch_string_boolean_on_a_filtered_sub_attribute_stores_a_json_boolean() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", &guid()))
        .await;
    let before = get_user(&app, &id).await;

    // Act
    patch_ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "Replace", "path": "emails[type eq \"work\"].primary", "value": "False"}]),
    )
    .await;

    // Assert
    let mut expected = attrs(&before);
    expected["emails"][0]["primary"] = json!(false);
    assert_eq!(attrs(&get_user(&app, &id).await), expected);
}

#[tokio::test]
async fn created_user_is_matched_by_external_id_user_name_in_any_case_and_work_email() {
    // Arrange: a second user proves the filters select.
    let app = spawn_app().await;
    let external_id = guid();
    let id = app
        .create_user(&entra_user("Adele.Vance@contoso.com", &external_id))
        .await;
    let other = app
        .create_user(&entra_user("alex.wilber@contoso.com", &guid()))
        .await;
    let full = get_user(&app, &id).await;

    // Act
    let by_external_id = find(&app, &format!(r#"externalId eq "{external_id}""#)).await;
    let by_user_name = find(&app, r#"userName eq "adele.vance@CONTOSO.COM""#).await;
    let by_email = find(
        &app,
        r#"emails[type eq "work"].value eq "Adele.Vance@contoso.com""#,
    )
    .await;
    let other_by_name = find(&app, r#"userName eq "ALEX.WILBER@contoso.com""#).await;

    // Assert: a ListResponse of exactly the user, as GET returns it.
    for reply in [&by_external_id, &by_user_name, &by_email] {
        assert_scim_json(reply);
        assert_eq!(
            reply.body,
            json!({
                "schemas": [LIST],
                "totalResults": 1,
                "itemsPerPage": 1,
                "startIndex": 1,
                "Resources": [full.clone()]
            })
        );
    }
    assert_eq!(ids(&other_by_name), vec![other]);
}

#[tokio::test]
async fn legacy_unquoted_external_id_filter_matches_like_the_quoted_one() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("jyoung@contoso.com", "jyoung"))
        .await;
    app.create_user(&entra_user("alex@contoso.com", &guid()))
        .await;

    // Act: `filter=externalId eq jyoung`, as the old docs show it.
    let reply = app.get("/Users?filter=externalId+eq+jyoung").await;

    // Assert
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(ids(&reply), vec![id]);
}

#[tokio::test]
async fn legacy_manager_reference_check_returns_only_the_id() {
    // Arrange
    let app = spawn_app().await;
    let manager = app
        .create_user(&entra_user("megan@contoso.com", &guid()))
        .await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", &guid()))
        .await;
    patch_ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": manager}]),
    )
    .await;
    let query = |m: &str| {
        format!(
            "/Users?filter={}&attributes=id",
            enc(&format!(r#"id eq "{id}" and manager eq "{m}""#))
        )
    };

    // Act
    let hit = app.get(&query(&manager)).await;
    let miss = app.get(&query(&guid())).await;

    // Assert
    assert_eq!(hit.status, 200, "{}", hit.body);
    assert_eq!(hit.body["totalResults"], 1);
    assert_eq!(
        hit.body["Resources"],
        json!([{"schemas": [CORE, ENTERPRISE], "id": id}])
    );
    assert_eq!(miss.status, 200, "{}", miss.body);
    assert_eq!(miss.body["totalResults"], 0);
    assert_eq!(miss.body["Resources"], json!([]));
}

// ---------------------------------------------------------------------------
// Updates in both dialects
// ---------------------------------------------------------------------------

#[tokio::test]
async fn patch_in_the_default_dialect_changes_exactly_the_patched_attributes() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create_user(&user_without_department("adele@contoso.com", &guid()))
        .await;
    let before = get_user(&app, &id).await;

    // Act
    let reply = patch_ok(
        &app,
        &format!("/Users/{id}"),
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "adele.vance@fabrikam.com"},
            {"op": "Replace", "path": "name.familyName", "value": "Vance-Smith"},
            {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "Sales"}
        ]),
    )
    .await;

    // Assert
    let after = get_user(&app, &id).await;
    let mut expected = attrs(&before);
    expected["emails"][0]["value"] = json!("adele.vance@fabrikam.com");
    expected["name"]["familyName"] = json!("Vance-Smith");
    expected[ENTERPRISE]["department"] = json!("Sales");
    assert_eq!(attrs(&after), expected);
    assert_eq!(after["meta"]["version"], "W/\"2\"");
    assert_eq!(after["meta"]["created"], before["meta"]["created"]);
    assert_eq!(reply.body, after, "the PATCH answers with the resource");
    assert_eq!(reply.header("etag"), Some("W/\"2\""));
}

#[tokio::test]
async fn patch_in_the_aadopt_dialect_applies_pathless_dotted_and_urn_keys() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", &guid()))
        .await;
    let before = get_user(&app, &id).await;

    // Act
    let reply = patch_ok(
        &app,
        &format!("/Users/{id}?{FLAG}"),
        json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "adele.vance@fabrikam.com"},
            {"op": "replace", "value": {
                "name.givenName": "Adela",
                format!("{ENTERPRISE}:employeeNumber"): "100043",
                "displayName": "Adela Vance"
            }}
        ]),
    )
    .await;

    // Assert: nested where they belong, no literal "name.givenName" key.
    let after = get_user(&app, &id).await;
    let mut expected = attrs(&before);
    expected["emails"][0]["value"] = json!("adele.vance@fabrikam.com");
    expected["name"]["givenName"] = json!("Adela");
    expected[ENTERPRISE]["employeeNumber"] = json!("100043");
    expected["displayName"] = json!("Adela Vance");
    assert_eq!(attrs(&after), expected);
    assert_eq!(after["meta"]["version"], "W/\"2\"");
    assert_eq!(reply.body, after);
}

#[tokio::test]
async fn patch_add_on_a_value_filter_path_creates_the_missing_element_once() {
    // Arrange: the user has a work email and no phone numbers.
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", &guid()))
        .await;
    let before = get_user(&app, &id).await;

    // Act: default dialect, then the flag dialect on another attribute,
    // then the same mobile path again with a new number.
    patch_ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 425 555 0110"}]),
    )
    .await;
    patch_ok(
        &app,
        &format!("/Users/{id}?{FLAG}"),
        json!([{"op": "add", "path": "emails[type eq \"home\"].value", "value": "adele@home.example"}]),
    )
    .await;
    patch_ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 425 555 0111"}]),
    )
    .await;

    // Assert: one element per type, the existing work email untouched.
    let after = get_user(&app, &id).await;
    let mut expected = attrs(&before);
    expected["phoneNumbers"] = json!([{"type": "mobile", "value": "+1 425 555 0111"}]);
    expected["emails"] = json!([
        {"primary": true, "type": "work", "value": "adele@contoso.com"},
        {"type": "home", "value": "adele@home.example"}
    ]);
    assert_eq!(attrs(&after), expected);
}

#[tokio::test]
async fn operations_apply_in_order_so_a_later_one_acts_on_an_earlier_result() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", &guid()))
        .await;
    let before = get_user(&app, &id).await;

    // Act: create a work phone, change it, then add a mobile and drop the fax
    // that never existed.
    patch_ok(
        &app,
        &format!("/Users/{id}"),
        json!([
            {"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 425 555 0100"},
            {"op": "Replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 425 555 0109"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 425 555 0110"},
            {"op": "Remove", "path": "phoneNumbers[type eq \"fax\"]"}
        ]),
    )
    .await;

    // Assert
    let mut expected = attrs(&before);
    expected["phoneNumbers"] = json!([
        {"type": "work", "value": "+1 425 555 0109"},
        {"type": "mobile", "value": "+1 425 555 0110"}
    ]);
    assert_eq!(attrs(&get_user(&app, &id).await), expected);
}

#[tokio::test]
async fn patched_external_id_and_work_email_are_matched_by_their_new_values_only() {
    // Arrange
    let app = spawn_app().await;
    let old_external_id = guid();
    let new_external_id = guid();
    let id = app
        .create_user(&entra_user("adele@contoso.com", &old_external_id))
        .await;

    // Act
    patch_ok(
        &app,
        &format!("/Users/{id}?{FLAG}"),
        json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "adele@fabrikam.com"},
            {"op": "replace", "value": {"externalId": new_external_id}}
        ]),
    )
    .await;

    // Assert
    let count = |f: String| {
        let app = &app;
        async move { find(app, &f).await.body["totalResults"].clone() }
    };
    assert_eq!(
        count(format!(r#"externalId eq "{old_external_id}""#)).await,
        0
    );
    assert_eq!(
        count(format!(r#"externalId eq "{new_external_id}""#)).await,
        1
    );
    assert_eq!(
        count(r#"emails[type eq "work"].value eq "adele@contoso.com""#.into()).await,
        0
    );
    assert_eq!(
        ids(&find(
            &app,
            r#"emails[type eq "work"].value eq "adele@fabrikam.com""#
        )
        .await),
        vec![id]
    );
    let reuse = app
        .post("/Users", &entra_user("other@contoso.com", &old_external_id))
        .await;
    assert_eq!(
        reuse.status, 201,
        "the old externalId is free: {}",
        reuse.body
    );
}

// ---------------------------------------------------------------------------
// Soft delete
// ---------------------------------------------------------------------------

#[tokio::test]
async fn replace_active_string_false_disables_and_the_user_stays_findable_until_true_restores() {
    // Arrange
    let app = spawn_app().await;
    let external_id = guid();
    let id = app
        .create_user(&entra_user("adele@contoso.com", &external_id))
        .await;
    let before = get_user(&app, &id).await;

    // Act
    let disabled = patch_ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;

    // Assert: a JSON boolean, nothing else changed, still everywhere.
    assert_eq!(disabled.body["active"], json!(false));
    let after = get_user(&app, &id).await;
    let mut expected = attrs(&before);
    expected["active"] = json!(false);
    assert_eq!(attrs(&after), expected);
    let by_external_id = find(&app, &format!(r#"externalId eq "{external_id}""#)).await;
    assert_eq!(by_external_id.body["Resources"], json!([after.clone()]));
    let by_user_name = find(&app, r#"userName eq "adele@contoso.com""#).await;
    assert_eq!(ids(&by_user_name), vec![id.clone()]);
    let all = app.get("/Users").await;
    assert_eq!(ids(&all), vec![id.clone()]);

    // Act: an inactive user still takes updates (no 409 "must be active").
    patch_ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "Replace", "path": "title", "value": "Sales Manager"}]),
    )
    .await;
    let restored = patch_ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    )
    .await;

    // Assert
    let mut expected = attrs(&before);
    expected["title"] = json!("Sales Manager");
    assert_eq!(attrs(&restored.body), expected);
    assert_eq!(attrs(&get_user(&app, &id).await), expected);
}

#[tokio::test]
async fn replace_active_boolean_false_in_the_aadopt_dialect_disables_and_pathless_true_restores() {
    // Arrange
    let app = spawn_app().await;
    let external_id = guid();
    let id = app
        .create_user(&entra_user("adele@contoso.com", &external_id))
        .await;
    let before = get_user(&app, &id).await;

    // Act
    patch_ok(
        &app,
        &format!("/Users/{id}?{FLAG}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    let disabled = app.get(&format!("/Users/{id}?{FLAG}")).await;
    let found = app
        .get(&format!(
            "/Users?{FLAG}&filter={}",
            enc(&format!(r#"externalId eq "{external_id}""#))
        ))
        .await;
    patch_ok(
        &app,
        &format!("/Users/{id}?{FLAG}"),
        json!([{"op": "replace", "value": {"active": true}}]),
    )
    .await;

    // Assert
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.body["active"], json!(false));
    assert_eq!(ids(&found), vec![id.clone()]);
    assert_eq!(found.body["Resources"][0]["active"], json!(false));
    assert_eq!(attrs(&get_user(&app, &id).await), attrs(&before));
}

// ---------------------------------------------------------------------------
// Manager
// ---------------------------------------------------------------------------

#[tokio::test]
async fn manager_is_set_changed_and_cleared_with_bare_string_ids() {
    // Arrange
    let app = spawn_app().await;
    let first = app
        .create_user(&entra_user("megan@contoso.com", &guid()))
        .await;
    let second = app
        .create_user(&entra_user("nestor@contoso.com", &guid()))
        .await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", &guid()))
        .await;
    let before = get_user(&app, &id).await;
    let path = format!("/Users/{id}");
    let manager = format!("{ENTERPRISE}:manager");

    // Act / Assert: set (Add, bare id)
    patch_ok(
        &app,
        &path,
        json!([{"op": "Add", "path": manager, "value": first}]),
    )
    .await;
    let mut expected = attrs(&before);
    expected[ENTERPRISE]["manager"] = manager_json(&app, &first);
    assert_eq!(attrs(&get_user(&app, &id).await), expected);

    // change (lowercase replace, bare id)
    patch_ok(
        &app,
        &path,
        json!([{"op": "replace", "path": manager, "value": second}]),
    )
    .await;
    expected[ENTERPRISE]["manager"] = manager_json(&app, &second);
    assert_eq!(attrs(&get_user(&app, &id).await), expected);

    // clear (replace with "")
    patch_ok(
        &app,
        &path,
        json!([{"op": "replace", "path": manager, "value": ""}]),
    )
    .await;
    let after = get_user(&app, &id).await;
    assert_eq!(attrs(&after), attrs(&before));
    assert!(after[ENTERPRISE].get("manager").is_none(), "{after}");
}

#[tokio::test]
async fn manager_in_object_form_is_set_and_cleared_with_an_empty_value() {
    // Arrange: a user whose enterprise extension holds only the manager.
    let app = spawn_app().await;
    let boss = app
        .create_user(&entra_user("megan@contoso.com", &guid()))
        .await;
    let mut body = entra_user("adele@contoso.com", &guid());
    body.as_object_mut().expect("object").remove(ENTERPRISE);
    let id = app.create_user(&body).await;
    let before = get_user(&app, &id).await;
    let path = format!("/Users/{id}?{FLAG}");
    let manager = format!("{ENTERPRISE}:manager");

    // Act
    patch_ok(
        &app,
        &path,
        json!([{"op": "add", "path": manager, "value": {"value": boss}}]),
    )
    .await;
    let set = get_user(&app, &id).await;
    patch_ok(
        &app,
        &path,
        json!([{"op": "replace", "path": manager, "value": {"value": ""}}]),
    )
    .await;
    let cleared = get_user(&app, &id).await;

    // Assert
    assert_eq!(
        set[ENTERPRISE],
        json!({"manager": manager_json(&app, &boss)})
    );
    assert_eq!(set["schemas"], json!([CORE, ENTERPRISE]));
    assert_eq!(attrs(&cleared), attrs(&before));
    assert_eq!(cleared["schemas"], json!([CORE]));
}

#[tokio::test]
async fn manager_in_the_legacy_array_form_without_urn_is_stored_as_the_complex_value() {
    // Arrange
    let app = spawn_app().await;
    let boss = app
        .create_user(&entra_user("megan@contoso.com", &guid()))
        .await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", &guid()))
        .await;
    let before = get_user(&app, &id).await;

    // Act
    patch_ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "Add", "path": "manager", "value": [
            {"$ref": app.url(&format!("/Users/{boss}")), "value": boss}
        ]}]),
    )
    .await;

    // Assert
    let mut expected = attrs(&before);
    expected[ENTERPRISE]["manager"] = manager_json(&app, &boss);
    assert_eq!(attrs(&get_user(&app, &id).await), expected);
}

// ---------------------------------------------------------------------------
// Rename and hard delete
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rename_frees_the_old_user_name_and_claims_the_new_one() {
    // Arrange
    let app = spawn_app().await;
    let renamed = app
        .create_user(&entra_user("adele@contoso.com", &guid()))
        .await;
    let third = app
        .create_user(&entra_user("alex@contoso.com", &guid()))
        .await;

    // Act
    patch_ok(
        &app,
        &format!("/Users/{renamed}"),
        json!([{"op": "Replace", "path": "userName", "value": "adele.vance@contoso.com"}]),
    )
    .await;
    let reuse = app
        .post("/Users", &entra_user("adele@contoso.com", &guid()))
        .await;
    let clash_create = app
        .post("/Users", &entra_user("ADELE.VANCE@contoso.com", &guid()))
        .await;
    let third_before = app.snapshot().await;
    let clash_rename = app
        .patch(
            &format!("/Users/{third}"),
            &patch_body(json!([
                {"op": "Replace", "path": "userName", "value": "adele.vance@contoso.com"}
            ])),
        )
        .await;

    // Assert
    assert_eq!(reuse.status, 201, "{}", reuse.body);
    let new_owner = reuse.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        ids(&find(&app, r#"userName eq "adele@contoso.com""#).await),
        vec![new_owner]
    );
    assert_eq!(
        ids(&find(&app, r#"userName eq "adele.vance@contoso.com""#).await),
        vec![renamed]
    );
    clash_create.assert_scim_error(409, Some("uniqueness"));
    clash_rename.assert_scim_error(409, Some("uniqueness"));
    assert_eq!(
        app.snapshot().await,
        third_before,
        "a failed rename writes nothing"
    );
    assert_eq!(get_user(&app, &third).await["userName"], "alex@contoso.com");
}

#[tokio::test]
async fn hard_delete_answers_204_and_the_user_is_gone_but_its_names_are_reusable() {
    // Arrange
    let app = spawn_app().await;
    let external_id = guid();
    let id = app
        .create_user(&entra_user("adele@contoso.com", &external_id))
        .await;
    let by_external_id = format!(r#"externalId eq "{external_id}""#);

    // Act
    let deleted = app.delete(&format!("/Users/{id}")).await;
    let get = app.get(&format!("/Users/{id}")).await;
    let again = app.delete(&format!("/Users/{id}")).await;
    let filtered = find(&app, &by_external_id).await;
    let listed = app.get("/Users").await;
    let recreated = app
        .post("/Users", &entra_user("adele@contoso.com", &external_id))
        .await;

    // Assert
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null, "204 has an empty body");
    get.assert_scim_error(404, None);
    again.assert_scim_error(404, None);
    assert_eq!(filtered.body["totalResults"], 0);
    assert_eq!(filtered.body["Resources"], json!([]));
    assert_eq!(listed.body["totalResults"], 0);
    assert_eq!(recreated.status, 201, "{}", recreated.body);
    let new_id = recreated.body["id"].as_str().expect("id").to_owned();
    assert_ne!(new_id, id);
    assert_eq!(ids(&find(&app, &by_external_id).await), vec![new_id]);
}

// ---------------------------------------------------------------------------
// Paging
// ---------------------------------------------------------------------------

#[tokio::test]
async fn pages_of_five_over_twelve_users_cover_everyone_once_in_a_stable_order() {
    // Arrange
    let app = spawn_app().await;
    let mut created = BTreeSet::new();
    for n in 0..12 {
        created.insert(
            app.create_user(&entra_user(&format!("user{n:02}@contoso.com"), &guid()))
                .await,
        );
    }

    // Act
    let mut pages = Vec::new();
    for start in [1, 6, 11] {
        pages.push(app.get(&format!("/Users?startIndex={start}&count=5")).await);
    }
    let first_again = app.get("/Users?startIndex=1&count=5").await;
    let everyone = app.get("/Users").await;

    // Assert
    let mut seen = Vec::new();
    for (page, (start, len)) in pages.iter().zip([(1, 5), (6, 5), (11, 2)]) {
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.body["schemas"], json!([LIST]));
        assert_eq!(page.body["totalResults"], 12);
        assert_eq!(page.body["startIndex"], start);
        assert_eq!(page.body["itemsPerPage"], len);
        assert_eq!(ids(page).len(), len);
        seen.extend(ids(page));
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no user on two pages: {seen:?}");
    assert_eq!(unique, created, "no user missing");
    assert_eq!(ids(&first_again), ids(&pages[0]), "same page, same order");
    assert_eq!(ids(&everyone), seen, "pages follow the unpaged order");
}

#[tokio::test]
async fn count_zero_returns_only_the_total_and_a_start_index_past_the_end_an_empty_page() {
    // Arrange
    let app = spawn_app().await;
    for n in 0..3 {
        app.create_user(&entra_user(&format!("user{n}@contoso.com"), &guid()))
            .await;
    }

    // Act
    let none = app.get("/Users?count=0").await;
    let past = app.get("/Users?startIndex=4&count=5").await;

    // Assert
    assert_eq!(
        none.body,
        json!({"schemas": [LIST], "totalResults": 3, "itemsPerPage": 0, "startIndex": 1, "Resources": []})
    );
    assert_eq!(
        past.body,
        json!({"schemas": [LIST], "totalResults": 3, "itemsPerPage": 0, "startIndex": 4, "Resources": []})
    );
}

#[tokio::test]
async fn count_above_the_advertised_maximum_is_clamped_to_it() {
    // Arrange: one user more than a page may hold (stored directly: faster).
    let app = spawn_app().await;
    let config = app.get("/ServiceProviderConfig").await;
    let max = config.body["filter"]["maxResults"]
        .as_u64()
        .expect("filter.maxResults") as usize;
    for n in 0..=max {
        let user = scim_proto::resource::UserResource::from_request(entra_user(
            &format!("bulk{n:04}@contoso.com"),
            &guid(),
        ))
        .expect("valid user");
        app.stores
            .users
            .create(
                &app.tenant,
                user,
                scim_store::activity::Origin::internal(scim_store::activity::Operation::Create),
            )
            .await
            .expect("stored");
    }

    // Act
    let first = app.get("/Users?count=100000").await;
    let rest = app
        .get(&format!("/Users?startIndex={}&count=100000", max + 1))
        .await;

    // Assert
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["totalResults"], max + 1);
    assert_eq!(first.body["itemsPerPage"], max);
    assert_eq!(ids(&first).len(), max);
    assert_eq!(rest.body["itemsPerPage"], 1);
    assert!(!ids(&first).contains(&ids(&rest)[0]));
}

// ---------------------------------------------------------------------------
// Projections, ETags, PUT
// ---------------------------------------------------------------------------

#[tokio::test]
async fn attributes_user_name_returns_only_id_schemas_and_user_name() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", &guid()))
        .await;

    // Act
    let one = app.get(&format!("/Users/{id}?attributes=userName")).await;
    let list = app.get("/Users?attributes=userName").await;

    // Assert
    let expected =
        json!({"schemas": [CORE, ENTERPRISE], "id": id, "userName": "adele@contoso.com"});
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body, expected);
    assert_eq!(list.body["Resources"], json!([expected]));
}

#[tokio::test]
async fn excluded_attributes_drops_emails_and_name_and_keeps_everything_else() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", &guid()))
        .await;
    let full = get_user(&app, &id).await;

    // Act
    let reply = app
        .get(&format!("/Users/{id}?excludedAttributes=emails,name"))
        .await;

    // Assert
    let mut expected = full.clone();
    let map = expected.as_object_mut().expect("object");
    map.remove("emails");
    map.remove("name");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, expected);
}

#[tokio::test]
async fn patch_with_a_stale_if_match_is_412_and_changes_nothing() {
    // Arrange: version 2, so W/"1" is stale.
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", &guid()))
        .await;
    patch_ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "Replace", "path": "title", "value": "Sales Manager"}]),
    )
    .await;
    let before = app.snapshot().await;
    let ops = patch_body(json!([{"op": "Replace", "path": "displayName", "value": "Adele V."}]));

    // Act
    let stale = app
        .send_with(
            "PATCH",
            &format!("/Users/{id}"),
            Some(&ops),
            &app.token,
            &[("if-match", "W/\"1\"")],
        )
        .await;
    let unchanged = app.snapshot().await;
    let current = app
        .send_with(
            "PATCH",
            &format!("/Users/{id}"),
            Some(&ops),
            &app.token,
            &[("if-match", "W/\"2\"")],
        )
        .await;

    // Assert
    stale.assert_scim_error(412, None);
    assert_eq!(unchanged, before);
    assert_eq!(current.status, 200, "{}", current.body);
    assert_eq!(current.header("etag"), Some("W/\"3\""));
    assert_eq!(current.body["meta"]["version"], "W/\"3\"");
    assert_eq!(current.body["displayName"], "Adele V.");
}

#[tokio::test]
async fn a_patch_that_changes_nothing_keeps_the_version_and_writes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", &guid()))
        .await;
    let before = get_user(&app, &id).await;
    let stored = app.snapshot().await;

    // Act: values equal to the stored ones, in both dialects.
    let default = patch_ok(
        &app,
        &format!("/Users/{id}"),
        json!([
            {"op": "Replace", "path": "displayName", "value": "Adele Vance"},
            {"op": "Replace", "path": "active", "value": "True"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "adele@contoso.com"}
        ]),
    )
    .await;
    let flag = patch_ok(
        &app,
        &format!("/Users/{id}?{FLAG}"),
        json!([{"op": "replace", "value": {
            "name.givenName": "Adele",
            format!("{ENTERPRISE}:department"): "Retail",
            "active": true
        }}]),
    )
    .await;

    // Assert
    for reply in [&default, &flag] {
        assert_eq!(reply.header("etag"), Some("W/\"1\""));
        assert_eq!(reply.body, before);
    }
    assert_eq!(app.snapshot().await, stored);
}

#[tokio::test]
async fn patch_with_empty_strings_then_nulls_leaves_the_attributes_empty_then_absent() {
    // Arrange: Microsoft's SCIM_Null_Update test.
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", &guid()))
        .await;
    let before = get_user(&app, &id).await;
    let ops = |v: Value| {
        json!([
            {"op": "Replace", "path": "title", "value": v},
            {"op": "Replace", "path": "name.givenName", "value": v},
            {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": v}
        ])
    };

    // Act
    patch_ok(&app, &format!("/Users/{id}"), ops(json!(""))).await;
    let emptied = get_user(&app, &id).await;
    patch_ok(&app, &format!("/Users/{id}"), ops(Value::Null)).await;
    let nulled = get_user(&app, &id).await;

    // Assert: "" is stored as sent; null unassigns.
    let mut expected = attrs(&before);
    expected["title"] = json!("");
    expected["name"]["givenName"] = json!("");
    expected[ENTERPRISE]["department"] = json!("");
    assert_eq!(attrs(&emptied), expected);
    let map = expected.as_object_mut().expect("object");
    map.remove("title");
    expected["name"]
        .as_object_mut()
        .expect("name")
        .remove("givenName");
    expected[ENTERPRISE]
        .as_object_mut()
        .expect("ext")
        .remove("department");
    assert_eq!(attrs(&nulled), expected);
}

#[tokio::test]
async fn put_replaces_the_whole_resource_and_keeps_id_and_created() {
    // Arrange
    let app = spawn_app().await;
    let external_id = guid();
    let id = app
        .create_user(&entra_user("adele@contoso.com", &external_id))
        .await;
    let before = get_user(&app, &id).await;

    // Act: no emails, title, displayName or extension; a foreign id.
    let reply = app
        .put(
            &format!("/Users/{id}"),
            &json!({
                "schemas": [CORE],
                "id": "someone-else",
                "userName": "adele@contoso.com",
                "externalId": external_id,
                "active": true,
                "name": {"givenName": "Adele", "familyName": "Vance"}
            }),
        )
        .await;

    // Assert
    assert_eq!(reply.status, 200, "{}", reply.body);
    let after = get_user(&app, &id).await;
    assert_eq!(reply.body, after);
    assert_eq!(
        attrs(&after),
        json!({
            "schemas": [CORE],
            "id": id,
            "userName": "adele@contoso.com",
            "externalId": external_id,
            "active": true,
            "name": {"givenName": "Adele", "familyName": "Vance"}
        })
    );
    assert_eq!(after["meta"]["created"], before["meta"]["created"]);
    assert_eq!(after["meta"]["location"], before["meta"]["location"]);
    assert_eq!(after["meta"]["version"], "W/\"2\"");
    assert_eq!(reply.header("etag"), Some("W/\"2\""));
}

// ---------------------------------------------------------------------------
// Extensions and content types
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unknown_extension_data_is_kept_returned_and_patchable() {
    // Arrange
    let app = spawn_app().await;
    let mut body = entra_user("adele@contoso.com", &guid());
    body["schemas"] = json!([CORE, ENTERPRISE, CUSTOM]);
    body[CUSTOM] = json!({"costCode": "X1", "badge": {"number": 7, "site": "Redmond"}});

    // Act
    let created = app.post("/Users", &body).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let fetched = get_user(&app, &id).await;
    patch_ok(
        &app,
        &format!("/Users/{id}"),
        json!([{"op": "Replace", "path": format!("{CUSTOM}:costCode"), "value": "X2"}]),
    )
    .await;
    let patched = get_user(&app, &id).await;

    // Assert
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body, fetched);
    assert_eq!(fetched["schemas"], json!([CORE, ENTERPRISE, CUSTOM]));
    assert_eq!(
        fetched[CUSTOM],
        json!({"costCode": "X1", "badge": {"number": 7, "site": "Redmond"}})
    );
    let mut expected = attrs(&fetched);
    expected[CUSTOM]["costCode"] = json!("X2");
    assert_eq!(attrs(&patched), expected);
}

#[tokio::test]
async fn post_and_patch_accept_json_and_scim_json_content_types() {
    // Arrange
    let app = spawn_app().await;
    let as_bytes = |v: &Value| serde_json::to_vec(v).expect("json");
    let rename = |name: &str| {
        as_bytes(&patch_body(json!([
            {"op": "Replace", "path": "displayName", "value": name}
        ])))
    };

    // Act
    let mut replies = Vec::new();
    for (n, content_type) in ["application/json", "application/scim+json"]
        .into_iter()
        .enumerate()
    {
        let created = app
            .send_raw(
                "POST",
                "/Users",
                content_type,
                as_bytes(&entra_user(&format!("user{n}@contoso.com"), &guid())),
            )
            .await;
        assert_eq!(created.status, 201, "{content_type}: {}", created.body);
        let id = created.body["id"].as_str().expect("id").to_owned();
        let patched = app
            .send_raw(
                "PATCH",
                &format!("/Users/{id}"),
                content_type,
                rename(content_type),
            )
            .await;
        replies.push((content_type, id, patched));
    }

    // Assert
    for (content_type, id, patched) in replies {
        assert_eq!(patched.status, 200, "{content_type}: {}", patched.body);
        assert_scim_json(&patched);
        assert_eq!(get_user(&app, &id).await["displayName"], content_type);
    }
}

// ---------------------------------------------------------------------------
// Tenant isolation and URL shape
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_user_of_one_tenant_is_invisible_and_untouchable_for_another() {
    // Arrange
    let app = spawn_app().await;
    let external_id = guid();
    let id = app
        .create_user(&entra_user("adele@contoso.com", &external_id))
        .await;
    let token_b = app.other_tenant("tenant-b").await;
    let before = app.snapshot().await;
    let as_b = |method: &'static str, path: String, body: Option<Value>| {
        let token = token_b.clone();
        let app = &app;
        async move {
            app.send_with(method, &path, body.as_ref(), &token, &[])
                .await
        }
    };
    let user = format!("/Users/{id}");
    let disable = patch_body(json!([{"op": "Replace", "path": "active", "value": "False"}]));

    // Act
    let get = as_b("GET", user.clone(), None).await;
    let by_external_id = as_b(
        "GET",
        format!(
            "/Users?filter={}",
            enc(&format!(r#"externalId eq "{external_id}""#))
        ),
        None,
    )
    .await;
    let by_user_name = as_b(
        "GET",
        format!(
            "/Users?filter={}",
            enc(r#"userName eq "adele@contoso.com""#)
        ),
        None,
    )
    .await;
    let list = as_b("GET", "/Users".into(), None).await;
    let patch = as_b("PATCH", user.clone(), Some(disable)).await;
    let put = as_b(
        "PUT",
        user.clone(),
        Some(json!({"schemas": [CORE], "userName": "mallory@contoso.com"})),
    )
    .await;
    let delete = as_b("DELETE", user.clone(), None).await;
    let untouched = app.snapshot().await;

    // Assert
    get.assert_scim_error(404, None);
    patch.assert_scim_error(404, None);
    put.assert_scim_error(404, None);
    delete.assert_scim_error(404, None);
    for reply in [&by_external_id, &by_user_name, &list] {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["totalResults"], 0);
        assert_eq!(reply.body["Resources"], json!([]));
    }
    assert_eq!(untouched, before, "tenant B changed nothing");
    assert_eq!(get_user(&app, &id).await["active"], json!(true));
}

#[tokio::test]
async fn the_same_user_name_and_external_id_can_exist_in_two_tenants() {
    // Arrange
    let app = spawn_app().await;
    let external_id = guid();
    let id_a = app
        .create_user(&entra_user("adele@contoso.com", &external_id))
        .await;
    let token_b = app.other_tenant("tenant-b").await;

    // Act
    let created_b = app
        .send_with(
            "POST",
            "/Users",
            Some(&entra_user("adele@contoso.com", &external_id)),
            &token_b,
            &[],
        )
        .await;
    let listed_a = app.get("/Users").await;

    // Assert
    assert_eq!(created_b.status, 201, "{}", created_b.body);
    assert_ne!(created_b.body["id"], json!(id_a));
    assert_eq!(ids(&listed_a), vec![id_a]);
}

#[tokio::test]
async fn the_aadopt_flag_in_the_query_is_ignored_on_every_route() {
    // Arrange
    let app = spawn_app().await;
    let external_id = guid();

    // Act
    let created = app
        .post(
            &format!("/Users?{FLAG}"),
            &entra_user("adele@contoso.com", &external_id),
        )
        .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let user = format!("/Users/{id}?{FLAG}");
    let listed = app.get(&format!("/Users?{FLAG}")).await;
    let fetched = app.get(&user).await;
    let replaced = app
        .put(&user, &entra_user("adele@contoso.com", &external_id))
        .await;
    let patched = app
        .patch(
            &user,
            &patch_body(json!([{"op": "replace", "path": "title", "value": "CEO"}])),
        )
        .await;
    let config = app.get(&format!("/ServiceProviderConfig?{FLAG}")).await;
    let deleted = app.delete(&user).await;

    // Assert
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(ids(&listed), vec![id.clone()]);
    assert_eq!(fetched.status, 200, "{}", fetched.body);
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["title"], "CEO");
    assert_eq!(config.status, 200, "{}", config.body);
    assert_eq!(deleted.status, 204);
}

#[tokio::test]
async fn a_tenant_url_typed_with_a_trailing_slash_still_works() {
    // Arrange: Tenant URL `…/scim/v2/`, so Entra asks for `…/scim/v2//Users`.
    let app = spawn_app().await;
    let external_id = guid();

    // Act
    let created = app
        .post("//Users", &entra_user("adele@contoso.com", &external_id))
        .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let found = app
        .get(&format!(
            "//Users?filter={}",
            enc(&format!(r#"externalId eq "{external_id}""#))
        ))
        .await;
    let fetched = app.get(&format!("//Users/{id}")).await;
    let patched = app
        .patch(
            &format!("//Users/{id}?{FLAG}"),
            &patch_body(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    let deleted = app.delete(&format!("//Users/{id}")).await;

    // Assert: and the URLs we hand out are the canonical ones.
    assert_eq!(created.status, 201, "{}", created.body);
    let location = app.url(&format!("/Users/{id}"));
    assert_eq!(created.header("location"), Some(location.as_str()));
    assert_eq!(created.body["meta"]["location"], location);
    assert_eq!(ids(&found), vec![id.clone()]);
    assert_eq!(fetched.status, 200, "{}", fetched.body);
    assert_eq!(fetched.body["id"], json!(id));
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["active"], json!(false));
    assert_eq!(deleted.status, 204);
    assert_eq!(app.get(&format!("/Users/{id}")).await.status, 404);
}

#[tokio::test]
async fn a_manager_set_with_a_ref_is_returned_with_the_managers_url_as_its_ref() {
    // Arrange
    let app = spawn_app().await;
    let boss = app
        .create_user(&entra_user("boss@contoso.com", "ext-boss"))
        .await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", "ext-adele"))
        .await;
    let manager_ref = format!("{}/Users/{boss}", app.base);
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{
            "op": "replace",
            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "value": {"value": boss, "$ref": manager_ref},
        }],
    });

    // Act
    let patched = app
        .send("PATCH", &format!("/Users/{id}"), Some(&patch))
        .await;
    let read = app.get(&format!("/Users/{id}")).await;

    // Assert
    assert_eq!(patched.status, 200, "{}", patched.body);
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    for body in [&patched.body, &read.body] {
        assert_eq!(body[ent]["manager"]["value"], json!(boss), "{body}");
        assert_eq!(body[ent]["manager"]["$ref"], json!(manager_ref), "{body}");
    }
}

/// A manager as returned: its id and, derived from it, its URL as `$ref`.
fn manager_json(app: &TestApp, id: &str) -> Value {
    json!({"value": id, "$ref": format!("{}/Users/{id}", app.base)})
}
