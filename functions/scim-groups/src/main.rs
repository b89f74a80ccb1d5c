//! Lambda function for `/scim/v2/Groups`.
//!
//! Wiring only: configuration from the template's environment, AWS clients
//! built once per execution environment, the shared SCIM router (API Gateway
//! routes only the Groups paths here).

use scim_api::{AppState, app, host};
use scim_store::Stores;
use scim_store::config::{StoreConfig, load_aws_config};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // Honours AWS_LAMBDA_LOG_LEVEL / AWS_LAMBDA_LOG_FORMAT set by the template.
    lambda_http::tracing::init_default_subscriber();
    let config = StoreConfig::from_env()?;
    let sdk = load_aws_config().await;
    let state = AppState::from(Stores::new(&sdk, &config));
    host::run_lambda(app(state)).await
}
