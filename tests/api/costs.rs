//! What each Entra request shape costs in DynamoDB requests. DynamoDB bills
//! and throttles per request, so these are asserted exactly: a change that
//! adds a read to Entra's hot path fails here, not on a customer's bill.
//! (The table in the README and BENCHMARKS.md is this test's output.)

use std::collections::BTreeMap;

use serde_json::json;

use crate::helpers::{TestApp, enc, entra_user, spawn_app};

async fn cost(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, BTreeMap<String, u64>) {
    app.requests.take();
    let reply = app.send(method, path, body.as_ref()).await;
    (reply.status, app.requests.take())
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test]
async fn entra_user_requests_cost_a_constant_small_number_of_dynamodb_requests() {
    // Arrange
    let app = spawn_app().await;
    let manager = app
        .create_user(&entra_user("boss@contoso.com", "ext-boss"))
        .await;
    let patch = |ops: serde_json::Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let ext = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef";

    // Act + Assert, one request shape at a time.
    let (status, c) = cost(
        &app,
        "GET",
        &format!(
            "/Users?filter={}",
            enc(r#"externalId eq "7d420df3-9995-4831-a406-ecf8166f5f6a""#)
        ),
        None,
    )
    .await;
    assert_eq!(
        (status, c),
        (200, counts(&[("GetItem", 1)])),
        "Test Connection probe"
    );

    let (status, c) = cost(
        &app,
        "POST",
        "/Users",
        Some(entra_user("adele@contoso.com", ext)),
    )
    .await;
    assert_eq!(
        (status, c),
        (201, counts(&[("TransactWriteItems", 1)])),
        "create"
    );
    let id = app
        .get(&format!(
            "/Users?filter={}",
            enc(&format!(r#"externalId eq "{ext}""#))
        ))
        .await
        .body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, c) = cost(
        &app,
        "GET",
        &format!(
            "/Users?filter={}",
            enc(&format!(r#"externalId eq "{ext}""#))
        ),
        None,
    )
    .await;
    assert_eq!(
        (status, c),
        (200, counts(&[("GetItem", 2)])),
        "match on externalId"
    );

    let (status, c) = cost(
        &app,
        "GET",
        &format!(
            "/Users?filter={}",
            enc(r#"userName eq "ADELE@contoso.com""#)
        ),
        None,
    )
    .await;
    assert_eq!(
        (status, c),
        (200, counts(&[("GetItem", 2)])),
        "match on userName"
    );

    let (status, c) = cost(
        &app,
        "GET",
        &format!(
            "/Users?filter={}",
            enc(r#"emails[type eq "work"].value eq "adele@contoso.com""#)
        ),
        None,
    )
    .await;
    assert_eq!(
        (status, c),
        (200, counts(&[("BatchGetItem", 1), ("Query", 1)])),
        "match on work email"
    );

    let (status, c) = cost(&app, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(
        (status, c),
        (200, counts(&[("GetItem", 1), ("Query", 1)])),
        "get by id (with groups)"
    );

    let replace = patch(json!([{"op": "Replace", "path": "title", "value": "Director"}]));
    let (status, c) = cost(
        &app,
        "PATCH",
        &format!("/Users/{id}"),
        Some(replace.clone()),
    )
    .await;
    assert_eq!(
        (status, c),
        (
            200,
            counts(&[("GetItem", 1), ("Query", 1), ("TransactWriteItems", 1)])
        ),
        "PATCH attributes"
    );

    let (status, c) = cost(&app, "PATCH", &format!("/Users/{id}"), Some(replace)).await;
    assert_eq!(
        (status, c),
        (200, counts(&[("GetItem", 1), ("Query", 1)])),
        "PATCH that changes nothing writes nothing"
    );

    let disable = patch(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    let (status, c) = cost(&app, "PATCH", &format!("/Users/{id}"), Some(disable)).await;
    assert_eq!(
        (status, c),
        (
            200,
            counts(&[("GetItem", 1), ("Query", 1), ("TransactWriteItems", 1)])
        ),
        "disable"
    );

    let set_manager = patch(
        json!([{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": manager}]),
    );
    let (status, c) = cost(&app, "PATCH", &format!("/Users/{id}"), Some(set_manager)).await;
    assert_eq!(
        (status, c),
        (
            200,
            counts(&[("GetItem", 1), ("Query", 1), ("TransactWriteItems", 1)])
        ),
        "set manager"
    );

    let (status, c) = cost(&app, "GET", "/Users?startIndex=1&count=5", None).await;
    assert_eq!(
        (status, c),
        (200, counts(&[("GetItem", 1), ("Query", 1)])),
        "first page"
    );

    let (status, c) = cost(&app, "DELETE", &format!("/Users/{id}"), None).await;
    assert_eq!(
        (status, c),
        (
            204,
            counts(&[("BatchGetItem", 1), ("Query", 1), ("TransactWriteItems", 1)])
        ),
        "hard delete: the user and its membership head, its groups, one transaction"
    );
}

#[tokio::test]
async fn entra_group_and_membership_requests_cost_a_constant_small_number_of_dynamodb_requests() {
    // Arrange
    let app = spawn_app().await;
    let adele = app
        .create_user(&entra_user("adele@contoso.com", "ext-adele"))
        .await;
    let megan = app
        .create_user(&entra_user("megan@contoso.com", "ext-megan"))
        .await;
    let patch = |ops: serde_json::Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let ext = "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159";
    let created = app
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales", "externalId": ext}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let gid = created.body["id"].as_str().unwrap().to_owned();
    let group = format!("/Groups/{gid}");
    let members =
        |ids: &[&str]| -> serde_json::Value { ids.iter().map(|id| json!({"value": id})).collect() };

    // Act + Assert, one request shape at a time.
    let (status, c) = cost(
        &app,
        "GET",
        &format!(
            "/Groups?excludedAttributes=members&filter={}",
            enc(&format!(r#"externalId eq "{ext}""#))
        ),
        None,
    )
    .await;
    assert_eq!((status, c), (200, counts(&[("GetItem", 2)])), "group match");

    let add = patch(json!([{"op": "Add", "path": "members", "value": members(&[&adele, &megan])}]));
    let (status, c) = cost(&app, "PATCH", &group, Some(add)).await;
    assert_eq!(
        (status, c),
        (204, counts(&[("TransactWriteItems", 1)])),
        "add members: one transaction (the group's version bump, which needs the group; per member the user's guard, the membership head, the pair, its mirror and the mark)"
    );

    let (status, c) = cost(
        &app,
        "GET",
        &format!(
            "/Groups?filter={}&excludedAttributes=members",
            enc(&format!(r#"id eq "{gid}" and members eq "{adele}""#))
        ),
        None,
    )
    .await;
    assert_eq!(
        (status, c),
        (200, counts(&[("GetItem", 1), ("BatchGetItem", 1)])),
        "legacy membership check"
    );

    let remove = patch(json!([{"op": "Remove", "path": "members", "value": members(&[&megan])}]));
    let (status, c) = cost(&app, "PATCH", &group, Some(remove)).await;
    assert_eq!(
        (status, c),
        (204, counts(&[("TransactWriteItems", 1)])),
        "remove members"
    );

    let by_filter =
        patch(json!([{"op": "remove", "path": format!("members[value eq \"{adele}\"]")}]));
    let (status, c) = cost(&app, "PATCH", &group, Some(by_filter)).await;
    assert_eq!(
        (status, c),
        (204, counts(&[("TransactWriteItems", 1)])),
        "remove a member by filter (Okta)"
    );
    let readd = patch(json!([{"op": "Add", "path": "members", "value": members(&[&adele])}]));
    assert_eq!(app.patch(&group, &readd).await.status, 204);

    let rename = patch(json!([{"op": "Replace", "path": "displayName", "value": "Sales EMEA"}]));
    let (status, c) = cost(&app, "PATCH", &group, Some(rename)).await;
    assert_eq!(
        (status, c),
        (204, counts(&[("GetItem", 1), ("TransactWriteItems", 1)])),
        "rename"
    );

    let (status, c) = cost(&app, "DELETE", &format!("/Users/{adele}"), None).await;
    assert_eq!(
        (status, c),
        (
            204,
            counts(&[("BatchGetItem", 1), ("Query", 1), ("TransactWriteItems", 1)])
        ),
        "delete a user in a group: its memberships go in the same transaction"
    );

    let add = patch(json!([{"op": "Add", "path": "members", "value": members(&[&megan])}]));
    assert_eq!(app.patch(&group, &add).await.status, 204);
    let (status, c) = cost(&app, "DELETE", &group, None).await;
    assert_eq!(
        (status, c),
        (
            204,
            counts(&[("GetItem", 1), ("Query", 1), ("TransactWriteItems", 1)])
        ),
        "delete a group with members: its memberships go in the same transaction"
    );
}

#[tokio::test]
async fn the_identity_providers_call_is_noted_once_per_interval_for_one_update_beside_the_request()
{
    // Arrange
    let app = spawn_app().await;
    let probe = format!(
        "/Users?filter={}",
        enc(r#"externalId eq "7d420df3-9995-4831-a406-ecf8166f5f6a""#)
    );

    // Act
    let (first_status, first) = cost(&app, "GET", &probe, None).await;
    let (second_status, second) = cost(&app, "GET", &probe, None).await;

    // Assert
    assert_eq!(
        (first_status, first),
        (200, counts(&[("GetItem", 1), ("UpdateItem", 1)])),
        "the interval's first request also notes the call"
    );
    assert_eq!(
        (second_status, second),
        (200, counts(&[("GetItem", 1)])),
        "later requests in the interval cost what they always did"
    );
}

#[tokio::test]
async fn ten_members_are_added_in_one_transaction_and_a_missing_user_or_group_writes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(
            app.create_user(&entra_user(
                &format!("u{i}@contoso.com"),
                &format!("ext-{i}"),
            ))
            .await,
        );
    }
    let created = app
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ten"}),
        )
        .await;
    let group = format!("/Groups/{}", created.body["id"].as_str().unwrap());
    let add = |ids: &[&str]| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "Add", "path": "members",
                               "value": ids.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()}]})
    };
    let all: Vec<&str> = users.iter().map(String::as_str).collect();
    let ghost = "4f3c1a2b-9d8e-4f7a-8b6c-5d4e3f2a1b0c";

    // Act
    let (status, ten) = cost(&app, "PATCH", &group, Some(add(&all))).await;
    let before = app.snapshot().await;
    let (missing_user, missing_user_cost) =
        cost(&app, "PATCH", &group, Some(add(&[all[0], ghost]))).await;
    let after_missing_user = app.snapshot().await;
    let (missing_group, _) = cost(
        &app,
        "PATCH",
        &format!("/Groups/{ghost}"),
        Some(add(&[all[0]])),
    )
    .await;

    // Assert
    assert_eq!((status, ten), (204, counts(&[("TransactWriteItems", 1)])));
    let listed = app.get(&format!("{group}?attributes=members")).await;
    assert_eq!(listed.body["members"].as_array().map(Vec::len), Some(10));
    assert_eq!(missing_user, 400);
    // The refused transaction, and the refusal in the activity log.
    assert_eq!(
        missing_user_cost,
        counts(&[("PutItem", 1), ("TransactWriteItems", 1)])
    );
    let reply = app.patch(&group, &add(&[all[0], ghost])).await;
    assert!(
        reply.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains(ghost)),
        "the 400 names the missing user: {}",
        reply.body
    );
    assert_eq!(after_missing_user, before, "nothing written");
    assert_eq!(missing_group, 404);
    assert_eq!(app.snapshot().await, before, "nothing written");
}
