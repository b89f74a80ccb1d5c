//! The Group resource: validation of a canonical document, and `members`
//! taken out of it (membership is stored apart). Changes when Group gains
//! a field or the members form changes.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::canonical::canonicalize;
use super::caps::{MAX_MEMBERS_PER_LIST, check_list_sizes, check_size, too_many_values};
use super::{expect_object, optional_external_id};
use crate::error::{ScimError, ScimResult};
use crate::ids::{DisplayName, ExternalId};
use crate::schema::GROUP_RESOURCE;

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
