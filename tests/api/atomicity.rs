//! Writes that fail change nothing, and lost races are retried (issue #9,
//! items 5 and 9).
//!
//! A user or group DELETE, and a group PATCH that changes attributes and
//! members, either happen whole or not at all: a version check lost to a
//! concurrent request (412 with `If-Match`, a retry without it) or a member
//! that vanished mid-request leave the memberships, the attributes and the
//! Members sync's marks as they were. Races are staged two ways: an
//! [`Interleaved`] user store does what a concurrent request would do at one
//! exact step of a request (deterministic), and rounds of truly concurrent
//! requests look for interleavings nobody thought of.

use scim_store::activity::Origin;
use scim_store::users::Deprovision;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures::future::join_all;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::resource::UserResource;
use scim_store::StoreError;
use scim_store::deletion::Deletion;
use scim_store::users::{DirtyUser, StoredUser, UserStore};
use serde_json::{Value, json};

use crate::fault_proxy::{Fault, Rule, When, ddb};
use crate::helpers::{
    Reply, TestApp, call_with, entra_user, members_of, spawn_app, spawn_app_with_proxy,
};

const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

// --- Staged races -------------------------------------------------------------

/// What a concurrent request does, once, in the middle of a request.
#[derive(Debug, Clone)]
enum Race {
    /// Just before the delete is written, the user is PATCHed (a new
    /// version): the delete's version check must fail.
    PatchBeforeDelete,
    /// Just after the members of a group PATCH were found to be users, this
    /// one is DELETEd.
    DeleteAfterExistenceCheck(String),
}

/// The real user store, except that the first call of the method [`Race`]
/// names first lets a concurrent request (over HTTP, to the test's server on
/// the real stores) do its write.
#[derive(Debug)]
struct Interleaved {
    inner: Arc<dyn UserStore>,
    race: Race,
    armed: AtomicBool,
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Interleaved {
    /// App state for `app` whose user store runs `race` once.
    fn state(app: &TestApp, race: Race) -> scim_api::AppState {
        scim_api::AppState {
            users: Arc::new(Self {
                inner: app.state.users.clone(),
                race,
                armed: AtomicBool::new(true),
                http: app.http.clone(),
                base: app.base.clone(),
                token: app.token.clone(),
            }),
            ..app.state.clone()
        }
    }

    /// Whether the staged race is `race`'s kind and has not run yet.
    fn fires(&self, race: &Race) -> bool {
        std::mem::discriminant(&self.race) == std::mem::discriminant(race)
            && self.armed.swap(false, Ordering::SeqCst)
    }

    async fn concurrently(&self, method: &str, user: &ResourceId, body: Option<Value>) {
        let mut req = self
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}/Users/{user}", self.base),
            )
            .header("authorization", format!("Bearer {}", self.token));
        if let Some(body) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let status = req.send().await.expect("concurrent request sent").status();
        assert!(
            status.is_success(),
            "the concurrent {method} of {user} failed: {status}"
        );
    }
}

#[async_trait]
impl UserStore for Interleaved {
    async fn create(
        &self,
        t: &TenantId,
        u: UserResource,
        origin: Origin,
    ) -> Result<StoredUser, StoreError> {
        self.inner.create(t, u, origin).await
    }
    async fn get(&self, t: &TenantId, id: &ResourceId) -> Result<Option<StoredUser>, StoreError> {
        self.inner.get(t, id).await
    }
    async fn replace(
        &self,
        t: &TenantId,
        current: &StoredUser,
        next: UserResource,
        origin: Origin,
    ) -> Result<StoredUser, StoreError> {
        self.inner.replace(t, current, next, origin).await
    }
    async fn get_for_delete(
        &self,
        t: &TenantId,
        id: &ResourceId,
    ) -> Result<Option<Deletion<StoredUser>>, StoreError> {
        self.inner.get_for_delete(t, id).await
    }
    async fn finish_deletes(&self, t: &TenantId) -> Result<usize, StoreError> {
        self.inner.finish_deletes(t).await
    }
    async fn delete(
        &self,
        t: &TenantId,
        target: &Deletion<StoredUser>,
        origin: Origin,
    ) -> Result<scim_store::deletion::Deleted, StoreError> {
        if self.fires(&Race::PatchBeforeDelete) {
            let title = json!({
                "schemas": [PATCH_OP],
                "Operations": [{"op": "Replace", "path": "title", "value": "Changed meanwhile"}]
            });
            self.concurrently("PATCH", &target.id, Some(title)).await;
        }
        self.inner.delete(t, target, origin).await
    }
    async fn deprovisions(&self, t: &TenantId) -> Result<Vec<Deprovision>, StoreError> {
        self.inner.deprovisions(t).await
    }
    async fn drop_deprovision(&self, t: &TenantId, entry: &Deprovision) -> Result<(), StoreError> {
        self.inner.drop_deprovision(t, entry).await
    }
    async fn find_by_user_name(
        &self,
        t: &TenantId,
        name: &str,
    ) -> Result<Option<StoredUser>, StoreError> {
        self.inner.find_by_user_name(t, name).await
    }
    async fn find_by_external_id(
        &self,
        t: &TenantId,
        ext: &str,
    ) -> Result<Option<StoredUser>, StoreError> {
        self.inner.find_by_external_id(t, ext).await
    }
    async fn find_by_email(
        &self,
        t: &TenantId,
        email: &str,
    ) -> Result<Vec<StoredUser>, StoreError> {
        self.inner.find_by_email(t, email).await
    }
    async fn count(&self, t: &TenantId) -> Result<usize, StoreError> {
        self.inner.count(t).await
    }
    async fn page(
        &self,
        t: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<StoredUser>, Option<ResourceId>), StoreError> {
        self.inner.page(t, after, limit).await
    }
    async fn nth_id(&self, t: &TenantId, n: usize) -> Result<Option<ResourceId>, StoreError> {
        self.inner.nth_id(t, n).await
    }
    async fn existing(
        &self,
        t: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<ResourceId>, StoreError> {
        let found = self.inner.existing(t, ids).await?;
        if let Race::DeleteAfterExistenceCheck(victim) = &self.race
            && self.fires(&self.race)
        {
            let victim = ResourceId::parse(victim).expect("a user id");
            self.concurrently("DELETE", &victim, None).await;
        }
        Ok(found)
    }
    async fn get_many(
        &self,
        t: &TenantId,
        ids: &[ResourceId],
    ) -> Result<Vec<StoredUser>, StoreError> {
        self.inner.get_many(t, ids).await
    }
    async fn dirty(
        &self,
        t: &TenantId,
        after: Option<&ResourceId>,
        limit: usize,
    ) -> Result<(Vec<DirtyUser>, Option<ResourceId>), StoreError> {
        self.inner.dirty(t, after, limit).await
    }
    async fn clear_dirty(&self, t: &TenantId, d: &DirtyUser) -> Result<(), StoreError> {
        self.inner.clear_dirty(t, d).await
    }
}

/// A SCIM error body with this status (as a string) and `scimType`.
#[track_caller]
fn assert_error_body(reply: &Reply, status: u16, scim_type: Option<&str>) {
    assert_eq!(reply.status, status, "body: {}", reply.body);
    assert_eq!(reply.body["schemas"][0], ERROR_SCHEMA, "{}", reply.body);
    assert_eq!(reply.body["status"], status.to_string(), "{}", reply.body);
    assert_eq!(
        reply.body.get("scimType").and_then(Value::as_str),
        scim_type,
        "{}",
        reply.body
    );
}

// --- Arrange helpers ------------------------------------------------------------

fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn patch_body(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

fn add_members(users: &[&str]) -> Value {
    let values: Vec<Value> = users.iter().map(|u| json!({"value": u})).collect();
    json!({"op": "Add", "path": "members", "value": values})
}

async fn new_user(app: &TestApp) -> String {
    let ext = guid();
    app.create_user(&entra_user(&format!("u-{}@contoso.com", &ext[..13]), &ext))
        .await
}

async fn new_group(app: &TestApp, members: &[&str]) -> String {
    let ext = guid();
    let reply = app
        .post(
            "/Groups",
            &json!({"schemas": [GROUP_SCHEMA], "displayName": format!("Group {}", &ext[..13]), "externalId": ext}),
        )
        .await;
    assert_eq!(reply.status, 201, "group create: {}", reply.body);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    if !members.is_empty() {
        let reply = app
            .patch(
                &format!("/Groups/{id}"),
                &patch_body(json!([add_members(members)])),
            )
            .await;
        assert_eq!(reply.status, 204, "seeding members: {}", reply.body);
    }
    id
}

// --- Assert helpers ---------------------------------------------------------------

async fn groups_of(app: &TestApp, user: &str) -> BTreeSet<String> {
    let reply = app.get(&format!("/Users/{user}")).await;
    assert_eq!(reply.status, 200, "user GET: {}", reply.body);
    reply.body["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| g["value"].as_str().expect("group value").to_owned())
        .collect()
}

/// The membership items (`GM#`, `UG#`) and Members sync marks (`GSYNC`) of
/// the table, with their attributes: what a failed write must not touch.
async fn membership_items(app: &TestApp) -> Vec<((String, String), String)> {
    app.snapshot()
        .await
        .into_iter()
        .filter(|((pk, _), _)| pk.contains("#GM#") || pk.contains("#UG#") || pk.contains("#GSYNC"))
        .collect()
}

/// Membership items naming `id`, as a group (`GM#<id>`, `UG` rows with sort
/// key `<id>`) or as a user (`UG#<id>`, `GM` rows with sort key `<id>`).
async fn memberships_naming(app: &TestApp, id: &str) -> Vec<(String, String)> {
    app.snapshot()
        .await
        .into_keys()
        .filter(|(pk, sk)| {
            (pk.contains("#GM#") || pk.contains("#UG#")) && (pk.ends_with(id) || sk == id)
        })
        .collect()
}

// --- Deletes that lose a version race ---------------------------------------------

#[tokio::test]
async fn delete_with_an_if_match_made_stale_by_a_race_answers_412_and_keeps_memberships() {
    // Arrange
    let app = spawn_app().await;
    let user = new_user(&app).await;
    let (g1, g2) = (
        new_group(&app, &[&user]).await,
        new_group(&app, &[&user]).await,
    );
    let etag = app
        .get(&format!("/Users/{user}"))
        .await
        .header("etag")
        .expect("ETag")
        .to_owned();
    let before = membership_items(&app).await;
    let state = Interleaved::state(&app, Race::PatchBeforeDelete);

    // Act: the ETag matches when read; a PATCH lands before the delete.
    let reply = call_with(
        &app,
        state,
        "DELETE",
        &format!("/Users/{user}"),
        None,
        &[("if-match", etag.as_str())],
    )
    .await;

    // Assert
    assert_error_body(&reply, 412, None);
    assert_eq!(
        groups_of(&app, &user).await,
        BTreeSet::from([g1.clone(), g2.clone()])
    );
    assert!(members_of(&app, &g1).await.contains(&user));
    assert!(members_of(&app, &g2).await.contains(&user));
    assert_eq!(
        membership_items(&app).await,
        before,
        "no membership and no membership sync mark was written"
    );
}

#[tokio::test]
async fn delete_without_if_match_that_loses_a_race_retries_and_removes_everything() {
    // Arrange
    let app = spawn_app().await;
    let user = new_user(&app).await;
    let group = new_group(&app, &[&user]).await;
    let state = Interleaved::state(&app, Race::PatchBeforeDelete);

    // Act
    let reply = call_with(&app, state, "DELETE", &format!("/Users/{user}"), None, &[]).await;

    // Assert
    assert_eq!(reply.status, 204, "{}", reply.body);
    app.get(&format!("/Users/{user}"))
        .await
        .assert_scim_error(404, None);
    assert!(members_of(&app, &group).await.is_empty());
    assert!(memberships_naming(&app, &user).await.is_empty());
}

// --- Group PATCH: all or nothing ---------------------------------------------------

#[tokio::test]
async fn group_patch_with_a_missing_member_changes_neither_attributes_nor_members() {
    // Arrange: the member exists when checked and is deleted right after.
    let app = spawn_app().await;
    let (kept, vanishing) = (new_user(&app).await, new_user(&app).await);
    let group = new_group(&app, &[&kept]).await;
    let url = format!("/Groups/{group}");
    let name_before = app.get(&url).await.body["displayName"].clone();
    let state = Interleaved::state(&app, Race::DeleteAfterExistenceCheck(vanishing.clone()));
    let body = patch_body(json!([
        {"op": "Replace", "path": "displayName", "value": "Renamed"},
        add_members(&[&vanishing])
    ]));

    // Act
    let reply = call_with(&app, state, "PATCH", &url, Some(&body), &[]).await;

    // Assert
    assert_error_body(&reply, 400, Some("invalidValue"));
    let group_now = app.get(&url).await;
    assert_eq!(group_now.body["displayName"], name_before, "not renamed");
    assert_eq!(
        members_of(&app, &group).await,
        BTreeSet::from([kept.clone()])
    );
    assert!(memberships_naming(&app, &vanishing).await.is_empty());
}

#[tokio::test]
async fn a_membership_patch_naming_a_user_deleted_just_before_adds_no_one() {
    // Arrange: a members-only PATCH checks its users inside its one
    // transaction (no separate read a delete could slip past), so the
    // nearest race is a delete that commits just before it.
    let app = spawn_app().await;
    let (valid, vanishing) = (new_user(&app).await, new_user(&app).await);
    let group = new_group(&app, &[]).await;
    let url = format!("/Groups/{group}");
    assert_eq!(app.delete(&format!("/Users/{vanishing}")).await.status, 204);
    let before = membership_items(&app).await;
    let body = patch_body(json!([add_members(&[&valid, &vanishing])]));

    // Act
    let reply = app.patch(&url, &body).await;

    // Assert: the request is refused whole, naming the user.
    assert_error_body(&reply, 400, Some("invalidValue"));
    assert!(
        reply.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains(vanishing.as_str())),
        "{}",
        reply.body
    );
    assert!(members_of(&app, &group).await.is_empty());
    assert_eq!(membership_items(&app).await, before, "nothing was written");
}

// --- PUT retries a lost race --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_without_if_match_retries_a_lost_race() {
    // Arrange
    let app = spawn_app().await;
    let ext = guid();
    let name = format!("put-{}@contoso.com", &ext[..8]);
    let id = app.create_user(&entra_user(&name, &ext)).await;
    let path = format!("/Users/{id}");
    let bodies: Vec<Value> = (0..12)
        .map(|i| {
            let mut body = entra_user(&name, &ext);
            body["title"] = json!(format!("Title {i}"));
            body
        })
        .collect();

    // Act: twelve PUTs of one user at once, as a burst of retried requests.
    let replies = join_all(bodies.iter().map(|b| app.put(&path, b))).await;

    // Assert
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every PUT is applied (a lost race is retried): {statuses:?}; first failure: {:?}",
        replies.iter().find(|r| r.status != 200).map(|r| &r.body)
    );
    let user = app.get(&path).await;
    let titles: Vec<String> = (0..12).map(|i| format!("Title {i}")).collect();
    assert!(titles.contains(&user.body["title"].as_str().unwrap_or_default().to_owned()));
    assert_eq!(
        user.header("etag"),
        Some(format!("W/\"{}\"", 1 + bodies.len()).as_str()),
        "each PUT wrote a version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_with_if_match_that_loses_a_race_answers_412() {
    // Arrange
    let app = spawn_app().await;
    let ext = guid();
    let name = format!("put-{}@contoso.com", &ext[..8]);
    let id = app.create_user(&entra_user(&name, &ext)).await;
    let path = format!("/Users/{id}");
    let etag = app
        .get(&path)
        .await
        .header("etag")
        .expect("ETag")
        .to_owned();
    let bodies: Vec<Value> = (0..8)
        .map(|i| {
            let mut body = entra_user(&name, &ext);
            body["title"] = json!(format!("Title {i}"));
            body
        })
        .collect();
    let if_match = [("if-match", etag.as_str())];

    // Act
    let replies = join_all(
        bodies
            .iter()
            .map(|b| app.send_with("PUT", &path, Some(b), &app.token, &if_match)),
    )
    .await;

    // Assert
    let won: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for lost in replies.iter().filter(|r| r.status != 200) {
        lost.assert_scim_error(412, None);
    }
}

// --- A delete racing a member add ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn user_delete_racing_group_add_leaves_no_member_that_does_not_exist() {
    // Arrange: users already in a group (so the delete has memberships to
    // remove), each about to be added to another group while deleted.
    const ROUNDS: usize = 24;
    let app = spawn_app().await;
    let mut users = Vec::new();
    for _ in 0..ROUNDS {
        users.push(new_user(&app).await);
    }
    let home = new_group(&app, &users.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let mut targets = Vec::new();
    for _ in 0..ROUNDS {
        targets.push(new_group(&app, &[]).await);
    }

    // Act: every user's delete and its add run at once.
    let shared = &app;
    let races = users.iter().zip(&targets).map(|(user, group)| async move {
        let add = patch_body(json!([add_members(&[user])]));
        let (user_url, group_url) = (format!("/Users/{user}"), format!("/Groups/{group}"));
        futures::join!(shared.delete(&user_url), shared.patch(&group_url, &add))
    });
    let outcomes = join_all(races).await;

    // Assert
    for ((deleted, added), (user, group)) in outcomes.iter().zip(users.iter().zip(&targets)) {
        assert_eq!(
            deleted.status, 204,
            "the delete wins or retries: {}",
            deleted.body
        );
        assert!(
            [204, 400].contains(&added.status),
            "the add applied before the delete, or found the user gone: {} {}",
            added.status,
            added.body
        );
        if added.status == 400 {
            added.assert_scim_error(400, Some("invalidValue"));
        }
        assert!(
            !members_of(&app, group).await.contains(user),
            "a deleted user is listed as a member"
        );
    }
    assert!(members_of(&app, &home).await.is_empty());
    let left: Vec<(String, String)> = app
        .snapshot()
        .await
        .into_keys()
        .filter(|(pk, _)| pk.contains("#GM#") || pk.contains("#UG#"))
        .collect();
    assert!(left.is_empty(), "memberships of deleted users: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_delete_racing_member_add_leaves_no_membership_of_a_deleted_group() {
    // Arrange
    const ROUNDS: usize = 40;
    let app = spawn_app().await;
    let mut users = Vec::new();
    for _ in 0..ROUNDS {
        users.push(new_user(&app).await);
    }
    let mut groups = Vec::new();
    for user in &users {
        groups.push(new_group(&app, &[user]).await);
    }
    let newcomer = new_user(&app).await;

    // Act: each group is deleted while the same newcomer is added to it.
    let shared = &app;
    let newcomer_ref = &newcomer;
    let races = groups.iter().map(|group| async move {
        let add = patch_body(json!([add_members(&[newcomer_ref])]));
        let url = format!("/Groups/{group}");
        futures::join!(shared.delete(&url), shared.patch(&url, &add))
    });
    let outcomes = join_all(races).await;

    // Assert
    for (deleted, added) in &outcomes {
        assert_eq!(
            deleted.status, 204,
            "the delete wins or retries: {}",
            deleted.body
        );
        assert!(
            [204, 404].contains(&added.status),
            "the add applied before the delete, or found the group gone: {} {}",
            added.status,
            added.body
        );
    }
    assert!(groups_of(&app, &newcomer).await.is_empty());
    let left: Vec<(String, String)> = app
        .snapshot()
        .await
        .into_keys()
        .filter(|(pk, sk)| (pk.contains("#GM#") || pk.contains("#UG#")) && sk != "#")
        .collect();
    assert!(left.is_empty(), "memberships of deleted groups: {left:?}");
}

// --- Work larger than one transaction ----------------------------------------------

/// More groups than a user delete fits in one transaction (100 items, two
/// per membership).
const MANY: usize = 60;

#[tokio::test]
async fn deleting_a_user_in_more_groups_than_one_transaction_holds_answers_at_once_and_the_background_removes_every_membership()
 {
    // Arrange
    let app = spawn_app().await;
    let user = new_user(&app).await;
    let mut groups = Vec::new();
    for _ in 0..MANY {
        groups.push(new_group(&app, &[&user]).await);
    }
    assert_eq!(groups_of(&app, &user).await.len(), MANY);

    // Act: the answer (counted), then the background's run.
    app.requests.take();
    let reply = app.delete(&format!("/Users/{user}")).await;
    let cost = app.requests.take();
    let left_by_the_request = memberships_naming(&app, &user).await.len();
    let finished = app
        .state
        .directory()
        .finish_deletes(&app.tenant)
        .await
        .expect("cleanup");

    // Assert
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert!(cost.values().sum::<u64>() <= 5, "{cost:?}");
    assert!(left_by_the_request > 0, "the rest is the background's");
    assert_eq!(finished, 1);
    app.get(&format!("/Users/{user}"))
        .await
        .assert_scim_error(404, None);
    assert!(memberships_naming(&app, &user).await.is_empty());
    for group in &groups[..3] {
        assert!(members_of(&app, group).await.is_empty());
    }
    let leftovers: Vec<(String, String)> = app
        .snapshot()
        .await
        .into_keys()
        .filter(|(pk, _)| pk.ends_with("#USER") || pk.contains("#USERNAME"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(app.get("/Users").await.body["totalResults"], 0);
}

#[tokio::test]
async fn deleting_a_group_with_more_members_than_one_transaction_holds_removes_every_membership_in_the_background()
 {
    // Arrange
    let app = spawn_app().await;
    let mut users = Vec::new();
    for _ in 0..MANY {
        users.push(new_user(&app).await);
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let group = new_group(&app, &refs).await;
    assert_eq!(members_of(&app, &group).await.len(), MANY);

    // Act: the answer, then the background's run (the Members sync's, when
    // deployed).
    let reply = app.delete(&format!("/Groups/{group}")).await;
    let finished = app
        .state
        .directory()
        .finish_deletes(&app.tenant)
        .await
        .expect("cleanup");

    // Assert
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(finished, 1);
    app.get(&format!("/Groups/{group}"))
        .await
        .assert_scim_error(404, None);
    assert!(memberships_naming(&app, &group).await.is_empty());
    assert!(groups_of(&app, &users[0]).await.is_empty());
    let leftovers: Vec<(String, String)> = app
        .snapshot()
        .await
        .into_keys()
        .filter(|(pk, _)| pk.ends_with("#GROUP") || pk.contains("#GROUPNAME"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn a_rename_with_more_member_changes_than_one_transaction_holds_applies_whole() {
    // Arrange
    let app = spawn_app().await;
    let mut users = Vec::new();
    for _ in 0..MANY {
        users.push(new_user(&app).await);
    }
    let (old, new) = users.split_at(10);
    let old_refs: Vec<&str> = old.iter().map(String::as_str).collect();
    let group = new_group(&app, &old_refs).await;
    let url = format!("/Groups/{group}");
    let new_values: Vec<Value> = new.iter().map(|u| json!({"value": u})).collect();
    let body = patch_body(json!([
        {"op": "Replace", "path": "displayName", "value": "Big rename"},
        {"op": "Replace", "path": "members", "value": new_values}
    ]));

    // Act
    let reply = app.patch(&url, &body).await;

    // Assert
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(app.get(&url).await.body["displayName"], "Big rename");
    assert_eq!(
        members_of(&app, &group).await,
        new.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert!(groups_of(&app, &old[0]).await.is_empty());
}

#[tokio::test]
async fn a_user_delete_whose_background_cleanup_fails_is_finished_by_a_retry_or_the_next_run() {
    // Arrange: storage fails every batch write, which the background's
    // removal of the memberships left after the deciding transaction uses.
    let app = spawn_app_with_proxy().await;
    let user = new_user(&app.direct).await;
    let name = app.direct.get(&format!("/Users/{user}")).await.body["userName"].clone();
    let mut groups = Vec::new();
    for _ in 0..MANY {
        groups.push(new_group(&app.direct, &[&user]).await);
    }
    let directory = app.state.directory();

    // Act
    let first = app.delete(&format!("/Users/{user}")).await;
    app.proxy.set(Rule::new(
        ddb("BatchWriteItem"),
        When::Always,
        Fault::Error500,
    ));
    let failed = directory.finish_deletes(&app.tenant).await;
    app.proxy.clear();

    // Assert: the delete happened (the user, its name and the sync's view),
    // and only memberships are left, which a retry of the DELETE or the
    // next background run removes.
    assert_eq!(first.status, 204, "{}", first.body);
    assert!(failed.is_err(), "{failed:?}");
    app.direct
        .get(&format!("/Users/{user}"))
        .await
        .assert_scim_error(404, None);
    let again = app
        .direct
        .post(
            "/Users",
            &entra_user(name.as_str().expect("userName"), &guid()),
        )
        .await;
    assert_eq!(again.status, 201, "the name is free: {}", again.body);
    let retry = app.delete(&format!("/Users/{user}")).await;
    assert_eq!(retry.status, 204, "{}", retry.body);
    assert_eq!(
        directory
            .finish_deletes(&app.tenant)
            .await
            .expect("cleanup"),
        1
    );
    assert!(memberships_naming(&app.direct, &user).await.is_empty());
    for group in &groups[..3] {
        assert!(members_of(&app.direct, group).await.is_empty());
    }
    app.delete(&format!("/Users/{user}"))
        .await
        .assert_scim_error(404, None);
}

#[tokio::test]
async fn a_large_group_delete_is_answered_at_once_and_a_failing_cleanup_resumes_to_the_end() {
    // Arrange
    let app = spawn_app_with_proxy().await;
    let mut users = Vec::new();
    for _ in 0..MANY {
        users.push(new_user(&app.direct).await);
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let group = new_group(&app.direct, &refs).await;
    let directory = app.state.directory();

    // Act: the DELETE decides in one transaction; the cleanup then fails
    // at its first batch write, and a later run finishes it.
    let deleted = app.delete(&format!("/Groups/{group}")).await;
    let left_after_delete = memberships_naming(&app.direct, &group).await.len();
    app.proxy.set(Rule::new(
        ddb("BatchWriteItem"),
        When::Always,
        Fault::Error500,
    ));
    let failed = directory.finish_deletes(&app.tenant).await;
    app.proxy.clear();
    let finished = directory.finish_deletes(&app.tenant).await;

    // Assert: gone for every read at once (users list no group that does
    // not exist); the memberships go with the cleanup, whatever failed.
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    app.direct
        .get(&format!("/Groups/{group}"))
        .await
        .assert_scim_error(404, None);
    assert!(groups_of(&app.direct, &users[MANY - 1]).await.is_empty());
    assert!(left_after_delete > 0, "the tail is left to the background");
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(finished.expect("the second run finishes"), 1);
    assert!(memberships_naming(&app.direct, &group).await.is_empty());
    assert_eq!(
        directory
            .finish_deletes(&app.tenant)
            .await
            .expect("nothing left"),
        0
    );
    app.delete(&format!("/Groups/{group}"))
        .await
        .assert_scim_error(404, None);
}

#[tokio::test]
async fn the_local_server_finishes_a_large_group_delete_in_the_background_at_once() {
    // Arrange: `scimsync serve` runs background work in process.
    let app = spawn_app().await;
    let mut users = Vec::new();
    for _ in 0..MANY {
        users.push(new_user(&app).await);
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let group = new_group(&app, &refs).await;
    let state = app
        .state
        .clone()
        .with_background(scim_api::background::Background::in_process(None));

    // Act
    let reply = call_with(
        &app,
        state,
        "DELETE",
        &format!("/Groups/{group}"),
        None,
        &[],
    )
    .await;
    // Done when the memberships are gone and the task has dropped the
    // group's cleanup entry (its last step).
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = memberships_naming(&app, &group).await.len();
        let listed = app
            .snapshot()
            .await
            .into_keys()
            .any(|(_, sk)| sk == format!("CLEANUP#G#{group}"));
        if left == 0 && !listed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Assert
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(left, 0, "memberships left after 10 s");
    assert_eq!(
        app.state
            .directory()
            .finish_deletes(&app.tenant)
            .await
            .expect("cleanup list read"),
        0,
        "nothing left on the cleanup list"
    );
}
