//! Client documents → canonical, typed resources, and back to wire JSON.
//!
//! A resource is stored as the canonical map of the attributes the client
//! wrote: schema casing for known names, extension attributes nested under
//! their URN, booleans as booleans, `null` meaning "unassigned". Everything
//! else is kept exactly as sent, because Entra compares what we return with
//! what it would send and re-PATCHes on any difference. `id`, `meta` and
//! `schemas` are never part of the stored map; [`render`] adds them.
//!
//! Layout: `user` and `group` validate the two resource types, `canonical`
//! places each key and `coerce` checks each value, `caps` bounds sizes, and
//! `wire` renders the response form.

mod canonical;
mod caps;
mod coerce;
mod group;
mod user;
mod wire;

use serde_json::{Map, Value};

pub use self::canonical::canonicalize;
pub(crate) use self::caps::too_many_values;
pub use self::caps::{
    MAX_DOCUMENT_BYTES, MAX_EMAILS, MAX_MEMBERS_PER_LIST, MAX_VALUES_PER_ATTRIBUTE,
};
pub use self::coerce::{coerce_manager, parse_bool};
pub use self::group::{GroupResource, member_ids};
pub use self::user::UserResource;
pub use self::wire::{Meta, format_time, render};
use crate::error::{ScimError, ScimResult};
use crate::ids::ExternalId;

fn expect_object(body: Value) -> ScimResult<Map<String, Value>> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ScimError::invalid_syntax(
            "the request body must be a JSON object",
        )),
    }
}

fn optional_external_id(doc: &Map<String, Value>) -> ScimResult<Option<ExternalId>> {
    match doc.get("externalId") {
        None => Ok(None),
        Some(Value::String(s)) => ExternalId::parse(s).map(Some),
        Some(_) => Err(ScimError::invalid_value("externalId must be a string")),
    }
}

fn is_urn(key: &str) -> bool {
    key.len() > 4 && key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

#[cfg(test)]
mod tests;
