//! Work a request leaves for after its answer: the memberships of a group,
//! or of a user in many groups, too many to delete in one transaction; and
//! the immediate deprovisioning of a user disabled or deleted. Nothing runs
//! after a Lambda answers, so deployed both reach the sync function through
//! the directory table's stream (the write's cleanup or deprovisioning
//! entry; every Members sync finishes what is left); the local server does
//! them at once, in a task of its own.

use std::time::Duration;

use member_sync::SyncError;
use scim_domain::{Directory, Members};
use scim_proto::ids::TenantId;

/// How often a deprovisioning blocked by a running sync is retried in
/// process, and how long apart (the stream retries deployed).
const DEPROVISION_ATTEMPTS: u32 = 10;
const DEPROVISION_RETRY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Default)]
pub enum Background {
    /// Left to the stream and the Members sync (Lambda).
    #[default]
    Deferred,
    /// Tasks in this process (`scimsync serve`); deprovisioning needs the
    /// Members sync, when there is one.
    InProcess { members: Option<Members> },
}

impl Background {
    /// In this process, deprovisioning through `members` if given.
    pub fn in_process(members: Option<Members>) -> Self {
        Self::InProcess { members }
    }

    /// Finishes the tenant's deletes, as this mode does.
    pub fn finish_deletes(&self, directory: Directory, tenant: TenantId) {
        if matches!(self, Self::Deferred) {
            return;
        }
        tokio::spawn(async move {
            match directory.finish_deletes(&tenant).await {
                Ok(n) => {
                    tracing::info!(%tenant, finished = n, "group deletes finished in the background");
                }
                // The next run (or the Members sync) picks it up again.
                Err(e) => {
                    tracing::warn!(%tenant, error = %format_args!("{e:#}"), "finishing group deletes failed");
                }
            }
        });
    }

    /// Deactivates the members of the tenant's users just disabled or
    /// deleted, as this mode does (see `Members::deprovision`).
    pub fn deprovision(&self, tenant: TenantId) {
        let Self::InProcess {
            members: Some(members),
        } = self
        else {
            return;
        };
        let members = members.clone();
        tokio::spawn(async move {
            for _ in 0..DEPROVISION_ATTEMPTS {
                match members.deprovision(&tenant).await {
                    Ok(n) => {
                        tracing::info!(%tenant, deactivated = n, "deprovisioned in the background");
                        return;
                    }
                    Err(SyncError::LeaseHeld(_)) => tokio::time::sleep(DEPROVISION_RETRY).await,
                    // The entries stay: the next write or sync retries.
                    Err(e) => {
                        tracing::warn!(%tenant, error = %format_args!("{e:#}"), "deprovisioning failed");
                        return;
                    }
                }
            }
            tracing::warn!(%tenant, "deprovisioning waited too long for a running sync; the next write or sync retries");
        });
    }
}
