//! `scimsync`: the admin and developer CLI.
//!
//! - `scimsync [--local] serve`: the SCIM API on a TCP port (the same router
//!   the Lambda functions run).
//! - `scimsync [--local] tenant activate --tenant T`: issues a tenant's API
//!   token and prints it once.
//!
//! `--local` targets the stack of `make run`: the emulator on
//! `127.0.0.1:$EMULATOR_PORT` and the local table/secret names. Without it the
//! standard AWS configuration and `DIRECTORY_TABLE` / `TOKEN_SECRET_PREFIX`
//! apply, as on Lambda.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use scim_api::{AppState, app, host};
use scim_proto::ids::TenantId;
use scim_store::Stores;
use scim_store::config::{StoreConfig, emulator_aws_config, load_aws_config};
use scim_store::tables;
use scim_store::tokens::{ApiToken, TokenStore};
use secrecy::SecretString;

#[derive(Debug, Parser)]
#[command(name = "scimsync", version, about = "scimsync admin and developer CLI")]
struct Cli {
    /// Use the local stack of `make run` (emulator on 127.0.0.1:$EMULATOR_PORT).
    #[arg(long, global = true)]
    local: bool,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the SCIM API over HTTP (local development and tests).
    Serve {
        /// Port to listen on (0 picks a free one).
        #[arg(long, env = "PORT", default_value_t = 8080)]
        port: u16,
        /// Address to bind; loopback unless you mean to expose it.
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        bind: IpAddr,
        /// Activate this tenant before serving and print its tenant URL and
        /// token. `SCIM_TOKEN` chooses the token instead of a random one.
        #[arg(long)]
        bootstrap_tenant: Option<TenantId>,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Activate user provisioning for a tenant: issue its API token (shown
    /// once; re-activation revokes earlier tokens).
    Activate {
        #[arg(long)]
        tenant: TenantId,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws_config=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let (sdk, config) = if cli.local {
        let port = std::env::var("EMULATOR_PORT").unwrap_or_else(|_| "4566".into());
        let endpoint = format!("http://127.0.0.1:{port}");
        let sdk = emulator_aws_config(&endpoint).await;
        let config = StoreConfig::local();
        let dynamodb = aws_sdk_dynamodb_client(&sdk);
        tables::ensure_table(&dynamodb, &tables::DIRECTORY, &config.directory_table)
            .await
            .with_context(|| format!("creating the local tables (is the emulator running at {endpoint}? try `make run`)"))?;
        (sdk, config)
    } else {
        (load_aws_config().await, StoreConfig::from_env()?)
    };
    let stores = Stores::new(&sdk, &config);
    match cli.command {
        Command::Serve {
            port,
            bind,
            bootstrap_tenant,
        } => {
            serve(
                stores,
                SocketAddr::new(bind, port),
                bootstrap_tenant,
                cli.json,
            )
            .await
        }
        Command::Tenant {
            command: TenantCommand::Activate { tenant },
        } => {
            let token = activate(&stores, &tenant).await?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"tenant": tenant.as_str(), "token": token.expose()})
                );
            } else {
                println!("Tenant: {tenant}");
                println!("Secret Token: {}", token.expose());
            }
            Ok(())
        }
    }
}

fn aws_sdk_dynamodb_client(sdk: &aws_config::SdkConfig) -> scim_store::config::DynamoClient {
    scim_store::config::DynamoClient::new(sdk)
}

/// Issues the tenant's token: `SCIM_TOKEN` if set (it must belong to the
/// tenant), else a fresh random one.
async fn activate(stores: &Stores, tenant: &TenantId) -> Result<ApiToken> {
    let chosen = std::env::var("SCIM_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(|t| ApiToken::from_secret(SecretString::from(t)));
    stores
        .tokens
        .activate(tenant, chosen)
        .await
        .with_context(|| {
            format!(
                "activating tenant {tenant} (SCIM_TOKEN must look like scimsync_{tenant}_<64 hex>)"
            )
        })
}

async fn serve(
    stores: Stores,
    addr: SocketAddr,
    bootstrap: Option<TenantId>,
    json: bool,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let tenant_url = format!("http://{local}{}", scim_api::SCIM_BASE_PATH);
    if let Some(tenant) = bootstrap {
        let token = activate(&stores, &tenant).await?;
        if json {
            println!(
                "{}",
                serde_json::json!({"tenant": tenant.as_str(), "tenantUrl": tenant_url, "token": token.expose()})
            );
        } else {
            println!("Tenant URL: {tenant_url}");
            println!("Secret Token: {}", token.expose());
        }
    } else if json {
        println!("{}", serde_json::json!({"tenantUrl": tenant_url}));
    } else {
        println!("Tenant URL: {tenant_url}");
    }
    tracing::info!(%local, "serving SCIM; Ctrl-C stops");
    host::run_tcp(listener, app(AppState::from(stores)), shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
