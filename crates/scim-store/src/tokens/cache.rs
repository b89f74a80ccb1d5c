//! The per-instance cache of tenants' digest lists and the budget of
//! secret reads for tenants not seen yet. Pure: the caller supplies the
//! clock, holds the lock only around a call, and does the I/O.

use std::collections::HashMap;

use scim_proto::ids::TenantId;
use tokio::time::Instant;

use super::{CACHE_TTL, REFETCH_INTERVAL, UNSEEN_TENANT_BURST, UNSEEN_TENANT_REFILL, matches_any};

/// Bound on cached tenants (tokens naming unknown tenants are cached too).
pub(super) const MAX_CACHE_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub(super) struct CacheEntry {
    /// Empty when the tenant has no secret (negative cache).
    digests: Vec<[u8; 32]>,
    fetched_at: Instant,
}

/// Per-tenant digest lists with their read times, and the budget of reads
/// for tenants not seen yet. Pure: the caller supplies the clock, holds the
/// lock only around a call, and does the I/O.
#[derive(Debug)]
pub(super) struct DigestCache {
    pub(super) entries: HashMap<TenantId, CacheEntry>,
    /// Reads left for tenants without an entry; refilled one per
    /// [`UNSEEN_TENANT_REFILL`] since `refilled_at`, up to the burst.
    unseen_budget: u32,
    refilled_at: Option<Instant>,
}

impl Default for DigestCache {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            unseen_budget: UNSEEN_TENANT_BURST,
            refilled_at: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    /// A fresh entry holds the digest.
    Valid,
    /// The digest is not in an entry read less than [`REFETCH_INTERVAL`] ago.
    Invalid,
    /// A stale entry, or a mismatch against an entry old enough to read again.
    Fetch,
    /// No entry at all: read only within the budget for unseen tenants.
    FetchUnseen,
}

impl DigestCache {
    pub(super) fn lookup(&self, tenant: &TenantId, digest: &[u8; 32], now: Instant) -> Lookup {
        let Some(entry) = self.entries.get(tenant) else {
            return Lookup::FetchUnseen;
        };
        let age = now.saturating_duration_since(entry.fetched_at);
        if age >= CACHE_TTL {
            Lookup::Fetch
        } else if matches_any(&entry.digests, digest) {
            Lookup::Valid
        } else if age < REFETCH_INTERVAL {
            Lookup::Invalid
        } else {
            Lookup::Fetch
        }
    }

    /// Takes one read from the budget for unseen tenants; `false` when it is
    /// spent.
    pub(super) fn take_unseen(&mut self, now: Instant) -> bool {
        let since = *self.refilled_at.get_or_insert(now);
        let periods = now.saturating_duration_since(since).as_nanos()
            / UNSEEN_TENANT_REFILL.as_nanos().max(1);
        match u32::try_from(periods) {
            Ok(0) => {}
            Ok(n) if n < UNSEEN_TENANT_BURST => {
                self.unseen_budget = (self.unseen_budget + n).min(UNSEEN_TENANT_BURST);
                self.refilled_at = Some(since + UNSEEN_TENANT_REFILL * n);
            }
            _ => {
                self.unseen_budget = UNSEEN_TENANT_BURST;
                self.refilled_at = Some(now);
            }
        }
        if self.unseen_budget == 0 {
            return false;
        }
        self.unseen_budget -= 1;
        true
    }

    pub(super) fn insert(&mut self, tenant: &TenantId, digests: Vec<[u8; 32]>, now: Instant) {
        if self.entries.len() >= MAX_CACHE_ENTRIES && !self.entries.contains_key(tenant) {
            self.entries
                .retain(|_, e| now.saturating_duration_since(e.fetched_at) < CACHE_TTL);
            if self.entries.len() >= MAX_CACHE_ENTRIES {
                // Mostly tokens naming tenants that do not exist: drop those first.
                self.entries.retain(|_, e| !e.digests.is_empty());
            }
            if self.entries.len() >= MAX_CACHE_ENTRIES {
                self.entries.clear();
            }
        }
        self.entries.insert(
            tenant.clone(),
            CacheEntry {
                digests,
                fetched_at: now,
            },
        );
    }
}
