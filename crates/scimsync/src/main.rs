//! `scimsync`: the admin and developer CLI. See [`cli`] for the commands and
//! the README for what each one prints.
//!
//! `--local` targets the stack of `make run`: the emulator on
//! `127.0.0.1:$EMULATOR_PORT` and the local table/secret names (tables are
//! created if missing). Without it the standard AWS configuration applies,
//! with the deployed names from `DIRECTORY_TABLE`, `MEMBERS_TABLE` and
//! `TOKEN_SECRET_PREFIX` (the stack's outputs).

mod activity;
mod cli;
mod commands;
mod events;
mod portal;

use anyhow::{Context, Result};
use clap::Parser;
use scim_store::Stores;
use scim_store::config::{StoreConfig, emulator_aws_config, load_aws_config};
use scim_store::tables;

use crate::cli::Cli;
use crate::commands::Ctx;

#[tokio::main]
async fn main() -> Result<()> {
    // RUST_LOG names a level for our crates; others never log below info
    // (hyper would log request headers, bearer tokens included).
    scim_telemetry::init_cli();
    let cli = Cli::parse();
    let (sdk, config) = if cli.local {
        let port = std::env::var("EMULATOR_PORT").unwrap_or_else(|_| "4566".into());
        let endpoint = format!("http://127.0.0.1:{port}");
        let sdk = emulator_aws_config(&endpoint).await;
        let config = StoreConfig::local();
        let dynamodb = scim_store::config::DynamoClient::new(&sdk);
        for (spec, name) in config.tables() {
            tables::ensure_table(&dynamodb, spec, name).await.with_context(|| {
                format!("creating local table {name} (is the emulator running at {endpoint}? try `make run`)")
            })?;
        }
        (sdk, config)
    } else {
        (load_aws_config().await, StoreConfig::from_env()?)
    };
    // App events of in-process syncs go to EVENT_BUS_NAME (default bus):
    // always locally; deployed only when it is set, since the stack's own
    // stream publishes them to its bus anyway (never guess another bus).
    let mut stores = Stores::new(&sdk, &config);
    if cli.local || std::env::var_os("EVENT_BUS_NAME").is_some() {
        let sink = scim_store::events::EventBridgeSink::from_env(&sdk);
        stores = stores.with_event_sink(std::sync::Arc::new(sink));
    }
    let ctx = Ctx::new(stores, sdk, cli.json);
    commands::run(&ctx, cli.command).await
}
