//! Small DynamoDB helpers shared by the stores. This module owns item
//! attribute access, key building and the resource metadata encoding; its
//! children own the rest, each re-exported here so the stores name
//! everything as `dynamo::...`:
//! - `tx`: requests that retry (transactions with conflict retry, batch
//!   writes and reads, key queries) and the DynamoDB limits they respect.
//!   Changes with the retry and failure classification rules.
//! - `table`: [`Table`], the builders of conditional writes (versioned,
//!   owned, claimed) and the single-partition reads. Changes when a store
//!   needs a new kind of write or read.
//! - `writes`: the transaction items (put, delete, update under a
//!   condition: absent, versioned, owned, unchanged), claims and counters.
//!   Changes when a store needs a new kind of condition.
//! - `membership`: the membership items, the membership head and the
//!   membership marks for the Members sync. Changes with the membership
//!   layout.

mod membership;
mod table;
mod tx;
mod writes;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use scim_proto::ids::{ResourceId, TenantId};

use crate::StoreError;

pub(crate) use membership::*;
pub(crate) use table::*;
pub(crate) use tx::*;
pub(crate) use writes::*;

/// An SDK request or item we could not build: our fault, kept as the source.
pub(crate) fn build_failed(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::internal("building a DynamoDB request", e)
}

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
        _ => Err(StoreError::Internal(
            format!("item attribute {name} is missing or not a string").into(),
        )),
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
            .map_err(|e| StoreError::internal(format!("item attribute {name} is not a u64"), e)),
        _ => Err(StoreError::Internal(
            format!("item attribute {name} is missing or not a number").into(),
        )),
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

/// The tenant's counters partition and item (see [`crate::calls`]).
pub(crate) const STATS: &str = "STATS";
/// The counters in the [`stats_key`] item.
pub(crate) const USERS_COUNTER: &str = "users";
pub(crate) const GROUPS_COUNTER: &str = "groups";

/// The tenant's deletes left to the background: partition
/// `T#<tenant>#CLEANUP`, sort key `CLEANUP#G#<group id>` or
/// `CLEANUP#U#<user id>` (see [`crate::deletion`]); also the users to
/// deprovision, `CLEANUP#D#<user id>` (see [`crate::users::Deprovision`]).
pub(crate) const CLEANUP: &str = "CLEANUP";
pub(crate) const CLEANUP_GROUP: &str = "CLEANUP#G#";
pub(crate) const CLEANUP_USER: &str = "CLEANUP#U#";
/// A user disabled or deleted, for immediate deprovisioning (same
/// partition, so the directory stream's one filter passes both).
pub(crate) const CLEANUP_DEPROVISION: &str = "CLEANUP#D#";

/// The cleanup entry of a deleted group or user (`kind`: a `CLEANUP_*`).
pub(crate) fn cleanup_item(tenant: &TenantId, kind: &str, id: &str) -> Item {
    key(pk(tenant, CLEANUP), format!("{kind}{id}"))
}

/// The tenant's cleanup entries of one kind: (sort key, resource id).
pub(crate) async fn pending_cleanups(
    t: &Table,
    tenant: &TenantId,
    kind: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let keys = query_sort_keys(&t.client, &t.name, pk(tenant, CLEANUP), None).await?;
    Ok(keys
        .into_iter()
        .filter_map(|sk| {
            let id = sk.strip_prefix(kind)?.to_owned();
            Some((sk, id))
        })
        .collect())
}

/// Drops a cleanup entry once everything it stood for is gone.
pub(crate) async fn drop_cleanup(t: &Table, tenant: &TenantId, sk: &str) -> Result<(), StoreError> {
    t.client
        .delete_item()
        .table_name(&t.name)
        .set_key(Some(key(pk(tenant, CLEANUP), sk)))
        .send()
        .await
        .map_err(crate::error::from_sdk)?;
    Ok(())
}

/// The tenant's counters item.
pub(crate) fn stats_key(tenant: &TenantId) -> Item {
    key(pk(tenant, STATS), STATS)
}

/// Resource metadata as item attributes.
pub(crate) fn put_meta(
    item: &mut Item,
    meta: &scim_proto::resource::Meta,
) -> Result<(), StoreError> {
    use time::format_description::well_known::Rfc3339;
    let fmt = |t: time::OffsetDateTime| {
        t.format(&Rfc3339)
            .map_err(|e| StoreError::internal("formatting a time", e))
    };
    item.insert("version".into(), n(meta.version));
    item.insert("created".into(), s(fmt(meta.created)?));
    item.insert("lastModified".into(), s(fmt(meta.last_modified)?));
    Ok(())
}

pub(crate) fn read_meta(item: &Item) -> Result<scim_proto::resource::Meta, StoreError> {
    use time::format_description::well_known::Rfc3339;
    let parse = |name: &str| {
        time::OffsetDateTime::parse(get_s(item, name)?, &Rfc3339)
            .map_err(|e| StoreError::internal("parsing a stored time", e))
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
    serde_json::from_str(get_s(item, "doc")?)
        .map_err(|e| StoreError::internal("parsing a stored document", e))
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
