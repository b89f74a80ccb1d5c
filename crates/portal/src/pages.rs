//! The HTML: one page with the admin's steps in order (activate, connect,
//! users available to be synced, mapping, members, history), the revoke
//! confirmation, and the pages that say why something cannot be done and
//! what to do next. No internal detail is ever rendered.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use member_sync::mapping::MappingEntry;
use member_sync::{ChangeAction, SyncReport};
use scim_domain::portal::LinkRefused;
use scim_domain::{SyncStatus, TenantStatus};
use scim_store::activity::{ActivityEntry, ActivityQuery};
use scim_store::members::Member;
use serde::Deserialize;
use serde_json::Value;

use crate::session::PageSession;
use crate::{PortalConfig, PortalState};

/// Changes listed per page of the preview.
pub const CHANGES_PER_PAGE: usize = 50;
/// Members listed per page.
pub const MEMBERS_PER_PAGE: usize = 50;

/// Everything the page shows.
#[derive(Debug)]
pub struct PageData {
    pub tenant_url: String,
    pub status: TenantStatus,
    pub preview: SyncReport,
    pub changes_from: usize,
    pub sync: SyncStatus,
    pub mapping: Vec<MappingEntry>,
    pub members: Vec<Member>,
    pub members_next: Option<String>,
    pub history: Vec<Value>,
    /// The latest provisioning activity, newest first.
    pub activity: Vec<ActivityEntry>,
    /// When automatic synchronizations run (none locally).
    pub schedule: Option<crate::schedule::Schedule>,
}

/// What one render adds to the data: a token shown once, a notice, a
/// mapping error on a row.
#[derive(Default)]
pub struct Extras {
    pub revealed_token: Option<String>,
    pub notice: Option<&'static str>,
    /// Rows as submitted, and the 1-based row with its error.
    pub mapping_rows: Option<Vec<MappingEntry>>,
    pub mapping_error: Option<(Option<usize>, String)>,
}

/// The origin the request came to (`https://host`).
pub fn origin(headers: &HeaderMap) -> String {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let host = get("x-forwarded-host")
        .or_else(|| get("host"))
        .unwrap_or("localhost");
    let proto = get("x-forwarded-proto")
        .and_then(|p| p.split(',').next())
        .map(str::trim)
        .unwrap_or(
            if host.starts_with("127.0.0.1") || host.starts_with("localhost") {
                "http"
            } else {
                "https"
            },
        );
    format!("{proto}://{host}")
}

fn layout(
    config: &PortalConfig,
    tenant: Option<&str>,
    badge: Option<&str>,
    body: Markup,
) -> Markup {
    page(config, tenant, badge, true, body)
}

/// The document; `title_heading`: the header carries the page's `<h1>`
/// (message pages have their own).
fn page(
    config: &PortalConfig,
    tenant: Option<&str>,
    badge: Option<&str>,
    title_heading: bool,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "User provisioning · " (config.app_name) }
                link rel="stylesheet" href="/portal/static/portal.css";
                script src="/portal/static/portal.js" defer {}
            }
            body {
                header.top {
                    p.app { (config.app_name) }
                    @if title_heading { h1 { "User provisioning" } } @else { p.title { "User provisioning" } }
                    @if let Some(t) = tenant { p.tenant { "Account: " strong { (t) } } }
                    @if let Some(b) = badge { p #status .badge { (b) } }
                }
                main { (body) }
            }
        }
    }
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// A page that explains, with a heading and what to do next.
pub fn message_page(
    config: &PortalConfig,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    html_response(
        status,
        page(
            config,
            None,
            None,
            false,
            html! { section.card { h1 { (title) } p { (text) } } },
        ),
    )
}

pub fn session_ended(config: &PortalConfig) -> Response {
    message_page(
        config,
        StatusCode::UNAUTHORIZED,
        "Your session has ended",
        "Open User Provisioning again from the app's settings to get a new link.",
    )
}

pub fn refused(config: &PortalConfig, why: LinkRefused) -> Response {
    let again = "Open User Provisioning again from the app's settings to get a new one.";
    match why {
        LinkRefused::AlreadyUsed => message_page(
            config,
            StatusCode::GONE,
            "This link was already used",
            &format!("A link opens the page once. {again}"),
        ),
        LinkRefused::Expired => message_page(
            config,
            StatusCode::GONE,
            "This link has expired",
            &format!("Links work for a few minutes after they are made. {again}"),
        ),
        LinkRefused::Unknown => message_page(
            config,
            StatusCode::NOT_FOUND,
            "This link is not valid",
            &format!("Check that the whole link was copied. {again}"),
        ),
    }
}

/// A storage failure: logged with its cause, shown without it.
pub fn failure(e: &dyn std::error::Error) -> Response {
    tracing::error!(error = %format_args!("{e:#}"), "portal request failed");
    html_response(
        StatusCode::SERVICE_UNAVAILABLE,
        html! { (DOCTYPE) html lang="en" { head { meta charset="utf-8"; title { "Try again" } }
        body { main { h1 { "Something went wrong on our side" }
            p { "Nothing was changed. Reload the page in a moment." } } } } },
    )
}

pub async fn not_found(State(state): State<PortalState>) -> Response {
    message_page(
        &state.config,
        StatusCode::NOT_FOUND,
        "Page not found",
        "Go back to User Provisioning in the app's settings.",
    )
}

#[derive(Debug, Deserialize, Default)]
pub struct IndexQuery {
    notice: Option<String>,
    from: Option<usize>,
    after: Option<String>,
}

impl std::fmt::Debug for Extras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Extras")
            .field(
                "revealed_token",
                &self.revealed_token.as_ref().map(|_| "<redacted>"),
            )
            .field("notice", &self.notice)
            .field("mapping_error", &self.mapping_error)
            .finish_non_exhaustive()
    }
}

/// Fixed notices a redirect may ask for (never text from the URL).
fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "activated" => "User provisioning is active.",
        "sync-started" => "Synchronization started. This page shows its report when it ends.",
        "sync-running" => "A synchronization is already running; it was not started twice.",
        "mapping-saved" => {
            "Mapping saved. The next synchronization reconciles every member with it."
        }
        "mapping-reset" => {
            "Mapping reset to the defaults. The next synchronization reconciles every member."
        }
        "revoked" => {
            "All tokens are revoked. Your identity provider can no longer provision users until you activate again."
        }
        "csrf" => "That form had expired. Nothing was changed; please try again.",
        _ => return None,
    })
}

/// Activity entries the page shows (the CLI reads further back).
const ACTIVITY_SHOWN: usize = 20;

/// Reads everything the page shows.
pub async fn load(
    state: &PortalState,
    s: &PageSession,
    headers: &HeaderMap,
    changes_from: usize,
    members_after: Option<&str>,
) -> Result<PageData, Response> {
    let tenant = &s.session.tenant;
    let fail = |e: &dyn std::error::Error| failure(e);
    let status = state.tenants.status(tenant).await.map_err(|e| fail(&e))?;
    let preview = state.members.preview(tenant).await.map_err(|e| fail(&e))?;
    let sync = state.members.status(tenant).await.map_err(|e| fail(&e))?;
    let mapping = state.members.mapping(tenant).await.map_err(|e| fail(&e))?;
    let (members, members_next) = state
        .members
        .members_page(tenant, members_after, MEMBERS_PER_PAGE)
        .await
        .map_err(|e| fail(&e))?;
    let history = state
        .members
        .history(tenant, 10)
        .await
        .map_err(|e| fail(&e))?;
    let activity = state
        .activity
        .recent(
            tenant,
            &ActivityQuery {
                limit: ACTIVITY_SHOWN,
                ..ActivityQuery::default()
            },
        )
        .await
        .map_err(|e| fail(&e))?;
    Ok(PageData {
        tenant_url: format!("{}{}", origin(headers), "/scim/v2"),
        status,
        preview,
        changes_from,
        sync,
        mapping,
        members,
        members_next,
        history,
        activity,
        schedule: state.config.sync_schedule.clone(),
    })
}

pub async fn index(
    State(state): State<PortalState>,
    s: PageSession,
    headers: HeaderMap,
    Query(q): Query<IndexQuery>,
) -> Response {
    match load(
        &state,
        &s,
        &headers,
        q.from.unwrap_or(0),
        q.after.as_deref(),
    )
    .await
    {
        Ok(data) => {
            let extras = Extras {
                notice: notice(q.notice.as_deref()),
                ..Extras::default()
            };
            render(&state, &s, &data, &extras, StatusCode::OK)
        }
        Err(r) => r,
    }
}

fn badge(d: &PageData) -> &'static str {
    if !d.status.active {
        "Not activated"
    } else if d.status.users == 0 && d.status.groups == 0 {
        "Active — waiting for your identity provider"
    } else {
        "Active"
    }
}

pub fn render(
    state: &PortalState,
    s: &PageSession,
    d: &PageData,
    x: &Extras,
    code: StatusCode,
) -> Response {
    let body = html! {
        @if let Some(n) = x.notice { p #notice role="status" { (n) } }
        (sections::activate(s, d, x))
        (sections::connect(d))
        (sections::preview(s, d))
        (sections::mapping(s, d, x))
        (sections::members(d))
        (sections::history(d))
        (sections::activity(d))
    };
    html_response(
        code,
        layout(
            &state.config,
            Some(s.session.tenant.as_str()),
            Some(badge(d)),
            body,
        ),
    )
}

pub async fn revoke_confirm(State(state): State<PortalState>, s: PageSession) -> Response {
    html_response(
        StatusCode::OK,
        layout(
            &state.config,
            Some(s.session.tenant.as_str()),
            None,
            html! {
                section.card.danger {
                    h2 { "Revoke all tokens?" }
                    p { "Your identity provider will get 401 Unauthorized on every request until you activate provisioning again and enter the new token. Users already provisioned stay." }
                    form method="post" action="/portal/revoke" {
                        input type="hidden" name="csrf" value=(s.csrf);
                        button.danger type="submit" { "Yes, revoke all tokens" }
                        " "
                        a href="/portal" { "Cancel" }
                    }
                }
            },
        ),
    )
}

/// The `action` column's words.
pub fn action_word(a: ChangeAction) -> &'static str {
    match a {
        ChangeAction::Create => "New member",
        ChangeAction::Update => "Update",
        ChangeAction::Deactivate => "Deactivate",
        ChangeAction::Reactivate => "Reactivate",
        ChangeAction::Link => "Link to existing member",
    }
}

/// A JSON value as the page shows it (never raw JSON of objects).
pub fn show(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => a.iter().map(show).collect::<Vec<_>>().join(", "),
        Value::Object(_) => "(several values)".into(),
    }
}

pub(crate) const COPY_ICON: PreEscaped<&str> = PreEscaped("Copy");

pub mod sections;
