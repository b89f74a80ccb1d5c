//! Where the data lives and how to reach it.
//!
//! On Lambda everything comes from the function's environment, which the SAM
//! template sets; locally the same variables point at the emulator.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, SdkConfig, timeout::TimeoutConfig};
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// Names of the tables and secrets this deployment uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `DIRECTORY_TABLE`: users, groups and their index items.
    pub directory_table: String,
    /// `TOKEN_SECRET_PREFIX`: a tenant's token digests live in the secret
    /// `<prefix><tenant>`.
    pub token_secret_prefix: String,
    /// `MEMBERS_TABLE` (optional): the application's Members and the Members
    /// sync's state. Only the sync function and the CLI need it; without it
    /// [`crate::Stores`] has no member stores.
    pub members_table: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} must be set (the SAM template sets it)")]
pub struct MissingEnv(pub &'static str);

impl StoreConfig {
    /// Reads the configuration a deployed function gets from the template.
    pub fn from_env() -> Result<Self, MissingEnv> {
        let var = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or(MissingEnv(name))
        };
        // Optional (the SCIM functions run without it), so deliberately not
        // read with `var`, whose names the template drift test requires of them.
        let optional = |name: &'static str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Ok(Self {
            directory_table: var("DIRECTORY_TABLE")?,
            token_secret_prefix: var("TOKEN_SECRET_PREFIX")?,
            members_table: optional("MEMBERS_TABLE"),
        })
    }

    /// The sync function's configuration: the directory and the Members
    /// table; it never touches tokens.
    pub fn sync_from_env() -> Result<Self, MissingEnv> {
        let required = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or(MissingEnv(name))
        };
        Ok(Self {
            directory_table: required("DIRECTORY_TABLE")?,
            token_secret_prefix: String::new(),
            members_table: Some(required("MEMBERS_TABLE")?),
        })
    }

    /// Every table this configuration names, with its definition.
    pub fn tables(&self) -> Vec<(&'static crate::tables::TableSpec, &str)> {
        let mut out = vec![(&crate::tables::DIRECTORY, self.directory_table.as_str())];
        if let Some(m) = &self.members_table {
            out.push((&crate::tables::MEMBERS, m.as_str()));
        }
        out
    }

    /// The names `make run` and `scimsync --local` use.
    pub fn local() -> Self {
        Self {
            directory_table: "scimsync-directory".into(),
            token_secret_prefix: "scimsync/local/tenants/".into(),
            members_table: Some("scimsync-members".into()),
        }
    }
}

/// Entra gives up after 60 s and API Gateway after 30 s; a DynamoDB call that
/// takes seconds is better retried than waited on.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Loads the standard AWS configuration (environment, profile, Lambda role)
/// with explicit timeouts (the SDK sets none by default) and the HTTPS
/// client started on first use ([`LazyHttpsClient`]).
pub async fn load_aws_config() -> SdkConfig {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(LazyHttpsClient::new())
        .timeout_config(timeouts());
    let loader = match lambda_region() {
        // On Lambda the execution role's credentials and the region are in
        // the environment, which is where the default chains would find
        // them too; naming them skips building those chains (an STS client
        // for web identity, an IMDS client, profile parsing): most of the
        // configuration's share of a cold start.
        Some(region) => loader
            .region(aws_config::Region::new(region))
            .credentials_provider(EnvironmentVariableCredentialsProvider::new()),
        None => loader,
    };
    loader.load().await
}

/// The region when running on Lambda (the mode is chosen at run time, as
/// `scim_api::host` does: `AWS_LAMBDA_RUNTIME_API` is set only there).
fn lambda_region() -> Option<String> {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API")?;
    std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty())
}

/// The HTTPS client of every AWS SDK client: the SDK's own (hyper, rustls,
/// the platform's root certificates) with ring as the crypto provider, and
/// started on the first request instead of when the clients are built.
///
/// The SDK's default client builds a connector when the SDK validates a
/// client's configuration, so that the root certificates load at
/// construction: on Lambda that is the init phase, where parsing ~150
/// certificates was most of our cold start above a bare function
/// (BENCHMARKS.md). Every request needs a connector anyway, so deferring it
/// costs the first request what init no longer pays, and a function that
/// answers without AWS (a 401, discovery) never pays it. The SDK crates are
/// built without their default client (`default-https-client`): every
/// configuration this crate builds carries this one.
#[derive(Debug, Clone)]
pub struct LazyHttpsClient(SharedHttpClient);

impl LazyHttpsClient {
    pub fn new() -> Self {
        let tls = tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring);
        Self(
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls)
                .build_https(),
        )
    }
}

impl Default for LazyHttpsClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient for LazyHttpsClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        // Built (and cached) on the first request with these settings.
        self.0.http_connector(settings, components)
    }

    // `validate_base_client_config` keeps the trait's no-op: the wrapped
    // client's would build a connector now.

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// AWS configuration for the local emulator at `endpoint` (moto on loopback):
/// dummy credentials and a fixed region, so nothing on the machine can make
/// it talk to a real account. Timeouts are generous: the emulator serves one
/// request at a time, so a busy test run queues requests for seconds.
pub async fn emulator_aws_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        // The deployed HTTP client, so tests run what Lambda runs.
        .http_client(LazyHttpsClient::new())
        .endpoint_url(endpoint)
        .region(aws_config::Region::from_static("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "scimsync-emulator",
        ))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(60))
                .operation_timeout(Duration::from_secs(120))
                .build(),
        )
        .load()
        .await
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Re-exported so binaries need not depend on the SDK crate directly.
pub use aws_sdk_dynamodb::Client as DynamoClient;
