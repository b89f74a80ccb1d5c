//! The Members sync and group changes: a user's groups are a mappable member
//! property, but joining, leaving, renaming or deleting a group writes no
//! user. The group store marks those changes; an incremental sync picks them
//! up (a renamed group's members a batch at a time), and clears the marks.

use member_sync::mapping::{default_mapping, parse_assignment};
use member_sync::{SyncCounts, set_mapping};
use scim_store::groups::{ChangedGroups, GroupStore as _, MembershipChange};
use scim_store::users::UserStore as _;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::sync::{
    PATCH_OP, counts, engine, member_of, person, preview, prop, state_store, sync,
    sync_a_batch_per_invocation,
};

/// The default mapping plus `groups → teams`, applied by a first sync.
async fn map_groups_and_sync(app: &TestApp) {
    let mut entries = default_mapping();
    entries.push(parse_assignment("groups=teams").expect("assignment parses"));
    set_mapping(state_store(app).as_ref(), &app.tenant, entries)
        .await
        .expect("mapping saved");
    sync(app).await;
}

async fn create_group(app: &TestApp, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    let reply = app
        .post(
            "/Groups",
            &json!({"displayName": name, "externalId": uuid::Uuid::new_v4().to_string(), "members": members}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().expect("group id").to_owned()
}

async fn patch_group(app: &TestApp, id: &str, ops: Value) {
    let reply = app
        .patch(
            &format!("/Groups/{id}"),
            &json!({"schemas": [PATCH_OP], "Operations": ops}),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
}

async fn teams(app: &TestApp, user: &str) -> Value {
    prop(&member_of(app, user).await, "teams")
        .cloned()
        .unwrap_or(Value::Null)
}

async fn membership_changes(app: &TestApp) -> Vec<MembershipChange> {
    app.stores
        .groups
        .membership_changes(&app.tenant, None, 1000)
        .await
        .expect("membership changes")
        .0
}

fn incremental(report: &member_sync::SyncReport) -> bool {
    !report.full && report.complete
}

#[tokio::test]
async fn joining_and_leaving_a_group_is_previewed_then_synced_incrementally() {
    // Arrange
    let app = spawn_app().await;
    let adele = app
        .create_user(&person("adele@contoso.com", "Retail Manager", "Oslo"))
        .await;
    let alex = app
        .create_user(&person("alex@contoso.com", "Engineer", "Bergen"))
        .await;
    let sales = create_group(&app, "Sales", &[&adele]).await;
    map_groups_and_sync(&app).await;
    assert_eq!(teams(&app, &adele).await, json!(["Sales"]));
    assert_eq!(teams(&app, &alex).await, json!([]));

    // Act: Entra adds Alex and removes Adele (by value), in one PATCH.
    patch_group(
        &app,
        &sales,
        json!([
            {"op": "Add", "path": "members", "value": [{"value": alex}]},
            {"op": "Remove", "path": "members", "value": [{"value": adele}]}
        ]),
    )
    .await;
    let expected = preview(&app).await;
    let report = sync(&app).await;

    // Assert
    assert!(incremental(&report), "no full reconciliation needed");
    assert_eq!(report.counts, counts(0, 2, 0, 0, 0));
    assert_eq!(expected.counts, report.counts);
    assert_eq!(expected.changes, report.changes, "the preview was exact");
    let alex_change = report
        .changes
        .iter()
        .find(|c| c.scim_user_id == alex)
        .expect("Alex's member changed");
    assert_eq!(alex_change.properties["teams"].before, json!([]));
    assert_eq!(alex_change.properties["teams"].after, json!(["Sales"]));
    assert_eq!(teams(&app, &adele).await, json!([]));
    assert_eq!(teams(&app, &alex).await, json!(["Sales"]));
    assert!(membership_changes(&app).await.is_empty(), "marks cleared");
    assert_eq!(sync(&app).await.counts, SyncCounts::default());
}

#[tokio::test]
async fn renaming_a_group_updates_every_members_groups_across_interrupted_invocations() {
    // Arrange
    let app = spawn_app().await;
    let mut users = Vec::new();
    for i in 0..7 {
        let body = person(&format!("u{i}@contoso.com"), "T", "Oslo");
        users.push(app.create_user(&body).await);
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let sales = create_group(&app, "Sales", &refs).await;
    map_groups_and_sync(&app).await;

    // Act: Entra renames the group (a path-less replace); each sync
    // invocation starts past its deadline, so it does one batch of 2.
    patch_group(
        &app,
        &sales,
        json!([{"op": "Replace", "value": {"displayName": "Sales EMEA"}}]),
    )
    .await;
    let reports = sync_a_batch_per_invocation(&app, &engine(&app).with_batch_size(2)).await;

    // Assert
    let last = reports.last().expect("a report");
    assert!(last.complete);
    assert!(reports.len() >= 4, "{} invocations", reports.len());
    assert!(
        reports.iter().all(|r| r.run_id == last.run_id),
        "one run, resumed"
    );
    assert_eq!(last.counts, counts(0, 7, 0, 0, 0));
    for user in &users {
        assert_eq!(teams(&app, user).await, json!(["Sales EMEA"]));
    }
    assert!(membership_changes(&app).await.is_empty(), "marks cleared");
    assert_eq!(sync(&app).await.counts, SyncCounts::default());
}

#[tokio::test]
async fn deleting_a_group_removes_it_from_its_former_members_groups() {
    // Arrange
    let app = spawn_app().await;
    let adele = app
        .create_user(&person("adele@contoso.com", "T", "Oslo"))
        .await;
    let alex = app
        .create_user(&person("alex@contoso.com", "T", "Oslo"))
        .await;
    let sales = create_group(&app, "Sales", &[&adele, &alex]).await;
    create_group(&app, "Oslo office", &[&adele]).await;
    map_groups_and_sync(&app).await;
    assert_eq!(teams(&app, &adele).await, json!(["Oslo office", "Sales"]));

    // Act
    assert_eq!(app.delete(&format!("/Groups/{sales}")).await.status, 204);
    let report = sync(&app).await;

    // Assert
    assert!(incremental(&report));
    assert_eq!(report.counts, counts(0, 2, 0, 0, 0));
    assert_eq!(teams(&app, &adele).await, json!(["Oslo office"]));
    assert_eq!(teams(&app, &alex).await, json!([]));
}

#[tokio::test]
async fn without_groups_in_the_mapping_membership_changes_are_cleared_without_reading_users() {
    // Arrange: the default mapping has no `groups`.
    let app = spawn_app().await;
    let adele = app
        .create_user(&person("adele@contoso.com", "T", "Oslo"))
        .await;
    sync(&app).await;
    let before = member_of(&app, &adele).await;
    let sales = create_group(&app, "Sales", &[&adele]).await;
    patch_group(
        &app,
        &sales,
        json!([{"op": "Replace", "path": "displayName", "value": "Sales EMEA"}]),
    )
    .await;
    assert_eq!(
        membership_changes(&app).await.len(),
        2,
        "user and group marks"
    );
    app.requests.take();

    // Act
    let report = sync(&app).await;

    // Assert
    let cost = app.requests.take();
    assert_eq!(report.counts, SyncCounts::default());
    assert!(membership_changes(&app).await.is_empty());
    assert_eq!(cost.get("BatchGetItem"), None, "no user read: {cost:?}");
    assert_eq!(member_of(&app, &adele).await, before);
}

#[tokio::test]
async fn a_membership_change_recorded_again_after_the_sync_read_it_is_kept() {
    // Arrange
    let app = spawn_app().await;
    let adele = app
        .create_user(&person("adele@contoso.com", "T", "Oslo"))
        .await;
    let sales = create_group(&app, "Sales", &[]).await;
    patch_group(
        &app,
        &sales,
        json!([{"op": "Add", "path": "members", "value": [{"value": adele}]}]),
    )
    .await;
    let read = membership_changes(&app).await;
    assert_eq!(read.len(), 1);
    assert_eq!(
        read[0].subject,
        ChangedGroups::OfUser(scim_proto::ids::ResourceId::parse(&adele).unwrap())
    );

    // Act: Adele leaves the group after the sync read the change.
    patch_group(
        &app,
        &sales,
        json!([{"op": "Remove", "path": format!("members[value eq \"{adele}\"]")}]),
    )
    .await;
    app.stores
        .groups
        .clear_membership_change(&app.tenant, &read[0])
        .await
        .expect("clear");

    // Assert: the newer change is still there for the next sync.
    let left = membership_changes(&app).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].subject, read[0].subject);
    assert_ne!(left[0].mark, read[0].mark);
}

#[tokio::test]
async fn deleting_a_501_member_group_answers_in_3_requests_and_the_sync_still_sees_every_former_member()
 {
    // Arrange: 501 members with the group in their `teams`.
    const N: usize = 501;
    let app = spawn_app().await;
    let mut users = Vec::with_capacity(N);
    for i in 0..N {
        let mut user = person(&format!("u{i}@contoso.com"), "Engineer", "Oslo");
        user["externalId"] = json!(uuid::Uuid::new_v4().to_string());
        let stored = app
            .stores
            .users
            .create(
                &app.tenant,
                scim_proto::resource::UserResource::from_request(user).expect("valid"),
                scim_store::activity::Origin::internal(scim_store::activity::Operation::Create),
            )
            .await
            .expect("user stored");
        users.push(stored.id);
    }
    let group = create_group(&app, "Everyone", &[]).await;
    let gid = scim_proto::ids::ResourceId::parse(&group).expect("id");
    app.stores
        .groups
        .add_members(&app.tenant, &gid, &users)
        .await
        .expect("members added");
    map_groups_and_sync(&app).await;
    let last = users[N - 1].as_str().to_owned();
    assert_eq!(teams(&app, &last).await, json!(["Everyone"]));

    // Act: the DELETE, counted.
    app.requests.take();
    let deleted = app.delete(&format!("/Groups/{group}")).await;
    let cost = app.requests.take();
    let get = app.get(&format!("/Groups/{group}")).await;
    let listed = app.get("/Groups?excludedAttributes=members").await;
    let last_user = app.get(&format!("/Users/{last}")).await;
    let domain = scim_domain::Domain::from(&app.stores);
    let report = domain
        .members
        .expect("members configured")
        .sync_once(&app.tenant, member_sync::SyncOptions::default())
        .await
        .expect("sync");

    // Assert
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let total: u64 = cost.values().sum();
    assert!(total <= 5, "{cost:?}");
    assert_eq!(
        cost,
        [("GetItem", 1), ("Query", 1), ("TransactWriteItems", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    );
    assert_eq!(get.status, 404);
    assert_eq!(listed.body["totalResults"], 0, "{}", listed.body);
    assert!(last_user.body.get("groups").is_none(), "{}", last_user.body);
    assert_eq!(report.counts.updated, N as u64, "{:?}", report.counts);
    assert_eq!(teams(&app, &last).await, json!([]));
    assert!(
        app.stores
            .groups
            .members(&app.tenant, &gid, None)
            .await
            .expect("members")
            .is_empty(),
        "the background removed every membership"
    );
}
