//! add/replace/remove of a whole attribute or one sub-attribute, without a
//! value filter: single values, complex objects merged field by field, and
//! the enterprise manager in every form Entra sends. Changes with the RFC
//! 7644 §3.5.2 rules for unfiltered paths.

use serde_json::{Map, Value};

use super::coerce::{canonical_key, coerce_single};
use super::keys::{CiObject, SMALL_OBJECT, detach, store};
use super::multi::{remove_listed_values, set_multi};
use super::{Engine, PatchOpKind, SubTarget, Target};
use crate::error::{ScimError, ScimResult};
use crate::resource::coerce_manager;
use crate::schema::{AttrType, AttributeDef};

impl Engine<'_> {
    /// add/replace/remove of a whole attribute (no sub-attribute, no filter).
    pub(super) fn apply_whole(
        &mut self,
        kind: PatchOpKind,
        target: &Target,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        let def = target.def;
        let label = target.label.clone();
        let Some(map) = self.container_mut(target, kind != PatchOpKind::Remove)? else {
            return Ok(());
        };
        let key = canonical_key(map, &target.key, def);
        let existing = detach(map, &key);
        let new = match (kind, value) {
            (PatchOpKind::Remove, _) | (_, None) => {
                remove_listed_values(existing, value, def, &label)?
            }
            (_, Some(v)) => {
                let multi = def.map_or_else(
                    || v.is_array() || existing.as_ref().is_some_and(Value::is_array),
                    |d| d.multi_valued,
                );
                let complex = match def {
                    Some(d) => d.ty == AttrType::Complex,
                    None => existing.as_ref().is_none_or(Value::is_object),
                };
                if multi {
                    set_multi(kind, existing, v, def, &label)?
                } else if complex && v.is_object() {
                    // RFC 7644 §3.5.2.1/3: the given sub-attributes are set,
                    // the others are left unchanged (add and replace alike).
                    let mut obj = match existing {
                        Some(Value::Object(m)) => m,
                        _ => Map::new(),
                    };
                    merge_into(&mut obj, v, def, &label)?;
                    (!obj.is_empty()).then_some(Value::Object(obj))
                } else if complex && def.is_some() {
                    return Err(ScimError::invalid_value(format!(
                        "{label} is a complex attribute; its value must be an object of sub-attributes"
                    )));
                } else {
                    // Single-valued: add and replace both set (Entra sends
                    // `Add` when the attribute had no value before).
                    Some(coerce_single(v.clone(), def, &label)?)
                }
            }
        };
        store(map, key, new);
        self.prune_container(target);
        Ok(())
    }

    /// add/replace/remove of `attr.sub` without a filter: on a complex
    /// attribute it touches one sub-attribute; on a multi-valued one, that
    /// sub-attribute of every element.
    pub(super) fn apply_sub(
        &mut self,
        kind: PatchOpKind,
        target: &Target,
        sub: &SubTarget,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        let label = format!("{}.{}", target.label, sub.name);
        let Some(map) = self.container_mut(target, kind != PatchOpKind::Remove)? else {
            return Ok(());
        };
        let key = canonical_key(map, &target.key, target.def);
        let existing = detach(map, &key);
        let value = value
            .map(|v| coerce_single(v.clone(), sub.def, &label))
            .transpose()?;
        let new = match existing {
            Some(Value::Array(mut items)) => {
                for item in &mut items {
                    if let Value::Object(obj) = item {
                        set_or_remove_sub(obj, sub, value.as_ref());
                    }
                }
                if items.is_empty()
                    && let Some(v) = &value
                {
                    let mut obj = Map::new();
                    set_or_remove_sub(&mut obj, sub, Some(v));
                    items.push(Value::Object(obj));
                }
                items.retain(|i| i.as_object().is_none_or(|o| !o.is_empty()));
                (!items.is_empty()).then_some(Value::Array(items))
            }
            None if target.def.is_some_and(|d| d.multi_valued) => value.map(|v| {
                let mut obj = Map::new();
                set_or_remove_sub(&mut obj, sub, Some(&v));
                Value::Array(vec![Value::Object(obj)])
            }),
            Some(Value::Object(mut obj)) => {
                set_or_remove_sub(&mut obj, sub, value.as_ref());
                (!obj.is_empty()).then_some(Value::Object(obj))
            }
            None => value.map(|v| {
                let mut obj = Map::new();
                set_or_remove_sub(&mut obj, sub, Some(&v));
                Value::Object(obj)
            }),
            Some(other) => {
                if kind == PatchOpKind::Remove {
                    Some(other)
                } else {
                    return Err(ScimError::invalid_path(format!(
                        "{} is not a complex attribute, so {label} cannot be set",
                        target.label
                    )));
                }
            }
        };
        store(map, key, new);
        self.prune_container(target);
        Ok(())
    }

    /// The enterprise manager: stored as `{"value": id}` whatever form came
    /// in; an empty id clears it (Microsoft's SCIM_Update_Manager test).
    pub(super) fn apply_manager(
        &mut self,
        kind: PatchOpKind,
        target: &Target,
        sub: Option<&SubTarget>,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        // `manager.$ref` is an ordinary sub-attribute; `manager` and
        // `manager.value` set or clear the reference.
        if let Some(sub) = sub
            && !sub.name.eq_ignore_ascii_case("value")
        {
            return self.apply_sub(kind, target, sub, value);
        }
        let new = match (kind, value) {
            (PatchOpKind::Remove, _) | (_, None) => None,
            (_, Some(v)) if sub.is_some() => match v {
                Value::String(_) => coerce_manager(v.clone())?,
                _ => {
                    return Err(ScimError::invalid_value(
                        "manager.value must be the manager's id as a string",
                    ));
                }
            },
            (_, Some(v)) => coerce_manager(v.clone())?,
        };
        let Some(map) = self.container_mut(target, new.is_some())? else {
            return Ok(());
        };
        detach(map, &target.key);
        store(map, target.key.clone(), new);
        self.prune_container(target);
        Ok(())
    }
}

/// Sets (or with `None` removes) `sub` in `obj`. `value` is already coerced.
pub(super) fn set_or_remove_sub(
    obj: &mut Map<String, Value>,
    sub: &SubTarget,
    value: Option<&Value>,
) {
    let key = sub.key_in(obj);
    detach(obj, &key);
    store(obj, key, value.cloned());
}

/// Merges the members of `value` (an object) into `obj`; `null` members
/// unassign. Sub-attributes get their schema spelling and types.
pub(super) fn merge_into(
    obj: &mut Map<String, Value>,
    value: &Value,
    def: Option<&'static AttributeDef>,
    label: &str,
) -> ScimResult<()> {
    let Value::Object(fields) = value else {
        return Err(ScimError::invalid_value(format!(
            "{label} needs an object of sub-attributes"
        )));
    };
    if fields.len() <= SMALL_OBJECT {
        for (k, v) in fields {
            let sub_def = def.and_then(|d| d.sub(k));
            let key = canonical_key(obj, k, sub_def);
            detach(obj, &key);
            let v = match v {
                Value::Null => None,
                v => Some(coerce_single(v.clone(), sub_def, &format!("{label}.{k}"))?),
            };
            store(obj, key, v);
        }
        return Ok(());
    }
    // As above, in linear time whatever the number of fields.
    let mut merged = CiObject::from_map(std::mem::take(obj));
    let result = fields.iter().try_for_each(|(k, v)| {
        let sub_def = def.and_then(|d| d.sub(k));
        let key = match sub_def {
            Some(d) => d.name.to_owned(),
            None => merged.find_key(k).unwrap_or(k).to_owned(),
        };
        merged.detach(&key);
        let v = match v {
            Value::Null => None,
            v => Some(coerce_single(v.clone(), sub_def, &format!("{label}.{k}"))?),
        };
        merged.store(key, v);
        Ok(())
    });
    *obj = merged.into_map();
    result
}
