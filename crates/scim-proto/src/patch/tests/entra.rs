//! Entra's two dialects: one operation per path (A), path-less flattened keys (B).

use super::*;

// --- Dialect A: one operation per attribute, with a path ----------------

#[test]
fn default_dialect_replaces_the_work_email_and_family_name() {
    // Arrange: the request from entra.md §2.3 A.
    let ops = json!([
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
    ]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(
        doc["emails"],
        json!([{"value": "updatedEmail@microsoft.com", "type": "work", "primary": true}])
    );
    assert_eq!(
        doc["name"],
        json!({"givenName": "Alice", "familyName": "updatedFamilyName"})
    );
}

#[test]
fn capitalised_add_on_a_single_valued_attribute_sets_it() {
    // Arrange
    let ops = json!([{"op": "Add", "path": "nickName", "value": "Babs"}, {"op": "Add", "path": "title", "value": "CEO"}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(doc["nickName"], "Babs");
    assert_eq!(doc["title"], "CEO");
}

#[test]
fn every_simple_top_level_path_entra_sends_is_set() {
    // Arrange
    let ops = json!([
        {"op": "Replace", "path": "userName", "value": "a2@contoso.com"},
        {"op": "Replace", "path": "displayName", "value": "A 2"},
        {"op": "Replace", "path": "externalId", "value": "a2"},
        {"op": "Add", "path": "preferredLanguage", "value": "en-US"},
        {"op": "Replace", "path": "name.givenName", "value": "Al"},
        {"op": "Add", "path": "name.formatted", "value": "Al Smith"}
    ]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(doc["userName"], "a2@contoso.com");
    assert_eq!(doc["displayName"], "A 2");
    assert_eq!(doc["externalId"], "a2");
    assert_eq!(doc["preferredLanguage"], "en-US");
    assert_eq!(
        doc["name"],
        json!({"givenName": "Al", "familyName": "Smith", "formatted": "Al Smith"})
    );
}

#[test]
fn active_boolean_strings_are_stored_as_booleans_in_any_case() {
    for (sent, stored) in [
        ("False", false),
        ("True", true),
        ("false", false),
        ("TRUE", true),
    ] {
        // Arrange
        let ops = json!([{"op": "Replace", "path": "active", "value": sent}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc["active"], json!(stored), "{sent}");
    }
}

#[test]
fn active_as_a_json_boolean_is_accepted() {
    // Arrange: the aadOptscim062020 disable.
    let ops = json!([{"op": "replace", "path": "active", "value": false}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(doc["active"], false);
}

#[test]
fn a_non_boolean_string_for_active_is_invalid_value() {
    // Arrange
    let ops = json!([{"op": "replace", "path": "active", "value": "nope"}]);
    // Act
    let err = patch_error(&USER_RESOURCE, alice(), ops);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    assert!(err.detail.contains("active"), "{}", err.detail);
}

#[test]
fn add_to_a_work_email_filter_creates_the_element_when_the_user_has_no_email() {
    // Arrange
    let ops = json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "bob@contoso.com"}]);
    // Act
    let doc = patch_user(bob(), ops);
    // Assert
    assert_eq!(
        doc["emails"],
        json!([{"type": "work", "value": "bob@contoso.com"}])
    );
}

#[test]
fn replace_of_a_mobile_phone_creates_it_beside_the_existing_work_phone() {
    // Arrange
    let mut user = bob();
    user.insert(
        "phoneNumbers".into(),
        json!([{"type": "work", "value": "+1 555 0100"}]),
    );
    let ops = json!([
        {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0199"},
        {"op": "Replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 555 0101"}
    ]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert_eq!(
        doc["phoneNumbers"],
        json!([{"type": "work", "value": "+1 555 0101"}, {"type": "mobile", "value": "+1 555 0199"}])
    );
}

#[test]
fn replace_of_a_work_address_sub_attribute_sets_only_that_sub_attribute() {
    // Arrange
    let mut user = bob();
    user.insert(
        "addresses".into(),
        json!([{"type": "work", "locality": "Paris", "country": "FR"}, {"type": "home", "locality": "Lyon"}]),
    );
    let ops = json!([
        {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Nice"},
        {"op": "Add", "path": "addresses[type eq \"work\"].postalCode", "value": "06000"}
    ]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert_eq!(
        doc["addresses"],
        json!([{"type": "work", "locality": "Nice", "country": "FR", "postalCode": "06000"}, {"type": "home", "locality": "Lyon"}])
    );
}

#[test]
fn a_value_filter_matches_case_insensitively_as_the_schema_says() {
    // Arrange
    let mut user = bob();
    user.insert(
        "emails".into(),
        json!([{"type": "Work", "value": "old@contoso.com"}]),
    );
    let ops = json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"}]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert_eq!(
        doc["emails"],
        json!([{"type": "Work", "value": "new@contoso.com"}])
    );
}

#[test]
fn an_enterprise_urn_path_sets_the_attribute_creating_the_extension_object() {
    // Arrange
    let ops = json!([
        {"op": "Add", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "42"},
        {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "R&D"}
    ]);
    // Act
    let doc = patch_user(bob(), ops);
    // Assert
    assert_eq!(
        doc[ENTERPRISE],
        json!({"employeeNumber": "42", "department": "R&D"})
    );
}

#[test]
fn a_custom_extension_urn_path_creates_the_custom_extension_object() {
    // Arrange
    let ops = json!([{"op": "Add", "path": format!("{CUSTOM}:costCode"), "value": "CC-7"}]);
    // Act
    let doc = patch_user(bob(), ops);
    // Assert
    assert_eq!(doc[CUSTOM], json!({"costCode": "CC-7"}));
}

#[test]
fn a_custom_extension_attribute_is_written_into_the_existing_object_whatever_the_urn_case() {
    // Arrange
    let mut user = bob();
    user.insert(CUSTOM.into(), json!({"costCode": "CC-1", "site": "HQ"}));
    let ops = json!([{"op": "replace", "path": format!("{}:COSTCODE", CUSTOM.to_ascii_lowercase()), "value": "CC-2"}]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert_eq!(doc[CUSTOM], json!({"costCode": "CC-2", "site": "HQ"}));
    assert_eq!(doc.len(), 3);
}

#[test]
fn a_request_mixing_replace_and_add_applies_both() {
    // Arrange: the shape reported in laravel-scim-server#34.
    let ops = json!([
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "a@contoso.com"},
        {"op": "Replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
        {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "Ops"}
    ]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(doc["emails"][0]["value"], "a@contoso.com");
    assert_eq!(
        doc["addresses"],
        json!([{"type": "work", "streetAddress": "1 Main St"}])
    );
    assert_eq!(doc[ENTERPRISE]["department"], "Ops");
}
// --- Dialect B: path-less operations with flattened keys ----------------

#[test]
fn path_less_replace_with_dotted_and_urn_keys_sets_each_attribute() {
    // Arrange: the request from entra.md §2.3 B.
    let ops = json!([
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "TestMhvaes@test.microsoft.com"},
        {"op": "replace", "value": {
            "displayName": "Bjfe",
            "name.givenName": "Kkom",
            "name.familyName": "Unua",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
        }}
    ]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(doc["emails"][0]["value"], "TestMhvaes@test.microsoft.com");
    assert_eq!(doc["displayName"], "Bjfe");
    assert_eq!(
        doc["name"],
        json!({"givenName": "Kkom", "familyName": "Unua"})
    );
    assert_eq!(
        doc[ENTERPRISE],
        json!({"department": "Sales", "employeeNumber": "Aklq"})
    );
    assert!(!doc.contains_key("name.givenName"));
}

#[test]
fn path_less_add_with_dotted_keys_merges_into_an_absent_name() {
    // Arrange: scimitar#123 shows op "add" path-less with dotted keys.
    let ops = json!([{"op": "add", "value": {"name.givenName": "Bob", "name.familyName": "Jones", "active": "False"}}]);
    // Act
    let doc = patch_user(bob(), ops);
    // Assert
    assert_eq!(
        doc["name"],
        json!({"givenName": "Bob", "familyName": "Jones"})
    );
    assert_eq!(doc["active"], false);
}

#[test]
fn path_less_value_with_a_nested_extension_object_merges_attribute_by_attribute() {
    // Arrange
    let ops = json!([{"op": "replace", "value": {
        ENTERPRISE: {"employeeNumber": "7", "manager": "mgr-1"},
        CUSTOM: {"costCode": "CC-9"}
    }}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(
        doc[ENTERPRISE],
        json!({"department": "Sales", "employeeNumber": "7", "manager": {"value": "mgr-1"}})
    );
    assert_eq!(doc[CUSTOM], json!({"costCode": "CC-9"}));
}

#[test]
fn a_path_naming_the_whole_extension_merges_or_removes_it() {
    // Arrange
    let add = json!([{"op": "add", "path": ENTERPRISE, "value": {"costCenter": "C1"}}]);
    let remove = json!([{"op": "remove", "path": ENTERPRISE}]);
    // Act
    let added = patch_user(alice(), add);
    let removed = patch_user(alice(), remove);
    // Assert
    assert_eq!(
        added[ENTERPRISE],
        json!({"department": "Sales", "costCenter": "C1"})
    );
    assert!(!removed.contains_key(ENTERPRISE));
}

#[test]
fn path_less_add_or_replace_needs_an_object_value() {
    for value in [json!("x"), json!(null), json!([{"displayName": "x"}])] {
        // Arrange
        let ops = json!([{"op": "replace", "value": value}]);
        // Act
        let err = patch_error(&USER_RESOURCE, alice(), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{value}");
    }
}

#[test]
fn path_less_update_of_user_name_renames_the_user() {
    // Arrange: the validator's "Update User userName".
    let ops = json!([{"op": "replace", "value": {"userName": "renamed@contoso.com"}}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert_eq!(doc["userName"], "renamed@contoso.com");
}

#[test]
fn path_less_keys_get_schema_casing_and_unknown_keys_keep_the_existing_spelling() {
    // Arrange
    let mut user = bob();
    user.insert("favouriteColour".into(), json!("blue"));
    let ops = json!([{"op": "replace", "value": {"DISPLAYNAME": "Bob", "FavouriteColour": "red", "shoeSize": "44"}}]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert_eq!(doc["displayName"], "Bob");
    assert_eq!(doc["favouriteColour"], "red");
    assert_eq!(doc["shoeSize"], "44");
    assert!(!doc.contains_key("DISPLAYNAME") && !doc.contains_key("FavouriteColour"));
}

#[test]
fn a_path_less_key_that_is_not_a_valid_path_is_invalid_path() {
    // Arrange
    let ops = json!([{"op": "replace", "value": {"name..givenName": "x"}}]);
    // Act
    let err = patch_error(&USER_RESOURCE, alice(), ops);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
    assert!(err.detail.contains("name..givenName"), "{}", err.detail);
}

#[test]
fn path_less_nulls_unassign_attributes() {
    // Arrange
    let ops = json!([{"op": "replace", "value": {"nickName": null, "name.givenName": null}}]);
    // Act
    let doc = patch_user(alice(), ops);
    // Assert
    assert!(!doc.contains_key("nickName"));
    assert_eq!(doc["name"], json!({"familyName": "Smith"}));
}
