//! Group `members`, which live outside the document: operations on them
//! become [`MemberChange`]s. `remove` with a value array removes only the
//! listed ids (Entra's default dialect); `members[value eq "id"]` paths (its
//! flag dialect) name ids to remove. Changes with membership dialects.

use std::collections::HashSet;

use serde_json::Value;

use super::keys::get_ci;
use super::{Engine, MemberChange, PatchOpKind, Target};
use crate::ast::{AttrTest, CompValue, CompareOp, Filter, PatchPath};
use crate::error::{ScimError, ScimResult};
use crate::resource::{MAX_MEMBERS_PER_LIST, too_many_values};

impl Engine<'_> {
    pub(super) fn is_members(&self, target: &Target) -> bool {
        self.rt.name == "Group"
            && target.container.is_none()
            && target.def.is_some_and(|d| d.name == "members")
    }

    /// Translates an operation on Group `members` into a [`MemberChange`].
    pub(super) fn apply_members(
        &mut self,
        kind: PatchOpKind,
        path: &PatchPath,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        if path.attr.sub.is_some() || path.sub.is_some() {
            return Err(ScimError::invalid_path(
                "members sub-attributes cannot be patched; add or remove whole members",
            ));
        }
        if let Some(filter) = &path.filter {
            if kind != PatchOpKind::Remove {
                return Err(ScimError::invalid_path(format!(
                    "\"{}\" with a members[filter] path is not supported; use path \"members\" with a value array",
                    kind.as_str()
                )));
            }
            let mut ids = Vec::new();
            if !member_ids_from_filter(filter, &mut ids) {
                return Err(ScimError::invalid_filter(
                    "only members[value eq \"id\"] (optionally or-ed) is supported in a members remove path",
                ));
            }
            dedupe(&mut ids);
            self.members.push(MemberChange::Remove(ids));
            return Ok(());
        }
        let change = match (kind, value) {
            (PatchOpKind::Add, None | Some(Value::Null)) => {
                return Err(ScimError::invalid_value(
                    "\"add\" of members needs a value array like [{\"value\": \"<id>\"}]",
                ));
            }
            (PatchOpKind::Add, Some(v)) => {
                let ids = member_ids(v)?;
                if ids.is_empty() {
                    return Ok(());
                }
                MemberChange::Add(ids)
            }
            (PatchOpKind::Replace, None | Some(Value::Null)) => MemberChange::RemoveAll,
            (PatchOpKind::Replace, Some(v)) => MemberChange::Replace(member_ids(v)?),
            // Entra's default dialect: `remove members` + value array removes
            // only those ids. Only a remove without ids clears the group.
            (PatchOpKind::Remove, None | Some(Value::Null)) => MemberChange::RemoveAll,
            (PatchOpKind::Remove, Some(v)) => {
                let ids = member_ids(v)?;
                if ids.is_empty() {
                    MemberChange::RemoveAll
                } else {
                    MemberChange::Remove(ids)
                }
            }
        };
        self.members.push(change);
        Ok(())
    }
}

/// Ids from `members[value eq "a" or value eq "b"]`.
fn member_ids_from_filter(filter: &Filter, out: &mut Vec<String>) -> bool {
    match filter {
        Filter::Attr {
            path,
            test: AttrTest::Compare(CompareOp::Eq, CompValue::Str(id)),
        } if path.urn.is_none()
            && path.sub.is_none()
            && path.name.eq_ignore_ascii_case("value") =>
        {
            out.push(id.clone());
            true
        }
        Filter::Or(a, b) => member_ids_from_filter(a, out) && member_ids_from_filter(b, out),
        _ => false,
    }
}

/// Member ids from a `members` value: `[{"value": "id"}, …]`, one such
/// object, or (leniently) bare id strings. Deduplicated in order.
fn member_ids(value: &Value) -> ScimResult<Vec<String>> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    if items.len() > MAX_MEMBERS_PER_LIST {
        return Err(too_many_values(
            "members",
            items.len(),
            MAX_MEMBERS_PER_LIST,
        ));
    }
    let mut ids = Vec::with_capacity(items.len());
    let mut seen: HashSet<&str> = HashSet::with_capacity(items.len());
    for item in items {
        let id = match item {
            Value::Object(m) => get_ci(m, "value").and_then(Value::as_str),
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ScimError::invalid_value(
                "each member must be an object with a non-empty string \"value\" (the member's id)",
            )
        })?;
        if seen.insert(id) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// Drops repeated ids, keeping the first occurrence of each, in expected
/// linear time.
fn dedupe(ids: &mut Vec<String>) {
    let mut seen: HashSet<String> = HashSet::with_capacity(ids.len());
    ids.retain(|id| seen.insert(id.clone()));
}
