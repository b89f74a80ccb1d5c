//! Small DynamoDB helpers shared by the stores: attribute access, key
//! building, and transactions with conflict retry.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, TransactWriteItem};
use scim_proto::ids::{ResourceId, TenantId};

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

/// DynamoDB's limit on a sort key's length, in bytes (partition keys may
/// have 2048).
pub(crate) const MAX_SORT_KEY_BYTES: usize = 1024;

/// Whether `value` can be a sort key: DynamoDB rejects empty and longer keys
/// with a validation error, so a lookup of such a value finds nothing.
pub(crate) fn storable_key(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_SORT_KEY_BYTES
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
                // An item or key DynamoDB cannot store: the input's fault,
                // and retrying (Entra would, forever, on a 503) cannot help.
                Some(codes)
                    if codes
                        .iter()
                        .any(|c| c.as_deref() == Some("ValidationError")) =>
                {
                    StoreError::Rejected(format!("transaction cancelled: {codes:?}"))
                }
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

/// Whether a single-item write failed on its condition expression (any
/// operation: PutItem, UpdateItem, DeleteItem).
pub(crate) fn is_condition_failure<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
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
                attempt += 1;
                if attempt > CONFLICT_RETRIES {
                    return Err(StoreError::Unavailable(
                        "DynamoDB kept returning unprocessed items".into(),
                    ));
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
    Ok(())
}

pub(crate) fn put_request(item: Item) -> Result<aws_sdk_dynamodb::types::WriteRequest, StoreError> {
    let put = aws_sdk_dynamodb::types::PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(StoreError::internal)?;
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
        .map_err(StoreError::internal)?;
    Ok(aws_sdk_dynamodb::types::WriteRequest::builder()
        .delete_request(del)
        .build())
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
        let mut q = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk.clone()))
            .projection_expression("sk")
            .consistent_read(true)
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
async fn batch_get(
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
                .map_err(StoreError::internal)?;
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
                attempt += 1;
                if attempt > CONFLICT_RETRIES {
                    return Err(StoreError::Unavailable(
                        "DynamoDB kept returning unprocessed keys".into(),
                    ));
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
    Ok(found)
}

/// One table and the write builders both stores use: versioned puts and
/// deletes for optimistic concurrency, uniqueness claims, counters.
#[derive(Clone)]
pub(crate) struct Table {
    pub(crate) client: aws_sdk_dynamodb::Client,
    pub(crate) name: String,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// The attribute that names the resource a claim or index item points to.
pub(crate) const ID: &str = "id";

impl Table {
    /// Strongly consistent reads of the items `key` gives for `ids`, each
    /// read once however often it is named (`BatchGetItem` refuses a key
    /// twice). Order of the result is unspecified.
    pub(crate) async fn get_unique<I: Ord>(
        &self,
        ids: impl IntoIterator<Item = I>,
        key: impl Fn(I) -> Item,
    ) -> Result<Vec<Item>, StoreError> {
        let unique: std::collections::BTreeSet<I> = ids.into_iter().collect();
        batch_get(
            &self.client,
            &self.name,
            unique.into_iter().map(key).collect(),
        )
        .await
    }

    /// Deletes the item at `key` if its attribute `name` still holds
    /// `value`; `false` (and nothing deleted) when it changed or is gone.
    /// How the Members sync clears a change marker it has handled without
    /// losing a change recorded after it read the marker.
    pub(crate) async fn delete_if_unchanged(
        &self,
        key: Item,
        name: &str,
        value: AttributeValue,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .condition_expression("#a = :v")
            .expression_attribute_names("#a", name)
            .expression_attribute_values(":v", value)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(from_sdk(e)),
        }
    }

    pub(crate) fn put(
        &self,
        item: Item,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(StoreError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Put that only succeeds over version `expected`.
    pub(crate) fn put_versioned(
        &self,
        item: Item,
        expected: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("#v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(expected))
            .build()
            .map_err(StoreError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Delete; with `owner`, only if the item points at that resource (a
    /// claim we hold, never another resource's).
    pub(crate) fn delete(
        &self,
        key: Item,
        owner: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut del = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.name)
            .set_key(Some(key));
        if let Some(owner) = owner {
            del = del
                .condition_expression("#id = :id")
                .expression_attribute_names("#id", ID)
                .expression_attribute_values(":id", s(owner));
        }
        Ok(TransactWriteItem::builder()
            .delete(del.build().map_err(StoreError::internal)?)
            .build())
    }

    pub(crate) fn delete_versioned(
        &self,
        key: Item,
        expected: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let del = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.name)
            .set_key(Some(key))
            .condition_expression("#v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(expected))
            .build()
            .map_err(StoreError::internal)?;
        Ok(TransactWriteItem::builder().delete(del).build())
    }

    /// Delete of `key` if its attribute `name` still holds `value` (is
    /// still absent, for `None`; an absent item passes and stays absent).
    pub(crate) fn delete_if_attr(
        &self,
        key: Item,
        name: &str,
        value: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let del = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.name)
            .set_key(Some(key))
            .expression_attribute_names("#a", name);
        let del = match value {
            Some(value) => del
                .condition_expression("#a = :a")
                .expression_attribute_values(":a", s(value)),
            None => del.condition_expression("attribute_not_exists(#a)"),
        };
        Ok(TransactWriteItem::builder()
            .delete(del.build().map_err(StoreError::internal)?)
            .build())
    }

    /// `SET` of `set` (attribute, value) on `key` (created if absent) if its
    /// attribute `name` still holds `value` (is still absent, for `None`).
    pub(crate) fn update_if_attr(
        &self,
        key: Item,
        set: Vec<(&str, AttributeValue)>,
        name: &str,
        value: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.name)
            .set_key(Some(key))
            .expression_attribute_names("#a", name);
        let mut assignments = Vec::with_capacity(set.len());
        for (i, (attr, v)) in set.into_iter().enumerate() {
            assignments.push(format!("#s{i} = :s{i}"));
            update = update
                .expression_attribute_names(format!("#s{i}"), attr)
                .expression_attribute_values(format!(":s{i}"), v);
        }
        update = update.update_expression(format!("SET {}", assignments.join(", ")));
        update = match value {
            Some(value) => update
                .condition_expression("#a = :a")
                .expression_attribute_values(":a", s(value)),
            None => update.condition_expression("attribute_not_exists(#a)"),
        };
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(StoreError::internal)?)
            .build())
    }

    /// `SET <name> = value` on `key`, creating the item if absent.
    pub(crate) fn set(
        &self,
        key: Item,
        name: &str,
        value: AttributeValue,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.name)
            .set_key(Some(key))
            .update_expression("SET #a = :a")
            .expression_attribute_names("#a", name)
            .expression_attribute_values(":a", value)
            .build()
            .map_err(StoreError::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A transaction item that writes nothing and fails unless `key` exists.
    pub(crate) fn exists(&self, key: Item) -> Result<TransactWriteItem, StoreError> {
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.name)
            .set_key(Some(key))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(StoreError::internal)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Strongly consistent reads of `keys` (each named once) in one
    /// `BatchGetItem`. Order of the result is unspecified.
    pub(crate) async fn get_items(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        batch_get(&self.client, &self.name, keys).await
    }

    /// A uniqueness claim: `(pk, value)` pointing at `owner`, written only
    /// if nobody holds it.
    pub(crate) fn claim(
        &self,
        pk: String,
        value: &str,
        owner: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(pk, value);
        item.insert(ID.into(), s(owner));
        self.put(item, Some("attribute_not_exists(pk)"))
    }

    /// `ADD <counter> delta` on the tenant's stats item.
    pub(crate) fn count_delta(
        &self,
        tenant: &TenantId,
        counter: &str,
        delta: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.name)
            .set_key(Some(stats_key(tenant)))
            .update_expression("ADD #c :d")
            .expression_attribute_names("#c", counter)
            .expression_attribute_values(":d", n(delta))
            .build()
            .map_err(StoreError::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Reads a tenant counter (one strongly consistent item read).
    pub(crate) async fn counter(
        &self,
        tenant: &TenantId,
        counter: &str,
    ) -> Result<usize, StoreError> {
        Ok(match self.get(stats_key(tenant)).await? {
            Some(item) if item.contains_key(counter) => {
                usize::try_from(get_u64(&item, counter)?).map_err(StoreError::internal)?
            }
            _ => 0,
        })
    }

    /// Strongly consistent `GetItem`.
    pub(crate) async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(out.item)
    }

    /// The id a claim item points to, if the claim exists.
    pub(crate) async fn claimed_by(
        &self,
        pk: String,
        value: &str,
    ) -> Result<Option<String>, StoreError> {
        if !storable_key(value) {
            // No claim can have this sort key: answer without asking
            // DynamoDB, which would reject the key as invalid.
            return Ok(None);
        }
        Ok(match self.get(key(pk, value)).await? {
            Some(item) => Some(get_s(&item, ID)?.to_owned()),
            None => None,
        })
    }

    /// One page of a partition's items in sort-key order, after `after`.
    /// The last `limit` items of partition `pk` (1 to 1000), newest (highest
    /// sort key) first, strongly consistent.
    pub(crate) async fn newest_first(
        &self,
        pk: String,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let limit = i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        let out = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(limit)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(out.items.unwrap_or_default())
    }

    /// The sort key of the `n`th item of partition `pk` (n ≥ 1), reading
    /// keys only: `None` when the partition has fewer items. Paging to a
    /// large offset then transfers and parses keys, not documents (the read
    /// capacity is the same: DynamoDB bills the items it reads).
    pub(crate) async fn nth_key(&self, pk: String, n: usize) -> Result<Option<String>, StoreError> {
        let mut skipped = 0;
        let mut start = None;
        let mut last = None;
        while skipped < n {
            let limit = i32::try_from((n - skipped).min(1000)).unwrap_or(1000);
            let out = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk.clone()))
                .projection_expression("sk")
                .consistent_read(true)
                .limit(limit)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(from_sdk)?;
            for item in out.items() {
                skipped += 1;
                last = Some(get_s(item, crate::tables::SK)?.to_owned());
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(if skipped >= n { last } else { None })
    }

    pub(crate) async fn page(
        &self,
        pk: String,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let limit = i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        let start = after.map(|sk| key(pk.clone(), sk));
        let out = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(from_sdk)?;
        let next = out
            .last_evaluated_key
            .as_ref()
            .and_then(|k| get_opt_s(k, crate::tables::SK))
            .map(str::to_owned);
        Ok((out.items.unwrap_or_default(), next))
    }
}

/// The tenant's counters item.
pub(crate) fn stats_key(tenant: &TenantId) -> Item {
    key(pk(tenant, "STATS"), "STATS")
}

/// Resource metadata as item attributes.
pub(crate) fn put_meta(
    item: &mut Item,
    meta: &scim_proto::resource::Meta,
) -> Result<(), StoreError> {
    use time::format_description::well_known::Rfc3339;
    let fmt = |t: time::OffsetDateTime| t.format(&Rfc3339).map_err(StoreError::internal);
    item.insert("version".into(), n(meta.version));
    item.insert("created".into(), s(fmt(meta.created)?));
    item.insert("lastModified".into(), s(fmt(meta.last_modified)?));
    Ok(())
}

pub(crate) fn read_meta(item: &Item) -> Result<scim_proto::resource::Meta, StoreError> {
    use time::format_description::well_known::Rfc3339;
    let parse = |name: &str| {
        time::OffsetDateTime::parse(get_s(item, name)?, &Rfc3339).map_err(StoreError::internal)
    };
    Ok(scim_proto::resource::Meta {
        created: parse("created")?,
        last_modified: parse("lastModified")?,
        version: get_u64(item, "version")?,
    })
}

/// The stored JSON document of a resource item.
pub(crate) fn read_doc(
    item: &Item,
) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    serde_json::from_str(get_s(item, "doc")?).map_err(StoreError::internal)
}

pub(crate) fn read_id(item: &Item) -> Result<ResourceId, StoreError> {
    ResourceId::parse(get_s(item, crate::tables::SK)?)
        .ok_or_else(|| StoreError::Internal("stored resource id is malformed".into()))
}

/// The current time truncated to milliseconds: what we render is what we store.
pub(crate) fn now() -> time::OffsetDateTime {
    let t = time::OffsetDateTime::now_utc();
    t.replace_nanosecond(u32::from(t.millisecond()) * 1_000_000)
        .unwrap_or(t)
}

// --- Membership items -------------------------------------------------------
// One item per (group, member) plus its mirror per (member, group): adding or
// removing a member touches two items whatever the group's size, and a user's
// groups are one query away.

pub(crate) fn member_key(tenant: &TenantId, group: &str, user: &str) -> Item {
    key(pk(tenant, &format!("GM#{group}")), user)
}

pub(crate) fn member_of_key(tenant: &TenantId, user: &str, group: &str) -> Item {
    key(pk(tenant, &format!("UG#{user}")), group)
}

pub(crate) fn members_pk(tenant: &TenantId, group: &str) -> String {
    pk(tenant, &format!("GM#{group}"))
}

pub(crate) fn member_of_pk(tenant: &TenantId, user: &str) -> String {
    pk(tenant, &format!("UG#{user}"))
}

/// The membership item and its mirror for (group, user), as put.
pub(crate) fn membership_items(tenant: &TenantId, group: &str, user: &str) -> [Item; 2] {
    let mut m = member_key(tenant, group, user);
    m.insert("group".into(), s(group));
    let mut r = member_of_key(tenant, user, group);
    r.insert("user".into(), s(user));
    [m, r]
}

/// A user's *membership head*: one item in the partition of the user's
/// memberships (sort key `#`, which no group id can be), written only by
/// membership changes and user deletes. Every group add sets its
/// [`JOINED`] token in the transaction that writes the membership (and only
/// if the user exists). A user delete reads the head before the user's
/// groups and is conditioned on the token it read: a membership added in
/// between makes the delete fail (and retry) instead of leaving a group
/// listing a user that does not exist. It lives with the memberships, not on
/// the user item, so that the Groups function never writes a user.
pub(crate) fn membership_head(tenant: &TenantId, user: &str) -> Item {
    key(member_of_pk(tenant, user), MEMBERSHIP_HEAD)
}

/// Sort key of the membership head (not a valid resource id).
pub(crate) const MEMBERSHIP_HEAD: &str = "#";

/// The membership head's token of the last group add.
pub(crate) const JOINED: &str = "joined";

/// On the membership head: the user is deleted but memberships that did not
/// fit the delete's transaction are left (see [`crate::deletion`]).
pub(crate) const UNFINISHED: &str = "unfinished";

/// Deletes the membership pairs of `pairs` (group, user) in batches. With
/// `mark_users`, each user's groups are also marked changed for the Members
/// sync (see [`membership_mark`]).
pub(crate) async fn delete_memberships(
    table: &Table,
    tenant: &TenantId,
    pairs: &[(String, String)],
    mark_users: bool,
) -> Result<(), StoreError> {
    // A batch may not name an item twice.
    let pairs: std::collections::BTreeSet<&(String, String)> = pairs.iter().collect();
    let mut requests = Vec::with_capacity(pairs.len() * 3);
    if mark_users {
        requests.extend(user_marks(tenant, pairs.iter().map(|(_, u)| u.as_str()))?);
    }
    for (g, u) in pairs {
        requests.push(delete_request(member_key(tenant, g, u))?);
        requests.push(delete_request(member_of_key(tenant, u, g))?);
    }
    batch_write(&table.client, &table.name, requests).await
}

// --- Membership marks ----------------------------------------------------------
// A user's `groups` (as the Members sync maps them) change when a membership
// changes and when one of its groups is renamed; neither changes the user
// item, so neither reaches the dirty set. Each such change also writes a mark
// in the tenant's GSYNC partition: `U#<user id>` (that user's groups changed)
// or `G#<group id>` (the group was renamed: all its members' groups changed).
// A mark carries a fresh token, so the sync removes one only if no change
// came after it read the mark.

/// Partition of the membership marks.
pub(crate) const MARKS: &str = "GSYNC";
/// Sort-key prefixes of the marks.
pub(crate) const USER_MARK: &str = "U#";
pub(crate) const GROUP_MARK: &str = "G#";
/// The attribute holding a mark's token.
pub(crate) const MARK: &str = "mark";

/// A mark item for `subject` (`U#<user id>` or `G#<group id>`).
pub(crate) fn membership_mark(tenant: &TenantId, subject: String) -> Item {
    let mut item = key(pk(tenant, MARKS), subject);
    item.insert(MARK.into(), s(uuid::Uuid::new_v4().simple().to_string()));
    item
}

/// Put requests marking `users` (each once: a batch may not name an item
/// twice). They go before the membership writes they describe: a change
/// interrupted half-way leaves a mark too many, never one too few.
pub(crate) fn user_marks<'a>(
    tenant: &TenantId,
    users: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<aws_sdk_dynamodb::types::WriteRequest>, StoreError> {
    users
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|u| put_request(membership_mark(tenant, format!("{USER_MARK}{u}"))))
        .collect()
}
