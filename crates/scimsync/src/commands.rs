//! One function per command. Output: labelled lines for people, or one JSON
//! document with `--json`; errors go to stderr with a non-zero exit.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use member_sync::SyncReport;
use member_sync::mapping::{self, MappingEntry};
use scim_api::limits::TenantLimiter;
use scim_api::{AppState, host};
use scim_domain::{Domain, Members, SyncRequest};
use scim_proto::ids::TenantId;
use scim_store::Stores;
use scim_store::members::Member;
use scim_store::tokens::ApiToken;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::cli::{Command, MappingCommand, MembersCommand, SyncArgs, SyncCommand, TenantCommand};

pub struct Ctx {
    pub stores: Stores,
    pub domain: Domain,
    pub sdk: aws_config::SdkConfig,
    pub json: bool,
}

impl Ctx {
    pub fn new(stores: Stores, sdk: aws_config::SdkConfig, json: bool) -> Self {
        Self {
            domain: Domain::from(&stores),
            stores,
            sdk,
            json,
        }
    }

    /// The Members-sync operations (they need the Members table).
    pub(crate) fn members(&self) -> Result<&Members> {
        self.domain
            .members
            .as_ref()
            .ok_or_else(|| anyhow!("{}", scim_store::config::MissingEnv("MEMBERS_TABLE")))
    }

    /// Prints `value` as JSON, or `text` for people.
    pub fn print(&self, value: &Value, text: impl FnOnce() -> String) {
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
        Command::Events { command } => crate::events::run(ctx, command).await,
        Command::Portal { command } => crate::portal::run(ctx, command).await,
        Command::Activity {
            tenant,
            user,
            failed,
            limit,
        } => crate::activity::show(ctx, &tenant, user, failed, limit).await,
    }
}

/// Issues the tenant's token (`SCIM_TOKEN` if set, which must belong to the
/// tenant) and registers the tenant for the daily sync.
async fn activate(ctx: &Ctx, tenant: &TenantId) -> Result<ApiToken> {
    let chosen = std::env::var("SCIM_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(|t| ApiToken::from_secret(SecretString::from(t)));
    let token = ctx.domain.tenants.activate(tenant, chosen).await.with_context(|| {
        format!("activating tenant {tenant} (SCIM_TOKEN must look like scimsync_{tenant}_<64 lowercase hex>)")
    })?;
    Ok(token)
}

async fn serve(ctx: &Ctx, addr: SocketAddr, bootstrap: Option<TenantId>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let origin = format!("http://{local}");
    let tenant_url = format!("{origin}{}", scim_api::SCIM_BASE_PATH);
    let portal = crate::portal::local_state(ctx)?;
    match bootstrap {
        Some(tenant) => {
            let token = activate(ctx, &tenant).await?;
            let link = crate::portal::mint(
                &portal,
                &tenant,
                &origin,
                scim_domain::portal::DEFAULT_LINK_TTL,
                None,
            )
            .await?;
            ctx.print(
                &json!({"tenant": tenant.as_str(), "tenantUrl": tenant_url, "token": token.expose(), "portal": link.url}),
                || format!("Tenant URL: {tenant_url}\nSecret Token: {}\nPortal: {}", token.expose(), link.url),
            );
        }
        None => ctx.print(&json!({"tenantUrl": tenant_url}), || {
            format!("Tenant URL: {tenant_url}")
        }),
    }
    tracing::info!(%local, "serving SCIM and the portal; Ctrl-C stops");
    let scim = scim_api::router(
        AppState::from(ctx.stores.clone())
            .with_background(scim_api::background::Background::in_process(
                ctx.domain.members.clone(),
            ))
            .with_tenant_rate_limit(TenantLimiter::from_env().map_err(anyhow::Error::msg)?),
    );
    let app = scim_api::router::wrap(scim.merge(scim_portal::router(portal)));
    host::run_tcp(listener, app, shutdown_signal()).await?;
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
                .domain
                .tenants
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
                .domain
                .tenants
                .revoke(&t.tenant)
                .await
                .with_context(|| format!("revoking the tokens of tenant {}", t.tenant))?;
            ctx.print(
                &json!({"tenant": t.tenant.as_str(), "provisioning": "inactive", "revoked": revoked}),
                || format!("Tenant: {}\nProvisioning: inactive\nRevoked: {revoked}", t.tenant),
            );
        }
        TenantCommand::Policy { tenant, setting } => {
            ctx.members()?
                .set_deprovision_policy(&tenant, setting)
                .await?;
            ctx.print(
                &json!({"tenant": tenant.as_str(), "deprovision": setting.as_str()}),
                || format!("Tenant: {tenant}\nDeprovision: {}", setting.as_str()),
            );
        }
        TenantCommand::Status(t) => {
            let s = ctx.domain.tenants.status(&t.tenant).await?;
            let deprovision = match &ctx.domain.members {
                Some(m) => Some(m.deprovision_policy(&t.tenant).await?.as_str()),
                None => None,
            };
            let (users, groups) = (s.users, s.groups);
            let ids: Vec<Value> = s
                .tokens
                .iter()
                .map(|i| json!({"id": i.id, "created": i.created.to_string()}))
                .collect();
            let status = if s.active { "active" } else { "inactive" };
            let last_call = s
                .last_call
                .as_ref()
                .map(|c| json!({"at": c.at, "provider": c.provider.as_str()}));
            let last_call_text = s.last_call.as_ref().map_or_else(
                || "never".to_owned(),
                |c| format!("{} ({})", c.at, c.provider.display_name()),
            );
            ctx.print(
                &json!({"tenant": t.tenant.as_str(), "provisioning": status, "tokens": ids, "users": users, "groups": groups, "lastCall": last_call, "deprovision": deprovision}),
                || {
                    let policy = deprovision.map(|p| format!("\nDeprovision: {p}")).unwrap_or_default();
                    format!("Tenant: {}\nProvisioning: {status}\nTokens: {}\nUsers: {users}\nGroups: {groups}\nLast call: {last_call_text}{policy}", t.tenant, ids.len())
                },
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
    let sync = ctx.members()?;
    let (tenant, entries) = match command {
        MappingCommand::Show(t) => {
            let entries = sync.mapping(&t.tenant).await?;
            (t.tenant, entries)
        }
        MappingCommand::Set { tenant, entries } => {
            let parsed = entries
                .iter()
                .map(|e| mapping::parse_assignment(e))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow!("{e}"))?;
            let entries = sync.set_mapping(&tenant, parsed).await?;
            (tenant, entries)
        }
        MappingCommand::Reset(t) => {
            let entries = sync.reset_mapping(&t.tenant).await?;
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
        let runs = ctx.members()?.history(&t.tenant, 50).await?;
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
    let sync = ctx.members()?;
    let progress = (!ctx.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(format!("syncing tenant {tenant}"));
        bar
    });
    // Slices make progress visible and let a huge tenant checkpoint as it
    // goes.
    const SLICE: Duration = Duration::from_secs(10);
    let request = SyncRequest {
        dry_run: args.dry_run,
        full: args.full,
    };
    let report = sync
        .synchronize(&tenant, request, SLICE, |total| {
            if let Some(bar) = &progress {
                bar.set_message(format!(
                    "tenant {tenant}: {} created, {} updated, {} deactivated, {} reactivated, {} unchanged",
                    total.created, total.updated, total.deactivated, total.reactivated, total.unchanged
                ));
            }
        })
        .await?;
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
    let sync = ctx.members()?;
    match command {
        MembersCommand::List(t) => {
            let all = sync.all_members(&t.tenant).await?;
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
            let m = sync.add_app_member(&tenant, &email, &name).await?;
            ctx.print(&member_json(&m), || {
                format!("Member: {} ({email}, app-managed)", m.id)
            });
        }
    }
    Ok(())
}
