//! The enterprise manager in every form Entra and its validator send.

use super::*;

// --- Manager (entra.md §2.4, SCIM_Update_Manager) -----------------------

#[test]
fn manager_add_with_a_bare_id_is_stored_as_a_value_object() {
    // Arrange
    let ops = json!([{"op": "Add", "path": manager_path(), "value": "271"}]);
    // Act
    let doc = patch_user(bob(), ops);
    // Assert
    assert_eq!(doc[ENTERPRISE], json!({"manager": {"value": "271"}}));
}

#[test]
fn manager_replace_with_another_id_changes_it() {
    // Arrange
    let mut user = alice();
    user.insert(
        ENTERPRISE.into(),
        json!({"department": "Sales", "manager": {"value": "m1"}}),
    );
    let ops = json!([{"op": "replace", "path": manager_path(), "value": "m2"}]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert_eq!(
        doc[ENTERPRISE],
        json!({"department": "Sales", "manager": {"value": "m2"}})
    );
}

#[test]
fn manager_replace_with_an_empty_string_removes_it_and_the_emptied_extension() {
    // Arrange
    let mut user = bob();
    user.insert(ENTERPRISE.into(), json!({"manager": {"value": "m1"}}));
    let ops = json!([{"op": "replace", "path": manager_path(), "value": ""}]);
    // Act
    let doc = patch_user(user, ops);
    // Assert
    assert!(!doc.contains_key(ENTERPRISE), "{doc:?}");
}

#[test]
fn manager_as_an_object_is_stored_and_an_empty_object_value_removes_it() {
    // Arrange: the validator's shapes.
    let set = json!([{"op": "add", "path": manager_path(), "value": {"value": "AXTKDLNRKMKT"}}]);
    let clear = json!([{"op": "replace", "path": manager_path(), "value": {"value": ""}}]);
    // Act
    let with_manager = patch_user(alice(), set);
    let without = patch_user(with_manager.clone(), clear);
    // Assert
    assert_eq!(
        with_manager[ENTERPRISE]["manager"],
        json!({"value": "AXTKDLNRKMKT"})
    );
    assert_eq!(without[ENTERPRISE], json!({"department": "Sales"}));
}

#[test]
fn the_legacy_manager_array_on_an_unqualified_path_uses_the_first_value() {
    // Arrange: the older tutorial's "Example 5".
    let ops = json!([{"op": "Add", "path": "manager", "value": [{"$ref": "https://x/Users/26118915", "value": "26118915"}]}]);
    // Act
    let doc = patch_user(bob(), ops);
    // Assert
    assert_eq!(doc[ENTERPRISE]["manager"]["value"], "26118915");
    assert!(!doc.contains_key("manager"));
}

#[test]
fn manager_null_or_remove_clears_it_and_keeps_other_enterprise_attributes() {
    // Arrange
    let mut user = alice();
    user.insert(
        ENTERPRISE.into(),
        json!({"department": "Sales", "manager": {"value": "m1"}}),
    );
    let null = json!([{"op": "replace", "path": manager_path(), "value": null}]);
    let remove = json!([{"op": "remove", "path": manager_path()}]);
    // Act
    let after_null = patch_user(user.clone(), null);
    let after_remove = patch_user(user, remove);
    // Assert
    assert_eq!(after_null[ENTERPRISE], json!({"department": "Sales"}));
    assert_eq!(after_remove[ENTERPRISE], json!({"department": "Sales"}));
}

#[test]
fn the_manager_value_sub_path_sets_and_clears_the_manager() {
    // Arrange
    let set = json!([{"op": "add", "path": format!("{ENTERPRISE}:manager.value"), "value": "m3"}]);
    let clear =
        json!([{"op": "replace", "path": format!("{ENTERPRISE}:manager.value"), "value": ""}]);
    // Act
    let with_manager = patch_user(bob(), set);
    let without = patch_user(with_manager.clone(), clear);
    // Assert
    assert_eq!(
        with_manager[ENTERPRISE],
        json!({"manager": {"value": "m3"}})
    );
    assert!(!without.contains_key(ENTERPRISE));
}

#[test]
fn a_manager_that_is_not_an_id_is_invalid_value() {
    // Arrange
    let ops = json!([{"op": "add", "path": manager_path(), "value": 42}]);
    // Act
    let err = patch_error(&USER_RESOURCE, bob(), ops);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
}
