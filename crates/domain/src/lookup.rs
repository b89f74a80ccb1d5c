//! Lookup planning: which key read answers a list filter. Lookups Entra makes
//! (`id`, `userName`, `externalId`, work email for users; `id`,
//! `displayName`, `externalId`, `members` for groups, and `and` chains of
//! them) become one key read; the full filter is then evaluated on the
//! candidates, so the answer is exact whatever else the filter says. Other
//! filters walk the tenant's resources, up to a bound. Pure: no I/O.

use scim_proto::ScimError;
use scim_proto::ast::{AttrPath, AttrTest, CompValue, CompareOp, Filter};
use scim_proto::ids::ResourceId;
use scim_proto::schema::{GROUP_SCHEMA, USER_SCHEMA};

/// A key read that yields every user a filter can match.
#[derive(Debug, PartialEq, Eq)]
pub enum UserLookup {
    Id(String),
    UserName(String),
    ExternalId(String),
    Email(String),
}

/// A key read that yields every group a filter can match.
#[derive(Debug, PartialEq, Eq)]
pub enum GroupLookup {
    Id(String),
    DisplayName(String),
    ExternalId(String),
    /// The groups of one user (`members eq "<user id>"`).
    Member(String),
}

/// Picks an indexed equality term from the filter's top-level `and` chain.
pub fn user_lookup(filter: &Filter) -> Option<UserLookup> {
    filter.conjuncts().into_iter().find_map(|term| match term {
        Filter::Attr {
            path,
            test: AttrTest::Compare(CompareOp::Eq, value),
        } => {
            let v = literal(value)?;
            if !in_schema(path, USER_SCHEMA) {
                return None;
            }
            if path.is("id") {
                Some(UserLookup::Id(v))
            } else if path.is("userName") {
                Some(UserLookup::UserName(v))
            } else if path.is("externalId") {
                Some(UserLookup::ExternalId(v))
            } else if path.name.eq_ignore_ascii_case("emails") && value_sub(path) {
                Some(UserLookup::Email(v))
            } else {
                None
            }
        }
        Filter::ValuePath {
            path,
            sub: Some((sub, AttrTest::Compare(CompareOp::Eq, value))),
            ..
        } if in_schema(path, USER_SCHEMA)
            && path.name.eq_ignore_ascii_case("emails")
            && sub.eq_ignore_ascii_case("value") =>
        {
            literal(value).map(UserLookup::Email)
        }
        _ => None,
    })
}

/// Picks an indexed equality term from the filter's top-level `and` chain.
pub fn group_lookup(filter: &Filter) -> Option<GroupLookup> {
    filter.conjuncts().into_iter().find_map(|term| match term {
        Filter::Attr {
            path,
            test: AttrTest::Compare(CompareOp::Eq, CompValue::Str(v)),
        } if in_schema(path, GROUP_SCHEMA) => {
            if path.is("id") {
                Some(GroupLookup::Id(v.clone()))
            } else if path.is("displayName") {
                Some(GroupLookup::DisplayName(v.clone()))
            } else if path.is("externalId") {
                Some(GroupLookup::ExternalId(v.clone()))
            } else if is_members(path) && value_sub(path) {
                Some(GroupLookup::Member(v.clone()))
            } else {
                None
            }
        }
        Filter::ValuePath {
            path,
            filter,
            sub: None,
        } if is_members(path) => match filter.as_ref() {
            Filter::Attr {
                path: inner,
                test: AttrTest::Compare(CompareOp::Eq, CompValue::Str(v)),
            } if inner.is("value") => Some(GroupLookup::Member(v.clone())),
            _ => None,
        },
        _ => None,
    })
}

/// The member ids a group filter compares `members` with. Only equality on a
/// member's value can be answered without loading whole groups, so any other
/// test of `members` is an `invalidFilter`.
pub fn member_values(f: &Filter) -> Result<Vec<ResourceId>, ScimError> {
    let mut out = Vec::new();
    collect_member_values(f, &mut out)?;
    Ok(out)
}

fn in_schema(path: &AttrPath, schema: &str) -> bool {
    path.urn
        .as_deref()
        .is_none_or(|u| u.eq_ignore_ascii_case(schema))
}

/// `attr` or `attr.value`.
fn value_sub(path: &AttrPath) -> bool {
    path.sub
        .as_deref()
        .is_none_or(|s| s.eq_ignore_ascii_case("value"))
}

fn is_members(path: &AttrPath) -> bool {
    in_schema(path, GROUP_SCHEMA) && path.name.eq_ignore_ascii_case("members")
}

/// Literal as the string it is compared with (legacy unquoted numbers too).
fn literal(v: &CompValue) -> Option<String> {
    match v {
        CompValue::Str(s) => Some(s.clone()),
        CompValue::Num(n) => Some(n.to_string()),
        _ => None,
    }
}

fn unsupported_members_filter() -> ScimError {
    ScimError::invalid_filter(
        "members can only be filtered with members eq \"<user id>\" (or members[value eq \"<user id>\"])",
    )
}

fn collect_member_values(f: &Filter, out: &mut Vec<ResourceId>) -> Result<(), ScimError> {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => {
            collect_member_values(a, out)?;
            collect_member_values(b, out)
        }
        Filter::Not(inner) => collect_member_values(inner, out),
        Filter::Attr { path, test } if is_members(path) => match test {
            AttrTest::Compare(CompareOp::Eq, CompValue::Str(v)) if value_sub(path) => {
                out.extend(ResourceId::parse(v));
                Ok(())
            }
            _ => Err(unsupported_members_filter()),
        },
        Filter::ValuePath { path, filter, sub } if is_members(path) => {
            if sub.is_some() {
                return Err(unsupported_members_filter());
            }
            collect_value_eq(filter, out)
        }
        _ => Ok(()),
    }
}

/// Inside `members[...]`: only `value eq "x"` terms (joined by and/or).
fn collect_value_eq(f: &Filter, out: &mut Vec<ResourceId>) -> Result<(), ScimError> {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => {
            collect_value_eq(a, out)?;
            collect_value_eq(b, out)
        }
        Filter::Attr {
            path,
            test: AttrTest::Compare(CompareOp::Eq, CompValue::Str(v)),
        } if path.is("value") => {
            out.extend(ResourceId::parse(v));
            Ok(())
        }
        _ => Err(unsupported_members_filter()),
    }
}

#[cfg(test)]
mod tests {
    use scim_proto::filter::parse_filter;

    use super::*;

    fn users(f: &str) -> Option<UserLookup> {
        user_lookup(&parse_filter(f).unwrap())
    }

    fn groups(f: &str) -> Option<GroupLookup> {
        group_lookup(&parse_filter(f).unwrap())
    }

    #[test]
    fn entra_match_queries_are_planned_onto_key_reads() {
        assert_eq!(
            users(r#"externalId eq "abc""#),
            Some(UserLookup::ExternalId("abc".into()))
        );
        assert_eq!(
            users(r#"userName eq "A@b.c""#),
            Some(UserLookup::UserName("A@b.c".into()))
        );
        assert_eq!(
            users(r#"emails[type eq "work"].value eq "a@b.c""#),
            Some(UserLookup::Email("a@b.c".into()))
        );
        assert_eq!(
            users(r#"id eq "u1" and manager eq "m1""#),
            Some(UserLookup::Id("u1".into()))
        );
        assert_eq!(
            users(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#),
            Some(UserLookup::UserName("x".into()))
        );
    }

    #[test]
    fn filters_without_an_indexed_equality_are_not_planned() {
        assert_eq!(users(r#"userName sw "a""#), None);
        assert_eq!(users(r#"userName eq "a" or externalId eq "b""#), None);
        assert_eq!(users(r#"title eq "CEO""#), None);
    }

    #[test]
    fn entra_group_queries_are_planned_onto_key_reads() {
        assert_eq!(
            groups(r#"displayName eq "Sales""#),
            Some(GroupLookup::DisplayName("Sales".into()))
        );
        assert_eq!(
            groups(r#"externalId eq "g1""#),
            Some(GroupLookup::ExternalId("g1".into()))
        );
        assert_eq!(
            groups(r#"id eq "g" and members eq "u""#),
            Some(GroupLookup::Id("g".into()))
        );
        assert_eq!(
            groups(r#"members[value eq "u"]"#),
            Some(GroupLookup::Member("u".into()))
        );
    }

    #[test]
    fn members_filters_other_than_equality_are_invalid() {
        let f = parse_filter(r#"members co "u""#).unwrap();
        assert!(member_values(&f).is_err());
        let f = parse_filter(r#"members pr"#).unwrap();
        assert!(member_values(&f).is_err());
        let f = parse_filter(r#"id eq "g" and members eq "u""#).unwrap();
        assert_eq!(member_values(&f).unwrap().len(), 1);
    }
}
