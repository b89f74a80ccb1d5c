//! The DynamoDB tables, defined once here. `infra/template.yaml` declares the
//! same key schema (an integration test fails if the two drift), and the local
//! stack and the test harness create tables from these definitions.
//!
//! # Directory table item layout
//!
//! Every key starts with the tenant, so no query can cross tenants. All
//! lookups Entra makes are answered from base-table keys (never a GSI), which
//! makes them strongly consistent: a user is findable the instant its 201 is
//! sent.
//!
//! | item              | pk                        | sk          |
//! |-------------------|---------------------------|-------------|
//! | user              | `T#<tenant>#USER`         | `<id>`      |
//! | userName claim    | `T#<tenant>#USERNAME`     | `<lowercased userName>` |
//! | externalId claim  | `T#<tenant>#USEREXT`      | `<externalId>` |
//! | email index       | `T#<tenant>#EMAIL#<lowercased email>` | `<user id>` |
//! | group             | `T#<tenant>#GROUP`        | `<id>`      |
//! | displayName claim | `T#<tenant>#GROUPNAME`    | `<lowercased displayName>` |
//! | externalId claim  | `T#<tenant>#GROUPEXT`     | `<externalId>` |
//! | membership        | `T#<tenant>#GM#<group id>` | `<user id>` |
//! | membership mirror | `T#<tenant>#UG#<user id>` | `<group id>` |
//! | tenant counters   | `T#<tenant>#STATS`        | `STATS` (`users`, `groups`) |
//! | identity provider's last call | `T#<tenant>#STATS` | `CALL` (`calledAt`, `provider`) |
//! | user changed since the last Members sync | `T#<tenant>#DIRTY` | `<user id>` (`version`, `deleted`) |
//! | groups changed since the last Members sync | `T#<tenant>#GSYNC` | `U#<user id>` or `G#<group id>` (`mark`) |
//! | user's membership head | `T#<tenant>#UG#<user id>` | `#` (`joined`; `unfinished` + last meta) |
//! | group delete left to the background | `T#<tenant>#CLEANUP` | `CLEANUP#G#<group id>` |
//! | user disabled or deleted, to deprovision | `T#<tenant>#CLEANUP` | `CLEANUP#D#<user id>` (`version`) |
//! | activity log entry (30 days, `ttl`) | `T#<tenant>#ACTIVITY` | `<time>#<random>` |
//!
//! The membership head gets a fresh `joined` token from every group add, in
//! the transaction that writes the membership; a user delete is conditioned
//! on the token it read before reading the user's groups, so it cannot miss
//! a membership added meanwhile. It also records a user delete whose
//! memberships did not all fit its transaction (see [`crate::deletion`]).
//!
//! Claims make uniqueness a conditional put inside the same transaction as
//! the resource write, so two concurrent creates cannot both succeed.
//! Membership is an item per pair (and its mirror), never a list inside the
//! group item: a group can hold any number of members, and a PATCH costs in
//! proportion to the members it names.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

use crate::StoreError;

/// A key attribute: name and scalar type (`S`, `N`, `B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAttr {
    pub name: &'static str,
    pub attr_type: &'static str,
}

/// The parts of a table definition that code depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Logical id of the table in the SAM template.
    pub logical_id: &'static str,
    pub hash_key: KeyAttr,
    pub range_key: Option<KeyAttr>,
    /// Global secondary indexes (none: every lookup is a strongly
    /// consistent base-table read).
    pub global_secondary_indexes: &'static [&'static str],
}

pub const PK: &str = "pk";
pub const SK: &str = "sk";

/// The directory: users, groups and their lookup items.
pub const DIRECTORY: TableSpec = keyed_by_pk_sk("DirectoryTable");

/// The application's Members, their links to SCIM users, and the Members
/// sync's state (mapping, lease, checkpoint, reports). Item layout in
/// [`crate::members`] and [`crate::sync_state`].
pub const MEMBERS: TableSpec = keyed_by_pk_sk("MembersTable");

/// A table keyed by the strings `pk` and `sk`, without secondary indexes
/// (both tables: every lookup is a strongly consistent base-table read).
const fn keyed_by_pk_sk(logical_id: &'static str) -> TableSpec {
    TableSpec {
        logical_id,
        hash_key: KeyAttr {
            name: PK,
            attr_type: "S",
        },
        range_key: Some(KeyAttr {
            name: SK,
            attr_type: "S",
        }),
        global_secondary_indexes: &[],
    }
}

/// Every table the stack defines.
pub const ALL: &[TableSpec] = &[DIRECTORY, MEMBERS];

/// Creates `spec` as table `name` (on-demand billing) unless it exists, and
/// waits until it is active. Used by the local stack and the tests; deployed
/// tables come from the SAM template.
pub async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    spec: &TableSpec,
    name: &str,
) -> Result<(), StoreError> {
    let mut keys = vec![spec.hash_key];
    keys.extend(spec.range_key);
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (i, k) in keys.iter().enumerate() {
        let key_type = if i == 0 {
            KeyType::Hash
        } else {
            KeyType::Range
        };
        req = req
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(k.name)
                    .attribute_type(ScalarAttributeType::from(k.attr_type))
                    .build()
                    .map_err(crate::dynamo::build_failed)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(k.name)
                    .key_type(key_type)
                    .build()
                    .map_err(crate::dynamo::build_failed)?,
            );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_in_use_exception()) => {}
        Err(e) => return Err(crate::error::from_sdk(e)),
    }
    for _ in 0..50 {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(crate::error::from_sdk)?;
        let active = out
            .table()
            .and_then(|t| t.table_status())
            .is_some_and(|s| *s == aws_sdk_dynamodb::types::TableStatus::Active);
        if active {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(StoreError::Unavailable(
        format!("table {name} did not become active").into(),
    ))
}
