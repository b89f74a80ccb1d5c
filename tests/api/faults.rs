//! Fault tests (issue #9): storage failing, dropping the connection or
//! answering late in the middle of a multi-request operation must leave the
//! old state or the new one, never a mix; and the operation, retried as its
//! client retries it, must converge.
//!
//! Every test runs its operation once fault-free through the
//! [`FaultProxy`](crate::fault_proxy::FaultProxy) to count the requests it
//! makes, then injects a fault at every one of those requests, once per
//! [`Kind`], on a fresh copy of the same situation: it checks the state right
//! after the fault (with reads that bypass the proxy), retries the operation
//! without faults, and checks the end state.
//!
//! Short mode (`make test`): the kinds that need no timeout, each fault point
//! once. Long mode (`make faults`, `SCIMSYNC_FAULT_ROUNDS=N` with N > 1):
//! every kind, timeouts and late writes included, every point N times, and N
//! times the rounds of the rotation race. Each test prints its counts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use member_sync::{SyncEngine, SyncError, SyncOptions};
use scim_proto::ids::{ResourceId, TenantId};
use scim_store::groups::GroupStore as _;
use scim_store::members::MemberStore as _;
use scim_store::tokens::{ApiToken, SecretsManagerTokenStore, TokenStore as _};
use scim_store::users::UserStore as _;
use serde_json::{Value, json};

use crate::fault_proxy::{DYNAMODB, Fault, FaultProxy, Rule, SECRETS, When};
use crate::helpers::{
    ProxiedApp, Reply, TestApp, emulator_url, proxied_stores, spawn_app_with_proxy,
    spawn_app_with_proxy_timeout,
};
use crate::sync::{PATCH_OP, person};

// --- Modes, kinds of fault, tallies ----------------------------------------------------------

/// `SCIMSYNC_FAULT_ROUNDS` (default 1: short mode).
fn rounds() -> usize {
    std::env::var("SCIMSYNC_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}

fn long_mode() -> bool {
    rounds() > 1
}

/// SDK attempt timeout of the proxied stores in long mode, where faults
/// include late answers; short mode keeps the usual 60 s (no timeouts).
const LONG_MODE_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Longer than [`LONG_MODE_ATTEMPT_TIMEOUT`]: the client has given up.
const LATE: Duration = Duration::from_millis(1400);

fn attempt_timeout() -> Duration {
    if long_mode() {
        LONG_MODE_ATTEMPT_TIMEOUT
    } else {
        Duration::from_secs(60)
    }
}

async fn spawn() -> ProxiedApp {
    if long_mode() {
        spawn_app_with_proxy_timeout(LONG_MODE_ATTEMPT_TIMEOUT).await
    } else {
        spawn_app_with_proxy().await
    }
}

/// How request `n` of an operation fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Storage is gone from request `n` on (HTTP 500, also for the SDK's
    /// retries): `n` never takes effect and the operation fails there.
    FailFrom,
    /// Request `n` takes effect but its answer is lost, and storage is gone
    /// from then on: the operation fails right after `n` was applied.
    LostAfter,
    /// Request `n` takes effect but its answer is lost (connection dropped);
    /// the SDK retries it against working storage.
    AnswerLost,
    /// The connection drops before request `n` and every later one reaches
    /// storage (long mode).
    DropFrom,
    /// Request `n` takes effect but its answer comes after the client's
    /// timeout; the SDK retries it (long mode).
    AnswerLate,
    /// Request `n` reaches storage only after the client's timeout, after
    /// the SDK's retry of it (a late write; long mode).
    LateArrival,
}

const SHORT_KINDS: [Kind; 3] = [Kind::FailFrom, Kind::LostAfter, Kind::AnswerLost];
const LONG_KINDS: [Kind; 6] = [
    Kind::FailFrom,
    Kind::LostAfter,
    Kind::AnswerLost,
    Kind::DropFrom,
    Kind::AnswerLate,
    Kind::LateArrival,
];

impl Kind {
    /// The proxy rules that inject this fault at the `n`th request whose
    /// target matches `target`.
    fn rules(self, target: &str, n: usize) -> Vec<Rule> {
        let one = |when, fault| Rule::new(target, when, fault);
        match self {
            Self::FailFrom => vec![one(When::From(n), Fault::Error500)],
            Self::LostAfter => vec![
                one(When::Nth(n), Fault::DropAfterForward),
                one(When::From(n + 1), Fault::Error500),
            ],
            Self::AnswerLost => vec![one(When::Nth(n), Fault::DropAfterForward)],
            Self::DropFrom => vec![one(When::From(n), Fault::Drop)],
            Self::AnswerLate => vec![one(When::Nth(n), Fault::DelayAfter(LATE))],
            Self::LateArrival => vec![one(When::Nth(n), Fault::DelayBefore(LATE))],
        }
    }
}

/// Whether `op` changes storage: only there does a lost answer differ from
/// a failure (a read whose answer is lost is just read again).
fn is_write(op: &str) -> bool {
    matches!(
        op,
        "TransactWriteItems"
            | "BatchWriteItem"
            | "PutItem"
            | "UpdateItem"
            | "DeleteItem"
            | "CreateSecret"
            | "PutSecretValue"
            | "UpdateSecretVersionStage"
            | "DeleteSecret"
    )
}

/// Every (kind, request index) to inject into an operation that makes the
/// requests `ops`. Short mode: [`Kind::FailFrom`] at every request, the
/// kinds whose request takes effect at every write. Long mode: every kind
/// at every request, `rounds()` times.
fn cases(ops: &[String]) -> Vec<(Kind, usize)> {
    let mut out = Vec::new();
    if long_mode() {
        for _ in 0..rounds() {
            for kind in LONG_KINDS {
                out.extend((1..=ops.len()).map(|n| (kind, n)));
            }
        }
        return out;
    }
    for kind in SHORT_KINDS {
        out.extend(
            ops.iter()
                .enumerate()
                .filter(|(_, op)| kind == Kind::FailFrom || is_write(op))
                .map(|(i, _)| (kind, i + 1)),
        );
    }
    out
}

fn inject(proxy: &FaultProxy, kind: Kind, target: &str, n: usize) {
    proxy.clear();
    for rule in kind.rules(target, n) {
        proxy.add(rule);
    }
}

/// Clears the faults, waits for late writes, and returns how many faults
/// were injected (emptying the log).
async fn lift(proxy: &FaultProxy) -> usize {
    proxy.clear();
    proxy.settle().await;
    let n = proxy.faults_injected();
    proxy.take_log();
    n
}

/// What a test prints: the operation's requests and what the faults did.
#[derive(Debug, Default)]
struct Tally {
    ops: Vec<String>,
    cases: usize,
    faults: usize,
    first: BTreeMap<String, usize>,
    after_fault: BTreeMap<String, usize>,
    retry: BTreeMap<String, usize>,
    started: Option<Instant>,
}

impl Tally {
    fn new() -> Self {
        Self {
            started: Some(Instant::now()),
            ..Self::default()
        }
    }

    fn print(&self, name: &str) {
        println!(
            "faults: {name}: {} requests [{}], {} cases, {} faults injected, {:.1} s; \
             first try {:?}; state after the fault {:?}; retry {:?}",
            self.ops.len(),
            self.ops.join(" "),
            self.cases,
            self.faults,
            self.started.map_or(0.0, |s| s.elapsed().as_secs_f64()),
            self.first,
            self.after_fault,
            self.retry,
        );
    }
}

fn bump(map: &mut BTreeMap<String, usize>, key: impl Into<String>) {
    *map.entry(key.into()).or_default() += 1;
}

/// Returns `Err(message)` from the enclosing function when `cond` is false:
/// a case's checks report what broke instead of stopping the whole test.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// A reply to a request that met a fault: success, or a SCIM error that
/// tells the client to retry (5xx), or 404 where `not_found_ok`.
fn success_or_server_error(reply: &Reply, not_found_ok: bool) -> Result<(), String> {
    match reply.status {
        200..=299 => Ok(()),
        404 if not_found_ok => Ok(()),
        500..=599 => {
            ensure!(
                reply.body["schemas"][0] == "urn:ietf:params:scim:api:messages:2.0:Error",
                "a 5xx that is not a SCIM error: {}",
                reply.body
            );
            Ok(())
        }
        s => Err(format!("answered {s} {}", reply.body)),
    }
}

/// Runs every case; returns the violations, each prefixed with its case.
/// Cases are independent (each has its own resources), so one violation
/// does not stop the others: the report shows every failing point.
fn fail_on(violations: &[String], tally: &Tally, name: &str) {
    tally.print(name);
    assert!(
        violations.is_empty(),
        "{name}: {} of {} cases broke an invariant:\n  {}",
        violations.len(),
        tally.cases,
        violations.join("\n  ")
    );
}

// --- Directory helpers (all through the direct app) ------------------------------------------

async fn new_users(direct: &TestApp, n: usize) -> Vec<String> {
    futures::stream::iter(0..n)
        .map(|_| async {
            let name = format!("u{}@contoso.com", uuid::Uuid::new_v4().simple());
            direct.create_user(&person(&name, "Engineer", "Oslo")).await
        })
        .buffered(8)
        .collect()
        .await
}

async fn create_group(direct: &TestApp, members: &[String]) -> String {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    let reply = direct
        .post(
            "/Groups",
            &json!({
                "displayName": format!("g-{}", uuid::Uuid::new_v4().simple()),
                "externalId": uuid::Uuid::new_v4().to_string(),
                "members": members,
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "group created: {}", reply.body);
    reply.body["id"].as_str().expect("group id").to_owned()
}

fn member_patch(op: &str, users: &[String]) -> Value {
    let values: Vec<Value> = users.iter().map(|u| json!({"value": u})).collect();
    json!({"schemas": [PATCH_OP], "Operations": [{"op": op, "path": "members", "value": values}]})
}

fn rid(id: &str) -> ResourceId {
    ResourceId::parse(id).expect("resource id")
}

/// The group's members as `GET /Groups/{id}` lists them (`None`: 404), read
/// from the store.
async fn group_members(direct: &TestApp, group: &str) -> Option<BTreeSet<String>> {
    let (tenant, groups) = (&direct.tenant, &direct.stores.groups);
    groups.get(tenant, &rid(group)).await.expect("get group")?;
    let members = groups
        .members(tenant, &rid(group), None)
        .await
        .expect("members");
    Some(members.iter().map(|m| m.as_str().to_owned()).collect())
}

/// The member ids of each of `groups` as `GET /Groups/{id}` lists them,
/// whether or not the group item exists.
async fn listed_members(direct: &TestApp, groups: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    let (tenant, store) = (&direct.tenant, &direct.stores.groups);
    futures::stream::iter(groups)
        .map(|g| async move {
            let members = store.members(tenant, &rid(g), None).await.expect("members");
            (
                g.clone(),
                members.iter().map(|m| m.as_str().to_owned()).collect(),
            )
        })
        .buffer_unordered(8)
        .collect()
        .await
}

/// Whether the user exists.
async fn user_exists(direct: &TestApp, user: &str) -> bool {
    direct
        .stores
        .users
        .get(&direct.tenant, &rid(user))
        .await
        .expect("get user")
        .is_some()
}

/// The group ids of each of `users` as `GET /Users/{id}` lists them (its
/// membership mirror, groups that exist only), read from the store.
async fn groups_of_users(
    direct: &TestApp,
    users: &[String],
    existing_groups: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let (tenant, store) = (&direct.tenant, &direct.stores.groups);
    futures::stream::iter(users)
        .map(|u| async move {
            let groups = store.groups_of(tenant, &rid(u)).await.expect("groups of");
            let groups = groups
                .iter()
                .map(|g| g.as_str().to_owned())
                .filter(|g| existing_groups.contains(g))
                .collect();
            (u.clone(), groups)
        })
        .buffer_unordered(8)
        .collect()
        .await
}

async fn total_results(direct: &TestApp, resource: &str) -> u64 {
    let reply = direct.get(&format!("/{resource}?count=1")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["totalResults"].as_u64().expect("totalResults")
}

/// Users that one side of the membership lists and the other does not:
/// `group` lists them but their `groups` lack it, or the reverse.
fn one_sided(
    group: &str,
    members: &BTreeSet<String>,
    users: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    users
        .iter()
        .filter(|(u, groups)| members.contains(*u) != groups.contains(group))
        .map(|(u, _)| u.clone())
        .collect()
}

// --- The proxy itself ---------------------------------------------------------------------

#[tokio::test]
async fn the_fault_proxy_injects_exactly_the_chosen_faults_and_one_500_is_absorbed_by_sdk_retries()
{
    // Arrange: short SDK timeouts so that a late answer is a timeout.
    let app = spawn_app_with_proxy_timeout(Duration::from_millis(500)).await;
    let user = new_users(&app.direct, 1).await.remove(0);
    let path = format!("/Users/{user}");
    assert_eq!(app.get(&path).await.status, 200, "warm-up (token cache)");
    app.proxy.take_log();
    let get_item = crate::fault_proxy::ddb("GetItem");

    // Act + Assert: one 500 is retried by the SDK and never seen.
    app.proxy
        .set(Rule::new(&get_item, When::Nth(1), Fault::Error500));
    assert_eq!(app.get(&path).await.status, 200);
    let log = app.proxy.take_log();
    assert_eq!(log[0].op(), "GetItem");
    assert_eq!(log[0].fault, Some(Fault::Error500));
    assert_eq!(log[1].op(), "GetItem", "retried: {log:?}");
    assert_eq!(log[1].fault, None);

    // Failing from the first on exhausts the SDK's 3 attempts: 503.
    app.proxy
        .set(Rule::new(&get_item, When::From(1), Fault::Error500));
    app.get(&path).await.assert_scim_error(503, None);
    assert_eq!(app.proxy.ops(DYNAMODB), ["GetItem"; 3]);
    assert_eq!(app.proxy.faults_injected(), 3);
    app.proxy.take_log();

    // Dropped connections are retried too, and fail the same way.
    app.proxy
        .set(Rule::new(DYNAMODB, When::Always, Fault::Drop));
    app.get(&path).await.assert_scim_error(503, None);
    assert_eq!(app.proxy.faults_injected(), 3);
    app.proxy.take_log();

    // A window fails exactly the requests it names.
    app.proxy.set(Rule::new(
        DYNAMODB,
        When::Window { from: 2, count: 1 },
        Fault::Error500,
    ));
    assert_eq!(app.get(&path).await.status, 200);
    let faults: Vec<bool> = app
        .proxy
        .take_log()
        .iter()
        .map(|r| r.fault.is_some())
        .collect();
    assert_eq!(faults, [false, true, false], "GetItem, Query, Query again");

    // An answer later than the attempt timeout: the SDK times out, retries.
    app.proxy.set(Rule::new(
        &get_item,
        When::Nth(1),
        Fault::DelayAfter(Duration::from_millis(800)),
    ));
    let started = Instant::now();
    assert_eq!(app.get(&path).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(app.proxy.ops(&get_item).len(), 2, "timed out, then retried");
    app.proxy.clear();
    app.proxy.settle().await;
}

/// Found while building the proxy: an instance that has never seen a tenant
/// (a cold Lambda, or a warm one on a tenant's first request) must answer
/// that tenant's first request. The server runs on a thread of its own, so
/// that a deadlock in it fails this test instead of hanging the binary.
#[tokio::test]
async fn a_fresh_instance_answers_the_first_request_of_a_tenant_it_has_never_seen() {
    // Arrange: a tenant activated elsewhere; a new instance, empty caches.
    let app = crate::helpers::spawn_app().await;
    let sdk = scim_store::config::emulator_aws_config(&emulator_url().await).await;
    let stores = scim_store::Stores::new(&sdk, &app.config);
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            port_tx
                .send(listener.local_addr().expect("addr").port())
                .expect("port sent");
            scim_api::host::run_tcp(
                listener,
                scim_api::app(scim_api::AppState::from(stores)),
                std::future::pending(),
            )
            .await
        })
    });
    let port = port_rx.recv().expect("server started");

    // Act
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        app.http
            .get(format!("http://127.0.0.1:{port}/scim/v2/Users?count=1"))
            .header("authorization", format!("Bearer {}", app.token))
            .send(),
    )
    .await;

    // Assert
    let reply = reply
        .expect("no answer within 5 s: the instance hangs on a tenant it has not seen")
        .expect("request sent");
    assert_eq!(reply.status(), 200);
}

// --- User delete -----------------------------------------------------------------------------

/// The user after a fault: `"whole"` (exists, in every group, every group
/// lists it) or `"gone"` (404, no group lists it); anything else is an error.
async fn user_whole_or_gone(
    direct: &TestApp,
    user: &str,
    groups: &[String],
) -> Result<&'static str, String> {
    let all: BTreeSet<String> = groups.iter().cloned().collect();
    let listing = listed_members(direct, groups)
        .await
        .into_values()
        .filter(|m| m.contains(user))
        .count();
    if user_exists(direct, user).await {
        let own = groups_of_users(direct, &[user.to_owned()], &all)
            .await
            .into_values()
            .next()
            .unwrap_or_default();
        ensure!(
            own.len() == groups.len() && listing == groups.len(),
            "the user still exists, with {} of its {} groups, and {listing} of them list it",
            own.len(),
            groups.len()
        );
        Ok("whole")
    } else {
        ensure!(
            listing == 0,
            "the user is gone but {listing} of its {} groups still list it",
            groups.len()
        );
        Ok("gone")
    }
}

#[tokio::test]
async fn user_delete_failing_at_every_step_leaves_the_user_whole_or_gone_and_a_retry_finishes_it() {
    // Arrange: 13 groups, so a user's memberships take two BatchWriteItems.
    let app = spawn().await;
    let mut tally = Tally::new();
    let groups: Vec<String> = futures::stream::iter(0..13)
        .then(|_| create_group(&app.direct, &[]))
        .collect()
        .await;
    let join = |users: Vec<String>| {
        let direct = &app.direct;
        let groups = &groups;
        async move {
            for g in groups {
                let reply = direct
                    .patch(&format!("/Groups/{g}"), &member_patch("add", &users))
                    .await;
                assert_eq!(reply.status, 204, "{}", reply.body);
            }
            users
        }
    };
    let probe = join(new_users(&app.direct, 1).await).await.remove(0);
    assert_eq!(app.get(&format!("/Users/{probe}")).await.status, 200);
    app.proxy.take_log();
    assert_eq!(app.delete(&format!("/Users/{probe}")).await.status, 204);
    tally.ops = app.proxy.ops(DYNAMODB);
    app.proxy.take_log();
    let cases = cases(&tally.ops);
    let users = join(new_users(&app.direct, cases.len()).await).await;
    let mut violations = Vec::new();

    for ((kind, n), user) in cases.iter().copied().zip(&users) {
        // Act
        inject(&app.proxy, kind, DYNAMODB, n);
        let first = app.delete(&format!("/Users/{user}")).await;
        tally.faults += lift(&app.proxy).await;
        tally.cases += 1;
        bump(&mut tally.first, first.status.to_string());
        let case = async {
            // Assert: whole or gone, never in between.
            success_or_server_error(&first, true)?;
            let state = user_whole_or_gone(&app.direct, user, &groups).await?;
            bump(&mut tally.after_fault, state);
            ensure!(
                first.status >= 300 || state == "gone",
                "a 2xx DELETE left the user"
            );
            // Retry as Entra does: 204, or 404 if it is already gone.
            let retry = app.delete(&format!("/Users/{user}")).await;
            bump(&mut tally.retry, retry.status.to_string());
            ensure!(
                retry.status == 204 || retry.status == 404,
                "the retried DELETE answered {} {}",
                retry.status,
                retry.body
            );
            let end = user_whole_or_gone(&app.direct, user, &groups)
                .await
                .map_err(|e| format!("after the retry: {e}"))?;
            ensure!(end == "gone", "the retried DELETE left the user");
            Ok(())
        };
        if let Err(e) = case.await {
            violations.push(format!(
                "{kind:?} at request {n} ({}), first DELETE {}: {e}",
                op_at(&tally.ops, n),
                first.status
            ));
        }
    }

    // Every user was deleted exactly once: the counter says none is left.
    let left = total_results(&app.direct, "Users").await;
    if violations.is_empty() && left != 0 {
        violations.push(format!(
            "the user counter says {left} users are left, not 0"
        ));
    }
    fail_on(&violations, &tally, "user delete (13 groups)");
}

fn op_at(ops: &[String], n: usize) -> &str {
    ops.get(n - 1).map_or("?", String::as_str)
}

// --- Group delete ----------------------------------------------------------------------------

/// The group after a fault: `"whole"` (exists with all `users`, each lists
/// it) or `"gone"` (404, no user lists it); anything else is an error.
async fn group_whole_or_gone(
    direct: &TestApp,
    group: &str,
    users: &[String],
) -> Result<&'static str, String> {
    match group_members(direct, group).await {
        Some(members) => {
            let existing = BTreeSet::from([group.to_owned()]);
            let listing = groups_of_users(direct, users, &existing)
                .await
                .into_values()
                .filter(|g| g.contains(group))
                .count();
            ensure!(
                members.len() == users.len() && listing == users.len(),
                "the group still exists, with {} of its {} members, and {listing} of them list it",
                members.len(),
                users.len()
            );
            Ok("whole")
        }
        // `GET /Users/{id}` lists only groups that exist: none lists it.
        None => Ok("gone"),
    }
}

#[tokio::test]
async fn group_delete_failing_at_every_step_leaves_the_group_whole_or_gone_and_a_retry_finishes_it()
{
    // Arrange: 20 members, several BatchWriteItems of memberships.
    let app = spawn().await;
    let mut tally = Tally::new();
    let users = new_users(&app.direct, 20).await;
    let probe = create_group(&app.direct, &users).await;
    assert_eq!(app.get(&format!("/Groups/{probe}")).await.status, 200);
    app.proxy.take_log();
    assert_eq!(app.delete(&format!("/Groups/{probe}")).await.status, 204);
    tally.ops = app.proxy.ops(DYNAMODB);
    app.proxy.take_log();
    let mut violations = Vec::new();

    for (kind, n) in cases(&tally.ops) {
        let group = create_group(&app.direct, &users).await;

        // Act
        inject(&app.proxy, kind, DYNAMODB, n);
        let first = app.delete(&format!("/Groups/{group}")).await;
        tally.faults += lift(&app.proxy).await;
        tally.cases += 1;
        bump(&mut tally.first, first.status.to_string());
        let case = async {
            // Assert
            success_or_server_error(&first, true)?;
            let state = group_whole_or_gone(&app.direct, &group, &users).await?;
            bump(&mut tally.after_fault, state);
            ensure!(
                first.status >= 300 || state == "gone",
                "a 2xx DELETE left the group"
            );
            let retry = app.delete(&format!("/Groups/{group}")).await;
            bump(&mut tally.retry, retry.status.to_string());
            ensure!(
                retry.status == 204 || retry.status == 404,
                "the retried DELETE answered {} {}",
                retry.status,
                retry.body
            );
            let end = group_whole_or_gone(&app.direct, &group, &users)
                .await
                .map_err(|e| format!("after the retry: {e}"))?;
            ensure!(end == "gone", "the retried DELETE left the group");
            Ok(())
        };
        if let Err(e) = case.await {
            violations.push(format!(
                "{kind:?} at request {n} ({}), first DELETE {}: {e}",
                op_at(&tally.ops, n),
                first.status
            ));
        }
    }

    let left = total_results(&app.direct, "Groups").await;
    if violations.is_empty() && left != 0 {
        violations.push(format!(
            "the group counter says {left} groups are left, not 0"
        ));
    }
    fail_on(&violations, &tally, "group delete (20 members)");
}

// --- Group membership PATCH ------------------------------------------------------------------

/// Runs a membership PATCH of 20 members (`op` = add or remove) with a fault
/// at every request; after each fault checks that no member is listed on one
/// side only (with `all_or_nothing`: that the group shows none or all of the
/// change, instead), then retries the PATCH and checks the full change.
/// Returns the tally and the violations.
async fn member_patch_under_faults(op: &str, all_or_nothing: bool) -> (Tally, Vec<String>) {
    let app = spawn().await;
    let mut tally = Tally::new();
    let users = new_users(&app.direct, 20).await;
    let (before, after): (BTreeSet<String>, BTreeSet<String>) = match op {
        "add" => (BTreeSet::new(), users.iter().cloned().collect()),
        _ => (users.iter().cloned().collect(), BTreeSet::new()),
    };
    let initial: Vec<String> = before.iter().cloned().collect();
    let body = member_patch(op, &users);

    let probe = create_group(&app.direct, &initial).await;
    assert_eq!(app.get(&format!("/Groups/{probe}")).await.status, 200);
    app.proxy.take_log();
    let reply = app.patch(&format!("/Groups/{probe}"), &body).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    tally.ops = app.proxy.ops(DYNAMODB);
    app.proxy.take_log();
    let mut violations = Vec::new();

    for (kind, n) in cases(&tally.ops) {
        let group = create_group(&app.direct, &initial).await;

        // Act
        inject(&app.proxy, kind, DYNAMODB, n);
        let first = app.patch(&format!("/Groups/{group}"), &body).await;
        tally.faults += lift(&app.proxy).await;
        tally.cases += 1;
        bump(&mut tally.first, first.status.to_string());
        let case = async {
            // Assert
            success_or_server_error(&first, false)?;
            let members = group_members(&app.direct, &group)
                .await
                .ok_or("the group is gone")?;
            let state = if members == before {
                "old"
            } else if members == after {
                "new"
            } else {
                "partial"
            };
            bump(&mut tally.after_fault, state);
            let existing = BTreeSet::from([group.clone()]);
            if all_or_nothing {
                ensure!(
                    state != "partial",
                    "the group shows part of the change: {} of 20 members",
                    members.len()
                );
            } else {
                let user_side = groups_of_users(&app.direct, &users, &existing).await;
                let lopsided = one_sided(&group, &members, &user_side);
                ensure!(
                    lopsided.is_empty(),
                    "{} member(s) listed on one side only (the group lists {} of 20)",
                    lopsided.len(),
                    members.len()
                );
            }
            ensure!(
                first.status >= 300 || state == "new",
                "a 2xx PATCH did not make the whole change ({} of 20 members)",
                members.len()
            );

            // Retry as Entra does: the same PATCH.
            let retry = app.patch(&format!("/Groups/{group}"), &body).await;
            bump(&mut tally.retry, retry.status.to_string());
            ensure!(
                retry.status == 204,
                "the retry answered {} {}",
                retry.status,
                retry.body
            );
            let members = group_members(&app.direct, &group)
                .await
                .ok_or("the group is gone after the retry")?;
            ensure!(
                members == after,
                "after the retry the group lists {} members, not {}",
                members.len(),
                after.len()
            );
            let user_side = if all_or_nothing {
                // The one-sided tests check this side.
                BTreeMap::new()
            } else {
                groups_of_users(&app.direct, &users, &existing).await
            };
            let lopsided = one_sided(&group, &members, &user_side);
            ensure!(
                all_or_nothing || lopsided.is_empty(),
                "after the retry {} member(s) are listed on one side only",
                lopsided.len()
            );
            Ok(())
        };
        if let Err(e) = case.await {
            violations.push(format!(
                "{op} of 20: {kind:?} at request {n} ({}), first PATCH {}: {e}",
                op_at(&tally.ops, n),
                first.status
            ));
        }
    }
    (tally, violations)
}

#[tokio::test]
async fn group_member_add_of_20_failing_at_every_step_lists_no_member_on_one_side_only_and_a_retry_adds_all()
 {
    let (tally, violations) = member_patch_under_faults("add", false).await;
    fail_on(&violations, &tally, "group PATCH add 20 members");
}

#[tokio::test]
async fn group_member_remove_of_20_failing_at_every_step_lists_no_member_on_one_side_only_and_a_retry_removes_all()
 {
    let (tally, violations) = member_patch_under_faults("remove", false).await;
    fail_on(&violations, &tally, "group PATCH remove 20 members");
}

#[tokio::test]
async fn a_group_member_patch_of_20_that_fails_leaves_none_or_all_of_its_change() {
    let (add, mut violations) = member_patch_under_faults("add", true).await;
    let (remove, more) = member_patch_under_faults("remove", true).await;
    violations.extend(more);
    add.print("group PATCH add 20, all or nothing");
    let mut both = remove;
    both.cases += add.cases;
    fail_on(&violations, &both, "group PATCH remove 20, all or nothing");
}

// --- Tokens ----------------------------------------------------------------------------------

/// Asks an instance that has never seen the tenant (empty cache, straight
/// to the emulator) whether it accepts `token`. `secrets` is a client to
/// the emulator, made once per test.
async fn accepted(
    app: &ProxiedApp,
    secrets: &aws_sdk_secretsmanager::Client,
    token: &ApiToken,
) -> bool {
    let store =
        SecretsManagerTokenStore::new(secrets.clone(), app.config.token_secret_prefix.clone());
    // The store's first look at a tenant is a status read: verify on a
    // tenant it has not seen hangs (see
    // `a_fresh_instance_answers_the_first_request_of_a_tenant_it_has_never_seen`).
    if let Some(tenant) = token.tenant() {
        store.status(&tenant).await.expect("status");
    }
    store.verify(token).await.expect("verify").is_some()
}

/// A note on the tenant's secret for a violation: how many of its versions
/// carry `AWSCURRENT` (Secrets Manager keeps exactly one).
async fn current_versions(
    app: &ProxiedApp,
    secrets: &aws_sdk_secretsmanager::Client,
    tenant: &TenantId,
) -> String {
    let name = format!("{}{tenant}", app.config.token_secret_prefix);
    match secrets
        .list_secret_version_ids()
        .secret_id(&name)
        .send()
        .await
    {
        Ok(out) => {
            let current = out
                .versions()
                .iter()
                .filter(|v| v.version_stages().iter().any(|s| s == "AWSCURRENT"))
                .count();
            format!(
                "(the secret has {} versions, {current} labelled AWSCURRENT)",
                out.versions().len()
            )
        }
        Err(e) => format!("(versions unreadable: {e})"),
    }
}

async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    let sdk = scim_store::config::emulator_aws_config(&emulator_url().await).await;
    aws_sdk_secretsmanager::Client::new(&sdk)
}

/// The ids of the tenant's valid tokens, read fresh.
async fn token_ids(app: &ProxiedApp, tenant: &TenantId) -> BTreeSet<String> {
    app.direct
        .stores
        .tokens
        .status(tenant)
        .await
        .expect("status")
        .map(|s| s.tokens.into_iter().map(|t| t.id).collect())
        .unwrap_or_default()
}

fn fresh_tenant() -> TenantId {
    TenantId::parse(&format!(
        "f{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ))
    .expect("tenant id")
}

fn ids<'a>(tokens: impl IntoIterator<Item = &'a ApiToken>) -> BTreeSet<String> {
    tokens.into_iter().map(ApiToken::id).collect()
}

/// A tenant with two valid tokens (activated, then rotated), directly.
async fn tenant_with_two_tokens(app: &ProxiedApp) -> (TenantId, Vec<ApiToken>) {
    let tenant = fresh_tenant();
    let direct = &app.direct.stores.tokens;
    let a = direct.activate(&tenant, None).await.expect("activate");
    let b = direct.rotate(&tenant).await.expect("rotate");
    (tenant, vec![a, b])
}

fn outcome<T, E>(r: &Result<T, E>) -> &'static str {
    if r.is_ok() { "Ok" } else { "Err" }
}

#[tokio::test]
async fn token_rotation_failing_at_every_secrets_manager_request_leaves_the_old_or_the_new_tokens_and_a_retry_rotates()
 {
    // Arrange
    let app = spawn().await;
    let mut tally = Tally::new();
    let proxied = app.stores.tokens.clone();
    let secrets = secrets_client().await;
    let (probe, _) = tenant_with_two_tokens(&app).await;
    app.proxy.take_log();
    proxied.rotate(&probe).await.expect("fault-free rotation");
    tally.ops = app.proxy.ops(SECRETS);
    app.proxy.take_log();
    let mut violations = Vec::new();

    for (kind, n) in cases(&tally.ops) {
        let (tenant, old_tokens) = tenant_with_two_tokens(&app).await;
        let old = ids(&old_tokens);

        // Act
        inject(&app.proxy, kind, SECRETS, n);
        let first = proxied.rotate(&tenant).await;
        tally.faults += lift(&app.proxy).await;
        tally.cases += 1;
        bump(&mut tally.first, outcome(&first));
        let case = async {
            // Assert: the old set, or the old set and one new token.
            let now = token_ids(&app, &tenant).await;
            let state = match &first {
                Ok(token) => {
                    let mut new = old.clone();
                    new.insert(token.id());
                    ensure!(
                        now == new,
                        "rotate returned Ok, valid tokens {now:?}, expected {new:?}"
                    );
                    "new"
                }
                Err(_) if now == old => "old",
                Err(_) => {
                    ensure!(
                        now.is_superset(&old) && now.len() == old.len() + 1,
                        "rotate failed, valid tokens {now:?}, before {old:?}"
                    );
                    "new, with a token nobody received"
                }
            };
            bump(&mut tally.after_fault, state);
            for t in &old_tokens {
                ensure!(
                    accepted(&app, &secrets, t).await,
                    "an old token stopped working"
                );
            }
            // Retry, as the operator would after an error.
            if first.is_err() {
                let again = proxied.rotate(&tenant).await;
                bump(&mut tally.retry, outcome(&again));
                let again = again.map_err(|e| format!("the retried rotation failed: {e}"))?;
                let now = token_ids(&app, &tenant).await;
                ensure!(
                    now.is_superset(&old)
                        && now.contains(&again.id())
                        && now.len() <= old.len() + 2,
                    "after the retry: valid tokens {now:?}, before {old:?}"
                );
                ensure!(
                    accepted(&app, &secrets, &again).await,
                    "the retried rotation's token is refused"
                );
            }
            Ok(())
        };
        if let Err(e) = case.await {
            violations.push(format!(
                "{kind:?} at request {n} ({}), rotate {}: {e} {}",
                op_at(&tally.ops, n),
                outcome(&first),
                current_versions(&app, &secrets, &tenant).await
            ));
        }
    }
    fail_on(&violations, &tally, "token rotate");
}

#[tokio::test]
async fn token_activation_failing_at_every_secrets_manager_request_leaves_the_old_or_the_new_token_and_a_retry_activates()
 {
    // Arrange
    let app = spawn().await;
    let mut tally = Tally::new();
    let proxied = app.stores.tokens.clone();
    let secrets = secrets_client().await;
    let (probe, _) = tenant_with_two_tokens(&app).await;
    app.proxy.take_log();
    proxied
        .activate(&probe, None)
        .await
        .expect("fault-free activation");
    tally.ops = app.proxy.ops(SECRETS);
    app.proxy.take_log();
    let mut violations = Vec::new();

    for (kind, n) in cases(&tally.ops) {
        let (tenant, old_tokens) = tenant_with_two_tokens(&app).await;
        let old = ids(&old_tokens);

        // Act
        inject(&app.proxy, kind, SECRETS, n);
        let first = proxied.activate(&tenant, None).await;
        tally.faults += lift(&app.proxy).await;
        tally.cases += 1;
        bump(&mut tally.first, outcome(&first));
        let case = async {
            // Assert: the old set, or only the new token.
            let now = token_ids(&app, &tenant).await;
            let state = match &first {
                Ok(token) => {
                    ensure!(
                        now == ids([token]),
                        "activate returned Ok, valid tokens {now:?}, expected only {}",
                        token.id()
                    );
                    "new"
                }
                Err(_) if now == old => "old",
                Err(_) => {
                    ensure!(
                        now.len() == 1 && now.is_disjoint(&old),
                        "activate failed, valid tokens {now:?}, before {old:?}"
                    );
                    "new, with a token nobody received"
                }
            };
            bump(&mut tally.after_fault, state);

            // Retry after an error: only the retry's token is valid.
            let last = match &first {
                Ok(token) => token.clone(),
                Err(_) => {
                    let again = proxied.activate(&tenant, None).await;
                    bump(&mut tally.retry, outcome(&again));
                    again.map_err(|e| format!("the retried activation failed: {e}"))?
                }
            };
            let now = token_ids(&app, &tenant).await;
            ensure!(
                now == ids([&last]),
                "at the end: valid tokens {now:?}, expected only {}",
                last.id()
            );
            for t in &old_tokens {
                ensure!(
                    !accepted(&app, &secrets, t).await,
                    "a revoked token still works"
                );
            }
            ensure!(
                accepted(&app, &secrets, &last).await,
                "the new token is refused"
            );
            Ok(())
        };
        if let Err(e) = case.await {
            violations.push(format!(
                "{kind:?} at request {n} ({}), activate {}: {e} {}",
                op_at(&tally.ops, n),
                outcome(&first),
                current_versions(&app, &secrets, &tenant).await
            ));
        }
    }
    fail_on(&violations, &tally, "token activate");
}

#[tokio::test]
async fn a_rotation_racing_an_activation_never_leaves_a_revoked_token_valid() {
    // Arrange: the rotating store's Secrets Manager answers come late (its
    // read's answer too: that widens the window between its read and its
    // write); the activation goes straight to the emulator, started at a
    // random moment of the rotation.
    let app = spawn_app_with_proxy().await;
    let proxied = app.stores.tokens.clone();
    let secrets = secrets_client().await;
    let direct = app.direct.stores.tokens.clone();
    let rounds = 16 * rounds();
    let mut tally = Tally::new();
    let mut violations = Vec::new();

    for round in 0..rounds {
        let tenant = fresh_tenant();
        let revoked = direct.activate(&tenant, None).await.expect("activate");
        let delay = Duration::from_millis(rand::random_range(5..40));
        // The rotation takes three or more answers of `delay`: starting up
        // to six of them late, the activation also runs after it.
        let start_after = delay * rand::random_range(0..=600) / 100;
        app.proxy
            .set(Rule::new(SECRETS, When::Always, Fault::DelayAfter(delay)));

        // Act
        let t0 = Instant::now();
        let ((rotated, rotated_at), (activated, activated_at)) = tokio::join!(
            async {
                let r = proxied.rotate(&tenant).await;
                (r, t0.elapsed())
            },
            async {
                tokio::time::sleep(start_after).await;
                let r = direct.activate(&tenant, None).await;
                (r, t0.elapsed())
            }
        );
        app.proxy.clear();
        app.proxy.settle().await;
        let rotate_ops = app.proxy.take_log().len();
        let activated = activated.expect("the activation succeeds");
        tally.cases += 1;
        bump(
            &mut tally.first,
            if activated_at < rotated_at {
                "activation done while the rotation ran"
            } else {
                "activation done after the rotation"
            },
        );
        bump(
            &mut tally.retry,
            format!("rotate {} in {rotate_ops} requests", outcome(&rotated)),
        );

        // Assert
        let case = async {
            ensure!(
                !accepted(&app, &secrets, &revoked).await,
                "the token the activation revoked is valid again"
            );
            ensure!(
                accepted(&app, &secrets, &activated).await,
                "the activation's token is refused"
            );
            let now = token_ids(&app, &tenant).await;
            let mut allowed = ids([&activated]);
            if let Ok(t) = &rotated {
                allowed.insert(t.id());
            }
            ensure!(
                now.is_subset(&allowed),
                "valid tokens {now:?}, allowed {allowed:?}"
            );
            Ok(())
        };
        if let Err(e) = case.await {
            violations.push(format!(
                "round {round}: rotate {} after {rotated_at:?}, activation done after \
                 {activated_at:?}: {e} {}",
                outcome(&rotated),
                current_versions(&app, &secrets, &tenant).await
            ));
        }
    }
    fail_on(&violations, &tally, "rotation racing activation");
}

// --- Members sync ----------------------------------------------------------------------------

/// A short lease for faulted runs: a run whose lease release failed blocks
/// the rerun only this long.
const SYNC_LEASE: Duration = Duration::from_millis(400);

/// A tenant with two users synced, then two users created and one of the
/// first two deactivated: the sync to test creates two members and
/// deactivates one.
async fn sync_scenario(app: &ProxiedApp) -> TenantId {
    let tenant = fresh_tenant();
    let token = app
        .direct
        .stores
        .tokens
        .activate(&tenant, None)
        .await
        .expect("activate")
        .expose()
        .to_owned();
    let direct = &app.direct;
    let create = |label: &'static str| {
        let token = token.clone();
        async move {
            let body = person(&format!("{label}@contoso.com"), "Engineer", "Oslo");
            let reply = direct
                .send_with("POST", "/Users", Some(&body), &token, &[])
                .await;
            assert_eq!(reply.status, 201, "{}", reply.body);
            reply.body["id"].as_str().expect("id").to_owned()
        }
    };
    create("adele").await;
    let alex = create("alex").await;
    crate::sync::engine(direct)
        .sync(&tenant, SyncOptions::default())
        .await
        .expect("first sync");
    create("diego").await;
    create("megan").await;
    let reply = direct
        .send_with(
            "PATCH",
            &format!("/Users/{alex}"),
            Some(&json!({"schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "value": {"active": false}}]})),
            &token,
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    tenant
}

/// What a sync leaves, comparable across tenants: the members without ids
/// and timestamps, the number of items of each kind in the Members table
/// (member, email claim, link, manager wait), and the size of the dirty set.
type SyncOutcome = (Vec<Value>, Vec<usize>, usize);

async fn sync_outcome(app: &ProxiedApp, tenant: &TenantId) -> Result<SyncOutcome, String> {
    let store = app.direct.stores.members.clone().expect("members store");
    let mut members = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, next) = store
            .list(tenant, after.as_deref(), 100)
            .await
            .expect("list members");
        members.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let mut shapes = Vec::new();
    for m in &members {
        ensure!(
            m.scim_user_id
                .as_deref()
                .map(|u| format!("m-{u}"))
                .as_deref()
                == Some(m.id.as_str()),
            "member {} is not m-<its user id> ({:?})",
            m.id,
            m.scim_user_id
        );
        shapes.push(json!({
            "email": m.email, "displayName": m.display_name, "status": m.status,
            "properties": m.properties, "managedBy": m.managed_by,
        }));
    }
    shapes.sort_by_key(Value::to_string);
    let table = app.config.members_table.as_deref().expect("members table");
    let mut kinds = Vec::new();
    for kind in ["MEMBER", "MEMAIL", "MLINK", "WAIT"] {
        let out = app
            .dynamodb
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("T#{tenant}#{kind}")),
            )
            .select(aws_sdk_dynamodb::types::Select::Count)
            .consistent_read(true)
            .send()
            .await
            .expect("count");
        kinds.push(usize::try_from(out.count()).unwrap_or_default());
    }
    let dirty = app
        .direct
        .stores
        .users
        .dirty(tenant, None, 1000)
        .await
        .expect("dirty set")
        .0
        .len();
    Ok((shapes, kinds, dirty))
}

fn sync_engine(stores: &scim_store::Stores) -> SyncEngine {
    let (members, state) = stores.sync_stores().expect("sync stores");
    SyncEngine::new(stores.users.clone(), stores.groups.clone(), members, state)
}

/// One sync case: the scenario on a fresh tenant, the sync with the fault
/// through its own proxy, the rerun without faults, the comparison.
async fn sync_case(
    app: &ProxiedApp,
    expected: &SyncOutcome,
    kind: Kind,
    n: usize,
) -> (usize, &'static str, &'static str, Result<(), String>) {
    let tenant = sync_scenario(app).await;
    let proxy = FaultProxy::start(&emulator_url().await).await;
    let (stores, _) = proxied_stores(proxy.url(), &app.config, attempt_timeout()).await;
    let engine = sync_engine(&stores).with_lease_ttl(SYNC_LEASE);

    inject(&proxy, kind, DYNAMODB, n);
    let first = engine.sync(&tenant, SyncOptions::default()).await;
    let faults = lift(&proxy).await;
    let first = match first {
        Ok(_) => "Ok",
        Err(SyncError::LeaseHeld(_)) => "LeaseHeld",
        Err(SyncError::Store(_)) => "StoreError",
        Err(SyncError::Mapping(_)) => "MappingError",
    };

    // Rerun, as Lambda's retry or the next schedule would, once the failed
    // run's lease has expired if it kept it.
    let mut waits = 0;
    let rerun = loop {
        match engine.sync(&tenant, SyncOptions::default()).await {
            Ok(report) => break Ok(report),
            Err(SyncError::LeaseHeld(_)) if waits < 20 => {
                waits += 1;
                tokio::time::sleep(SYNC_LEASE / 4).await;
            }
            Err(e) => break Err(format!("the rerun failed: {e}")),
        }
    };
    let rerun_kind = if waits > 0 {
        "after the lease expired"
    } else {
        "at once"
    };
    let check = async {
        let report = rerun?;
        ensure!(report.complete, "the rerun is incomplete: {report:?}");
        ensure!(
            report.counts.failed == 0,
            "the rerun failed users: {report:?}"
        );
        let actual = sync_outcome(app, &tenant).await?;
        ensure!(
            actual == *expected,
            "not what a fault-free sync makes:\n    got      {actual:?}\n    expected {expected:?}"
        );
        Ok(())
    };
    (faults, first, rerun_kind, check.await)
}

#[tokio::test]
async fn a_members_sync_failing_at_every_dynamodb_request_reruns_to_the_members_of_a_fault_free_sync()
 {
    // Arrange: the fault-free sync of the scenario, through the proxy.
    let app = spawn().await;
    let mut tally = Tally::new();
    let reference = sync_scenario(&app).await;
    app.proxy.take_log();
    let report = sync_engine(&app.stores)
        .sync(&reference, SyncOptions::default())
        .await
        .expect("fault-free sync");
    tally.ops = app.proxy.ops(DYNAMODB);
    app.proxy.take_log();
    assert_eq!(
        (report.counts.created, report.counts.deactivated),
        (2, 1),
        "the scenario: {report:?}"
    );
    let expected = sync_outcome(&app, &reference).await.expect("reference");
    assert_eq!(expected.1, [4, 4, 4, 0], "items per kind: {expected:?}");
    assert_eq!(expected.2, 0, "dirty set left: {expected:?}");

    // Act + Assert: each case on its own tenant and its own proxy, four at
    // a time (their lease waits overlap).
    let cases = cases(&tally.ops);
    let (app, expected) = (&app, &expected);
    let outcomes: Vec<_> = futures::stream::iter(cases)
        .map(|(kind, n)| async move { (kind, n, sync_case(app, expected, kind, n).await) })
        .buffer_unordered(4)
        .collect()
        .await;
    let mut violations = Vec::new();
    for (kind, n, (faults, first, rerun, result)) in outcomes {
        tally.cases += 1;
        tally.faults += faults;
        bump(&mut tally.first, first);
        bump(&mut tally.retry, rerun);
        if let Err(e) = result {
            violations.push(format!(
                "{kind:?} at request {n} ({}), first sync {first}: {e}",
                op_at(&tally.ops, n)
            ));
        }
    }
    violations.sort();
    fail_on(&violations, &tally, "members sync (create 2, deactivate 1)");
}
