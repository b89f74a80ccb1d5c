//! Per-tenant request rate limits: one tenant's burst (or a leaked token in a
//! loop) is answered `429` with `Retry-After` before it reaches storage,
//! instead of eating the capacity every other tenant shares.
//!
//! The buckets live in the process: on Lambda each execution environment
//! holds its own, so a tenant's ceiling is this rate times the function's
//! concurrency, which the template caps per function (reserved
//! concurrency). `scimsync serve` is one process, so there it is exact.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use scim_proto::ids::TenantId;
use tokio::time::Instant;

/// Entra's gallery requirement is at least 25 requests per second per
/// tenant; twice that leaves room for Okta's and Entra's bursts.
pub const DEFAULT_RATE_PER_SECOND: u32 = 50;
/// Environment variable that overrides [`DEFAULT_RATE_PER_SECOND`]
/// (`0` turns the limit off).
pub const RATE_ENV: &str = "TENANT_RATE_LIMIT";
/// Tenants tracked at once; idle buckets are dropped first.
const MAX_TENANTS: usize = 10_000;

/// Token buckets per tenant: `rate` requests per second, bursts of `2 × rate`.
#[derive(Debug)]
pub struct TenantLimiter {
    rate: u32,
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// What [`TenantLimiter::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Over the limit: try again after this long.
    Limited(Duration),
}

impl Default for TenantLimiter {
    fn default() -> Self {
        Self::new(DEFAULT_RATE_PER_SECOND)
    }
}

impl TenantLimiter {
    /// `rate` requests per second per tenant; `0` admits everything.
    pub fn new(rate: u32) -> Self {
        Self {
            rate,
            buckets: Mutex::default(),
        }
    }

    /// The limit from [`RATE_ENV`], or the default when unset.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(RATE_ENV) {
            Err(_) => Ok(Self::default()),
            Ok(v) => v.trim().parse().map(Self::new).map_err(|_| {
                format!("{RATE_ENV} must be a whole number of requests per second, not {v:?}")
            }),
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Takes one request from `tenant`'s bucket at `now`.
    pub fn check(&self, tenant: &TenantId, now: Instant) -> Admission {
        if self.rate == 0 {
            return Admission::Allowed;
        }
        let rate = f64::from(self.rate);
        let burst = rate * 2.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TENANTS && !buckets.contains_key(tenant) {
            // A full bucket is the same as no bucket: drop those.
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
            if buckets.len() >= MAX_TENANTS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(tenant.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Admission::Allowed
        } else {
            let wait = (1.0 - bucket.tokens) / rate;
            Admission::Limited(Duration::from_secs_f64(wait))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    #[test]
    fn a_tenant_gets_a_burst_of_twice_its_rate_then_its_rate() {
        let limiter = TenantLimiter::new(10);
        let t0 = Instant::now();
        for _ in 0..20 {
            assert_eq!(limiter.check(&tenant("acme"), t0), Admission::Allowed);
        }
        let Admission::Limited(wait) = limiter.check(&tenant("acme"), t0) else {
            panic!("the 21st request in the same instant is limited");
        };
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        let later = t0 + Duration::from_millis(100);
        assert_eq!(limiter.check(&tenant("acme"), later), Admission::Allowed);
        assert!(matches!(
            limiter.check(&tenant("acme"), later),
            Admission::Limited(_)
        ));
    }

    #[test]
    fn one_tenant_spending_its_budget_leaves_the_others_theirs() {
        let limiter = TenantLimiter::new(5);
        let t0 = Instant::now();
        while limiter.check(&tenant("noisy"), t0) == Admission::Allowed {}
        for _ in 0..10 {
            assert_eq!(limiter.check(&tenant("quiet"), t0), Admission::Allowed);
        }
    }

    #[test]
    fn a_rate_of_zero_admits_everything() {
        let limiter = TenantLimiter::new(0);
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(limiter.check(&tenant("acme"), t0), Admission::Allowed);
        }
    }

    #[test]
    fn the_tracked_tenants_stay_bounded() {
        let limiter = TenantLimiter::new(1);
        let t0 = Instant::now();
        for i in 0..MAX_TENANTS + 5 {
            limiter.check(&tenant(&format!("t{i}")), t0);
        }
        assert!(limiter.buckets.lock().unwrap().len() <= MAX_TENANTS);
    }
}
