//! Requests that retry: write transactions with conflict retry (and how a
//! cancellation is classified), batch writes and reads that resubmit what
//! DynamoDB left unprocessed, and paged key queries.

use std::time::Duration;

use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};

use super::{Item, build_failed, get_s, s};
use crate::StoreError;
use crate::error::{Cause, from_sdk};

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
                // An item or key DynamoDB cannot store: the input's fault,
                // and retrying (Entra would, forever, on a 503) cannot help.
                Some(codes)
                    if codes
                        .iter()
                        .any(|c| c.as_deref() == Some("ValidationError")) =>
                {
                    StoreError::Rejected(Cause::with_source(
                        format!("transaction cancelled: {codes:?}"),
                        err,
                    ))
                }
                Some(codes) => StoreError::Unavailable(Cause::with_source(
                    format!("transaction cancelled: {codes:?}"),
                    err,
                )),
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

/// Waits before resubmitting what a batch request left unprocessed, or
/// gives up (`Unavailable`, saying `what`) after [`CONFLICT_RETRIES`].
async fn pause_to_resubmit(attempt: &mut u32, what: &'static str) -> Result<(), StoreError> {
    *attempt += 1;
    if *attempt > CONFLICT_RETRIES {
        return Err(StoreError::Unavailable(what.into()));
    }
    tokio::time::sleep(backoff(*attempt)).await;
    Ok(())
}

fn backoff(attempt: u32) -> Duration {
    let base = 10u64.saturating_mul(1 << attempt.min(6));
    Duration::from_millis(base + rand::random_range(0..base))
}

/// Whether a single-item write failed on its condition expression (any
/// operation: PutItem, UpdateItem, DeleteItem).
pub(crate) fn is_condition_failure<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
}

/// The outcome of a single-item conditional write: `None` when its
/// condition failed (nothing was written), any other failure classified.
pub(crate) fn conditional<T, E, R>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<Option<T>, StoreError>
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if is_condition_failure(&e) => Ok(None),
        Err(e) => Err(from_sdk(e)),
    }
}

/// DynamoDB's limit of items per `BatchWriteItem`.
pub(crate) const BATCH_WRITE_MAX: usize = 25;

/// DynamoDB's limit of items per `TransactWriteItems`.
pub(crate) const TX_MAX_ITEMS: usize = 100;

/// Writes `requests` with `BatchWriteItem`, 25 at a time, resubmitting
/// unprocessed items with back-off. Puts and deletes are idempotent, so a
/// retry after a failure is always safe.
pub(crate) async fn batch_write(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
) -> Result<(), StoreError> {
    for chunk in requests.chunks(BATCH_WRITE_MAX) {
        let mut pending = chunk.to_vec();
        let mut attempt = 0;
        while !pending.is_empty() {
            let out = client
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(from_sdk)?;
            pending = out
                .unprocessed_items
                .and_then(|mut m| m.remove(table))
                .unwrap_or_default();
            if !pending.is_empty() {
                pause_to_resubmit(&mut attempt, "DynamoDB kept returning unprocessed items")
                    .await?;
            }
        }
    }
    Ok(())
}

pub(crate) fn put_request(item: Item) -> Result<aws_sdk_dynamodb::types::WriteRequest, StoreError> {
    let put = aws_sdk_dynamodb::types::PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(build_failed)?;
    Ok(aws_sdk_dynamodb::types::WriteRequest::builder()
        .put_request(put)
        .build())
}

pub(crate) fn delete_request(
    key: Item,
) -> Result<aws_sdk_dynamodb::types::WriteRequest, StoreError> {
    let del = aws_sdk_dynamodb::types::DeleteRequest::builder()
        .set_key(Some(key))
        .build()
        .map_err(build_failed)?;
    Ok(aws_sdk_dynamodb::types::WriteRequest::builder()
        .delete_request(del)
        .build())
}

/// A strongly consistent `Query` of partition `pk`, for the caller to bound.
pub(crate) fn partition_query(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: String,
) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
    client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s(pk))
        .consistent_read(true)
}

/// All sort keys of partition `pk` (strongly consistent, paged).
pub(crate) async fn query_sort_keys(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: String,
    limit: Option<usize>,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let mut q = partition_query(client, table, pk.clone())
            .projection_expression("sk")
            .set_exclusive_start_key(start);
        if let Some(limit) = limit {
            q = q.limit(i32::try_from(limit.saturating_sub(out.len()).max(1)).unwrap_or(i32::MAX));
        }
        let page = q.send().await.map_err(from_sdk)?;
        for item in page.items() {
            out.push(get_s(item, crate::tables::SK)?.to_owned());
        }
        start = page.last_evaluated_key;
        if start.is_none() || limit.is_some_and(|l| out.len() >= l) {
            return Ok(out);
        }
    }
}

/// Strongly consistent `BatchGetItem` of `keys` (100 per call), retrying
/// unprocessed keys. Order of the result is unspecified.
pub(super) async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
) -> Result<Vec<Item>, StoreError> {
    let mut found = Vec::new();
    for chunk in keys.chunks(100) {
        let mut pending = chunk.to_vec();
        let mut attempt = 0;
        while !pending.is_empty() {
            let ka = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(build_failed)?;
            let out = client
                .batch_get_item()
                .request_items(table, ka)
                .send()
                .await
                .map_err(from_sdk)?;
            if let Some(mut r) = out.responses {
                found.extend(r.remove(table).unwrap_or_default());
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut m| m.remove(table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if !pending.is_empty() {
                pause_to_resubmit(&mut attempt, "DynamoDB kept returning unprocessed keys").await?;
            }
        }
    }
    Ok(found)
}
