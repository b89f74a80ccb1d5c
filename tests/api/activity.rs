//! The tenant's activity log (issue #13): every SCIM write logged inside
//! its own transaction, rejections with their reason (rate-limited), sync
//! outcomes; and immediate deprovisioning: a disabled or deleted user's
//! member deactivated without a sync.

use std::time::{Duration, Instant};

use scim_api::activity::REJECTIONS_PER_MINUTE;
use scim_api::background::Background;
use scim_domain::{Domain, Members};
use scim_store::activity::{ActivityEntry, ActivityQuery, Operation, Outcome};
use scim_store::members::MemberStatus;
use scim_store::sync_state::DeprovisionPolicy;
use serde_json::{Value, json};

use crate::helpers::{TestApp, call_with, entra_user, spawn_app};

const OKTA: &str = "Okta SCIM Client 1.0.0";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// How long immediate deprovisioning may take on the local stack.
const DEPROVISION_WAIT: Duration = Duration::from_secs(10);

fn domain(app: &TestApp) -> Domain {
    Domain::from(&app.stores)
}

fn members(app: &TestApp) -> Members {
    domain(app).members.expect("members table configured")
}

async fn activity(app: &TestApp, query: ActivityQuery) -> Vec<ActivityEntry> {
    domain(app)
        .activity
        .recent(&app.tenant, &query)
        .await
        .expect("activity read")
}

async fn everything(app: &TestApp) -> Vec<ActivityEntry> {
    activity(
        app,
        ActivityQuery {
            limit: 1000,
            ..ActivityQuery::default()
        },
    )
    .await
}

fn disable() -> Value {
    json!({"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": false}]})
}

/// The app with immediate deprovisioning run in process, as `scimsync
/// serve` does.
fn serving_in_process(app: &TestApp) -> scim_api::AppState {
    app.state
        .clone()
        .with_background(Background::in_process(Some(members(app))))
}

/// The status of the member linked to `user` (a member stays, unlinked,
/// when its user is deleted: look it up by its own id then).
async fn member_status(app: &TestApp, user_or_member: &str) -> Option<MemberStatus> {
    members(app)
        .all_members(&app.tenant)
        .await
        .expect("members read")
        .into_iter()
        .find(|m| m.scim_user_id.as_deref() == Some(user_or_member) || m.id == user_or_member)
        .map(|m| m.status)
}

async fn member_of(app: &TestApp, user: &str) -> String {
    members(app)
        .all_members(&app.tenant)
        .await
        .expect("members read")
        .into_iter()
        .find(|m| m.scim_user_id.as_deref() == Some(user))
        .map(|m| m.id)
        .expect("the user has a member")
}

/// Waits (bounded) until the member (of the user) is deactivated; how long
/// it took.
async fn until_deactivated(app: &TestApp, user: &str) -> Duration {
    let start = Instant::now();
    while start.elapsed() < DEPROVISION_WAIT {
        if member_status(app, user).await == Some(MemberStatus::Deactivated) {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the member of {user} was not deactivated within {DEPROVISION_WAIT:?}");
}

async fn synced_user(app: &TestApp, name: &str) -> String {
    let id = app
        .create_user(&entra_user(
            &format!("{name}@contoso.com"),
            &uuid::Uuid::new_v4().to_string(),
        ))
        .await;
    let report = members(app)
        .sync_once(&app.tenant, member_sync::SyncOptions::default())
        .await
        .expect("sync");
    assert!(report.complete);
    assert_eq!(member_status(app, &id).await, Some(MemberStatus::Active));
    id
}

#[tokio::test]
async fn a_rejected_post_shows_in_the_activity_log_with_its_reason() {
    // Arrange
    let app = spawn_app().await;
    let body = entra_user("alice@contoso.com", "ext-alice");
    app.create_user(&body).await;

    // Act
    let mut again = body.clone();
    again["externalId"] = json!("ext-other");
    let reply = app
        .send_with(
            "POST",
            "/Users",
            Some(&again),
            &app.token,
            &[("user-agent", OKTA)],
        )
        .await;

    // Assert
    reply.assert_scim_error(409, Some("uniqueness"));
    let failed = activity(
        &app,
        ActivityQuery {
            failed_only: true,
            ..ActivityQuery::default()
        },
    )
    .await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let entry = &failed[0];
    assert_eq!(entry.outcome, Outcome::Rejected);
    assert_eq!(entry.operation, Operation::Create);
    assert_eq!(entry.resource_type, "User");
    assert_eq!(entry.source, "okta");
    assert_eq!(entry.name.as_deref(), Some("alice@contoso.com"));
    let rejection = entry.rejection.as_ref().expect("rejection");
    assert_eq!(rejection.status, 409);
    assert_eq!(rejection.scim_type.as_deref(), Some("uniqueness"));
    assert!(rejection.detail.contains("userName"), "{rejection:?}");
}

#[tokio::test]
async fn every_write_is_logged_newest_first_with_what_it_did() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("bob@contoso.com", "ext-bob"))
        .await;

    // Act
    app.patch(&format!("/Users/{id}"), &disable()).await;
    let enable = json!({"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": true}]});
    app.patch(&format!("/Users/{id}"), &enable).await;
    let group = app
        .post(
            "/Groups",
            &json!({"displayName": "Sales", "members": [{"value": id}]}),
        )
        .await;
    let gid = group.body["id"].as_str().expect("group id").to_owned();
    let remove = json!({"schemas": [PATCH_OP], "Operations": [{"op": "Remove", "path": "members", "value": [{"value": id}]}]});
    assert_eq!(
        app.patch(&format!("/Groups/{gid}"), &remove).await.status,
        204
    );
    assert_eq!(app.delete(&format!("/Users/{id}")).await.status, 204);

    // Assert
    let entries = everything(&app).await;
    let seen: Vec<(Operation, &str, Outcome)> = entries
        .iter()
        .map(|e| (e.operation, e.resource_type.as_str(), e.outcome))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Operation::Delete, "User", Outcome::Deleted),
            (Operation::Patch, "Group", Outcome::Updated),
            (Operation::Create, "Group", Outcome::Created),
            (Operation::Patch, "User", Outcome::Reactivated),
            (Operation::Patch, "User", Outcome::Deactivated),
            (Operation::Create, "User", Outcome::Created),
        ]
    );
    assert_eq!(entries[1].summary.as_deref(), Some("members +0 -1"));
    assert!(entries.iter().all(|e| e.source == "unnamed"));
    assert_eq!(entries[5].name.as_deref(), Some("bob@contoso.com"));
    // One user's story, by its id.
    let bob = activity(
        &app,
        ActivityQuery {
            resource_id: Some(id.clone()),
            ..ActivityQuery::default()
        },
    )
    .await;
    assert_eq!(bob.len(), 4);
}

#[tokio::test]
async fn a_patch_that_changes_nothing_logs_nothing() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("carol@contoso.com", "ext-carol"))
        .await;
    let before = everything(&app).await.len();

    // Act: Entra re-sends the same value.
    let same = json!({"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": true}]});
    assert_eq!(app.patch(&format!("/Users/{id}"), &same).await.status, 200);

    // Assert
    assert_eq!(everything(&app).await.len(), before);
}

#[tokio::test]
async fn a_flood_of_rejections_writes_a_bounded_number_of_entries() {
    // Arrange
    let app = spawn_app().await;
    let flood = 3 * REJECTIONS_PER_MINUTE as usize;
    app.requests.take();

    // Act
    for _ in 0..flood {
        app.get("/Users?filter=userName%20zz%20%22x%22")
            .await
            .assert_scim_error(400, Some("invalidFilter"));
    }

    // Assert
    let entries = everything(&app).await;
    assert_eq!(entries.len(), REJECTIONS_PER_MINUTE as usize);
    assert!(entries.iter().all(|e| e.operation == Operation::List
        && e.rejection.as_ref().and_then(|r| r.scim_type.as_deref()) == Some("invalidFilter")));
    let puts = app.requests.take().get("PutItem").copied().unwrap_or(0);
    assert_eq!(
        puts,
        u64::from(REJECTIONS_PER_MINUTE),
        "one PutItem per logged rejection, none beyond"
    );
}

#[tokio::test]
async fn another_tenants_activity_is_invisible() {
    // Arrange
    let app = spawn_app().await;
    let other_token = app.other_tenant("globex").await;
    app.create_user(&entra_user("dave@contoso.com", "ext-dave"))
        .await;

    // Act: the other tenant writes and is refused.
    let other = app
        .send_with(
            "POST",
            "/Users",
            Some(&entra_user("erin@globex.com", "ext-erin")),
            &other_token,
            &[],
        )
        .await;
    assert_eq!(other.status, 201);
    app.send_with("GET", "/Users?filter=bad", None, &other_token, &[])
        .await
        .assert_scim_error(400, Some("invalidFilter"));

    // Assert
    let ours = everything(&app).await;
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].name.as_deref(), Some("dave@contoso.com"));
    let globex = scim_proto::ids::TenantId::parse("globex").expect("tenant");
    let theirs = domain(&app)
        .activity
        .recent(&globex, &ActivityQuery::default())
        .await
        .expect("read");
    assert_eq!(theirs.len(), 2);
    assert!(
        theirs
            .iter()
            .all(|e| e.name.as_deref() != Some("dave@contoso.com"))
    );
}

#[tokio::test]
async fn a_sync_run_logs_its_outcome() {
    // Arrange
    let app = spawn_app().await;

    // Act
    synced_user(&app, "frank").await;

    // Assert
    let entries = everything(&app).await;
    let run = entries
        .iter()
        .find(|e| e.operation == Operation::Sync)
        .expect("the run is logged");
    assert_eq!(run.outcome, Outcome::Finished);
    assert_eq!(run.source, "sync");
    assert!(
        run.summary
            .as_deref()
            .is_some_and(|s| s.starts_with("1 created")),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_disabled_users_member_is_deactivated_without_a_sync() {
    // Arrange
    let app = spawn_app().await;
    let id = synced_user(&app, "grace").await;
    let state = serving_in_process(&app);

    // Act
    let started = Instant::now();
    let reply = call_with(
        &app,
        state,
        "PATCH",
        &format!("/Users/{id}"),
        Some(&disable()),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200);
    let waited = until_deactivated(&app, &id).await;

    // Assert
    println!(
        "disable → member inactive: {:?} after the PATCH was sent ({waited:?} of polling)",
        started.elapsed()
    );
    // The outcome is logged just after the member's write: wait for it too.
    let start = Instant::now();
    let deprovisioned = loop {
        let logged = everything(&app)
            .await
            .into_iter()
            .find(|e| e.operation == Operation::Deprovision);
        match logged {
            Some(entry) => break entry,
            None if start.elapsed() < DEPROVISION_WAIT => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None => panic!("deprovisioning not logged within {DEPROVISION_WAIT:?}"),
        }
    };
    assert_eq!(deprovisioned.outcome, Outcome::Finished);
    assert!(
        members(&app)
            .deprovision(&app.tenant)
            .await
            .expect("nothing left")
            == 0
    );
}

#[tokio::test]
async fn a_deleted_users_member_is_deactivated_without_a_sync() {
    // Arrange
    let app = spawn_app().await;
    let id = synced_user(&app, "heidi").await;
    let member = member_of(&app, &id).await;
    let state = serving_in_process(&app);

    // Act
    let reply = call_with(&app, state, "DELETE", &format!("/Users/{id}"), None, &[]).await;

    // Assert
    assert_eq!(reply.status, 204);
    until_deactivated(&app, &member).await;
}

#[tokio::test]
async fn deprovisioning_deactivates_and_leaves_creates_and_updates_to_the_sync() {
    // Arrange: one user to disable (with a new title too), one changed, one new.
    let app = spawn_app().await;
    let leaver = synced_user(&app, "ivan").await;
    let stayer = synced_user(&app, "judy").await;
    let title = |t: &str| json!({"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "title", "value": t}]});
    app.patch(&format!("/Users/{stayer}"), &title("Lead")).await;
    app.patch(&format!("/Users/{leaver}"), &disable()).await;
    let newcomer = app
        .create_user(&entra_user("ken@contoso.com", "ext-ken"))
        .await;

    // Act: what the stream (or the local server) runs.
    let deactivated = members(&app)
        .deprovision(&app.tenant)
        .await
        .expect("deprovision");

    // Assert
    assert_eq!(deactivated, 1);
    assert_eq!(
        member_status(&app, &leaver).await,
        Some(MemberStatus::Deactivated)
    );
    assert_eq!(
        member_status(&app, &newcomer).await,
        None,
        "creates wait for the sync"
    );
    let preview = members(&app).preview(&app.tenant).await.expect("preview");
    assert_eq!(
        preview.counts.created, 1,
        "the newcomer is still available to be synced"
    );
    assert_eq!(preview.counts.updated, 1, "judy's title waits for the sync");
    assert_eq!(preview.counts.deactivated, 0, "ivan is done");
}

#[tokio::test]
async fn under_the_with_sync_policy_the_member_waits_for_the_sync() {
    // Arrange
    let app = spawn_app().await;
    let id = synced_user(&app, "liam").await;
    let m = members(&app);
    m.set_deprovision_policy(&app.tenant, DeprovisionPolicy::WithSync)
        .await
        .expect("policy set");
    assert_eq!(
        m.deprovision_policy(&app.tenant).await.expect("policy"),
        DeprovisionPolicy::WithSync
    );
    app.patch(&format!("/Users/{id}"), &disable()).await;

    // Act
    let deactivated = m.deprovision(&app.tenant).await.expect("deprovision");

    // Assert
    assert_eq!(deactivated, 0);
    assert_eq!(member_status(&app, &id).await, Some(MemberStatus::Active));
    m.sync_once(&app.tenant, member_sync::SyncOptions::default())
        .await
        .expect("sync");
    assert_eq!(
        member_status(&app, &id).await,
        Some(MemberStatus::Deactivated)
    );
}

#[tokio::test]
async fn deprovisioning_waits_while_a_sync_holds_the_lease_and_loses_nothing() {
    // Arrange
    let app = spawn_app().await;
    let id = synced_user(&app, "mia").await;
    app.patch(&format!("/Users/{id}"), &disable()).await;
    let state = crate::sync::state_store(&app);
    let held = state
        .acquire_lease(&app.tenant, "someone-else", Duration::from_secs(60))
        .await
        .expect("lease read")
        .is_some();
    assert!(held);

    // Act
    let blocked = members(&app).deprovision(&app.tenant).await;
    state
        .release_lease(&app.tenant, "someone-else")
        .await
        .expect("released");
    let retried = members(&app).deprovision(&app.tenant).await.expect("retry");

    // Assert
    assert!(
        matches!(blocked, Err(member_sync::SyncError::LeaseHeld(_))),
        "{blocked:?}"
    );
    assert_eq!(retried, 1);
    assert_eq!(
        member_status(&app, &id).await,
        Some(MemberStatus::Deactivated)
    );
}

#[tokio::test]
async fn deprovisioning_a_user_costs_a_fixed_number_of_requests() {
    // Arrange
    let app = spawn_app().await;
    let id = synced_user(&app, "noah").await;
    app.patch(&format!("/Users/{id}"), &disable()).await;
    let m = members(&app);
    app.requests.take();

    // Act
    let deactivated = m.deprovision(&app.tenant).await.expect("deprovision");

    // Assert
    assert_eq!(deactivated, 1);
    let cost = app.requests.take();
    eprintln!("DynamoDB requests of deprovisioning one user: {cost:?}");
    // The entries (Query), the policy and the mapping (GetItem 1), the lease
    // (UpdateItem: take, release), the user, its link and member
    // (BatchGetItem 3), the member write (TransactWriteItems), the outcome
    // in the activity log (PutItem), the entry dropped (DeleteItem).
    let expected: std::collections::BTreeMap<String, u64> = [
        ("BatchGetItem", 3),
        ("DeleteItem", 1),
        ("GetItem", 1),
        ("PutItem", 1),
        ("Query", 1),
        ("TransactWriteItems", 1),
        ("UpdateItem", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(cost, expected);
}
