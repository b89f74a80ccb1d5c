//! [`Table`]: one DynamoDB table and the write builders every store uses
//! (versioned puts and deletes for optimistic concurrency, owned deletes,
//! uniqueness claims, attribute-guarded writes, counters) and its
//! single-partition reads (items, pages, newest first, the n-th key).

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use scim_proto::ids::{ResourceId, TenantId};

use super::tx::batch_get;
use super::{
    Item, build_failed, get_opt_s, get_s, get_u64, is_condition_failure, key, n, s, stats_key,
    storable_key,
};
use crate::StoreError;
use crate::error::from_sdk;

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

    /// Which of the items `key` gives for `ids` exist, as the resource ids
    /// in their sort keys, in id order (strongly consistent).
    pub(crate) async fn existing_ids<I: Ord>(
        &self,
        ids: impl IntoIterator<Item = I>,
        key: impl Fn(I) -> Item,
    ) -> Result<Vec<ResourceId>, StoreError> {
        let mut found: Vec<ResourceId> = self
            .get_unique(ids, key)
            .await?
            .iter()
            .filter_map(|item| get_opt_s(item, crate::tables::SK).and_then(ResourceId::parse))
            .collect();
        found.sort();
        Ok(found)
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
            .map_err(build_failed)?;
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
            .map_err(build_failed)?;
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
            .delete(del.build().map_err(build_failed)?)
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
            .map_err(build_failed)?;
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
            .delete(del.build().map_err(build_failed)?)
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
            .update(update.build().map_err(build_failed)?)
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
            .map_err(build_failed)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A transaction item that writes nothing and fails unless `key` exists.
    pub(crate) fn exists(&self, key: Item) -> Result<TransactWriteItem, StoreError> {
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.name)
            .set_key(Some(key))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_failed)?;
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
            .map_err(build_failed)?;
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
                usize::try_from(get_u64(&item, counter)?)
                    .map_err(|e| StoreError::internal("reading a counter", e))?
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
