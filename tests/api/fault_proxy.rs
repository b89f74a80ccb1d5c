//! A fault-injecting HTTP proxy between the stores under test and the
//! emulator.
//!
//! It listens on `127.0.0.1:0` and forwards every request to the emulator,
//! unless a [`Rule`] set by the test at run time picks it: rules select
//! requests by AWS operation (the `X-Amz-Target` header, e.g.
//! `DynamoDB_20120810.TransactWriteItems`, or a service prefix such as
//! [`DYNAMODB`]) and by position among the requests they match since they
//! were set ([`When`]), and choose a [`Fault`]: a 500 in the AWS JSON error
//! shape, a dropped connection (before or after the emulator saw the
//! request), or a delay (before forwarding, or before answering).
//!
//! Every request is recorded (operation and fault), so a test can count what
//! an operation sends and assert what ran.
//!
//! Forwarding always runs to completion in its own task, even when the client
//! hangs up (a timed-out request may still take effect, as on AWS);
//! [`FaultProxy::settle`] waits for those before a test reads the outcome.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;

/// Target prefix of every DynamoDB operation.
pub const DYNAMODB: &str = "DynamoDB_20120810.";
/// Target prefix of every Secrets Manager operation.
pub const SECRETS: &str = "secretsmanager.";

/// The full target of DynamoDB operation `op` (e.g. `"BatchWriteItem"`).
pub fn ddb(op: &str) -> String {
    format!("{DYNAMODB}{op}")
}

/// What happens to a request a rule picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer HTTP 500 with `{"__type": "...InternalServerError", "message":
    /// "injected"}` (`InternalServiceError` for Secrets Manager, its own
    /// name); the emulator never sees the request. The SDK retries it.
    Error500,
    /// Close the connection without an answer; the emulator never sees the
    /// request. The SDK retries it.
    Drop,
    /// Forward the request (it takes effect), then close the connection
    /// without an answer: the client cannot know it was applied. The SDK
    /// retries it.
    DropAfterForward,
    /// Hold the request this long, then forward it, even if the client gave
    /// up meanwhile (a late write).
    DelayBefore(Duration),
    /// Forward the request (it takes effect), then hold the answer this long.
    DelayAfter(Duration),
}

/// Which of the requests a rule matches it picks; 1-based, counted from when
/// the rule was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Only the nth.
    Nth(usize),
    /// The nth and every later one, until the rule is cleared.
    From(usize),
    /// `count` requests from the nth on.
    Window { from: usize, count: usize },
    /// Every one.
    Always,
}

impl When {
    fn picks(self, seen: usize) -> bool {
        match self {
            Self::Nth(n) => seen == n,
            Self::From(n) => seen >= n,
            Self::Window { from, count } => seen >= from && seen < from + count,
            Self::Always => true,
        }
    }
}

/// A fault for the requests whose target is `target` (exactly, or as a
/// prefix when it ends with `.`; `"*"` matches every request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub target: String,
    pub when: When,
    pub fault: Fault,
}

impl Rule {
    pub fn new(target: impl Into<String>, when: When, fault: Fault) -> Self {
        Self {
            target: target.into(),
            when,
            fault,
        }
    }

    fn matches(&self, target: &str) -> bool {
        self.target == "*"
            || self.target == target
            || (self.target.ends_with('.') && target.starts_with(&self.target))
    }
}

/// One request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The `X-Amz-Target` header (`"?"` when absent).
    pub target: String,
    /// The fault injected, `None` when it was forwarded untouched.
    pub fault: Option<Fault>,
}

impl Record {
    /// The operation name without its service prefix, e.g. `"Query"`.
    pub fn op(&self) -> &str {
        self.target
            .rsplit_once('.')
            .map_or(self.target.as_str(), |(_, op)| op)
    }
}

#[derive(Debug, Default)]
struct State {
    /// Rules with the number of requests each has matched.
    rules: Vec<(Rule, usize)>,
    log: Vec<Record>,
    in_flight: usize,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    settled: Notify,
    upstream: String,
    client: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts the request against every rule it matches and returns the
    /// fault of the first rule that picks it; records it.
    fn decide(&self, target: &str) -> Option<Fault> {
        let mut state = self.lock();
        let mut fault = None;
        for (rule, seen) in &mut state.rules {
            if rule.matches(target) {
                *seen += 1;
                if fault.is_none() && rule.when.picks(*seen) {
                    fault = Some(rule.fault);
                }
            }
        }
        state.log.push(Record {
            target: target.to_owned(),
            fault,
        });
        fault
    }
}

/// Decrements the in-flight count when a forward ends, however it ends.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn start(shared: &Arc<Shared>) -> Self {
        shared.lock().in_flight += 1;
        Self(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            self.0.settled.notify_waiters();
        }
    }
}

/// A running proxy; it stops with the test's runtime.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
}

/// The error that makes hyper close the connection without an answer.
#[derive(Debug)]
struct Hangup;

impl std::fmt::Display for Hangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Hangup {}

type Reply = Result<Response<Full<Bytes>>, Hangup>;

struct Forwarded {
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (e.g. `http://127.0.0.1:4566`).
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the fault proxy");
        let port = listener.local_addr().expect("local addr").port();
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("proxy's HTTP client");
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            settled: Notify::new(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            client,
        });
        let accept = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = accept.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    // An error here is a fault we injected or a client that
                    // hung up: either way the connection is done.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            shared,
        }
    }

    /// The endpoint to give the SDK.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Adds a rule (its count starts at zero now).
    pub fn add(&self, rule: Rule) {
        self.shared.lock().rules.push((rule, 0));
    }

    /// Replaces every rule with `rule`.
    pub fn set(&self, rule: Rule) {
        self.shared.lock().rules = vec![(rule, 0)];
    }

    /// Removes every rule: from now on everything is forwarded.
    pub fn clear(&self) {
        self.shared.lock().rules.clear();
    }

    /// Every request recorded since the last [`Self::take_log`], in arrival
    /// order; empties the log.
    pub fn take_log(&self) -> Vec<Record> {
        std::mem::take(&mut self.shared.lock().log)
    }

    /// The operations recorded since the last [`Self::take_log`] whose
    /// target matches `target` (as in [`Rule`]), without emptying the log.
    pub fn ops(&self, target: &str) -> Vec<String> {
        let probe = Rule::new(target, When::Always, Fault::Drop);
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| probe.matches(&r.target))
            .map(|r| r.op().to_owned())
            .collect()
    }

    /// How many faults were injected since the last [`Self::take_log`].
    pub fn faults_injected(&self) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.fault.is_some())
            .count()
    }

    /// Waits until no forwarded request is in flight (late writes included).
    pub async fn settle(&self) {
        loop {
            let notified = self.shared.settled.notified();
            if self.shared.lock().in_flight == 0 {
                return;
            }
            // Bounded: a forward that never ends would otherwise hang the test.
            let _ = tokio::time::timeout(Duration::from_secs(5), notified).await;
        }
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Hangup)?.to_bytes();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_owned();
    let fault = shared.decide(&target);
    let send = |delay: Duration| {
        // Its own task: it completes even if this handler is dropped.
        let guard = InFlight::start(&shared);
        let shared = shared.clone();
        let parts = parts.clone();
        let body = body.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let out = forward(&shared, &parts, body).await;
            drop(guard);
            out
        })
    };
    match fault {
        None => respond(send(Duration::ZERO).await),
        Some(Fault::Error500) => Ok(injected_error(&target)),
        Some(Fault::Drop) => Err(Hangup),
        Some(Fault::DropAfterForward) => {
            let _ = send(Duration::ZERO).await;
            Err(Hangup)
        }
        Some(Fault::DelayBefore(d)) => respond(send(d).await),
        Some(Fault::DelayAfter(d)) => {
            let out = send(Duration::ZERO).await;
            tokio::time::sleep(d).await;
            respond(out)
        }
    }
}

async fn forward(
    shared: &Shared,
    parts: &http::request::Parts,
    body: Bytes,
) -> Result<Forwarded, String> {
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let mut req = shared
        .client
        .request(parts.method.clone(), format!("{}{path}", shared.upstream));
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name) {
            req = req.header(name, value);
        }
    }
    let res = req.body(body).send().await.map_err(|e| e.to_string())?;
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.bytes().await.map_err(|e| e.to_string())?;
    Ok(Forwarded {
        status,
        headers,
        body,
    })
}

fn is_hop_by_hop(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host" | "connection" | "content-length" | "transfer-encoding" | "keep-alive"
    )
}

fn respond(out: Result<Result<Forwarded, String>, tokio::task::JoinError>) -> Reply {
    let out = match out {
        Ok(Ok(out)) => out,
        // The emulator is unreachable: a gateway error, as a load balancer
        // in front of AWS would answer.
        Ok(Err(e)) => {
            let mut res = Response::new(Full::new(Bytes::from(e)));
            *res.status_mut() = http::StatusCode::BAD_GATEWAY;
            return Ok(res);
        }
        Err(_) => return Err(Hangup),
    };
    let mut res = Response::new(Full::new(out.body));
    *res.status_mut() = out.status;
    for (name, value) in &out.headers {
        if !is_hop_by_hop(name) {
            res.headers_mut().append(name, value.clone());
        }
    }
    Ok(res)
}

/// A 500 in the AWS JSON protocol's error shape, named as each service
/// names its internal error.
fn injected_error(target: &str) -> Response<Full<Bytes>> {
    let (kind, content_type) = if target.starts_with(SECRETS) {
        ("InternalServiceError", "application/x-amz-json-1.1")
    } else {
        ("InternalServerError", "application/x-amz-json-1.0")
    };
    let body = serde_json::json!({"__type": kind, "message": "injected"}).to_string();
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    res
}
