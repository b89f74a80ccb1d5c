//! Hardening (issue #9) on the real router and emulator: revocations that
//! stick, limits that keep one tenant from starving the others, and input
//! at DynamoDB's key limits answered as SCIM errors or empty results.

use std::collections::HashSet;
use std::time::Instant;

use scim_api::limits::TenantLimiter;
use scim_api::{app, host};
use scim_proto::ids::TenantId;
use scim_store::config::emulator_aws_config;
use scim_store::metrics::RequestCounter;
use scim_store::tokens::{
    ApiToken, SecretsManagerTokenStore, TokenError, TokenStore, UNSEEN_TENANT_BURST,
    UNSEEN_TENANT_REFILL,
};
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{TestApp, emulator_url, enc, entra_user, spawn_app};

fn token(text: &str) -> ApiToken {
    ApiToken::from_secret(SecretString::from(text.to_owned()))
}

/// A second token store on the same secrets, with its own cache: another
/// warm instance, or the operator's CLI.
async fn other_instance(app: &TestApp) -> SecretsManagerTokenStore {
    let sdk = emulator_aws_config(&emulator_url().await).await;
    SecretsManagerTokenStore::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        app.config.token_secret_prefix.clone(),
    )
}

#[tokio::test]
async fn a_rotation_racing_a_reactivation_never_brings_back_a_revoked_token() {
    // Arrange: rotations from several operators' processes run while the
    // tenant is re-activated (the emergency "revoke everything" of a leak).
    let app = spawn_app().await;
    let tenant = &app.tenant;
    let stores = [
        other_instance(&app).await,
        other_instance(&app).await,
        other_instance(&app).await,
    ];
    for round in 0..12 {
        let leaked = stores[0].activate(tenant, None).await.unwrap();

        // Act
        let (r1, r2, fresh) = tokio::join!(
            stores[1].rotate(tenant),
            stores[2].rotate(tenant),
            stores[0].activate(tenant, None),
        );
        let fresh = fresh.unwrap();

        // Assert: whatever the interleaving, the token valid before the
        // re-activation is not valid after it; the new one is.
        let status = other_instance(&app)
            .await
            .status(tenant)
            .await
            .unwrap()
            .unwrap();
        let ids: HashSet<String> = status.tokens.iter().map(|t| t.id.clone()).collect();
        assert!(
            !ids.contains(&leaked.id()),
            "round {round}: the revoked token is active again ({r1:?}, {r2:?})"
        );
        assert!(ids.contains(&fresh.id()), "round {round}: {ids:?}");
        // A rotation that succeeded either preceded the re-activation (and
        // was revoked with the rest) or followed it (and is valid).
        assert!(
            ids.len() <= 3,
            "round {round}: only the fresh token and rotations after it: {ids:?} ({r1:?}, {r2:?})"
        );
    }
}

#[tokio::test]
async fn revoke_stops_every_token_and_only_activate_turns_provisioning_back_on() {
    // Arrange
    let app = spawn_app().await;
    let second = app.stores.tokens.rotate(&app.tenant).await.unwrap();
    assert_eq!(app.get("/Users").await.status, 200);

    // Act: the operator's CLI runs in another process.
    let revoked = other_instance(&app)
        .await
        .revoke(&app.tenant)
        .await
        .unwrap();

    // Assert: this instance read the secret when the app was spawned; the
    // revocation reaches it once its cache entry expires (15 s), here forced
    // by reading through a fresh instance.
    assert_eq!(revoked, 2);
    let fresh = other_instance(&app).await;
    assert_eq!(fresh.verify(&token(&app.token)).await.unwrap(), None);
    assert_eq!(fresh.verify(&second).await.unwrap(), None);
    let err = fresh.rotate(&app.tenant).await.unwrap_err();
    assert!(matches!(err, TokenError::NotActive), "{err:?}");
    let status = fresh.status(&app.tenant).await.unwrap().unwrap();
    assert!(status.tokens.is_empty());

    let back = fresh.activate(&app.tenant, None).await.unwrap();
    assert_eq!(fresh.verify(&back).await.unwrap(), Some(app.tenant.clone()));
}

#[tokio::test]
async fn tokens_naming_invented_tenants_cost_a_bounded_number_of_secret_reads() {
    // Arrange
    let app = spawn_app().await;
    let sdk = emulator_aws_config(&emulator_url().await).await;
    let reads = RequestCounter::default();
    let client = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&sdk)
            .interceptor(reads.clone())
            .build(),
    );
    let store = SecretsManagerTokenStore::new(client, app.config.token_secret_prefix.clone());
    let started = Instant::now();

    // Act: 100 well-formed tokens, each naming a tenant that does not exist.
    let mut refused = 0;
    for i in 0..100 {
        let tenant = TenantId::parse(&format!("invented-{i}")).unwrap();
        match store.verify(&ApiToken::generate(&tenant)).await {
            Ok(None) => {}
            Ok(Some(t)) => panic!("an invented tenant authenticated: {t}"),
            Err(_) => refused += 1,
        }
    }

    // Assert: the burst, plus one read per refill period that passed.
    let periods = started.elapsed().as_nanos() / UNSEEN_TENANT_REFILL.as_nanos();
    let allowed = u64::from(UNSEEN_TENANT_BURST) + u64::try_from(periods).unwrap() + 1;
    let sent = reads.take_total();
    assert!(
        sent <= allowed,
        "{sent} secret reads for 100 invented tenants (allowed {allowed})"
    );
    assert!(refused > 0);
    // A known tenant already cached is not affected.
    assert_eq!(app.get("/Users").await.status, 200);
}

/// The app's router on another port, with its own per-tenant rate limit.
async fn serve_with_rate_limit(test_app: &TestApp, rate: u32) -> String {
    let state = test_app
        .state
        .clone()
        .with_tenant_rate_limit(TenantLimiter::new(rate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(host::run_tcp(listener, app(state), std::future::pending()));
    format!("http://127.0.0.1:{port}/scim/v2")
}

#[tokio::test]
async fn a_tenant_over_its_rate_is_answered_429_with_retry_after_and_others_are_not() {
    // Arrange: 1 request per second, bursts of 2. The requests need no
    // storage (an id that cannot exist is a 404 at once), so ten of them
    // take milliseconds and at most a refill or two happens meanwhile.
    let test_app = spawn_app().await;
    let base = serve_with_rate_limit(&test_app, 1).await;
    let other = test_app.other_tenant("quiet-neighbour").await;
    let http = reqwest::Client::new();
    let get = |token: String| {
        let http = http.clone();
        let url = format!("{base}/Users/not-a-user-id");
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };

    // Act
    let mut replies = Vec::new();
    for _ in 0..10 {
        replies.push(get(test_app.token.clone()).await);
    }
    let neighbour = get(other).await;

    // Assert
    let codes: Vec<u16> = replies.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(&codes[..2], &[404, 404], "the burst is served: {codes:?}");
    let limited = codes.iter().filter(|c| **c == 429).count();
    assert!(limited >= 5, "{codes:?}");
    let reply = replies.into_iter().find(|r| r.status() == 429).unwrap();
    let retry_after: u64 = reply.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(body["status"], "429");
    assert_eq!(
        neighbour.status().as_u16(),
        404,
        "another tenant is not limited"
    );
}

#[tokio::test]
async fn lookups_of_values_no_key_can_hold_find_nothing_without_reading() {
    // Arrange
    let app = spawn_app().await;
    app.create_user(&entra_user("adele@contoso.com", "ext-1"))
        .await;
    let long = "x".repeat(1025);
    app.requests.take();

    for filter in [
        r#"userName eq """#.to_owned(),
        r#"externalId eq """#.to_owned(),
        format!(r#"userName eq "{long}""#),
        format!(r#"externalId eq "{long}""#),
        format!(r#"userName eq "{}""#, "İ".repeat(400)),
        r#"emails[type eq "work"].value eq """#.to_owned(),
    ] {
        // Act
        let reply = app.get(&format!("/Users?filter={}", enc(&filter))).await;

        // Assert: an empty list (Entra's "no match"), not a 500, and no
        // DynamoDB read of a key that cannot exist.
        assert_eq!(reply.status, 200, "{filter}: {}", reply.body);
        assert_eq!(reply.body["totalResults"], 0, "{filter}");
        let sent = app.requests.take();
        assert!(
            !sent.contains_key("GetItem") && !sent.contains_key("Query"),
            "{filter}: {sent:?}"
        );
    }
    for filter in [
        r#"displayName eq """#.to_owned(),
        format!(r#"externalId eq "{long}""#),
    ] {
        let reply = app
            .get(&format!(
                "/Groups?excludedAttributes=members&filter={}",
                enc(&filter)
            ))
            .await;
        assert_eq!(reply.status, 200, "{filter}: {}", reply.body);
        assert_eq!(reply.body["totalResults"], 0, "{filter}");
    }
}

#[tokio::test]
async fn a_name_whose_lowercase_form_is_too_long_for_a_key_is_a_400_that_changes_nothing() {
    // Arrange: 'İ' is 2 bytes, its lowercase 3: 1024 bytes sent, 1536 to key.
    let app = spawn_app().await;
    let name = "İ".repeat(512);
    let before = app.snapshot().await;

    // Act
    let user = app.post("/Users", &entra_user(&name, "ext-1")).await;
    let group = app
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}),
        )
        .await;

    // Assert
    user.assert_scim_error(400, Some("invalidValue"));
    group.assert_scim_error(400, Some("invalidValue"));
    assert_eq!(app.snapshot().await, before);
}
