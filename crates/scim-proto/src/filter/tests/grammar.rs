//! What parses: Entra's forms, the RFC 7644 examples, grammar details.

use super::*;

// --- Entra forms (entra.md §2.11) ---

#[test]
fn parses_entra_user_name_match() {
    let f = parse(r#"userName eq "alice@contoso.com""#);
    assert_eq!(f, eq("userName", "alice@contoso.com"));
}

#[test]
fn parses_entra_external_id_match() {
    let f = parse(r#"externalId eq "5a2c6f0e-1b7d-4c3e-9f10-2d1a0b3c4d5e""#);
    assert_eq!(f, eq("externalId", "5a2c6f0e-1b7d-4c3e-9f10-2d1a0b3c4d5e"));
}

#[test]
fn parses_entra_email_match_with_value_path_then_sub_attribute() {
    let f = parse(r#"emails[type eq "work"].value eq "user@contoso.com""#);
    assert_eq!(
        f,
        Filter::ValuePath {
            path: AttrPath::simple("emails"),
            filter: Box::new(eq("type", "work")),
            sub: Some((
                "value".to_owned(),
                AttrTest::Compare(CompareOp::Eq, s("user@contoso.com"))
            )),
        }
    );
}

#[test]
fn parses_entra_test_connection_probe_with_random_guid() {
    let f = parse(r#"userName eq "0c6b4a6e-2f55-4d3b-9a7e-8f9d6c5b4a3e""#);
    assert_eq!(f, eq("userName", "0c6b4a6e-2f55-4d3b-9a7e-8f9d6c5b4a3e"));
}

#[test]
fn parses_entra_group_display_name_match() {
    let f = parse(r#"displayName eq "Sales EMEA""#);
    assert_eq!(f, eq("displayName", "Sales EMEA"));
}

#[test]
fn parses_legacy_manager_reference_check() {
    let f = parse(r#"id eq "x" and manager eq "y""#);
    assert_eq!(f, and(eq("id", "x"), eq("manager", "y")));
}

#[test]
fn parses_legacy_group_membership_check() {
    let f = parse(r#"id eq "g" and members eq "u""#);
    assert_eq!(f, and(eq("id", "g"), eq("members", "u")));
}

#[test]
fn parses_reference_code_filter_with_unquoted_values_and_capitalised_names() {
    let f = parse(
        "name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co \
         example.org)",
    );
    let co = |v: &str| attr(AttrPath::with_sub("emails", "Value"), CompareOp::Co, s(v));
    assert_eq!(
        f,
        and(
            attr(
                AttrPath::with_sub("name", "FamilyName"),
                CompareOp::Eq,
                s("Employee")
            ),
            or(co("example.com"), co("example.org"))
        )
    );
}

#[test]
fn parses_primary_true_value_path_used_by_the_validator() {
    let f = parse(r#"emails[primary eq true].value eq "a@b.com""#);
    let Filter::ValuePath { filter, .. } = f else {
        panic!("expected a value path")
    };
    assert_eq!(
        *filter,
        attr(
            AttrPath::simple("primary"),
            CompareOp::Eq,
            CompValue::Bool(true)
        )
    );
}
// --- RFC 7644 §3.4.2.2 examples ---

#[test]
fn parses_rfc_title_present_and_user_type() {
    let f = parse(r#"title pr and userType eq "Employee""#);
    assert_eq!(
        f,
        and(
            present(AttrPath::simple("title")),
            eq("userType", "Employee")
        )
    );
}

#[test]
fn parses_rfc_grouped_or_inside_and() {
    let f = parse(
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
    );
    assert_eq!(
        f,
        and(
            eq("userType", "Employee"),
            or(
                attr(AttrPath::simple("emails"), CompareOp::Co, s("example.com")),
                attr(
                    AttrPath::with_sub("emails", "value"),
                    CompareOp::Co,
                    s("example.org")
                )
            )
        )
    );
}

#[test]
fn parses_rfc_value_filters_joined_by_or() {
    let f = parse(
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
    );
    let vp = |name: &str, ty: &str, domain: &str| Filter::ValuePath {
        path: AttrPath::simple(name),
        filter: Box::new(and(
            eq("type", ty),
            attr(AttrPath::simple("value"), CompareOp::Co, s(domain)),
        )),
        sub: None,
    };
    assert_eq!(
        f,
        or(
            vp("emails", "work", "@example.com"),
            vp("ims", "xmpp", "@foo.com")
        )
    );
}

#[test]
fn parses_rfc_meta_last_modified_comparison() {
    let f = parse(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#);
    assert_eq!(
        f,
        attr(
            AttrPath::with_sub("meta", "lastModified"),
            CompareOp::Gt,
            s("2011-05-13T04:42:34Z")
        )
    );
}

#[test]
fn parses_rfc_not_with_parentheses() {
    let f = parse(r#"not (userName eq "x")"#);
    assert_eq!(f, Filter::Not(Box::new(eq("userName", "x"))));
}

#[test]
fn parses_rfc_examples_that_mix_every_form() {
    // Arrange
    let examples = [
        r#"name.familyName co "O'Malley""#,
        r#"userName sw "J""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
        r#"title pr and userType eq "Employee""#,
        r#"title pr or userType eq "Intern""#,
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        r#"userType eq "Employee" and (emails.type eq "work")"#,
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
    ];
    // Act / Assert
    for example in examples {
        parse(example);
    }
}
// --- Grammar details ---

#[test]
fn parses_operators_and_logical_words_case_insensitively() {
    let f = parse(r#"USERNAME EQ "x" AnD title PR Or NOT (id Ne "y")"#);
    assert_eq!(
        f,
        or(
            and(eq("USERNAME", "x"), present(AttrPath::simple("title"))),
            Filter::Not(Box::new(attr(
                AttrPath::simple("id"),
                CompareOp::Ne,
                s("y")
            )))
        )
    );
}

#[test]
fn parses_every_comparison_operator() {
    for (text, op) in [
        ("eq", CompareOp::Eq),
        ("ne", CompareOp::Ne),
        ("co", CompareOp::Co),
        ("sw", CompareOp::Sw),
        ("ew", CompareOp::Ew),
        ("gt", CompareOp::Gt),
        ("ge", CompareOp::Ge),
        ("lt", CompareOp::Lt),
        ("le", CompareOp::Le),
    ] {
        let f = parse(&format!(r#"title {text} "v""#));
        assert_eq!(f, attr(AttrPath::simple("title"), op, s("v")));
    }
}

#[test]
fn and_binds_tighter_than_or() {
    let f = parse(r#"a eq "1" or b eq "2" and c eq "3""#);
    assert_eq!(f, or(eq("a", "1"), and(eq("b", "2"), eq("c", "3"))));
}

#[test]
fn not_binds_tighter_than_and() {
    let f = parse(r#"not (a eq "1") and b eq "2""#);
    assert_eq!(f, and(Filter::Not(Box::new(eq("a", "1"))), eq("b", "2")));
}

#[test]
fn parentheses_override_precedence() {
    let f = parse(r#"(a eq "1" or b eq "2") and c eq "3""#);
    assert_eq!(f, and(or(eq("a", "1"), eq("b", "2")), eq("c", "3")));
}

#[test]
fn logical_chains_are_left_associative() {
    let f = parse(r#"a eq "1" and b eq "2" and c eq "3""#);
    assert_eq!(f, and(and(eq("a", "1"), eq("b", "2")), eq("c", "3")));
}

#[test]
fn parses_enterprise_urn_qualified_sub_attribute() {
    let f = parse(&format!(r#"{ENTERPRISE}:manager.value eq "x""#));
    let path = AttrPath {
        urn: Some(ENTERPRISE.to_owned()),
        name: "manager".into(),
        sub: Some("value".into()),
    };
    assert_eq!(f, attr(path, CompareOp::Eq, s("x")));
}

#[test]
fn parses_core_urn_qualified_attribute() {
    let f = parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#);
    let path = AttrPath {
        urn: Some("urn:ietf:params:scim:schemas:core:2.0:User".into()),
        name: "userName".into(),
        sub: None,
    };
    assert_eq!(f, attr(path, CompareOp::Eq, s("x")));
}

#[test]
fn parses_custom_extension_urn_qualified_attribute() {
    let f = parse(r#"urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:costCode eq "C1""#);
    let Filter::Attr { path, .. } = f else {
        panic!("expected an attribute comparison")
    };
    assert_eq!(
        path.urn.as_deref(),
        Some("urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User")
    );
    assert_eq!(path.name, "costCode");
}

#[test]
fn parses_dollar_ref_sub_attribute() {
    let f = parse(r#"members.$ref pr"#);
    assert_eq!(f, present(AttrPath::with_sub("members", "$ref")));
}

#[test]
fn parses_json_string_escapes() {
    let f = parse(r#"title eq "q\" b\\ s\/ \b\f\n\r\t \u00e9""#);
    assert_eq!(f, eq("title", "q\" b\\ s/ \u{8}\u{c}\n\r\t é"));
}

#[test]
fn parses_surrogate_pair_escape() {
    let f = parse(r#"title eq "\ud83d\ude00""#);
    assert_eq!(f, eq("title", "😀"));
}

#[test]
fn parses_raw_non_ascii_strings() {
    let f = parse(r#"displayName eq "Zoë Ångström 😀""#);
    assert_eq!(f, eq("displayName", "Zoë Ångström 😀"));
}

#[test]
fn parses_numbers_as_json_numbers() {
    for (text, expected) in [
        ("42", Number::from(42)),
        ("-7", Number::from(-7)),
        ("0", Number::from(0)),
        ("18446744073709551615", Number::from(u64::MAX)),
    ] {
        let f = parse(&format!("age gt {text}"));
        assert_eq!(
            f,
            attr(
                AttrPath::simple("age"),
                CompareOp::Gt,
                CompValue::Num(expected)
            )
        );
    }
    for (text, expected) in [("2.5", 2.5), ("1e3", 1000.0), ("-1.5E-2", -0.015)] {
        let f = parse(&format!("score ge {text}"));
        let Filter::Attr {
            test: AttrTest::Compare(_, CompValue::Num(n)),
            ..
        } = f
        else {
            panic!("{text} should be a number")
        };
        assert_eq!(n.as_f64(), Some(expected));
    }
}

#[test]
fn parses_true_false_null_case_insensitively() {
    let f = parse("active eq True and deleted eq FALSE and nickName eq NULL");
    assert_eq!(
        f,
        and(
            and(
                attr(
                    AttrPath::simple("active"),
                    CompareOp::Eq,
                    CompValue::Bool(true)
                ),
                attr(
                    AttrPath::simple("deleted"),
                    CompareOp::Eq,
                    CompValue::Bool(false)
                )
            ),
            attr(AttrPath::simple("nickName"), CompareOp::Eq, CompValue::Null)
        )
    );
}

#[test]
fn parses_unquoted_legacy_value_as_string() {
    assert_eq!(parse("externalId eq jyoung"), eq("externalId", "jyoung"));
    assert_eq!(
        parse("userName eq j.young@contoso.com"),
        eq("userName", "j.young@contoso.com")
    );
}

#[test]
fn parses_unquoted_word_that_is_not_a_json_number_as_string() {
    assert_eq!(parse("externalId eq 00123"), eq("externalId", "00123"));
    assert_eq!(parse("externalId eq 12ab"), eq("externalId", "12ab"));
}

#[test]
fn quoted_true_stays_a_string() {
    assert_eq!(parse(r#"active eq "True""#), eq("active", "True"));
}

#[test]
fn parses_grouping_inside_value_filter() {
    let f = parse(r#"emails[(type eq "work" or type eq "home") and not (primary eq false)]"#);
    let Filter::ValuePath { filter, sub, .. } = f else {
        panic!("expected a value path")
    };
    assert!(sub.is_none());
    assert!(matches!(*filter, Filter::And(..)));
}

#[test]
fn accepts_attributes_named_like_keywords() {
    assert_eq!(parse(r#"not eq "x""#), eq("not", "x"));
    assert_eq!(parse(r#"and eq "x""#), eq("and", "x"));
    assert_eq!(parse("pr pr"), present(AttrPath::simple("pr")));
}

#[test]
fn tolerates_surrounding_and_extra_whitespace() {
    assert_eq!(parse("  userName   eq\t\"x\"  "), eq("userName", "x"));
}
