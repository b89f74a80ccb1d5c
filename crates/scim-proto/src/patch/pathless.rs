//! Path-less `add`/`replace` (Entra's `aadOptscim062020` dialect and some
//! validators): each key of the value object is a path of its own, dotted
//! (`"name.givenName"`) or URN-qualified, or a whole extension object merged
//! attribute by attribute. Changes when a client flattens keys differently.

use serde_json::Value;

use super::keys::{get_ci, is_urn, take_ci};
use super::{Engine, PatchOpKind, PatchRequest};
use crate::ast::PatchPath;
use crate::error::{ScimError, ScimResult};
use crate::path::{parse_attr_path, parse_patch_path};

impl Engine<'_> {
    /// A path-less `add`/`replace`: each key of the value object is a path of
    /// its own (`"displayName"`, `"name.givenName"`, `"urn:…:User:department"`)
    /// or a whole extension object (`"urn:…:enterprise:2.0:User": {…}`).
    pub(super) fn apply_pathless(
        &mut self,
        kind: PatchOpKind,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        let Some(Value::Object(attrs)) = value else {
            return Err(ScimError::invalid_value(format!(
                "a \"{}\" without \"path\" needs a \"value\" object of attributes",
                kind.as_str()
            )));
        };
        for (key, v) in attrs {
            if (v.is_object() || v.is_null()) && self.is_schema_urn(key) {
                self.apply_schema_object(kind, key, v)?;
                continue;
            }
            let path = parse_key_path(key)?;
            self.apply_path(kind, &path, Some(v))?;
        }
        Ok(())
    }

    /// True when `key` names a whole schema (an extension object), not an
    /// attribute in one: a schema of this resource type, an extension object
    /// already in the document, or a URN ending in the resource type's name
    /// (`urn:…:CustomExt:2.0:User`, the convention for extension ids).
    pub(super) fn is_schema_urn(&self, key: &str) -> bool {
        if !is_urn(key) {
            return false;
        }
        self.rt.schema_for_urn(key).is_some()
            || get_ci(&self.doc, key).is_some_and(Value::is_object)
            || key
                .rsplit(':')
                .next()
                .is_some_and(|last| last.eq_ignore_ascii_case(self.rt.name))
    }

    /// Applies a whole extension object attribute by attribute (so that
    /// attributes not mentioned are kept), or removes it.
    pub(super) fn apply_schema_object(
        &mut self,
        kind: PatchOpKind,
        urn: &str,
        v: &Value,
    ) -> ScimResult<()> {
        match (kind, v) {
            (PatchOpKind::Remove, _) | (_, Value::Null) => {
                if let Some(schema) = self.rt.schema_for_urn(urn)
                    && std::ptr::eq(schema, self.rt.schema)
                {
                    return Err(ScimError::mutability(format!(
                        "the core schema {} cannot be removed as a whole",
                        schema.id
                    )));
                }
                take_ci(&mut self.doc, urn);
                Ok(())
            }
            (_, Value::Object(attrs)) => {
                for (name, v) in attrs {
                    let path = parse_key_path(&format!("{urn}:{name}"))?;
                    self.apply_path(kind, &path, Some(v))?;
                }
                Ok(())
            }
            _ => Err(ScimError::invalid_value(format!(
                "{urn} must be an object of attributes"
            ))),
        }
    }
}

impl PatchRequest {
    /// The request without the read-only attributes a client echoes in a
    /// path-less `add`/`replace` value: Okta's group rename (and the replace
    /// it sends before membership updates) carries the group's own `id`, and
    /// clients that build the value from a GET also echo `meta` and
    /// `schemas`. The resource's own `id` and any `meta` or `schemas` are
    /// dropped; an `id` naming another resource is a `mutability` error.
    pub fn without_echoes(&self, own_id: &str) -> ScimResult<Self> {
        let mut out = self.clone();
        for op in &mut out.operations {
            let (PatchOpKind::Add | PatchOpKind::Replace, None, Some(Value::Object(attrs))) =
                (op.op, &op.path, &mut op.value)
            else {
                continue;
            };
            if let Some(id) = take_ci(attrs, "id")
                && !id
                    .as_str()
                    .is_some_and(|id| id.eq_ignore_ascii_case(own_id))
            {
                return Err(ScimError::mutability(format!(
                    "id is read-only: the value names {id}, not this resource ({own_id})"
                )));
            }
            take_ci(attrs, "meta");
            take_ci(attrs, "schemas");
        }
        Ok(out)
    }
}

/// Parses a key of a path-less value object. Keys are attribute paths; a key
/// with a value filter is accepted too, as some clients send one.
fn parse_key_path(key: &str) -> ScimResult<PatchPath> {
    let parsed = if key.contains('[') {
        parse_patch_path(key)
    } else {
        parse_attr_path(key).map(|attr| PatchPath {
            attr,
            filter: None,
            sub: None,
        })
    };
    parsed.map_err(|e| {
        ScimError::invalid_path(format!(
            "\"{key}\" in the value object is not a valid attribute path: {}",
            e.detail
        ))
    })
}
