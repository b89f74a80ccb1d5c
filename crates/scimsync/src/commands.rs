//! One function per command. Output: labelled lines for people, or one JSON
//! document with `--json`; errors go to stderr with a non-zero exit.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use member_sync::mapping::{self, MappingEntry};
use member_sync::{SyncEngine, SyncOptions, SyncReport};
use scim_api::limits::TenantLimiter;
use scim_api::{AppState, app, host};
use scim_proto::ids::TenantId;
use scim_store::Stores;
use scim_store::groups::GroupStore;
use scim_store::members::{Member, MemberStore};
use scim_store::sync_state::SyncStateStore;
use scim_store::tokens::{ApiToken, TokenStore};
use scim_store::users::UserStore;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::cli::{Command, MappingCommand, MembersCommand, SyncArgs, SyncCommand, TenantCommand};

pub struct Ctx {
    pub stores: Stores,
    pub sdk: aws_config::SdkConfig,
    pub json: bool,
}

impl Ctx {
    fn members(&self) -> Result<Arc<dyn MemberStore>> {
        let (members, _) = self.stores.sync_stores()?;
        Ok(members)
    }

    fn state(&self) -> Result<Arc<dyn SyncStateStore>> {
        let (_, state) = self.stores.sync_stores()?;
        Ok(state)
    }

    fn engine(&self) -> Result<SyncEngine> {
        let (members, state) = self.stores.sync_stores()?;
        Ok(SyncEngine::new(
            self.stores.users.clone(),
            self.stores.groups.clone(),
            members,
            state,
        ))
    }

    /// Prints `value` as JSON, or `text` for people.
    fn print(&self, value: &Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Serve {
            port,
            bind,
            bootstrap_tenant,
        } => serve(ctx, SocketAddr::new(bind, port), bootstrap_tenant).await,
        Command::Tenant { command } => tenant(ctx, command).await,
        Command::Mapping { command } => mapping_cmd(ctx, command).await,
        Command::Sync(args) => sync(ctx, args).await,
        Command::Members { command } => members(ctx, command).await,
    }
}

/// Issues the tenant's token (`SCIM_TOKEN` if set, which must belong to the
/// tenant) and registers the tenant for the daily sync.
async fn activate(ctx: &Ctx, tenant: &TenantId) -> Result<ApiToken> {
    let chosen = std::env::var("SCIM_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(|t| ApiToken::from_secret(SecretString::from(t)));
    let token = ctx.stores.tokens.activate(tenant, chosen).await.with_context(|| {
        format!("activating tenant {tenant} (SCIM_TOKEN must look like scimsync_{tenant}_<64 lowercase hex>)")
    })?;
    ctx.state()?
        .register_tenant(tenant)
        .await
        .context("registering the tenant for the daily sync")?;
    Ok(token)
}

async fn serve(ctx: &Ctx, addr: SocketAddr, bootstrap: Option<TenantId>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let tenant_url = format!("http://{local}{}", scim_api::SCIM_BASE_PATH);
    match bootstrap {
        Some(tenant) => {
            let token = activate(ctx, &tenant).await?;
            ctx.print(
                &json!({"tenant": tenant.as_str(), "tenantUrl": tenant_url, "token": token.expose()}),
                || format!("Tenant URL: {tenant_url}\nSecret Token: {}", token.expose()),
            );
        }
        None => ctx.print(&json!({"tenantUrl": tenant_url}), || {
            format!("Tenant URL: {tenant_url}")
        }),
    }
    tracing::info!(%local, "serving SCIM; Ctrl-C stops");
    host::run_tcp(
        listener,
        app(AppState::from(ctx.stores.clone())
            .with_tenant_rate_limit(TenantLimiter::from_env().map_err(anyhow::Error::msg)?)),
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

async fn tenant(ctx: &Ctx, command: TenantCommand) -> Result<()> {
    match command {
        TenantCommand::Activate(t) => {
            let token = activate(ctx, &t.tenant).await?;
            ctx.print(
                &json!({"tenant": t.tenant.as_str(), "token": token.expose()}),
                || format!("Tenant: {}\nSecret Token: {}", t.tenant, token.expose()),
            );
        }
        TenantCommand::RotateToken(t) => {
            let token = ctx
                .stores
                .tokens
                .rotate(&t.tenant)
                .await
                .with_context(|| format!("rotating the token of tenant {}", t.tenant))?;
            ctx.print(
                &json!({"tenant": t.tenant.as_str(), "token": token.expose()}),
                || format!("Tenant: {}\nSecret Token: {}", t.tenant, token.expose()),
            );
        }
        TenantCommand::Revoke(t) => {
            let revoked = ctx
                .stores
                .tokens
                .revoke(&t.tenant)
                .await
                .with_context(|| format!("revoking the tokens of tenant {}", t.tenant))?;
            ctx.print(
                &json!({"tenant": t.tenant.as_str(), "provisioning": "inactive", "revoked": revoked}),
                || format!("Tenant: {}\nProvisioning: inactive\nRevoked: {revoked}", t.tenant),
            );
        }
        TenantCommand::Status(t) => {
            let tokens = ctx.stores.tokens.status(&t.tenant).await?;
            let users = ctx.stores.users.count(&t.tenant).await?;
            let groups = ctx.stores.groups.count(&t.tenant).await?;
            let ids: Vec<Value> = tokens
                .as_ref()
                .map(|s| {
                    s.tokens
                        .iter()
                        .map(|i| json!({"id": i.id, "created": i.created.to_string()}))
                        .collect()
                })
                .unwrap_or_default();
            // A revoked tenant keeps its secret, with no token in it.
            let active = tokens.as_ref().is_some_and(|s| !s.tokens.is_empty());
            let status = if active { "active" } else { "inactive" };
            ctx.print(
                &json!({"tenant": t.tenant.as_str(), "provisioning": status, "tokens": ids, "users": users, "groups": groups}),
                || format!("Tenant: {}\nProvisioning: {status}\nTokens: {}\nUsers: {users}\nGroups: {groups}", t.tenant, ids.len()),
            );
        }
    }
    Ok(())
}

fn mapping_json(entries: &[MappingEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| json!({"path": e.path, "property": e.property}))
            .collect(),
    )
}

fn mapping_text(entries: &[MappingEntry]) -> String {
    entries
        .iter()
        .map(|e| format!("{}={}", e.path, e.property))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn mapping_cmd(ctx: &Ctx, command: MappingCommand) -> Result<()> {
    let state = ctx.state()?;
    let (tenant, entries) = match command {
        MappingCommand::Show(t) => {
            let entries = member_sync::show_mapping(state.as_ref(), &t.tenant).await?;
            (t.tenant, entries)
        }
        MappingCommand::Set { tenant, entries } => {
            let parsed = entries
                .iter()
                .map(|e| mapping::parse_assignment(e))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow!("{e}"))?;
            member_sync::set_mapping(state.as_ref(), &tenant, parsed).await?;
            let entries = member_sync::show_mapping(state.as_ref(), &tenant).await?;
            (tenant, entries)
        }
        MappingCommand::Reset(t) => {
            member_sync::reset_mapping(state.as_ref(), &t.tenant).await?;
            let entries = member_sync::show_mapping(state.as_ref(), &t.tenant).await?;
            (t.tenant, entries)
        }
    };
    ctx.print(
        &json!({"tenant": tenant.as_str(), "mapping": mapping_json(&entries)}),
        || mapping_text(&entries),
    );
    Ok(())
}

fn report_text(r: &SyncReport) -> String {
    let c = &r.counts;
    let mut out = format!(
        "Tenant: {}\nRun: {}{}{}\ncreated: {}\nupdated: {}\ndeactivated: {}\nreactivated: {}\nunchanged: {}\nlinked: {}\nfailed: {}",
        r.tenant,
        r.run_id,
        if r.dry_run {
            " (dry run: nothing was changed)"
        } else {
            ""
        },
        if r.complete {
            ""
        } else {
            " (incomplete: run again to continue)"
        },
        c.created,
        c.updated,
        c.deactivated,
        c.reactivated,
        c.unchanged,
        c.linked,
        c.failed,
    );
    for e in &r.errors {
        out.push_str(&format!(
            "\nerror: {}",
            serde_json::to_string(e).unwrap_or_default()
        ));
    }
    out
}

async fn sync(ctx: &Ctx, args: SyncArgs) -> Result<()> {
    if let Some(SyncCommand::History(t)) = args.command {
        let runs = ctx.state()?.history(&t.tenant, 50).await?;
        ctx.print(&Value::Array(runs.clone()), || {
            runs.iter()
                .map(|r| {
                    format!(
                        "{}  {}  {}  created {} updated {} deactivated {} reactivated {} unchanged {}",
                        r["started"].as_str().unwrap_or("?"),
                        r["runId"].as_str().unwrap_or("?"),
                        if r["dryRun"] == true { "dry-run" } else if r["complete"] == true { "complete" } else { "partial" },
                        r["counts"]["created"], r["counts"]["updated"], r["counts"]["deactivated"],
                        r["counts"]["reactivated"], r["counts"]["unchanged"],
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
        return Ok(());
    }
    let tenant = args.tenant.clone().context("--tenant is required")?;
    if args.invoke {
        return invoke(ctx, &tenant, &args).await;
    }
    let engine = ctx.engine()?;
    let progress = (!ctx.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(format!("syncing tenant {tenant}"));
        bar
    });
    // Run in slices so that progress shows and a huge tenant checkpoints as
    // it goes; each slice resumes where the last one stopped.
    const SLICE: Duration = Duration::from_secs(10);
    let mut total = member_sync::SyncCounts::default();
    let mut first = true;
    let report = loop {
        let options = SyncOptions {
            dry_run: args.dry_run,
            full: args.full && first,
            deadline: (!args.dry_run).then(|| tokio::time::Instant::now() + SLICE),
        };
        first = false;
        let report = engine.sync(&tenant, options).await?;
        add(&mut total, &report.counts);
        if let Some(bar) = &progress {
            bar.set_message(format!(
                "tenant {tenant}: {} created, {} updated, {} deactivated, {} reactivated, {} unchanged",
                total.created, total.updated, total.deactivated, total.reactivated, total.unchanged
            ));
        }
        if report.complete || args.dry_run {
            break SyncReport {
                counts: total.clone(),
                ..report
            };
        }
    };
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    ctx.print(&serde_json::to_value(&report)?, || report_text(&report));
    if report.counts.failed > 0 {
        bail!(
            "{} user(s) could not be synced; see the errors above",
            report.counts.failed
        );
    }
    Ok(())
}

fn add(total: &mut member_sync::SyncCounts, c: &member_sync::SyncCounts) {
    total.created += c.created;
    total.updated += c.updated;
    total.deactivated += c.deactivated;
    total.reactivated += c.reactivated;
    total.unchanged += c.unchanged;
    total.linked += c.linked;
    total.failed += c.failed;
}

/// `sync --invoke`: the deployed function does the work; its report is printed.
async fn invoke(ctx: &Ctx, tenant: &TenantId, args: &SyncArgs) -> Result<()> {
    let function = args
        .function
        .clone()
        .context("--invoke needs the function name: --function NAME or SYNC_FUNCTION_NAME (stack output SyncFunctionName)")?;
    let payload = json!({"tenant": tenant.as_str(), "dryRun": args.dry_run, "full": args.full});
    let out = aws_sdk_lambda::Client::new(&ctx.sdk)
        .invoke()
        .function_name(&function)
        .payload(aws_sdk_lambda::primitives::Blob::new(serde_json::to_vec(
            &payload,
        )?))
        .send()
        .await
        .map_err(|e| anyhow!("{}", aws_sdk_lambda::error::DisplayErrorContext(e)))?;
    let body: Value = out
        .payload
        .map(|b| serde_json::from_slice(b.as_ref()))
        .transpose()?
        .unwrap_or(Value::Null);
    if let Some(err) = out.function_error {
        bail!("the sync function failed ({err}): {body}");
    }
    let report: SyncReport = serde_json::from_value(body.clone())
        .map_err(|e| anyhow!("unexpected answer from {function}: {e}: {body}"))?;
    ctx.print(&body, || report_text(&report));
    Ok(())
}

fn member_json(m: &Member) -> Value {
    serde_json::to_value(m).unwrap_or_default()
}

async fn members(ctx: &Ctx, command: MembersCommand) -> Result<()> {
    let store = ctx.members()?;
    match command {
        MembersCommand::List(t) => {
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let (page, next) = store.list(&t.tenant, after.as_deref(), 500).await?;
                all.extend(page);
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            ctx.print(&Value::Array(all.iter().map(member_json).collect()), || {
                all.iter()
                    .map(|m| {
                        let v = member_json(m);
                        format!(
                            "{}  {}  {}  {}  {}  {}",
                            m.id,
                            v["status"].as_str().unwrap_or("?"),
                            v["managedBy"].as_str().unwrap_or("?"),
                            m.email,
                            m.display_name,
                            Value::Object(m.properties.clone().into_iter().collect())
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        MembersCommand::Add {
            tenant,
            email,
            name,
        } => {
            let m = store.add_app_member(&tenant, &email, &name).await?;
            ctx.print(&member_json(&m), || {
                format!("Member: {} ({email}, app-managed)", m.id)
            });
        }
    }
    Ok(())
}
