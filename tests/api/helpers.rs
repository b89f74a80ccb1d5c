//! `spawn_app()`: the real router on a loopback port, backed by the real
//! DynamoDB and Secrets Manager APIs of the local emulator (moto).
//!
//! Each test gets its own table, secret prefix and tenant, so tests run in
//! parallel without seeing each other's data. The emulator comes from
//! `SCIMSYNC_EMULATOR_URL` (set by `make test`); when unset, one is started
//! once for the whole test binary with `scripts/emulator.sh`, and it dies with
//! the test process.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use aws_sdk_dynamodb::types::AttributeValue;
use http_body_util::BodyExt as _;
use scim_api::{AppState, app, host};
use scim_proto::ids::TenantId;
use scim_store::Stores;
use scim_store::config::{StoreConfig, emulator_aws_config};
use scim_store::metrics::RequestCounter;
use scim_store::tables;
use scim_store::tokens::TokenStore;
use serde_json::Value;
use tokio::sync::OnceCell;
use tower::ServiceExt as _;

static EMULATOR: OnceCell<String> = OnceCell::const_new();

/// The emulator's endpoint, starting one if the environment names none.
pub async fn emulator_url() -> String {
    EMULATOR
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("SCIMSYNC_EMULATOR_URL") {
                return url;
            }
            let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
            let out = Command::new("bash")
                .arg(format!("{root}/scripts/emulator.sh"))
                .args(["start", "--port", "0", "--watch-parent"])
                .arg(std::process::id().to_string())
                .output()
                .expect("scripts/emulator.sh runs (python3 is needed for the emulator venv)");
            assert!(
                out.status.success(),
                "could not start the emulator: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout)
                .expect("utf-8 URL")
                .trim()
                .to_owned()
        })
        .await
        .clone()
}

pub struct TestApp {
    /// `http://127.0.0.1:<port>/scim/v2`
    pub base: String,
    pub tenant: TenantId,
    pub token: String,
    pub http: reqwest::Client,
    pub stores: Stores,
    pub state: AppState,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub config: StoreConfig,
    /// Counts the DynamoDB requests the app's stores send.
    pub requests: RequestCounter,
}

/// A fresh, isolated app: new table, new secret prefix, tenant activated.
pub async fn spawn_app() -> TestApp {
    let endpoint = emulator_url().await;
    let sdk = emulator_aws_config(&endpoint).await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let config = StoreConfig {
        directory_table: format!("test-directory-{run}"),
        token_secret_prefix: format!("test/{run}/tenants/"),
        members_table: Some(format!("test-members-{run}")),
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    tables::ensure_table(&dynamodb, &tables::DIRECTORY, &config.directory_table)
        .await
        .expect("table created in the emulator");
    let members_table = config.members_table.as_deref().expect("members table name");
    tables::ensure_table(&dynamodb, &tables::MEMBERS, members_table)
        .await
        .expect("members table created in the emulator");
    let requests = RequestCounter::default();
    let stores = Stores::counted(&sdk, &config, requests.clone());
    let tenant = TenantId::parse(&format!("t{}", &run[..12])).expect("valid tenant id");
    let token = stores
        .tokens
        .activate(&tenant, None)
        .await
        .expect("tenant activated")
        .expose()
        .to_owned();
    let state = AppState::from(stores.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let port = listener.local_addr().expect("local addr").port();
    tokio::spawn(host::run_tcp(
        listener,
        app(state.clone()),
        std::future::pending(),
    ));
    TestApp {
        base: format!("http://127.0.0.1:{port}/scim/v2"),
        tenant,
        token,
        http: reqwest::Client::new(),
        stores,
        state,
        dynamodb,
        config,
        requests,
    }
}

/// Placeholders the `events/` fixtures carry (events/README.md): the token
/// and the ids a replay swaps for real ones.
pub const FIXTURE_TOKEN: &str =
    "scimsync_default_0000000000000000000000000000000000000000000000000000000000000000";
pub const FIXTURE_USER_ID: &str = "2819c223-7f76-453a-919d-413861904646";
pub const FIXTURE_MANAGER_ID: &str = "902c246b-6245-4190-8e05-00816be7344a";

/// The text of fixture `events/<name>`.
pub fn read_event(name: &str) -> String {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a SCIM error with this status and `scimType`.
    #[track_caller]
    pub fn assert_scim_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "not a SCIM error: {}",
            self.body
        );
        assert_eq!(
            self.body["status"],
            status.to_string(),
            "status must be a string"
        );
        match scim_type {
            Some(t) => assert_eq!(self.body["scimType"], t, "body: {}", self.body),
            None => assert!(self.body.get("scimType").is_none(), "body: {}", self.body),
        }
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/scim+json")),
            "errors are application/scim+json"
        );
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request as Entra does: bearer token, SCIM content type, no
    /// Accept and no User-Agent header.
    pub async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.send_with(method, path, body, &self.token, &[]).await
    }

    pub async fn send_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        token: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("authorization", format!("Bearer {token}"));
        if let Some(body) = body {
            req = req
                .header("content-type", "application/scim+json; charset=utf-8")
                .body(serde_json::to_vec(body).expect("json"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.read(req).await
    }

    /// Sends raw bytes with the given content type.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let req = self
            .http
            .request(method, self.url(path))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", content_type)
            .body(body);
        self.read(req).await
    }

    async fn read(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("response is not JSON: {}", String::from_utf8_lossy(&bytes))
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Sends an API Gateway event down the Lambda path: parsed by
    /// `lambda_http` as the runtime does, its body mapped as
    /// `host::run_lambda` does, into the real router. `label` names the
    /// event in failures.
    pub async fn send_event(&self, event: &Value, label: &str) -> Reply {
        let request = lambda_http::request::from_str(&event.to_string())
            .unwrap_or_else(|e| panic!("{label} parses as an API Gateway event: {e}"));
        let (status, headers, bytes) =
            read_response(app(self.state.clone()), request.map(axum::body::Body::new)).await;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("{label}: not JSON: {}", String::from_utf8_lossy(&bytes))
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send("PUT", path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send("PATCH", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None).await
    }

    /// Creates a user and returns its id (asserting the 201).
    pub async fn create_user(&self, body: &Value) -> String {
        let reply = self.post("/Users", body).await;
        assert_eq!(reply.status, 201, "create failed: {}", reply.body);
        reply.body["id"].as_str().expect("id").to_owned()
    }

    /// Activates another tenant in the same stack and returns its token.
    pub async fn other_tenant(&self, name: &str) -> String {
        let tenant = TenantId::parse(name).expect("tenant id");
        self.stores
            .tokens
            .activate(&tenant, None)
            .await
            .expect("activate")
            .expose()
            .to_owned()
    }

    /// Every item of the directory table, in key order: compare snapshots
    /// taken before and after a request to prove it changed nothing (the
    /// last-call record and the activity log aside).
    pub async fn snapshot(&self) -> BTreeMap<(String, String), String> {
        let mut out = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.config.directory_table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            for item in page.items() {
                let key = |k: &str| match item.get(k) {
                    Some(AttributeValue::S(s)) => s.clone(),
                    _ => String::new(),
                };
                // The identity provider's last call is noted on any
                // authenticated request, refused ones included: it is a
                // record of traffic, not directory data.
                if key("pk").ends_with("#STATS") && key("sk") == "CALL" {
                    continue;
                }
                // So is the activity log: a refused request is logged there.
                if key("pk").ends_with("#ACTIVITY") {
                    continue;
                }
                let mut fields: Vec<String> =
                    item.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                fields.sort();
                out.insert((key("pk"), key("sk")), fields.join(";"));
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return out;
            }
        }
    }
}

/// A user body as Entra's default mapping sends it on create.
pub fn entra_user(user_name: &str, external_id: &str) -> Value {
    serde_json::json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "externalId": external_id,
        "userName": user_name,
        "active": true,
        "displayName": "Adele Vance",
        "title": "Retail Manager",
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Adele Vance", "familyName": "Vance", "givenName": "Adele"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "100042",
            "department": "Retail"
        }
    })
}

/// URL-encodes a filter for a query string.
pub fn enc(filter: &str) -> String {
    let mut out = String::with_capacity(filter.len() * 3);
    for b in filter.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

// --- Fault injection ---------------------------------------------------------

/// An app whose router and stores reach the emulator through a
/// [`FaultProxy`](crate::fault_proxy::FaultProxy), next to a twin on the same
/// tables, secret prefix and tenant that goes straight to the emulator.
///
/// Derefs to the app under test (`app`): `send`/`get`/... and `stores` go
/// through the proxy. Setup and the test's own verification reads use
/// `direct`, which faults never touch.
pub struct ProxiedApp {
    pub app: TestApp,
    pub direct: TestApp,
    pub proxy: crate::fault_proxy::FaultProxy,
}

impl std::ops::Deref for ProxiedApp {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// [`spawn_app_with_proxy_timeout`] with the SDK attempt timeout the other
/// tests use (60 s): faults are errors and drops, not timeouts.
pub async fn spawn_app_with_proxy() -> ProxiedApp {
    spawn_app_with_proxy_timeout(std::time::Duration::from_secs(60)).await
}

/// A fresh, isolated app (as [`spawn_app`]) whose stores talk to the
/// emulator through a new fault proxy, with SDK attempts timing out after
/// `attempt_timeout` (a [`Fault::DelayAfter`] longer than it is a timeout).
///
/// The proxied stores are built by [`proxied_stores`]. Both routers run without the
/// per-tenant rate limit.
///
/// [`Fault::DelayAfter`]: crate::fault_proxy::Fault::DelayAfter
pub async fn spawn_app_with_proxy_timeout(attempt_timeout: std::time::Duration) -> ProxiedApp {
    use scim_api::limits::TenantLimiter;

    let endpoint = emulator_url().await;
    let proxy = crate::fault_proxy::FaultProxy::start(&endpoint).await;
    let direct_sdk = emulator_aws_config(&endpoint).await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let config = StoreConfig {
        directory_table: format!("test-directory-{run}"),
        token_secret_prefix: format!("test/{run}/tenants/"),
        members_table: Some(format!("test-members-{run}")),
    };
    let members_table = config.members_table.clone().expect("members table name");
    let dynamodb = aws_sdk_dynamodb::Client::new(&direct_sdk);
    tables::ensure_table(&dynamodb, &tables::DIRECTORY, &config.directory_table)
        .await
        .expect("table created in the emulator");
    tables::ensure_table(&dynamodb, &tables::MEMBERS, &members_table)
        .await
        .expect("members table created in the emulator");

    let direct_requests = RequestCounter::default();
    let direct_stores = Stores::counted(&direct_sdk, &config, direct_requests.clone());
    let (stores, requests) = proxied_stores(proxy.url(), &config, attempt_timeout).await;

    let tenant = TenantId::parse(&format!("t{}", &run[..12])).expect("valid tenant id");
    let token = direct_stores
        .tokens
        .activate(&tenant, None)
        .await
        .expect("tenant activated")
        .expose()
        .to_owned();
    // The proxied instance has seen the tenant (as `spawn_app`'s has, by
    // activating it): what these tests break is storage, not a cold start.
    stores
        .tokens
        .status(&tenant)
        .await
        .expect("the proxied token store reads the tenant's secret");

    let serve = |stores: Stores, requests: RequestCounter| {
        let config = config.clone();
        let tenant = tenant.clone();
        let token = token.clone();
        let dynamodb = dynamodb.clone();
        async move {
            let state =
                AppState::from(stores.clone()).with_tenant_rate_limit(TenantLimiter::new(0));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a loopback port");
            let port = listener.local_addr().expect("local addr").port();
            tokio::spawn(host::run_tcp(
                listener,
                app(state.clone()),
                std::future::pending(),
            ));
            TestApp {
                base: format!("http://127.0.0.1:{port}/scim/v2"),
                tenant,
                token,
                http: reqwest::Client::new(),
                stores,
                state,
                dynamodb,
                config,
                requests,
            }
        }
    };
    ProxiedApp {
        app: serve(stores, requests).await,
        direct: serve(direct_stores, direct_requests).await,
        proxy,
    }
}

/// Stores on the tables and secrets of `config` that reach the emulator
/// through the proxy at `proxy_url`, with SDK attempts timing out after
/// `attempt_timeout`, and the counter of their DynamoDB requests.
///
/// The clients keep the SDK's standard retries (3 attempts, so one injected
/// 500 is invisible) with millisecond back-off, and get their own unlimited
/// retry token bucket: injected faults must not drain the bucket that every
/// other test's clients share (it is per retry partition, process-wide).
pub async fn proxied_stores(
    proxy_url: &str,
    config: &StoreConfig,
    attempt_timeout: std::time::Duration,
) -> (Stores, RequestCounter) {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use aws_sdk_dynamodb::config::retry::{RetryPartition, TokenBucket};
    use std::time::Duration;

    let sdk = emulator_aws_config(proxy_url)
        .await
        .to_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(attempt_timeout)
                .operation_timeout(attempt_timeout * 4)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(2))
                .with_max_backoff(Duration::from_millis(20)),
        )
        .build();
    let partition = || {
        RetryPartition::custom(format!("fault-proxy-{proxy_url}"))
            .token_bucket(TokenBucket::unlimited())
            .build()
    };
    let requests = RequestCounter::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .retry_partition(partition())
            .interceptor(requests.clone())
            .build(),
    );
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&sdk)
            .retry_partition(partition())
            .build(),
    );
    // The clients get their own retry partition.
    let stores = Stores::from_clients(dynamodb, secrets, config);
    (stores, requests)
}

// --- Assert helpers shared by the lifecycle and provider tests ---------------

/// The member ids `GET /Groups/{id}` lists.
pub async fn members_of(app: &TestApp, group: &str) -> BTreeSet<String> {
    let reply = app.get(&format!("/Groups/{group}")).await;
    assert_eq!(reply.status, 200, "GET /Groups/{group}: {}", reply.body);
    member_values(&reply.body)
}

/// The `members[].value`s of a group as returned.
pub fn member_values(group: &Value) -> BTreeSet<String> {
    group["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["value"].as_str().expect("member value").to_owned())
        .collect()
}

/// Ids as a set, for comparing memberships.
pub fn set<S: AsRef<str>>(ids: &[S]) -> BTreeSet<String> {
    ids.iter().map(|s| s.as_ref().to_owned()).collect()
}

/// The ids of a `ListResponse`'s resources (asserting a 200 `ListResponse`).
pub fn listed_ids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "list: {}", reply.body);
    assert_eq!(
        reply.body["schemas"],
        serde_json::json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"]),
        "{}",
        reply.body
    );
    reply.body["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no Resources array: {}", reply.body))
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

/// A resource without `meta` (which every write changes), and without the
/// read-only `groups` when it is empty (absent or `[]` on a user in no
/// group).
pub fn attrs(resource: &Value) -> Value {
    let mut v = resource.clone();
    let obj = v.as_object_mut().expect("a resource object");
    obj.remove("meta");
    if obj.get("groups") == Some(&serde_json::json!([])) {
        obj.remove("groups");
    }
    v
}

/// Runs one request through a router (as the Lambda host or a test hands it
/// over) and reads the whole answer: status, headers and body.
pub async fn read_response<S>(
    router: S,
    request: http::Request<axum::body::Body>,
) -> (u16, http::HeaderMap, axum::body::Bytes)
where
    S: tower::Service<
            http::Request<axum::body::Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        >,
{
    let response = router
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("response body")
        .to_bytes();
    (status, headers, bytes)
}

/// Sends one request straight into the router built on `state`.
pub async fn call_with(
    app: &TestApp,
    state: AppState,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("/scim/v2{path}"))
        .header("host", "scim.example.com")
        .header("authorization", format!("Bearer {}", app.token))
        .header("content-type", "application/scim+json");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request
        .body(axum::body::Body::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        ))
        .expect("request");
    let (status, _, bytes) = read_response(scim_api::app(state), request).await;
    let headers = reqwest::header::HeaderMap::new();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}
