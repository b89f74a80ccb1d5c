//! Lambda function for the Members sync. Wiring only; see [`handler`].

mod handler;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use scim_domain::Domain;
use scim_store::Stores;
use scim_store::config::{MissingEnv, StoreConfig, load_aws_config};
use scim_store::lazy::LazyClient;
use serde_json::Value;

use crate::handler::{Handler, LambdaInvoker};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // AWS_LAMBDA_LOG_LEVEL / AWS_LAMBDA_LOG_FORMAT from the template; the
    // runtime's own crates stay at info whatever the level (they would log
    // raw events, tokens included).
    scim_telemetry::init_lambda();
    let config = StoreConfig::sync_from_env()?;
    let sdk = load_aws_config().await;
    // App events go to EVENT_BUS_NAME (the default bus when unset).
    let sink = Arc::new(scim_store::events::EventBridgeSink::from_env(&sdk));
    let domain = Domain::from(&Stores::new(&sdk, &config).with_event_sink(sink));
    let handler = Arc::new(Handler {
        members: domain.members.ok_or(MissingEnv("MEMBERS_TABLE"))?,
        invoker: Arc::new(LambdaInvoker {
            // Built on first use, as the stores' clients are (scim_store::lazy).
            client: LazyClient::from_sdk(&sdk, aws_sdk_lambda::Client::new),
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME")?,
        }),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move {
            let remaining = remaining(event.context.deadline);
            Ok::<_, Error>(handler.handle(&event.payload, remaining).await?)
        }
    }))
    .await
}

/// Time until the invocation's deadline (milliseconds since the epoch).
fn remaining(deadline_ms: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_millis(deadline_ms).saturating_sub(now)
}
