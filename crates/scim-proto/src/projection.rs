//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9).
//!
//! Entra relies on this: it queries groups with
//! `excludedAttributes=members`, and a response that still lists members
//! leads to bad membership PATCHes (entra.md §2.8, §6 #18); its legacy
//! reference checks ask for `attributes=id`. The projection is applied to the
//! rendered resource (with `id`, `schemas`, `meta`); [`Projection::wants`]
//! lets storage skip loading what would be dropped (group members).
//!
//! Rules:
//! - `id` and `schemas` (and any `returned: always` attribute) are always
//!   kept; `returned: never` attributes (`password`) are always dropped.
//! - `attributes=` keeps only what is listed, at sub-attribute granularity
//!   (`name.givenName`, `urn:…:enterprise:2.0:User:department`); a schema URN
//!   on its own keeps the whole extension object.
//! - `excludedAttributes=` drops what is listed, at the same granularity.
//! - Both given: `attributes` wins (the RFC makes them exclusive; being
//!   lenient costs nothing).
//! - A value filter in a list entry (`emails[type eq "work"]`, as in
//!   Microsoft's Postman collection) is ignored: the whole attribute is kept,
//!   which returns more than asked rather than failing.
//! - `schemas` is left as rendered.

use serde_json::{Map, Value};

use crate::ast::AttrPath;
use crate::error::{ScimError, ScimResult};
use crate::path::parse_attr_path;
use crate::schema::{ENTERPRISE_USER, GROUP, ResourceType, Returned, SchemaDef, USER};

/// Schemas whose URN, alone in a list, names a whole schema. Known without a
/// resource type because [`Projection::from_query`] runs before the
/// endpoint's resource type matters.
static KNOWN_SCHEMAS: [&SchemaDef; 3] = [&USER, &GROUP, &ENTERPRISE_USER];
static CORE_SCHEMAS: [&SchemaDef; 2] = [&USER, &GROUP];

/// Most entries in one `attributes` or `excludedAttributes` list; more is a
/// 400 `tooMany`. Clients list a few names (Entra: `members`, `id`); the
/// projection costs entries × attributes, so the cap keeps it cheap on any
/// stored resource.
pub const MAX_LISTED_ATTRIBUTES: usize = 100;

/// A parsed `attributes` / `excludedAttributes` pair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    mode: Mode,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Mode {
    /// Neither parameter: the default attribute set.
    #[default]
    Default,
    /// `attributes=`.
    Only(Vec<Selector>),
    /// `excludedAttributes=`.
    Except(Vec<Selector>),
}

/// One entry of an attribute list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    /// A whole schema, by URN (lower-cased).
    Schema(String),
    /// An attribute or one sub-attribute, as the client wrote it.
    Attr(AttrPath),
}

/// Where an attribute lives in a rendered resource, lower-cased.
#[derive(Debug, PartialEq, Eq)]
struct Loc {
    /// `None` for core attributes (top level), else the extension URN.
    container: Option<String>,
    name: String,
    sub: Option<String>,
}

/// What to keep of one attribute under `attributes=`.
enum Keep {
    All,
    Subs(Vec<String>),
    Nothing,
}

impl Projection {
    /// Parses the two query parameters (comma-separated attribute paths).
    /// Empty parameters count as absent.
    pub fn from_query(attributes: Option<&str>, excluded: Option<&str>) -> ScimResult<Self> {
        if let Some(list) = attributes
            && let Some(selectors) = parse_list("attributes", list)?
        {
            return Ok(Self {
                mode: Mode::Only(selectors),
            });
        }
        if let Some(list) = excluded
            && let Some(selectors) = parse_list("excludedAttributes", list)?
        {
            return Ok(Self {
                mode: Mode::Except(selectors),
            });
        }
        Ok(Self::default())
    }

    /// True when neither parameter was given: the resource is returned with
    /// its default attributes.
    pub fn is_default(&self) -> bool {
        self.mode == Mode::Default
    }

    /// Whether `path` would appear (at least in part) in the output, so that
    /// storage can skip loading it (e.g. `members` under
    /// `excludedAttributes=members` or `attributes=id`). Names compare
    /// ignoring case; an unqualified name matches the same name in any
    /// schema, so the answer errs towards loading.
    pub fn wants(&self, path: &AttrPath) -> bool {
        let loc = locate(path, None);
        if loc.container.is_none() {
            if is_always_name(&loc.name) {
                return true;
            }
            if CORE_SCHEMAS.iter().any(|s| {
                s.attribute(&loc.name)
                    .is_some_and(|d| d.returned == Returned::Never)
            }) {
                return false;
            }
        }
        match &self.mode {
            Mode::Default => true,
            Mode::Only(selectors) => selectors.iter().any(|s| overlaps(s, &loc)),
            Mode::Except(selectors) => !selectors.iter().any(|s| covers(s, &loc)),
        }
    }

    /// Applies the projection to a rendered resource of type `rt`.
    pub fn apply(&self, resource: &mut Map<String, Value>, rt: &ResourceType) {
        match &self.mode {
            Mode::Default => {}
            Mode::Only(selectors) => keep_only(resource, rt, selectors),
            Mode::Except(selectors) => {
                for selector in selectors {
                    exclude(resource, rt, selector);
                }
            }
        }
        drop_never_returned(resource, rt);
    }
}

/// Parses one list; `None` when it has no entries.
fn parse_list(param: &str, list: &str) -> ScimResult<Option<Vec<Selector>>> {
    let stripped = strip_value_filters(list);
    let items: Vec<&str> = stripped
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if items.len() > MAX_LISTED_ATTRIBUTES {
        return Err(ScimError::too_many(format!(
            "{param} lists {} attributes; at most {MAX_LISTED_ATTRIBUTES} are accepted",
            items.len()
        )));
    }
    let selectors = items
        .into_iter()
        .map(|item| parse_item(param, item))
        .collect::<ScimResult<Vec<_>>>()?;
    Ok((!selectors.is_empty()).then_some(selectors))
}

fn parse_item(param: &str, item: &str) -> ScimResult<Selector> {
    if KNOWN_SCHEMAS
        .iter()
        .any(|s| s.id.eq_ignore_ascii_case(item))
    {
        return Ok(Selector::Schema(item.to_ascii_lowercase()));
    }
    match parse_attr_path(item) {
        Ok(path) => Ok(Selector::Attr(path)),
        // A URN with no attribute after it: an unknown schema as a whole.
        Err(_) if is_urn(item) => Ok(Selector::Schema(item.to_ascii_lowercase())),
        Err(e) => Err(ScimError::invalid_path(format!(
            "{param}: \"{item}\" is not an attribute path ({}); list names such as \
             userName, name.givenName or {}:department, separated by commas",
            e.detail, ENTERPRISE_USER.id
        ))),
    }
}

/// Removes `[…]` value filters (quotes respected), keeping what follows, so
/// `emails[type eq "work"].value` becomes `emails.value`.
fn strip_value_filters(list: &str) -> String {
    let mut out = String::with_capacity(list.len());
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for c in list.chars() {
        if depth == 0 {
            if c == '[' {
                depth = 1;
            } else {
                out.push(c);
            }
            continue;
        }
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (false, _, '"') => in_string = true,
            (false, _, '[') => depth += 1,
            (false, _, ']') => depth -= 1,
            _ => {}
        }
    }
    out
}

/// Normalises `path` to where it lives: the core schema's URN means the top
/// level; an unqualified extension attribute (`manager`) lives in its
/// extension when `rt` is known.
fn locate(path: &AttrPath, rt: Option<&ResourceType>) -> Loc {
    let container = match &path.urn {
        Some(urn) if is_core_urn(urn, rt) => None,
        Some(urn) => Some(urn.to_ascii_lowercase()),
        None => rt.and_then(|rt| {
            if rt.schema.attribute(&path.name).is_some() {
                return None;
            }
            rt.extensions
                .iter()
                .find(|(s, _)| s.attribute(&path.name).is_some())
                .map(|(s, _)| s.id.to_ascii_lowercase())
        }),
    };
    Loc {
        container,
        name: path.name.to_ascii_lowercase(),
        sub: path.sub.as_ref().map(|s| s.to_ascii_lowercase()),
    }
}

fn is_core_urn(urn: &str, rt: Option<&ResourceType>) -> bool {
    match rt {
        Some(rt) => rt.schema.id.eq_ignore_ascii_case(urn),
        None => CORE_SCHEMAS.iter().any(|s| s.id.eq_ignore_ascii_case(urn)),
    }
}

fn is_urn(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

fn is_always_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("id") || name.eq_ignore_ascii_case("schemas")
}

/// `id`, `schemas` and any core attribute marked `returned: always`.
fn is_always_returned(rt: &ResourceType, key: &str) -> bool {
    is_always_name(key)
        || rt
            .schema
            .attribute(key)
            .is_some_and(|d| d.returned == Returned::Always)
}

/// A top-level key holding an extension object.
fn is_extension(key: &str, value: &Value) -> bool {
    is_urn(key) && value.is_object()
}

/// Whether `selector` names the whole schema `urn` (lower-cased). An
/// attribute path `urn:…:2.0` + `User` is the same text as the schema URN.
fn selects_schema(selector: &Selector, urn: &str) -> bool {
    match selector {
        Selector::Schema(s) => s == urn,
        Selector::Attr(AttrPath {
            urn: Some(prefix),
            name,
            sub: None,
        }) => {
            urn.get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
                && urn
                    .get(prefix.len()..)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .is_some_and(|rest| rest.eq_ignore_ascii_case(name))
        }
        Selector::Attr(_) => false,
    }
}

/// An `attributes=` list resolved once for a resource type, so that each
/// attribute of the resource is checked without re-resolving every entry.
struct KeepPlan {
    /// A core schema URN is listed: every core attribute is kept whole.
    core_all: bool,
    /// Where each listed attribute lives.
    attrs: Vec<Loc>,
}

impl KeepPlan {
    fn new(selectors: &[Selector], rt: &ResourceType) -> Self {
        Self {
            core_all: selectors
                .iter()
                .any(|s| matches!(s, Selector::Schema(u) if is_core_urn(u, Some(rt)))),
            attrs: selectors
                .iter()
                .filter_map(|s| match s {
                    Selector::Attr(path) => Some(locate(path, Some(rt))),
                    Selector::Schema(_) => None,
                })
                .collect(),
        }
    }

    /// What `attributes=` keeps of attribute `name` in `container`.
    fn keep_for(&self, container: Option<&str>, name: &str) -> Keep {
        if container.is_none() && self.core_all {
            return Keep::All;
        }
        let name = name.to_ascii_lowercase();
        let mut subs = Vec::new();
        for loc in &self.attrs {
            if loc.container.as_deref() == container && loc.name == name {
                match &loc.sub {
                    None => return Keep::All,
                    Some(sub) => subs.push(sub.clone()),
                }
            }
        }
        if subs.is_empty() {
            Keep::Nothing
        } else {
            Keep::Subs(subs)
        }
    }
}

fn keep_only(resource: &mut Map<String, Value>, rt: &ResourceType, selectors: &[Selector]) {
    let plan = KeepPlan::new(selectors, rt);
    let keys: Vec<String> = resource.keys().cloned().collect();
    for key in keys {
        if is_always_returned(rt, &key) {
            continue;
        }
        let Some(value) = resource.get_mut(&key) else {
            continue;
        };
        let keep = if is_extension(&key, value) {
            let urn = key.to_ascii_lowercase();
            if selectors.iter().any(|s| selects_schema(s, &urn)) {
                continue;
            }
            match value {
                Value::Object(ext) => {
                    keep_in(ext, |name| plan.keep_for(Some(&urn), name));
                    !ext.is_empty()
                }
                _ => false,
            }
        } else {
            apply_keep(value, &plan.keep_for(None, &key))
        };
        if !keep {
            resource.shift_remove(&key);
        }
    }
}

/// Applies `keep` to each attribute of `obj`.
fn keep_in(obj: &mut Map<String, Value>, keep: impl Fn(&str) -> Keep) {
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        let retained = obj
            .get_mut(&key)
            .is_some_and(|v| apply_keep(v, &keep(&key)));
        if !retained {
            obj.shift_remove(&key);
        }
    }
}

/// Trims `value` to what `keep` allows; false when nothing is left.
fn apply_keep(value: &mut Value, keep: &Keep) -> bool {
    match keep {
        Keep::All => true,
        Keep::Nothing => false,
        Keep::Subs(subs) => {
            let wanted = |k: &String| subs.iter().any(|s| s.eq_ignore_ascii_case(k));
            match value {
                Value::Object(obj) => {
                    obj.retain(|k, _| wanted(k));
                    !obj.is_empty()
                }
                Value::Array(items) => {
                    for item in items.iter_mut() {
                        if let Value::Object(obj) = item {
                            obj.retain(|k, _| wanted(k));
                        }
                    }
                    items.retain(|i| i.as_object().is_none_or(|o| !o.is_empty()));
                    !items.is_empty()
                }
                // A simple attribute has no sub-attributes to keep.
                _ => false,
            }
        }
    }
}

fn exclude(resource: &mut Map<String, Value>, rt: &ResourceType, selector: &Selector) {
    // A whole extension object.
    let schema_key = resource
        .iter()
        .find(|(k, v)| is_extension(k, v) && selects_schema(selector, &k.to_ascii_lowercase()))
        .map(|(k, _)| k.clone());
    if let Some(key) = schema_key {
        resource.shift_remove(&key);
        return;
    }
    let Selector::Attr(path) = selector else {
        return;
    };
    let loc = locate(path, Some(rt));
    match &loc.container {
        None => {
            if !is_always_returned(rt, &loc.name) {
                exclude_in(resource, &loc);
            }
        }
        Some(urn) => {
            let Some(key) = find_key(resource, urn) else {
                return;
            };
            if let Some(Value::Object(ext)) = resource.get_mut(&key) {
                exclude_in(ext, &loc);
                if ext.is_empty() {
                    resource.shift_remove(&key);
                }
            }
        }
    }
}

/// Removes `loc.name` (or only its `loc.sub`) from `obj`.
fn exclude_in(obj: &mut Map<String, Value>, loc: &Loc) {
    let Some(key) = find_key(obj, &loc.name) else {
        return;
    };
    let Some(sub) = &loc.sub else {
        obj.shift_remove(&key);
        return;
    };
    let unwanted = |k: &String| k.eq_ignore_ascii_case(sub);
    let keep = match obj.get_mut(&key) {
        Some(Value::Object(inner)) => {
            inner.retain(|k, _| !unwanted(k));
            !inner.is_empty()
        }
        Some(Value::Array(items)) => {
            for item in items.iter_mut() {
                if let Value::Object(inner) = item {
                    inner.retain(|k, _| !unwanted(k));
                }
            }
            items.retain(|i| i.as_object().is_none_or(|o| !o.is_empty()));
            !items.is_empty()
        }
        _ => true,
    };
    if !keep {
        obj.shift_remove(&key);
    }
}

/// Drops `returned: never` attributes (the password) wherever they are.
fn drop_never_returned(resource: &mut Map<String, Value>, rt: &ResourceType) {
    let never = |schema: &SchemaDef, key: &str| {
        schema
            .attribute(key)
            .is_some_and(|d| d.returned == Returned::Never)
    };
    resource.retain(|k, _| !never(rt.schema, k));
    for (schema, _) in rt.extensions {
        if let Some(key) = find_key(resource, schema.id)
            && let Some(Value::Object(ext)) = resource.get_mut(&key)
        {
            ext.retain(|k, _| !never(schema, k));
        }
    }
}

fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Same attribute, ignoring where an unqualified name lives (see
/// [`Projection::wants`]).
fn same_attr(a: &Loc, b: &Loc) -> bool {
    a.name == b.name
        && (a.container == b.container || a.container.is_none() || b.container.is_none())
}

/// Whether selecting `selector` would output some of `loc`.
fn overlaps(selector: &Selector, loc: &Loc) -> bool {
    match selector {
        Selector::Schema(urn) => in_schema(urn, loc),
        Selector::Attr(path) => {
            let sel = locate(path, None);
            (same_attr(&sel, loc) && (sel.sub.is_none() || loc.sub.is_none() || sel.sub == loc.sub))
                || selects_schema(selector, loc.container.as_deref().unwrap_or_default())
        }
    }
}

/// Whether excluding `selector` removes all of `loc`.
fn covers(selector: &Selector, loc: &Loc) -> bool {
    match selector {
        Selector::Schema(urn) => in_schema(urn, loc),
        Selector::Attr(path) => {
            let sel = locate(path, None);
            (same_attr(&sel, loc) && (sel.sub.is_none() || sel.sub == loc.sub))
                || selects_schema(selector, loc.container.as_deref().unwrap_or_default())
        }
    }
}

fn in_schema(urn: &str, loc: &Loc) -> bool {
    match &loc.container {
        Some(c) => c == urn,
        None => is_core_urn(urn, None),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ScimType;
    use crate::schema::{GROUP_RESOURCE, USER_RESOURCE};

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    /// A rendered user, as the projection sees it.
    fn user() -> Map<String, Value> {
        obj(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, CUSTOM],
            "id": "u1",
            "externalId": "alice",
            "meta": {"resourceType": "User", "version": "W/\"1\""},
            "userName": "alice@contoso.com",
            "name": {"givenName": "Alice", "familyName": "Smith"},
            "active": true,
            "password": "hunter2",
            "emails": [
                {"value": "alice@contoso.com", "type": "work", "primary": true},
                {"value": "al@home.example", "type": "home"}
            ],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Sales",
                "manager": {"value": "m1"}
            },
            "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User": {"costCode": "CC-1", "site": "HQ"}
        }))
    }

    fn group() -> Map<String, Value> {
        obj(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "g1",
            "externalId": "e1",
            "meta": {"resourceType": "Group"},
            "displayName": "Sales",
            "members": [{"value": "u1"}]
        }))
    }

    fn project(
        attributes: Option<&str>,
        excluded: Option<&str>,
        rt: &ResourceType,
        doc: Map<String, Value>,
    ) -> Map<String, Value> {
        let projection = Projection::from_query(attributes, excluded)
            .unwrap_or_else(|e| panic!("projection should parse: {}", e.detail));
        let mut doc = doc;
        projection.apply(&mut doc, rt);
        doc
    }

    fn keys(doc: &Map<String, Value>) -> Vec<&str> {
        doc.keys().map(String::as_str).collect()
    }

    #[test]
    fn the_default_projection_keeps_everything_but_never_returned_attributes() {
        // Arrange
        let mut expected = user();
        expected.shift_remove("password");
        // Act
        let doc = project(None, None, &USER_RESOURCE, user());
        // Assert
        assert_eq!(doc, expected);
    }

    #[test]
    fn attributes_keeps_only_the_listed_attributes_plus_id_and_schemas() {
        // Arrange / Act
        let doc = project(Some("userName,active"), None, &USER_RESOURCE, user());
        // Assert
        assert_eq!(keys(&doc), ["schemas", "id", "userName", "active"]);
    }

    #[test]
    fn attributes_id_returns_only_id_and_schemas_for_the_legacy_reference_check() {
        // Arrange / Act
        let doc = project(Some("id"), None, &GROUP_RESOURCE, group());
        // Assert
        assert_eq!(
            doc,
            obj(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1"}))
        );
    }

    #[test]
    fn a_listed_sub_attribute_keeps_only_that_sub_attribute() {
        // Arrange / Act
        let doc = project(Some("name.givenName"), None, &USER_RESOURCE, user());
        // Assert
        assert_eq!(doc["name"], json!({"givenName": "Alice"}));
    }

    #[test]
    fn a_listed_sub_attribute_of_a_multi_valued_attribute_applies_to_each_element() {
        // Arrange / Act
        let doc = project(Some("emails.value"), None, &USER_RESOURCE, user());
        // Assert
        assert_eq!(
            doc["emails"],
            json!([{"value": "alice@contoso.com"}, {"value": "al@home.example"}])
        );
    }

    #[test]
    fn a_urn_qualified_attribute_keeps_only_it_inside_the_extension() {
        // Arrange / Act
        let doc = project(
            Some(&format!("{ENTERPRISE}:department")),
            None,
            &USER_RESOURCE,
            user(),
        );
        // Assert
        assert_eq!(doc[ENTERPRISE], json!({"department": "Sales"}));
        assert!(!doc.contains_key(CUSTOM));
        assert!(!doc.contains_key("userName"));
    }

    #[test]
    fn a_schema_urn_alone_keeps_the_whole_extension() {
        // Arrange / Act
        let doc = project(
            Some(&format!("userName,{ENTERPRISE},{CUSTOM}")),
            None,
            &USER_RESOURCE,
            user(),
        );
        // Assert
        assert_eq!(doc[ENTERPRISE], user()[ENTERPRISE]);
        assert_eq!(doc[CUSTOM], user()[CUSTOM]);
    }

    #[test]
    fn an_unqualified_enterprise_attribute_selects_it_in_the_extension() {
        // Arrange / Act
        let doc = project(Some("manager"), None, &USER_RESOURCE, user());
        // Assert
        assert_eq!(doc[ENTERPRISE], json!({"manager": {"value": "m1"}}));
    }

    #[test]
    fn a_custom_extension_attribute_is_selected_by_its_urn_path() {
        // Arrange / Act
        let doc = project(
            Some(&format!("{CUSTOM}:costCode")),
            None,
            &USER_RESOURCE,
            user(),
        );
        // Assert
        assert_eq!(doc[CUSTOM], json!({"costCode": "CC-1"}));
    }

    #[test]
    fn a_core_urn_qualified_attribute_selects_the_top_level_attribute() {
        // Arrange / Act
        let doc = project(
            Some("urn:ietf:params:scim:schemas:core:2.0:User:userName"),
            None,
            &USER_RESOURCE,
            user(),
        );
        // Assert
        assert_eq!(keys(&doc), ["schemas", "id", "userName"]);
    }

    #[test]
    fn listed_names_match_ignoring_case_and_spaces_and_empty_entries() {
        // Arrange / Act
        let doc = project(
            Some(" USERNAME , Name.GivenName ,"),
            None,
            &USER_RESOURCE,
            user(),
        );
        // Assert
        assert_eq!(keys(&doc), ["schemas", "id", "userName", "name"]);
        assert_eq!(doc["name"], json!({"givenName": "Alice"}));
    }

    #[test]
    fn a_value_filter_in_an_attribute_list_keeps_the_whole_attribute() {
        // Arrange: Microsoft's Postman collection sends these.
        let attributes = "emails[type eq \"work\"],name[givenName eq \"a,b\"].familyName";
        // Act
        let doc = project(Some(attributes), None, &USER_RESOURCE, user());
        // Assert
        assert_eq!(doc["emails"], user()["emails"]);
        assert_eq!(doc["name"], json!({"familyName": "Smith"}));
    }

    #[test]
    fn the_password_is_never_returned_even_when_asked_for() {
        // Arrange / Act
        let doc = project(Some("password,userName"), None, &USER_RESOURCE, user());
        // Assert
        assert!(!doc.contains_key("password"));
    }

    #[test]
    fn excluded_members_are_left_out_of_a_group() {
        // Arrange: Entra's match query and GET by id.
        // Act
        let doc = project(None, Some("members"), &GROUP_RESOURCE, group());
        // Assert
        assert_eq!(
            keys(&doc),
            ["schemas", "id", "externalId", "meta", "displayName"]
        );
    }

    #[test]
    fn an_excluded_sub_attribute_drops_only_it_and_an_emptied_parent() {
        // Arrange / Act
        let some = project(
            None,
            Some("name.givenName,emails.type"),
            &USER_RESOURCE,
            user(),
        );
        let all = project(
            None,
            Some("name.givenName,name.familyName"),
            &USER_RESOURCE,
            user(),
        );
        // Assert
        assert_eq!(some["name"], json!({"familyName": "Smith"}));
        assert_eq!(
            some["emails"],
            json!([{"value": "alice@contoso.com", "primary": true}, {"value": "al@home.example"}])
        );
        assert!(!all.contains_key("name"));
    }

    #[test]
    fn an_excluded_extension_attribute_drops_it_and_an_emptied_extension() {
        // Arrange / Act
        let one = project(
            None,
            Some(&format!("{ENTERPRISE}:department")),
            &USER_RESOURCE,
            user(),
        );
        let both = project(
            None,
            Some(&format!("{ENTERPRISE}:department,manager")),
            &USER_RESOURCE,
            user(),
        );
        // Assert
        assert_eq!(one[ENTERPRISE], json!({"manager": {"value": "m1"}}));
        assert!(!both.contains_key(ENTERPRISE));
    }

    #[test]
    fn an_excluded_schema_urn_drops_the_whole_extension() {
        // Arrange / Act
        let doc = project(
            None,
            Some(&format!("{ENTERPRISE},{CUSTOM}")),
            &USER_RESOURCE,
            user(),
        );
        // Assert
        assert!(!doc.contains_key(ENTERPRISE));
        assert!(!doc.contains_key(CUSTOM));
        assert!(doc.contains_key("userName"));
    }

    #[test]
    fn id_and_schemas_cannot_be_excluded() {
        // Arrange / Act
        let doc = project(None, Some("id,schemas,meta"), &GROUP_RESOURCE, group());
        // Assert
        assert_eq!(
            keys(&doc),
            ["schemas", "id", "externalId", "displayName", "members"]
        );
    }

    #[test]
    fn when_both_lists_are_given_attributes_wins() {
        // Arrange / Act
        let doc = project(
            Some("displayName"),
            Some("displayName"),
            &GROUP_RESOURCE,
            group(),
        );
        // Assert
        assert_eq!(keys(&doc), ["schemas", "id", "displayName"]);
    }

    #[test]
    fn an_invalid_entry_is_invalid_path_naming_the_entry() {
        // Arrange / Act
        let err = Projection::from_query(Some("userName,na me"), None).expect_err("should fail");
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
        assert!(err.detail.contains("\"na me\""), "{}", err.detail);
        assert!(err.detail.starts_with("attributes:"), "{}", err.detail);
    }

    #[test]
    fn empty_parameters_give_the_default_projection() {
        // Arrange / Act
        let projections = [
            Projection::from_query(None, None),
            Projection::from_query(Some(""), Some(" ")),
            Projection::from_query(Some(","), None),
        ];
        // Assert
        for p in projections {
            assert!(p.unwrap().is_default());
        }
        assert!(
            !Projection::from_query(None, Some("members"))
                .unwrap()
                .is_default()
        );
    }

    #[test]
    fn an_empty_attributes_parameter_lets_excluded_attributes_apply() {
        // Arrange / Act
        let doc = project(Some(""), Some("members"), &GROUP_RESOURCE, group());
        // Assert
        assert!(!doc.contains_key("members"));
    }

    #[test]
    fn wants_tells_storage_whether_members_are_needed() {
        // Arrange
        let members = AttrPath::simple("members");
        let cases = [
            (None, None, true),
            (None, Some("members"), false),
            (None, Some("MEMBERS"), false),
            (None, Some("members.display"), true),
            (None, Some("displayName"), true),
            (Some("id"), None, false),
            (Some("displayName,members"), None, true),
            (Some("members.value"), None, true),
            (
                Some("urn:ietf:params:scim:schemas:core:2.0:Group:members"),
                None,
                true,
            ),
            (
                Some("urn:ietf:params:scim:schemas:core:2.0:Group"),
                None,
                true,
            ),
        ];
        for (attributes, excluded, expected) in cases {
            // Act
            let wants = Projection::from_query(attributes, excluded)
                .unwrap()
                .wants(&members);
            // Assert
            assert_eq!(
                wants, expected,
                "attributes={attributes:?} excluded={excluded:?}"
            );
        }
    }

    #[test]
    fn wants_always_includes_id_and_never_the_password() {
        // Arrange
        let projection = Projection::from_query(Some("userName"), None).unwrap();
        // Act / Assert
        assert!(projection.wants(&AttrPath::simple("id")));
        assert!(!projection.wants(&AttrPath::simple("password")));
        assert!(!Projection::default().wants(&AttrPath::simple("password")));
    }

    #[test]
    fn wants_respects_sub_attribute_and_extension_granularity() {
        // Arrange
        let only_given = Projection::from_query(Some("name.givenName"), None).unwrap();
        let without_name = Projection::from_query(None, Some("name")).unwrap();
        let enterprise = Projection::from_query(Some(ENTERPRISE), None).unwrap();
        let manager = AttrPath {
            urn: Some(ENTERPRISE.to_owned()),
            name: "manager".into(),
            sub: None,
        };
        // Act / Assert
        assert!(only_given.wants(&AttrPath::simple("name")));
        assert!(only_given.wants(&AttrPath::with_sub("name", "givenName")));
        assert!(!only_given.wants(&AttrPath::with_sub("name", "familyName")));
        assert!(!without_name.wants(&AttrPath::with_sub("name", "givenName")));
        assert!(enterprise.wants(&manager));
        assert!(!enterprise.wants(&AttrPath::simple("userName")));
    }

    #[test]
    fn a_list_longer_than_the_cap_is_too_many() {
        // Arrange: the projection costs entries x attributes, so long lists
        // are refused (issue #9).
        let list = |n: usize| {
            (0..n)
                .map(|i| format!("a{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        // Act
        let ok = Projection::from_query(Some(&list(MAX_LISTED_ATTRIBUTES)), None);
        let err = Projection::from_query(None, Some(&list(MAX_LISTED_ATTRIBUTES + 1)))
            .expect_err("should fail");
        // Assert
        assert!(ok.is_ok());
        assert_eq!(err.scim_type, Some(ScimType::TooMany));
        assert!(
            err.detail.starts_with("excludedAttributes"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn an_extension_selected_by_prefix_and_name_is_kept_whole() {
        // Arrange: an unknown schema's URN parses as attribute `User` of
        // `urn:…:2.0`, and still names the whole extension, in any case.
        let listed = CUSTOM.to_ascii_uppercase();
        // Act
        let kept = project(Some(&listed), None, &USER_RESOURCE, user());
        let dropped = project(None, Some(&listed), &USER_RESOURCE, user());
        // Assert
        assert!(kept.contains_key(CUSTOM), "{kept:?}");
        assert!(!kept.contains_key(ENTERPRISE), "{kept:?}");
        assert!(!dropped.contains_key(CUSTOM), "{dropped:?}");
        assert!(dropped.contains_key(ENTERPRISE), "{dropped:?}");
    }
}
