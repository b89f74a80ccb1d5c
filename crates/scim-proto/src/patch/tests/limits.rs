//! Issue #9: bounded work per request and multi-byte text.

use super::*;

// --- Limits (issue #9): bounded work per request -----------------------

/// Entra's member add with `n` distinct UUID-shaped ids.
fn entra_member_add(n: usize) -> Value {
    let members: Vec<Value> = (0..n)
        .map(|i| json!({ "value": format!("{i:08x}-9d3a-4b5c-8e6f-0a1b2c3d4e5f") }))
        .collect();
    json!({
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [{"op": "Add", "path": "members", "value": members}]
    })
}

#[test]
fn a_patch_adding_130000_member_ids_is_rejected_as_too_many() {
    // Arrange: about what a 1 MiB body holds. Deduplicating it pairwise
    // took billions of comparisons; now it is refused up front.
    let body = entra_member_add(130_000);
    // Act
    let err = parse_error(body);
    // Assert
    assert_eq!(err.status, 400);
    assert_eq!(err.scim_type, Some(ScimType::TooMany));
    assert_eq!(err.to_body()["scimType"], "tooMany");
    assert!(err.detail.contains("130000"), "{}", err.detail);
    assert!(err.detail.contains("1000"), "{}", err.detail);
}

#[test]
fn the_engine_rejects_130000_member_ids_in_a_request_built_without_parsing() {
    // Arrange: `PatchRequest`'s fields are public; `apply` checks too.
    let members: Vec<Value> = (0..130_000).map(|i| json!(format!("id-{i}"))).collect();
    let request = PatchRequest {
        operations: vec![PatchOperation {
            op: PatchOpKind::Add,
            path: Some(parse_patch_path("members").unwrap()),
            value: Some(Value::Array(members)),
        }],
    };
    let mut doc = obj(json!({"displayName": "Sales"}));
    // Act
    let err = apply(&mut doc, &request, &GROUP_RESOURCE).unwrap_err();
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::TooMany));
    assert_eq!(doc, obj(json!({"displayName": "Sales"})));
}

#[test]
fn the_value_cap_is_the_total_over_all_operations() {
    // Arrange
    let half = |op: &str| {
        let ids: Vec<Value> = (0..600)
            .map(|i| json!({"value": format!("u{i}")}))
            .collect();
        json!({"op": op, "path": "members", "value": ids})
    };
    let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [half("Add"), half("Remove")]});
    // Act
    let err = parse_error(body);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::TooMany));
    assert!(err.detail.contains("1200"), "{}", err.detail);
}

#[test]
fn exactly_the_cap_of_member_ids_is_accepted() {
    // Arrange
    let body = entra_member_add(MAX_VALUES_PER_REQUEST);
    let mut group = obj(json!({"displayName": "Sales"}));
    // Act
    let request = PatchRequest::from_json(body).unwrap();
    let outcome = apply(&mut group, &request, &GROUP_RESOURCE).unwrap();
    // Assert
    match &outcome.member_changes[..] {
        [MemberChange::Add(ids)] => assert_eq!(ids.len(), MAX_VALUES_PER_REQUEST),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_large_member_list_with_duplicates_keeps_the_first_occurrence_of_each_in_order() {
    // Arrange: 1000 entries naming 250 ids, each four times, in a
    // scrambled order, as objects, bare strings and differently cased
    // keys (`Value`), which all name the same member.
    let order: Vec<usize> = (0..1000).map(|i| (i * 7919) % 250).collect();
    let listed: Vec<Value> = order
        .iter()
        .enumerate()
        .map(|(n, i)| match n % 3 {
            0 => json!({"value": format!("u{i}-€")}),
            1 => json!(format!("u{i}-€")),
            _ => json!({"Value": format!("u{i}-€"), "display": "x"}),
        })
        .collect();
    let mut expected: Vec<String> = Vec::new();
    for i in &order {
        let id = format!("u{i}-€");
        if !expected.contains(&id) {
            expected.push(id);
        }
    }
    // Act
    let changes = members(json!([{"op": "Add", "path": "members", "value": listed}]));
    // Assert
    assert_eq!(expected.len(), 250);
    assert_eq!(changes, vec![MemberChange::Add(expected)]);
}

#[test]
fn a_large_email_add_with_duplicates_keeps_the_first_occurrence_of_each_in_order() {
    // Arrange: 1000 values naming 300 distinct emails; a repeat may list
    // its keys in another order (still the same JSON value), and values
    // equal to an email the user already has are skipped.
    let email = |i: usize, reordered: bool| {
        let value = format!("user{i}@contoso.com");
        if reordered {
            json!({"type": "work", "value": value})
        } else {
            json!({"value": value, "type": "work"})
        }
    };
    let incoming: Vec<Value> = (0..1000)
        .map(|n| email((n * 31) % 300, n % 2 == 1))
        .collect();
    let doc = obj(json!({
        "userName": "a",
        "emails": [{"type": "work", "value": "user0@contoso.com"}, {"value": "other@x"}]
    }));
    let mut expected = vec![
        json!({"type": "work", "value": "user0@contoso.com"}),
        json!({"value": "other@x"}),
    ];
    for v in &incoming {
        if !expected.contains(v) {
            expected.push(v.clone());
        }
    }
    // Act
    let after = patch_user(
        doc,
        json!([{"op": "add", "path": "emails", "value": incoming}]),
    );
    // Assert
    assert_eq!(expected.len(), 2 + 299);
    assert_eq!(after["emails"], Value::Array(expected));
}

#[test]
fn values_equal_as_json_are_duplicates_whatever_their_key_order_or_number_form() {
    // Arrange
    let ops = json!([{"op": "add", "path": "x509Certificates", "value": [
        {"value": "a", "display": "b"}, {"display": "b", "value": "a"},
        {"value": 1}, {"value": 1.0}, {"value": 1}
    ]}]);
    // Act
    let after = patch_user(bob(), ops);
    // Assert: 1 and 1.0 are different JSON numbers to serde_json.
    assert_eq!(
        after["x509Certificates"],
        json!([{"value": "a", "display": "b"}, {"value": 1}, {"value": 1.0}])
    );
}

#[test]
fn more_values_than_the_cap_in_one_attribute_is_too_many() {
    // Arrange
    let values: Vec<Value> = (0..=MAX_VALUES_PER_REQUEST)
        .map(|i| json!({"value": format!("{i}@x")}))
        .collect();
    let body = json!({"schemas": [PATCH_OP_SCHEMA],
                      "Operations": [{"op": "add", "path": "emails", "value": values}]});
    // Act
    let err = parse_error(body);
    // Assert
    assert_eq!(err.scim_type, Some(ScimType::TooMany));
}

#[test]
fn path_less_attributes_and_filter_comparisons_count_toward_the_cap() {
    // Arrange
    let attrs: Map<String, Value> = (0..=MAX_VALUES_PER_REQUEST)
        .map(|i| (format!("attr{i}"), json!(i)))
        .collect();
    let pathless = json!({"schemas": [PATCH_OP_SCHEMA],
                          "Operations": [{"op": "replace", "value": attrs}]});
    let filter = (0..40)
        .map(|i| format!("value eq \"u{i}\""))
        .collect::<Vec<_>>()
        .join(" or ");
    let removes = vec![json!({"op": "remove", "path": format!("members[{filter}]")}); 26];
    let filtered = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": removes});
    // Act
    let errors = [parse_error(pathless), parse_error(filtered)];
    // Assert
    for err in errors {
        assert_eq!(err.scim_type, Some(ScimType::TooMany), "{}", err.detail);
    }
}

#[test]
fn a_replace_of_members_may_carry_a_whole_membership_up_to_its_own_cap() {
    // Arrange: Okta's full replace lists every member, like a PUT.
    let ids =
        |n: usize| -> Vec<Value> { (0..n).map(|i| json!({"value": format!("u{i}")})).collect() };
    let big = json!([{"op": "replace", "path": "members", "value": ids(5000)}]);
    let too_big = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [
        {"op": "replace", "value": {"members": ids(MAX_MEMBERS_PER_LIST + 1)}}]});
    // Act
    let changes = members(big);
    let err = parse_error(too_big);
    // Assert
    assert!(matches!(&changes[..], [MemberChange::Replace(ids)] if ids.len() == 5000));
    assert_eq!(err.scim_type, Some(ScimType::TooMany));
}

#[test]
fn an_object_with_many_spellings_of_its_keys_is_merged_in_linear_time() {
    // Arrange: 40,000 keys in 2 spellings each (`k0`, `K0`, …), as an
    // element value and as a complex value; the later spelling's value
    // wins, under the first spelling written.
    let mut fields = Map::new();
    for i in 0..20_000 {
        fields.insert(format!("k{i}"), json!(1));
        fields.insert(format!("K{i}"), json!(2));
    }
    let ops = json!([
        {"op": "add", "path": "emails", "value": [Value::Object(fields.clone())]},
        {"op": "replace", "path": "name", "value": Value::Object(fields)}
    ]);
    // Act
    let after = patch_user(bob(), ops);
    // Assert
    let element = after["emails"][0].as_object().unwrap();
    assert_eq!(element.len(), 20_000);
    assert_eq!(element["k7"], 2);
    let name = after["name"].as_object().unwrap();
    assert_eq!(name.len(), 20_000);
    assert_eq!(name["k19999"], 2);
    assert!(!name.contains_key("K3"));
}

#[test]
fn a_filtered_remove_over_a_long_list_removes_every_match() {
    // Arrange: a stored list of 30,000 elements, all matching.
    let items: Vec<Value> = (0..30_000)
        .map(|i| json!({"value": i, "type": "x"}))
        .collect();
    let doc = obj(json!({"userName": "a", "things": items}));
    // Act
    let after = patch_user(
        doc,
        json!([{"op": "remove", "path": "things[type eq \"x\"]"}]),
    );
    // Assert
    assert!(!after.contains_key("things"));
}
// --- Multi-byte text (issue #9): nothing slices inside a character -----

#[test]
fn a_user_stored_with_multi_byte_top_level_keys_can_be_patched_and_revalidated() {
    // Arrange: `ab€` and `urn€:x` once panicked in validation (`key[..4]`
    // cut the `€`), on create and on every later PATCH or read.
    let stored = crate::resource::UserResource::from_request(
        json!({"userName": "a", "ab€": 1, "urn€:x": "y", "İd": "z"}),
    )
    .unwrap()
    .doc;
    // Act
    let after = patch_user(
        stored,
        json!([{"op": "add", "path": "x", "value": {"ab€": 1, "urn€:x": 2}},
               {"op": "replace", "value": {"nickName": "n"}}]),
    );
    let user = crate::resource::UserResource::from_doc(after).unwrap();
    // Assert
    assert_eq!(user.doc["ab€"], 1);
    assert_eq!(user.doc["urn€:x"], "y");
    assert_eq!(user.doc["x"], json!({"ab€": 1, "urn€:x": 2}));
    assert_eq!(user.doc["nickName"], "n");
}

#[test]
fn a_path_less_key_with_multi_byte_characters_is_invalid_path() {
    // Arrange: path-less keys are attribute paths, which are ASCII.
    for key in [
        "ab€",
        "urn€:x",
        "name.€",
        "urn:ietf:params:scim:schemas:extension:€:2.0:User:a",
    ] {
        let ops = json!([{"op": "replace", "value": {key: 1}}]);
        // Act
        let err = patch_error(&USER_RESOURCE, bob(), ops);
        // Assert
        assert_eq!(
            err.scim_type,
            Some(ScimType::InvalidPath),
            "{key}: {}",
            err.detail
        );
    }
}

#[test]
fn multi_byte_paths_and_filter_values_are_handled_without_panicking() {
    // Arrange
    let doc = obj(json!({"userName": "a", "emails": [{"value": "ü@x", "type": "wörk€"}]}));
    // Act
    let after = patch_user(
        doc.clone(),
        json!([{"op": "replace", "path": "emails[type eq \"wörk€\"].value", "value": "€@x"}]),
    );
    let errors: Vec<ScimError> = ["ab€", "emails[ty€pe eq \"x\"]", "urn:€:x", "€", "na€me.x"]
        .into_iter()
        .map(|path| {
            parse_error(json!({"schemas": [PATCH_OP_SCHEMA],
                               "Operations": [{"op": "add", "path": path, "value": 1}]}))
        })
        .collect();
    // Assert
    assert_eq!(after["emails"][0]["value"], "€@x");
    for err in errors {
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{}", err.detail);
    }
}
