//! Log setup shared by every binary (the Lambda functions and `scimsync`).
//!
//! The operator chooses a level (`LogLevel` in the template, which sets
//! `AWS_LAMBDA_LOG_LEVEL` and `RUST_LOG`), and it applies to our own crates
//! only. Every other crate is capped at `info`: at `trace` the Lambda
//! runtime logs each raw API Gateway event, `authorization` header and body
//! included, and hyper and the AWS SDK log headers and payloads at
//! `debug`/`trace`. Environment directives (`RUST_LOG=lambda_runtime=trace`)
//! are not honoured for the same reason: only a bare level is read.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Crates (tracing targets) of this workspace: the ones whose logs never
/// hold a token or a request body, so any level is safe for them.
pub const OWN_TARGETS: &[&str] = &[
    "scim_proto",
    "scim_store",
    "scim_domain",
    "scim_api",
    "scim_portal",
    "scim_telemetry",
    "member_sync",
    "scimsync",
    "scim_users",
    "scim_groups",
    "sync",
    "portal",
    // Tools (benchmarks, the cold-start harness).
    "scim_bench",
    "loadgen",
    "coldstart",
    "coldstart_hello",
];

/// The most any other crate may log.
pub const THIRD_PARTY_CAP: LevelFilter = LevelFilter::INFO;

/// The filter for `level`: our crates at `level`, everything else at
/// `level` but never more verbose than [`THIRD_PARTY_CAP`].
pub fn filter(level: LevelFilter) -> EnvFilter {
    filter_split(level, level)
}

/// Our crates at `own`; every other crate at `others`, capped at
/// [`THIRD_PARTY_CAP`].
pub fn filter_split(own: LevelFilter, others: LevelFilter) -> EnvFilter {
    let level = own;
    let others = others.min(THIRD_PARTY_CAP);
    let mut directives = others.to_string().to_lowercase();
    for target in OWN_TARGETS {
        directives.push_str(&format!(",{target}={}", level.to_string().to_lowercase()));
    }
    EnvFilter::builder()
        .with_default_directive(others.into())
        .parse_lossy(directives)
}

/// The level named by `value` (`trace`…`error`, `off`; any case), or
/// `default` when it is unset or anything else (such as a directive list).
pub fn parse_level(value: Option<&str>, default: LevelFilter) -> LevelFilter {
    value
        .map(str::trim)
        .and_then(|v| LevelFilter::from_str(v).ok())
        .unwrap_or(default)
}

/// The level from Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else
/// `info` (the same precedence as the runtime's own default subscriber).
pub fn level_from_env() -> LevelFilter {
    let value = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    parse_level(value.as_deref(), LevelFilter::INFO)
}

/// Installs the subscriber of a Lambda function: stdout, no timestamps
/// (CloudWatch adds them), JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`.
pub fn init_lambda() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter(level_from_env()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Installs the subscriber of the CLI and local server: stderr, level from
/// `RUST_LOG`; unset, our crates log at `info` and others at `warn`.
pub fn init_cli() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) => filter(parse_level(Some(&value), LevelFilter::INFO)),
        Err(_) => filter_split(LevelFilter::INFO, LevelFilter::WARN),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn logged_at(level: LevelFilter, emit: impl FnOnce()) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter(level))
            .with_writer(out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn at_trace_the_runtime_never_logs_the_raw_event_with_its_token() {
        let text = logged_at(LevelFilter::TRACE, || {
            // What lambda_runtime 1.x logs for every invocation at trace.
            tracing::trace!(
                target: "lambda_runtime::layers::api_response",
                body = r#"{"headers":{"authorization":"Bearer scimsync_acme_deadbeef"}}"#,
                "raw JSON event received from Lambda"
            );
            tracing::debug!(target: "hyper::proto::h1::io", "parsed 9 headers: authorization: Bearer scimsync_acme_deadbeef");
            tracing::trace!(target: "aws_smithy_runtime::client::http", "response body: digests");
            tracing::trace!(target: "scim_api::router", "our own trace line");
            tracing::info!(target: "lambda_runtime", "runtime info line");
        });
        assert!(!text.contains("scimsync_acme_deadbeef"), "{text}");
        assert!(!text.contains("digests"), "{text}");
        assert!(text.contains("our own trace line"), "{text}");
        assert!(text.contains("runtime info line"), "{text}");
    }

    #[test]
    fn a_quieter_level_applies_to_every_crate() {
        let text = logged_at(LevelFilter::WARN, || {
            tracing::info!(target: "lambda_runtime", "runtime info line");
            tracing::info!(target: "scim_store::users", "store info line");
            tracing::warn!(target: "scim_store::users", "store warning");
        });
        assert!(!text.contains("info line"), "{text}");
        assert!(text.contains("store warning"), "{text}");
    }

    /// The tracing targets of the workspace's library and binary crates
    /// (`name` of `[package]` with a `src/lib.rs`, and of `[[bin]]`; `-` as
    /// `_`).
    fn workspace_targets() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut names = Vec::new();
        for dir in ["crates", "functions"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let crate_dir = entry.unwrap().path();
                let has_lib = crate_dir.join("src/lib.rs").exists();
                let manifest = crate_dir.join("Cargo.toml");
                let Ok(text) = std::fs::read_to_string(&manifest) else {
                    continue;
                };
                let mut section = String::new();
                for line in text.lines().map(str::trim) {
                    if line.starts_with('[') {
                        section = line.to_owned();
                    } else if let Some(value) = line.strip_prefix("name = ")
                        && ((section == "[package]" && has_lib) || section == "[[bin]]")
                    {
                        names.push(value.trim_matches('"').replace('-', "_"));
                    }
                }
            }
        }
        names
    }

    #[test]
    fn every_crate_of_the_workspace_logs_at_the_operators_level() {
        let targets = workspace_targets();
        assert!(targets.contains(&"scim_api".to_owned()), "{targets:?}");
        let missing: Vec<_> = targets
            .iter()
            .filter(|t| !OWN_TARGETS.contains(&t.as_str()))
            .collect();
        assert!(missing.is_empty(), "not in OWN_TARGETS: {missing:?}");
    }

    #[test]
    fn only_a_bare_level_is_read_from_the_environment() {
        assert_eq!(
            parse_level(Some("trace"), LevelFilter::INFO),
            LevelFilter::TRACE
        );
        assert_eq!(
            parse_level(Some(" DEBUG "), LevelFilter::INFO),
            LevelFilter::DEBUG
        );
        assert_eq!(
            parse_level(Some("lambda_runtime=trace"), LevelFilter::INFO),
            LevelFilter::INFO
        );
        assert_eq!(parse_level(None, LevelFilter::WARN), LevelFilter::WARN);
    }
}
