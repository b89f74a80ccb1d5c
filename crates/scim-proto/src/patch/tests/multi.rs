//! Multi-valued and complex attributes: append, replace, filters, primary.

use super::*;

// --- Multi-valued attributes --------------------------------------------

#[test]
fn add_on_a_multi_valued_attribute_appends_and_skips_exact_duplicates() {
    // Arrange
    let ops = json!([{"op": "add", "path": "emails", "value": [
        {"value": "alice@contoso.com", "type": "work", "primary": true},
        {"value": "al@home.example", "type": "home"}
    ]}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(
        doc["emails"],
        json!([{"value": "alice@contoso.com", "type": "work", "primary": true}, {"value": "al@home.example", "type": "home"}])
    );
}

#[test]
fn replace_on_a_multi_valued_attribute_replaces_the_whole_list() {
    // Arrange: AssertiveAppRoleAssignmentsComplex.
    let mut user = bob();
    user.insert("roles".into(), json!([{"value": "Old"}]));
    let ops = json!([{"op": "replace", "path": "roles", "value": [
        {"primary": false, "type": "WindowsAzureActiveDirectoryRole", "display": "User", "value": "User"}
    ]}]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert_eq!(
        doc["roles"],
        json!([{"primary": false, "type": "WindowsAzureActiveDirectoryRole", "display": "User", "value": "User"}])
    );
}

#[test]
fn a_single_object_added_to_a_multi_valued_attribute_is_one_element() {
    // Arrange
    let ops = json!([{"op": "add", "path": "phoneNumbers", "value": {"type": "fax", "value": "+1 555 0000"}}]);
    // Act
    let doc = patch_user(bob(), ops);
    // Assert
    assert_eq!(
        doc["phoneNumbers"],
        json!([{"type": "fax", "value": "+1 555 0000"}])
    );
}

#[test]
fn boolean_strings_and_key_casing_inside_written_elements_are_canonicalised() {
    // Arrange: the validator sends roles with "primary": "True".
    let ops = json!([
        {"op": "add", "path": "roles", "value": [{"Primary": "True", "Value": "Admin"}]},
        {"op": "add", "path": "emails", "value": [{"value": "b@x", "primary": "false"}]}
    ]);
    // Act
    let doc = patch_user(bob(), ops);
    // Assert
    assert_eq!(doc["roles"], json!([{"primary": true, "value": "Admin"}]));
    assert_eq!(doc["emails"], json!([{"value": "b@x", "primary": false}]));
}

#[test]
fn a_primary_true_string_filter_creates_an_element_with_a_boolean_primary() {
    // Arrange: SingleAppRoleAssignment → roles[primary eq "True"].value.
    let ops = json!([{"op": "Add", "path": "roles[primary eq \"True\"].value", "value": "Admin"}]);
    // Act
    let doc = patch_user(bob(), ops);
    // Assert
    assert_eq!(doc["roles"], json!([{"primary": true, "value": "Admin"}]));
}

#[test]
fn a_boolean_sub_attribute_path_coerces_strings() {
    // Arrange
    let ops =
        json!([{"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "False"}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(doc["emails"][0]["primary"], false);
}

#[test]
fn making_one_element_primary_clears_primary_on_the_others() {
    // Arrange
    let ops = json!([{"op": "add", "path": "emails", "value": [{"value": "new@x", "type": "home", "primary": "True"}]}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(
        doc["emails"],
        json!([
            {"value": "alice@contoso.com", "type": "work", "primary": false},
            {"value": "new@x", "type": "home", "primary": true}
        ])
    );
}

#[test]
fn a_filter_without_sub_attribute_merges_the_object_into_matching_elements() {
    // Arrange
    let ops = json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "w2@x", "display": "Work"}}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(
        doc["emails"],
        json!([{"value": "w2@x", "type": "work", "primary": true, "display": "Work"}])
    );
}

#[test]
fn a_filter_without_sub_attribute_creates_an_element_when_none_matches() {
    // Arrange
    let ops = json!([{"op": "add", "path": "emails[type eq \"home\"]", "value": {"value": "h@x"}}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(doc["emails"][1], json!({"type": "home", "value": "h@x"}));
}

#[test]
fn a_filter_with_and_ed_equalities_creates_an_element_with_each_field() {
    // Arrange
    let ops = json!([{"op": "add", "path": "emails[type eq \"work\" and primary eq true].value", "value": "b@x"}]);
    // Act
    let doc = patch_user(bob(), ops);
    // Assert
    assert_eq!(
        doc["emails"],
        json!([{"type": "work", "primary": true, "value": "b@x"}])
    );
}

#[test]
fn a_filter_that_cannot_describe_a_new_element_is_no_target_when_nothing_matches() {
    // Arrange
    let ops =
        json!([{"op": "replace", "path": "emails[value co \"nobody\"].type", "value": "work"}]);
    // Act
    let err = patch_error(&USER_RESOURCE, alice(), ops);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::NoTarget));
}

#[test]
fn a_filtered_whole_element_value_must_be_an_object() {
    // Arrange
    let ops = json!([{"op": "add", "path": "emails[type eq \"work\"]", "value": "w@x"}]);
    // Act
    let err = patch_error(&USER_RESOURCE, alice(), ops);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
}

#[test]
fn a_primary_true_string_filter_updates_the_existing_primary_role() {
    // Arrange
    let mut user = bob();
    user.insert(
        "roles".into(),
        json!([{"primary": true, "value": "User"}, {"value": "Reader"}]),
    );
    let ops =
        json!([{"op": "Replace", "path": "roles[primary eq \"True\"].value", "value": "Admin"}]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert_eq!(
        doc["roles"],
        json!([{"primary": true, "value": "Admin"}, {"value": "Reader"}])
    );
}

#[test]
fn a_sub_attribute_path_on_a_multi_valued_attribute_applies_to_every_element() {
    // Arrange
    let mut user = bob();
    user.insert("emails".into(), json!([{"value": "a@x"}, {"value": "b@x"}]));
    let ops = json!([{"op": "replace", "path": "emails.type", "value": "work"}]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert_eq!(
        doc["emails"],
        json!([{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "work"}])
    );
}

#[test]
fn a_dotted_path_on_an_unknown_attribute_creates_an_object() {
    // Arrange
    let ops = json!([{"op": "add", "path": "badge.number", "value": "7"}]);
    // Act
    let doc = patch_user(bob(), ops);
    // Assert
    assert_eq!(doc["badge"], json!({"number": "7"}));
}

#[test]
fn a_path_naming_a_custom_extension_merges_into_it() {
    // Arrange
    let mut user = bob();
    user.insert(CUSTOM.into(), json!({"site": "HQ"}));
    let ops =
        json!([{"op": "replace", "path": CUSTOM, "value": {"costCode": "CC-3", "site": null}}]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert_eq!(doc[CUSTOM], json!({"costCode": "CC-3"}));
}
// --- Complex attributes -------------------------------------------------

#[test]
fn replace_of_a_complex_attribute_keeps_the_unspecified_sub_attributes() {
    // Arrange: RFC 7644 §3.5.2.3.
    let ops = json!([{"op": "replace", "path": "name", "value": {"givenName": "Alicia", "middleName": "M"}}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(
        doc["name"],
        json!({"givenName": "Alicia", "familyName": "Smith", "middleName": "M"})
    );
}

#[test]
fn a_complex_attribute_given_a_scalar_is_invalid_value() {
    // Arrange
    let ops = json!([{"op": "replace", "path": "name", "value": "Alice Smith"}]);
    // Act
    let err = patch_error(&USER_RESOURCE, alice(), ops);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
}
