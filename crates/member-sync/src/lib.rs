//! The Members sync: turns a tenant's provisioned SCIM users into the
//! application's Members, following the tenant's attribute mapping. Used by
//! the `sync` Lambda (daily schedule and on-demand) and by the CLI.
//!
//! - [`SyncEngine::sync`] with `dry_run` is the preview: what would be
//!   created, updated (per property, before/after), deactivated, reactivated,
//!   linked, left alone; it writes nothing at all.
//! - Without `dry_run` it applies exactly that, in batches, each user's
//!   member in one transaction, under a per-tenant lease, with a checkpoint
//!   after every batch: a run stopped by its deadline (or crashed) is resumed
//!   by the next sync and ends in the same state as an uninterrupted one.
//! - Incremental by default: only users in the directory's dirty set (every
//!   SCIM user write marks its user) are read. A full reconciliation reads
//!   every user and every link; it runs when asked (`full`), on the first
//!   sync of a tenant, and whenever the mapping changed since the last
//!   complete full sync.
//!
//! Modules: `engine` runs a sync (phases, checkpoints, lease, dry-run
//! overlay, batches), `plan` decides what one user means for its member,
//! [`mapping`] is the attribute mapping, `report` and `error` are what a
//! sync returns. This file only declares and re-exports.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod engine;
mod error;
mod events;
#[cfg(test)]
mod fixtures;
pub mod mapping;
mod mapping_store;
mod plan;
mod report;

pub use engine::{RunProgress, SyncEngine, SyncOptions};
pub use error::SyncError;
pub use mapping_store::{mapping_entries, reset_mapping, set_mapping, show_mapping};
pub use report::{
    ChangeAction, MAX_CHANGES, MAX_ERRORS, MemberChangePreview, SyncCounts, SyncIssue, SyncReport,
    ValueChange,
};
