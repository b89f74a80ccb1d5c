//! [`Table`]: one DynamoDB table and the write builders every store uses
//! (versioned puts and deletes for optimistic concurrency, owned deletes,
//! uniqueness claims, attribute-guarded writes, counters) and its
//! single-partition reads (items, pages, newest first, the n-th key).

use aws_sdk_dynamodb::types::AttributeValue;
use scim_proto::ids::{ResourceId, TenantId};

use super::tx::{batch_get, partition_query, query_sort_keys};
use super::{Item, conditional, get_opt_s, get_s, get_u64, key, stats_key, storable_key};
use crate::StoreError;
use crate::error::from_sdk;

/// The counter `name` of a tenant's counters item (0 until first counted).
pub(crate) fn counter_in(item: &Item, name: &str) -> Result<usize, StoreError> {
    if !item.contains_key(name) {
        return Ok(0);
    }
    usize::try_from(get_u64(item, name)?).map_err(|e| StoreError::internal("reading a counter", e))
}

/// One table and the write builders both stores use: versioned puts and
/// deletes for optimistic concurrency, uniqueness claims, counters.
#[derive(Clone)]
pub(crate) struct Table {
    pub(crate) client: crate::lazy::DynamoDb,
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
    /// Table `name` through `client` (built on first use, see
    /// [`crate::lazy`]).
    pub(crate) fn new(client: impl Into<crate::lazy::DynamoDb>, name: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            name: name.into(),
        }
    }

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

    /// The sort keys of partition `pk` that are resource ids, in order, at
    /// most `limit` of them (strongly consistent).
    pub(crate) async fn sort_key_ids(
        &self,
        pk: String,
        limit: Option<usize>,
    ) -> Result<Vec<ResourceId>, StoreError> {
        let keys = query_sort_keys(&self.client, &self.name, pk, limit).await?;
        Ok(keys.iter().filter_map(|k| ResourceId::parse(k)).collect())
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
        Ok(conditional(result)?.is_some())
    }

    /// Strongly consistent reads of `keys` (each named once) in one
    /// `BatchGetItem`. Order of the result is unspecified.
    pub(crate) async fn get_items(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        batch_get(&self.client, &self.name, keys).await
    }

    /// Reads a tenant counter (one strongly consistent item read).
    pub(crate) async fn counter(
        &self,
        tenant: &TenantId,
        counter: &str,
    ) -> Result<usize, StoreError> {
        match self.get(stats_key(tenant)).await? {
            Some(item) => counter_in(&item, counter),
            None => Ok(0),
        }
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
        let out = partition_query(&self.client, &self.name, pk)
            .scan_index_forward(false)
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
            let out = partition_query(&self.client, &self.name, pk.clone())
                .projection_expression("sk")
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
        let out = partition_query(&self.client, &self.name, pk)
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
