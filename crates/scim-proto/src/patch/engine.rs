//! The apply engine's dispatch: an operation's path is resolved against the
//! schema and the document (extension containers, read-only attributes,
//! schema spelling of keys) and handed to the handler for its shape (whole
//! attribute, sub-attribute, value filter, manager, group members). Changes
//! when a new path shape or a new special attribute is handled.

use serde_json::{Map, Value};

use super::keys::{find_key, get_ci};
use super::{Container, Engine, PatchOpKind, PatchOperation, SubTarget, Target};
use crate::ast::{AttrPath, PatchPath};
use crate::error::{ScimError, ScimResult};
use crate::schema::{AttrType, ENTERPRISE_USER_SCHEMA, Mutability};

impl Engine<'_> {
    pub(super) fn apply_op(&mut self, op: &PatchOperation) -> ScimResult<()> {
        let value = op.value.as_ref();
        match (&op.path, op.op) {
            (None, PatchOpKind::Remove) => Err(ScimError::no_target(
                "\"remove\" needs a \"path\" naming what to remove",
            )),
            (None, kind) => self.apply_pathless(kind, value),
            (Some(path), kind) => self.apply_path(kind, path, value),
        }
    }

    pub(super) fn apply_path(
        &mut self,
        kind: PatchOpKind,
        path: &PatchPath,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        if kind != PatchOpKind::Remove && value.is_none() {
            return Err(ScimError::invalid_value(format!(
                "\"{}\" of {} needs a \"value\"",
                kind.as_str(),
                path
            )));
        }
        // `urn:…:enterprise:2.0:User` alone parses as attribute `User` of
        // `urn:…:enterprise:2.0`; it names the whole extension object.
        if path.filter.is_none()
            && path.sub.is_none()
            && path.attr.sub.is_none()
            && let Some(urn) = &path.attr.urn
        {
            let full = format!("{urn}:{}", path.attr.name);
            if self.is_schema_urn(&full) {
                return self.apply_schema_object(kind, &full, value.unwrap_or(&Value::Null));
            }
        }
        let target = self.resolve(&path.attr)?;
        if self.is_members(&target) {
            return self.apply_members(kind, path, value);
        }
        let sub = match (&path.attr.sub, &path.sub) {
            (Some(s), None) | (None, Some(s)) => Some(self.resolve_sub(&target, s)?),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(ScimError::invalid_path(format!(
                    "{} has two sub-attributes",
                    path
                )));
            }
        };
        // `null` unassigns (RFC 7644 §3.5.2.1/3): the same as a remove.
        let (kind, value) = match value {
            Some(Value::Null) | None => (PatchOpKind::Remove, None),
            Some(v) => (kind, Some(v)),
        };
        if let Some(filter) = &path.filter {
            if target.def.is_some_and(|d| !d.multi_valued) {
                return Err(ScimError::invalid_path(format!(
                    "{} is single-valued; a [filter] applies only to multi-valued attributes",
                    target.label
                )));
            }
            return self.apply_filtered(kind, &target, filter, sub.as_ref(), value);
        }
        if is_manager(&target) {
            return self.apply_manager(kind, &target, sub.as_ref(), value);
        }
        match sub {
            Some(sub) => self.apply_sub(kind, &target, &sub, value),
            None => self.apply_whole(kind, &target, value),
        }
    }

    /// Locates `attr` in the schema and in the document, and refuses
    /// read-only attributes (`id`, `meta`, `groups`, `schemas`).
    fn resolve(&self, attr: &AttrPath) -> ScimResult<Target> {
        let label = attr.to_string();
        if attr.urn.is_none() && attr.name.eq_ignore_ascii_case("schemas") {
            return Err(ScimError::mutability(
                "\"schemas\" is set by the server and cannot be modified",
            ));
        }
        let (container, def) = match &attr.urn {
            None => match self.rt.schema.attribute(&attr.name) {
                Some(def) => (None, Some(def)),
                // An extension attribute written without its URN (the legacy
                // `"path": "manager"`): resolved in the extension that has it.
                None => match self
                    .rt
                    .extensions
                    .iter()
                    .find_map(|(s, _)| s.attribute(&attr.name).map(|d| (s.id, d)))
                {
                    Some((urn, def)) => (
                        Some(Container {
                            key: urn.to_owned(),
                            canonical: true,
                        }),
                        Some(def),
                    ),
                    None => (None, None),
                },
            },
            Some(urn) => match self.rt.schema_for_urn(urn) {
                Some(schema) if std::ptr::eq(schema, self.rt.schema) => {
                    (None, schema.attribute(&attr.name))
                }
                Some(schema) => (
                    Some(Container {
                        key: schema.id.to_owned(),
                        canonical: true,
                    }),
                    schema.attribute(&attr.name),
                ),
                None => (
                    Some(Container {
                        key: find_key(&self.doc, urn).unwrap_or_else(|| urn.clone()),
                        canonical: false,
                    }),
                    None,
                ),
            },
        };
        if let Some(def) = def
            && def.mutability == Mutability::ReadOnly
        {
            return Err(ScimError::mutability(format!(
                "{} is read-only and cannot be modified",
                def.name
            )));
        }
        let key = match def {
            Some(def) => def.name.to_owned(),
            None => {
                let existing = match &container {
                    None => Some(&self.doc),
                    Some(c) => get_ci(&self.doc, &c.key).and_then(Value::as_object),
                };
                existing
                    .and_then(|m| find_key(m, &attr.name))
                    .unwrap_or_else(|| attr.name.clone())
            }
        };
        Ok(Target {
            container,
            key,
            def,
            label,
        })
    }

    fn resolve_sub(&self, target: &Target, name: &str) -> ScimResult<SubTarget> {
        let def = match target.def {
            None => None,
            Some(def) if def.ty != AttrType::Complex => {
                return Err(ScimError::invalid_path(format!(
                    "{} has no sub-attributes, so \"{}.{name}\" is not a valid path",
                    def.name, def.name
                )));
            }
            Some(def) => def.sub(name),
        };
        if let (Some(parent), Some(sub)) = (target.def, def)
            && sub.mutability == Mutability::ReadOnly
        {
            return Err(ScimError::mutability(format!(
                "{}.{} is read-only and cannot be modified",
                parent.name, sub.name
            )));
        }
        Ok(SubTarget {
            name: name.to_owned(),
            def,
        })
    }

    /// The map holding `target`, created when `create` is set.
    pub(super) fn container_mut(
        &mut self,
        target: &Target,
        create: bool,
    ) -> ScimResult<Option<&mut Map<String, Value>>> {
        let Some(c) = &target.container else {
            return Ok(Some(&mut self.doc));
        };
        let key = match find_key(&self.doc, &c.key) {
            Some(existing) if c.canonical && existing != c.key => {
                let v = self.doc.shift_remove(&existing).unwrap_or(Value::Null);
                self.doc.insert(c.key.clone(), v);
                c.key.clone()
            }
            Some(existing) => existing,
            None if create => {
                self.doc.insert(c.key.clone(), Value::Object(Map::new()));
                c.key.clone()
            }
            None => return Ok(None),
        };
        match self.doc.get_mut(&key) {
            Some(Value::Object(m)) => Ok(Some(m)),
            _ => Err(ScimError::invalid_path(format!(
                "{key} does not hold an object, so {} cannot be set in it",
                target.label
            ))),
        }
    }

    /// Drops the extension object of `target` if an operation emptied it.
    pub(super) fn prune_container(&mut self, target: &Target) {
        if let Some(c) = &target.container
            && let Some(key) = find_key(&self.doc, &c.key)
            && self
                .doc
                .get(&key)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
        {
            self.doc.shift_remove(&key);
        }
    }
}

fn is_manager(target: &Target) -> bool {
    target
        .container
        .as_ref()
        .is_some_and(|c| c.key == ENTERPRISE_USER_SCHEMA)
        && target.def.is_some_and(|d| d.name == "manager")
}
