//! A list request (RFC 7644 §3.4.2–3.4.3), read from either of its two
//! forms: the query string of `GET /Users` (names matched ignoring case,
//! unknown ones such as Entra's `aadOptscim062020` ignored) or the body of
//! `POST /Users/.search`, `/Groups/.search` and `/.search`.

use serde_json::Value;

use crate::error::{ScimError, ScimResult};
use crate::list::Paging;
use crate::projection::Projection;
use crate::schema::SEARCH_REQUEST_SCHEMA;
use crate::sort::Sort;

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// The filter text (parsed by the caller, which knows the resource).
    pub filter: Option<String>,
    pub paging: Paging,
    pub projection: Projection,
    pub sort: Option<Sort>,
}

impl ListRequest {
    /// From query parameters.
    pub fn from_query(pairs: &[(String, String)]) -> ScimResult<Self> {
        let param = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        Ok(Self {
            filter: param("filter")
                .filter(|f| !f.trim().is_empty())
                .map(str::to_owned),
            paging: Paging::from_query(param("startIndex"), param("count"))?,
            projection: Projection::from_query(param("attributes"), param("excludedAttributes"))?,
            sort: Sort::from_params(param("sortBy"), param("sortOrder"))?,
        })
    }

    /// From a `SearchRequest` body. `schemas` may be left out; if present it
    /// must name `SearchRequest`. `attributes` and `excludedAttributes` are
    /// arrays of names (a comma-separated string is read too); `startIndex`
    /// and `count` are integers.
    pub fn from_search_body(body: &Value) -> ScimResult<Self> {
        let Value::Object(body) = body else {
            return Err(ScimError::invalid_syntax(
                "a .search body must be a JSON object (a SearchRequest)",
            ));
        };
        let get = |name: &str| {
            body.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .filter(|v| !v.is_null())
        };
        if let Some(schemas) = get("schemas") {
            let names_search = match schemas {
                Value::Array(items) => items.iter().any(is_search_schema),
                other => is_search_schema(other),
            };
            if !names_search {
                return Err(ScimError::invalid_syntax(format!(
                    "a .search body's schemas must be [\"{SEARCH_REQUEST_SCHEMA}\"]"
                )));
            }
        }
        let text = |name: &str| -> ScimResult<Option<String>> {
            match get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::invalid_value(format!("{name} must be a string"))),
            }
        };
        let names = |name: &str| -> ScimResult<Option<String>> {
            match get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_owned).ok_or_else(|| {
                            ScimError::invalid_value(format!("{name} must be an array of strings"))
                        })
                    })
                    .collect::<ScimResult<Vec<_>>>()
                    .map(|v| Some(v.join(","))),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be an array of attribute names"
                ))),
            }
        };
        let integer = |name: &str| -> ScimResult<Option<String>> {
            match get(name) {
                None => Ok(None),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be an integer"
                ))),
            }
        };
        Ok(Self {
            filter: text("filter")?.filter(|f| !f.trim().is_empty()),
            paging: Paging::from_query(
                integer("startIndex")?.as_deref(),
                integer("count")?.as_deref(),
            )?,
            projection: Projection::from_query(
                names("attributes")?.as_deref(),
                names("excludedAttributes")?.as_deref(),
            )?,
            sort: Sort::from_params(text("sortBy")?.as_deref(), text("sortOrder")?.as_deref())?,
        })
    }
}

fn is_search_schema(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST_SCHEMA))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ScimType;

    #[test]
    fn a_search_body_gives_the_same_request_as_its_query_string() {
        let body = json!({
            "schemas": [SEARCH_REQUEST_SCHEMA],
            "filter": "userName sw \"a\"",
            "attributes": ["userName", "emails"],
            "sortBy": "userName", "sortOrder": "descending",
            "startIndex": 3, "count": 2,
        });
        let pairs: Vec<(String, String)> = [
            ("filter", "userName sw \"a\""),
            ("attributes", "userName,emails"),
            ("sortBy", "userName"),
            ("sortOrder", "descending"),
            ("startIndex", "3"),
            ("count", "2"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();

        let from_body = ListRequest::from_search_body(&body).unwrap();
        let from_query = ListRequest::from_query(&pairs).unwrap();

        assert_eq!(from_body.filter, from_query.filter);
        assert_eq!(from_body.paging, from_query.paging);
        assert_eq!(from_body.sort, from_query.sort);
        assert_eq!(
            format!("{:?}", from_body.projection),
            format!("{:?}", from_query.projection)
        );
        assert_eq!(from_body.paging.start_index, 3);
    }

    #[test]
    fn an_empty_search_body_lists_everything_with_the_default_page() {
        let r = ListRequest::from_search_body(&json!({})).unwrap();
        assert_eq!(r.filter, None);
        assert_eq!(r.paging, Paging::default());
        assert_eq!(r.sort, None);
    }

    #[test]
    fn bad_search_bodies_are_scim_errors() {
        for (body, want) in [
            (json!([]), ScimType::InvalidSyntax),
            (
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}),
                ScimType::InvalidSyntax,
            ),
            (json!({"filter": 3}), ScimType::InvalidValue),
            (json!({"attributes": [1]}), ScimType::InvalidValue),
            (json!({"count": "many"}), ScimType::InvalidValue),
            (
                json!({"sortOrder": "sideways", "sortBy": "userName"}),
                ScimType::InvalidValue,
            ),
        ] {
            let e = ListRequest::from_search_body(&body).unwrap_err();
            assert_eq!(e.scim_type, Some(want), "{body}");
        }
    }
}
