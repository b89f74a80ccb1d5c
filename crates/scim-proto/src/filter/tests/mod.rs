//! Unit tests of the filter parser, by topic; shared helpers here.

mod display;
mod errors;
mod grammar;
mod robustness;

use serde_json::Number;

use super::*;
use crate::ScimType;
use crate::ast::{AttrPath, AttrTest, CompValue, CompareOp};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn parse(s: &str) -> Filter {
    parse_filter(s).unwrap_or_else(|e| panic!("{s:?} should parse: {}", e.detail))
}

fn error(s: &str) -> ScimError {
    let err = parse_filter(s).expect_err(s);
    assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{s:?}");
    assert_eq!(err.status, 400);
    err
}

fn attr(path: AttrPath, op: CompareOp, value: CompValue) -> Filter {
    Filter::Attr {
        path,
        test: AttrTest::Compare(op, value),
    }
}

fn eq(name: &str, value: &str) -> Filter {
    attr(AttrPath::simple(name), CompareOp::Eq, s(value))
}

fn s(v: &str) -> CompValue {
    CompValue::Str(v.to_owned())
}

fn and(l: Filter, r: Filter) -> Filter {
    Filter::And(Box::new(l), Box::new(r))
}

fn or(l: Filter, r: Filter) -> Filter {
    Filter::Or(Box::new(l), Box::new(r))
}

fn present(path: AttrPath) -> Filter {
    Filter::Attr {
        path,
        test: AttrTest::Present,
    }
}

const SAMPLES: &[&str] = &[
    r#"userName eq "alice@contoso.com""#,
    r#"externalId eq "5a2c6f0e-1b7d-4c3e-9f10-2d1a0b3c4d5e""#,
    r#"emails[type eq "work"].value eq "user@contoso.com""#,
    r#"displayName eq "Sales EMEA""#,
    r#"id eq "x" and manager eq "y""#,
    r#"id eq "g" and members eq "u""#,
    r#"title pr and userType eq "Employee""#,
    r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
    r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
    r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
    r#"not (userName eq "x")"#,
    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
    "name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co example.org)",
    "externalId eq jyoung",
    r#"active eq True and age ge -1.5e3 and nickName eq null"#,
    r#"title eq "\ud83d\ude00 \" \\ \n""#,
    r#"(a eq 1 or b eq 2) and not (c pr or d[e eq 1 or (f eq 2)].g ne 3)"#,
    r#"emails[primary eq true].value eq "a@b.com""#,
    r#"members.$ref pr"#,
];
