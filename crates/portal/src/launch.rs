//! Starting a sync from the page: deployed, an asynchronous invoke of the
//! sync function (which runs it to completion, continuing itself); locally,
//! a task in this process. A tenant whose sync holds its lease is not
//! started again.

use std::time::Duration;

use scim_domain::SyncRequest;
use scim_proto::ids::TenantId;
use scim_store::lazy::LazyClient;

use crate::PortalState;

/// How a sync is started.
#[derive(Debug, Clone)]
pub enum SyncLauncher {
    /// In this process (the local server).
    InProcess,
    /// `Invoke` with `InvocationType=Event` on the sync function (the
    /// client is built by the first launch, not at init).
    Lambda {
        client: LazyClient<aws_sdk_lambda::Client>,
        function_name: String,
    },
}

pub type LaunchError = Box<dyn std::error::Error + Send + Sync>;

/// Starts a sync of `tenant` unless one runs: `Ok(false)` when one does.
pub async fn start(state: &PortalState, tenant: &TenantId) -> Result<bool, LaunchError> {
    if state.members.status(tenant).await?.running {
        return Ok(false);
    }
    match state.launcher.as_ref() {
        SyncLauncher::InProcess => {
            let members = state.members.clone();
            let tenant = tenant.clone();
            tokio::spawn(async move {
                let run = members
                    .synchronize(
                        &tenant,
                        SyncRequest::default(),
                        Duration::from_secs(10),
                        |_| {},
                    )
                    .await;
                if let Err(e) = run {
                    tracing::warn!(%tenant, error = %format_args!("{e:#}"), "portal sync failed");
                }
            });
        }
        SyncLauncher::Lambda {
            client,
            function_name,
        } => {
            let payload = serde_json::to_vec(&serde_json::json!({"tenant": tenant.as_str()}))?;
            client
                .invoke()
                .function_name(function_name)
                .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                .payload(aws_sdk_lambda::primitives::Blob::new(payload))
                .send()
                .await
                .map_err(|e| aws_sdk_lambda::error::DisplayErrorContext(e).to_string())?;
        }
    }
    tracing::info!(%tenant, "sync started from the portal");
    Ok(true)
}
