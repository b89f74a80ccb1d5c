//! Serving the app: under Lambda when the Lambda Runtime API is present
//! (`AWS_LAMBDA_RUNTIME_API`, also set by `cargo lambda watch`), otherwise on
//! a TCP listener. Decided at run time, never by build profile.

use std::future::Future;

use tokio::net::TcpListener;

use crate::App;

/// True when running inside Lambda (or its emulator).
pub fn on_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Runs the app under the Lambda runtime until the environment is shut down.
pub async fn run_lambda(app: App) -> Result<(), lambda_http::Error> {
    // The app takes axum bodies; lambda_http hands over its own body type.
    let service = tower::ServiceBuilder::new()
        .map_request(|req: lambda_http::Request| req.map(axum::body::Body::new))
        .service(app);
    lambda_http::run(service).await
}

/// Serves the app on `listener` until `shutdown` completes.
pub async fn run_tcp(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
