//! Concurrent requests: uniqueness holds under races, concurrent PATCHes lose
//! no update, and racing deletes leave no orphaned lookup items.
//!
//! Entra sends requests for different objects in parallel and can repeat one
//! (a retried create, or a membership PATCH per change), so these races are
//! what production sees, not a stress test.

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, enc, entra_user, spawn_app};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// `name` with the case of its letters flipped according to the bits of `i`,
/// so that every caller gets a different spelling of the same userName.
fn case_variant(name: &str, i: usize) -> String {
    name.chars()
        .enumerate()
        .map(|(k, c)| {
            if (i >> (k % 8)) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn statuses(replies: &[Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.status).collect()
}

async fn find(app: &TestApp, filter: &str) -> Reply {
    let reply = app.get(&format!("/Users?filter={}", enc(filter))).await;
    assert_eq!(reply.status, 200, "{filter}: {}", reply.body);
    reply
}

/// Items of this test's table, grouped by the kind in their partition key
/// (`USER`, `USERNAME`, `USEREXT`, `EMAIL`, `STATS`).
async fn item_kinds(app: &TestApp) -> Vec<(String, String)> {
    let prefix = format!("T#{}#", app.tenant.as_str());
    app.snapshot()
        .await
        .into_keys()
        .map(|(pk, sk)| {
            let kind = pk.strip_prefix(&prefix).unwrap_or(&pk);
            let kind = kind.split('#').next().unwrap_or(kind).to_owned();
            (kind, sk)
        })
        .collect()
}

fn count_kind(items: &[(String, String)], kind: &str) -> usize {
    items.iter().filter(|(k, _)| k == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_twenty_concurrent_creates_of_one_user_name_exactly_one_succeeds() {
    // Arrange
    let app = spawn_app().await;
    let bodies: Vec<Value> = (0..20)
        .map(|i| entra_user(&case_variant("race@contoso.com", i), &format!("ext-{i}")))
        .collect();

    // Act
    let replies = join_all(bodies.iter().map(|b| app.post("/Users", b))).await;

    // Assert
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "statuses: {:?}", statuses(&replies));
    for loser in replies.iter().filter(|r| r.status != 201) {
        loser.assert_scim_error(409, Some("uniqueness"));
    }
    let found = find(&app, r#"userName eq "RACE@contoso.com""#).await;
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["id"], created[0].body["id"]);
    assert_eq!(app.get("/Users").await.body["totalResults"], 1);
    let items = item_kinds(&app).await;
    assert_eq!(count_kind(&items, "USER"), 1, "{items:?}");
    assert_eq!(count_kind(&items, "USERNAME"), 1, "{items:?}");
    assert_eq!(
        count_kind(&items, "USEREXT"),
        1,
        "no loser's claim is left: {items:?}"
    );
    assert_eq!(
        count_kind(&items, "EMAIL"),
        1,
        "no loser's email is left: {items:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_twenty_concurrent_creates_of_one_external_id_exactly_one_succeeds() {
    // Arrange
    let app = spawn_app().await;
    let bodies: Vec<Value> = (0..20)
        .map(|i| entra_user(&format!("user{i}@contoso.com"), "ext-shared"))
        .collect();

    // Act
    let replies = join_all(bodies.iter().map(|b| app.post("/Users", b))).await;

    // Assert
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "statuses: {:?}", statuses(&replies));
    for loser in replies.iter().filter(|r| r.status != 201) {
        loser.assert_scim_error(409, Some("uniqueness"));
    }
    let found = find(&app, r#"externalId eq "ext-shared""#).await;
    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["id"], created[0].body["id"]);
    assert_eq!(app.get("/Users").await.body["totalResults"], 1);
    let items = item_kinds(&app).await;
    assert_eq!(count_kind(&items, "USER"), 1, "{items:?}");
    assert_eq!(
        count_kind(&items, "USERNAME"),
        1,
        "no loser's claim is left: {items:?}"
    );
    assert_eq!(
        count_kind(&items, "EMAIL"),
        1,
        "no loser's email is left: {items:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifteen_concurrent_patches_adding_emails_all_succeed_and_none_is_lost() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user("adele@contoso.com", "ext-adele"))
        .await;
    let path = format!("/Users/{id}");
    let bodies: Vec<Value> = (0..15)
        .map(|i| {
            json!({
                "schemas": [PATCH_OP],
                "Operations": [{
                    "op": "add",
                    "path": "emails",
                    "value": [{"type": format!("other{i}"), "value": format!("u{i}@x")}]
                }]
            })
        })
        .collect();

    // Act
    let replies = join_all(bodies.iter().map(|b| app.patch(&path, b))).await;

    // Assert
    assert!(
        replies.iter().all(|r| r.status == 200),
        "statuses: {:?}; first failure: {:?}",
        statuses(&replies),
        replies.iter().find(|r| r.status != 200).map(|r| &r.body)
    );
    let user = app.get(&path).await;
    let emails: Vec<&str> = user.body["emails"]
        .as_array()
        .expect("emails")
        .iter()
        .filter_map(|e| e["value"].as_str())
        .collect();
    for i in 0..15 {
        let email = format!("u{i}@x");
        assert!(emails.contains(&email.as_str()), "{email} lost: {emails:?}");
        let by_email = find(&app, &format!(r#"emails.value eq "{email}""#)).await;
        assert_eq!(by_email.body["totalResults"], 1, "{email} is indexed");
    }
    assert!(emails.contains(&"adele@contoso.com"), "{emails:?}");
    assert_eq!(emails.len(), 16, "{emails:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_users_renamed_to_one_name_at_once_one_wins_and_the_other_keeps_its_name() {
    for round in 0..5 {
        // Arrange
        let app = spawn_app().await;
        let adele = app
            .create_user(&entra_user("adele@contoso.com", "ext-adele"))
            .await;
        let megan = app
            .create_user(&entra_user("megan@contoso.com", "ext-megan"))
            .await;
        let rename = |name: &str| {
            json!({
                "schemas": [PATCH_OP],
                "Operations": [{"op": "Replace", "path": "userName", "value": name}]
            })
        };
        let (to_adele, to_megan) = (rename("shared@contoso.com"), rename("SHARED@contoso.com"));

        // Act
        let (adele_path, megan_path) = (format!("/Users/{adele}"), format!("/Users/{megan}"));
        let (a, m) = futures::join!(
            app.patch(&adele_path, &to_adele),
            app.patch(&megan_path, &to_megan)
        );

        // Assert
        let mut codes = [a.status, m.status];
        codes.sort_unstable();
        assert_eq!(codes, [200, 409], "round {round}: {} / {}", a.body, m.body);
        let (loser, loser_id, loser_old_name, winner_id) = if a.status == 409 {
            (&a, &adele, "adele@contoso.com", &megan)
        } else {
            (&m, &megan, "megan@contoso.com", &adele)
        };
        loser.assert_scim_error(409, Some("uniqueness"));
        let by_old = find(&app, &format!(r#"userName eq "{loser_old_name}""#)).await;
        assert_eq!(by_old.body["totalResults"], 1, "round {round}");
        assert_eq!(by_old.body["Resources"][0]["id"], json!(loser_id));
        let by_new = find(&app, r#"userName eq "shared@contoso.com""#).await;
        assert_eq!(by_new.body["totalResults"], 1, "round {round}");
        assert_eq!(by_new.body["Resources"][0]["id"], json!(winner_id));
        let items = item_kinds(&app).await;
        assert_eq!(
            count_kind(&items, "USERNAME"),
            2,
            "round {round}: {items:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_racing_a_patch_leaves_a_consistent_state_and_frees_the_user_name() {
    // Arrange
    let app = spawn_app().await;
    let names: Vec<String> = (0..6).map(|i| format!("user{i}@contoso.com")).collect();
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        ids.push(
            app.create_user(&entra_user(name, &format!("ext-{i}")))
                .await,
        );
    }
    let patch = |i: usize| {
        json!({
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "add", "path": "emails", "value": [{"type": "other", "value": format!("extra{i}@x")}]},
                {"op": "replace", "path": "displayName", "value": "Patched"}
            ]
        })
    };
    let patches: Vec<Value> = (0..ids.len()).map(patch).collect();

    // Act
    let shared = &app;
    let races = ids.iter().zip(&patches).map(|(id, body)| async move {
        let path = format!("/Users/{id}");
        futures::join!(shared.delete(&path), shared.patch(&path, body))
    });
    let outcomes = join_all(races).await;

    // Assert
    for ((deleted, patched), id) in outcomes.iter().zip(&ids) {
        assert_eq!(
            deleted.status, 204,
            "the delete wins or retries: {}",
            deleted.body
        );
        assert!(
            [200, 404].contains(&patched.status),
            "the patch applied before the delete, or found nothing: {} {}",
            patched.status,
            patched.body
        );
        if patched.status == 404 {
            patched.assert_scim_error(404, None);
        }
        app.get(&format!("/Users/{id}"))
            .await
            .assert_scim_error(404, None);
    }
    assert_eq!(app.get("/Users").await.body["totalResults"], 0);
    let items = item_kinds(&app).await;
    assert_eq!(
        items
            .iter()
            // The deleted users' deprovisioning entries are, like their
            // DIRTY markers, the Members sync's to-do, not directory data.
            .filter(|(kind, sk)| kind != "STATS"
                && kind != "DIRTY"
                && !sk.starts_with("CLEANUP#D#"))
            .count(),
        0,
        "no user, claim or email item outlives its user: {items:?}"
    );
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            find(&app, &format!(r#"userName eq "{name}""#)).await.body["totalResults"],
            0
        );
        let again = app
            .post("/Users", &entra_user(name, &format!("ext-{i}")))
            .await;
        assert_eq!(again.status, 201, "{name} is reusable: {}", again.body);
    }
    assert_eq!(app.get("/Users").await.body["totalResults"], names.len());
}
