//! Value-filtered paths (`emails[type eq "work"].value`): which elements a
//! filter selects, and the element a filtered `add`/`replace` creates from
//! the filter's `eq` terms when none matches (Entra adds a work email that
//! way). Changes when element matching or create-if-missing changes.

use serde_json::{Map, Value};

use super::attr::{merge_into, set_or_remove_sub};
use super::coerce::{canonical_key, coerce_single};
use super::keys::{detach, store};
use super::multi::enforce_single_primary;
use super::{Engine, PatchOpKind, SubTarget, Target};
use crate::ast::{AttrPath, AttrTest, CompValue, CompareOp, Filter};
use crate::error::{ScimError, ScimResult};
use crate::schema::{AttributeDef, ResourceType};

impl Engine<'_> {
    /// `emails[type eq "work"]`, `emails[type eq "work"].value`: touches the
    /// matching elements. With no match, add/replace create an element from
    /// the filter's `eq` terms (Entra sends `Add` for a work email the user
    /// does not have yet); remove is a no-op.
    pub(super) fn apply_filtered(
        &mut self,
        kind: PatchOpKind,
        target: &Target,
        filter: &Filter,
        sub: Option<&SubTarget>,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        let def = target.def;
        let label = match sub {
            Some(s) => format!("{}[…].{}", target.label, s.name),
            None => format!("{}[…]", target.label),
        };
        let value = match (sub, value) {
            (_, None) => None,
            (Some(s), Some(v)) => Some(coerce_single(v.clone(), s.def, &label)?),
            (None, Some(v @ Value::Object(_))) => Some(v.clone()),
            (None, Some(_)) => {
                return Err(ScimError::invalid_value(format!(
                    "{label} selects whole elements; the value must be an object of sub-attributes"
                )));
            }
        };
        let matcher = ElementMatcher::new(target, filter);
        let rt = self.rt;
        let Some(map) = self.container_mut(target, kind != PatchOpKind::Remove)? else {
            return Ok(());
        };
        let key = canonical_key(map, &target.key, def);
        let mut items = match detach(map, &key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(ScimError::invalid_path(format!(
                    "{} is not multi-valued, so a [filter] cannot select its elements",
                    target.label
                )));
            }
        };
        let matched: Vec<bool> = items.iter().map(|el| matcher.matches(el, rt)).collect();
        let matches: Vec<usize> = (0..items.len())
            .filter(|&i| matched.get(i).copied().unwrap_or(false))
            .collect();
        let mut touched = matches.clone();
        let result = match value {
            None => {
                remove_matched(&mut items, &matched, &matches, sub);
                Ok(())
            }
            Some(v) if matches.is_empty() => match new_element(filter, def, &label) {
                Ok(mut obj) => {
                    let merged = match sub {
                        Some(sub) => {
                            set_or_remove_sub(&mut obj, sub, Some(&v));
                            Ok(())
                        }
                        None => merge_into(&mut obj, &v, def, &label),
                    };
                    merged.map(|()| {
                        touched = vec![items.len()];
                        items.push(Value::Object(obj));
                    })
                }
                Err(e) => Err(e),
            },
            Some(v) => {
                let mut result = Ok(());
                for &i in &matches {
                    if let Some(Value::Object(obj)) = items.get_mut(i) {
                        result = match sub {
                            Some(sub) => {
                                set_or_remove_sub(obj, sub, Some(&v));
                                Ok(())
                            }
                            None => merge_into(obj, &v, def, &label),
                        };
                        if result.is_err() {
                            break;
                        }
                    }
                }
                result
            }
        };
        if result.is_ok() {
            enforce_single_primary(&mut items, &touched, def);
        }
        store(map, key, (!items.is_empty()).then_some(Value::Array(items)));
        self.prune_container(target);
        result
    }
}

/// A filtered remove: drops the matching elements, or with `sub` that
/// sub-attribute of each (and the elements it leaves empty).
fn remove_matched(
    items: &mut Vec<Value>,
    matched: &[bool],
    matches: &[usize],
    sub: Option<&SubTarget>,
) {
    match sub {
        None => {
            let mut flags = matched.iter();
            items.retain(|_| !flags.next().copied().unwrap_or(false));
        }
        Some(sub) => {
            for &i in matches {
                if let Some(Value::Object(obj)) = items.get_mut(i) {
                    set_or_remove_sub(obj, sub, None);
                }
            }
            items.retain(|i| i.as_object().is_none_or(|o| !o.is_empty()));
        }
    }
}

/// Tests array elements against a value filter. The filter is evaluated as
/// `attr[filter]` on a one-element document, so the evaluator resolves its
/// sub-attributes against the attribute's schema (case sensitivity, types).
struct ElementMatcher {
    filter: Filter,
    container: Option<String>,
    key: String,
}

impl ElementMatcher {
    fn new(target: &Target, filter: &Filter) -> Self {
        let container = target.container.as_ref().map(|c| c.key.clone());
        Self {
            filter: Filter::ValuePath {
                path: AttrPath {
                    urn: container.clone(),
                    name: target.key.clone(),
                    sub: None,
                },
                filter: Box::new(filter.clone()),
                sub: None,
            },
            container,
            key: target.key.clone(),
        }
    }

    fn matches(&self, element: &Value, rt: &ResourceType) -> bool {
        let mut attr = Map::new();
        attr.insert(self.key.clone(), Value::Array(vec![element.clone()]));
        let doc = match &self.container {
            None => attr,
            Some(urn) => {
                let mut doc = Map::new();
                doc.insert(urn.clone(), Value::Object(attr));
                doc
            }
        };
        self.filter.matches(&Value::Object(doc), rt)
    }
}

/// The element a filtered add/replace creates when nothing matches: the
/// filter's `attr eq literal` terms as fields (`type eq "work"` →
/// `{"type": "work"}`). Other filters cannot describe a new element, so the
/// RFC's `noTarget` applies.
fn new_element(
    filter: &Filter,
    def: Option<&'static AttributeDef>,
    label: &str,
) -> ScimResult<Map<String, Value>> {
    let mut terms = Vec::new();
    if !eq_terms(filter, &mut terms) {
        return Err(ScimError::no_target(format!(
            "no element of {label} matches the filter, and one can be created only from a filter of \"eq\" comparisons joined by \"and\""
        )));
    }
    let mut obj = Map::new();
    for (name, v) in terms {
        if v.is_null() {
            continue;
        }
        let sub_def = def.and_then(|d| d.sub(&name));
        let key = canonical_key(&obj, &name, sub_def);
        let v = coerce_single(v, sub_def, &format!("{label}.{name}"))?;
        obj.insert(key, v);
    }
    Ok(obj)
}

fn eq_terms(filter: &Filter, out: &mut Vec<(String, Value)>) -> bool {
    match filter {
        Filter::Attr {
            path:
                AttrPath {
                    urn: None,
                    name,
                    sub: None,
                },
            test: AttrTest::Compare(CompareOp::Eq, v),
        } => {
            out.push((name.clone(), comp_to_json(v)));
            true
        }
        Filter::And(a, b) => eq_terms(a, out) && eq_terms(b, out),
        _ => false,
    }
}

fn comp_to_json(v: &CompValue) -> Value {
    match v {
        CompValue::Str(s) => Value::String(s.clone()),
        CompValue::Num(n) => Value::Number(n.clone()),
        CompValue::Bool(b) => Value::Bool(*b),
        CompValue::Null => Value::Null,
    }
}
