//! Evaluates parsed filters on rendered SCIM documents (RFC 7644 §3.4.2.2).
//!
//! Rules, in short:
//! - attribute names match JSON keys ignoring case; a URN-qualified name is
//!   looked up in the object under that URN key, except the core schema's URN,
//!   whose attributes live at the top level; an unqualified name missing at
//!   the top level is looked up in the extension objects (Entra's legacy
//!   `manager eq "y"` names an enterprise attribute without its URN);
//! - on a multi-valued attribute a comparison holds if any element satisfies
//!   it; a complex attribute compared without a sub-attribute compares its
//!   `value` sub-attribute (`emails eq "x"`, `members eq "u"`, `manager eq "y"`);
//! - strings compare ignoring case unless the schema marks the compared
//!   attribute `caseExact` (unknown attributes: ignoring case);
//! - `ne` on an absent attribute holds; `pr` wants a non-null, non-empty value.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::str::FromStr;

use serde_json::{Map, Number, Value};

use crate::ast::{AttrPath, AttrTest, CompValue, CompareOp, Filter};
use crate::resource::parse_bool;
use crate::schema::{AttrType, AttributeDef, ResourceType};

impl Filter {
    /// Whether `resource` (a rendered resource of type `rt`) satisfies this
    /// filter.
    pub fn matches(&self, resource: &Value, rt: &ResourceType) -> bool {
        self.eval(Scope::Resource { doc: resource, rt })
    }

    /// Whether one element of the multi-valued attribute `attr` satisfies
    /// this filter read as the inside of `attr[…]`: what the PATCH engine
    /// needs to select elements for `members[value eq "x"]`, without building
    /// a wrapper document per element.
    pub fn matches_element(&self, element: &Value, rt: &ResourceType, attr: &AttrPath) -> bool {
        self.eval(Scope::Element {
            element,
            parent: attr_def(rt, attr),
        })
    }

    fn eval(&self, scope: Scope<'_>) -> bool {
        match self {
            Filter::And(l, r) => l.eval(scope) && r.eval(scope),
            Filter::Or(l, r) => l.eval(scope) || r.eval(scope),
            Filter::Not(inner) => !inner.eval(scope),
            Filter::Attr { path, test } => {
                let (value, def) = scope.lookup(path);
                eval_test(value, path.sub.as_deref(), def, test)
            }
            Filter::ValuePath { path, filter, sub } => {
                let (value, def) = scope.lookup(path);
                elements(value).any(|element| {
                    filter.eval(Scope::Element {
                        element,
                        parent: def,
                    }) && sub.as_ref().is_none_or(|(name, test)| {
                        let sub_def = def.and_then(|d| d.sub(name));
                        eval_test(field(element, name), None, sub_def, test)
                    })
                })
            }
        }
    }
}

/// What attribute names are relative to.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// A whole resource.
    Resource {
        doc: &'a Value,
        rt: &'a ResourceType,
    },
    /// One element of a multi-valued attribute, inside `attr[…]`; `parent`
    /// is that attribute's definition, for the sub-attributes' `caseExact`.
    Element {
        element: &'a Value,
        parent: Option<&'static AttributeDef>,
    },
}

impl<'a> Scope<'a> {
    /// The value of `path`'s attribute (ignoring `path.sub`) and its
    /// definition, when the schema knows it.
    fn lookup(self, path: &AttrPath) -> (Option<&'a Value>, Option<&'static AttributeDef>) {
        match self {
            Scope::Resource { doc, rt } => (resource_value(doc, rt, path), attr_def(rt, path)),
            Scope::Element { element, parent } => (
                field(element, &path.name),
                parent.and_then(|p| p.sub(&path.name)),
            ),
        }
    }
}

pub(crate) fn resource_value<'a>(
    doc: &'a Value,
    rt: &ResourceType,
    path: &AttrPath,
) -> Option<&'a Value> {
    let obj = doc.as_object()?;
    match &path.urn {
        Some(urn) if rt.schema.id.eq_ignore_ascii_case(urn) => get_ci(obj, &path.name),
        Some(urn) => get_ci(obj, urn)?
            .as_object()
            .and_then(|ext| get_ci(ext, &path.name)),
        None => get_ci(obj, &path.name).or_else(|| {
            obj.iter()
                .filter(|(key, _)| key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")))
                .find_map(|(_, ext)| ext.as_object().and_then(|ext| get_ci(ext, &path.name)))
        }),
    }
}

/// Like [`ResourceType::resolve`] for the attribute itself, but an
/// unqualified name also resolves in the extensions (see the module doc).
pub(crate) fn attr_def(rt: &ResourceType, path: &AttrPath) -> Option<&'static AttributeDef> {
    match &path.urn {
        Some(urn) => rt.schema_for_urn(urn)?.attribute(&path.name),
        None => rt.schema.attribute(&path.name).or_else(|| {
            rt.extensions
                .iter()
                .find_map(|(schema, _)| schema.attribute(&path.name))
        }),
    }
}

/// A member of an element: an object key, or the element itself as `value`
/// when the attribute is multi-valued but simple (e.g. `schemas`).
fn field<'a>(element: &'a Value, name: &str) -> Option<&'a Value> {
    match element {
        Value::Object(obj) => get_ci(obj, name),
        other if name.eq_ignore_ascii_case("value") => Some(other),
        _ => None,
    }
}

pub(crate) fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The elements a value filter ranges over; a single complex value counts as
/// one element.
fn elements(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    let items: &[Value] = match value {
        Some(Value::Array(items)) => items,
        Some(v @ Value::Object(_)) => std::slice::from_ref(v),
        _ => &[],
    };
    items.iter()
}

/// Applies `test` to the attribute `value` (or its `sub`-attribute). `def`
/// is the attribute's definition.
fn eval_test(
    value: Option<&Value>,
    sub: Option<&str>,
    def: Option<&'static AttributeDef>,
    test: &AttrTest,
) -> bool {
    let (op, literal) = match test {
        AttrTest::Present => return present(value, sub),
        AttrTest::Compare(op, literal) => (*op, literal),
    };
    if let CompValue::Null = literal {
        // `eq null` asks for absence, `ne null` for presence.
        return match op {
            CompareOp::Eq => !present(value, sub),
            CompareOp::Ne => present(value, sub),
            _ => false,
        };
    }
    let case_exact = compared_def(def, sub).is_some_and(|d| d.case_exact);
    let leaves = leaves(value, sub);
    if leaves.is_empty() {
        return op == CompareOp::Ne;
    }
    leaves
        .into_iter()
        .any(|leaf| compare(leaf, op, literal, case_exact))
}

/// The definition whose `caseExact` governs the comparison: the
/// sub-attribute's, or `value`'s for a complex attribute compared whole.
fn compared_def(
    def: Option<&'static AttributeDef>,
    sub: Option<&str>,
) -> Option<&'static AttributeDef> {
    let def = def?;
    match sub {
        Some(sub) => def.sub(sub),
        None if def.ty == AttrType::Complex => def.sub("value"),
        None => Some(def),
    }
}

/// The non-null values a comparison looks at: every element of a
/// multi-valued attribute, and of complex values their `sub` (else `value`).
fn leaves<'v>(value: Option<&'v Value>, sub: Option<&str>) -> Vec<&'v Value> {
    let mut out = Vec::new();
    let mut push = |item: &'v Value| {
        let leaf = match item {
            Value::Object(obj) => get_ci(obj, sub.unwrap_or("value")),
            Value::Array(_) | Value::Null => None,
            scalar => sub.is_none().then_some(scalar),
        };
        match leaf {
            Some(Value::Array(items)) => out.extend(items.iter().filter(|v| !v.is_null())),
            Some(Value::Null) | None => {}
            Some(leaf) => out.push(leaf),
        }
    };
    match value {
        Some(Value::Array(items)) => items.iter().for_each(&mut push),
        Some(item) => push(item),
        None => {}
    }
    out
}

fn present(value: Option<&Value>, sub: Option<&str>) -> bool {
    match sub {
        None => value.is_some_and(is_present),
        Some(_) => leaves(value, sub).into_iter().any(is_present),
    }
}

fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(obj) => obj.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare(leaf: &Value, op: CompareOp, literal: &CompValue, case_exact: bool) -> bool {
    match op {
        CompareOp::Eq => equals(leaf, literal, case_exact),
        CompareOp::Ne => !equals(leaf, literal, case_exact),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
            let (Some(have), Some(want)) = (leaf.as_str(), literal_text(literal)) else {
                return false;
            };
            let (have, want) = if case_exact {
                (Cow::Borrowed(have), want)
            } else {
                (
                    Cow::Owned(have.to_lowercase()),
                    Cow::Owned(want.to_lowercase()),
                )
            };
            match op {
                CompareOp::Co => have.contains(want.as_ref()),
                CompareOp::Sw => have.starts_with(want.as_ref()),
                _ => have.ends_with(want.as_ref()),
            }
        }
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
            order(leaf, literal, case_exact).is_some_and(|o| match op {
                CompareOp::Gt => o.is_gt(),
                CompareOp::Ge => o.is_ge(),
                CompareOp::Lt => o.is_lt(),
                _ => o.is_le(),
            })
        }
    }
}

fn equals(leaf: &Value, literal: &CompValue, case_exact: bool) -> bool {
    match (leaf, literal) {
        (Value::String(a), CompValue::Str(b)) => str_cmp(a, b, case_exact).is_eq(),
        // `externalId eq 12345` (unquoted) against a string attribute.
        (Value::String(a), CompValue::Num(n)) => str_cmp(a, &n.to_string(), case_exact).is_eq(),
        // Entra writes booleans as "True"/"False"; accept both directions.
        (Value::String(a), CompValue::Bool(b)) => parse_bool(a.trim()) == Some(*b),
        (Value::Bool(a), CompValue::Str(s)) => parse_bool(s.trim()) == Some(*a),
        (Value::Bool(a), CompValue::Bool(b)) => a == b,
        (Value::Number(a), CompValue::Num(b)) => num_cmp(a, b).is_some_and(Ordering::is_eq),
        (Value::Number(a), CompValue::Str(s)) => parse_number(s)
            .and_then(|b| num_cmp(a, &b))
            .is_some_and(Ordering::is_eq),
        _ => false,
    }
}

/// Ordering for `gt`/`ge`/`lt`/`le`: numbers numerically, strings (dateTimes
/// included, which share one RFC 3339 format) lexicographically; booleans and
/// mixed kinds have none.
fn order(leaf: &Value, literal: &CompValue, case_exact: bool) -> Option<Ordering> {
    match (leaf, literal) {
        (Value::Number(a), CompValue::Num(b)) => num_cmp(a, b),
        (Value::Number(a), CompValue::Str(s)) => num_cmp(a, &parse_number(s)?),
        (Value::String(a), literal) => Some(str_cmp(a, &literal_text(literal)?, case_exact)),
        _ => None,
    }
}

/// The literal as text, for string operators: strings, and numbers written
/// unquoted against string attributes.
fn literal_text(literal: &CompValue) -> Option<Cow<'_, str>> {
    match literal {
        CompValue::Str(s) => Some(Cow::Borrowed(s)),
        CompValue::Num(n) => Some(Cow::Owned(n.to_string())),
        CompValue::Bool(_) | CompValue::Null => None,
    }
}

fn str_cmp(a: &str, b: &str, case_exact: bool) -> Ordering {
    if case_exact {
        a.cmp(b)
    } else {
        a.chars()
            .flat_map(char::to_lowercase)
            .cmp(b.chars().flat_map(char::to_lowercase))
    }
}

fn parse_number(s: &str) -> Option<Number> {
    Number::from_str(s.trim()).ok()
}

/// Exact for integers (any mix of signed and unsigned), else via `f64`.
pub(crate) fn num_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::ast::{AttrPath, Filter};
    use crate::filter::parse_filter;
    use crate::schema::{GROUP_RESOURCE, USER_RESOURCE};

    fn user() -> serde_json::Value {
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User"
            ],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "JYoung",
            "userName": "Jane.Young@Contoso.com",
            "name": { "givenName": "Jane", "familyName": "Young", "middleName": null },
            "displayName": "Jane Young",
            "nickName": "",
            "title": "Engineer",
            "userType": "Employee",
            "active": true,
            "emails": [
                { "value": "jane@contoso.com", "type": "work", "primary": true },
                { "value": "JANE@home.example.org", "type": "home" }
            ],
            "phoneNumbers": [{ "value": "+1 555 0100", "type": "mobile" }],
            "roles": [{ "value": "Admin", "primary": "True" }],
            "meta": {
                "resourceType": "User",
                "created": "2011-05-13T04:42:34Z",
                "lastModified": "2011-05-14T04:42:34Z"
            },
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "manager": { "value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith" }
            },
            "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User": {
                "costCode": "CC-17",
                "level": 7
            }
        })
    }

    fn group() -> serde_json::Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
            "displayName": "Sales EMEA",
            "members": [
                { "value": "2819c223-7f76-453a-919d-413861904646", "display": "Jane Young" },
                { "value": "902c246b-6245-4190-8e05-00816be7344a" }
            ]
        })
    }

    fn filter(s: &str) -> Filter {
        parse_filter(s).unwrap_or_else(|e| panic!("{s:?} should parse: {}", e.detail))
    }

    fn user_matches(s: &str) -> bool {
        filter(s).matches(&user(), &USER_RESOURCE)
    }

    fn group_matches(s: &str) -> bool {
        filter(s).matches(&group(), &GROUP_RESOURCE)
    }

    // --- Entra matching queries (entra.md §2.11) ---

    #[test]
    fn matches_user_name_case_insensitively() {
        // Arrange
        let f = filter(r#"userName eq "jane.young@contoso.COM""#);
        // Act
        let hit = f.matches(&user(), &USER_RESOURCE);
        // Assert
        assert!(hit);
        assert!(!user_matches(r#"userName eq "jane.young@contoso.net""#));
    }

    #[test]
    fn external_id_match_is_case_exact() {
        assert!(user_matches(r#"externalId eq "JYoung""#));
        assert!(!user_matches(r#"externalId eq "jyoung""#));
    }

    #[test]
    fn id_match_is_case_exact() {
        assert!(user_matches(
            r#"id eq "2819c223-7f76-453a-919d-413861904646""#
        ));
        assert!(!user_matches(
            r#"id eq "2819C223-7F76-453A-919D-413861904646""#
        ));
    }

    #[test]
    fn unquoted_legacy_value_matches_like_a_string() {
        assert!(user_matches("externalId eq JYoung"));
        assert!(!user_matches("externalId eq jyoung"));
    }

    #[test]
    fn matches_entra_email_match_through_value_path_and_sub_attribute() {
        assert!(user_matches(
            r#"emails[type eq "work"].value eq "JANE@contoso.com""#
        ));
        assert!(!user_matches(
            r#"emails[type eq "work"].value eq "jane@home.example.org""#
        ));
    }

    #[test]
    fn value_path_sub_attribute_must_hold_on_the_same_element() {
        // The home address matches the value but not the type filter.
        assert!(!user_matches(
            r#"emails[type eq "home"].value eq "jane@contoso.com""#
        ));
        assert!(user_matches(
            r#"emails[type eq "home"].value eq "jane@home.example.org""#
        ));
    }

    #[test]
    fn test_connection_probe_with_random_guid_matches_nothing() {
        assert!(!user_matches(
            r#"userName eq "0c6b4a6e-2f55-4d3b-9a7e-8f9d6c5b4a3e""#
        ));
    }

    #[test]
    fn matches_group_display_name_case_insensitively() {
        assert!(group_matches(r#"displayName eq "sales emea""#));
        assert!(!group_matches(r#"displayName eq "Sales APAC""#));
    }

    #[test]
    fn matches_legacy_manager_reference_check_without_urn() {
        assert!(user_matches(
            r#"id eq "2819c223-7f76-453a-919d-413861904646" and manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#
        ));
        assert!(!user_matches(
            r#"id eq "2819c223-7f76-453a-919d-413861904646" and manager eq "someone-else""#
        ));
    }

    #[test]
    fn manager_value_comparison_is_case_exact() {
        assert!(!user_matches(
            r#"manager eq "26118915-6090-4610-87E4-49D8CA9F808D""#
        ));
    }

    #[test]
    fn matches_legacy_group_membership_check() {
        assert!(group_matches(
            r#"id eq "e9e30dba-f08f-4109-8486-d5c6a331660a" and members eq "902c246b-6245-4190-8e05-00816be7344a""#
        ));
        assert!(!group_matches(
            r#"id eq "e9e30dba-f08f-4109-8486-d5c6a331660a" and members eq "not-a-member""#
        ));
    }

    #[test]
    fn member_value_comparison_is_case_exact() {
        assert!(!group_matches(
            r#"members eq "902C246B-6245-4190-8E05-00816BE7344A""#
        ));
        assert!(!group_matches(
            r#"members[value eq "902C246B-6245-4190-8E05-00816BE7344A"]"#
        ));
        assert!(group_matches(
            r#"members[value eq "902c246b-6245-4190-8e05-00816be7344a"]"#
        ));
    }

    // --- URN-qualified names ---

    #[test]
    fn matches_enterprise_attribute_by_urn_ignoring_case() {
        assert!(user_matches(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#
        ));
        assert!(user_matches(
            r#"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:EmployeeNumber eq "701984""#
        ));
    }

    #[test]
    fn enterprise_urn_does_not_look_at_the_top_level() {
        assert!(!user_matches(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName pr"#
        ));
    }

    #[test]
    fn core_urn_qualified_name_looks_at_the_top_level() {
        assert!(user_matches(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "JANE.YOUNG@contoso.com""#
        ));
    }

    #[test]
    fn matches_custom_extension_attribute_by_urn() {
        let urn = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
        assert!(user_matches(&format!(r#"{urn}:costCode eq "cc-17""#)));
        assert!(user_matches(&format!(
            "{urn}:level ge 7 and {urn}:level lt 10"
        )));
        assert!(!user_matches(&format!("{urn}:level gt 7")));
    }

    #[test]
    fn attribute_names_match_keys_ignoring_case() {
        assert!(user_matches(r#"USERNAME eq "jane.young@contoso.com""#));
        assert!(user_matches(
            r#"EMAILS[TYPE eq "work"].VALUE eq "jane@contoso.com""#
        ));
        assert!(user_matches(r#"name.GIVENNAME eq "jane""#));
    }

    // --- Multi-valued and complex attributes ---

    #[test]
    fn multi_valued_complex_without_sub_attribute_compares_value() {
        assert!(user_matches(r#"emails eq "jane@home.example.org""#));
        assert!(user_matches(r#"emails co "example.org""#));
        assert!(!user_matches(r#"emails eq "work""#));
    }

    #[test]
    fn multi_valued_sub_attribute_matches_any_element() {
        assert!(user_matches(r#"emails.type eq "home""#));
        assert!(user_matches(r#"emails.value ew "@CONTOSO.COM""#));
    }

    #[test]
    fn value_filter_without_sub_attribute_matches_when_any_element_matches() {
        assert!(user_matches(
            r#"emails[type eq "work" and value co "@contoso.com"]"#
        ));
        assert!(!user_matches(
            r#"emails[type eq "work" and value co "@example.org"]"#
        ));
        assert!(user_matches(
            r#"emails[primary eq true].value eq "jane@contoso.com""#
        ));
        assert!(!user_matches(
            r#"emails[primary eq true].value eq "jane@home.example.org""#
        ));
    }

    #[test]
    fn value_filter_on_a_missing_attribute_matches_nothing() {
        assert!(!user_matches(r#"addresses[type eq "work"]"#));
        assert!(!user_matches(
            r#"addresses[type eq "work"].locality ne "x""#
        ));
    }

    #[test]
    fn value_filter_supports_not_inside_brackets() {
        assert!(user_matches(
            r#"emails[not (type eq "work")].value eq "jane@home.example.org""#
        ));
        assert!(!user_matches(
            r#"emails[not (type eq "home")].value eq "jane@home.example.org""#
        ));
    }

    // --- Operators ---

    #[test]
    fn string_operators_ignore_case_by_default() {
        assert!(user_matches(r#"title sw "eng""#));
        assert!(user_matches(r#"title ew "NEER""#));
        assert!(user_matches(r#"title co "GIN""#));
        assert!(!user_matches(r#"title sw "neer""#));
    }

    #[test]
    fn string_operators_respect_case_exact() {
        assert!(user_matches(r#"externalId sw "JY""#));
        assert!(!user_matches(r#"externalId sw "jy""#));
    }

    #[test]
    fn compares_date_times_as_strings() {
        assert!(user_matches(
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#
        ));
        assert!(user_matches(r#"meta.created ge "2011-05-13T04:42:34Z""#));
        assert!(!user_matches(r#"meta.created lt "2011-05-13T04:42:34Z""#));
        assert!(user_matches(r#"meta.created le "2011-05-13T04:42:34Z""#));
    }

    #[test]
    fn compares_numbers_numerically() {
        let doc = serde_json::json!({ "n": 10, "f": 2.5, "big": 18_446_744_073_709_551_615_u64, "neg": -3 });
        let m = |s: &str| filter(s).matches(&doc, &USER_RESOURCE);
        assert!(m("n gt 9"));
        assert!(m("n eq 10.0"));
        assert!(!m("n lt 9"));
        assert!(m("f lt 3 and f gt 2"));
        assert!(m("big gt 0 and neg lt 0"));
        assert!(m(r#"n eq "10""#));
    }

    #[test]
    fn ordering_on_booleans_is_false() {
        assert!(!user_matches("active gt false"));
        assert!(!user_matches("active ge true"));
        assert!(!user_matches("active lt true"));
    }

    #[test]
    fn boolean_attribute_matches_true_false_strings_ignoring_case() {
        assert!(user_matches("active eq true"));
        assert!(user_matches(r#"active eq "True""#));
        assert!(user_matches(r#"active eq "TRUE""#));
        assert!(!user_matches(r#"active eq "False""#));
        assert!(user_matches(r#"active ne "False""#));
        assert!(!user_matches(r#"active eq "yes""#));
    }

    #[test]
    fn string_boolean_attribute_matches_boolean_literal() {
        assert!(user_matches("roles[primary eq true].value eq \"admin\""));
    }

    #[test]
    fn unquoted_number_matches_string_attribute() {
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        assert!(user_matches(&format!("{urn}:employeeNumber eq 701984")));
    }

    #[test]
    fn present_requires_a_non_null_non_empty_value() {
        assert!(user_matches("title pr"));
        assert!(user_matches("emails pr"));
        assert!(user_matches("name pr"));
        assert!(user_matches("emails.type pr"));
        assert!(!user_matches("nickName pr"));
        assert!(!user_matches("name.middleName pr"));
        assert!(!user_matches("addresses pr"));
        assert!(!user_matches("emails.display pr"));
        let empty = serde_json::json!({ "emails": [], "name": {} });
        assert!(!filter("emails pr").matches(&empty, &USER_RESOURCE));
        assert!(!filter("name pr").matches(&empty, &USER_RESOURCE));
    }

    #[test]
    fn ne_on_a_missing_attribute_is_true() {
        assert!(user_matches(r#"preferredLanguage ne "en""#));
        assert!(user_matches(r#"name.middleName ne "x""#));
        assert!(!user_matches(r#"preferredLanguage eq "en""#));
    }

    #[test]
    fn ne_ignores_case_like_eq() {
        assert!(!user_matches(r#"title ne "ENGINEER""#));
        assert!(user_matches(r#"externalId ne "jyoung""#));
    }

    #[test]
    fn null_literal_tests_absence_and_presence() {
        assert!(user_matches("preferredLanguage eq null"));
        assert!(user_matches("name.middleName eq null"));
        assert!(!user_matches("title eq null"));
        assert!(user_matches("title ne null"));
        assert!(!user_matches("title gt null"));
    }

    #[test]
    fn unknown_attributes_compare_ignoring_case() {
        let doc = serde_json::json!({ "favouriteColour": "Teal" });
        assert!(filter(r#"favouriteColour eq "TEAL""#).matches(&doc, &USER_RESOURCE));
    }

    #[test]
    fn non_object_documents_match_only_absence_tests() {
        let doc = serde_json::json!("not an object");
        assert!(!filter(r#"userName eq "x""#).matches(&doc, &USER_RESOURCE));
        assert!(filter(r#"userName ne "x""#).matches(&doc, &USER_RESOURCE));
    }

    // --- Logic and RFC examples ---

    #[test]
    fn logical_operators_combine_results() {
        assert!(user_matches(r#"not (userName eq "x")"#));
        assert!(!user_matches(r#"not (title pr)"#));
        assert!(user_matches(r#"title eq "x" or title eq "engineer""#));
        assert!(!user_matches(
            r#"title eq "engineer" and userType eq "Intern""#
        ));
    }

    #[test]
    fn evaluates_rfc_examples_on_a_rendered_user() {
        // Arrange
        let cases = [
            (r#"title pr and userType eq "Employee""#, true),
            (r#"title pr or userType eq "Intern""#, true),
            (
                r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
                true,
            ),
            (
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
                false,
            ),
            (
                r#"userType eq "Employee" and (emails.type eq "work")"#,
                true,
            ),
            (
                r#"userType eq "Employee" and emails[type eq "work" and value co "@contoso.com"]"#,
                true,
            ),
            (
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
                false,
            ),
            (r#"name.familyName co "oun""#, true),
            (
                r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
                true,
            ),
        ];
        for (text, expected) in cases {
            // Act
            let hit = user_matches(text);
            // Assert
            assert_eq!(hit, expected, "{text}");
        }
    }

    #[test]
    fn matches_a_single_element_with_the_attribute_case_exactness() {
        // Arrange
        let inner = filter(r#"value eq "902c246b-6245-4190-8e05-00816be7344a""#);
        let members = AttrPath::simple("members");
        let element = json!({ "value": "902c246b-6245-4190-8e05-00816be7344a" });
        let shouted = json!({ "value": "902C246B-6245-4190-8E05-00816BE7344A" });
        // Act / Assert
        assert!(inner.matches_element(&element, &GROUP_RESOURCE, &members));
        assert!(!inner.matches_element(&shouted, &GROUP_RESOURCE, &members));
        let work = filter(r#"type eq "WORK""#);
        let email = json!({ "type": "work", "value": "a@b.c" });
        assert!(work.matches_element(&email, &USER_RESOURCE, &AttrPath::simple("emails")));
    }

    #[test]
    fn storage_can_pick_an_indexed_term_from_conjuncts() {
        let f = filter(r#"id eq "g" and members eq "u""#);
        let indexed = f.conjuncts().into_iter().find(
            |c| matches!(c, Filter::Attr { path, .. } if path.is("members") || path.is("id")),
        );
        assert!(indexed.is_some());
    }

    #[test]
    fn documents_with_multi_byte_keys_and_values_evaluate() {
        // Arrange
        let doc = json!({
            "userName": "İstanbul€",
            "ab€": "x",
            "urn€:x": {"userName": "nope"},
            "emails": [{"value": "ü@x", "type": "wörk"}]
        });
        let matches = |s: &str| filter(s).matches(&doc, &USER_RESOURCE);
        // Act / Assert
        assert!(matches(r#"userName eq "İSTANBUL€""#));
        assert!(matches(r#"userName sw "İs""#));
        assert!(matches(r#"emails[type eq "WÖRK"].value co "Ü""#));
        assert!(!matches(r#"nickName eq "x""#));
        assert!(!matches(r#"userName eq "nope""#));
    }
}
