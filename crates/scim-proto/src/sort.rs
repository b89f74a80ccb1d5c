//! Sorting (RFC 7644 §3.4.2.3): `sortBy` names an attribute, `sortOrder` is
//! `ascending` (the default) or `descending`. Strings compare ignoring case
//! unless the schema says the attribute is case-exact; a multi-valued
//! attribute sorts by its primary value, else its first. Resources without
//! a value come last in either order, and equal keys keep the order they
//! came in (id order), so paging through a sorted result is stable.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use crate::ast::AttrPath;
use crate::error::{ScimError, ScimResult};
use crate::eval::{attr_def, get_ci, num_cmp, resource_value};
use crate::path::parse_attr_path;
use crate::schema::ResourceType;

/// A parsed `sortBy` / `sortOrder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub by: AttrPath,
    pub descending: bool,
}

/// The value a resource sorts by.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Bool(bool),
    Num(Number),
    /// Lowercased unless the attribute is case-exact.
    Str(String),
    Missing,
}

impl Sort {
    /// `None` without `sortBy` (a lone `sortOrder` is ignored, as the RFC
    /// allows). A malformed path is `invalidPath`, an unknown order
    /// `invalidValue`.
    pub fn from_params(
        sort_by: Option<&str>,
        sort_order: Option<&str>,
    ) -> ScimResult<Option<Self>> {
        let Some(by) = sort_by.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let by = parse_attr_path(by).map_err(|e| {
            ScimError::invalid_path(format!(
                "sortBy \"{by}\" is not an attribute path: {}",
                e.detail
            ))
        })?;
        let descending = match sort_order.map(str::trim).filter(|s| !s.is_empty()) {
            None => false,
            Some(o) if o.eq_ignore_ascii_case("ascending") => false,
            Some(o) if o.eq_ignore_ascii_case("descending") => true,
            Some(o) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder must be \"ascending\" or \"descending\", got \"{o}\""
                )));
            }
        };
        Ok(Some(Self { by, descending }))
    }

    /// The key `doc` (a rendered resource) sorts by.
    pub fn key(&self, doc: &Value, rt: &ResourceType) -> SortKey {
        let attr = AttrPath {
            urn: self.by.urn.clone(),
            name: self.by.name.clone(),
            sub: None,
        };
        let value = resource_value(doc, rt, &attr);
        let element = match value {
            Some(Value::Array(items)) => items
                .iter()
                .find(|i| i.get("primary").and_then(Value::as_bool) == Some(true))
                .or_else(|| items.first()),
            other => other,
        };
        let leaf = match (element, &self.by.sub) {
            (Some(Value::Object(obj)), Some(sub)) => get_ci(obj, sub),
            (Some(Value::Object(obj)), None) => get_ci(obj, "value"),
            (Some(_) | None, Some(_)) => None,
            (other, None) => other,
        };
        let case_exact = attr_def(rt, &attr)
            .map(|def| match &self.by.sub {
                Some(sub) => def.sub(sub).is_some_and(|d| d.case_exact),
                None => def.case_exact,
            })
            .unwrap_or(false);
        match leaf {
            Some(Value::Bool(b)) => SortKey::Bool(*b),
            Some(Value::Number(n)) => SortKey::Num(n.clone()),
            Some(Value::String(s)) if case_exact => SortKey::Str(s.clone()),
            Some(Value::String(s)) => SortKey::Str(s.to_lowercase()),
            _ => SortKey::Missing,
        }
    }

    /// Compares two keys in this sort's order (missing values last).
    pub fn compare(&self, a: &SortKey, b: &SortKey) -> Ordering {
        let ordered = match (a, b) {
            (SortKey::Missing, SortKey::Missing) => return Ordering::Equal,
            (SortKey::Missing, _) => return Ordering::Greater,
            (_, SortKey::Missing) => return Ordering::Less,
            (SortKey::Bool(x), SortKey::Bool(y)) => x.cmp(y),
            (SortKey::Num(x), SortKey::Num(y)) => num_cmp(x, y).unwrap_or(Ordering::Equal),
            (SortKey::Str(x), SortKey::Str(y)) => x.cmp(y),
            // Mixed kinds (a schemaless extension): by kind, stably.
            (x, y) => rank(x).cmp(&rank(y)),
        };
        if self.descending {
            ordered.reverse()
        } else {
            ordered
        }
    }

    /// Sorts `items` (already in id order) by the key `doc` gives each,
    /// keeping id order among equal keys.
    pub fn order<T>(&self, items: Vec<T>, rt: &ResourceType, doc: impl Fn(&T) -> Value) -> Vec<T> {
        let mut keyed: Vec<(SortKey, T)> = items
            .into_iter()
            .map(|item| (self.key(&doc(&item), rt), item))
            .collect();
        keyed.sort_by(|(a, _), (b, _)| self.compare(a, b));
        keyed.into_iter().map(|(_, item)| item).collect()
    }
}

fn rank(k: &SortKey) -> u8 {
    match k {
        SortKey::Bool(_) => 0,
        SortKey::Num(_) => 1,
        SortKey::Str(_) => 2,
        SortKey::Missing => 3,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::{GROUP_RESOURCE, USER_RESOURCE};

    fn sort(by: &str, order: Option<&str>) -> Sort {
        Sort::from_params(Some(by), order).unwrap().unwrap()
    }

    fn names(docs: &[Value]) -> Vec<&str> {
        docs.iter()
            .map(|d| d["userName"].as_str().unwrap_or("-"))
            .collect()
    }

    #[test]
    fn user_names_sort_ignoring_case_ascending_by_default() {
        let docs = vec![
            json!({"userName": "carol"}),
            json!({"userName": "Alice"}),
            json!({"userName": "bob"}),
        ];
        let sorted = sort("userName", None).order(docs, &USER_RESOURCE, Clone::clone);
        assert_eq!(names(&sorted), ["Alice", "bob", "carol"]);
    }

    #[test]
    fn descending_reverses_and_missing_values_still_come_last() {
        let docs = vec![
            json!({"userName": "a", "title": "Engineer"}),
            json!({"userName": "b"}),
            json!({"userName": "c", "title": "Architect"}),
        ];
        let up = sort("title", Some("ascending")).order(docs.clone(), &USER_RESOURCE, Clone::clone);
        let down = sort("title", Some("Descending")).order(docs, &USER_RESOURCE, Clone::clone);
        assert_eq!(names(&up), ["c", "a", "b"]);
        assert_eq!(names(&down), ["a", "c", "b"]);
    }

    #[test]
    fn a_multi_valued_attribute_sorts_by_its_primary_value() {
        let docs = vec![
            json!({"userName": "x", "emails": [{"value": "a@x"}, {"value": "z@x", "primary": true}]}),
            json!({"userName": "y", "emails": [{"value": "m@y"}]}),
        ];
        let sorted = sort("emails.value", None).order(docs.clone(), &USER_RESOURCE, Clone::clone);
        let whole = sort("emails", None).order(docs, &USER_RESOURCE, Clone::clone);
        assert_eq!(names(&sorted), ["y", "x"]);
        assert_eq!(names(&whole), ["y", "x"]);
    }

    #[test]
    fn extension_attributes_and_group_names_sort_too() {
        let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let docs = vec![
            json!({"userName": "a", ent: {"employeeNumber": "2"}}),
            json!({"userName": "b", ent: {"employeeNumber": "10"}}),
        ];
        let sorted =
            sort(&format!("{ent}:employeeNumber"), None).order(docs, &USER_RESOURCE, Clone::clone);
        assert_eq!(names(&sorted), ["b", "a"], "employeeNumber is a string");
        let groups = vec![
            json!({"displayName": "Sales"}),
            json!({"displayName": "admins"}),
        ];
        let sorted = sort("displayName", None).order(groups, &GROUP_RESOURCE, Clone::clone);
        assert_eq!(sorted[0]["displayName"], "admins");
    }

    #[test]
    fn equal_keys_keep_their_incoming_order() {
        let docs = vec![
            json!({"userName": "1", "title": "Same"}),
            json!({"userName": "2", "title": "same"}),
            json!({"userName": "3", "title": "SAME"}),
        ];
        let sorted = sort("title", Some("descending")).order(docs, &USER_RESOURCE, Clone::clone);
        assert_eq!(names(&sorted), ["1", "2", "3"]);
    }

    #[test]
    fn bad_parameters_are_scim_errors_and_a_lone_sort_order_is_ignored() {
        use crate::ScimType;
        let e = Sort::from_params(Some("name["), None).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        let e = Sort::from_params(Some("userName"), Some("upwards")).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        assert_eq!(Sort::from_params(None, Some("descending")).unwrap(), None);
    }
}
