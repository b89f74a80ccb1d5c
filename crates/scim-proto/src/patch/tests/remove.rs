//! Removes, and null or empty values that unassign.

use super::*;

// --- Remove -------------------------------------------------------------

#[test]
fn removing_a_sub_attribute_keeps_the_other_sub_attributes() {
    // Arrange
    let ops = json!([{"op": "remove", "path": "name.givenName"}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(doc["name"], json!({"familyName": "Smith"}));
}

#[test]
fn removing_the_last_sub_attribute_drops_the_complex_attribute() {
    // Arrange
    let ops = json!([{"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.familyName"}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert!(!doc.contains_key("name"));
}

#[test]
fn removing_an_absent_attribute_is_a_no_op() {
    // Arrange
    let ops = json!([
        {"op": "remove", "path": "title"},
        {"op": "remove", "path": "addresses[type eq \"work\"]"},
        {"op": "remove", "path": format!("{CUSTOM}:costCode")},
        {"op": "remove", "path": manager_path()}
    ]);
    // Act
    let (doc, outcome) = patch(&USER_RESOURCE, alice(), ops);
    // Assert
    assert_eq!(doc, alice());
    assert!(!outcome.changed);
}

#[test]
fn remove_with_a_value_filter_removes_only_the_matching_elements() {
    // Arrange
    let mut user = bob();
    user.insert(
        "emails".into(),
        json!([{"type": "work", "value": "w@x"}, {"type": "home", "value": "h@x"}]),
    );
    let ops = json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert_eq!(doc["emails"], json!([{"type": "home", "value": "h@x"}]));
}

#[test]
fn remove_with_a_value_filter_and_sub_attribute_removes_only_that_sub_attribute() {
    // Arrange
    let mut user = bob();
    user.insert(
        "addresses".into(),
        json!([{"type": "work", "locality": "Paris", "country": "FR"}]),
    );
    let ops = json!([{"op": "remove", "path": "addresses[type eq \"work\"].locality"}]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert_eq!(doc["addresses"], json!([{"type": "work", "country": "FR"}]));
}

#[test]
fn removing_the_last_element_drops_the_array() {
    // Arrange
    let ops = json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert!(!doc.contains_key("emails"));
}

#[test]
fn removing_the_last_enterprise_attribute_drops_the_extension_object() {
    // Arrange
    let ops = json!([{"op": "remove", "path": format!("{ENTERPRISE}:department")}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert!(!doc.contains_key(ENTERPRISE));
}

#[test]
fn remove_of_a_multi_valued_attribute_with_a_value_array_removes_only_the_listed_elements() {
    // Arrange
    let mut user = bob();
    user.insert(
        "roles".into(),
        json!([{"value": "Admin"}, {"value": "User"}]),
    );
    let ops = json!([{"op": "remove", "path": "roles", "value": [{"value": "admin"}]}]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert_eq!(doc["roles"], json!([{"value": "User"}]));
}

#[test]
fn removing_a_multi_valued_attribute_without_a_value_removes_it_all() {
    // Arrange
    let ops = json!([{"op": "remove", "path": "emails"}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert!(!doc.contains_key("emails"));
}
// --- Null and empty values (SCIM_Null_Update) ---------------------------

#[test]
fn a_null_value_in_add_or_replace_unassigns_the_attribute() {
    // Arrange
    let ops = json!([
        {"op": "replace", "path": "nickName", "value": null},
        {"op": "add", "path": "name.familyName", "value": null},
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": null}
    ]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert!(!doc.contains_key("nickName"));
    assert_eq!(doc["name"], json!({"givenName": "Alice"}));
    assert_eq!(doc["emails"], json!([{"type": "work", "primary": true}]));
}

#[test]
fn an_empty_string_is_stored_as_sent() {
    // Arrange
    let ops = json!([
        {"op": "replace", "path": "nickName", "value": ""},
        {"op": "replace", "path": "name.givenName", "value": ""},
        {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": ""}
    ]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(doc["nickName"], "");
    assert_eq!(doc["name"]["givenName"], "");
    assert_eq!(doc[ENTERPRISE]["department"], "");
}
