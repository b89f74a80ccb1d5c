//! Parser for PATCH paths (RFC 7644 §3.5.2: `PATH = attrPath / valuePath
//! [subAttr]`) and bare attribute paths (`attributes=` lists, the keys of a
//! path-less PATCH value). Reuses the filter tokenizer and parser, so value
//! filters and URN-qualified names behave exactly as in `filter=`.

use std::fmt;
use std::str::FromStr;

use crate::ast::{AttrPath, PatchPath};
use crate::error::{ScimError, ScimResult};
use crate::filter::{Grammar, Parser};

/// Parses a PATCH operation's `path`: `userName`, `name.givenName`,
/// `urn:…:User:manager.value`, `members[value eq "x"]`,
/// `emails[type eq "work"].value`. Errors are `invalidPath`.
pub fn parse_patch_path(s: &str) -> ScimResult<PatchPath> {
    let mut p = Parser::new(s, Grammar::Path)?;
    let attr = p.attr_path()?;
    if !p.at_bracket() {
        p.expect_end()?;
        return Ok(PatchPath {
            attr,
            filter: None,
            sub: None,
        });
    }
    let filter = p.bracket_filter(&attr)?;
    let sub = p.dot_sub()?;
    p.expect_end()?;
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub,
    })
}

/// Parses one `[urn:]attr[.sub]` with no value filter, e.g. an entry of
/// `attributes=` (callers map the `invalidPath` error as they need) or a key
/// such as `name.givenName` in a path-less PATCH value. Surrounding
/// whitespace is ignored.
pub fn parse_attr_path(s: &str) -> ScimResult<AttrPath> {
    let mut p = Parser::new(s, Grammar::Path)?;
    let attr = p.attr_path()?;
    p.expect_end()?;
    Ok(attr)
}

impl FromStr for PatchPath {
    type Err = ScimError;

    fn from_str(s: &str) -> ScimResult<Self> {
        parse_patch_path(s)
    }
}

/// Canonical text that parses back to the same path (for error details and
/// logs).
impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScimType;
    use crate::ast::{AttrTest, CompValue, CompareOp, Filter};

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn path(s: &str) -> PatchPath {
        parse_patch_path(s).unwrap_or_else(|e| panic!("{s:?} should parse: {}", e.detail))
    }

    fn error(s: &str) -> ScimError {
        let err = parse_patch_path(s).expect_err(s);
        assert_eq!(
            err.scim_type,
            Some(ScimType::InvalidPath),
            "{s:?}: {}",
            err.detail
        );
        assert_eq!(err.status, 400);
        err
    }

    fn eq(name: &str, value: &str) -> Filter {
        Filter::Attr {
            path: AttrPath::simple(name),
            test: AttrTest::Compare(CompareOp::Eq, CompValue::Str(value.to_owned())),
        }
    }

    fn plain(attr: AttrPath) -> PatchPath {
        PatchPath {
            attr,
            filter: None,
            sub: None,
        }
    }

    fn urn_attr(urn: &str, name: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            urn: Some(urn.to_owned()),
            name: name.to_owned(),
            sub: sub.map(str::to_owned),
        }
    }

    #[test]
    fn parses_simple_attribute() {
        assert_eq!(path("userName"), plain(AttrPath::simple("userName")));
    }

    #[test]
    fn parses_sub_attribute() {
        assert_eq!(
            path("name.givenName"),
            plain(AttrPath::with_sub("name", "givenName"))
        );
    }

    #[test]
    fn parses_enterprise_manager_urn_path() {
        let p = path(&format!("{ENTERPRISE}:manager"));
        assert_eq!(p, plain(urn_attr(ENTERPRISE, "manager", None)));
    }

    #[test]
    fn parses_enterprise_manager_value_urn_path() {
        let p = path(&format!("{ENTERPRISE}:manager.value"));
        assert_eq!(p, plain(urn_attr(ENTERPRISE, "manager", Some("value"))));
    }

    #[test]
    fn parses_custom_extension_urn_path() {
        let urn = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
        let p = path(&format!("{urn}:costCode"));
        assert_eq!(p, plain(urn_attr(urn, "costCode", None)));
    }

    #[test]
    fn parses_member_removal_value_filter() {
        // Arrange
        let text = r#"members[value eq "7f4b2c1e-9d3a-4b5c-8e6f-0a1b2c3d4e5f"]"#;
        // Act
        let p = path(text);
        // Assert
        assert_eq!(
            p,
            PatchPath {
                attr: AttrPath::simple("members"),
                filter: Some(eq("value", "7f4b2c1e-9d3a-4b5c-8e6f-0a1b2c3d4e5f")),
                sub: None,
            }
        );
    }

    #[test]
    fn parses_value_filter_then_sub_attribute_for_each_entra_form() {
        for (text, attr, ty, sub) in [
            (r#"emails[type eq "work"].value"#, "emails", "work", "value"),
            (
                r#"phoneNumbers[type eq "mobile"].value"#,
                "phoneNumbers",
                "mobile",
                "value",
            ),
            (
                r#"phoneNumbers[type eq "work"].value"#,
                "phoneNumbers",
                "work",
                "value",
            ),
            (
                r#"addresses[type eq "work"].locality"#,
                "addresses",
                "work",
                "locality",
            ),
            (
                r#"addresses[type eq "work"].streetAddress"#,
                "addresses",
                "work",
                "streetAddress",
            ),
        ] {
            let p = path(text);
            assert_eq!(
                p,
                PatchPath {
                    attr: AttrPath::simple(attr),
                    filter: Some(eq("type", ty)),
                    sub: Some(sub.to_owned()),
                },
                "{text}"
            );
        }
    }

    #[test]
    fn parses_primary_true_value_filter() {
        let p = path("emails[primary eq true].value");
        assert_eq!(
            p.filter,
            Some(Filter::Attr {
                path: AttrPath::simple("primary"),
                test: AttrTest::Compare(CompareOp::Eq, CompValue::Bool(true)),
            })
        );
        assert_eq!(p.sub.as_deref(), Some("value"));
    }

    #[test]
    fn parses_urn_qualified_value_path() {
        let urn = "urn:ietf:params:scim:schemas:core:2.0:User";
        let p = path(&format!(r#"{urn}:emails[type eq "work"].value"#));
        assert_eq!(p.attr, urn_attr(urn, "emails", None));
        assert_eq!(p.sub.as_deref(), Some("value"));
    }

    #[test]
    fn rejects_empty_path() {
        assert!(error("").detail.contains("empty"));
    }

    #[test]
    fn rejects_filter_expression_as_path() {
        let err = error(r#"userName eq "x""#);
        assert!(
            err.detail
                .contains("expected the end of the path, found 'eq'"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn rejects_unclosed_value_filter() {
        let err = error(r#"emails[type eq "work""#);
        assert!(err.detail.contains("']' closing the '['"), "{}", err.detail);
    }

    #[test]
    fn rejects_sub_attribute_without_dot() {
        let err = error(r#"emails[type eq "work"]value"#);
        assert!(err.detail.contains("found 'value'"), "{}", err.detail);
    }

    #[test]
    fn rejects_two_levels_after_value_filter() {
        let err = error(r#"emails[type eq "work"].value.x"#);
        assert!(
            err.detail.contains("only one sub-attribute"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn rejects_value_filter_on_sub_attribute() {
        let err = error(r#"emails.value[type eq "work"]"#);
        assert!(
            err.detail.contains("not the sub-attribute"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn rejects_two_value_filters() {
        let err = error(r#"members[value eq "a"][type eq "User"]"#);
        assert!(err.detail.contains("found '['"), "{}", err.detail);
    }

    #[test]
    fn reports_bad_bracket_filter_as_invalid_path() {
        let err = error("members[value eq]");
        assert!(
            err.detail.starts_with("Invalid path at character 17"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn parses_attr_path_for_attribute_lists_and_path_less_keys() {
        assert_eq!(
            parse_attr_path("userName").ok(),
            Some(AttrPath::simple("userName"))
        );
        assert_eq!(
            parse_attr_path(" name.givenName ").ok(),
            Some(AttrPath::with_sub("name", "givenName"))
        );
        assert_eq!(
            parse_attr_path(&format!("{ENTERPRISE}:employeeNumber")).ok(),
            Some(urn_attr(ENTERPRISE, "employeeNumber", None))
        );
    }

    #[test]
    fn attr_path_rejects_value_filters_and_junk() {
        for bad in [
            r#"emails[type eq "work"]"#,
            "a b",
            "9lives",
            "",
            "name.",
            ".name",
        ] {
            let err = parse_attr_path(bad).expect_err(bad);
            assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{bad:?}");
        }
    }

    #[test]
    fn display_round_trips_patch_paths() {
        for text in [
            "userName",
            "name.givenName",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            r#"members[value eq "7f4b"]"#,
            r#"emails[type eq "work" and primary eq true].value"#,
        ] {
            let p = path(text);
            assert_eq!(p.to_string(), text);
            assert_eq!(path(&p.to_string()), p);
        }
    }

    #[test]
    fn from_str_matches_parse_patch_path() {
        let p: PatchPath = "name.familyName".parse().unwrap();
        assert_eq!(p, path("name.familyName"));
    }

    #[test]
    fn multi_byte_characters_in_paths_are_invalid_path_or_kept_in_values() {
        // Arrange / Act / Assert: names are ASCII, filter values anything.
        for bad in [
            "ab€",
            "€",
            "urn€:x",
            "urn:€:x",
            "name.g€",
            "emails[ty€pe eq \"x\"]",
            "emails[type eq \"x\"].€",
        ] {
            error(bad);
            let err = parse_attr_path(bad).expect_err(bad);
            assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
        }
        let p = path(r#"emails[type eq "wörk€"].value"#);
        assert_eq!(p.filter, Some(eq("type", "wörk€")));
    }
}
