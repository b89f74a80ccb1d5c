//! Attribute mapping: an ordered list of `SCIM attribute path → member
//! property`, validated when saved and evaluated on each SCIM user at sync.
//!
//! Paths use the SCIM PATCH-path grammar (`title`, `name.givenName`,
//! `emails[type eq "work"].value`, `urn:…:enterprise:2.0:User:department`,
//! custom extension URNs) plus two special sources:
//! - `groups`: the names of the user's groups (sorted array);
//! - the enterprise `manager` (`urn:…:enterprise:2.0:User:manager`, with or
//!   without `.value`, or unqualified `manager`): the **member id** of the
//!   manager's member, resolved at sync.
//!
//! Evaluation: a path naming a whole attribute yields its value as stored;
//! a sub-attribute of a multi-valued attribute, or a value-filter path,
//! selects elements: one selected value is the property's value, several
//! are an array, none leaves the property absent (as does `null`).

use std::collections::BTreeMap;

use scim_proto::ast::{AttrPath, Filter, PatchPath};
use scim_proto::path::parse_patch_path;
use scim_proto::schema::{
    AttributeDef, ENTERPRISE_USER, ENTERPRISE_USER_SCHEMA, Returned, USER_RESOURCE, USER_SCHEMA,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One mapping entry: where the value comes from and which member property
/// it goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingEntry {
    pub path: String,
    pub property: String,
}

impl MappingEntry {
    pub fn new(path: impl Into<String>, property: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            property: property.into(),
        }
    }
}

/// Why a mapping (or one `PATH=PROPERTY` assignment) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A `PATH=PROPERTY` argument that does not have that shape.
    #[error("{input:?}: {reason}")]
    Assignment { input: String, reason: String },
    /// One entry is wrong; `index` counts from 1.
    #[error("mapping entry {index} ({path}={property}): {reason}")]
    Entry {
        index: usize,
        path: String,
        property: String,
        reason: String,
    },
    /// The mapping as a whole is wrong (too many entries).
    #[error("{0}")]
    Mapping(String),
}

/// Most entries a mapping may have.
pub const MAX_ENTRIES: usize = 100;
/// Longest property name.
pub const MAX_PROPERTY_LEN: usize = 128;
/// Longest path.
pub const MAX_PATH_LEN: usize = 512;

/// The mapping a tenant starts with.
pub fn default_mapping() -> Vec<MappingEntry> {
    let ent = |attr: &str| format!("{ENTERPRISE_USER_SCHEMA}:{attr}");
    vec![
        MappingEntry::new("title", "jobTitle"),
        MappingEntry::new(ent("department"), "department"),
        MappingEntry::new(r#"addresses[type eq "work"].locality"#, "city"),
        MappingEntry::new(r#"addresses[type eq "work"].country"#, "country"),
        MappingEntry::new(r#"phoneNumbers[type eq "work"].value"#, "phone"),
        MappingEntry::new(ent("employeeNumber"), "employeeNumber"),
        MappingEntry::new(ent("manager"), "manager"),
    ]
}

/// Parses `PATH=PROPERTY`, split at the last `=` that is outside brackets
/// and quotes (so `emails[value eq "a=b"].value=mail` works). Only the
/// shape is checked here; [`validate`] checks the path and property.
pub fn parse_assignment(s: &str) -> Result<MappingEntry, MappingError> {
    let err = |reason: &str| MappingError::Assignment {
        input: s.to_owned(),
        reason: reason.to_owned(),
    };
    let mut depth = 0usize;
    let (mut in_quotes, mut escaped) = (false, false);
    let mut split = None;
    for (i, c) in s.char_indices() {
        if in_quotes {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '=' if depth == 0 => split = Some(i),
            _ => {}
        }
    }
    let i = split.ok_or_else(|| err("expected PATH=PROPERTY"))?;
    let (path, property) = (s[..i].trim(), s[i + 1..].trim());
    if path.is_empty() {
        return Err(err("the SCIM attribute path before '=' is empty"));
    }
    if property.is_empty() {
        return Err(err("the member property after '=' is empty"));
    }
    Ok(MappingEntry::new(path, property))
}

/// Checks every entry: the path parses and names a known attribute (core
/// User schema, enterprise extension, a custom extension URN, `groups`),
/// the property name is usable, and no property is mapped twice.
pub fn validate(entries: &[MappingEntry]) -> Result<(), MappingError> {
    Compiled::new(entries).map(|_| ())
}

/// Where a property's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    Groups,
    Manager,
    Path(Box<PatchPath>),
}

/// A validated mapping, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Compiled {
    pub(crate) entries: Vec<(String, Source)>,
}

impl Compiled {
    pub(crate) fn new(entries: &[MappingEntry]) -> Result<Self, MappingError> {
        if entries.len() > MAX_ENTRIES {
            return Err(MappingError::Mapping(format!(
                "a mapping has at most {MAX_ENTRIES} entries, this one has {}",
                entries.len()
            )));
        }
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut out = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let index = i + 1;
            let fail = |reason: String| MappingError::Entry {
                index,
                path: e.path.clone(),
                property: e.property.clone(),
                reason,
            };
            check_property(&e.property).map_err(fail)?;
            if let Some(first) = seen.insert(e.property.as_str(), index) {
                return Err(fail(format!(
                    "property {:?} is already mapped by entry {first}",
                    e.property
                )));
            }
            let source = compile_path(&e.path).map_err(fail)?;
            out.push((e.property.clone(), source));
        }
        Ok(Self { entries: out })
    }

    pub(crate) fn has_groups(&self) -> bool {
        self.entries.iter().any(|(_, s)| *s == Source::Groups)
    }

    pub(crate) fn has_manager(&self) -> bool {
        self.entries.iter().any(|(_, s)| *s == Source::Manager)
    }
}

fn check_property(p: &str) -> Result<(), String> {
    if p.trim().is_empty() {
        return Err("the property name is empty".into());
    }
    if p.len() > MAX_PROPERTY_LEN {
        return Err(format!(
            "the property name is longer than {MAX_PROPERTY_LEN} bytes"
        ));
    }
    if p != p.trim() || p.chars().any(|c| c.is_control() || c == '=') {
        return Err(
            "the property name must not contain '=', control characters, or surrounding spaces"
                .into(),
        );
    }
    Ok(())
}

fn is_core(urn: &str) -> bool {
    urn.eq_ignore_ascii_case(USER_SCHEMA)
}

fn is_enterprise(urn: &str) -> bool {
    urn.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA)
}

/// `urn:ietf:params:scim:schemas:extension:<Name>:2.0:User`.
fn is_custom_extension(urn: &str) -> bool {
    const PREFIX: &str = "urn:ietf:params:scim:schemas:extension:";
    const SUFFIX: &str = ":2.0:User";
    let Some(head) = urn.get(..PREFIX.len()) else {
        return false;
    };
    let Some(name) = urn
        .len()
        .checked_sub(SUFFIX.len())
        .and_then(|end| urn.get(PREFIX.len()..end))
    else {
        return false;
    };
    head.eq_ignore_ascii_case(PREFIX)
        && urn[PREFIX.len() + name.len()..].eq_ignore_ascii_case(SUFFIX)
        && !name.is_empty()
        && !name.contains(':')
        && !is_enterprise(urn)
}

fn compile_path(text: &str) -> Result<Source, String> {
    if text.len() > MAX_PATH_LEN {
        return Err(format!("the path is longer than {MAX_PATH_LEN} bytes"));
    }
    let p = parse_patch_path(text).map_err(|e| format!("malformed path: {}", e.detail))?;
    let a = &p.attr;
    let urn = a.urn.as_deref();
    if urn.is_none_or(is_core) && a.name.eq_ignore_ascii_case("groups") {
        if a.sub.is_some() || p.filter.is_some() || p.sub.is_some() {
            return Err("groups maps as a whole (the names of the user's groups): \
                        remove the filter or sub-attribute"
                .into());
        }
        return Ok(Source::Groups);
    }
    if urn.is_none_or(is_enterprise) && a.name.eq_ignore_ascii_case("manager") {
        let value_only = a
            .sub
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case("value"));
        if !value_only || p.filter.is_some() {
            return Err("manager maps as a whole (to the manager's member id): \
                        use the manager or manager.value path"
                .into());
        }
        return Ok(Source::Manager);
    }
    if let Some(urn) = urn
        && !is_core(urn)
        && !is_enterprise(urn)
    {
        if is_custom_extension(urn) {
            return Ok(Source::Path(Box::new(p)));
        }
        return Err(format!(
            "unknown schema {urn}: use the core User schema, the enterprise extension \
             ({ENTERPRISE_USER_SCHEMA}) or a custom extension \
             urn:ietf:params:scim:schemas:extension:<Name>:2.0:User"
        ));
    }
    let def = attribute_def(a)?;
    if def.returned == Returned::Never {
        return Err(format!("{} is never readable", def.name));
    }
    if let Some(filter) = &p.filter {
        if def.sub_attributes.is_empty() {
            return Err(format!(
                "{} has no sub-attributes to filter on; drop the [...] filter",
                def.name
            ));
        }
        check_filter(filter, def)?;
        if let Some(sub) = &p.sub
            && def.sub(sub).is_none()
        {
            return Err(format!("{} has no sub-attribute {sub}", def.name));
        }
    }
    Ok(Source::Path(Box::new(p)))
}

/// The definition of `a` in the core schema or the enterprise extension
/// (unqualified enterprise names resolve too, as in filters).
fn attribute_def(a: &AttrPath) -> Result<&'static AttributeDef, String> {
    let top = match a.urn.as_deref() {
        Some(urn) if is_enterprise(urn) => ENTERPRISE_USER.attribute(&a.name),
        _ => USER_RESOURCE
            .schema
            .attribute(&a.name)
            .or_else(|| ENTERPRISE_USER.attribute(&a.name)),
    }
    .ok_or_else(|| format!("unknown attribute {}", a.name))?;
    if let Some(sub) = &a.sub
        && top.sub(sub).is_none()
    {
        return Err(format!("{} has no sub-attribute {sub}", top.name));
    }
    Ok(top)
}

fn check_filter(f: &Filter, def: &'static AttributeDef) -> Result<(), String> {
    match f {
        Filter::And(l, r) | Filter::Or(l, r) => {
            check_filter(l, def)?;
            check_filter(r, def)
        }
        Filter::Not(inner) => check_filter(inner, def),
        Filter::Attr { path, .. } => {
            if path.urn.is_some() || path.sub.is_some() || def.sub(&path.name).is_none() {
                return Err(format!(
                    "the filter names {path}, which is not a sub-attribute of {}",
                    def.name
                ));
            }
            Ok(())
        }
        Filter::ValuePath { .. } => Err("nested value filters are not supported".into()),
    }
}

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The value of `a`'s attribute (ignoring `a.sub`) in a rendered user.
fn attr_value<'a>(doc: &'a Value, a: &AttrPath) -> Option<&'a Value> {
    let obj = doc.as_object()?;
    match a.urn.as_deref() {
        Some(urn) if is_core(urn) => get_ci(obj, &a.name),
        Some(urn) => get_ci(obj, urn)?
            .as_object()
            .and_then(|ext| get_ci(ext, &a.name)),
        None => get_ci(obj, &a.name).or_else(|| {
            obj.iter()
                .filter(|(k, _)| k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")))
                .find_map(|(_, ext)| ext.as_object().and_then(|e| get_ci(e, &a.name)))
        }),
    }
}

fn field<'a>(element: &'a Value, name: &str) -> Option<&'a Value> {
    element.as_object().and_then(|o| get_ci(o, name))
}

/// Zero values: absent; one: itself; several: an array.
fn collapse(mut values: Vec<Value>) -> Option<Value> {
    values.retain(|v| !v.is_null());
    match values.len() {
        0 => None,
        1 => values.pop(),
        _ => Some(Value::Array(values)),
    }
}

/// Evaluates a path (not `groups`/`manager`) on a rendered user.
pub(crate) fn evaluate(doc: &Value, p: &PatchPath) -> Option<Value> {
    let base = attr_value(doc, &p.attr)?;
    let elements: Vec<&Value> = match base {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    match (&p.filter, &p.attr.sub) {
        (None, None) => (!base.is_null()).then(|| base.clone()),
        (None, Some(sub)) => collapse(
            elements
                .into_iter()
                .filter_map(|e| field(e, sub).cloned())
                .collect(),
        ),
        (Some(filter), _) => collapse(
            elements
                .into_iter()
                .filter(|e| filter.matches_element(e, &USER_RESOURCE, &p.attr))
                .filter_map(|e| match &p.sub {
                    Some(sub) => field(e, sub).cloned(),
                    None => Some(e.clone()),
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(path: &str, property: &str) -> MappingEntry {
        MappingEntry::new(path, property)
    }

    fn reason(entries: &[MappingEntry]) -> String {
        match validate(entries) {
            Err(MappingError::Entry { reason, .. }) => reason,
            other => panic!("expected an entry error, got {other:?}"),
        }
    }

    fn path(s: &str) -> PatchPath {
        match compile_path(s) {
            Ok(Source::Path(p)) => *p,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn user() -> Value {
        json!({
            "userName": "adele@contoso.com",
            "title": "Retail Manager",
            "name": {"givenName": "Adele", "familyName": "Vance"},
            "emails": [
                {"type": "work", "value": "adele@contoso.com", "primary": true},
                {"type": "home", "value": "adele@example.org"}
            ],
            "addresses": [{"type": "work", "locality": "Oslo", "country": "NO"}],
            "phoneNumbers": [{"type": "mobile", "value": "+47 1"}, {"type": "work", "value": "+47 2"}],
            ENTERPRISE_USER_SCHEMA: {"department": "Retail", "manager": {"value": "boss"}},
            "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User": {"costCode": "X1"}
        })
    }

    #[test]
    fn the_default_mapping_is_valid_and_maps_the_manager() {
        let compiled = Compiled::new(&default_mapping()).unwrap();
        assert!(compiled.has_manager());
        assert!(!compiled.has_groups());
    }

    #[test]
    fn assignments_split_at_the_last_equals_sign_outside_brackets_and_quotes() {
        assert_eq!(
            parse_assignment(r#"addresses[type eq "work"].locality=city"#).unwrap(),
            entry(r#"addresses[type eq "work"].locality"#, "city")
        );
        assert_eq!(
            parse_assignment(r#"emails[value eq "a=b"].value = mail"#).unwrap(),
            entry(r#"emails[value eq "a=b"].value"#, "mail")
        );
        assert_eq!(
            parse_assignment(r#"emails[value eq "a\"=b"].value=mail"#).unwrap(),
            entry(r#"emails[value eq "a\"=b"].value"#, "mail")
        );
    }

    #[test]
    fn assignments_without_both_sides_are_refused() {
        for bad in ["title", "=jobTitle", "title=", r#"emails[value eq "a=b"]"#] {
            assert!(
                matches!(parse_assignment(bad), Err(MappingError::Assignment { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_documented_path_form_is_valid() {
        let entries = [
            entry("title", "a"),
            entry("name.givenName", "b"),
            entry(r#"emails[type eq "work"].value"#, "c"),
            entry(r#"addresses[type eq "work"].locality"#, "d"),
            entry(&format!("{ENTERPRISE_USER_SCHEMA}:department"), "e"),
            entry(
                "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:costCode",
                "f",
            ),
            entry("groups", "g"),
            entry("manager", "h"),
            entry(&format!("{ENTERPRISE_USER_SCHEMA}:manager.value"), "i"),
            entry("department", "j"),
            entry(&format!("{USER_SCHEMA}:userName"), "k"),
        ];
        validate(&entries).unwrap();
    }

    #[test]
    fn unknown_or_malformed_paths_are_refused_with_the_entry_named() {
        let err = validate(&[entry("title", "a"), entry("favouriteColour", "b")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mapping entry 2 (favouriteColour=b): unknown attribute favouriteColour"
        );
        assert!(reason(&[entry(r#"emails[type eq "work""#, "x")]).starts_with("malformed path"));
        assert!(reason(&[entry("name.nickname", "x")]).contains("no sub-attribute nickname"));
        assert!(reason(&[entry(r#"emails[color eq "red"].value"#, "x")]).contains("color"));
        assert!(reason(&[entry(r#"emails[type eq "work"].colour"#, "x")]).contains("colour"));
        assert!(reason(&[entry("urn:acme:stuff:x", "x")]).contains("unknown schema"));
        assert!(reason(&[entry("password", "x")]).contains("never readable"));
        assert!(reason(&[entry("groups.display", "x")]).contains("groups maps as a whole"));
        assert!(reason(&[entry("manager.displayName", "x")]).contains("manager maps as a whole"));
        assert!(reason(&[entry(r#"title[value eq "x"]"#, "x")]).contains("no sub-attributes"));
    }

    #[test]
    fn bad_or_duplicate_property_names_are_refused() {
        assert!(reason(&[entry("title", "")]).contains("empty"));
        assert!(reason(&[entry("title", "a"), entry("nickName", "a")]).contains("entry 1"));
        assert!(reason(&[entry("title", "a\u{7}")]).contains("control"));
    }

    #[test]
    fn value_filter_paths_select_the_matching_element() {
        let doc = user();
        assert_eq!(
            evaluate(&doc, &path(r#"phoneNumbers[type eq "work"].value"#)),
            Some(json!("+47 2"))
        );
        assert_eq!(
            evaluate(&doc, &path(r#"addresses[type eq "work"].locality"#)),
            Some(json!("Oslo"))
        );
        assert_eq!(
            evaluate(&doc, &path(r#"addresses[type eq "home"].locality"#)),
            None
        );
    }

    #[test]
    fn simple_sub_and_extension_paths_evaluate_to_their_values() {
        let doc = user();
        assert_eq!(
            evaluate(&doc, &path("title")),
            Some(json!("Retail Manager"))
        );
        assert_eq!(
            evaluate(&doc, &path("name.givenName")),
            Some(json!("Adele"))
        );
        assert_eq!(evaluate(&doc, &path("department")), Some(json!("Retail")));
        assert_eq!(
            evaluate(
                &doc,
                &path("urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:costCode")
            ),
            Some(json!("X1"))
        );
        assert_eq!(
            evaluate(&doc, &path("emails.value")),
            Some(json!(["adele@contoso.com", "adele@example.org"]))
        );
        assert_eq!(evaluate(&doc, &path("nickName")), None);
    }
}
