//! Integration tests: one binary, the real router over HTTP on loopback, the
//! real DynamoDB/Secrets Manager APIs of the emulator. See `helpers.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod activity;
mod atomicity;
mod bad_input;
mod concurrency;
mod costs;
mod events;
mod fault_proxy;
mod faults;
mod groups_lifecycle;
mod hardening;
mod helpers;
mod lambda_events;
mod okta;
mod portal;
mod providers;
mod search;
mod smoke;
mod sync;
mod sync_groups;
mod template_drift;
mod template_routes;
mod users_lifecycle;
