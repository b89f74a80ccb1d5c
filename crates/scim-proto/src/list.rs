//! Paging (RFC 7644 §3.4.2.4) and `ListResponse`.

use serde_json::{Value, json};

use crate::error::{ScimError, ScimResult};
use crate::schema::LIST_RESPONSE_SCHEMA;

/// Page size when the client gives no `count` (Entra's filter queries don't).
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page we return, whatever `count` asks for (advertised in
/// `/ServiceProviderConfig` as `filter.maxResults`).
pub const MAX_PAGE_SIZE: usize = 200;

/// A requested page: 1-based `start_index` and a clamped `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub start_index: usize,
    pub count: usize,
}

impl Default for Paging {
    fn default() -> Self {
        Self {
            start_index: 1,
            count: DEFAULT_PAGE_SIZE,
        }
    }
}

impl Paging {
    /// Parses `startIndex` and `count`. Per the RFC a `startIndex` below 1 is
    /// read as 1 and a negative `count` as 0; a `count` above the server
    /// maximum is clamped. Non-integers are a 400 `invalidValue`.
    pub fn from_query(start_index: Option<&str>, count: Option<&str>) -> ScimResult<Self> {
        let parse = |name: &str, raw: &str| {
            raw.trim().parse::<i64>().map_err(|_| {
                ScimError::invalid_value(format!("{name} must be an integer, got {raw:?}"))
            })
        };
        let start_index = match start_index {
            None => 1,
            Some(raw) => usize::try_from(parse("startIndex", raw)?.max(1)).unwrap_or(1),
        };
        let count = match count {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => {
                usize::try_from(parse("count", raw)?.clamp(0, MAX_PAGE_SIZE as i64)).unwrap_or(0)
            }
        };
        Ok(Self { start_index, count })
    }

    /// Zero-based offset of the first result.
    pub fn offset(&self) -> usize {
        self.start_index - 1
    }
}

/// A `ListResponse` body. `startIndex` echoes the request (Microsoft's
/// harness checks it) and `totalResults` is the true total.
pub fn list_response(resources: Vec<Value>, total_results: usize, start_index: usize) -> Value {
    let mut body = serde_json::Map::with_capacity(5);
    body.insert("schemas".into(), json!([LIST_RESPONSE_SCHEMA]));
    body.insert("totalResults".into(), total_results.into());
    body.insert("itemsPerPage".into(), resources.len().into());
    body.insert("startIndex".into(), start_index.into());
    body.insert("Resources".into(), Value::Array(resources));
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_paging_parameters_mean_first_page_of_default_size() {
        assert_eq!(Paging::from_query(None, None).unwrap(), Paging::default());
    }

    #[test]
    fn out_of_range_values_are_clamped_as_the_rfc_says() {
        let p = Paging::from_query(Some("0"), Some("-5")).unwrap();
        assert_eq!((p.start_index, p.count), (1, 0));
        let p = Paging::from_query(Some("6"), Some("100000")).unwrap();
        assert_eq!((p.start_index, p.count), (6, MAX_PAGE_SIZE));
    }

    #[test]
    fn non_integer_paging_is_invalid_value() {
        let err = Paging::from_query(Some("two"), None).unwrap_err();
        assert_eq!(err.scim_type, Some(crate::ScimType::InvalidValue));
    }

    #[test]
    fn list_response_uses_capital_resources_and_echoes_start_index() {
        let body = list_response(vec![json!({"id": "a"})], 12, 6);
        assert_eq!(body["Resources"][0]["id"], "a");
        assert_eq!(body["startIndex"], 6);
        assert_eq!(body["totalResults"], 12);
        assert_eq!(body["itemsPerPage"], 1);
    }
}
