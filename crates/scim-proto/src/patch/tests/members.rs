//! Group membership changes from every members operation form.

use super::*;

// --- Group members (entra.md §2.8) --------------------------------------

#[test]
fn add_members_with_one_member_becomes_an_add_change() {
    // Arrange
    let ops = json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}]);
    // Act
    let changes = members(ops);
    // Assert
    assert_eq!(changes, [MemberChange::Add(ids(&["f648f8d5ea4e4cd38e9c"]))]);
}

#[test]
fn add_members_with_many_members_keeps_their_order_without_duplicates() {
    // Arrange
    let ops = json!([{"op": "add", "path": "members", "value": [
        {"value": "u1", "display": "U 1", "type": "User"}, {"value": "u2"}, {"value": "u1"}, {"value": "u3"}
    ]}]);
    // Act
    let changes = members(ops);
    // Assert
    assert_eq!(changes, [MemberChange::Add(ids(&["u1", "u2", "u3"]))]);
}

#[test]
fn remove_members_with_a_value_array_removes_only_the_listed_members() {
    // Arrange: the default dialect, which must never clear the group.
    let ops = json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u1091"}, {"value": "u7"}]}]);
    // Act
    let changes = members(ops);
    // Assert
    assert_eq!(changes, [MemberChange::Remove(ids(&["u1091", "u7"]))]);
}

#[test]
fn remove_members_with_a_value_filter_path_removes_that_member() {
    // Arrange: the aadOptscim062020 dialect and the validator.
    let ops = json!([{"op": "remove", "path": "members[value eq \"7f4bc1a3-285e-48ae-8202-5accb43efb0e\"]"}]);
    // Act
    let changes = members(ops);
    // Assert
    assert_eq!(
        changes,
        [MemberChange::Remove(ids(&[
            "7f4bc1a3-285e-48ae-8202-5accb43efb0e"
        ]))]
    );
}

#[test]
fn remove_members_with_or_ed_value_filters_removes_each_member() {
    // Arrange
    let ops = json!([{"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"}]);
    // Act
    let changes = members(ops);
    // Assert
    assert_eq!(changes, [MemberChange::Remove(ids(&["a", "b"]))]);
}

#[test]
fn remove_members_with_another_filter_is_rejected() {
    // Arrange
    let ops = json!([{"op": "remove", "path": "members[display eq \"Bob\"]"}]);
    // Act
    let err = patch_error(&GROUP_RESOURCE, obj(json!({"displayName": "G"})), ops);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
}

#[test]
fn remove_members_without_ids_removes_every_member() {
    for op in [
        json!({"op": "remove", "path": "members"}),
        json!({"op": "remove", "path": "members", "value": null}),
        json!({"op": "Remove", "path": "members", "value": []}),
    ] {
        // Arrange
        let ops = json!([op]);
        // Act
        let changes = members(ops);
        // Assert
        assert_eq!(changes, [MemberChange::RemoveAll], "{op}");
    }
}

#[test]
fn replace_members_becomes_a_replace_change() {
    // Arrange: the validator adds a member with "replace".
    let ops = json!([{"op": "replace", "path": "members", "value": [{"value": "u1"}]}]);
    // Act
    let changes = members(ops);
    // Assert
    assert_eq!(changes, [MemberChange::Replace(ids(&["u1"]))]);
}

#[test]
fn add_then_remove_of_a_member_in_one_request_keeps_both_changes_in_order() {
    // Arrange: the validator's "Multiple Ops on same attribute".
    let ops = json!([
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "remove", "path": "members[value eq \"u1\"]"}
    ]);
    // Act
    let changes = members(ops);
    // Assert
    assert_eq!(
        changes,
        [
            MemberChange::Add(ids(&["u1"])),
            MemberChange::Remove(ids(&["u1"]))
        ]
    );
}

#[test]
fn path_less_add_or_replace_with_a_members_key_changes_members_and_other_attributes() {
    // Arrange
    let doc = obj(json!({"displayName": "Sales"}));
    let ops = json!([
        {"op": "add", "value": {"members": [{"value": "u1"}]}},
        {"op": "replace", "value": {"displayName": "Sales EU", "members": [{"value": "u2"}]}}
    ]);
    // Act
    let (after, outcome) = patch(&GROUP_RESOURCE, doc, ops);
    // Assert
    assert_eq!(after, obj(json!({"displayName": "Sales EU"})));
    assert_eq!(
        outcome.member_changes,
        [
            MemberChange::Add(ids(&["u1"])),
            MemberChange::Replace(ids(&["u2"]))
        ]
    );
    assert!(outcome.changed);
}

#[test]
fn a_member_without_a_string_value_is_invalid_value() {
    for bad in [
        json!([{"display": "Bob"}]),
        json!([{"value": 7}]),
        json!([{"value": ""}]),
        json!(true),
    ] {
        // Arrange
        let ops = json!([{"op": "add", "path": "members", "value": bad}]);
        // Act
        let err = patch_error(&GROUP_RESOURCE, obj(json!({"displayName": "G"})), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{bad}");
    }
}

#[test]
fn member_changes_alone_mark_the_outcome_changed() {
    // Arrange
    let ops = json!([{"op": "remove", "path": "members[value eq \"gone\"]"}]);
    // Act
    let (_, outcome) = patch(&GROUP_RESOURCE, obj(json!({"displayName": "G"})), ops);
    // Assert
    assert!(outcome.changed);
}

#[test]
fn group_display_name_and_external_id_are_replaced_with_or_without_a_path() {
    // Arrange: entra.md §2.9 and the validator's path-less forms.
    let doc = obj(json!({"displayName": "Old", "externalId": "e1"}));
    let ops = json!([
        {"op": "Replace", "path": "displayName", "value": "1879db59-updatedDisplayName"},
        {"op": "replace", "value": {"externalId": "e2"}}
    ]);
    // Act
    let (after, _) = patch(&GROUP_RESOURCE, doc, ops);
    // Assert
    assert_eq!(
        after,
        obj(json!({"displayName": "1879db59-updatedDisplayName", "externalId": "e2"}))
    );
}

#[test]
fn members_on_a_user_is_an_ordinary_unknown_attribute() {
    // Arrange
    let ops = json!([{"op": "add", "path": "members", "value": [{"value": "x"}]}]);
    // Act
    let (doc, outcome) = patch(&USER_RESOURCE, bob(), ops);
    // Assert
    assert_eq!(doc["members"], json!([{"value": "x"}]));
    assert!(outcome.member_changes.is_empty());
}

#[test]
fn bare_id_strings_are_accepted_as_members() {
    // Arrange: Microsoft's Postman collection adds a member as a string.
    let ops = json!([
        {"op": "add", "path": "members", "value": "u1"},
        {"op": "add", "path": "members", "value": ["u2", {"Value": "u3"}]}
    ]);
    // Act
    let changes = members(ops);
    // Assert
    assert_eq!(
        changes,
        [
            MemberChange::Add(ids(&["u1"])),
            MemberChange::Add(ids(&["u2", "u3"]))
        ]
    );
}

#[test]
fn add_or_replace_on_a_members_filter_or_sub_attribute_is_invalid_path() {
    for (op, path) in [
        ("add", "members[value eq \"u1\"]"),
        ("replace", "members.value"),
        ("remove", "members.value"),
    ] {
        // Arrange
        let ops = json!([{"op": op, "path": path, "value": [{"value": "u1"}]}]);
        // Act
        let err = patch_error(&GROUP_RESOURCE, obj(json!({"displayName": "G"})), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{op} {path}");
    }
}
