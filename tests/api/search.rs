//! RFC 7644 §3.4.3 searches (`POST /Users/.search`, `/Groups/.search`,
//! `/.search`) and sorting (§3.4.2.3), on both list forms.

use serde_json::{Value, json};

use crate::helpers::{TestApp, enc, entra_user, spawn_app};

const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

fn user(name: &str, title: &str) -> Value {
    let mut u = entra_user(&format!("{name}@contoso.com"), &format!("ext-{name}"));
    u["title"] = json!(title);
    u["displayName"] = json!(name);
    u
}

fn group(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name})
}

fn user_names(body: &Value) -> Vec<String> {
    body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| {
            r["userName"]
                .as_str()
                .or(r["displayName"].as_str())
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

/// Users carol, alice, dave, bob (titles Zeta, Alpha, none-ish, Alpha).
async fn four_users(app: &TestApp) {
    for (name, title) in [
        ("carol", "Zeta"),
        ("alice", "Alpha"),
        ("dave", "Mid"),
        ("bob", "Alpha"),
    ] {
        app.create_user(&user(name, title)).await;
    }
}

#[tokio::test]
async fn users_search_filters_projects_sorts_and_pages_like_its_query_string() {
    // Arrange
    let app = spawn_app().await;
    four_users(&app).await;
    let body = json!({
        "schemas": [SEARCH],
        "filter": "title eq \"Alpha\" or title eq \"Zeta\"",
        "attributes": ["userName"],
        "sortBy": "userName",
        "sortOrder": "descending",
        "startIndex": 2,
        "count": 2,
    });
    let query = format!(
        "/Users?filter={}&attributes=userName&sortBy=userName&sortOrder=descending&startIndex=2&count=2",
        enc(r#"title eq "Alpha" or title eq "Zeta""#)
    );

    // Act
    let searched = app.post("/Users/.search", &body).await;
    let listed = app.get(&query).await;

    // Assert
    assert_eq!(searched.status, 200, "{}", searched.body);
    assert_eq!(searched.body["totalResults"], 3);
    assert_eq!(searched.body["startIndex"], 2);
    assert_eq!(
        user_names(&searched.body),
        ["bob@contoso.com", "alice@contoso.com"]
    );
    let first = &searched.body["Resources"][0];
    assert!(first.get("title").is_none(), "attributes=userName: {first}");
    assert!(first.get("id").is_some(), "id is always returned");
    assert_eq!(searched.body, listed.body);
}

#[tokio::test]
async fn an_unfiltered_list_sorts_by_any_attribute_with_missing_values_last() {
    // Arrange
    let app = spawn_app().await;
    four_users(&app).await;
    let mut no_title = user("erin", "x");
    no_title.as_object_mut().expect("object").remove("title");
    app.create_user(&no_title).await;

    // Act
    let up = app.get("/Users?sortBy=title").await;
    let down = app.get("/Users?sortBy=title&sortOrder=descending").await;

    // Assert: equal titles keep id order, so only the title order is fixed.
    let titles = |b: &Value| -> Vec<String> {
        b["Resources"]
            .as_array()
            .expect("Resources")
            .iter()
            .map(|r| r["title"].as_str().unwrap_or("-").to_owned())
            .collect()
    };
    assert_eq!(titles(&up.body), ["Alpha", "Alpha", "Mid", "Zeta", "-"]);
    assert_eq!(titles(&down.body), ["Zeta", "Mid", "Alpha", "Alpha", "-"]);
}

#[tokio::test]
async fn groups_search_sorts_by_display_name_ignoring_case() {
    // Arrange
    let app = spawn_app().await;
    for name in ["sales", "Admins", "Marketing"] {
        assert_eq!(app.post("/Groups", &group(name)).await.status, 201);
    }

    // Act
    let found = app
        .post(
            "/Groups/.search",
            &json!({"schemas": [SEARCH], "sortBy": "displayName", "excludedAttributes": ["members"]}),
        )
        .await;

    // Assert
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(user_names(&found.body), ["Admins", "Marketing", "sales"]);
}

#[tokio::test]
async fn root_search_lists_users_then_groups_and_pages_across_both() {
    // Arrange
    let app = spawn_app().await;
    four_users(&app).await;
    for name in ["Sales", "Admins"] {
        assert_eq!(app.post("/Groups", &group(name)).await.status, 201);
    }

    // Act
    let all = app.post("/.search", &json!({"schemas": [SEARCH]})).await;
    let window = app
        .post(
            "/.search",
            &json!({"schemas": [SEARCH], "startIndex": 4, "count": 2}),
        )
        .await;
    let sorted = app
        .post(
            "/.search",
            &json!({"schemas": [SEARCH], "sortBy": "displayName", "count": 3}),
        )
        .await;
    let filtered = app
        .post(
            "/.search",
            &json!({"schemas": [SEARCH], "filter": "displayName sw \"a\""}),
        )
        .await;

    // Assert
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["totalResults"], 6);
    let types: Vec<&str> = all.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["meta"]["resourceType"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(types, ["User", "User", "User", "User", "Group", "Group"]);
    assert_eq!(window.body["totalResults"], 6);
    let w: Vec<&str> = window.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["meta"]["resourceType"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(w, ["User", "Group"], "the window spans the boundary");
    assert_eq!(
        user_names(&sorted.body),
        ["Admins", "alice@contoso.com", "bob@contoso.com"],
        "merged in displayName order"
    );
    assert_eq!(sorted.body["totalResults"], 6);
    assert_eq!(
        user_names(&filtered.body),
        ["alice@contoso.com", "Admins"],
        "a filter applies to both types"
    );
}

#[tokio::test]
async fn bad_search_requests_are_scim_errors_that_change_nothing() {
    // Arrange
    let app = spawn_app().await;
    four_users(&app).await;
    let before = app.snapshot().await;

    // Act + Assert
    for (path, body, scim_type) in [
        (
            "/Users/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}),
            "invalidSyntax",
        ),
        (
            "/Groups/.search",
            json!({"filter": "displayName eq"}),
            "invalidFilter",
        ),
        (
            "/.search",
            json!({"sortBy": "userName", "sortOrder": "upwards"}),
            "invalidValue",
        ),
        ("/Users/.search", json!({"count": "ten"}), "invalidValue"),
        ("/Users/.search", json!({"attributes": [1]}), "invalidValue"),
    ] {
        app.post(path, &body)
            .await
            .assert_scim_error(400, Some(scim_type));
    }
    let get = app.get("/Users/.search").await;
    assert_eq!(get.status, 405, "search is a POST: {}", get.body);
    assert_eq!(app.snapshot().await, before);
}
