//! Type checking and normalisation of one attribute value against its
//! definition: Entra's boolean strings, date-times, complex sub-attributes,
//! and the manager in every form. Changes when a value form is accepted or
//! refused.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{ScimError, ScimResult};
use crate::schema::{AttrType, AttributeDef, Mutability};

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
pub(super) fn coerce(value: Value, def: &'static AttributeDef) -> ScimResult<Option<Value>> {
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
