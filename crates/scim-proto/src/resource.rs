//! Client documents → canonical, typed resources, and back to wire JSON.
//!
//! A resource is stored as the canonical map of the attributes the client
//! wrote: schema casing for known names, extension attributes nested under
//! their URN, booleans as booleans, `null` meaning "unassigned". Everything
//! else is kept exactly as sent, because Entra compares what we return with
//! what it would send and re-PATCHes on any difference. `id`, `meta` and
//! `schemas` are never part of the stored map; [`render`] adds them.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{ScimError, ScimResult};
use crate::ids::{DisplayName, ExternalId, ResourceId, UserName};
use crate::schema::{
    AttrType, AttributeDef, ENTERPRISE_USER_SCHEMA, GROUP_RESOURCE, Mutability, ResourceType,
    Returned, USER_RESOURCE,
};

/// Largest canonical document we store. DynamoDB items stop at 400 KB; real
/// Entra users are a few KB.
pub const MAX_DOCUMENT_BYTES: usize = 128 * 1024;

/// Most distinct email values indexed per user (each costs an index item).
pub const MAX_EMAILS: usize = 20;

/// Most values of one multi-valued attribute (`emails`, `roles`, an unknown
/// list, …) in a POST or PUT body; more is a 400 `tooMany`. Real users have a
/// handful; the cap bounds the work one request can cause.
pub const MAX_VALUES_PER_ATTRIBUTE: usize = 1000;

/// Most members in a whole membership list: the `members` of a group's POST
/// or PUT body, or of a PATCH `replace` of `members`; more is a 400
/// `tooMany`. Okta's wizard-built integrations PUT a group's full member list
/// (what a GET returned), so this matches the most members the API returns
/// for one group (`scim-api`'s `MAX_MEMBERS_RETURNED`): a group that can be
/// read can be written back. Incremental member changes (PATCH `add`/`remove`)
/// have the tighter [`crate::patch::MAX_VALUES_PER_REQUEST`].
pub const MAX_MEMBERS_PER_LIST: usize = 20_000;

/// A validated User.
#[derive(Debug, Clone, PartialEq)]
pub struct UserResource {
    pub user_name: UserName,
    pub external_id: Option<ExternalId>,
    /// `active` defaults to true when absent (Entra always sends it on create).
    pub active: bool,
    /// Distinct email values, lowercased: the keys of the email index.
    pub email_keys: Vec<String>,
    /// The enterprise manager's id, if any.
    pub manager: Option<String>,
    pub doc: Map<String, Value>,
}

impl UserResource {
    /// Parses a POST/PUT body.
    pub fn from_request(body: Value) -> ScimResult<Self> {
        let body = expect_object(body)?;
        check_list_sizes(&body, &USER_RESOURCE)?;
        Self::from_doc(canonicalize(body, &USER_RESOURCE)?)
    }

    /// Validates a canonical document (e.g. the result of a PATCH).
    pub fn from_doc(doc: Map<String, Value>) -> ScimResult<Self> {
        // Re-canonicalising is idempotent and catches type errors a PATCH wrote.
        let doc = canonicalize(doc, &USER_RESOURCE)?;
        let user_name = match doc.get("userName") {
            Some(Value::String(s)) => UserName::parse(s)?,
            _ => {
                return Err(ScimError::invalid_value(
                    "userName is required and must be a string",
                ));
            }
        };
        let external_id = optional_external_id(&doc)?;
        let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);
        let mut email_keys: Vec<String> = doc
            .get("emails")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("value").and_then(Value::as_str))
            .filter(|v| !v.is_empty())
            .map(str::to_lowercase)
            .collect();
        email_keys.sort();
        email_keys.dedup();
        if email_keys.len() > MAX_EMAILS {
            return Err(ScimError::invalid_value(format!(
                "a user may have at most {MAX_EMAILS} distinct emails"
            )));
        }
        if email_keys
            .iter()
            .any(|e| e.len() > crate::ids::MAX_NAME_LEN)
        {
            return Err(ScimError::invalid_value("an email value is too long"));
        }
        let manager = doc
            .get(ENTERPRISE_USER_SCHEMA)
            .and_then(|e| e.get("manager"))
            .and_then(|m| m.get("value"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        check_size(&doc)?;
        Ok(Self {
            user_name,
            external_id,
            active,
            email_keys,
            manager,
            doc,
        })
    }
}

/// A validated Group (its members are stored apart from the document).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupResource {
    pub display_name: DisplayName,
    pub external_id: Option<ExternalId>,
    pub doc: Map<String, Value>,
}

impl GroupResource {
    /// Parses a POST/PUT body. `members` is taken out of the document and
    /// returned separately as member ids.
    pub fn from_request(body: Value) -> ScimResult<(Self, Vec<String>)> {
        let body = expect_object(body)?;
        check_list_sizes(&body, &GROUP_RESOURCE)?;
        let mut doc = canonicalize(body, &GROUP_RESOURCE)?;
        let members = match doc.remove("members") {
            None => Vec::new(),
            Some(v) => member_ids(&v)?,
        };
        Ok((Self::from_doc(doc)?, members))
    }

    pub fn from_doc(doc: Map<String, Value>) -> ScimResult<Self> {
        let mut doc = canonicalize(doc, &GROUP_RESOURCE)?;
        doc.remove("members");
        let display_name = match doc.get("displayName") {
            Some(Value::String(s)) => DisplayName::parse(s)?,
            _ => {
                return Err(ScimError::invalid_value(
                    "displayName is required and must be a string",
                ));
            }
        };
        let external_id = optional_external_id(&doc)?;
        check_size(&doc)?;
        Ok(Self {
            display_name,
            external_id,
            doc,
        })
    }
}

/// Member ids from a `members` value (`[{"value": "id"}, ...]`), deduplicated
/// in order.
pub fn member_ids(value: &Value) -> ScimResult<Vec<String>> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items.as_slice(),
        Value::Object(_) => std::slice::from_ref(value),
        _ => {
            return Err(ScimError::invalid_value(
                "members must be an array of objects with a \"value\"",
            ));
        }
    };
    if items.len() > MAX_MEMBERS_PER_LIST {
        return Err(too_many_values(
            "members",
            items.len(),
            MAX_MEMBERS_PER_LIST,
        ));
    }
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    let mut seen: HashSet<&str> = HashSet::with_capacity(items.len());
    for item in items {
        let id = item
            .get("value")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ScimError::invalid_value("each member must be an object with a string \"value\"")
            })?;
        if seen.insert(id) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// Refuses a POST/PUT body that lists more than [`MAX_VALUES_PER_ATTRIBUTE`]
/// values in a multi-valued attribute (known or not, at the top level or in
/// an extension object) or more than [`MAX_MEMBERS_PER_LIST`] group members.
/// Read-only attributes are exempt: they are dropped unread (Okta's PUT sends
/// back the `groups` a GET returned).
fn check_list_sizes(body: &Map<String, Value>, rt: &ResourceType) -> ScimResult<()> {
    for (key, value) in body {
        if is_urn(key)
            && let Value::Object(attrs) = value
        {
            let schema = rt.schema_for_urn(key);
            if schema.is_some_and(|s| std::ptr::eq(s, rt.schema)) {
                // The core schema's object holds top-level attributes.
                check_list_sizes(attrs, rt)?;
                continue;
            }
            for (name, v) in attrs {
                check_list_size(rt, schema.and_then(|s| s.attribute(name)), name, v)?;
            }
            continue;
        }
        let def = if is_urn(key) {
            key.rsplit_once(':')
                .and_then(|(urn, attr)| rt.schema_for_urn(urn)?.attribute(attr))
        } else {
            rt.schema.attribute(key)
        };
        check_list_size(rt, def, key, value)?;
    }
    Ok(())
}

fn check_list_size(
    rt: &ResourceType,
    def: Option<&'static AttributeDef>,
    name: &str,
    value: &Value,
) -> ScimResult<()> {
    let Value::Array(items) = value else {
        return Ok(());
    };
    if def.is_some_and(|d| d.mutability == Mutability::ReadOnly) {
        return Ok(());
    }
    let cap = match def {
        Some(d) if d.name == "members" && std::ptr::eq(rt, &GROUP_RESOURCE) => MAX_MEMBERS_PER_LIST,
        _ => MAX_VALUES_PER_ATTRIBUTE,
    };
    if items.len() > cap {
        return Err(too_many_values(name, items.len(), cap));
    }
    Ok(())
}

/// The 400 `tooMany` for a list longer than `cap`.
pub(crate) fn too_many_values(name: &str, count: usize, cap: usize) -> ScimError {
    ScimError::too_many(format!(
        "{} has {count} values; at most {cap} are accepted in one request, so split the change \
         into smaller requests",
        crate::error::shorten(name)
    ))
}

fn expect_object(body: Value) -> ScimResult<Map<String, Value>> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ScimError::invalid_syntax(
            "the request body must be a JSON object",
        )),
    }
}

fn optional_external_id(doc: &Map<String, Value>) -> ScimResult<Option<ExternalId>> {
    match doc.get("externalId") {
        None => Ok(None),
        Some(Value::String(s)) => ExternalId::parse(s).map(Some),
        Some(_) => Err(ScimError::invalid_value("externalId must be a string")),
    }
}

fn check_size(doc: &Map<String, Value>) -> ScimResult<()> {
    let size = serde_json::to_vec(doc)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_DOCUMENT_BYTES {
        return Err(ScimError::invalid_value(format!(
            "the resource is {size} bytes; at most {MAX_DOCUMENT_BYTES} are stored"
        )));
    }
    Ok(())
}

/// Canonicalises a client document for `rt`: known names get schema casing,
/// values are type-checked (boolean strings such as Entra's `"False"` become
/// booleans), read-only attributes (`id`, `meta`, `groups`) and `schemas` are
/// dropped as RFC 7643 §7 allows on input, `null` removes, and unknown
/// attributes and extensions are kept as sent.
pub fn canonicalize(
    input: Map<String, Value>,
    rt: &ResourceType,
) -> ScimResult<Map<String, Value>> {
    let mut out = Map::new();
    let mut unknown = UnknownKeys::new(rt);
    for (key, value) in input {
        put_top_level(&mut out, &mut unknown, key, value, rt)?;
    }
    Ok(out)
}

/// One top-level attribute, or one written inside the core schema's object
/// (`"urn:…:core:2.0:User": {…}`) or as a flattened core attribute: all three
/// are the same thing, so that the output never holds a key that reads
/// differently when canonicalised again (a nested `schemas`, or a nested
/// schema URN holding a non-object).
fn put_top_level(
    out: &mut Map<String, Value>,
    unknown: &mut UnknownKeys<'_>,
    key: String,
    value: Value,
    rt: &ResourceType,
) -> ScimResult<()> {
    if key.eq_ignore_ascii_case("schemas") {
        return Ok(());
    }
    if is_urn(&key) {
        return canonicalize_urn_key(out, unknown, key, value, rt);
    }
    let def = rt.schema.attribute(&key);
    put_attr(out, unknown, None, def, key, value, None)
}

/// The unknown attributes written so far, by object (`None`: the top level;
/// `Some(urn)`: a known extension object) and ASCII-lowercased name, so that
/// a later spelling of the same name replaces an earlier one (the RFC's names
/// are case-insensitive) without scanning the object for every key: a body
/// with many keys costs linear time, not quadratic.
struct UnknownKeys<'rt> {
    rt: &'rt ResourceType,
    written: HashMap<(Option<&'static str>, String), Vec<String>>,
}

impl<'rt> UnknownKeys<'rt> {
    fn new(rt: &'rt ResourceType) -> Self {
        Self {
            rt,
            written: HashMap::new(),
        }
    }

    /// Removes from `target` every key written so far that equals `key`
    /// ignoring ASCII case, and records `key` as written. At the top level an
    /// unknown key can also equal a known extension's URN in another case
    /// (inside a core-schema object); that extension object is replaced too.
    fn replace(
        &mut self,
        target: &mut Map<String, Value>,
        container: Option<&'static str>,
        key: &str,
    ) {
        if container.is_none() {
            for (ext, _) in self.rt.extensions {
                if ext.id.eq_ignore_ascii_case(key) {
                    target.remove(ext.id);
                }
            }
        }
        let spellings = self
            .written
            .entry((container, key.to_ascii_lowercase()))
            .or_default();
        for k in spellings.drain(..) {
            target.remove(&k);
        }
        spellings.push(key.to_owned());
    }

    /// Records `key` as written without removing other spellings (an unknown
    /// extension object kept as sent).
    fn record(&mut self, container: Option<&'static str>, key: &str) {
        self.written
            .entry((container, key.to_ascii_lowercase()))
            .or_default()
            .push(key.to_owned());
    }
}

fn is_urn(key: &str) -> bool {
    key.len() > 4 && key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

/// Handles a top-level key that starts with `urn:`: a schema object
/// (`"urn:…:enterprise:2.0:User": {...}`) or a flattened attribute
/// (`"urn:…:enterprise:2.0:User:department": "x"`).
fn canonicalize_urn_key(
    out: &mut Map<String, Value>,
    unknown: &mut UnknownKeys<'_>,
    key: String,
    value: Value,
    rt: &ResourceType,
) -> ScimResult<()> {
    if let Some(schema) = rt.schema_for_urn(&key) {
        let Value::Object(attrs) = value else {
            if value.is_null() {
                return Ok(());
            }
            return Err(ScimError::invalid_value(format!(
                "{} must be an object",
                schema.id
            )));
        };
        if std::ptr::eq(schema, rt.schema) {
            for (name, v) in attrs {
                put_top_level(out, unknown, name, v, rt)?;
            }
            return Ok(());
        }
        for (name, v) in attrs {
            let target = extension_object(out, schema.id)?;
            let def = schema.attribute(&name);
            put_attr(
                target,
                unknown,
                Some(schema.id),
                def,
                name,
                v,
                Some(schema.id),
            )?;
        }
        drop_if_empty(out, schema.id);
        return Ok(());
    }
    // A flattened known-extension attribute: "<schema urn>:<attr>".
    if let Some((urn, attr)) = key.rsplit_once(':')
        && let Some(schema) = rt.schema_for_urn(urn)
    {
        if std::ptr::eq(schema, rt.schema) {
            return put_top_level(out, unknown, attr.to_owned(), value, rt);
        }
        let target = extension_object(out, schema.id)?;
        put_attr(
            target,
            unknown,
            Some(schema.id),
            schema.attribute(attr),
            attr.to_owned(),
            value,
            Some(schema.id),
        )?;
        drop_if_empty(out, schema.id);
        return Ok(());
    }
    // An unknown extension: kept as sent (nulls still mean "unassigned").
    if !value.is_null() {
        unknown.record(None, &key);
        out.insert(key, value);
    }
    Ok(())
}

fn extension_object<'a>(
    out: &'a mut Map<String, Value>,
    urn: &str,
) -> ScimResult<&'a mut Map<String, Value>> {
    let slot = out
        .entry(urn.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    match slot {
        Value::Object(map) => Ok(map),
        _ => Err(ScimError::invalid_value(format!("{urn} must be an object"))),
    }
}

fn drop_if_empty(out: &mut Map<String, Value>, key: &str) {
    if out
        .get(key)
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        out.remove(key);
    }
}

/// Inserts one attribute into `target` (the object `container` names),
/// canonicalised against `def`.
fn put_attr(
    target: &mut Map<String, Value>,
    unknown: &mut UnknownKeys<'_>,
    container: Option<&'static str>,
    def: Option<&'static AttributeDef>,
    key: String,
    value: Value,
    schema: Option<&'static str>,
) -> ScimResult<()> {
    let Some(def) = def else {
        // Unknown attribute: kept as sent, except that null unassigns. An
        // unknown name never equals a known one ignoring case, so only other
        // spellings of unknown names need replacing.
        unknown.replace(target, container, &key);
        if !value.is_null() {
            target.insert(key, value);
        }
        return Ok(());
    };
    if def.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    // Known attributes are only ever written under the schema's spelling, and
    // no unknown name equals it ignoring case: the exact key is the only one.
    target.remove(def.name);
    let is_manager = schema == Some(ENTERPRISE_USER_SCHEMA) && def.name == "manager";
    let coerced = if is_manager {
        coerce_manager(value)?
    } else {
        coerce(value, def)?
    };
    if let Some(v) = coerced {
        target.insert(def.name.to_owned(), v);
    }
    Ok(())
}

/// The manager reference, in any form Entra or the validator sends: a bare id,
/// `{"value": id}`, or the legacy `[{"value": id}]`. Empty means "no manager".
pub fn coerce_manager(value: Value) -> ScimResult<Option<Value>> {
    let id = match value {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Array(items) => match items.into_iter().next() {
            None => None,
            Some(first) => return coerce_manager(first),
        },
        Value::Object(map) => match map.iter().find(|(k, _)| k.eq_ignore_ascii_case("value")) {
            None => None,
            Some((_, Value::String(s))) => Some(s.clone()),
            Some((_, Value::Null)) => None,
            Some(_) => return Err(ScimError::invalid_value("manager.value must be a string")),
        },
        _ => {
            return Err(ScimError::invalid_value(
                "manager must be the manager's id or an object with a \"value\"",
            ));
        }
    };
    Ok(id
        .filter(|s| !s.is_empty())
        .map(|id| serde_json::json!({ "value": id })))
}

/// Type-checks and normalises one attribute value; `Ok(None)` = unassigned.
fn coerce(value: Value, def: &'static AttributeDef) -> ScimResult<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if def.multi_valued {
        let items = match value {
            Value::Array(items) => items,
            // A single value where a list belongs: accepted as a list of one.
            other => vec![other],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = coerce_single(item, def)? {
                out.push(v);
            }
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    coerce_single(value, def)
}

fn coerce_single(value: Value, def: &'static AttributeDef) -> ScimResult<Option<Value>> {
    let wrong = |what: &str| {
        Err(ScimError::invalid_value(format!(
            "{} must be {what}",
            def.name
        )))
    };
    match (def.ty, value) {
        (_, Value::Null) => Ok(None),
        (AttrType::Boolean, Value::Bool(b)) => Ok(Some(Value::Bool(b))),
        (AttrType::Boolean, Value::String(s)) => match parse_bool(&s) {
            Some(b) => Ok(Some(Value::Bool(b))),
            None => wrong("a boolean (true or false)"),
        },
        (AttrType::Boolean, _) => wrong("a boolean (true or false)"),
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            Ok(Some(Value::Number(n)))
        }
        (AttrType::Integer, _) => wrong("an integer"),
        (AttrType::Decimal, Value::Number(n)) => Ok(Some(Value::Number(n))),
        (AttrType::Decimal, _) => wrong("a number"),
        (AttrType::DateTime, Value::String(s)) => {
            if OffsetDateTime::parse(&s, &Rfc3339).is_ok() {
                Ok(Some(Value::String(s)))
            } else {
                wrong("an RFC 3339 date-time")
            }
        }
        (AttrType::String | AttrType::Reference | AttrType::Binary, Value::String(s)) => {
            Ok(Some(Value::String(s)))
        }
        (AttrType::String | AttrType::Reference | AttrType::Binary | AttrType::DateTime, _) => {
            wrong("a string")
        }
        (AttrType::Complex, Value::Object(map)) => {
            let mut out = Map::new();
            for (k, v) in map {
                match def.sub(&k) {
                    Some(sub)
                        if sub.mutability == Mutability::ReadOnly && def.name != "members" => {}
                    Some(sub) => {
                        // Known sub-attributes are written under their schema
                        // spelling only, and unknown keys never equal one
                        // ignoring case: removing the exact key is enough.
                        out.remove(sub.name);
                        if let Some(v) = coerce(v, sub)? {
                            out.insert(sub.name.to_owned(), v);
                        }
                    }
                    None => {
                        if !v.is_null() {
                            out.insert(k, v);
                        }
                    }
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        (AttrType::Complex, _) => wrong("an object"),
    }
}

/// Entra sends `"True"`/`"False"`; customers' expressions may send any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Server-maintained metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub created: OffsetDateTime,
    pub last_modified: OffsetDateTime,
    /// Incremented on every write; the ETag is derived from it.
    pub version: u64,
}

impl Meta {
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            created: now,
            last_modified: now,
            version: 1,
        }
    }

    /// The weak ETag clients send back in `If-Match`.
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }

    /// The next version after a change at `now`.
    pub fn bumped(&self, now: OffsetDateTime) -> Self {
        Self {
            created: self.created,
            last_modified: now,
            version: self.version + 1,
        }
    }
}

/// Formats a timestamp the way SCIM clients expect (RFC 3339, UTC, millis).
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_else(|_| t.to_string())
}

/// Renders the wire form of a stored resource: `schemas` (core plus every
/// extension present), `id`, the attributes, and `meta`. Attributes with
/// `returned: never` (password) are left out.
pub fn render(
    rt: &ResourceType,
    id: &ResourceId,
    doc: &Map<String, Value>,
    meta: &Meta,
    location: &str,
) -> Map<String, Value> {
    let mut schemas = vec![Value::String(rt.schema.id.to_owned())];
    for (k, v) in doc {
        if is_urn(k) && v.is_object() {
            schemas.push(Value::String(k.clone()));
        }
    }
    let mut out = Map::with_capacity(doc.len() + 3);
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(id.to_string()));
    for (k, v) in doc {
        let never = rt
            .schema
            .attribute(k)
            .is_some_and(|d| d.returned == Returned::Never);
        if !never {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert(
        "meta".into(),
        serde_json::json!({
            "resourceType": rt.name,
            "created": format_time(meta.created),
            "lastModified": format_time(meta.last_modified),
            "location": location,
            "version": meta.etag(),
        }),
    );
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
        let user =
            UserResource::from_request(json!({"USERNAME": "a", "DisplayName": "A"})).unwrap();
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
        let err = GroupResource::from_request(json!({"displayName": "G", "members": too_many}))
            .unwrap_err();
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
}
