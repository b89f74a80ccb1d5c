//! Where each key of a client document goes: schema casing for known names,
//! extension attributes (nested or flattened) under their URN, read-only
//! attributes dropped, unknown ones kept as sent (later spellings replacing
//! earlier ones in linear time). Changes with the document-shape rules.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::coerce::{coerce, coerce_manager};
use super::is_urn;
use crate::error::{ScimError, ScimResult};
use crate::schema::{AttributeDef, ENTERPRISE_USER_SCHEMA, Mutability, ResourceType};

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
