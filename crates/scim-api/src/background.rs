//! Work a request leaves for after its answer: the memberships of a group,
//! or of a user in many groups, too many to delete in one transaction.
//! Nothing runs after a Lambda answers, so deployed the delete's cleanup
//! entry reaches the sync function through the directory table's stream
//! (and every Members sync finishes what is left); the local server
//! finishes them at once, in a task of its own.

use scim_domain::Directory;
use scim_proto::ids::TenantId;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Background {
    /// Left to the stream and the Members sync (Lambda).
    #[default]
    Deferred,
    /// A task in this process (`scimsync serve`).
    InProcess,
}

impl Background {
    /// Finishes the tenant's deletes, as this mode does.
    pub fn finish_deletes(self, directory: Directory, tenant: TenantId) {
        if self == Self::Deferred {
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
}
