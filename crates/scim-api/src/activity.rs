//! Rejected SCIM requests in the tenant's activity log: the one entry the
//! admin needs to see why a user did not arrive ("userName taken", "bad
//! filter"). Successful writes log themselves inside their transaction
//! (`scim_store::activity`); a rejection costs one `PutItem`, at most
//! [`REJECTIONS_PER_MINUTE`] per tenant per instance, so a flood of bad
//! requests cannot turn into a write bill. The entries dropped are counted
//! on the next one logged (`suppressed`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::{Method, StatusCode};
use scim_proto::ScimError;
use scim_proto::ids::TenantId;
use scim_proto::provider::Provider;
use scim_store::activity::{ActivityEntry, Operation, Outcome, Rejection};
use tokio::time::Instant;

/// Rejections logged per tenant per minute, per instance.
pub const REJECTIONS_PER_MINUTE: u32 = 20;
const WINDOW: Duration = Duration::from_secs(60);
/// Tenants tracked at once; idle ones are dropped first.
const MAX_TENANTS: usize = 10_000;

/// The name a rejected request was about (the userName or displayName of
/// a refused create), put on the error response by the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject(pub String);

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    logged: u32,
    /// Not logged in this window so far.
    suppressed: u64,
    /// Not logged in earlier windows, not reported yet.
    carried: u64,
}

/// Per-tenant budget of logged rejections, in fixed one-minute windows.
#[derive(Debug, Default)]
pub struct RejectionLimiter {
    windows: Mutex<HashMap<TenantId, Window>>,
}

impl RejectionLimiter {
    /// Whether to log a rejection of `tenant` at `now`: `Some(n)` with the
    /// number of rejections dropped since the last one logged, or `None`
    /// (dropped, and counted).
    pub fn admit(&self, tenant: &TenantId, now: Instant) -> Option<u64> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= MAX_TENANTS && !windows.contains_key(tenant) {
            windows.retain(|_, w| now.saturating_duration_since(w.start) < WINDOW);
        }
        let w = windows.entry(tenant.clone()).or_insert(Window {
            start: now,
            logged: 0,
            suppressed: 0,
            carried: 0,
        });
        if now.saturating_duration_since(w.start) >= WINDOW {
            *w = Window {
                start: now,
                logged: 0,
                suppressed: 0,
                carried: w.carried + w.suppressed,
            };
        }
        if w.logged >= REJECTIONS_PER_MINUTE {
            w.suppressed += 1;
            return None;
        }
        w.logged += 1;
        Some(std::mem::take(&mut w.carried) + std::mem::take(&mut w.suppressed))
    }
}

/// What a request to `path` with `method` was, for the log: operation,
/// resource type and the id in the path.
pub fn describe(method: &Method, path: &str) -> (Operation, &'static str, Option<String>) {
    let rest = path
        .strip_prefix(crate::SCIM_BASE_PATH)
        .unwrap_or(path)
        .trim_start_matches('/');
    let mut parts = rest.splitn(2, '/');
    let resource_type = match parts.next() {
        Some("Users") => "User",
        Some("Groups") => "Group",
        _ => "",
    };
    let id = parts.next().filter(|s| !s.is_empty());
    let search = id == Some(".search") || rest == ".search";
    let operation = match *method {
        Method::POST if search => Operation::Search,
        Method::POST => Operation::Create,
        Method::PUT => Operation::Replace,
        Method::PATCH => Operation::Patch,
        Method::DELETE => Operation::Delete,
        _ if id.is_some() => Operation::Read,
        _ => Operation::List,
    };
    let id = id.filter(|_| !search).map(str::to_owned);
    (operation, resource_type, id)
}

/// The entry of a `method` request to `path` answered with `error`, if it
/// is one to log: a client mistake (4xx; a missing or bad token names no
/// tenant and is never logged). The request is described only then.
pub fn rejection_entry(
    provider: Provider,
    (method, path): (&Method, &str),
    status: StatusCode,
    error: Option<&ScimError>,
    subject: Option<&Subject>,
) -> Option<ActivityEntry> {
    if !status.is_client_error() || status == StatusCode::UNAUTHORIZED {
        return None;
    }
    let (operation, resource_type, id) = describe(method, path);
    let scim_type = error
        .and_then(|e| e.scim_type)
        .and_then(|t| serde_json::to_value(t).ok())
        .and_then(|v| v.as_str().map(str::to_owned));
    let mut entry = ActivityEntry::now(
        provider.as_str(),
        operation,
        resource_type,
        Outcome::Rejected,
    );
    entry.id = id;
    entry.name = subject.map(|s| s.0.clone());
    entry.rejection = Some(Rejection {
        status: status.as_u16(),
        scim_type,
        detail: error.map(|e| e.detail.clone()).unwrap_or_default(),
    });
    Some(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[test]
    fn a_flood_of_rejections_logs_a_bounded_number_per_minute() {
        let limiter = RejectionLimiter::default();
        let t0 = Instant::now();
        let logged = (0..1000)
            .filter(|_| limiter.admit(&tenant("acme"), t0).is_some())
            .count();
        assert_eq!(logged, REJECTIONS_PER_MINUTE as usize);
    }

    #[test]
    fn the_next_logged_rejection_counts_those_dropped_before_it() {
        let limiter = RejectionLimiter::default();
        let t0 = Instant::now();
        for _ in 0..REJECTIONS_PER_MINUTE + 7 {
            limiter.admit(&tenant("acme"), t0);
        }
        assert_eq!(limiter.admit(&tenant("acme"), t0 + WINDOW), Some(7));
        assert_eq!(limiter.admit(&tenant("acme"), t0 + WINDOW), Some(0));
    }

    #[test]
    fn tenants_have_budgets_of_their_own() {
        let limiter = RejectionLimiter::default();
        let t0 = Instant::now();
        for _ in 0..REJECTIONS_PER_MINUTE {
            limiter.admit(&tenant("acme"), t0);
        }
        assert_eq!(limiter.admit(&tenant("acme"), t0), None);
        assert_eq!(limiter.admit(&tenant("globex"), t0), Some(0));
    }

    #[test]
    fn requests_are_described_by_method_and_path() {
        let d = |m: Method, p: &str| describe(&m, p);
        assert_eq!(
            d(Method::POST, "/scim/v2/Users"),
            (Operation::Create, "User", None)
        );
        assert_eq!(
            d(Method::PATCH, "/scim/v2/Groups/g1"),
            (Operation::Patch, "Group", Some("g1".into()))
        );
        assert_eq!(
            d(Method::POST, "/scim/v2/Users/.search"),
            (Operation::Search, "User", None)
        );
        assert_eq!(
            d(Method::POST, "/scim/v2/.search"),
            (Operation::Search, "", None)
        );
        assert_eq!(
            d(Method::GET, "/scim/v2/Users"),
            (Operation::List, "User", None)
        );
    }

    #[test]
    fn only_client_mistakes_of_an_authenticated_tenant_are_logged() {
        let what = || (&Method::POST, "/scim/v2/Users");
        let err = ScimError::uniqueness("userName is taken");
        let entry = rejection_entry(
            Provider::Entra,
            what(),
            StatusCode::CONFLICT,
            Some(&err),
            Some(&Subject("alice@example.com".into())),
        )
        .unwrap();
        assert_eq!(
            (entry.operation, entry.resource_type.as_str(), entry.id),
            (Operation::Create, "User", None)
        );
        let rejection = entry.rejection.unwrap();
        assert_eq!(rejection.scim_type.as_deref(), Some("uniqueness"));
        assert_eq!(entry.name.as_deref(), Some("alice@example.com"));
        for status in [
            StatusCode::OK,
            StatusCode::UNAUTHORIZED,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            assert!(rejection_entry(Provider::Entra, what(), status, None, None).is_none());
        }
    }
}
