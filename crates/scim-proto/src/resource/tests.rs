//! Unit tests of resource validation, canonicalisation and rendering.

use serde_json::json;
use time::OffsetDateTime;

use super::*;
use crate::ids::ResourceId;
use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP_RESOURCE, USER_RESOURCE};

fn entra_create_body() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User@contoso.com",
        "active": "True",
        "emails": [{"primary": "true", "type": "work", "value": "Test_User@Contoso.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"}
    })
}

#[test]
fn entra_create_body_is_canonicalised_with_booleans_and_without_read_only_fields() {
    let user = UserResource::from_request(entra_create_body()).unwrap();

    assert_eq!(user.user_name.as_str(), "Test_User@contoso.com");
    assert!(user.active);
    assert_eq!(user.doc["active"], json!(true));
    assert_eq!(user.doc["emails"][0]["primary"], json!(true));
    assert!(!user.doc.contains_key("meta"));
    assert!(!user.doc.contains_key("schemas"));
    assert_eq!(user.email_keys, vec!["test_user@contoso.com".to_owned()]);
}

#[test]
fn attribute_names_are_matched_case_insensitively_and_stored_in_schema_case() {
    let user = UserResource::from_request(json!({"USERNAME": "a", "DisplayName": "A"})).unwrap();
    assert_eq!(user.doc["userName"], "a");
    assert_eq!(user.doc["displayName"], "A");
}

#[test]
fn flattened_enterprise_keys_are_nested_under_the_extension() {
    let user = UserResource::from_request(json!({
        "userName": "a",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42"
    }))
    .unwrap();
    assert_eq!(user.doc[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "42");
}

#[test]
fn unknown_extensions_and_attributes_are_kept_as_sent() {
    let ext = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
    let user = UserResource::from_request(
        json!({"userName": "a", ext: {"costCode": "X1"}, "shoeSize": 44}),
    )
    .unwrap();
    assert_eq!(user.doc[ext]["costCode"], "X1");
    assert_eq!(user.doc["shoeSize"], 44);
}

#[test]
fn manager_as_a_bare_id_is_stored_as_the_complex_form() {
    let user = UserResource::from_request(json!({
        "userName": "a",
        ENTERPRISE_USER_SCHEMA: {"manager": "271"}
    }))
    .unwrap();
    assert_eq!(
        user.doc[ENTERPRISE_USER_SCHEMA]["manager"],
        json!({"value": "271"})
    );
    assert_eq!(user.manager.as_deref(), Some("271"));
}

#[test]
fn wrong_types_are_invalid_value() {
    for body in [
        json!({"userName": 5}),
        json!({"userName": "a", "active": "maybe"}),
        json!({"userName": "a", "name": "Bob"}),
        json!({"userName": "a", "emails": [{"value": 3}]}),
        json!({}),
    ] {
        let err = UserResource::from_request(body.clone()).unwrap_err();
        assert_eq!(err.scim_type, Some(crate::ScimType::InvalidValue), "{body}");
    }
}

#[test]
fn a_non_object_body_is_invalid_syntax() {
    let err = UserResource::from_request(json!([1, 2])).unwrap_err();
    assert_eq!(err.scim_type, Some(crate::ScimType::InvalidSyntax));
}

#[test]
fn group_members_are_split_from_the_document() {
    let (group, members) = GroupResource::from_request(json!({
        "displayName": "Sales",
        "members": [{"value": "u1"}, {"value": "u2"}, {"value": "u1"}]
    }))
    .unwrap();
    assert_eq!(members, vec!["u1", "u2"]);
    assert!(!group.doc.contains_key("members"));
}

#[test]
fn render_lists_present_extensions_in_schemas_and_adds_meta() {
    let user = UserResource::from_request(entra_create_body()).unwrap();
    let id = ResourceId::from_uuid("abc");
    let meta = Meta::new(OffsetDateTime::UNIX_EPOCH);
    let out = render(
        &USER_RESOURCE,
        &id,
        &user.doc,
        &meta,
        "https://x/scim/v2/Users/abc",
    );
    assert_eq!(out["schemas"][1], ENTERPRISE_USER_SCHEMA);
    assert_eq!(out["meta"]["version"], "W/\"1\"");
    assert_eq!(out["meta"]["created"], "1970-01-01T00:00:00.000Z");
    assert_eq!(out["id"], "abc");
}

// --- Issue #9 ------------------------------------------------------------

#[test]
fn top_level_keys_with_multi_byte_characters_are_kept_and_rendered() {
    // Arrange: each of these once panicked in `is_urn` (`key[..4]` cut a
    // multi-byte character).
    for key in ["ab€", "ur€", "urn€:x", "€", "İİ", "a😀"] {
        let body = json!({"userName": "a", key: 1});
        // Act
        let user = UserResource::from_request(body).unwrap();
        let out = render(
            &USER_RESOURCE,
            &ResourceId::from_uuid("abc"),
            &user.doc,
            &Meta::new(OffsetDateTime::UNIX_EPOCH),
            "https://x/scim/v2/Users/abc",
        );
        // Assert
        assert_eq!(user.doc[key], 1, "{key}");
        assert_eq!(out[key], 1, "{key}");
        assert_eq!(out["schemas"], json!([USER_RESOURCE.schema.id]), "{key}");
    }
}

#[test]
fn multi_byte_keys_inside_extension_objects_are_kept() {
    // Arrange
    let body = json!({
        "userName": "a",
        ENTERPRISE_USER_SCHEMA: {"dépt€": "x"},
        "urn:ietf:params:scim:schemas:extension:€:2.0:User": {"a": 1}
    });
    // Act
    let user = UserResource::from_request(body).unwrap();
    // Assert
    assert_eq!(user.doc[ENTERPRISE_USER_SCHEMA]["dépt€"], "x");
    assert_eq!(
        user.doc["urn:ietf:params:scim:schemas:extension:€:2.0:User"]["a"],
        1
    );
}

#[test]
fn a_schema_urn_nested_in_the_core_schema_object_is_read_as_a_top_level_key() {
    // Arrange: found by the property tests (validation was not
    // idempotent). Each pass moved a nested core-schema object up one
    // level, so this body was accepted (validated twice) and stored as
    // `{"urn:…:core:2.0:Group": false, …}`, which every later read
    // refused: the group could no longer be read, patched or replaced.
    let core = GROUP_RESOURCE.schema.id;
    let bad = json!({"displayName": "Sales", core: {core: {core: false}}});
    let nested = json!({"displayName": "Sales", core: {core: {"externalId": "g1"}}});
    // Act
    let err = GroupResource::from_request(bad).unwrap_err();
    let (group, _) = GroupResource::from_request(nested).unwrap();
    // Assert
    assert_eq!(err.scim_type, Some(crate::ScimType::InvalidValue));
    let expected = json!({"displayName": "Sales", "externalId": "g1"});
    assert_eq!(Value::Object(group.doc.clone()), expected);
    assert_eq!(GroupResource::from_doc(group.doc.clone()).unwrap(), group);
}

#[test]
fn schemas_written_inside_the_core_schema_object_is_dropped_like_a_top_level_one() {
    // Arrange: with the core schema's object now read as the top level,
    // `schemas` inside it (or flattened) is dropped like a top-level one.
    let core = USER_RESOURCE.schema.id;
    let body = json!({
        "userName": "a",
        core: {"schemas": ["x"], "nickName": "n"},
        format!("{core}:schemas"): ["y"]
    });
    // Act
    let user = UserResource::from_request(body).unwrap();
    // Assert
    assert_eq!(
        user.doc,
        json!({"userName": "a", "nickName": "n"})
            .as_object()
            .cloned()
            .unwrap()
    );
    assert_eq!(
        canonicalize(user.doc.clone(), &USER_RESOURCE).unwrap(),
        user.doc
    );
}

#[test]
fn more_values_than_the_cap_in_a_multi_valued_attribute_is_too_many() {
    // Arrange
    let emails: Vec<Value> = (0..=MAX_VALUES_PER_ATTRIBUTE)
        .map(|i| json!({"value": format!("{i}@x")}))
        .collect();
    let roles: Vec<Value> = (0..=MAX_VALUES_PER_ATTRIBUTE).map(|i| json!(i)).collect();
    let bodies = [
        json!({"userName": "a", "emails": emails}),
        json!({"userName": "a", ENTERPRISE_USER_SCHEMA: {"unknownList": roles.clone()}}),
        json!({"userName": "a", "someList": roles}),
    ];
    // Act / Assert
    for body in bodies {
        let err = UserResource::from_request(body).unwrap_err();
        assert_eq!(
            err.scim_type,
            Some(crate::ScimType::TooMany),
            "{}",
            err.detail
        );
    }
}

#[test]
fn read_only_lists_are_dropped_unread_whatever_their_length() {
    // Arrange: Okta's PUT sends back the `groups` a GET returned.
    let groups: Vec<Value> = (0..5000)
        .map(|i| json!({"value": format!("g{i}")}))
        .collect();
    // Act
    let user = UserResource::from_request(json!({"userName": "a", "groups": groups})).unwrap();
    // Assert
    assert!(!user.doc.contains_key("groups"));
}

#[test]
fn a_group_body_may_list_a_whole_membership_up_to_its_cap_deduplicated_in_order() {
    // Arrange: a PUT of 20,000 members naming 10,000 ids twice each.
    let members: Vec<Value> = (0..MAX_MEMBERS_PER_LIST)
        .map(|i| json!({"value": format!("u{}", (i * 7) % 10_000)}))
        .collect();
    let too_many: Vec<Value> = (0..=MAX_MEMBERS_PER_LIST)
        .map(|i| json!({"value": format!("u{i}")}))
        .collect();
    // Act
    let (_, ids) =
        GroupResource::from_request(json!({"displayName": "G", "members": members})).unwrap();
    let err =
        GroupResource::from_request(json!({"displayName": "G", "members": too_many})).unwrap_err();
    // Assert
    assert_eq!(ids.len(), 10_000);
    assert_eq!(&ids[..3], ["u0", "u7", "u14"]);
    assert_eq!(err.scim_type, Some(crate::ScimType::TooMany));
}

#[test]
fn a_body_with_many_spellings_of_unknown_keys_keeps_the_last_of_each() {
    // Arrange: 14,000 keys, 6,000 names in two spellings: linear, and
    // the last spelling (with its value) wins, as for known attributes.
    let mut body = Map::new();
    body.insert("userName".into(), json!("a"));
    for i in 0..6_000 {
        body.insert(format!("k{i}"), json!(1));
        body.insert(format!("K{i}"), json!(2));
    }
    for i in 0..2_000 {
        body.insert(format!("x{i}"), json!(i));
    }
    body.shift_remove("k5");
    body.insert("k5".into(), json!(3));
    // Act
    let user = UserResource::from_request(Value::Object(body)).unwrap();
    // Assert
    assert_eq!(user.doc.len(), 1 + 6_000 + 2_000);
    assert_eq!(user.doc["K7"], 2);
    assert!(!user.doc.contains_key("k7"));
    assert!(!user.doc.contains_key("K5"));
    assert_eq!(user.doc["k5"], 3);
}

#[test]
fn an_unsolicited_password_is_dropped_and_never_stored() {
    // Arrange: Okta's create body carries one.
    let body = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "jane@acme.com",
        "password": "t1meMa$heen",
        "active": true,
    });
    // Act
    let user = UserResource::from_request(body).unwrap();
    // Assert
    assert!(
        !user.doc.keys().any(|k| k.eq_ignore_ascii_case("password")),
        "{:?}",
        user.doc
    );
    assert_eq!(user.user_name.as_str(), "jane@acme.com");
}
