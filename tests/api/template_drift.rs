//! The tables that the local stack creates must be the ones in the template:
//! one definition (`scim_store::tables`), and tests that fail on drift.
//!
//! The template is parsed as YAML; CloudFormation short tags (`!Ref`, `!Sub`)
//! come through as tagged values.

use std::collections::BTreeSet;

use scim_store::tables::{self, TableSpec};
use serde_yaml::{Mapping, Value};

use crate::helpers::spawn_app;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
const STORE_CONFIG_RS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/scim-store/src/config.rs"
);
const USERS_FUNCTION_MAIN_RS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../functions/scim-users/src/main.rs"
);
const USERS_FUNCTION: &str = "ScimUsersFunction";

/// Resource types that create a DynamoDB table.
const TABLE_TYPES: &[&str] = &["AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"];

fn template() -> Value {
    let text = std::fs::read_to_string(TEMPLATE).expect("infra/template.yaml is readable");
    serde_yaml::from_str(&text).expect("infra/template.yaml is valid YAML")
}

fn resources(template: &Value) -> &Mapping {
    template["Resources"]
        .as_mapping()
        .expect("the template has a Resources mapping")
}

fn resource<'a>(template: &'a Value, logical_id: &str) -> &'a Value {
    let found = &template["Resources"][logical_id];
    assert!(
        !found.is_null(),
        "the template has no resource {logical_id}"
    );
    found
}

fn string_at<'a>(value: &'a Value, key: &str, context: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{context}: {key} is a plain string, got {:?}", value[key]))
}

/// `[(attribute, HASH|RANGE)]` in template order.
fn template_key_schema(table: &Value, logical_id: &str) -> Vec<(String, String)> {
    table["Properties"]["KeySchema"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{logical_id}: KeySchema is a plain list"))
        .iter()
        .map(|k| {
            (
                string_at(k, "AttributeName", logical_id).to_owned(),
                string_at(k, "KeyType", logical_id).to_owned(),
            )
        })
        .collect()
}

/// `{(attribute, S|N|B)}`; a duplicate definition fails.
fn template_attribute_definitions(table: &Value, logical_id: &str) -> BTreeSet<(String, String)> {
    let defs = table["Properties"]["AttributeDefinitions"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{logical_id}: AttributeDefinitions is a plain list"));
    let set: BTreeSet<(String, String)> = defs
        .iter()
        .map(|d| {
            (
                string_at(d, "AttributeName", logical_id).to_owned(),
                string_at(d, "AttributeType", logical_id).to_owned(),
            )
        })
        .collect();
    assert_eq!(
        set.len(),
        defs.len(),
        "{logical_id}: an attribute is defined twice"
    );
    set
}

fn template_index_names(table: &Value, kind: &str) -> Vec<String> {
    table["Properties"][kind]
        .as_sequence()
        .map(|indexes| {
            indexes
                .iter()
                .map(|i| i["IndexName"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn spec_key_schema(spec: &TableSpec) -> Vec<(String, String)> {
    let mut keys = vec![(spec.hash_key.name.to_owned(), "HASH".to_owned())];
    keys.extend(
        spec.range_key
            .map(|r| (r.name.to_owned(), "RANGE".to_owned())),
    );
    keys
}

fn spec_attribute_definitions(spec: &TableSpec) -> BTreeSet<(String, String)> {
    std::iter::once(spec.hash_key)
        .chain(spec.range_key)
        .map(|k| (k.name.to_owned(), k.attr_type.to_owned()))
        .collect()
}

/// The logical id a `!Ref X` (or `{Ref: X}`) points at.
fn ref_target(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        Value::Mapping(map) if map.len() == 1 => map.get("Ref").and_then(Value::as_str),
        _ => None,
    }
}

// --- Code → template ---------------------------------------------------------

#[test]
fn every_table_spec_is_a_dynamodb_table_of_the_template() {
    // Arrange
    let template = template();

    for spec in tables::ALL {
        // Act
        let table = resource(&template, spec.logical_id);

        // Assert
        assert_eq!(
            table["Type"].as_str(),
            Some("AWS::DynamoDB::Table"),
            "{}",
            spec.logical_id
        );
    }
}

#[test]
fn every_template_table_has_the_key_schema_of_its_spec() {
    // Arrange
    let template = template();

    for spec in tables::ALL {
        // Act
        let keys = template_key_schema(resource(&template, spec.logical_id), spec.logical_id);

        // Assert
        assert_eq!(keys, spec_key_schema(spec), "{}", spec.logical_id);
    }
}

#[test]
fn every_template_table_defines_exactly_its_key_attributes_with_their_types() {
    // Arrange
    let template = template();

    for spec in tables::ALL {
        // Act
        let defs =
            template_attribute_definitions(resource(&template, spec.logical_id), spec.logical_id);

        // Assert
        assert_eq!(
            defs,
            spec_attribute_definitions(spec),
            "{}",
            spec.logical_id
        );
    }
}

#[test]
fn every_template_table_has_the_secondary_indexes_of_its_spec() {
    // Arrange
    let template = template();

    for spec in tables::ALL {
        let table = resource(&template, spec.logical_id);

        // Act
        let global = template_index_names(table, "GlobalSecondaryIndexes");
        let local = template_index_names(table, "LocalSecondaryIndexes");

        // Assert
        let expected: Vec<String> = spec
            .global_secondary_indexes
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(global, expected, "{}: global indexes", spec.logical_id);
        assert!(
            local.is_empty(),
            "{}: the spec has no local indexes, the template has {local:?}",
            spec.logical_id
        );
    }
}

#[test]
fn every_template_table_is_billed_per_request_as_ensure_table_creates_it() {
    // Arrange
    let template = template();

    for spec in tables::ALL {
        // Act
        let billing = &resource(&template, spec.logical_id)["Properties"]["BillingMode"];

        // Assert
        assert_eq!(
            billing.as_str(),
            Some("PAY_PER_REQUEST"),
            "{}",
            spec.logical_id
        );
    }
}

// --- Template → code ---------------------------------------------------------

#[test]
fn every_table_of_the_template_has_a_spec_in_the_code() {
    // Arrange
    let template = template();
    let specs: BTreeSet<&str> = tables::ALL.iter().map(|s| s.logical_id).collect();

    // Act
    let in_template: BTreeSet<&str> = resources(&template)
        .iter()
        .filter(|(_, r)| r["Type"].as_str().is_some_and(|t| TABLE_TYPES.contains(&t)))
        .filter_map(|(id, _)| id.as_str())
        .collect();

    // Assert
    assert!(
        !in_template.is_empty(),
        "the template declares no table at all"
    );
    assert_eq!(
        in_template, specs,
        "tables in infra/template.yaml vs scim_store::tables::ALL"
    );
}

// --- The local stack ---------------------------------------------------------

#[tokio::test]
async fn the_table_the_local_stack_creates_has_the_templates_definition() {
    // Arrange
    let app = spawn_app().await;
    let template = template();
    let declared = resource(&template, tables::DIRECTORY.logical_id);

    // Act
    let described = app
        .dynamodb
        .describe_table()
        .table_name(&app.config.directory_table)
        .send()
        .await
        .expect("describe_table");

    // Assert
    let table = described.table().expect("a table description");
    let keys: Vec<(String, String)> = table
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_owned(),
                k.key_type().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        template_key_schema(declared, tables::DIRECTORY.logical_id)
    );
    let defs: BTreeSet<(String, String)> = table
        .attribute_definitions()
        .iter()
        .map(|d| {
            (
                d.attribute_name().to_owned(),
                d.attribute_type().as_str().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        defs,
        template_attribute_definitions(declared, tables::DIRECTORY.logical_id)
    );
    let global: Vec<String> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name().map(str::to_owned))
        .collect();
    assert_eq!(
        global,
        template_index_names(declared, "GlobalSecondaryIndexes")
    );
    assert!(table.local_secondary_indexes().is_empty());
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str()),
        declared["Properties"]["BillingMode"].as_str()
    );
}

// --- The function's environment ---------------------------------------------

/// The variables `StoreConfig::from_env` reads, taken from its source so that
/// a new one cannot be added without this test seeing it.
fn variables_read_by_store_config() -> Vec<String> {
    let source = std::fs::read_to_string(STORE_CONFIG_RS).expect("config.rs is readable");
    let start = source
        .find("pub fn from_env")
        .expect("StoreConfig::from_env exists");
    let body = &source[start..];
    let body = &body[..body[1..].find("pub fn").map_or(body.len(), |end| end + 1)];
    body.split("var(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_variable_the_users_function_reads_is_set_by_the_template() {
    // Arrange
    let template = template();
    let main_rs =
        std::fs::read_to_string(USERS_FUNCTION_MAIN_RS).expect("scim-users main.rs is readable");
    assert!(
        main_rs.contains("StoreConfig::from_env()"),
        "the scim-users function is configured by StoreConfig::from_env"
    );
    let read = variables_read_by_store_config();
    assert!(
        read.iter().any(|v| v == "DIRECTORY_TABLE")
            && read.iter().any(|v| v == "TOKEN_SECRET_PREFIX"),
        "the variables were found in config.rs: {read:?}"
    );

    // Act
    let function = resource(&template, USERS_FUNCTION);
    let global = &template["Globals"]["Function"]["Environment"]["Variables"];
    let own = &function["Properties"]["Environment"]["Variables"];

    // Assert
    for name in &read {
        assert!(
            !own[name.as_str()].is_null() || !global[name.as_str()].is_null(),
            "{USERS_FUNCTION} does not set {name}"
        );
    }
}

#[test]
fn the_users_function_points_at_the_directory_table_and_may_use_it_and_its_token_secrets() {
    // Arrange
    let template = template();
    let function = resource(&template, USERS_FUNCTION);
    let vars = &function["Properties"]["Environment"]["Variables"];

    // Act
    let table = ref_target(&vars["DIRECTORY_TABLE"]);
    let prefix = match &vars["TOKEN_SECRET_PREFIX"] {
        Value::Tagged(t) if t.tag == "Sub" => t.value.as_str(),
        other => other.as_str(),
    }
    .expect("TOKEN_SECRET_PREFIX is a string or a !Sub of one");

    // Assert
    assert_eq!(table, Some(tables::DIRECTORY.logical_id));
    let statements = function["Properties"]["Policies"][0]["Statement"]
        .as_sequence()
        .expect("the function has an inline policy");
    let secret_resources: Vec<&str> = statements
        .iter()
        .filter(|s| {
            s["Action"].as_str() == Some("secretsmanager:GetSecretValue")
                || s["Action"]
                    .as_sequence()
                    .is_some_and(|a| a.iter().any(|x| x == "secretsmanager:GetSecretValue"))
        })
        .filter_map(|s| match &s["Resource"] {
            Value::Tagged(t) if t.tag == "Sub" => t.value.as_str(),
            other => other.as_str(),
        })
        .collect();
    assert!(
        secret_resources
            .iter()
            .any(|r| r.ends_with(&format!(":secret:{prefix}*"))),
        "GetSecretValue is allowed on {secret_resources:?}, the tokens live under {prefix}"
    );
    let table_arn = format!("{}.Arn", tables::DIRECTORY.logical_id);
    assert!(
        statements.iter().any(|s| {
            s["Action"]
                .as_sequence()
                .is_some_and(|a| a.iter().any(|x| x == "dynamodb:TransactWriteItems" || x == "dynamodb:PutItem"))
                && matches!(&s["Resource"], Value::Tagged(t) if t.tag == "GetAtt" && t.value.as_str() == Some(table_arn.as_str()))
        }),
        "the function may write {table_arn}"
    );
}

// --- Expiring items ----------------------------------------------------------

/// `(attribute, enabled)` of a table's `TimeToLiveSpecification`, if any.
fn template_ttl(table: &Value, logical_id: &str) -> Option<(String, bool)> {
    let spec = &table["Properties"]["TimeToLiveSpecification"];
    if spec.is_null() {
        return None;
    }
    Some((
        string_at(spec, "AttributeName", logical_id).to_owned(),
        spec["Enabled"]
            .as_bool()
            .unwrap_or_else(|| panic!("{logical_id}: TimeToLiveSpecification.Enabled is a bool")),
    ))
}

#[test]
fn both_tables_expire_items_by_the_ttl_attribute() {
    // Arrange
    let template = template();

    // Act
    let members = template_ttl(
        resource(&template, tables::MEMBERS.logical_id),
        tables::MEMBERS.logical_id,
    );
    let directory = template_ttl(
        resource(&template, tables::DIRECTORY.logical_id),
        tables::DIRECTORY.logical_id,
    );

    // Assert: one-time portal links expire; in the directory, only the
    // activity log's entries carry the attribute (30 days).
    assert_eq!(members, Some(("ttl".to_owned(), true)));
    assert_eq!(
        directory,
        Some((scim_store::activity::TTL.to_owned(), true))
    );
}

#[tokio::test]
async fn portal_link_items_carry_the_members_tables_ttl_attribute_in_epoch_seconds() {
    // Arrange
    let app = spawn_app().await;
    let template = template();
    let (attribute, _) = template_ttl(
        resource(&template, tables::MEMBERS.logical_id),
        tables::MEMBERS.logical_id,
    )
    .expect("the Members table has a TTL");
    let table = app.config.members_table.clone().expect("a members table");
    let links = scim_store::portal::DynamoPortalLinks::new(app.dynamodb.clone(), &table);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs();
    let expires = now + 300;

    // Act
    use scim_store::portal::PortalLinkStore as _;
    links
        .put_link(&app.tenant, "drift-secret", expires as i64, None)
        .await
        .expect("link stored");
    let items = app
        .dynamodb
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("T#{}#PORTAL", app.tenant)),
        )
        .send()
        .await
        .expect("query the tenant's links")
        .items
        .unwrap_or_default();

    // Assert: DynamoDB deletes an item once its TTL attribute, a number of
    // seconds since the epoch, is past; a link must outlive its expiry (to
    // be told "expired") and must not live for ever.
    assert_eq!(items.len(), 1, "one link item under T#<tenant>#PORTAL");
    let ttl: u64 = match items[0].get(&attribute) {
        Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => n.parse().expect("an integer"),
        other => panic!("the link item's {attribute} is not a number: {other:?}"),
    };
    assert!(
        ttl >= expires && ttl <= expires + 7 * 86_400,
        "ttl {ttl} vs expires {expires}"
    );
}
