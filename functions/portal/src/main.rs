//! Lambda function for the User Provisioning portal (`/portal/...`) and the
//! IAM-authorized `POST /admin/v1/portal-links`.
//!
//! Wiring only: configuration from the template's environment, AWS clients
//! built once per execution environment, the portal's router.

use std::sync::Arc;

use scim_portal::schedule::Schedule;
use scim_portal::{PortalConfig, PortalState, SyncLauncher};
use scim_store::Stores;
use scim_store::config::{MissingEnv, StoreConfig, load_aws_config};
use scim_store::lazy::LazyClient;
use scim_store::portal::SecretsManagerSessionKey;

/// A variable the template must set (the route tests read these names).
fn required(name: &'static str) -> Result<String, MissingEnv> {
    optional(name).ok_or(MissingEnv(name))
}

fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // AWS_LAMBDA_LOG_LEVEL / AWS_LAMBDA_LOG_FORMAT from the template; the
    // runtime's own crates stay at info whatever the level (they would log
    // raw events, session cookies and tokens included).
    scim_telemetry::init_lambda();
    let config = StoreConfig::from_env()?;
    // Optional for the SCIM functions, not for the portal: links, the
    // mapping, the Members and the sync reports live there.
    if config.members_table.is_none() {
        return Err(MissingEnv("MEMBERS_TABLE").into());
    }
    let session_secret = required("PORTAL_SESSION_SECRET")?;
    let sync_function = required("SYNC_FUNCTION_NAME")?;
    let sdk = load_aws_config().await;
    // Clients are built on first use (scim_store::lazy): building one
    // parses its endpoint partitions, which init would otherwise pay.
    // The template generates the key; never create one here (the role may
    // only read it).
    let session_key = Arc::new(SecretsManagerSessionKey::new(
        LazyClient::from_sdk(&sdk, aws_sdk_secretsmanager::Client::new),
        &session_secret,
        false,
    ));
    let state = PortalState::new(
        &Stores::new(&sdk, &config),
        session_key,
        PortalConfig {
            app_name: optional("APP_NAME").unwrap_or_else(|| "scimsync".to_owned()),
            // Behind API Gateway's IAM authorizer (infra/template.yaml).
            admin_route: true,
            sync_schedule: optional("SYNC_SCHEDULE").map(|e| Schedule::parse(&e)),
        },
        SyncLauncher::Lambda {
            client: LazyClient::from_sdk(&sdk, aws_sdk_lambda::Client::new),
            function_name: sync_function,
        },
    )?;
    run_lambda(scim_portal::router(state)).await
}

/// Runs the router under the Lambda runtime, as `scim_api::host::run_lambda`
/// does for the SCIM app: the router takes axum bodies, lambda_http hands
/// over its own body type.
async fn run_lambda(router: axum::Router) -> Result<(), lambda_http::Error> {
    let service = tower::ServiceBuilder::new()
        .map_request(|req: lambda_http::Request| req.map(axum::body::Body::new))
        .service(router);
    lambda_http::run(service).await
}
