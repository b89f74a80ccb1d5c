//! Command-line grammar. The forms are fixed (scripts rely on them):
//! see the README's command table.

use std::net::{IpAddr, Ipv4Addr};

use clap::{Args, Parser, Subcommand};
use scim_proto::ids::TenantId;

#[derive(Debug, Parser)]
#[command(name = "scimsync", version, about = "scimsync admin and developer CLI")]
pub struct Cli {
    /// Use the local stack of `make run` (emulator on 127.0.0.1:$EMULATOR_PORT).
    #[arg(long, global = true)]
    pub local: bool,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Tenants: provisioning activation and API tokens.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// The tenant's attribute mapping (SCIM attribute → member property).
    Mapping {
        #[command(subcommand)]
        command: MappingCommand,
    },
    /// Synchronize provisioned users into Members (`sync history`: past runs).
    Sync(SyncArgs),
    /// The application's Members.
    Members {
        #[command(subcommand)]
        command: MembersCommand,
    },
    /// App events (member.*, sync.*): the tenant's event log, publishing.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// The User Provisioning page (one-time links for the customer's admin).
    Portal {
        #[command(subcommand)]
        command: PortalCommand,
    },
    /// The tenant's provisioning activity (30 days): SCIM writes, rejected
    /// requests with their reason, sync outcomes; newest first.
    Activity {
        #[arg(long)]
        tenant: TenantId,
        /// Only entries about this SCIM id (a user's or a group's).
        #[arg(long, value_name = "ID")]
        user: Option<String>,
        /// Only rejected requests and failed runs.
        #[arg(long)]
        failed: bool,
        /// At most this many entries.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum PortalCommand {
    /// Print a one-time link to the tenant's User Provisioning page.
    Link {
        #[arg(long)]
        tenant: TenantId,
        /// How long the link works: seconds, or with a unit (`90s`, `5m`,
        /// `1h`); at most 1h.
        #[arg(long, default_value = "5m", value_parser = parse_ttl)]
        ttl: std::time::Duration,
        /// Where the page's "back" link goes (your app's settings page).
        #[arg(long)]
        return_url: Option<String>,
        /// The API's origin the link points at (stack output ApiUrl without
        /// /scim/v2). With --local: http://127.0.0.1:$PORT.
        #[arg(long, env = "PORTAL_BASE_URL")]
        base_url: Option<String>,
    },
}

/// `300`, `90s`, `5m`, `1h`.
pub fn parse_ttl(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with an optional unit s, m or h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?}: the unit must be s, m or h")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[derive(Debug, Args)]
pub struct TenantArg {
    /// The tenant (customer account) id.
    #[arg(long)]
    pub tenant: TenantId,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Activate user provisioning: issue the tenant's API token (shown once;
    /// re-activation revokes earlier tokens).
    Activate(TenantArg),
    /// Issue an additional token; earlier ones stay valid (up to 5) until the
    /// tenant is re-activated.
    RotateToken(TenantArg),
    /// Revoke every token at once (a leaked token, offboarding): provisioning
    /// stops on every instance within 15 seconds, until the next `activate`.
    Revoke(TenantArg),
    /// Whether provisioning is active, its tokens, directory counts and
    /// policy.
    Status(TenantArg),
    /// Set a tenant policy: `deprovision=immediate` (a disabled or deleted
    /// user's member is deactivated within seconds; the default) or
    /// `deprovision=with-sync` (at the next sync, like other changes).
    Policy {
        #[arg(long)]
        tenant: TenantId,
        #[arg(value_name = "deprovision=immediate|with-sync", value_parser = parse_policy)]
        setting: scim_store::sync_state::DeprovisionPolicy,
    },
}

/// `deprovision=immediate` or `deprovision=with-sync`.
pub fn parse_policy(s: &str) -> Result<scim_store::sync_state::DeprovisionPolicy, String> {
    let value = s
        .strip_prefix("deprovision=")
        .ok_or_else(|| format!("{s:?}: expected deprovision=immediate or deprovision=with-sync"))?;
    scim_store::sync_state::DeprovisionPolicy::parse(value)
        .ok_or_else(|| format!("{value:?}: deprovision is immediate or with-sync"))
}

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// Print the mapping, one `PATH=PROPERTY` per line.
    Show(TenantArg),
    /// Replace the mapping, e.g. `'addresses[type eq "work"].locality=city'`.
    Set {
        #[arg(long)]
        tenant: TenantId,
        /// `SCIM_PATH=PROPERTY` assignments, in order.
        #[arg(required = true, value_name = "PATH=PROPERTY")]
        entries: Vec<String>,
    },
    /// Restore the default mapping.
    Reset(TenantArg),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SyncArgs {
    #[command(subcommand)]
    pub command: Option<SyncCommand>,
    #[arg(long, required = true)]
    pub tenant: Option<TenantId>,
    /// Preview: report what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Full reconciliation instead of only what changed since the last sync.
    #[arg(long)]
    pub full: bool,
    /// Run the sync in the deployed sync function instead of in-process.
    #[arg(long, conflicts_with = "local")]
    pub invoke: bool,
    /// Name of the deployed sync function (stack output SyncFunctionName).
    #[arg(long, env = "SYNC_FUNCTION_NAME", requires = "invoke")]
    pub function: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Past sync runs of the tenant, newest first.
    History(TenantArg),
}

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// List the tenant's members.
    List(TenantArg),
    /// Add an app-managed member (never touched by the sync).
    Add {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// The tenant's app events, newest first, pending or published (one
    /// line each; `--json`: one JSON object per line).
    Tail {
        #[arg(long)]
        tenant: TenantId,
        /// How many events (1-1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
    },
    /// Publish the tenant's pending events now (`EVENT_BUS_NAME`, or the
    /// default bus).
    Publish(TenantArg),
}
