//! Size caps on POST/PUT bodies and stored documents: values per
//! multi-valued attribute, members per group, emails indexed per user,
//! bytes per document. Changes when a client needs larger lists or storage
//! limits move.

use serde_json::{Map, Value};

use super::is_urn;
use crate::error::ScimError;
use crate::error::ScimResult;
use crate::schema::{AttributeDef, GROUP_RESOURCE, Mutability, ResourceType};

/// Largest canonical document we store. DynamoDB items stop at 400 KB; real
/// Entra users are a few KB.
pub const MAX_DOCUMENT_BYTES: usize = 128 * 1024;

/// Most distinct email values indexed per user (each costs an index item).
pub const MAX_EMAILS: usize = 20;

/// Most values of one multi-valued attribute (`emails`, `roles`, an unknown
/// list, …) in a POST or PUT body; more is a 400 `tooMany`. Real users have a
/// handful; the cap bounds the work one request can cause.
pub const MAX_VALUES_PER_ATTRIBUTE: usize = 1000;

/// Most members in a whole membership list: the `members` of a group's POST
/// or PUT body, or of a PATCH `replace` of `members`; more is a 400
/// `tooMany`. Okta's wizard-built integrations PUT a group's full member list
/// (what a GET returned), so this matches the most members the API returns
/// for one group (`scim-api`'s `MAX_MEMBERS_RETURNED`): a group that can be
/// read can be written back. Incremental member changes (PATCH `add`/`remove`)
/// have the tighter [`crate::patch::MAX_VALUES_PER_REQUEST`].
pub const MAX_MEMBERS_PER_LIST: usize = 20_000;

/// Refuses a POST/PUT body that lists more than [`MAX_VALUES_PER_ATTRIBUTE`]
/// values in a multi-valued attribute (known or not, at the top level or in
/// an extension object) or more than [`MAX_MEMBERS_PER_LIST`] group members.
/// Read-only attributes are exempt: they are dropped unread (Okta's PUT sends
/// back the `groups` a GET returned).
pub(super) fn check_list_sizes(body: &Map<String, Value>, rt: &ResourceType) -> ScimResult<()> {
    for (key, value) in body {
        if is_urn(key)
            && let Value::Object(attrs) = value
        {
            let schema = rt.schema_for_urn(key);
            if schema.is_some_and(|s| std::ptr::eq(s, rt.schema)) {
                // The core schema's object holds top-level attributes.
                check_list_sizes(attrs, rt)?;
                continue;
            }
            for (name, v) in attrs {
                check_list_size(rt, schema.and_then(|s| s.attribute(name)), name, v)?;
            }
            continue;
        }
        let def = if is_urn(key) {
            key.rsplit_once(':')
                .and_then(|(urn, attr)| rt.schema_for_urn(urn)?.attribute(attr))
        } else {
            rt.schema.attribute(key)
        };
        check_list_size(rt, def, key, value)?;
    }
    Ok(())
}

fn check_list_size(
    rt: &ResourceType,
    def: Option<&'static AttributeDef>,
    name: &str,
    value: &Value,
) -> ScimResult<()> {
    let Value::Array(items) = value else {
        return Ok(());
    };
    if def.is_some_and(|d| d.mutability == Mutability::ReadOnly) {
        return Ok(());
    }
    let cap = match def {
        Some(d) if d.name == "members" && std::ptr::eq(rt, &GROUP_RESOURCE) => MAX_MEMBERS_PER_LIST,
        _ => MAX_VALUES_PER_ATTRIBUTE,
    };
    if items.len() > cap {
        return Err(too_many_values(name, items.len(), cap));
    }
    Ok(())
}

/// The 400 `tooMany` for a list longer than `cap`.
pub(crate) fn too_many_values(name: &str, count: usize, cap: usize) -> ScimError {
    ScimError::too_many(format!(
        "{} has {count} values; at most {cap} are accepted in one request, so split the change \
         into smaller requests",
        crate::error::shorten(name)
    ))
}

pub(super) fn check_size(doc: &Map<String, Value>) -> ScimResult<()> {
    let size = serde_json::to_vec(doc)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_DOCUMENT_BYTES {
        return Err(ScimError::invalid_value(format!(
            "the resource is {size} bytes; at most {MAX_DOCUMENT_BYTES} are stored"
        )));
    }
    Ok(())
}
