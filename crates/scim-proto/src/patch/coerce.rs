//! Normalising written values to the schema: boolean strings (`"False"`)
//! become booleans at any depth, sub-attribute keys get their schema
//! spelling. Changes when a client sends a new loose form of a value.

use serde_json::{Map, Value};

use super::keys::{CiObject, SMALL_OBJECT, find_key, take_ci};
use crate::error::{ScimError, ScimResult};
use crate::resource::parse_bool;
use crate::schema::{AttrType, AttributeDef};

/// Normalises one (non-list) value for `def`: boolean strings become
/// booleans (Entra sends `"True"`/`"False"`), sub-attribute keys get their
/// schema spelling, `null` sub-attributes are dropped. Unknown attributes are
/// kept as sent; full type checking is the caller's re-validation.
pub(super) fn coerce_single(
    value: Value,
    def: Option<&'static AttributeDef>,
    label: &str,
) -> ScimResult<Value> {
    let Some(def) = def else {
        return Ok(value);
    };
    match (def.ty, value) {
        (AttrType::Boolean, Value::String(s)) => {
            parse_bool(s.trim()).map(Value::Bool).ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "{label} must be a boolean (true or false), not \"{s}\""
                ))
            })
        }
        (AttrType::Complex, Value::Object(fields)) if fields.len() <= SMALL_OBJECT => {
            let mut out = Map::new();
            for (k, v) in fields {
                if v.is_null() {
                    continue;
                }
                let sub_def = def.sub(&k);
                let key = canonical_key(&out, &k, sub_def);
                let v = coerce_single(v, sub_def, &format!("{label}.{k}"))?;
                take_ci(&mut out, &key);
                out.insert(key, v);
            }
            Ok(Value::Object(out))
        }
        (AttrType::Complex, Value::Object(fields)) => {
            // As above, in linear time: a later spelling of a name replaces
            // an earlier one (moving to the end), keeping the earlier
            // spelling of an unknown name.
            let mut out = CiObject::default();
            for (k, v) in fields {
                if v.is_null() {
                    continue;
                }
                let sub_def = def.sub(&k);
                let v = coerce_single(v, sub_def, &format!("{label}.{k}"))?;
                let key = match sub_def {
                    Some(d) => d.name.to_owned(),
                    None => out.find_key(&k).map_or(k, str::to_owned),
                };
                out.take_ci(&key);
                out.store(key, Some(v));
            }
            Ok(Value::Object(out.into_map()))
        }
        (_, v) => Ok(v),
    }
}

/// The key to write `name` under in `map`: the schema's spelling when known,
/// else the spelling of an existing key that differs only in case, else
/// `name` itself. Never creates `username` beside `userName`.
pub(super) fn canonical_key(
    map: &Map<String, Value>,
    name: &str,
    def: Option<&AttributeDef>,
) -> String {
    match def {
        Some(def) => def.name.to_owned(),
        None => find_key(map, name).unwrap_or_else(|| name.to_owned()),
    }
}
