//! A bare `lambda_runtime` function: the floor that our functions' cold start
//! is compared with (`scripts/coldstart.sh`). It echoes its event.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // The same tracing setup as the real functions, so the comparison is fair.
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
