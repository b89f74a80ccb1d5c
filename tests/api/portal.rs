//! The User Provisioning page over real HTTP: one-time links, sessions,
//! CSRF, tenant isolation, and the guide's steps as forms.

use std::sync::Arc;
use std::time::Duration;

use reqwest::redirect::Policy;
use scim_domain::portal::DEFAULT_LINK_TTL;
use scim_portal::{PortalConfig, PortalState, SyncLauncher};
use scim_proto::ids::TenantId;
use scim_store::portal::SecretsManagerSessionKey;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

struct Portal {
    app: TestApp,
    /// `http://127.0.0.1:<port>`
    origin: String,
    state: PortalState,
    http: reqwest::Client,
}

async fn spawn_portal() -> Portal {
    let app = spawn_app().await;
    let sdk = scim_store::config::emulator_aws_config(&crate::helpers::emulator_url().await).await;
    let key = Arc::new(SecretsManagerSessionKey::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        &format!("{}portal-key", app.config.token_secret_prefix),
        true,
    ));
    let state = PortalState::new(
        &app.stores,
        key,
        PortalConfig::default(),
        SyncLauncher::InProcess,
    )
    .expect("portal state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(scim_api::host::run_tcp(
        listener,
        scim_api::router::wrap(scim_portal::router(state.clone())),
        std::future::pending(),
    ));
    Portal {
        app,
        origin: format!("http://127.0.0.1:{port}"),
        state,
        http: reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("client"),
    }
}

impl Portal {
    async fn link(&self, tenant: &TenantId, ttl: Duration) -> String {
        self.state
            .portal()
            .mint_link(tenant, &self.origin, ttl, None)
            .await
            .expect("link minted")
            .url
    }

    /// Opens a link: the session cookie (`name=value`).
    async fn open(&self, tenant: &TenantId) -> String {
        let res = self
            .http
            .get(self.link(tenant, DEFAULT_LINK_TTL).await)
            .send()
            .await
            .expect("open");
        assert_eq!(res.status(), 303);
        let cookie = res.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        cookie.split(';').next().expect("name=value").to_owned()
    }

    async fn page(&self, cookie: &str) -> (u16, String) {
        let res = self
            .http
            .get(format!("{}/portal/", self.origin))
            .header("cookie", cookie)
            .send()
            .await
            .expect("page");
        (res.status().as_u16(), res.text().await.expect("body"))
    }

    async fn post(&self, cookie: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let res = self
            .http
            .post(format!("{}{path}", self.origin))
            .header("cookie", cookie)
            .form(form)
            .send()
            .await
            .expect("post");
        (res.status().as_u16(), res.text().await.expect("body"))
    }

    /// `GET /portal/api/<path>` with the session cookie: the JSON answer.
    async fn api(&self, cookie: &str, path: &str) -> Value {
        self.http
            .get(format!("{}/portal/api/{path}", self.origin))
            .header("cookie", cookie)
            .send()
            .await
            .expect(path)
            .json()
            .await
            .expect("json")
    }

    async fn csrf(&self, cookie: &str) -> String {
        let body = self.api(cookie, "status").await;
        body["csrf"].as_str().expect("csrf").to_owned()
    }

    async fn scim_status(&self, token: &str) -> u16 {
        self.app
            .http
            .get(format!("{}/Users?count=1", self.app.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("scim")
            .status()
            .as_u16()
    }
}

#[tokio::test]
async fn a_portal_link_opens_the_page_once_and_a_second_use_is_refused() {
    let p = spawn_portal().await;
    let link = p.link(&p.app.tenant, DEFAULT_LINK_TTL).await;
    let first = p.http.get(&link).send().await.expect("first");
    assert_eq!(first.status(), 303);
    let again = p.http.get(&link).send().await.expect("again");
    assert_eq!(again.status(), 410);
    assert!(
        again
            .text()
            .await
            .expect("body")
            .contains("This link was already used")
    );
    let cookie = first.headers()["set-cookie"].to_str().expect("ascii");
    let cookie = cookie.split(';').next().expect("pair");
    let (status, body) = p.page(cookie).await;
    assert_eq!(status, 200);
    assert!(body.contains("User provisioning") && body.contains(p.app.tenant.as_str()));
    // The page never shows the SCIM token after activation.
    assert!(!body.contains(&p.app.token));
}

#[tokio::test]
async fn an_expired_link_says_so_and_an_unknown_one_is_not_valid() {
    let p = spawn_portal().await;
    let link = p.link(&p.app.tenant, Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = p.http.get(&link).send().await.expect("open");
    assert_eq!(res.status(), 410);
    assert!(
        res.text()
            .await
            .expect("body")
            .contains("This link has expired")
    );
    let forged = format!(
        "{}/portal/open/{}/{}",
        p.origin,
        p.app.tenant,
        "ab".repeat(32)
    );
    let res = p.http.get(forged).send().await.expect("open");
    assert_eq!(res.status(), 404);
    assert!(
        res.text()
            .await
            .expect("body")
            .contains("This link is not valid")
    );
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing() {
    let p = spawn_portal().await;
    let cookie = p.open(&p.app.tenant).await;
    let (status, _) = p.post(&cookie, "/portal/revoke", &[]).await;
    assert_eq!(status, 403);
    let (status, _) = p
        .post(&cookie, "/portal/revoke", &[("csrf", "forged")])
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        p.scim_status(&p.app.token).await,
        200,
        "the token still works"
    );
}

#[tokio::test]
async fn revoke_all_tokens_from_the_page_turns_the_old_token_into_401() {
    let p = spawn_portal().await;
    let cookie = p.open(&p.app.tenant).await;
    let csrf = p.csrf(&cookie).await;
    let (status, _) = p.post(&cookie, "/portal/revoke", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    // Revocation reaches every instance within the token cache's 15 s; this
    // process's cache is dropped at once by the revoke itself.
    let mut code = 0;
    for _ in 0..40 {
        code = p.scim_status(&p.app.token).await;
        if code == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(code, 401);
    let (_, body) = p.page(&cookie).await;
    assert!(body.contains("Not activated"));
}

#[tokio::test]
async fn a_session_for_one_tenant_never_reads_or_changes_another() {
    let p = spawn_portal().await;
    let other = TenantId::parse("tenant-b").expect("tenant");
    let cookie_b = p.open(&other).await;
    let status: Value = p.api(&cookie_b, "status").await;
    assert_eq!(status["tenant"], "tenant-b");
    // Rewriting the cookie to name tenant A breaks its signature.
    let forged = cookie_b.replacen("tenant-b", p.app.tenant.as_str(), 1);
    let res = p
        .http
        .get(format!("{}/portal/api/status", p.origin))
        .header("cookie", &forged)
        .send()
        .await
        .expect("status");
    assert_eq!(res.status(), 401);
    let (code, _) = p.page(&forged).await;
    assert_eq!(code, 401);
    // B's revoke leaves A's token working.
    let csrf = p.csrf(&cookie_b).await;
    let (code, _) = p
        .post(&cookie_b, "/portal/revoke", &[("csrf", &csrf)])
        .await;
    assert_eq!(code, 303);
    assert_eq!(p.scim_status(&p.app.token).await, 200);
}

#[tokio::test]
async fn users_available_to_be_synced_show_on_the_page_and_synchronize_makes_them_members() {
    let p = spawn_portal().await;
    for (i, active) in [(1, true), (2, true), (3, false)] {
        let res = p
            .app
            .http
            .post(format!("{}/Users", p.app.base))
            .bearer_auth(&p.app.token)
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "externalId": format!("ext-{i}"),
                "userName": format!("user{i}@example.com"),
                "active": active,
                "emails": [{"type": "work", "value": format!("user{i}@example.com"), "primary": true}],
            }))
            .send()
            .await
            .expect("create");
        assert_eq!(res.status(), 201);
    }
    let cookie = p.open(&p.app.tenant).await;
    p.app.requests.take();
    let (code, body) = p.page(&cookie).await;
    let page_load = p.app.requests.take();
    assert_eq!(code, 200);
    assert!(
        body.contains(r#"<span id="count-create">2</span>"#),
        "{body}"
    );
    let preview = body
        .split(r#"id="preview""#)
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .expect("the preview section");
    assert!(preview.contains("user1@example.com") && !preview.contains("user3@example.com"));
    eprintln!("DynamoDB requests of a page load: {page_load:?}");
    let csrf = p.csrf(&cookie).await;
    p.app.requests.take();
    let (code, _) = p.post(&cookie, "/portal/sync", &[("csrf", &csrf)]).await;
    assert_eq!(code, 303);
    let mut members = Value::Null;
    for _ in 0..60 {
        members = p.api(&cookie, "members").await;
        if members["members"].as_array().is_some_and(|m| m.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "DynamoDB requests of a Synchronize click (and the polls): {:?}",
        p.app.requests.take()
    );
    let emails: Vec<&str> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["email"].as_str())
        .collect();
    assert_eq!(emails.len(), 2, "{members}");
    assert!(emails.contains(&"user1@example.com") && emails.contains(&"user2@example.com"));
}

#[tokio::test]
async fn the_page_says_which_identity_provider_called_last_and_what_it_provisioned() {
    // Arrange
    let p = spawn_portal().await;
    let cookie = p.open(&p.app.tenant).await;
    let (_, before) = p.page(&cookie).await;

    // Act: Okta's existence check, then a create.
    let okta = [("user-agent", "Okta SCIM Client 1.0.0")];
    let check = p
        .app
        .send_with(
            "GET",
            "/Users?filter=userName%20eq%20%22jane%40acme.com%22&startIndex=1&count=100",
            None,
            &p.app.token,
            &okta,
        )
        .await;
    assert_eq!(check.status, 200);
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "jane@acme.com",
        "active": true,
    });
    let created = p
        .app
        .send_with("POST", "/Users", Some(&user), &p.app.token, &okta)
        .await;
    assert_eq!(created.status, 201);
    let (_, after) = p.page(&cookie).await;
    let status: Value = p.api(&cookie, "status").await;

    // Assert
    assert!(before.contains("has not called yet"), "{before}");
    let okta = before
        .split(r#"<details id="connect-okta">"#)
        .nth(1)
        .expect("the Okta setup steps are on the page");
    assert!(
        okta.contains(&format!("{}/scim/v2", p.origin)) && okta.contains("userName"),
        "the Okta steps carry this tenant's URL: {okta}"
    );
    assert!(after.contains("Last request from <b>Okta</b>"), "{after}");
    assert!(after.contains("Provisioned so far: 1 user"), "{after}");
    assert_eq!(status["lastCall"]["provider"], "okta", "{status}");
    assert!(
        status["lastCall"]["at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{status}"
    );
}

#[tokio::test]
async fn a_running_synchronization_shows_its_progress_and_a_second_click_starts_none() {
    // Arrange: a run in progress holds the lease, 12 created so far.
    let p = spawn_portal().await;
    let cookie = p.open(&p.app.tenant).await;
    let state = p.app.stores.sync_state.clone().expect("sync state");
    let tenant = &p.app.tenant;
    let ttl = Duration::from_secs(60);
    use scim_store::sync_state::SyncStateStore as _;
    assert!(
        state
            .acquire_lease(tenant, "other-run", ttl)
            .await
            .expect("lease")
            .is_some()
    );
    let run = json!({
        "runId": "r1", "started": "2026-11-30T05:00:00.000Z", "full": true,
        "mappingVersion": 0, "phase": "users", "cursor": "u-9",
        "counts": {"created": 12, "updated": 3, "deactivated": 0, "reactivated": 0,
                   "unchanged": 0, "linked": 0, "failed": 1},
        "errors": [], "linksMade": false, "invocations": 1,
    });
    assert!(
        state
            .checkpoint(tenant, "other-run", &run, ttl)
            .await
            .expect("checkpoint")
    );
    let csrf = p.csrf(&cookie).await;

    // Act
    let status: Value = p.api(&cookie, "sync").await;
    let (_, page) = p.page(&cookie).await;
    let (code, _) = p.post(&cookie, "/portal/sync", &[("csrf", &csrf)]).await;
    let after: Value = state
        .state(tenant)
        .await
        .map(|s| json!(s.lease_owner))
        .expect("state");

    // Assert
    assert_eq!(status["running"], true, "{status}");
    assert_eq!(status["progress"]["phase"], "users", "{status}");
    assert_eq!(status["progress"]["counts"]["created"], 12, "{status}");
    assert!(
        page.contains("so far 12 created, 3 updated, 0 deactivated, 0 reactivated, 1 failed"),
        "{page}"
    );
    assert_eq!(
        code, 303,
        "the form answers with the page, saying a sync runs"
    );
    assert_eq!(after, json!("other-run"), "a second sync took the lease");
}

#[tokio::test]
async fn a_bad_mapping_row_is_refused_on_its_row_and_nothing_is_saved() {
    let p = spawn_portal().await;
    let cookie = p.open(&p.app.tenant).await;
    let csrf = p.csrf(&cookie).await;
    let before = p
        .state
        .portal()
        .session(cookie.split_once('=').expect("pair").1)
        .await;
    assert!(before.expect("read").is_some());
    let (code, body) = p
        .post(
            &cookie,
            "/portal/mapping",
            &[
                ("csrf", &csrf),
                ("path", "title"),
                ("property", "jobTitle"),
                ("path", "name.givenName["),
                ("property", "first"),
            ],
        )
        .await;
    assert_eq!(code, 400);
    assert!(body.contains("row-error"), "{body}");
    let mapping: Value = p.api(&cookie, "mapping").await;
    assert!(
        !mapping.to_string().contains("first"),
        "nothing saved: {mapping}"
    );
    let (code, _) = p
        .post(
            &cookie,
            "/portal/mapping",
            &[("csrf", &csrf), ("path", "title"), ("property", "jobTitle")],
        )
        .await;
    assert_eq!(code, 303);
}
