//! Bounds on the work one PATCH request can cause: how many operations and
//! values it may carry (Entra sends a handful; Okta a few hundred members).
//! Changes when a client needs a larger batch or a new cost appears.

use serde_json::Value;

use super::{PatchOpKind, PatchRequest};
use crate::ast::{AttrPath, Filter};
use crate::error::{ScimError, ScimResult};
use crate::resource::{MAX_MEMBERS_PER_LIST, too_many_values};

use super::keys::is_urn;

/// Most operations accepted in one request. Entra sends a handful; the cap
/// bounds the work one request can cause.
pub const MAX_OPERATIONS: usize = 1000;

/// Most values one PATCH request may carry, summed over its operations: each
/// element of a `value` array (group member ids included), each attribute of
/// a path-less `value` object (and of the extension objects in it), each
/// comparison of a value-filter path, and one for any other value. More is a
/// 400 `tooMany`. Entra changes group members in small batches (on-demand
/// provisioning: at most 5) and a handful of attributes per request; Okta
/// sends up to a few hundred members per request. The cap bounds the work one
/// request can cause (a 1 MiB body holds about 130,000 bare member ids). A
/// `replace` of group `members`, which carries a whole membership like a PUT,
/// is counted apart against [`MAX_MEMBERS_PER_LIST`].
pub const MAX_VALUES_PER_REQUEST: usize = 1000;

impl PatchRequest {
    /// Refuses a request carrying more than [`MAX_VALUES_PER_REQUEST`]
    /// values, or more than [`MAX_MEMBERS_PER_LIST`] members in `replace`s of
    /// `members` (400 `tooMany`). Linear in the number of operations and
    /// path-less attributes; nothing is applied before this check.
    pub fn check_size(&self) -> ScimResult<()> {
        let mut values = 0usize;
        let mut membership = 0usize;
        for op in &self.operations {
            let replace = op.op == PatchOpKind::Replace;
            match (&op.path, &op.value) {
                (Some(path), value) => {
                    let n = value.as_ref().map_or(0, value_count);
                    if replace && path.filter.is_none() && is_members_path(&path.attr) {
                        membership = membership.saturating_add(n);
                    } else {
                        let terms = path.filter.as_ref().map_or(0, comparisons);
                        values = values.saturating_add(n).saturating_add(terms);
                    }
                }
                (None, Some(Value::Object(attrs))) => {
                    for (key, v) in attrs {
                        if replace && key.eq_ignore_ascii_case("members") {
                            membership = membership.saturating_add(value_count(v));
                        } else if is_urn(key)
                            && let Value::Object(ext) = v
                        {
                            let n = ext.values().map(value_count).sum::<usize>();
                            values = values.saturating_add(n.max(1));
                        } else {
                            values = values.saturating_add(value_count(v));
                        }
                    }
                }
                (None, _) => values = values.saturating_add(1),
            }
        }
        if values > MAX_VALUES_PER_REQUEST {
            return Err(ScimError::too_many(format!(
                "the PATCH request carries {values} values (member ids, list elements, \
                 attributes); at most {MAX_VALUES_PER_REQUEST} are accepted per request, so \
                 split it into smaller requests"
            )));
        }
        if membership > MAX_MEMBERS_PER_LIST {
            return Err(too_many_values(
                "the replaced members",
                membership,
                MAX_MEMBERS_PER_LIST,
            ));
        }
        Ok(())
    }
}

/// How many values a `value` counts for: the elements of an array, else one.
fn value_count(value: &Value) -> usize {
    match value {
        Value::Array(items) => items.len().max(1),
        _ => 1,
    }
}

/// The comparisons in a value filter (each may name a member id).
fn comparisons(filter: &Filter) -> usize {
    match filter {
        Filter::Attr { .. } => 1,
        Filter::ValuePath { filter, sub, .. } => comparisons(filter) + usize::from(sub.is_some()),
        Filter::And(a, b) | Filter::Or(a, b) => comparisons(a) + comparisons(b),
        Filter::Not(inner) => comparisons(inner),
    }
}

/// `members`, unqualified or in the core Group schema.
fn is_members_path(attr: &AttrPath) -> bool {
    attr.sub.is_none()
        && attr.name.eq_ignore_ascii_case("members")
        && attr
            .urn
            .as_deref()
            .is_none_or(|urn| urn.eq_ignore_ascii_case(crate::schema::GROUP.id))
}
