//! Small DynamoDB helpers shared by the stores: attribute access, key
//! building, and transactions with conflict retry.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, TransactWriteItem};
use scim_proto::ids::TenantId;

use crate::StoreError;
use crate::error::from_sdk;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// `T#<tenant>#<kind>`: the partition key prefix of everything a tenant owns.
pub(crate) fn pk(tenant: &TenantId, kind: &str) -> String {
    format!("T#{tenant}#{kind}")
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([
        (crate::tables::PK.to_owned(), s(pk)),
        (crate::tables::SK.to_owned(), s(sk)),
    ])
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Internal(format!(
            "item attribute {name} is missing or not a string"
        ))),
    }
}

pub(crate) fn get_opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

pub(crate) fn get_u64(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Internal(format!("item attribute {name} is not a u64"))),
        _ => Err(StoreError::Internal(format!(
            "item attribute {name} is missing or not a number"
        ))),
    }
}

/// Why a transaction did not commit.
#[derive(Debug)]
pub(crate) enum TxFailure {
    /// A condition failed: one code per item, in order (`None` = that item
    /// was fine), e.g. `ConditionalCheckFailed`.
    Cancelled(Vec<Option<String>>),
    Store(StoreError),
}

impl TxFailure {
    /// True when item `index` failed its condition.
    pub(crate) fn condition_failed(reasons: &[Option<String>], index: usize) -> bool {
        reasons
            .get(index)
            .and_then(Option::as_deref)
            .is_some_and(|c| c == "ConditionalCheckFailed")
    }
}

/// How often a transaction that lost a race with another transaction on the
/// same items (`TransactionConflict`) is retried before giving up.
const CONFLICT_RETRIES: u32 = 8;

/// Runs a write transaction, retrying transient conflicts with jittered
/// exponential back-off. Condition failures are returned, not retried.
pub(crate) async fn transact(
    client: &aws_sdk_dynamodb::Client,
    items: Vec<TransactWriteItem>,
) -> Result<(), TxFailure> {
    let mut attempt = 0;
    loop {
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await;
        let Err(err) = result else {
            return Ok(());
        };
        let reasons: Option<Vec<Option<String>>> = err
            .as_service_error()
            .and_then(|se| match se {
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
                    Some(c.cancellation_reasons().iter().map(reason_code).collect())
                }
                _ => None,
            });
        let conflict = match &reasons {
            Some(codes) => {
                let failed = codes
                    .iter()
                    .any(|c| c.as_deref() == Some("ConditionalCheckFailed"));
                if failed {
                    return Err(TxFailure::Cancelled(codes.clone()));
                }
                codes
                    .iter()
                    .any(|c| c.as_deref() == Some("TransactionConflict"))
            }
            // Conflicts are only reported inside a cancellation.
            None => false,
        };
        if !conflict || attempt >= CONFLICT_RETRIES {
            return Err(TxFailure::Store(match reasons {
                Some(codes) => StoreError::Unavailable(format!("transaction cancelled: {codes:?}")),
                None => from_sdk(err),
            }));
        }
        attempt += 1;
        tokio::time::sleep(backoff(attempt)).await;
    }
}

fn reason_code(r: &CancellationReason) -> Option<String> {
    r.code().filter(|c| *c != "None").map(str::to_owned)
}

fn backoff(attempt: u32) -> Duration {
    let base = 10u64.saturating_mul(1 << attempt.min(6));
    Duration::from_millis(base + rand::random_range(0..base))
}
