//! The domain layer: one function per operation of scimsync, over the
//! store traits. Every entry point (the SCIM router, the `scimsync` CLI,
//! the sync function) parses its input, calls one of these, and renders the
//! result; the retry policy, PATCH apply-and-validate, lookup planning and
//! membership rules live here and nowhere else.
//!
//! Layout:
//! - [`Directory`] ([`users`], [`groups`]): the SCIM resources. Operations
//!   `create_user`, `replace_user`, `patch_user`, `delete_user`,
//!   `list_users`, and the same for groups.
//! - [`membership`]: member operations netted into per-member writes, and
//!   the rule that members are existing users.
//! - [`lookup`]: which key read answers a list filter (pure).
//! - [`listing`]: paging over id-ordered pages; bounded scans.
//! - `kind`: what users and groups share: DELETE, unfiltered listing,
//!   bounded scans, one implementation for both.
//! - [`retry`], [`precondition`]: lost version races and `If-Match`.
//! - [`tenancy`]: activate, rotate, revoke, status, authenticate.
//! - [`sync`]: preview, synchronize, immediate deprovisioning, mapping,
//!   members, history.
//! - [`activity`]: the tenant's activity log (read; sync outcomes).
//! - [`events`]: publishing app events from the outbox; the event log.
//! - [`portal`]: one-time links to the User Provisioning page, its
//!   sessions and CSRF tokens.
//! - [`error`]: what operations return.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod activity;
pub mod error;
pub mod events;
pub mod groups;
mod kind;
pub mod listing;
pub mod lookup;
pub mod membership;
pub mod portal;
pub mod precondition;
pub mod retry;
pub mod sync;
pub mod tenancy;
pub mod users;

use std::sync::Arc;

use scim_store::groups::GroupStore;
use scim_store::users::UserStore;

pub use activity::Activity;
pub use error::{DomainError, Result};
pub use precondition::Precondition;
pub use sync::{Members, SyncRequest, SyncStatus};
pub use tenancy::{TenancyError, TenantStatus, Tenants};

/// The tenants' SCIM directory: users, groups and their memberships.
#[derive(Debug, Clone)]
pub struct Directory {
    users: Arc<dyn UserStore>,
    groups: Arc<dyn GroupStore>,
}

impl Directory {
    pub fn new(users: Arc<dyn UserStore>, groups: Arc<dyn GroupStore>) -> Self {
        Self { users, groups }
    }
}

/// Every operation, built from the real stores.
#[derive(Debug, Clone)]
pub struct Domain {
    pub directory: Directory,
    pub tenants: Tenants,
    /// Present when the stores include the Members table.
    pub members: Option<Members>,
    pub activity: Activity,
}

impl From<&scim_store::Stores> for Domain {
    fn from(stores: &scim_store::Stores) -> Self {
        let directory = Directory::new(stores.users.clone(), stores.groups.clone());
        let sync = stores.sync_stores().ok();
        let tenants = Tenants::new(
            stores.tokens.clone(),
            sync.as_ref().map(|(_, state)| state.clone()),
            stores.stats.clone(),
        );
        let activity = Activity::new(stores.activity.clone());
        let members =
            sync.map(|(members, state)| Members::new(&directory, members, state, activity.clone()));
        let members = members
            .zip(stores.members.as_ref())
            .map(|(m, store)| m.with_events(Arc::new(store.outbox()), stores.event_sink.clone()));
        Self {
            directory,
            tenants,
            members,
            activity,
        }
    }
}
