//! The SCIM HTTP layer: one axum [`Router`] that the Lambda functions and the
//! local server (`scimsync serve`) both run, so what is tested locally is what
//! runs on Lambda.
//!
//! Layout:
//! - [`router`] builds the app: routes, auth, body limit, path normalisation.
//! - [`auth`]: bearer-token middleware that resolves the tenant, applies
//!   its request rate limit ([`limits`]) and notes the identity provider's
//!   call ([`calls`]).
//! - [`extract`]: SCIM-aware request parsing (JSON body in either content
//!   type, list query parameters, `If-Match`).
//! - [`response`]: `application/scim+json` responses with ETag/Location.
//! - [`error`]: the single `IntoResponse` for every failure.
//! - [`users`], [`groups`], [`search`] (root `/.search`), [`discovery`]:
//!   handlers. Each parses the
//!   request, calls one operation of `scim_domain`, and renders the result.
//! - [`host`]: picks Lambda or a TCP listener at run time.
//! - [`background`]: where work left after an answer runs (group deletes,
//!   immediate deprovisioning).
//! - [`activity`]: rejected requests in the tenant's activity log (rate
//!   limited).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod activity;
pub mod auth;
pub mod background;
pub mod calls;
pub mod discovery;
pub mod error;
pub mod extract;
pub mod groups;
pub mod host;
pub mod limits;
pub mod response;
pub mod router;
pub mod search;
pub mod users;

use std::sync::Arc;

use scim_domain::{Directory, Tenants};
use scim_store::activity::ActivityLog;
use scim_store::calls::DirectoryStats;
use scim_store::groups::GroupStore;
use scim_store::tokens::TokenStore;
use scim_store::users::UserStore;

use crate::activity::RejectionLimiter;
use crate::background::Background;
use crate::calls::CallRecorder;
use crate::limits::TenantLimiter;

pub use router::{App, app, router};

/// What handlers share: the stores, as capabilities, which the domain
/// operations run on (tests swap a store for an instrumented one).
#[derive(Debug, Clone)]
pub struct AppState {
    pub users: Arc<dyn UserStore>,
    pub groups: Arc<dyn GroupStore>,
    pub tokens: Arc<dyn TokenStore>,
    /// Counts and the identity provider's last call.
    pub stats: Arc<dyn DirectoryStats>,
    /// Per-tenant request rate limits (in this process).
    pub limits: Arc<TenantLimiter>,
    /// When this process last recorded each tenant's call.
    pub calls: Arc<CallRecorder>,
    /// Where group deletes left to the background are finished.
    pub background: Background,
    /// The tenants' activity logs (rejected requests are logged here).
    pub activity: Arc<dyn ActivityLog>,
    /// How many rejections this process still logs per tenant.
    pub rejections: Arc<RejectionLimiter>,
}

impl AppState {
    /// The SCIM directory's operations over this state's stores.
    pub fn directory(&self) -> Directory {
        Directory::new(self.users.clone(), self.groups.clone())
    }

    /// The tenants' token operations (authentication).
    pub fn tenants(&self) -> Tenants {
        Tenants::new(self.tokens.clone(), None, self.stats.clone())
    }

    /// The same state, finishing background work as `background` says.
    #[must_use]
    pub fn with_background(self, background: Background) -> Self {
        Self { background, ..self }
    }

    /// The same state with another per-tenant rate limit (requests per
    /// second; `0` = none).
    #[must_use]
    pub fn with_tenant_rate_limit(self, limiter: TenantLimiter) -> Self {
        Self {
            limits: Arc::new(limiter),
            ..self
        }
    }
}

/// Path prefix of every SCIM endpoint (the tenant URL ends with it).
pub const SCIM_BASE_PATH: &str = "/scim/v2";

impl From<scim_store::Stores> for AppState {
    fn from(stores: scim_store::Stores) -> Self {
        Self {
            users: stores.users,
            groups: stores.groups,
            tokens: stores.tokens,
            stats: stores.stats,
            limits: Arc::default(),
            calls: Arc::default(),
            background: Background::default(),
            activity: stores.activity,
            rejections: Arc::default(),
        }
    }
}
