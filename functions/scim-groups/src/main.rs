//! Lambda function for `/scim/v2/Groups`.
//!
//! Wiring only: configuration from the template's environment, AWS clients
//! built once per execution environment, the shared SCIM router (API Gateway
//! routes only the Groups paths here).

use scim_api::limits::TenantLimiter;
use scim_api::{AppState, app, host};
use scim_store::Stores;
use scim_store::config::{StoreConfig, load_aws_config};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // AWS_LAMBDA_LOG_LEVEL / AWS_LAMBDA_LOG_FORMAT from the template; the
    // runtime's own crates stay at info whatever the level (they would log
    // raw events, tokens included).
    scim_telemetry::init_lambda();
    let config = StoreConfig::from_env()?;
    let sdk = load_aws_config().await;
    let state = AppState::from(Stores::new(&sdk, &config))
        .with_tenant_rate_limit(TenantLimiter::from_env()?);
    host::run_lambda(app(state)).await
}
