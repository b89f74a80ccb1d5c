//! Read-only attributes echoed in path-less values (Okta's group rename).

use super::*;

const OWN: &str = "9f1c2c7e-3a52-4f0e-9f4e-1d2b3c4d5e6f";

#[test]
fn okta_rename_with_the_groups_own_id_in_the_value_renames_it() {
    // Arrange
    let mut doc = obj(json!({"displayName": "Old"}));
    let req = request(json!([{"op": "replace", "value": {"id": OWN, "displayName": "New"}}]));
    // Act
    let req = req.without_echoes(OWN).unwrap();
    let outcome = apply(&mut doc, &req, &GROUP_RESOURCE).unwrap();
    // Assert
    assert!(outcome.changed);
    assert_eq!(doc, obj(json!({"displayName": "New"})));
}

#[test]
fn the_own_id_in_another_case_and_echoed_meta_and_schemas_are_ignored() {
    // Arrange
    let mut doc = obj(json!({"displayName": "Old"}));
    let req = request(json!([{"op": "Replace", "value": {
        "ID": OWN.to_uppercase(),
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "meta": {"resourceType": "Group"},
        "displayName": "New",
    }}]));
    // Act
    let req = req.without_echoes(OWN).unwrap();
    apply(&mut doc, &req, &GROUP_RESOURCE).unwrap();
    // Assert
    assert_eq!(doc, obj(json!({"displayName": "New"})));
}

#[test]
fn another_resources_id_in_the_value_is_a_mutability_error() {
    // Arrange
    let req = request(json!([{"op": "replace", "value": {"id": "other", "displayName": "New"}}]));
    // Act
    let err = req.without_echoes(OWN).unwrap_err();
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::Mutability));
    assert!(err.detail.contains("other"), "{}", err.detail);
}

#[test]
fn an_id_under_a_path_is_still_read_only() {
    // Arrange
    let mut doc = obj(json!({"displayName": "Old"}));
    let req = request(json!([{"op": "replace", "path": "id", "value": OWN}]));
    // Act
    let req = req.without_echoes(OWN).unwrap();
    let err = apply(&mut doc, &req, &GROUP_RESOURCE).unwrap_err();
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::Mutability));
}
