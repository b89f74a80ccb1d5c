//! `scimsync portal link`, and the portal of `scimsync serve`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use scim_domain::portal::{Portal, PortalLink};
use scim_portal::{PortalConfig, PortalState, SyncLauncher};
use scim_proto::ids::TenantId;
use scim_store::portal::SecretsManagerSessionKey;
use serde_json::json;

use crate::cli::PortalCommand;
use crate::commands::Ctx;

/// The local stack's session-key secret (created on first use).
const LOCAL_SESSION_SECRET: &str = "scimsync/local/portal-session-key";

fn session_key(ctx: &Ctx) -> Arc<SecretsManagerSessionKey> {
    let (name, create) = match std::env::var("PORTAL_SESSION_SECRET") {
        Ok(v) if !v.is_empty() => (v, false),
        _ => (LOCAL_SESSION_SECRET.to_owned(), true),
    };
    Arc::new(SecretsManagerSessionKey::new(
        aws_sdk_secretsmanager::Client::new(&ctx.sdk),
        &name,
        create,
    ))
}

/// The portal served by `scimsync serve`: syncs run in this process, no
/// admin route (links come from this CLI).
pub fn local_state(ctx: &Ctx) -> Result<PortalState> {
    PortalState::new(
        &ctx.stores,
        session_key(ctx),
        PortalConfig::default(),
        SyncLauncher::InProcess,
    )
    .map_err(|e| anyhow!("{e}"))
}

fn portal(ctx: &Ctx) -> Result<Portal> {
    let links = ctx
        .stores
        .portal_links
        .clone()
        .context("the portal needs the Members table (MEMBERS_TABLE)")?;
    Ok(Portal::new(links, session_key(ctx)))
}

pub async fn mint(
    state: &PortalState,
    tenant: &TenantId,
    origin: &str,
    ttl: Duration,
    return_url: Option<&str>,
) -> Result<PortalLink> {
    state
        .portal()
        .mint_link(tenant, origin, ttl, return_url)
        .await
        .map_err(|e| anyhow!("{e}"))
}

pub async fn run(ctx: &Ctx, command: PortalCommand) -> Result<()> {
    match command {
        PortalCommand::Link {
            tenant,
            ttl,
            return_url,
            base_url,
        } => {
            let base = match base_url {
                Some(b) => b,
                None => {
                    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
                    format!("http://127.0.0.1:{port}")
                }
            };
            let link = portal(ctx)?
                .mint_link(&tenant, &base, ttl, return_url.as_deref())
                .await
                .map_err(|e| anyhow!("{e}"))?;
            let expires = link
                .expires
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            ctx.print(
                &json!({"tenant": tenant.as_str(), "url": link.url, "expires": expires}),
                || format!("Portal: {}\nExpires: {expires}", link.url),
            );
            Ok(())
        }
    }
}
