//! Reading PATCH bodies: op casing, schemas, Operations, paths, values.

use super::*;

// --- Request parsing ---------------------------------------------------

#[test]
fn op_names_are_accepted_in_any_case() {
    // Arrange
    let spellings = [
        "Add", "ADD", "add", "Replace", "replace", "REMOVE", "Remove",
    ];
    // Act
    let kinds: Vec<PatchOpKind> = spellings
        .iter()
        .map(|s| PatchOpKind::parse(s).unwrap())
        .collect();
    // Assert
    use PatchOpKind::{Add, Remove, Replace};
    assert_eq!(kinds, [Add, Add, Add, Replace, Replace, Remove, Remove]);
}

#[test]
fn an_unknown_op_is_invalid_syntax_naming_the_op() {
    // Arrange
    let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "move", "path": "userName", "value": "x"}]});
    // Act
    let err = parse_error(body);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax));
    assert!(err.detail.contains("\"move\""), "{}", err.detail);
}

#[test]
fn a_body_without_the_patch_op_schema_is_invalid_syntax() {
    // Arrange
    let missing = json!({"Operations": [{"op": "add", "path": "nickName", "value": "x"}]});
    let wrong =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": []});
    // Act
    let errors = [
        parse_error(missing),
        parse_error(wrong),
        parse_error(json!([1])),
    ];
    // Assert
    for err in errors {
        assert_eq!(
            err.scim_type,
            Some(ScimType::InvalidSyntax),
            "{}",
            err.detail
        );
    }
}

#[test]
fn schemas_and_operations_keys_are_matched_ignoring_case() {
    // Arrange
    let body = json!({
        "Schemas": [PATCH_OP_SCHEMA.to_ascii_uppercase()],
        "operations": [{"OP": "Add", "Path": "nickName", "Value": "Babs"}]
    });
    // Act
    let req = PatchRequest::from_json(body).unwrap();
    // Assert
    assert_eq!(req.operations.len(), 1);
    assert_eq!(req.operations[0].op, PatchOpKind::Add);
    assert_eq!(req.operations[0].value, Some(json!("Babs")));
}

#[test]
fn an_empty_or_missing_operations_array_is_invalid_syntax() {
    // Arrange
    let empty = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": []});
    let missing = json!({"schemas": [PATCH_OP_SCHEMA]});
    // Act / Assert
    for body in [empty, missing] {
        assert_eq!(parse_error(body).scim_type, Some(ScimType::InvalidSyntax));
    }
}

#[test]
fn more_than_the_maximum_number_of_operations_is_rejected() {
    // Arrange
    let op = json!({"op": "add", "path": "nickName", "value": "x"});
    let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": vec![op; MAX_OPERATIONS + 1]});
    // Act
    let err = parse_error(body);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax));
    assert!(err.detail.contains("1000"), "{}", err.detail);
}

#[test]
fn remove_without_a_path_is_no_target() {
    // Arrange
    let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "value": {"nickName": "x"}}]});
    // Act
    let err = parse_error(body);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::NoTarget));
}

#[test]
fn add_or_replace_without_a_value_is_invalid_value() {
    for op in ["add", "Replace"] {
        // Arrange
        let body =
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": op, "path": "userName"}]});
        // Act
        let err = parse_error(body);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{op}");
    }
}

#[test]
fn a_malformed_path_is_invalid_path() {
    // Arrange
    let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "emails[type eq", "value": "x"}]});
    // Act
    let err = parse_error(body);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
    assert!(err.detail.contains("emails[type eq"), "{}", err.detail);
}

#[test]
fn an_explicit_null_value_is_kept_apart_from_a_missing_value() {
    // Arrange / Act
    let req = request(
        json!([{"op": "replace", "path": "nickName", "value": null}, {"op": "remove", "path": "title"}]),
    );
    // Assert
    assert_eq!(req.operations[0].value, Some(Value::Null));
    assert_eq!(req.operations[1].value, None);
}
