//! Mutability, invalid paths, canonical names, order and atomicity.

use super::*;

// --- Mutability and invalid paths ---------------------------------------

#[test]
fn read_only_attributes_are_refused_with_mutability() {
    for (op, path) in [
        ("replace", "id"),
        ("remove", "id"),
        ("replace", "meta"),
        ("replace", "meta.lastModified"),
        ("add", "groups"),
        ("replace", "schemas"),
        ("replace", "urn:ietf:params:scim:schemas:core:2.0:User:id"),
    ] {
        // Arrange
        let ops = json!([{"op": op, "path": path, "value": "x"}]);
        // Act
        let err = patch_error(&USER_RESOURCE, alice(), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::Mutability), "{op} {path}");
    }
}

#[test]
fn a_path_less_key_naming_a_read_only_attribute_is_refused_naming_it() {
    // Arrange
    let ops = json!([{"op": "replace", "value": {"displayName": "x", "meta": {"version": "1"}}}]);
    // Act
    let err = patch_error(&USER_RESOURCE, alice(), ops);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::Mutability));
    assert!(err.detail.contains("meta"), "{}", err.detail);
}

#[test]
fn user_name_and_external_id_are_writable() {
    // Arrange
    let ops = json!([{"op": "replace", "path": "externalId", "value": "x2"}, {"op": "remove", "path": "externalId"}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert!(!doc.contains_key("externalId"));
}

#[test]
fn a_filter_on_a_single_valued_attribute_is_invalid_path() {
    // Arrange
    let ops =
        json!([{"op": "replace", "path": "name[givenName eq \"Alice\"].familyName", "value": "x"}]);
    // Act
    let err = patch_error(&USER_RESOURCE, alice(), ops);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
}

#[test]
fn a_sub_attribute_of_a_simple_attribute_is_invalid_path() {
    // Arrange
    let ops = json!([{"op": "replace", "path": "userName.foo", "value": "x"}]);
    // Act
    let err = patch_error(&USER_RESOURCE, alice(), ops);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
}

#[test]
fn an_unknown_core_attribute_is_stored_as_sent() {
    // Arrange: an Entra custom mapping without a schema URN.
    let ops = json!([{"op": "Add", "path": "badgeNumber", "value": "B-12"}]);
    // Act
    let doc = patch_user(bob(), ops);
    // Assert
    assert_eq!(doc["badgeNumber"], "B-12");
}
// --- Canonical names ----------------------------------------------------

#[test]
fn written_names_get_the_schema_casing() {
    // Arrange
    let ops = json!([
        {"op": "replace", "path": "USERNAME", "value": "A@contoso.com"},
        {"op": "replace", "path": "Name.GIVENNAME", "value": "Al"},
        {"op": "add", "path": format!("{}:Department", ENTERPRISE.to_ascii_uppercase()), "value": "HR"}
    ]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(doc["userName"], "A@contoso.com");
    assert_eq!(doc["name"]["givenName"], "Al");
    assert_eq!(doc[ENTERPRISE]["department"], "HR");
    let keys: Vec<&str> = doc.keys().map(String::as_str).collect();
    assert!(
        !keys.iter().any(|k| *k == "USERNAME" || *k == "Name"),
        "{keys:?}"
    );
    assert_eq!(doc["name"].as_object().map(Map::len), Some(2));
}

#[test]
fn replacing_an_attribute_keeps_its_position_in_the_document() {
    // Arrange
    let ops = json!([{"op": "replace", "path": "userName", "value": "z@contoso.com"}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(doc.keys().next().map(String::as_str), Some("userName"));
}
// --- Order, atomicity, change detection ---------------------------------

#[test]
fn operations_apply_in_order() {
    // Arrange: the validator's "Multiple Ops on same attribute".
    let ops = json!([
        {"op": "remove", "path": "displayName"},
        {"op": "add", "path": "displayName", "value": "Added"},
        {"op": "replace", "path": "displayName", "value": "Replaced"}
    ]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(doc["displayName"], "Replaced");
}

#[test]
fn multiple_operations_on_different_attributes_all_apply() {
    // Arrange: the validator's "Multiple Ops on different attributes".
    let ops = json!([
        {"op": "remove", "path": "nickName"},
        {"op": "replace", "path": "externalId", "value": "new-ext"},
        {"op": "add", "path": "title", "value": "Engineer"}
    ]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert!(!doc.contains_key("nickName"));
    assert_eq!(doc["externalId"], "new-ext");
    assert_eq!(doc["title"], "Engineer");
}

#[test]
fn a_request_whose_second_operation_fails_leaves_the_document_unchanged() {
    // Arrange
    let ops = json!([
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "replace", "path": "active", "value": "maybe"}
    ]);
    // Act
    let err = patch_error(&USER_RESOURCE, alice(), ops);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
}

#[test]
fn a_group_request_whose_second_operation_fails_reports_no_member_changes() {
    // Arrange
    let doc = obj(json!({"displayName": "G"}));
    let ops = json!([
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "replace", "path": "id", "value": "x"}
    ]);
    // Act
    let err = patch_error(&GROUP_RESOURCE, doc, ops);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::Mutability));
}

#[test]
fn a_patch_that_sets_current_values_reports_no_change() {
    // Arrange: Entra may re-send what the resource already holds.
    let ops = json!([
        {"op": "Replace", "path": "displayName", "value": "Alice Smith"},
        {"op": "Replace", "path": "active", "value": "True"},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "alice@contoso.com"}
    ]);
    // Act
    let (doc, outcome) = patch(&USER_RESOURCE, alice(), ops);
    // Assert
    assert_eq!(doc, alice());
    assert!(!outcome.changed);
    assert!(outcome.member_changes.is_empty());
}

#[test]
fn a_patch_that_changes_something_reports_a_change() {
    // Arrange
    let ops = json!([{"op": "Replace", "path": "active", "value": "False"}]);
    // Act
    let (_, outcome) = patch(&USER_RESOURCE, alice(), ops);
    // Assert
    assert!(outcome.changed);
}
