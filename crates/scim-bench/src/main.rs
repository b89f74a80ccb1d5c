//! `loadgen`: drives Entra-shaped traffic through the real router (on a
//! loopback port) into the local emulator, and prints Markdown tables for
//! `BENCHMARKS.md`: latency and throughput per request shape, DynamoDB
//! requests per operation, and the cost of a membership change in an empty
//! group versus a group of `--members` members.
//!
//! Latencies against moto measure our code plus a Python emulator, not AWS:
//! read them for regressions and relative cost. Request counts are exact.
//!
//! Run with `make bench` (which starts the emulator), or
//! `SCIMSYNC_EMULATOR_URL=http://127.0.0.1:4566 cargo run --release -p scim-bench -- --help`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use clap::Parser;
use futures::{StreamExt, stream};
use scim_api::{AppState, app, host};
use scim_proto::ids::TenantId;
use scim_store::Stores;
use scim_store::config::{StoreConfig, emulator_aws_config};
use scim_store::metrics::RequestCounter;
use scim_store::tables;
use scim_store::tokens::TokenStore;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Users to provision.
    #[arg(long, default_value_t = 300)]
    users: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Members seeded into the large group for the membership-cost run.
    #[arg(long, default_value_t = 100_000)]
    members: usize,
    /// Provisioned users for the Members-sync run (0 skips it; 100,000 take
    /// about 40 minutes against the emulator).
    #[arg(long, default_value_t = 100_000)]
    sync_users: usize,
    /// Emulator endpoint (default: $SCIMSYNC_EMULATOR_URL).
    #[arg(long, env = "SCIMSYNC_EMULATOR_URL")]
    emulator: String,
}

struct Bench {
    base: String,
    token: String,
    http: reqwest::Client,
    counter: RequestCounter,
    concurrency: usize,
}

/// Latencies and DynamoDB requests of one request shape.
struct Sample {
    name: &'static str,
    latencies: Vec<Duration>,
    wall: Duration,
    dynamodb: u64,
}

impl Sample {
    fn row(&self) -> String {
        let mut l = self.latencies.clone();
        l.sort();
        let pct = |p: f64| {
            let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1;
            l[i].as_secs_f64() * 1000.0
        };
        let n = l.len() as f64;
        format!(
            "| {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |",
            self.name,
            l.len(),
            n / self.wall.as_secs_f64(),
            pct(0.5),
            pct(0.95),
            pct(0.99),
            self.dynamodb as f64 / n
        )
    }
}

impl Bench {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let mut req = self
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes())?,
                format!("{}{path}", self.base),
            )
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json; charset=utf-8")
                .body(serde_json::to_vec(&b)?);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)?
        };
        Ok((status, body))
    }

    /// Runs `make(i)` for `i in 0..n` with bounded concurrency, checking each
    /// status is `expect`.
    async fn run<F>(
        &self,
        name: &'static str,
        n: usize,
        expect: u16,
        make: F,
    ) -> Result<(Sample, Vec<Value>)>
    where
        F: Fn(usize) -> (&'static str, String, Option<Value>),
    {
        self.counter.take();
        let start = Instant::now();
        let results: Vec<Result<(Duration, Value)>> = stream::iter(0..n)
            .map(|i| {
                let (method, path, body) = make(i);
                async move {
                    let t = Instant::now();
                    let (status, body) = self.send(method, &path, body).await?;
                    ensure!(
                        status == expect,
                        "{name}: got {status}, expected {expect}: {body}"
                    );
                    Ok((t.elapsed(), body))
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let wall = start.elapsed();
        let mut latencies = Vec::with_capacity(n);
        let mut bodies = Vec::with_capacity(n);
        for r in results {
            let (l, b) = r?;
            latencies.push(l);
            bodies.push(b);
        }
        let dynamodb = self.counter.take_total();
        Ok((
            Sample {
                name,
                latencies,
                wall,
                dynamodb,
            },
            bodies,
        ))
    }
}

fn user(i: usize, run: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": format!("{run}-{i:06}"),
        "userName": format!("user{i:06}@contoso.com"),
        "active": true,
        "displayName": format!("User {i}"),
        "emails": [{"primary": true, "type": "work", "value": format!("user{i:06}@contoso.com")}],
        "name": {"givenName": "User", "familyName": format!("{i}")},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Retail"}
    })
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Peak resident memory of this process (server and driver together).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let sdk = emulator_aws_config(&args.emulator).await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let config = StoreConfig {
        directory_table: format!("bench-{run}"),
        token_secret_prefix: format!("bench/{run}/"),
        members_table: Some(format!("bench-members-{run}")),
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    for (spec, name) in config.tables() {
        tables::ensure_table(&dynamodb, spec, name).await?;
    }
    let counter = RequestCounter::default();
    let stores = Stores::counted(&sdk, &config, counter.clone());
    let tenant = TenantId::parse("bench")?;
    let token = stores
        .tokens
        .activate(&tenant, None)
        .await?
        .expose()
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/scim/v2", listener.local_addr()?);
    let stores_for_sync = stores.clone();
    tokio::spawn(host::run_tcp(
        listener,
        app(AppState::from(stores)),
        std::future::pending(),
    ));
    let b = Bench {
        base,
        token,
        http: reqwest::Client::new(),
        counter,
        concurrency: args.concurrency,
    };

    let n = args.users;
    let (create, bodies) = b
        .run("POST /Users", n, 201, |i| {
            ("POST", "/Users".into(), Some(user(i, &run)))
        })
        .await?;
    let ids: Vec<String> = bodies
        .iter()
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect();
    let (probe, _) = b
        .run(
            "GET filter externalId (Test Connection, miss)",
            n,
            200,
            |i| {
                (
                    "GET",
                    format!(
                        "/Users?filter={}",
                        enc(&format!("externalId eq \"probe-{i}\""))
                    ),
                    None,
                )
            },
        )
        .await?;
    let (matched, _) = b
        .run("GET filter externalId (match, hit)", n, 200, |i| {
            (
                "GET",
                format!(
                    "/Users?filter={}",
                    enc(&format!("externalId eq \"{run}-{i:06}\""))
                ),
                None,
            )
        })
        .await?;
    let (by_email, _) = b
        .run("GET filter emails[type eq \"work\"].value", n, 200, |i| {
            let f = format!("emails[type eq \"work\"].value eq \"user{i:06}@contoso.com\"");
            ("GET", format!("/Users?filter={}", enc(&f)), None)
        })
        .await?;
    let (get, _) = b
        .run("GET /Users/{id}", n, 200, |i| {
            ("GET", format!("/Users/{}", ids[i]), None)
        })
        .await?;
    let (update, _) = b
        .run("PATCH Replace title + email (default dialect)", n, 200, |i| {
            let ops = json!([
                {"op": "Replace", "path": "title", "value": "Director"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": format!("u{i}@fabrikam.com")}]);
            ("PATCH", format!("/Users/{}", ids[i]), Some(patch(ops)))
        })
        .await?;
    let (disable, _) = b
        .run("PATCH Replace active \"False\"", n, 200, |i| {
            let ops = json!([{"op": "Replace", "path": "active", "value": "False"}]);
            ("PATCH", format!("/Users/{}", ids[i]), Some(patch(ops)))
        })
        .await?;
    let pages = n.div_ceil(100);
    let (page, _) = b
        .run("GET /Users?startIndex&count=100", pages, 200, |i| {
            (
                "GET",
                format!("/Users?startIndex={}&count=100", i * 100 + 1),
                None,
            )
        })
        .await?;

    println!("## Users: {n} users, concurrency {}\n", args.concurrency);
    println!("| request | n | req/s | p50 ms | p95 ms | p99 ms | DynamoDB req/op |");
    println!("|---|---|---|---|---|---|---|");
    for s in [
        &create, &probe, &matched, &by_email, &get, &update, &disable, &page,
    ] {
        println!("{}", s.row());
    }

    // Membership cost: one member in/out of an empty group and of a group
    // of `members` members (seeded directly as membership items).
    let (status, empty) = b
        .send(
            "POST",
            "/Groups",
            Some(json!({"displayName": "empty", "externalId": "g-empty"})),
        )
        .await?;
    ensure!(status == 201, "create group: {status}");
    let (status, big) = b
        .send(
            "POST",
            "/Groups",
            Some(json!({"displayName": "big", "externalId": "g-big"})),
        )
        .await?;
    ensure!(status == 201, "create group: {status}");
    let big_id = big["id"].as_str().context("group id")?.to_owned();
    let empty_id = empty["id"].as_str().context("group id")?.to_owned();
    let seed_start = Instant::now();
    seed_members(
        &dynamodb,
        &config.directory_table,
        &tenant,
        &big_id,
        args.members,
    )
    .await?;
    let seed = seed_start.elapsed();

    println!(
        "\n## Group membership: empty group vs {} members (seeded in {:.0} s)\n",
        args.members,
        seed.as_secs_f64()
    );
    println!(
        "| operation | empty group: DynamoDB requests | {}-member group: DynamoDB requests | latency empty / large (ms) |",
        args.members
    );
    println!("|---|---|---|---|");
    let member = &ids[0];
    let shapes: [(&str, Value); 3] = [
        (
            "Add 1 member",
            json!([{"op": "Add", "path": "members", "value": [{"value": member}]}]),
        ),
        (
            "Remove 1 member (value array)",
            json!([{"op": "Remove", "path": "members", "value": [{"value": member}]}]),
        ),
        (
            "remove members[value eq] (flag dialect)",
            json!([{"op": "remove", "path": format!("members[value eq \"{member}\"]")}]),
        ),
    ];
    for (label, ops) in shapes {
        let mut cells = Vec::new();
        let mut times = Vec::new();
        for gid in [&empty_id, &big_id] {
            b.counter.take();
            let t = Instant::now();
            let (status, body) = b
                .send("PATCH", &format!("/Groups/{gid}"), Some(patch(ops.clone())))
                .await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            ensure!(status == 204, "{label}: {status} {body}");
            let counts = b.counter.take();
            let total: u64 = counts.values().sum();
            cells.push(format!(
                "{total} ({})",
                counts
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        println!(
            "| {label} | {} | {} | {:.1} / {:.1} |",
            cells[0], cells[1], times[0], times[1]
        );
    }
    for (label, path) in [
        (
            "GET group, excludedAttributes=members",
            format!("/Groups/{big_id}?excludedAttributes=members"),
        ),
        (
            "legacy membership check (id eq and members eq)",
            format!(
                "/Groups?filter={}&attributes=id",
                enc(&format!("id eq \"{big_id}\" and members eq \"{member}\""))
            ),
        ),
    ] {
        b.counter.take();
        let t = Instant::now();
        let (status, _) = b.send("GET", &path, None).await?;
        ensure!(status == 200, "{label}: {status}");
        let counts = b.counter.take();
        println!(
            "| {label} | – | {} ({}) | – / {:.1} |",
            counts.values().sum::<u64>(),
            counts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    let (status, body) = b.send("GET", &format!("/Groups/{big_id}"), None).await?;
    println!(
        "\nGET of the {}-member group with members: {status} {}",
        args.members, body["scimType"]
    );
    if args.sync_users > 0 {
        sync_bench(
            &b,
            &stores_for_sync,
            &tenant,
            args.sync_users,
            args.concurrency,
        )
        .await?;
    }
    if let Some(rss) = peak_rss_mib() {
        println!("\nPeak RSS of the driver + server process: {rss:.0} MiB");
    }
    Ok(())
}

/// Writes `count` synthetic membership pairs for `group` straight into the
/// table (the layout of `scim_store::tables`), 25 items per BatchWriteItem.
async fn seed_members(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    tenant: &TenantId,
    group: &str,
    count: usize,
) -> Result<()> {
    let s = |v: String| AttributeValue::S(v);
    let mut requests = Vec::with_capacity(count * 2);
    for i in 0..count {
        let user = format!("seed-{i:07}");
        for (pk, sk) in [
            (format!("T#{tenant}#GM#{group}"), user.clone()),
            (format!("T#{tenant}#UG#{user}"), group.to_owned()),
        ] {
            let item = [("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))]
                .into_iter()
                .collect();
            requests.push(
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                    .build(),
            );
        }
    }
    let chunks: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[_]>::to_vec).collect();
    let results: Vec<Result<()>> = stream::iter(chunks)
        .map(|mut chunk| async move {
            while !chunk.is_empty() {
                let out = client
                    .batch_write_item()
                    .request_items(table, chunk)
                    .send()
                    .await?;
                chunk = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(table))
                    .unwrap_or_default();
            }
            Ok(())
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Provisions `n` users straight through the store (the SCIM path is measured
/// above), then measures a full Members sync, an incremental sync after 1% of
/// the users changed, and a sync with no changes.
async fn sync_bench(
    b: &Bench,
    stores: &Stores,
    tenant: &TenantId,
    n: usize,
    concurrency: usize,
) -> Result<()> {
    use member_sync::{SyncEngine, SyncOptions};
    use scim_proto::resource::UserResource;
    use scim_store::users::UserStore;

    let seed_start = Instant::now();
    let created: Vec<Result<scim_store::users::StoredUser>> = stream::iter(0..n)
        .map(|i| async move {
            let body = json!({
                "userName": format!("sync{i:07}@contoso.com"),
                "externalId": format!("sync-{i:07}"),
                "active": true,
                "displayName": format!("Sync User {i}"),
                "title": "Engineer",
                "emails": [{"primary": true, "type": "work", "value": format!("sync{i:07}@contoso.com")}],
                "addresses": [{"type": "work", "locality": "Paris", "country": "FR"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
            });
            let user = stores.users.create(tenant, UserResource::from_request(body)?).await?;
            if (i + 1) % 10_000 == 0 {
                eprintln!("seeded {} users in {:.0} s", i + 1, seed_start.elapsed().as_secs_f64());
            }
            Ok(user)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let users: Vec<_> = created.into_iter().collect::<Result<_>>()?;
    let seeded = seed_start.elapsed();
    let (members, state) = stores.sync_stores()?;
    let engine = SyncEngine::new(stores.users.clone(), stores.groups.clone(), members, state);

    println!(
        "\n## Members sync: {n} provisioned users (seeded in {:.0} s)\n",
        seeded.as_secs_f64()
    );
    println!(
        "| run | users examined | created / updated / unchanged | wall s | users/s | DynamoDB requests | requests per user |"
    );
    println!("|---|---|---|---|---|---|---|");
    let run = |label: &'static str, full: bool| {
        let engine = &engine;
        async move {
            b.counter.take();
            let t = Instant::now();
            // Resumed until complete, as successive Lambda invocations would.
            let mut first = true;
            let (examined, totals) = loop {
                let report = engine
                    .sync(
                        tenant,
                        SyncOptions {
                            dry_run: false,
                            full: full && first,
                            deadline: Some(tokio::time::Instant::now() + Duration::from_secs(600)),
                        },
                    )
                    .await?;
                first = false;
                let c = &report.counts;
                if report.complete {
                    let examined = c.created
                        + c.updated
                        + c.unchanged
                        + c.deactivated
                        + c.reactivated
                        + c.linked
                        + c.failed;
                    break (examined, (c.created, c.updated, c.unchanged));
                }
            };
            let wall = t.elapsed().as_secs_f64();
            let requests = b.counter.take_total();
            println!(
                "| {label} | {examined} | {} / {} / {} | {wall:.1} | {:.0} | {requests} | {:.2} |",
                totals.0,
                totals.1,
                totals.2,
                examined as f64 / wall,
                requests as f64 / examined.max(1) as f64
            );
            anyhow::Ok(())
        }
    };
    run("first sync (full)", true).await?;
    let changed = (n / 100).max(1);
    for u in users.iter().take(changed) {
        let mut next = u.user.clone();
        next.doc.insert("title".into(), json!("Staff Engineer"));
        let next = UserResource::from_doc(next.doc)?;
        stores.users.replace(tenant, u, next).await?;
    }
    run("incremental, 1% changed", false).await?;
    run("incremental, nothing changed", false).await?;
    Ok(())
}
