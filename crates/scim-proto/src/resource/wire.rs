//! The wire form of a stored resource: `schemas`, `id`, the attributes
//! (minus `returned: never`) and `meta` with its version ETag. Changes with
//! what responses carry.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::is_urn;
use crate::ids::ResourceId;
use crate::schema::{ResourceType, Returned};

/// Server-maintained metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub created: OffsetDateTime,
    pub last_modified: OffsetDateTime,
    /// Incremented on every write; the ETag is derived from it.
    pub version: u64,
}

impl Meta {
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            created: now,
            last_modified: now,
            version: 1,
        }
    }

    /// The weak ETag clients send back in `If-Match`.
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }

    /// The next version after a change at `now`.
    pub fn bumped(&self, now: OffsetDateTime) -> Self {
        Self {
            created: self.created,
            last_modified: now,
            version: self.version + 1,
        }
    }
}

/// Formats a timestamp the way SCIM clients expect (RFC 3339, UTC, millis).
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_else(|_| t.to_string())
}

/// Renders the wire form of a stored resource: `schemas` (core plus every
/// extension present), `id`, the attributes, and `meta`. Attributes with
/// `returned: never` (password) are left out.
pub fn render(
    rt: &ResourceType,
    id: &ResourceId,
    doc: &Map<String, Value>,
    meta: &Meta,
    location: &str,
) -> Map<String, Value> {
    let mut schemas = vec![Value::String(rt.schema.id.to_owned())];
    for (k, v) in doc {
        if is_urn(k) && v.is_object() {
            schemas.push(Value::String(k.clone()));
        }
    }
    let mut out = Map::with_capacity(doc.len() + 3);
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(id.to_string()));
    for (k, v) in doc {
        let never = rt
            .schema
            .attribute(k)
            .is_some_and(|d| d.returned == Returned::Never);
        if !never {
            out.insert(k.clone(), v.clone());
        }
    }
    if rt.name == "User" {
        add_manager_ref(&mut out, location);
    }
    out.insert(
        "meta".into(),
        serde_json::json!({
            "resourceType": rt.name,
            "created": format_time(meta.created),
            "lastModified": format_time(meta.last_modified),
            "location": location,
            "version": meta.etag(),
        }),
    );
    out
}

/// `manager.$ref`, derived from the manager's id and this user's location
/// (`…/Users/{id}`), so it is always the URL of the manager's resource
/// whatever a client sent (only the id is stored).
fn add_manager_ref(user: &mut Map<String, Value>, location: &str) {
    let Some((users, _)) = location.rsplit_once('/') else {
        return;
    };
    let manager = user
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(crate::schema::ENTERPRISE_USER_SCHEMA))
        .and_then(|(_, ext)| ext.as_object_mut())
        .and_then(|ext| ext.get_mut("manager"))
        .and_then(Value::as_object_mut);
    if let Some(manager) = manager
        && let Some(id) = manager.get("value").and_then(Value::as_str)
    {
        let url = format!("{users}/{id}");
        manager.insert("$ref".into(), Value::String(url));
    }
}
