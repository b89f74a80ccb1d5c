//! What is refused, with which message, and the size and depth limits.

use super::*;

// --- Errors ---

#[test]
fn rejects_empty_filter() {
    assert!(error("   ").detail.contains("empty"));
}

#[test]
fn rejects_missing_operator_naming_the_token_and_position() {
    let err = error(r#"userName "x""#);
    assert!(err.detail.contains("character 10"), "{}", err.detail);
    assert!(err.detail.contains("after 'userName'"), "{}", err.detail);
    assert!(err.detail.contains("the string \"x\""), "{}", err.detail);
}

#[test]
fn rejects_unknown_operator() {
    let err = error(r#"userName like "x""#);
    assert!(err.detail.contains("'like'"), "{}", err.detail);
}

#[test]
fn rejects_missing_value() {
    let err = error("userName eq");
    assert!(
        err.detail.contains("expected a value after 'eq'"),
        "{}",
        err.detail
    );
    assert!(err.detail.contains("end of the input"), "{}", err.detail);
}

#[test]
fn rejects_unquoted_value_containing_spaces_with_a_hint() {
    let err = error("displayName eq Sales Team");
    assert!(err.detail.contains("'Team'"), "{}", err.detail);
    assert!(err.detail.contains("double quotes"), "{}", err.detail);
}

#[test]
fn rejects_unbalanced_parentheses_and_brackets() {
    assert!(
        error(r#"(userName eq "x""#)
            .detail
            .contains("')' closing the '(' at character 1")
    );
    assert!(
        error(r#"userName eq "x")"#)
            .detail
            .contains("without a matching '('")
    );
    assert!(
        error(r#"emails[type eq "work""#)
            .detail
            .contains("']' closing the '['")
    );
    assert!(
        error(r#"userName eq "x"]"#)
            .detail
            .contains("without a matching '['")
    );
}

#[test]
fn rejects_not_without_parentheses() {
    let err = error(r#"not userName eq "x""#);
    assert!(
        err.detail.contains("'not' must be followed"),
        "{}",
        err.detail
    );
}

#[test]
fn rejects_dangling_logical_word() {
    let err = error(r#"userName eq "x" and"#);
    assert!(err.detail.contains("end of the input"), "{}", err.detail);
}

#[test]
fn rejects_attribute_name_starting_with_a_digit() {
    let err = error(r#"1name eq "x""#);
    assert!(err.detail.contains("start with a letter"), "{}", err.detail);
}

#[test]
fn rejects_attribute_name_with_invalid_character() {
    let err = error(r#"user@name eq "x""#);
    assert!(err.detail.contains("contains '@'"), "{}", err.detail);
    assert!(err.detail.contains("character 5"), "{}", err.detail);
}

#[test]
fn rejects_qualifier_that_is_not_a_urn() {
    let err = error(r#"foo:bar eq "x""#);
    assert!(err.detail.contains("not a schema URN"), "{}", err.detail);
}

#[test]
fn rejects_urn_without_attribute_name() {
    let err = error(&format!(r#"{ENTERPRISE}: eq "x""#));
    assert!(
        err.detail.contains("expected an attribute name after"),
        "{}",
        err.detail
    );
}

#[test]
fn rejects_two_sub_attribute_levels() {
    let err = error(r#"name.givenName.first eq "x""#);
    assert!(err.detail.contains("more than one '.'"), "{}", err.detail);
}

#[test]
fn rejects_nested_value_paths() {
    let err = error(r#"emails[type[value eq "x"] eq "work"]"#);
    assert!(err.detail.contains("cannot be nested"), "{}", err.detail);
}

#[test]
fn rejects_value_filter_on_a_sub_attribute() {
    let err = error(r#"emails.value[type eq "work"]"#);
    assert!(
        err.detail.contains("not the sub-attribute"),
        "{}",
        err.detail
    );
}

#[test]
fn rejects_empty_value_filter() {
    let err = error("emails[]");
    assert!(err.detail.contains("found ']'"), "{}", err.detail);
}

#[test]
fn rejects_value_path_sub_attribute_without_operator() {
    let err = error(r#"emails[type eq "work"].value"#);
    assert!(
        err.detail.contains("expected an operator"),
        "{}",
        err.detail
    );
}

#[test]
fn rejects_unterminated_string() {
    let err = error(r#"userName eq "abc"#);
    assert!(err.detail.contains("no closing"), "{}", err.detail);
    assert!(err.detail.contains("character 13"), "{}", err.detail);
}

#[test]
fn rejects_unknown_escape() {
    assert!(
        error(r#"title eq "a\qb""#)
            .detail
            .contains("unknown escape '\\q'")
    );
}

#[test]
fn rejects_short_unicode_escape() {
    assert!(
        error(r#"title eq "\u12""#)
            .detail
            .contains("four hexadecimal digits")
    );
}

#[test]
fn rejects_lone_surrogates() {
    assert!(
        error(r#"title eq "\ud83d""#)
            .detail
            .contains("low surrogate")
    );
    assert!(
        error(r#"title eq "\ud83dx""#)
            .detail
            .contains("low surrogate")
    );
    assert!(
        error(r#"title eq "\ude00""#)
            .detail
            .contains("must follow a high surrogate")
    );
}

#[test]
fn rejects_number_out_of_range() {
    assert!(error("age gt 1e999").detail.contains("out of range"));
}

#[test]
fn rejects_filter_longer_than_limit() {
    // Arrange
    let long = format!(r#"userName eq "{}""#, "a".repeat(MAX_FILTER_LEN));
    // Act
    let err = error(&long);
    // Assert
    assert!(err.detail.contains("limit is 4096"), "{}", err.detail);
}

#[test]
fn accepts_filter_exactly_at_length_limit() {
    let prefix = r#"userName eq ""#;
    let long = format!(
        r#"{prefix}{}""#,
        "a".repeat(MAX_FILTER_LEN - prefix.len() - 1)
    );
    assert_eq!(long.len(), MAX_FILTER_LEN);
    parse(&long);
}

fn nested(levels: usize) -> String {
    format!(r#"{}a eq "1"{}"#, "(".repeat(levels), ")".repeat(levels))
}

#[test]
fn accepts_filter_nested_exactly_to_the_limit() {
    parse(&nested(MAX_DEPTH));
    let mixed = format!(
        r#"emails[{}type eq "w"{}]"#,
        "not (".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    parse(&mixed);
}

#[test]
fn rejects_filter_nested_deeper_than_limit() {
    let err = error(&nested(MAX_DEPTH + 1));
    assert!(err.detail.contains("deeper than 16"), "{}", err.detail);
    let mixed = format!(
        r#"emails[{}type eq "w"{}]"#,
        "not (".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    assert!(error(&mixed).detail.contains("deeper than 16"));
}

#[test]
fn rejects_pathological_nesting_quickly_without_exhausting_the_stack() {
    let err = error(&"(".repeat(MAX_FILTER_LEN));
    assert!(err.detail.contains("deeper than"), "{}", err.detail);
}

fn terms(n: usize) -> String {
    (0..n)
        .map(|i| format!("a eq {i}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

#[test]
fn accepts_filter_with_exactly_the_maximum_number_of_terms() {
    let f = parse(&terms(MAX_TERMS));
    assert!(matches!(f, Filter::Or(..)));
}

#[test]
fn rejects_filter_with_more_terms_than_limit() {
    let err = error(&terms(MAX_TERMS + 1));
    assert!(
        err.detail.contains("more than 64 comparisons"),
        "{}",
        err.detail
    );
}

#[test]
fn counts_value_path_sub_attribute_tests_as_terms() {
    let each = r#"emails[type eq "w"].value eq "x""#;
    let at_limit = vec![each; MAX_TERMS / 2].join(" and ");
    parse(&at_limit);
    let over = format!(r#"{at_limit} and title pr"#);
    assert!(error(&over).detail.contains("more than 64"));
}
