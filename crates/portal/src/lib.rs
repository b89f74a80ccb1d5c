//! The User Provisioning page: what the customer's admin uses to activate
//! provisioning, copy the token, review the users available to be synced,
//! synchronize, edit the attribute mapping and see the Members. Server-rendered
//! HTML (maud) with plain forms (POST → redirect → GET), a small stylesheet
//! and script served from the binary, and a JSON API under the same session.
//!
//! Layout:
//! - [`session`]: the session cookie and CSRF checks (extractors).
//! - [`pages`]: the HTML (layout, sections, the refusal pages).
//! - [`actions`]: the form handlers; [`api`]: the JSON API.
//! - [`admin`]: minting links (`POST /admin/v1/portal-links`, IAM-authorised
//!   by API Gateway).
//! - [`schedule`]: when the next automatic synchronization runs.
//! - [`launch`]: starting a sync (in process locally, by asynchronous invoke
//!   deployed).
//!
//! Every handler parses, calls `scim_domain`, and renders.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod actions;
pub mod admin;
pub mod api;
pub mod launch;
pub mod pages;
pub mod schedule;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use scim_domain::portal::Portal;
use scim_domain::{Members, Tenants};
use scim_store::Stores;
use scim_store::portal::SessionKeyStore;

pub use launch::SyncLauncher;

/// What the page says about the deployment.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// The application's name in the page header.
    pub app_name: String,
    /// Whether the admin route is served (deployed: behind API Gateway's
    /// IAM authorizer; never on the local server).
    pub admin_route: bool,
    /// The daily sync's EventBridge schedule (deployed); none locally,
    /// where nothing synchronizes on its own.
    pub sync_schedule: Option<schedule::Schedule>,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            app_name: "scimsync".into(),
            admin_route: false,
            sync_schedule: None,
        }
    }
}

/// What the portal's handlers share.
#[derive(Debug, Clone)]
pub struct PortalState {
    pub(crate) portal: Portal,
    pub(crate) tenants: Tenants,
    pub(crate) members: Members,
    pub(crate) activity: scim_domain::Activity,
    pub(crate) launcher: Arc<SyncLauncher>,
    pub(crate) config: Arc<PortalConfig>,
}

impl PortalState {
    /// Links and sessions.
    pub fn portal(&self) -> &Portal {
        &self.portal
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the portal needs the Members table (MEMBERS_TABLE)")]
pub struct NoMembersTable;

impl PortalState {
    pub fn new(
        stores: &Stores,
        session_key: Arc<dyn SessionKeyStore>,
        config: PortalConfig,
        launcher: SyncLauncher,
    ) -> Result<Self, NoMembersTable> {
        let domain = scim_domain::Domain::from(stores);
        let links = stores.portal_links.clone().ok_or(NoMembersTable)?;
        Ok(Self {
            portal: Portal::new(links, session_key),
            tenants: domain.tenants,
            members: domain.members.ok_or(NoMembersTable)?,
            activity: domain.activity,
            launcher: Arc::new(launcher),
            config: Arc::new(config),
        })
    }
}

const CSS: &str = include_str!("../static/portal.css");
const JS: &str = include_str!("../static/portal.js");

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        JS,
    )
}

/// The portal's routes: `/portal/...` and, when configured, the admin route.
/// No fallback, so it merges with the SCIM router under `scimsync serve`.
pub fn router(state: PortalState) -> Router {
    let admin = state.config.admin_route;
    let mut r = Router::new()
        // Both spellings: the local server drops trailing slashes.
        .route("/portal", get(pages::index))
        .route("/portal/", get(pages::index))
        // The Members and History sections' pages are the page itself,
        // scrolled (paging by `after`).
        .route("/portal/members", get(pages::index))
        .route("/portal/history", get(pages::index))
        .route("/portal/open/{tenant}/{secret}", get(actions::open))
        .route("/portal/activate", post(actions::activate))
        .route("/portal/tokens", post(actions::add_token))
        .route(
            "/portal/revoke",
            get(pages::revoke_confirm).post(actions::revoke),
        )
        .route("/portal/sync", post(actions::synchronize))
        .route("/portal/mapping", post(actions::save_mapping))
        .route("/portal/mapping/reset", post(actions::reset_mapping))
        .route("/portal/static/portal.css", get(css))
        .route("/portal/static/portal.js", get(js))
        .nest("/portal/api", api::routes())
        .route("/portal/{*rest}", get(pages::not_found));
    if admin {
        r = r.route("/admin/v1/portal-links", post(admin::mint));
    }
    r.with_state(state)
}
