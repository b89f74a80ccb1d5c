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

mod driver;
mod membership;
mod shapes;
mod sync;
mod users;

use anyhow::Result;
use clap::Parser;
use scim_api::{AppState, app, host};
use scim_proto::ids::TenantId;
use scim_store::Stores;
use scim_store::config::{StoreConfig, emulator_aws_config};
use scim_store::metrics::RequestCounter;
use scim_store::tables;
use scim_store::tokens::TokenStore;

use crate::driver::Bench;
use crate::sync::sync_bench;

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

    let ids = users::run(&b, args.users, &run).await?;
    membership::run(
        &b,
        &dynamodb,
        &config.directory_table,
        &tenant,
        args.members,
        &ids,
    )
    .await?;
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
