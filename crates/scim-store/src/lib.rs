//! Storage for scimsync: the SCIM directory in DynamoDB and the tenants' API
//! tokens in Secrets Manager, each behind a small trait so that the HTTP layer
//! and the sync engine depend on capabilities, not on AWS.
//!
//! Layout:
//! - [`config`]: table and secret names from the environment; AWS clients.
//! - [`tables`]: the DynamoDB table definitions (mirrored by `infra/template.yaml`).
//! - [`users`]: [`users::UserStore`] and its DynamoDB implementation.
//! - [`tokens`]: token minting and verification ([`tokens::TokenStore`]).
//! - [`error`]: the `StoreError` callers branch on.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod config;
mod dynamo;
pub mod error;
pub mod tables;
pub mod tokens;
pub mod users;

pub use error::StoreError;
