//! Multi-valued attribute semantics: `add` appends only values not already
//! present (deduplicated in linear time), `replace` swaps the list, `remove`
//! with a value array removes only the listed elements, and at most one
//! element stays `primary`. Changes with the list rules, not with paths.

use std::collections::HashSet;

use serde_json::Value;

use super::coerce::coerce_single;
use super::keys::get_ci;
use super::{MAX_VALUES_PER_REQUEST, PatchOpKind};
use crate::error::ScimResult;
use crate::resource::too_many_values;
use crate::schema::AttributeDef;

/// add/replace on a multi-valued attribute: add appends the new elements that
/// are not already present; replace swaps the whole list. A single value is a
/// list of one.
pub(super) fn set_multi(
    kind: PatchOpKind,
    existing: Option<Value>,
    value: &Value,
    def: Option<&'static AttributeDef>,
    label: &str,
) -> ScimResult<Option<Value>> {
    let incoming = match value {
        Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    if incoming.len() > MAX_VALUES_PER_REQUEST {
        return Err(too_many_values(
            label,
            incoming.len(),
            MAX_VALUES_PER_REQUEST,
        ));
    }
    let mut new_items = Vec::with_capacity(incoming.len());
    for item in incoming {
        if item.is_null() {
            continue;
        }
        new_items.push(coerce_single(item.clone(), def, label)?);
    }
    let (mut items, touched) = match (kind, existing) {
        (PatchOpKind::Add, Some(Value::Array(mut items))) => {
            let touched = append_distinct(&mut items, new_items);
            (items, touched)
        }
        _ => {
            let mut items = Vec::with_capacity(new_items.len());
            let touched = append_distinct(&mut items, new_items);
            (items, touched)
        }
    };
    enforce_single_primary(&mut items, &touched, def);
    Ok((!items.is_empty()).then_some(Value::Array(items)))
}

/// A remove of a whole attribute. For a multi-valued attribute, a non-empty
/// value array removes only the elements it lists (the form Entra uses for
/// `members`, applied consistently to every multi-valued attribute).
pub(super) fn remove_listed_values(
    existing: Option<Value>,
    value: Option<&Value>,
    def: Option<&'static AttributeDef>,
    label: &str,
) -> ScimResult<Option<Value>> {
    let listed = match value {
        Some(Value::Array(items)) if !items.is_empty() => {
            if items.len() > MAX_VALUES_PER_REQUEST {
                return Err(too_many_values(label, items.len(), MAX_VALUES_PER_REQUEST));
            }
            items.clone()
        }
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => return Ok(None),
    };
    let Some(Value::Array(mut items)) = existing else {
        return Ok(None);
    };
    let listed = listed
        .into_iter()
        .map(|v| coerce_single(v, def, label))
        .collect::<ScimResult<Vec<_>>>()?;
    items.retain(|item| !listed.iter().any(|l| element_covers(l, item, def)));
    Ok((!items.is_empty()).then_some(Value::Array(items)))
}

/// True when every field of `listed` equals the same field of `item`
/// (strings ignoring case unless the sub-attribute is case-exact).
fn element_covers(listed: &Value, item: &Value, def: Option<&'static AttributeDef>) -> bool {
    match (listed, item) {
        (Value::Object(l), Value::Object(i)) => l.iter().all(|(k, lv)| {
            let case_exact = def.and_then(|d| d.sub(k)).is_some_and(|s| s.case_exact);
            get_ci(i, k).is_some_and(|iv| json_eq(lv, iv, case_exact))
        }),
        (l, i) => json_eq(l, i, def.is_some_and(|d| d.case_exact)),
    }
}

fn json_eq(a: &Value, b: &Value, case_exact: bool) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) if !case_exact => a.eq_ignore_ascii_case(b),
        _ => a == b,
    }
}

/// RFC 7644 §3.5.2: setting `primary` to true on some values sets it to
/// false on the others, so that at most one value is primary.
pub(super) fn enforce_single_primary(
    items: &mut [Value],
    touched: &[usize],
    def: Option<&'static AttributeDef>,
) {
    if def.and_then(|d| d.sub("primary")).is_none() {
        return;
    }
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    if !touched
        .iter()
        .any(|&i| items.get(i).is_some_and(is_primary))
    {
        return;
    }
    let mut is_touched = vec![false; items.len()];
    for &i in touched {
        if let Some(t) = is_touched.get_mut(i) {
            *t = true;
        }
    }
    for (item, touched) in items.iter_mut().zip(is_touched) {
        if !touched
            && is_primary(item)
            && let Value::Object(obj) = item
        {
            obj.insert("primary".to_owned(), Value::Bool(false));
        }
    }
}

/// Appends to `items` each of `incoming` that equals no element of `items`
/// (nor one appended before it), in order, and returns the indices of the
/// appended elements. Expected linear time: `serde_json::Value`'s `Hash`
/// agrees with its `==` (objects hash their entries sorted by key, since a
/// `preserve_order` map compares equal whatever its key order; numbers hash
/// as `Number` compares), so candidates are found by hash, never by
/// comparing every pair. Elements already duplicated in `items` stay.
fn append_distinct(items: &mut Vec<Value>, incoming: Vec<Value>) -> Vec<usize> {
    let keep: Vec<bool> = {
        let mut seen: HashSet<&Value> = items.iter().collect();
        incoming.iter().map(|v| seen.insert(v)).collect()
    };
    let mut touched = Vec::new();
    for (item, keep) in incoming.into_iter().zip(keep) {
        if keep {
            touched.push(items.len());
            items.push(item);
        }
    }
    touched
}
