//! The PATCH engine (RFC 7644 §3.5.2), tolerant of every form Microsoft Entra
//! ID sends (see `docs/entra.md` §2.3–2.9):
//!
//! - `op` in any case (`Add`, `Replace`, `remove`).
//! - Paths that are simple (`userName`), dotted (`name.givenName`),
//!   URN-qualified (`urn:…:enterprise:2.0:User:department`, custom extensions
//!   included) or value-filtered (`emails[type eq "work"].value`), with
//!   create-if-missing for filtered `add`/`replace`.
//! - Path-less `add`/`replace` whose value object has flattened keys
//!   (`"name.givenName"`, `"urn:…:User:employeeNumber"`) or nested extension
//!   objects.
//! - Boolean strings (`"False"`) for Boolean attributes, at any depth.
//! - The manager as a bare id, an object, the legacy array, or `""` to clear.
//! - Group `members`, which is not stored in the document: operations on it
//!   become [`MemberChange`]s, and `remove members` with a value array removes
//!   only the listed ids (Entra's default dialect), never the whole group.
//!
//! [`apply`] works on a copy and writes back only when every operation
//! succeeded, so a failing request leaves the resource untouched. The result
//! is canonical in names (schema casing for known attributes) but not fully
//! type-checked: the caller re-validates the document afterwards.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::ast::{AttrPath, AttrTest, CompValue, CompareOp, Filter, PatchPath};
use crate::error::{ScimError, ScimResult};
use crate::path::{parse_attr_path, parse_patch_path};
use crate::resource::{MAX_MEMBERS_PER_LIST, coerce_manager, parse_bool, too_many_values};
use crate::schema::{
    AttrType, AttributeDef, ENTERPRISE_USER_SCHEMA, Mutability, PATCH_OP_SCHEMA, ResourceType,
};

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

/// `op` of a PATCH operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    Add,
    Remove,
    Replace,
}

impl PatchOpKind {
    /// Parses `op` ignoring case: Entra's default dialect capitalises it
    /// (`Replace`), its `aadOptscim062020` dialect does not.
    pub fn parse(op: &str) -> ScimResult<Self> {
        if op.eq_ignore_ascii_case("add") {
            Ok(Self::Add)
        } else if op.eq_ignore_ascii_case("remove") {
            Ok(Self::Remove)
        } else if op.eq_ignore_ascii_case("replace") {
            Ok(Self::Replace)
        } else {
            Err(ScimError::invalid_syntax(format!(
                "unsupported PATCH op \"{op}\"; use \"add\", \"remove\" or \"replace\""
            )))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Replace => "replace",
        }
    }
}

/// One entry of `Operations`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOpKind,
    pub path: Option<PatchPath>,
    /// `Some(Value::Null)` when the client sent `"value": null` (which
    /// unassigns); `None` when it sent no `value` at all.
    pub value: Option<Value>,
}

/// A parsed `PatchOp` request body.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Parses and checks the shape of a PATCH body. Paths are parsed here so
    /// that a malformed path fails the request before anything is applied.
    pub fn from_json(body: Value) -> ScimResult<Self> {
        let Value::Object(mut body) = body else {
            return Err(ScimError::invalid_syntax(
                "the PATCH body must be a JSON object with \"schemas\" and \"Operations\"",
            ));
        };
        let has_patch_schema = match get_ci(&body, "schemas") {
            Some(Value::Array(items)) => items.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
            }),
            Some(Value::String(s)) => s.eq_ignore_ascii_case(PATCH_OP_SCHEMA),
            _ => false,
        };
        if !has_patch_schema {
            return Err(ScimError::invalid_syntax(format!(
                "the PATCH body must have \"schemas\": [\"{PATCH_OP_SCHEMA}\"]"
            )));
        }
        let ops = match take_ci(&mut body, "Operations") {
            Some(Value::Array(ops)) if !ops.is_empty() => ops,
            _ => {
                return Err(ScimError::invalid_syntax(
                    "the PATCH body must have a non-empty \"Operations\" array",
                ));
            }
        };
        if ops.len() > MAX_OPERATIONS {
            return Err(ScimError::invalid_syntax(format!(
                "the PATCH body has {} operations; at most {MAX_OPERATIONS} are accepted per request",
                ops.len()
            )));
        }
        let operations = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| parse_operation(i, op))
            .collect::<ScimResult<Vec<_>>>()?;
        let request = Self { operations };
        request.check_size()?;
        Ok(request)
    }

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

fn parse_operation(index: usize, op: Value) -> ScimResult<PatchOperation> {
    let n = index + 1;
    let Value::Object(mut op) = op else {
        return Err(ScimError::invalid_syntax(format!(
            "operation {n} must be an object with \"op\", \"path\" and \"value\""
        )));
    };
    let kind = match take_ci(&mut op, "op") {
        Some(Value::String(s)) => PatchOpKind::parse(&s)?,
        _ => {
            return Err(ScimError::invalid_syntax(format!(
                "operation {n} needs an \"op\" string (\"add\", \"remove\" or \"replace\")"
            )));
        }
    };
    let path = match take_ci(&mut op, "path") {
        None | Some(Value::Null) => None,
        // An empty path is read as "no path", like a missing one.
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_patch_path(s.trim()).map_err(|e| {
            ScimError::invalid_path(format!("operation {n}: invalid path \"{s}\": {}", e.detail))
        })?),
        Some(_) => {
            return Err(ScimError::invalid_path(format!(
                "operation {n}: \"path\" must be a string"
            )));
        }
    };
    let value = take_ci(&mut op, "value");
    match (kind, &path, &value) {
        (PatchOpKind::Remove, None, _) => Err(ScimError::no_target(format!(
            "operation {n}: \"remove\" needs a \"path\" naming what to remove"
        ))),
        (PatchOpKind::Add | PatchOpKind::Replace, _, None) => Err(ScimError::invalid_value(
            format!("operation {n}: \"{}\" needs a \"value\"", kind.as_str()),
        )),
        _ => Ok(PatchOperation {
            op: kind,
            path,
            value,
        }),
    }
}

/// A change to a Group's membership, which is stored outside the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Add these member ids (already members are fine).
    Add(Vec<String>),
    /// Remove only these ids (absent ones are fine).
    Remove(Vec<String>),
    /// Remove every member.
    RemoveAll,
    /// The membership becomes exactly these ids.
    Replace(Vec<String>),
}

/// What [`apply`] did besides updating the document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchOutcome {
    /// Membership changes, in request order.
    pub member_changes: Vec<MemberChange>,
    /// False only when the document is unchanged and there are no member
    /// changes, so the caller can skip the write (and the version bump).
    pub changed: bool,
}

/// Applies `request` to `doc` in order and atomically: on error `doc` is left
/// exactly as it was.
pub fn apply(
    doc: &mut Map<String, Value>,
    request: &PatchRequest,
    rt: &ResourceType,
) -> ScimResult<PatchOutcome> {
    // Requests built without `from_json` get the same bound on their work.
    request.check_size()?;
    let mut engine = Engine {
        rt,
        doc: doc.clone(),
        members: Vec::new(),
    };
    for op in &request.operations {
        engine.apply_op(op)?;
    }
    let changed = engine.doc != *doc || !engine.members.is_empty();
    if changed {
        *doc = engine.doc;
    }
    Ok(PatchOutcome {
        member_changes: engine.members,
        changed,
    })
}

struct Engine<'a> {
    rt: &'a ResourceType,
    /// The working copy.
    doc: Map<String, Value>,
    members: Vec<MemberChange>,
}

/// Where an attribute lives and what the schema says about it.
struct Target {
    /// `None`: top level. `Some`: the key of the extension object it lives in.
    container: Option<Container>,
    /// The key to write: the schema's spelling when the attribute is known,
    /// else the existing key's spelling, else the client's.
    key: String,
    def: Option<&'static AttributeDef>,
    /// Shown in error messages.
    label: String,
}

struct Container {
    key: String,
    /// True for known schemas: `key` is the schema's spelling and a
    /// differently-cased existing key is renamed to it.
    canonical: bool,
}

/// A sub-attribute below a [`Target`].
struct SubTarget {
    /// The sub-attribute's name as the client wrote it.
    name: String,
    def: Option<&'static AttributeDef>,
}

impl SubTarget {
    /// The key to write in `obj`.
    fn key_in(&self, obj: &Map<String, Value>) -> String {
        canonical_key(obj, &self.name, self.def)
    }
}

impl Engine<'_> {
    fn apply_op(&mut self, op: &PatchOperation) -> ScimResult<()> {
        let value = op.value.as_ref();
        match (&op.path, op.op) {
            (None, PatchOpKind::Remove) => Err(ScimError::no_target(
                "\"remove\" needs a \"path\" naming what to remove",
            )),
            (None, kind) => self.apply_pathless(kind, value),
            (Some(path), kind) => self.apply_path(kind, path, value),
        }
    }

    /// A path-less `add`/`replace`: each key of the value object is a path of
    /// its own (`"displayName"`, `"name.givenName"`, `"urn:…:User:department"`)
    /// or a whole extension object (`"urn:…:enterprise:2.0:User": {…}`).
    fn apply_pathless(&mut self, kind: PatchOpKind, value: Option<&Value>) -> ScimResult<()> {
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
    fn is_schema_urn(&self, key: &str) -> bool {
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
    fn apply_schema_object(&mut self, kind: PatchOpKind, urn: &str, v: &Value) -> ScimResult<()> {
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

    fn apply_path(
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

    fn is_members(&self, target: &Target) -> bool {
        self.rt.name == "Group"
            && target.container.is_none()
            && target.def.is_some_and(|d| d.name == "members")
    }

    /// Translates an operation on Group `members` into a [`MemberChange`].
    fn apply_members(
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

    /// The map holding `target`, created when `create` is set.
    fn container_mut(
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
    fn prune_container(&mut self, target: &Target) {
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

    /// add/replace/remove of a whole attribute (no sub-attribute, no filter).
    fn apply_whole(
        &mut self,
        kind: PatchOpKind,
        target: &Target,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        let def = target.def;
        let label = target.label.clone();
        let Some(map) = self.container_mut(target, kind != PatchOpKind::Remove)? else {
            return Ok(());
        };
        let key = canonical_key(map, &target.key, def);
        let existing = detach(map, &key);
        let new = match (kind, value) {
            (PatchOpKind::Remove, _) | (_, None) => {
                remove_listed_values(existing, value, def, &label)?
            }
            (_, Some(v)) => {
                let multi = def.map_or_else(
                    || v.is_array() || existing.as_ref().is_some_and(Value::is_array),
                    |d| d.multi_valued,
                );
                let complex = match def {
                    Some(d) => d.ty == AttrType::Complex,
                    None => existing.as_ref().is_none_or(Value::is_object),
                };
                if multi {
                    set_multi(kind, existing, v, def, &label)?
                } else if complex && v.is_object() {
                    // RFC 7644 §3.5.2.1/3: the given sub-attributes are set,
                    // the others are left unchanged (add and replace alike).
                    let mut obj = match existing {
                        Some(Value::Object(m)) => m,
                        _ => Map::new(),
                    };
                    merge_into(&mut obj, v, def, &label)?;
                    (!obj.is_empty()).then_some(Value::Object(obj))
                } else if complex && def.is_some() {
                    return Err(ScimError::invalid_value(format!(
                        "{label} is a complex attribute; its value must be an object of sub-attributes"
                    )));
                } else {
                    // Single-valued: add and replace both set (Entra sends
                    // `Add` when the attribute had no value before).
                    Some(coerce_single(v.clone(), def, &label)?)
                }
            }
        };
        store(map, key, new);
        self.prune_container(target);
        Ok(())
    }

    /// add/replace/remove of `attr.sub` without a filter: on a complex
    /// attribute it touches one sub-attribute; on a multi-valued one, that
    /// sub-attribute of every element.
    fn apply_sub(
        &mut self,
        kind: PatchOpKind,
        target: &Target,
        sub: &SubTarget,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        let label = format!("{}.{}", target.label, sub.name);
        let Some(map) = self.container_mut(target, kind != PatchOpKind::Remove)? else {
            return Ok(());
        };
        let key = canonical_key(map, &target.key, target.def);
        let existing = detach(map, &key);
        let value = value
            .map(|v| coerce_single(v.clone(), sub.def, &label))
            .transpose()?;
        let new = match existing {
            Some(Value::Array(mut items)) => {
                for item in &mut items {
                    if let Value::Object(obj) = item {
                        set_or_remove_sub(obj, sub, value.as_ref());
                    }
                }
                if items.is_empty()
                    && let Some(v) = &value
                {
                    let mut obj = Map::new();
                    set_or_remove_sub(&mut obj, sub, Some(v));
                    items.push(Value::Object(obj));
                }
                items.retain(|i| i.as_object().is_none_or(|o| !o.is_empty()));
                (!items.is_empty()).then_some(Value::Array(items))
            }
            None if target.def.is_some_and(|d| d.multi_valued) => value.map(|v| {
                let mut obj = Map::new();
                set_or_remove_sub(&mut obj, sub, Some(&v));
                Value::Array(vec![Value::Object(obj)])
            }),
            Some(Value::Object(mut obj)) => {
                set_or_remove_sub(&mut obj, sub, value.as_ref());
                (!obj.is_empty()).then_some(Value::Object(obj))
            }
            None => value.map(|v| {
                let mut obj = Map::new();
                set_or_remove_sub(&mut obj, sub, Some(&v));
                Value::Object(obj)
            }),
            Some(other) => {
                if kind == PatchOpKind::Remove {
                    Some(other)
                } else {
                    return Err(ScimError::invalid_path(format!(
                        "{} is not a complex attribute, so {label} cannot be set",
                        target.label
                    )));
                }
            }
        };
        store(map, key, new);
        self.prune_container(target);
        Ok(())
    }

    /// `emails[type eq "work"]`, `emails[type eq "work"].value`: touches the
    /// matching elements. With no match, add/replace create an element from
    /// the filter's `eq` terms (Entra sends `Add` for a work email the user
    /// does not have yet); remove is a no-op.
    fn apply_filtered(
        &mut self,
        kind: PatchOpKind,
        target: &Target,
        filter: &Filter,
        sub: Option<&SubTarget>,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        let def = target.def;
        let label = match sub {
            Some(s) => format!("{}[…].{}", target.label, s.name),
            None => format!("{}[…]", target.label),
        };
        let value = match (sub, value) {
            (_, None) => None,
            (Some(s), Some(v)) => Some(coerce_single(v.clone(), s.def, &label)?),
            (None, Some(v @ Value::Object(_))) => Some(v.clone()),
            (None, Some(_)) => {
                return Err(ScimError::invalid_value(format!(
                    "{label} selects whole elements; the value must be an object of sub-attributes"
                )));
            }
        };
        let matcher = ElementMatcher::new(target, filter);
        let rt = self.rt;
        let Some(map) = self.container_mut(target, kind != PatchOpKind::Remove)? else {
            return Ok(());
        };
        let key = canonical_key(map, &target.key, def);
        let mut items = match detach(map, &key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(ScimError::invalid_path(format!(
                    "{} is not multi-valued, so a [filter] cannot select its elements",
                    target.label
                )));
            }
        };
        let matched: Vec<bool> = items.iter().map(|el| matcher.matches(el, rt)).collect();
        let matches: Vec<usize> = (0..items.len())
            .filter(|&i| matched.get(i).copied().unwrap_or(false))
            .collect();
        let mut touched = matches.clone();
        let result = match value {
            None => {
                match sub {
                    None => {
                        let mut flags = matched.iter();
                        items.retain(|_| !flags.next().copied().unwrap_or(false));
                    }
                    Some(sub) => {
                        for &i in &matches {
                            if let Some(Value::Object(obj)) = items.get_mut(i) {
                                set_or_remove_sub(obj, sub, None);
                            }
                        }
                        items.retain(|i| i.as_object().is_none_or(|o| !o.is_empty()));
                    }
                }
                Ok(())
            }
            Some(v) if matches.is_empty() => match new_element(filter, def, &label) {
                Ok(mut obj) => {
                    let merged = match sub {
                        Some(sub) => {
                            set_or_remove_sub(&mut obj, sub, Some(&v));
                            Ok(())
                        }
                        None => merge_into(&mut obj, &v, def, &label),
                    };
                    merged.map(|()| {
                        touched = vec![items.len()];
                        items.push(Value::Object(obj));
                    })
                }
                Err(e) => Err(e),
            },
            Some(v) => {
                let mut result = Ok(());
                for &i in &matches {
                    if let Some(Value::Object(obj)) = items.get_mut(i) {
                        result = match sub {
                            Some(sub) => {
                                set_or_remove_sub(obj, sub, Some(&v));
                                Ok(())
                            }
                            None => merge_into(obj, &v, def, &label),
                        };
                        if result.is_err() {
                            break;
                        }
                    }
                }
                result
            }
        };
        if result.is_ok() {
            enforce_single_primary(&mut items, &touched, def);
        }
        store(map, key, (!items.is_empty()).then_some(Value::Array(items)));
        self.prune_container(target);
        result
    }

    /// The enterprise manager: stored as `{"value": id}` whatever form came
    /// in; an empty id clears it (Microsoft's SCIM_Update_Manager test).
    fn apply_manager(
        &mut self,
        kind: PatchOpKind,
        target: &Target,
        sub: Option<&SubTarget>,
        value: Option<&Value>,
    ) -> ScimResult<()> {
        // `manager.$ref` is an ordinary sub-attribute; `manager` and
        // `manager.value` set or clear the reference.
        if let Some(sub) = sub
            && !sub.name.eq_ignore_ascii_case("value")
        {
            return self.apply_sub(kind, target, sub, value);
        }
        let new = match (kind, value) {
            (PatchOpKind::Remove, _) | (_, None) => None,
            (_, Some(v)) if sub.is_some() => match v {
                Value::String(_) => coerce_manager(v.clone())?,
                _ => {
                    return Err(ScimError::invalid_value(
                        "manager.value must be the manager's id as a string",
                    ));
                }
            },
            (_, Some(v)) => coerce_manager(v.clone())?,
        };
        let Some(map) = self.container_mut(target, new.is_some())? else {
            return Ok(());
        };
        detach(map, &target.key);
        store(map, target.key.clone(), new);
        self.prune_container(target);
        Ok(())
    }
}

/// Tests array elements against a value filter. The filter is evaluated as
/// `attr[filter]` on a one-element document, so the evaluator resolves its
/// sub-attributes against the attribute's schema (case sensitivity, types).
struct ElementMatcher {
    filter: Filter,
    container: Option<String>,
    key: String,
}

impl ElementMatcher {
    fn new(target: &Target, filter: &Filter) -> Self {
        let container = target.container.as_ref().map(|c| c.key.clone());
        Self {
            filter: Filter::ValuePath {
                path: AttrPath {
                    urn: container.clone(),
                    name: target.key.clone(),
                    sub: None,
                },
                filter: Box::new(filter.clone()),
                sub: None,
            },
            container,
            key: target.key.clone(),
        }
    }

    fn matches(&self, element: &Value, rt: &ResourceType) -> bool {
        let mut attr = Map::new();
        attr.insert(self.key.clone(), Value::Array(vec![element.clone()]));
        let doc = match &self.container {
            None => attr,
            Some(urn) => {
                let mut doc = Map::new();
                doc.insert(urn.clone(), Value::Object(attr));
                doc
            }
        };
        self.filter.matches(&Value::Object(doc), rt)
    }
}

fn is_manager(target: &Target) -> bool {
    target
        .container
        .as_ref()
        .is_some_and(|c| c.key == ENTERPRISE_USER_SCHEMA)
        && target.def.is_some_and(|d| d.name == "manager")
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

/// add/replace on a multi-valued attribute: add appends the new elements that
/// are not already present; replace swaps the whole list. A single value is a
/// list of one.
fn set_multi(
    kind: PatchOpKind,
    existing: Option<Value>,
    value: &Value,
    def: Option<&'static AttributeDef>,
    label: &str,
) -> ScimResult<Option<Value>> {
    let incoming = match value {
        Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    if incoming.len() > MAX_VALUES_PER_REQUEST {
        return Err(too_many_values(
            label,
            incoming.len(),
            MAX_VALUES_PER_REQUEST,
        ));
    }
    let mut new_items = Vec::with_capacity(incoming.len());
    for item in incoming {
        if item.is_null() {
            continue;
        }
        new_items.push(coerce_single(item.clone(), def, label)?);
    }
    let (mut items, touched) = match (kind, existing) {
        (PatchOpKind::Add, Some(Value::Array(mut items))) => {
            let touched = append_distinct(&mut items, new_items);
            (items, touched)
        }
        _ => {
            let mut items = Vec::with_capacity(new_items.len());
            let touched = append_distinct(&mut items, new_items);
            (items, touched)
        }
    };
    enforce_single_primary(&mut items, &touched, def);
    Ok((!items.is_empty()).then_some(Value::Array(items)))
}

/// A remove of a whole attribute. For a multi-valued attribute, a non-empty
/// value array removes only the elements it lists (the form Entra uses for
/// `members`, applied consistently to every multi-valued attribute).
fn remove_listed_values(
    existing: Option<Value>,
    value: Option<&Value>,
    def: Option<&'static AttributeDef>,
    label: &str,
) -> ScimResult<Option<Value>> {
    let listed = match value {
        Some(Value::Array(items)) if !items.is_empty() => {
            if items.len() > MAX_VALUES_PER_REQUEST {
                return Err(too_many_values(label, items.len(), MAX_VALUES_PER_REQUEST));
            }
            items.clone()
        }
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => return Ok(None),
    };
    let Some(Value::Array(mut items)) = existing else {
        return Ok(None);
    };
    let listed = listed
        .into_iter()
        .map(|v| coerce_single(v, def, label))
        .collect::<ScimResult<Vec<_>>>()?;
    items.retain(|item| !listed.iter().any(|l| element_covers(l, item, def)));
    Ok((!items.is_empty()).then_some(Value::Array(items)))
}

/// True when every field of `listed` equals the same field of `item`
/// (strings ignoring case unless the sub-attribute is case-exact).
fn element_covers(listed: &Value, item: &Value, def: Option<&'static AttributeDef>) -> bool {
    match (listed, item) {
        (Value::Object(l), Value::Object(i)) => l.iter().all(|(k, lv)| {
            let case_exact = def.and_then(|d| d.sub(k)).is_some_and(|s| s.case_exact);
            get_ci(i, k).is_some_and(|iv| json_eq(lv, iv, case_exact))
        }),
        (l, i) => json_eq(l, i, def.is_some_and(|d| d.case_exact)),
    }
}

fn json_eq(a: &Value, b: &Value, case_exact: bool) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) if !case_exact => a.eq_ignore_ascii_case(b),
        _ => a == b,
    }
}

/// RFC 7644 §3.5.2: setting `primary` to true on some values sets it to
/// false on the others, so that at most one value is primary.
fn enforce_single_primary(
    items: &mut [Value],
    touched: &[usize],
    def: Option<&'static AttributeDef>,
) {
    if def.and_then(|d| d.sub("primary")).is_none() {
        return;
    }
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    if !touched
        .iter()
        .any(|&i| items.get(i).is_some_and(is_primary))
    {
        return;
    }
    let mut is_touched = vec![false; items.len()];
    for &i in touched {
        if let Some(t) = is_touched.get_mut(i) {
            *t = true;
        }
    }
    for (item, touched) in items.iter_mut().zip(is_touched) {
        if !touched
            && is_primary(item)
            && let Value::Object(obj) = item
        {
            obj.insert("primary".to_owned(), Value::Bool(false));
        }
    }
}

/// Appends to `items` each of `incoming` that equals no element of `items`
/// (nor one appended before it), in order, and returns the indices of the
/// appended elements. Expected linear time: `serde_json::Value`'s `Hash`
/// agrees with its `==` (objects hash their entries sorted by key, since a
/// `preserve_order` map compares equal whatever its key order; numbers hash
/// as `Number` compares), so candidates are found by hash, never by
/// comparing every pair. Elements already duplicated in `items` stay.
fn append_distinct(items: &mut Vec<Value>, incoming: Vec<Value>) -> Vec<usize> {
    let keep: Vec<bool> = {
        let mut seen: HashSet<&Value> = items.iter().collect();
        incoming.iter().map(|v| seen.insert(v)).collect()
    };
    let mut touched = Vec::new();
    for (item, keep) in incoming.into_iter().zip(keep) {
        if keep {
            touched.push(items.len());
            items.push(item);
        }
    }
    touched
}

/// Sets (or with `None` removes) `sub` in `obj`. `value` is already coerced.
fn set_or_remove_sub(obj: &mut Map<String, Value>, sub: &SubTarget, value: Option<&Value>) {
    let key = sub.key_in(obj);
    detach(obj, &key);
    store(obj, key, value.cloned());
}

/// Merges the members of `value` (an object) into `obj`; `null` members
/// unassign. Sub-attributes get their schema spelling and types.
fn merge_into(
    obj: &mut Map<String, Value>,
    value: &Value,
    def: Option<&'static AttributeDef>,
    label: &str,
) -> ScimResult<()> {
    let Value::Object(fields) = value else {
        return Err(ScimError::invalid_value(format!(
            "{label} needs an object of sub-attributes"
        )));
    };
    if fields.len() <= SMALL_OBJECT {
        for (k, v) in fields {
            let sub_def = def.and_then(|d| d.sub(k));
            let key = canonical_key(obj, k, sub_def);
            detach(obj, &key);
            let v = match v {
                Value::Null => None,
                v => Some(coerce_single(v.clone(), sub_def, &format!("{label}.{k}"))?),
            };
            store(obj, key, v);
        }
        return Ok(());
    }
    // As above, in linear time whatever the number of fields.
    let mut merged = CiObject::from_map(std::mem::take(obj));
    let result = fields.iter().try_for_each(|(k, v)| {
        let sub_def = def.and_then(|d| d.sub(k));
        let key = match sub_def {
            Some(d) => d.name.to_owned(),
            None => merged.find_key(k).unwrap_or(k).to_owned(),
        };
        merged.detach(&key);
        let v = match v {
            Value::Null => None,
            v => Some(coerce_single(v.clone(), sub_def, &format!("{label}.{k}"))?),
        };
        merged.store(key, v);
        Ok(())
    });
    *obj = merged.into_map();
    result
}

/// Objects of at most this many fields are rewritten in place, scanning for
/// other spellings of each name (cheapest for the few fields clients send);
/// larger ones through a [`CiObject`], so that no object costs quadratic time.
const SMALL_OBJECT: usize = 16;

/// An object being rewritten key by key with the case-insensitive rules of
/// [`find_key`], [`detach`], [`take_ci`] and [`store`], in expected linear
/// time: keys are indexed by their ASCII-lowercased form, and removed entries
/// leave holes instead of shifting the rest, so a request object with many
/// keys (or many spellings of one) costs no more than its size.
#[derive(Default)]
struct CiObject {
    /// Entries in order; `None` where one was removed.
    slots: Vec<Option<(String, Value)>>,
    /// Lowercased key → slots holding a spelling of it, in order.
    index: HashMap<String, Vec<usize>>,
}

impl CiObject {
    fn from_map(map: Map<String, Value>) -> Self {
        let mut out = Self::default();
        for (k, v) in map {
            out.push(k, v);
        }
        out
    }

    fn push(&mut self, key: String, value: Value) {
        self.index
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(self.slots.len());
        self.slots.push(Some((key, value)));
    }

    fn live(&self, lower: &str) -> impl Iterator<Item = (usize, &String)> {
        self.index
            .get(lower)
            .into_iter()
            .flatten()
            .filter_map(|&i| match self.slots.get(i) {
                Some(Some((k, _))) => Some((i, k)),
                _ => None,
            })
    }

    /// The first key equal to `name` ignoring ASCII case.
    fn find_key(&self, name: &str) -> Option<&str> {
        self.live(&name.to_ascii_lowercase())
            .next()
            .map(|(_, k)| k.as_str())
    }

    /// Like [`detach`]: removes the other spellings of `key` and takes the
    /// value of `key` itself, leaving its slot (for [`Self::store`]).
    fn detach(&mut self, key: &str) -> Option<Value> {
        let lower = key.to_ascii_lowercase();
        let spellings: Vec<usize> = self.live(&lower).map(|(i, _)| i).collect();
        let mut found = None;
        let mut exact = None;
        for i in spellings {
            let Some(slot) = self.slots.get_mut(i) else {
                continue;
            };
            if slot.as_ref().is_some_and(|(k, _)| k == key) {
                exact = Some(i);
            } else if let Some((_, v)) = slot.take()
                && found.is_none()
            {
                // Removed either way; the first spelling's value is kept.
                found = Some(v);
            }
        }
        self.index.insert(lower, exact.into_iter().collect());
        match exact.and_then(|i| self.slots.get_mut(i)) {
            Some(Some((_, v))) => Some(std::mem::take(v)),
            _ => found,
        }
    }

    /// Like [`take_ci`]: removes every spelling of `name`.
    fn take_ci(&mut self, name: &str) -> Option<Value> {
        let lower = name.to_ascii_lowercase();
        let mut found = None;
        for i in self.index.remove(&lower).unwrap_or_default() {
            if let Some((k, v)) = self.slots.get_mut(i).and_then(Option::take)
                && (k == name || found.is_none())
            {
                found = Some(v);
            }
        }
        found
    }

    /// Like [`store`] after [`Self::detach`]: `Some` writes `key` in its
    /// existing slot or at the end, `None` removes it.
    fn store(&mut self, key: String, value: Option<Value>) {
        let lower = key.to_ascii_lowercase();
        let exact = self.live(&lower).find(|(_, k)| **k == key).map(|(i, _)| i);
        match (exact, value) {
            (Some(i), Some(v)) => {
                if let Some(Some((_, slot))) = self.slots.get_mut(i) {
                    *slot = v;
                }
            }
            (Some(i), None) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = None;
                }
            }
            (None, Some(v)) => self.push(key, v),
            (None, None) => {}
        }
    }

    fn into_map(self) -> Map<String, Value> {
        self.slots.into_iter().flatten().collect()
    }
}

/// The element a filtered add/replace creates when nothing matches: the
/// filter's `attr eq literal` terms as fields (`type eq "work"` →
/// `{"type": "work"}`). Other filters cannot describe a new element, so the
/// RFC's `noTarget` applies.
fn new_element(
    filter: &Filter,
    def: Option<&'static AttributeDef>,
    label: &str,
) -> ScimResult<Map<String, Value>> {
    let mut terms = Vec::new();
    if !eq_terms(filter, &mut terms) {
        return Err(ScimError::no_target(format!(
            "no element of {label} matches the filter, and one can be created only from a filter of \"eq\" comparisons joined by \"and\""
        )));
    }
    let mut obj = Map::new();
    for (name, v) in terms {
        if v.is_null() {
            continue;
        }
        let sub_def = def.and_then(|d| d.sub(&name));
        let key = canonical_key(&obj, &name, sub_def);
        let v = coerce_single(v, sub_def, &format!("{label}.{name}"))?;
        obj.insert(key, v);
    }
    Ok(obj)
}

fn eq_terms(filter: &Filter, out: &mut Vec<(String, Value)>) -> bool {
    match filter {
        Filter::Attr {
            path:
                AttrPath {
                    urn: None,
                    name,
                    sub: None,
                },
            test: AttrTest::Compare(CompareOp::Eq, v),
        } => {
            out.push((name.clone(), comp_to_json(v)));
            true
        }
        Filter::And(a, b) => eq_terms(a, out) && eq_terms(b, out),
        _ => false,
    }
}

fn comp_to_json(v: &CompValue) -> Value {
    match v {
        CompValue::Str(s) => Value::String(s.clone()),
        CompValue::Num(n) => Value::Number(n.clone()),
        CompValue::Bool(b) => Value::Bool(*b),
        CompValue::Null => Value::Null,
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

/// Normalises one (non-list) value for `def`: boolean strings become
/// booleans (Entra sends `"True"`/`"False"`), sub-attribute keys get their
/// schema spelling, `null` sub-attributes are dropped. Unknown attributes are
/// kept as sent; full type checking is the caller's re-validation.
fn coerce_single(
    value: Value,
    def: Option<&'static AttributeDef>,
    label: &str,
) -> ScimResult<Value> {
    let Some(def) = def else {
        return Ok(value);
    };
    match (def.ty, value) {
        (AttrType::Boolean, Value::String(s)) => {
            parse_bool(s.trim()).map(Value::Bool).ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "{label} must be a boolean (true or false), not \"{s}\""
                ))
            })
        }
        (AttrType::Complex, Value::Object(fields)) if fields.len() <= SMALL_OBJECT => {
            let mut out = Map::new();
            for (k, v) in fields {
                if v.is_null() {
                    continue;
                }
                let sub_def = def.sub(&k);
                let key = canonical_key(&out, &k, sub_def);
                let v = coerce_single(v, sub_def, &format!("{label}.{k}"))?;
                take_ci(&mut out, &key);
                out.insert(key, v);
            }
            Ok(Value::Object(out))
        }
        (AttrType::Complex, Value::Object(fields)) => {
            // As above, in linear time: a later spelling of a name replaces
            // an earlier one (moving to the end), keeping the earlier
            // spelling of an unknown name.
            let mut out = CiObject::default();
            for (k, v) in fields {
                if v.is_null() {
                    continue;
                }
                let sub_def = def.sub(&k);
                let v = coerce_single(v, sub_def, &format!("{label}.{k}"))?;
                let key = match sub_def {
                    Some(d) => d.name.to_owned(),
                    None => out.find_key(&k).map_or(k, str::to_owned),
                };
                out.take_ci(&key);
                out.store(key, Some(v));
            }
            Ok(Value::Object(out.into_map()))
        }
        (_, v) => Ok(v),
    }
}

/// The key to write `name` under in `map`: the schema's spelling when known,
/// else the spelling of an existing key that differs only in case, else
/// `name` itself. Never creates `username` beside `userName`.
fn canonical_key(map: &Map<String, Value>, name: &str, def: Option<&AttributeDef>) -> String {
    match def {
        Some(def) => def.name.to_owned(),
        None => find_key(map, name).unwrap_or_else(|| name.to_owned()),
    }
}

fn is_urn(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

fn get_ci<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Removes every key equal to `name` ignoring case; returns the value of the
/// exact spelling if present, else of the first variant.
fn take_ci(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let keys: Vec<String> = map
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    let mut found = None;
    for k in keys {
        let v = map.shift_remove(&k);
        if k == name || found.is_none() {
            found = v;
        }
    }
    found
}

/// Takes the value of `key` out of `map`, leaving its slot in place so that
/// writing it back with [`store`] keeps the attribute's position. Keys that
/// differ from `key` only in case are removed (their value is returned when
/// `key` itself is absent).
fn detach(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let variants: Vec<String> = map
        .keys()
        .filter(|k| *k != key && k.eq_ignore_ascii_case(key))
        .cloned()
        .collect();
    let mut found = None;
    for k in variants {
        let v = map.shift_remove(&k);
        if found.is_none() {
            found = v;
        }
    }
    match map.get_mut(key) {
        Some(slot) => Some(std::mem::take(slot)),
        None => found,
    }
}

/// Writes back what [`detach`] took: `None` removes the key.
fn store(map: &mut Map<String, Value>, key: String, value: Option<Value>) {
    match value {
        Some(v) => {
            map.insert(key, v);
        }
        None => {
            map.shift_remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ScimType;
    use crate::schema::{GROUP_RESOURCE, USER_RESOURCE};

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    fn request(ops: Value) -> PatchRequest {
        let mut body = json!({ "schemas": [PATCH_OP_SCHEMA] });
        body["Operations"] = ops;
        PatchRequest::from_json(body)
            .unwrap_or_else(|e| panic!("request should parse: {}", e.detail))
    }

    fn parse_error(body: Value) -> ScimError {
        PatchRequest::from_json(body).expect_err("request should be rejected")
    }

    /// A user as stored: canonical names, no id/meta/schemas.
    fn alice() -> Map<String, Value> {
        obj(json!({
            "userName": "alice@contoso.com",
            "externalId": "alice",
            "name": {"givenName": "Alice", "familyName": "Smith"},
            "displayName": "Alice Smith",
            "nickName": "Al",
            "active": true,
            "emails": [{"value": "alice@contoso.com", "type": "work", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"}
        }))
    }

    fn bob() -> Map<String, Value> {
        obj(json!({ "userName": "bob@contoso.com", "active": true }))
    }

    fn patch(
        rt: &ResourceType,
        doc: Map<String, Value>,
        ops: Value,
    ) -> (Map<String, Value>, PatchOutcome) {
        let mut doc = doc;
        let outcome = apply(&mut doc, &request(ops), rt)
            .unwrap_or_else(|e| panic!("patch should apply: {}", e.detail));
        (doc, outcome)
    }

    fn patch_user(doc: Map<String, Value>, ops: Value) -> Map<String, Value> {
        patch(&USER_RESOURCE, doc, ops).0
    }

    /// Applies a request that must fail, and checks the document is intact.
    fn patch_error(rt: &ResourceType, doc: Map<String, Value>, ops: Value) -> ScimError {
        let original = doc.clone();
        let mut patched = doc;
        let err = apply(&mut patched, &request(ops), rt).expect_err("patch should fail");
        assert_eq!(
            patched, original,
            "a failed patch must leave the document unchanged"
        );
        err
    }

    fn members(ops: Value) -> Vec<MemberChange> {
        let doc = obj(json!({"displayName": "Sales"}));
        let (after, outcome) = patch(&GROUP_RESOURCE, doc.clone(), ops);
        assert_eq!(after, doc, "members are never written into the document");
        outcome.member_changes
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    // --- Request parsing ---------------------------------------------------

    #[test]
    fn op_names_are_accepted_in_any_case() {
        // Arrange
        let spellings = [
            "Add", "ADD", "add", "Replace", "replace", "REMOVE", "Remove",
        ];
        // Act
        let kinds: Vec<PatchOpKind> = spellings
            .iter()
            .map(|s| PatchOpKind::parse(s).unwrap())
            .collect();
        // Assert
        use PatchOpKind::{Add, Remove, Replace};
        assert_eq!(kinds, [Add, Add, Add, Replace, Replace, Remove, Remove]);
    }

    #[test]
    fn an_unknown_op_is_invalid_syntax_naming_the_op() {
        // Arrange
        let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "move", "path": "userName", "value": "x"}]});
        // Act
        let err = parse_error(body);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax));
        assert!(err.detail.contains("\"move\""), "{}", err.detail);
    }

    #[test]
    fn a_body_without_the_patch_op_schema_is_invalid_syntax() {
        // Arrange
        let missing = json!({"Operations": [{"op": "add", "path": "nickName", "value": "x"}]});
        let wrong =
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": []});
        // Act
        let errors = [
            parse_error(missing),
            parse_error(wrong),
            parse_error(json!([1])),
        ];
        // Assert
        for err in errors {
            assert_eq!(
                err.scim_type,
                Some(ScimType::InvalidSyntax),
                "{}",
                err.detail
            );
        }
    }

    #[test]
    fn schemas_and_operations_keys_are_matched_ignoring_case() {
        // Arrange
        let body = json!({
            "Schemas": [PATCH_OP_SCHEMA.to_ascii_uppercase()],
            "operations": [{"OP": "Add", "Path": "nickName", "Value": "Babs"}]
        });
        // Act
        let req = PatchRequest::from_json(body).unwrap();
        // Assert
        assert_eq!(req.operations.len(), 1);
        assert_eq!(req.operations[0].op, PatchOpKind::Add);
        assert_eq!(req.operations[0].value, Some(json!("Babs")));
    }

    #[test]
    fn an_empty_or_missing_operations_array_is_invalid_syntax() {
        // Arrange
        let empty = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": []});
        let missing = json!({"schemas": [PATCH_OP_SCHEMA]});
        // Act / Assert
        for body in [empty, missing] {
            assert_eq!(parse_error(body).scim_type, Some(ScimType::InvalidSyntax));
        }
    }

    #[test]
    fn more_than_the_maximum_number_of_operations_is_rejected() {
        // Arrange
        let op = json!({"op": "add", "path": "nickName", "value": "x"});
        let body =
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": vec![op; MAX_OPERATIONS + 1]});
        // Act
        let err = parse_error(body);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax));
        assert!(err.detail.contains("1000"), "{}", err.detail);
    }

    #[test]
    fn remove_without_a_path_is_no_target() {
        // Arrange
        let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "value": {"nickName": "x"}}]});
        // Act
        let err = parse_error(body);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::NoTarget));
    }

    #[test]
    fn add_or_replace_without_a_value_is_invalid_value() {
        for op in ["add", "Replace"] {
            // Arrange
            let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": op, "path": "userName"}]});
            // Act
            let err = parse_error(body);
            // Assert
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{op}");
        }
    }

    #[test]
    fn a_malformed_path_is_invalid_path() {
        // Arrange
        let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "emails[type eq", "value": "x"}]});
        // Act
        let err = parse_error(body);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
        assert!(err.detail.contains("emails[type eq"), "{}", err.detail);
    }

    #[test]
    fn an_explicit_null_value_is_kept_apart_from_a_missing_value() {
        // Arrange / Act
        let req = request(
            json!([{"op": "replace", "path": "nickName", "value": null}, {"op": "remove", "path": "title"}]),
        );
        // Assert
        assert_eq!(req.operations[0].value, Some(Value::Null));
        assert_eq!(req.operations[1].value, None);
    }

    // --- Dialect A: one operation per attribute, with a path ----------------

    #[test]
    fn default_dialect_replaces_the_work_email_and_family_name() {
        // Arrange: the request from entra.md §2.3 A.
        let ops = json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
        ]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(
            doc["emails"],
            json!([{"value": "updatedEmail@microsoft.com", "type": "work", "primary": true}])
        );
        assert_eq!(
            doc["name"],
            json!({"givenName": "Alice", "familyName": "updatedFamilyName"})
        );
    }

    #[test]
    fn capitalised_add_on_a_single_valued_attribute_sets_it() {
        // Arrange
        let ops = json!([{"op": "Add", "path": "nickName", "value": "Babs"}, {"op": "Add", "path": "title", "value": "CEO"}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc["nickName"], "Babs");
        assert_eq!(doc["title"], "CEO");
    }

    #[test]
    fn every_simple_top_level_path_entra_sends_is_set() {
        // Arrange
        let ops = json!([
            {"op": "Replace", "path": "userName", "value": "a2@contoso.com"},
            {"op": "Replace", "path": "displayName", "value": "A 2"},
            {"op": "Replace", "path": "externalId", "value": "a2"},
            {"op": "Add", "path": "preferredLanguage", "value": "en-US"},
            {"op": "Replace", "path": "name.givenName", "value": "Al"},
            {"op": "Add", "path": "name.formatted", "value": "Al Smith"}
        ]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc["userName"], "a2@contoso.com");
        assert_eq!(doc["displayName"], "A 2");
        assert_eq!(doc["externalId"], "a2");
        assert_eq!(doc["preferredLanguage"], "en-US");
        assert_eq!(
            doc["name"],
            json!({"givenName": "Al", "familyName": "Smith", "formatted": "Al Smith"})
        );
    }

    #[test]
    fn active_boolean_strings_are_stored_as_booleans_in_any_case() {
        for (sent, stored) in [
            ("False", false),
            ("True", true),
            ("false", false),
            ("TRUE", true),
        ] {
            // Arrange
            let ops = json!([{"op": "Replace", "path": "active", "value": sent}]);
            // Act
            let doc = patch_user(alice(), ops);
            // Assert
            assert_eq!(doc["active"], json!(stored), "{sent}");
        }
    }

    #[test]
    fn active_as_a_json_boolean_is_accepted() {
        // Arrange: the aadOptscim062020 disable.
        let ops = json!([{"op": "replace", "path": "active", "value": false}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc["active"], false);
    }

    #[test]
    fn a_non_boolean_string_for_active_is_invalid_value() {
        // Arrange
        let ops = json!([{"op": "replace", "path": "active", "value": "nope"}]);
        // Act
        let err = patch_error(&USER_RESOURCE, alice(), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        assert!(err.detail.contains("active"), "{}", err.detail);
    }

    #[test]
    fn add_to_a_work_email_filter_creates_the_element_when_the_user_has_no_email() {
        // Arrange
        let ops = json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "bob@contoso.com"}]);
        // Act
        let doc = patch_user(bob(), ops);
        // Assert
        assert_eq!(
            doc["emails"],
            json!([{"type": "work", "value": "bob@contoso.com"}])
        );
    }

    #[test]
    fn replace_of_a_mobile_phone_creates_it_beside_the_existing_work_phone() {
        // Arrange
        let mut user = bob();
        user.insert(
            "phoneNumbers".into(),
            json!([{"type": "work", "value": "+1 555 0100"}]),
        );
        let ops = json!([
            {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0199"},
            {"op": "Replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 555 0101"}
        ]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert_eq!(
            doc["phoneNumbers"],
            json!([{"type": "work", "value": "+1 555 0101"}, {"type": "mobile", "value": "+1 555 0199"}])
        );
    }

    #[test]
    fn replace_of_a_work_address_sub_attribute_sets_only_that_sub_attribute() {
        // Arrange
        let mut user = bob();
        user.insert(
            "addresses".into(),
            json!([{"type": "work", "locality": "Paris", "country": "FR"}, {"type": "home", "locality": "Lyon"}]),
        );
        let ops = json!([
            {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Nice"},
            {"op": "Add", "path": "addresses[type eq \"work\"].postalCode", "value": "06000"}
        ]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert_eq!(
            doc["addresses"],
            json!([{"type": "work", "locality": "Nice", "country": "FR", "postalCode": "06000"}, {"type": "home", "locality": "Lyon"}])
        );
    }

    #[test]
    fn a_value_filter_matches_case_insensitively_as_the_schema_says() {
        // Arrange
        let mut user = bob();
        user.insert(
            "emails".into(),
            json!([{"type": "Work", "value": "old@contoso.com"}]),
        );
        let ops = json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"}]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert_eq!(
            doc["emails"],
            json!([{"type": "Work", "value": "new@contoso.com"}])
        );
    }

    #[test]
    fn an_enterprise_urn_path_sets_the_attribute_creating_the_extension_object() {
        // Arrange
        let ops = json!([
            {"op": "Add", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "42"},
            {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "R&D"}
        ]);
        // Act
        let doc = patch_user(bob(), ops);
        // Assert
        assert_eq!(
            doc[ENTERPRISE],
            json!({"employeeNumber": "42", "department": "R&D"})
        );
    }

    #[test]
    fn a_custom_extension_urn_path_creates_the_custom_extension_object() {
        // Arrange
        let ops = json!([{"op": "Add", "path": format!("{CUSTOM}:costCode"), "value": "CC-7"}]);
        // Act
        let doc = patch_user(bob(), ops);
        // Assert
        assert_eq!(doc[CUSTOM], json!({"costCode": "CC-7"}));
    }

    #[test]
    fn a_custom_extension_attribute_is_written_into_the_existing_object_whatever_the_urn_case() {
        // Arrange
        let mut user = bob();
        user.insert(CUSTOM.into(), json!({"costCode": "CC-1", "site": "HQ"}));
        let ops = json!([{"op": "replace", "path": format!("{}:COSTCODE", CUSTOM.to_ascii_lowercase()), "value": "CC-2"}]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert_eq!(doc[CUSTOM], json!({"costCode": "CC-2", "site": "HQ"}));
        assert_eq!(doc.len(), 3);
    }

    #[test]
    fn a_request_mixing_replace_and_add_applies_both() {
        // Arrange: the shape reported in laravel-scim-server#34.
        let ops = json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "a@contoso.com"},
            {"op": "Replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
            {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "Ops"}
        ]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc["emails"][0]["value"], "a@contoso.com");
        assert_eq!(
            doc["addresses"],
            json!([{"type": "work", "streetAddress": "1 Main St"}])
        );
        assert_eq!(doc[ENTERPRISE]["department"], "Ops");
    }

    // --- Dialect B: path-less operations with flattened keys ----------------

    #[test]
    fn path_less_replace_with_dotted_and_urn_keys_sets_each_attribute() {
        // Arrange: the request from entra.md §2.3 B.
        let ops = json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "TestMhvaes@test.microsoft.com"},
            {"op": "replace", "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                "name.familyName": "Unua",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
            }}
        ]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc["emails"][0]["value"], "TestMhvaes@test.microsoft.com");
        assert_eq!(doc["displayName"], "Bjfe");
        assert_eq!(
            doc["name"],
            json!({"givenName": "Kkom", "familyName": "Unua"})
        );
        assert_eq!(
            doc[ENTERPRISE],
            json!({"department": "Sales", "employeeNumber": "Aklq"})
        );
        assert!(!doc.contains_key("name.givenName"));
    }

    #[test]
    fn path_less_add_with_dotted_keys_merges_into_an_absent_name() {
        // Arrange: scimitar#123 shows op "add" path-less with dotted keys.
        let ops = json!([{"op": "add", "value": {"name.givenName": "Bob", "name.familyName": "Jones", "active": "False"}}]);
        // Act
        let doc = patch_user(bob(), ops);
        // Assert
        assert_eq!(
            doc["name"],
            json!({"givenName": "Bob", "familyName": "Jones"})
        );
        assert_eq!(doc["active"], false);
    }

    #[test]
    fn path_less_value_with_a_nested_extension_object_merges_attribute_by_attribute() {
        // Arrange
        let ops = json!([{"op": "replace", "value": {
            ENTERPRISE: {"employeeNumber": "7", "manager": "mgr-1"},
            CUSTOM: {"costCode": "CC-9"}
        }}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(
            doc[ENTERPRISE],
            json!({"department": "Sales", "employeeNumber": "7", "manager": {"value": "mgr-1"}})
        );
        assert_eq!(doc[CUSTOM], json!({"costCode": "CC-9"}));
    }

    #[test]
    fn a_path_naming_the_whole_extension_merges_or_removes_it() {
        // Arrange
        let add = json!([{"op": "add", "path": ENTERPRISE, "value": {"costCenter": "C1"}}]);
        let remove = json!([{"op": "remove", "path": ENTERPRISE}]);
        // Act
        let added = patch_user(alice(), add);
        let removed = patch_user(alice(), remove);
        // Assert
        assert_eq!(
            added[ENTERPRISE],
            json!({"department": "Sales", "costCenter": "C1"})
        );
        assert!(!removed.contains_key(ENTERPRISE));
    }

    #[test]
    fn path_less_add_or_replace_needs_an_object_value() {
        for value in [json!("x"), json!(null), json!([{"displayName": "x"}])] {
            // Arrange
            let ops = json!([{"op": "replace", "value": value}]);
            // Act
            let err = patch_error(&USER_RESOURCE, alice(), ops);
            // Assert
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{value}");
        }
    }

    #[test]
    fn path_less_update_of_user_name_renames_the_user() {
        // Arrange: the validator's "Update User userName".
        let ops = json!([{"op": "replace", "value": {"userName": "renamed@contoso.com"}}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc["userName"], "renamed@contoso.com");
    }

    #[test]
    fn path_less_keys_get_schema_casing_and_unknown_keys_keep_the_existing_spelling() {
        // Arrange
        let mut user = bob();
        user.insert("favouriteColour".into(), json!("blue"));
        let ops = json!([{"op": "replace", "value": {"DISPLAYNAME": "Bob", "FavouriteColour": "red", "shoeSize": "44"}}]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert_eq!(doc["displayName"], "Bob");
        assert_eq!(doc["favouriteColour"], "red");
        assert_eq!(doc["shoeSize"], "44");
        assert!(!doc.contains_key("DISPLAYNAME") && !doc.contains_key("FavouriteColour"));
    }

    #[test]
    fn a_path_less_key_that_is_not_a_valid_path_is_invalid_path() {
        // Arrange
        let ops = json!([{"op": "replace", "value": {"name..givenName": "x"}}]);
        // Act
        let err = patch_error(&USER_RESOURCE, alice(), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
        assert!(err.detail.contains("name..givenName"), "{}", err.detail);
    }

    #[test]
    fn path_less_nulls_unassign_attributes() {
        // Arrange
        let ops = json!([{"op": "replace", "value": {"nickName": null, "name.givenName": null}}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert!(!doc.contains_key("nickName"));
        assert_eq!(doc["name"], json!({"familyName": "Smith"}));
    }

    // --- Manager (entra.md §2.4, SCIM_Update_Manager) -----------------------

    fn manager_path() -> String {
        format!("{ENTERPRISE}:manager")
    }

    #[test]
    fn manager_add_with_a_bare_id_is_stored_as_a_value_object() {
        // Arrange
        let ops = json!([{"op": "Add", "path": manager_path(), "value": "271"}]);
        // Act
        let doc = patch_user(bob(), ops);
        // Assert
        assert_eq!(doc[ENTERPRISE], json!({"manager": {"value": "271"}}));
    }

    #[test]
    fn manager_replace_with_another_id_changes_it() {
        // Arrange
        let mut user = alice();
        user.insert(
            ENTERPRISE.into(),
            json!({"department": "Sales", "manager": {"value": "m1"}}),
        );
        let ops = json!([{"op": "replace", "path": manager_path(), "value": "m2"}]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert_eq!(
            doc[ENTERPRISE],
            json!({"department": "Sales", "manager": {"value": "m2"}})
        );
    }

    #[test]
    fn manager_replace_with_an_empty_string_removes_it_and_the_emptied_extension() {
        // Arrange
        let mut user = bob();
        user.insert(ENTERPRISE.into(), json!({"manager": {"value": "m1"}}));
        let ops = json!([{"op": "replace", "path": manager_path(), "value": ""}]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert!(!doc.contains_key(ENTERPRISE), "{doc:?}");
    }

    #[test]
    fn manager_as_an_object_is_stored_and_an_empty_object_value_removes_it() {
        // Arrange: the validator's shapes.
        let set =
            json!([{"op": "add", "path": manager_path(), "value": {"value": "AXTKDLNRKMKT"}}]);
        let clear = json!([{"op": "replace", "path": manager_path(), "value": {"value": ""}}]);
        // Act
        let with_manager = patch_user(alice(), set);
        let without = patch_user(with_manager.clone(), clear);
        // Assert
        assert_eq!(
            with_manager[ENTERPRISE]["manager"],
            json!({"value": "AXTKDLNRKMKT"})
        );
        assert_eq!(without[ENTERPRISE], json!({"department": "Sales"}));
    }

    #[test]
    fn the_legacy_manager_array_on_an_unqualified_path_uses_the_first_value() {
        // Arrange: the older tutorial's "Example 5".
        let ops = json!([{"op": "Add", "path": "manager", "value": [{"$ref": "https://x/Users/26118915", "value": "26118915"}]}]);
        // Act
        let doc = patch_user(bob(), ops);
        // Assert
        assert_eq!(doc[ENTERPRISE]["manager"]["value"], "26118915");
        assert!(!doc.contains_key("manager"));
    }

    #[test]
    fn manager_null_or_remove_clears_it_and_keeps_other_enterprise_attributes() {
        // Arrange
        let mut user = alice();
        user.insert(
            ENTERPRISE.into(),
            json!({"department": "Sales", "manager": {"value": "m1"}}),
        );
        let null = json!([{"op": "replace", "path": manager_path(), "value": null}]);
        let remove = json!([{"op": "remove", "path": manager_path()}]);
        // Act
        let after_null = patch_user(user.clone(), null);
        let after_remove = patch_user(user, remove);
        // Assert
        assert_eq!(after_null[ENTERPRISE], json!({"department": "Sales"}));
        assert_eq!(after_remove[ENTERPRISE], json!({"department": "Sales"}));
    }

    #[test]
    fn the_manager_value_sub_path_sets_and_clears_the_manager() {
        // Arrange
        let set =
            json!([{"op": "add", "path": format!("{ENTERPRISE}:manager.value"), "value": "m3"}]);
        let clear =
            json!([{"op": "replace", "path": format!("{ENTERPRISE}:manager.value"), "value": ""}]);
        // Act
        let with_manager = patch_user(bob(), set);
        let without = patch_user(with_manager.clone(), clear);
        // Assert
        assert_eq!(
            with_manager[ENTERPRISE],
            json!({"manager": {"value": "m3"}})
        );
        assert!(!without.contains_key(ENTERPRISE));
    }

    #[test]
    fn a_manager_that_is_not_an_id_is_invalid_value() {
        // Arrange
        let ops = json!([{"op": "add", "path": manager_path(), "value": 42}]);
        // Act
        let err = patch_error(&USER_RESOURCE, bob(), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    }

    // --- Group members (entra.md §2.8) --------------------------------------

    #[test]
    fn add_members_with_one_member_becomes_an_add_change() {
        // Arrange
        let ops = json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}]);
        // Act
        let changes = members(ops);
        // Assert
        assert_eq!(changes, [MemberChange::Add(ids(&["f648f8d5ea4e4cd38e9c"]))]);
    }

    #[test]
    fn add_members_with_many_members_keeps_their_order_without_duplicates() {
        // Arrange
        let ops = json!([{"op": "add", "path": "members", "value": [
            {"value": "u1", "display": "U 1", "type": "User"}, {"value": "u2"}, {"value": "u1"}, {"value": "u3"}
        ]}]);
        // Act
        let changes = members(ops);
        // Assert
        assert_eq!(changes, [MemberChange::Add(ids(&["u1", "u2", "u3"]))]);
    }

    #[test]
    fn remove_members_with_a_value_array_removes_only_the_listed_members() {
        // Arrange: the default dialect, which must never clear the group.
        let ops = json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u1091"}, {"value": "u7"}]}]);
        // Act
        let changes = members(ops);
        // Assert
        assert_eq!(changes, [MemberChange::Remove(ids(&["u1091", "u7"]))]);
    }

    #[test]
    fn remove_members_with_a_value_filter_path_removes_that_member() {
        // Arrange: the aadOptscim062020 dialect and the validator.
        let ops = json!([{"op": "remove", "path": "members[value eq \"7f4bc1a3-285e-48ae-8202-5accb43efb0e\"]"}]);
        // Act
        let changes = members(ops);
        // Assert
        assert_eq!(
            changes,
            [MemberChange::Remove(ids(&[
                "7f4bc1a3-285e-48ae-8202-5accb43efb0e"
            ]))]
        );
    }

    #[test]
    fn remove_members_with_or_ed_value_filters_removes_each_member() {
        // Arrange
        let ops = json!([{"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"}]);
        // Act
        let changes = members(ops);
        // Assert
        assert_eq!(changes, [MemberChange::Remove(ids(&["a", "b"]))]);
    }

    #[test]
    fn remove_members_with_another_filter_is_rejected() {
        // Arrange
        let ops = json!([{"op": "remove", "path": "members[display eq \"Bob\"]"}]);
        // Act
        let err = patch_error(&GROUP_RESOURCE, obj(json!({"displayName": "G"})), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
    }

    #[test]
    fn remove_members_without_ids_removes_every_member() {
        for op in [
            json!({"op": "remove", "path": "members"}),
            json!({"op": "remove", "path": "members", "value": null}),
            json!({"op": "Remove", "path": "members", "value": []}),
        ] {
            // Arrange
            let ops = json!([op]);
            // Act
            let changes = members(ops);
            // Assert
            assert_eq!(changes, [MemberChange::RemoveAll], "{op}");
        }
    }

    #[test]
    fn replace_members_becomes_a_replace_change() {
        // Arrange: the validator adds a member with "replace".
        let ops = json!([{"op": "replace", "path": "members", "value": [{"value": "u1"}]}]);
        // Act
        let changes = members(ops);
        // Assert
        assert_eq!(changes, [MemberChange::Replace(ids(&["u1"]))]);
    }

    #[test]
    fn add_then_remove_of_a_member_in_one_request_keeps_both_changes_in_order() {
        // Arrange: the validator's "Multiple Ops on same attribute".
        let ops = json!([
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            {"op": "remove", "path": "members[value eq \"u1\"]"}
        ]);
        // Act
        let changes = members(ops);
        // Assert
        assert_eq!(
            changes,
            [
                MemberChange::Add(ids(&["u1"])),
                MemberChange::Remove(ids(&["u1"]))
            ]
        );
    }

    #[test]
    fn path_less_add_or_replace_with_a_members_key_changes_members_and_other_attributes() {
        // Arrange
        let doc = obj(json!({"displayName": "Sales"}));
        let ops = json!([
            {"op": "add", "value": {"members": [{"value": "u1"}]}},
            {"op": "replace", "value": {"displayName": "Sales EU", "members": [{"value": "u2"}]}}
        ]);
        // Act
        let (after, outcome) = patch(&GROUP_RESOURCE, doc, ops);
        // Assert
        assert_eq!(after, obj(json!({"displayName": "Sales EU"})));
        assert_eq!(
            outcome.member_changes,
            [
                MemberChange::Add(ids(&["u1"])),
                MemberChange::Replace(ids(&["u2"]))
            ]
        );
        assert!(outcome.changed);
    }

    #[test]
    fn a_member_without_a_string_value_is_invalid_value() {
        for bad in [
            json!([{"display": "Bob"}]),
            json!([{"value": 7}]),
            json!([{"value": ""}]),
            json!(true),
        ] {
            // Arrange
            let ops = json!([{"op": "add", "path": "members", "value": bad}]);
            // Act
            let err = patch_error(&GROUP_RESOURCE, obj(json!({"displayName": "G"})), ops);
            // Assert
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{bad}");
        }
    }

    #[test]
    fn member_changes_alone_mark_the_outcome_changed() {
        // Arrange
        let ops = json!([{"op": "remove", "path": "members[value eq \"gone\"]"}]);
        // Act
        let (_, outcome) = patch(&GROUP_RESOURCE, obj(json!({"displayName": "G"})), ops);
        // Assert
        assert!(outcome.changed);
    }

    #[test]
    fn group_display_name_and_external_id_are_replaced_with_or_without_a_path() {
        // Arrange: entra.md §2.9 and the validator's path-less forms.
        let doc = obj(json!({"displayName": "Old", "externalId": "e1"}));
        let ops = json!([
            {"op": "Replace", "path": "displayName", "value": "1879db59-updatedDisplayName"},
            {"op": "replace", "value": {"externalId": "e2"}}
        ]);
        // Act
        let (after, _) = patch(&GROUP_RESOURCE, doc, ops);
        // Assert
        assert_eq!(
            after,
            obj(json!({"displayName": "1879db59-updatedDisplayName", "externalId": "e2"}))
        );
    }

    #[test]
    fn members_on_a_user_is_an_ordinary_unknown_attribute() {
        // Arrange
        let ops = json!([{"op": "add", "path": "members", "value": [{"value": "x"}]}]);
        // Act
        let (doc, outcome) = patch(&USER_RESOURCE, bob(), ops);
        // Assert
        assert_eq!(doc["members"], json!([{"value": "x"}]));
        assert!(outcome.member_changes.is_empty());
    }

    #[test]
    fn bare_id_strings_are_accepted_as_members() {
        // Arrange: Microsoft's Postman collection adds a member as a string.
        let ops = json!([
            {"op": "add", "path": "members", "value": "u1"},
            {"op": "add", "path": "members", "value": ["u2", {"Value": "u3"}]}
        ]);
        // Act
        let changes = members(ops);
        // Assert
        assert_eq!(
            changes,
            [
                MemberChange::Add(ids(&["u1"])),
                MemberChange::Add(ids(&["u2", "u3"]))
            ]
        );
    }

    #[test]
    fn add_or_replace_on_a_members_filter_or_sub_attribute_is_invalid_path() {
        for (op, path) in [
            ("add", "members[value eq \"u1\"]"),
            ("replace", "members.value"),
            ("remove", "members.value"),
        ] {
            // Arrange
            let ops = json!([{"op": op, "path": path, "value": [{"value": "u1"}]}]);
            // Act
            let err = patch_error(&GROUP_RESOURCE, obj(json!({"displayName": "G"})), ops);
            // Assert
            assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{op} {path}");
        }
    }

    // --- Remove -------------------------------------------------------------

    #[test]
    fn removing_a_sub_attribute_keeps_the_other_sub_attributes() {
        // Arrange
        let ops = json!([{"op": "remove", "path": "name.givenName"}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc["name"], json!({"familyName": "Smith"}));
    }

    #[test]
    fn removing_the_last_sub_attribute_drops_the_complex_attribute() {
        // Arrange
        let ops = json!([{"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.familyName"}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert!(!doc.contains_key("name"));
    }

    #[test]
    fn removing_an_absent_attribute_is_a_no_op() {
        // Arrange
        let ops = json!([
            {"op": "remove", "path": "title"},
            {"op": "remove", "path": "addresses[type eq \"work\"]"},
            {"op": "remove", "path": format!("{CUSTOM}:costCode")},
            {"op": "remove", "path": manager_path()}
        ]);
        // Act
        let (doc, outcome) = patch(&USER_RESOURCE, alice(), ops);
        // Assert
        assert_eq!(doc, alice());
        assert!(!outcome.changed);
    }

    #[test]
    fn remove_with_a_value_filter_removes_only_the_matching_elements() {
        // Arrange
        let mut user = bob();
        user.insert(
            "emails".into(),
            json!([{"type": "work", "value": "w@x"}, {"type": "home", "value": "h@x"}]),
        );
        let ops = json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert_eq!(doc["emails"], json!([{"type": "home", "value": "h@x"}]));
    }

    #[test]
    fn remove_with_a_value_filter_and_sub_attribute_removes_only_that_sub_attribute() {
        // Arrange
        let mut user = bob();
        user.insert(
            "addresses".into(),
            json!([{"type": "work", "locality": "Paris", "country": "FR"}]),
        );
        let ops = json!([{"op": "remove", "path": "addresses[type eq \"work\"].locality"}]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert_eq!(doc["addresses"], json!([{"type": "work", "country": "FR"}]));
    }

    #[test]
    fn removing_the_last_element_drops_the_array() {
        // Arrange
        let ops = json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert!(!doc.contains_key("emails"));
    }

    #[test]
    fn removing_the_last_enterprise_attribute_drops_the_extension_object() {
        // Arrange
        let ops = json!([{"op": "remove", "path": format!("{ENTERPRISE}:department")}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert!(!doc.contains_key(ENTERPRISE));
    }

    #[test]
    fn remove_of_a_multi_valued_attribute_with_a_value_array_removes_only_the_listed_elements() {
        // Arrange
        let mut user = bob();
        user.insert(
            "roles".into(),
            json!([{"value": "Admin"}, {"value": "User"}]),
        );
        let ops = json!([{"op": "remove", "path": "roles", "value": [{"value": "admin"}]}]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert_eq!(doc["roles"], json!([{"value": "User"}]));
    }

    #[test]
    fn removing_a_multi_valued_attribute_without_a_value_removes_it_all() {
        // Arrange
        let ops = json!([{"op": "remove", "path": "emails"}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert!(!doc.contains_key("emails"));
    }

    // --- Null and empty values (SCIM_Null_Update) ---------------------------

    #[test]
    fn a_null_value_in_add_or_replace_unassigns_the_attribute() {
        // Arrange
        let ops = json!([
            {"op": "replace", "path": "nickName", "value": null},
            {"op": "add", "path": "name.familyName", "value": null},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": null}
        ]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert!(!doc.contains_key("nickName"));
        assert_eq!(doc["name"], json!({"givenName": "Alice"}));
        assert_eq!(doc["emails"], json!([{"type": "work", "primary": true}]));
    }

    #[test]
    fn an_empty_string_is_stored_as_sent() {
        // Arrange
        let ops = json!([
            {"op": "replace", "path": "nickName", "value": ""},
            {"op": "replace", "path": "name.givenName", "value": ""},
            {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": ""}
        ]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc["nickName"], "");
        assert_eq!(doc["name"]["givenName"], "");
        assert_eq!(doc[ENTERPRISE]["department"], "");
    }

    // --- Multi-valued attributes --------------------------------------------

    #[test]
    fn add_on_a_multi_valued_attribute_appends_and_skips_exact_duplicates() {
        // Arrange
        let ops = json!([{"op": "add", "path": "emails", "value": [
            {"value": "alice@contoso.com", "type": "work", "primary": true},
            {"value": "al@home.example", "type": "home"}
        ]}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(
            doc["emails"],
            json!([{"value": "alice@contoso.com", "type": "work", "primary": true}, {"value": "al@home.example", "type": "home"}])
        );
    }

    #[test]
    fn replace_on_a_multi_valued_attribute_replaces_the_whole_list() {
        // Arrange: AssertiveAppRoleAssignmentsComplex.
        let mut user = bob();
        user.insert("roles".into(), json!([{"value": "Old"}]));
        let ops = json!([{"op": "replace", "path": "roles", "value": [
            {"primary": false, "type": "WindowsAzureActiveDirectoryRole", "display": "User", "value": "User"}
        ]}]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert_eq!(
            doc["roles"],
            json!([{"primary": false, "type": "WindowsAzureActiveDirectoryRole", "display": "User", "value": "User"}])
        );
    }

    #[test]
    fn a_single_object_added_to_a_multi_valued_attribute_is_one_element() {
        // Arrange
        let ops = json!([{"op": "add", "path": "phoneNumbers", "value": {"type": "fax", "value": "+1 555 0000"}}]);
        // Act
        let doc = patch_user(bob(), ops);
        // Assert
        assert_eq!(
            doc["phoneNumbers"],
            json!([{"type": "fax", "value": "+1 555 0000"}])
        );
    }

    #[test]
    fn boolean_strings_and_key_casing_inside_written_elements_are_canonicalised() {
        // Arrange: the validator sends roles with "primary": "True".
        let ops = json!([
            {"op": "add", "path": "roles", "value": [{"Primary": "True", "Value": "Admin"}]},
            {"op": "add", "path": "emails", "value": [{"value": "b@x", "primary": "false"}]}
        ]);
        // Act
        let doc = patch_user(bob(), ops);
        // Assert
        assert_eq!(doc["roles"], json!([{"primary": true, "value": "Admin"}]));
        assert_eq!(doc["emails"], json!([{"value": "b@x", "primary": false}]));
    }

    #[test]
    fn a_primary_true_string_filter_creates_an_element_with_a_boolean_primary() {
        // Arrange: SingleAppRoleAssignment → roles[primary eq "True"].value.
        let ops =
            json!([{"op": "Add", "path": "roles[primary eq \"True\"].value", "value": "Admin"}]);
        // Act
        let doc = patch_user(bob(), ops);
        // Assert
        assert_eq!(doc["roles"], json!([{"primary": true, "value": "Admin"}]));
    }

    #[test]
    fn a_boolean_sub_attribute_path_coerces_strings() {
        // Arrange
        let ops = json!([{"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "False"}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc["emails"][0]["primary"], false);
    }

    #[test]
    fn making_one_element_primary_clears_primary_on_the_others() {
        // Arrange
        let ops = json!([{"op": "add", "path": "emails", "value": [{"value": "new@x", "type": "home", "primary": "True"}]}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(
            doc["emails"],
            json!([
                {"value": "alice@contoso.com", "type": "work", "primary": false},
                {"value": "new@x", "type": "home", "primary": true}
            ])
        );
    }

    #[test]
    fn a_filter_without_sub_attribute_merges_the_object_into_matching_elements() {
        // Arrange
        let ops = json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "w2@x", "display": "Work"}}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(
            doc["emails"],
            json!([{"value": "w2@x", "type": "work", "primary": true, "display": "Work"}])
        );
    }

    #[test]
    fn a_filter_without_sub_attribute_creates_an_element_when_none_matches() {
        // Arrange
        let ops =
            json!([{"op": "add", "path": "emails[type eq \"home\"]", "value": {"value": "h@x"}}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc["emails"][1], json!({"type": "home", "value": "h@x"}));
    }

    #[test]
    fn a_filter_with_and_ed_equalities_creates_an_element_with_each_field() {
        // Arrange
        let ops = json!([{"op": "add", "path": "emails[type eq \"work\" and primary eq true].value", "value": "b@x"}]);
        // Act
        let doc = patch_user(bob(), ops);
        // Assert
        assert_eq!(
            doc["emails"],
            json!([{"type": "work", "primary": true, "value": "b@x"}])
        );
    }

    #[test]
    fn a_filter_that_cannot_describe_a_new_element_is_no_target_when_nothing_matches() {
        // Arrange
        let ops =
            json!([{"op": "replace", "path": "emails[value co \"nobody\"].type", "value": "work"}]);
        // Act
        let err = patch_error(&USER_RESOURCE, alice(), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::NoTarget));
    }

    #[test]
    fn a_filtered_whole_element_value_must_be_an_object() {
        // Arrange
        let ops = json!([{"op": "add", "path": "emails[type eq \"work\"]", "value": "w@x"}]);
        // Act
        let err = patch_error(&USER_RESOURCE, alice(), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn a_primary_true_string_filter_updates_the_existing_primary_role() {
        // Arrange
        let mut user = bob();
        user.insert(
            "roles".into(),
            json!([{"primary": true, "value": "User"}, {"value": "Reader"}]),
        );
        let ops = json!([{"op": "Replace", "path": "roles[primary eq \"True\"].value", "value": "Admin"}]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert_eq!(
            doc["roles"],
            json!([{"primary": true, "value": "Admin"}, {"value": "Reader"}])
        );
    }

    #[test]
    fn a_sub_attribute_path_on_a_multi_valued_attribute_applies_to_every_element() {
        // Arrange
        let mut user = bob();
        user.insert("emails".into(), json!([{"value": "a@x"}, {"value": "b@x"}]));
        let ops = json!([{"op": "replace", "path": "emails.type", "value": "work"}]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert_eq!(
            doc["emails"],
            json!([{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "work"}])
        );
    }

    #[test]
    fn a_dotted_path_on_an_unknown_attribute_creates_an_object() {
        // Arrange
        let ops = json!([{"op": "add", "path": "badge.number", "value": "7"}]);
        // Act
        let doc = patch_user(bob(), ops);
        // Assert
        assert_eq!(doc["badge"], json!({"number": "7"}));
    }

    #[test]
    fn a_path_naming_a_custom_extension_merges_into_it() {
        // Arrange
        let mut user = bob();
        user.insert(CUSTOM.into(), json!({"site": "HQ"}));
        let ops =
            json!([{"op": "replace", "path": CUSTOM, "value": {"costCode": "CC-3", "site": null}}]);
        // Act
        let doc = patch_user(user, ops);
        // Assert
        assert_eq!(doc[CUSTOM], json!({"costCode": "CC-3"}));
    }

    // --- Complex attributes -------------------------------------------------

    #[test]
    fn replace_of_a_complex_attribute_keeps_the_unspecified_sub_attributes() {
        // Arrange: RFC 7644 §3.5.2.3.
        let ops = json!([{"op": "replace", "path": "name", "value": {"givenName": "Alicia", "middleName": "M"}}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(
            doc["name"],
            json!({"givenName": "Alicia", "familyName": "Smith", "middleName": "M"})
        );
    }

    #[test]
    fn a_complex_attribute_given_a_scalar_is_invalid_value() {
        // Arrange
        let ops = json!([{"op": "replace", "path": "name", "value": "Alice Smith"}]);
        // Act
        let err = patch_error(&USER_RESOURCE, alice(), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    }

    // --- Mutability and invalid paths ---------------------------------------

    #[test]
    fn read_only_attributes_are_refused_with_mutability() {
        for (op, path) in [
            ("replace", "id"),
            ("remove", "id"),
            ("replace", "meta"),
            ("replace", "meta.lastModified"),
            ("add", "groups"),
            ("replace", "schemas"),
            ("replace", "urn:ietf:params:scim:schemas:core:2.0:User:id"),
        ] {
            // Arrange
            let ops = json!([{"op": op, "path": path, "value": "x"}]);
            // Act
            let err = patch_error(&USER_RESOURCE, alice(), ops);
            // Assert
            assert_eq!(err.scim_type, Some(ScimType::Mutability), "{op} {path}");
        }
    }

    #[test]
    fn a_path_less_key_naming_a_read_only_attribute_is_refused_naming_it() {
        // Arrange
        let ops =
            json!([{"op": "replace", "value": {"displayName": "x", "meta": {"version": "1"}}}]);
        // Act
        let err = patch_error(&USER_RESOURCE, alice(), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::Mutability));
        assert!(err.detail.contains("meta"), "{}", err.detail);
    }

    #[test]
    fn user_name_and_external_id_are_writable() {
        // Arrange
        let ops = json!([{"op": "replace", "path": "externalId", "value": "x2"}, {"op": "remove", "path": "externalId"}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert!(!doc.contains_key("externalId"));
    }

    #[test]
    fn a_filter_on_a_single_valued_attribute_is_invalid_path() {
        // Arrange
        let ops = json!([{"op": "replace", "path": "name[givenName eq \"Alice\"].familyName", "value": "x"}]);
        // Act
        let err = patch_error(&USER_RESOURCE, alice(), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
    }

    #[test]
    fn a_sub_attribute_of_a_simple_attribute_is_invalid_path() {
        // Arrange
        let ops = json!([{"op": "replace", "path": "userName.foo", "value": "x"}]);
        // Act
        let err = patch_error(&USER_RESOURCE, alice(), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
    }

    #[test]
    fn an_unknown_core_attribute_is_stored_as_sent() {
        // Arrange: an Entra custom mapping without a schema URN.
        let ops = json!([{"op": "Add", "path": "badgeNumber", "value": "B-12"}]);
        // Act
        let doc = patch_user(bob(), ops);
        // Assert
        assert_eq!(doc["badgeNumber"], "B-12");
    }

    // --- Canonical names ----------------------------------------------------

    #[test]
    fn written_names_get_the_schema_casing() {
        // Arrange
        let ops = json!([
            {"op": "replace", "path": "USERNAME", "value": "A@contoso.com"},
            {"op": "replace", "path": "Name.GIVENNAME", "value": "Al"},
            {"op": "add", "path": format!("{}:Department", ENTERPRISE.to_ascii_uppercase()), "value": "HR"}
        ]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc["userName"], "A@contoso.com");
        assert_eq!(doc["name"]["givenName"], "Al");
        assert_eq!(doc[ENTERPRISE]["department"], "HR");
        let keys: Vec<&str> = doc.keys().map(String::as_str).collect();
        assert!(
            !keys.iter().any(|k| *k == "USERNAME" || *k == "Name"),
            "{keys:?}"
        );
        assert_eq!(doc["name"].as_object().map(Map::len), Some(2));
    }

    #[test]
    fn replacing_an_attribute_keeps_its_position_in_the_document() {
        // Arrange
        let ops = json!([{"op": "replace", "path": "userName", "value": "z@contoso.com"}]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc.keys().next().map(String::as_str), Some("userName"));
    }

    // --- Order, atomicity, change detection ---------------------------------

    #[test]
    fn operations_apply_in_order() {
        // Arrange: the validator's "Multiple Ops on same attribute".
        let ops = json!([
            {"op": "remove", "path": "displayName"},
            {"op": "add", "path": "displayName", "value": "Added"},
            {"op": "replace", "path": "displayName", "value": "Replaced"}
        ]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert_eq!(doc["displayName"], "Replaced");
    }

    #[test]
    fn multiple_operations_on_different_attributes_all_apply() {
        // Arrange: the validator's "Multiple Ops on different attributes".
        let ops = json!([
            {"op": "remove", "path": "nickName"},
            {"op": "replace", "path": "externalId", "value": "new-ext"},
            {"op": "add", "path": "title", "value": "Engineer"}
        ]);
        // Act
        let doc = patch_user(alice(), ops);
        // Assert
        assert!(!doc.contains_key("nickName"));
        assert_eq!(doc["externalId"], "new-ext");
        assert_eq!(doc["title"], "Engineer");
    }

    #[test]
    fn a_request_whose_second_operation_fails_leaves_the_document_unchanged() {
        // Arrange
        let ops = json!([
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "replace", "path": "active", "value": "maybe"}
        ]);
        // Act
        let err = patch_error(&USER_RESOURCE, alice(), ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn a_group_request_whose_second_operation_fails_reports_no_member_changes() {
        // Arrange
        let doc = obj(json!({"displayName": "G"}));
        let ops = json!([
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            {"op": "replace", "path": "id", "value": "x"}
        ]);
        // Act
        let err = patch_error(&GROUP_RESOURCE, doc, ops);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::Mutability));
    }

    #[test]
    fn a_patch_that_sets_current_values_reports_no_change() {
        // Arrange: Entra may re-send what the resource already holds.
        let ops = json!([
            {"op": "Replace", "path": "displayName", "value": "Alice Smith"},
            {"op": "Replace", "path": "active", "value": "True"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "alice@contoso.com"}
        ]);
        // Act
        let (doc, outcome) = patch(&USER_RESOURCE, alice(), ops);
        // Assert
        assert_eq!(doc, alice());
        assert!(!outcome.changed);
        assert!(outcome.member_changes.is_empty());
    }

    #[test]
    fn a_patch_that_changes_something_reports_a_change() {
        // Arrange
        let ops = json!([{"op": "Replace", "path": "active", "value": "False"}]);
        // Act
        let (_, outcome) = patch(&USER_RESOURCE, alice(), ops);
        // Assert
        assert!(outcome.changed);
    }

    // --- Limits (issue #9): bounded work per request -----------------------

    /// Entra's member add with `n` distinct UUID-shaped ids.
    fn entra_member_add(n: usize) -> Value {
        let members: Vec<Value> = (0..n)
            .map(|i| json!({ "value": format!("{i:08x}-9d3a-4b5c-8e6f-0a1b2c3d4e5f") }))
            .collect();
        json!({
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "Add", "path": "members", "value": members}]
        })
    }

    #[test]
    fn a_patch_adding_130000_member_ids_is_rejected_as_too_many() {
        // Arrange: about what a 1 MiB body holds. Deduplicating it pairwise
        // took billions of comparisons; now it is refused up front.
        let body = entra_member_add(130_000);
        // Act
        let err = parse_error(body);
        // Assert
        assert_eq!(err.status, 400);
        assert_eq!(err.scim_type, Some(ScimType::TooMany));
        assert_eq!(err.to_body()["scimType"], "tooMany");
        assert!(err.detail.contains("130000"), "{}", err.detail);
        assert!(err.detail.contains("1000"), "{}", err.detail);
    }

    #[test]
    fn the_engine_rejects_130000_member_ids_in_a_request_built_without_parsing() {
        // Arrange: `PatchRequest`'s fields are public; `apply` checks too.
        let members: Vec<Value> = (0..130_000).map(|i| json!(format!("id-{i}"))).collect();
        let request = PatchRequest {
            operations: vec![PatchOperation {
                op: PatchOpKind::Add,
                path: Some(parse_patch_path("members").unwrap()),
                value: Some(Value::Array(members)),
            }],
        };
        let mut doc = obj(json!({"displayName": "Sales"}));
        // Act
        let err = apply(&mut doc, &request, &GROUP_RESOURCE).unwrap_err();
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::TooMany));
        assert_eq!(doc, obj(json!({"displayName": "Sales"})));
    }

    #[test]
    fn the_value_cap_is_the_total_over_all_operations() {
        // Arrange
        let half = |op: &str| {
            let ids: Vec<Value> = (0..600)
                .map(|i| json!({"value": format!("u{i}")}))
                .collect();
            json!({"op": op, "path": "members", "value": ids})
        };
        let body =
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [half("Add"), half("Remove")]});
        // Act
        let err = parse_error(body);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::TooMany));
        assert!(err.detail.contains("1200"), "{}", err.detail);
    }

    #[test]
    fn exactly_the_cap_of_member_ids_is_accepted() {
        // Arrange
        let body = entra_member_add(MAX_VALUES_PER_REQUEST);
        let mut group = obj(json!({"displayName": "Sales"}));
        // Act
        let request = PatchRequest::from_json(body).unwrap();
        let outcome = apply(&mut group, &request, &GROUP_RESOURCE).unwrap();
        // Assert
        match &outcome.member_changes[..] {
            [MemberChange::Add(ids)] => assert_eq!(ids.len(), MAX_VALUES_PER_REQUEST),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_large_member_list_with_duplicates_keeps_the_first_occurrence_of_each_in_order() {
        // Arrange: 1000 entries naming 250 ids, each four times, in a
        // scrambled order, as objects, bare strings and differently cased
        // keys (`Value`), which all name the same member.
        let order: Vec<usize> = (0..1000).map(|i| (i * 7919) % 250).collect();
        let listed: Vec<Value> = order
            .iter()
            .enumerate()
            .map(|(n, i)| match n % 3 {
                0 => json!({"value": format!("u{i}-€")}),
                1 => json!(format!("u{i}-€")),
                _ => json!({"Value": format!("u{i}-€"), "display": "x"}),
            })
            .collect();
        let mut expected: Vec<String> = Vec::new();
        for i in &order {
            let id = format!("u{i}-€");
            if !expected.contains(&id) {
                expected.push(id);
            }
        }
        // Act
        let changes = members(json!([{"op": "Add", "path": "members", "value": listed}]));
        // Assert
        assert_eq!(expected.len(), 250);
        assert_eq!(changes, vec![MemberChange::Add(expected)]);
    }

    #[test]
    fn a_large_email_add_with_duplicates_keeps_the_first_occurrence_of_each_in_order() {
        // Arrange: 1000 values naming 300 distinct emails; a repeat may list
        // its keys in another order (still the same JSON value), and values
        // equal to an email the user already has are skipped.
        let email = |i: usize, reordered: bool| {
            let value = format!("user{i}@contoso.com");
            if reordered {
                json!({"type": "work", "value": value})
            } else {
                json!({"value": value, "type": "work"})
            }
        };
        let incoming: Vec<Value> = (0..1000)
            .map(|n| email((n * 31) % 300, n % 2 == 1))
            .collect();
        let doc = obj(json!({
            "userName": "a",
            "emails": [{"type": "work", "value": "user0@contoso.com"}, {"value": "other@x"}]
        }));
        let mut expected = vec![
            json!({"type": "work", "value": "user0@contoso.com"}),
            json!({"value": "other@x"}),
        ];
        for v in &incoming {
            if !expected.contains(v) {
                expected.push(v.clone());
            }
        }
        // Act
        let after = patch_user(
            doc,
            json!([{"op": "add", "path": "emails", "value": incoming}]),
        );
        // Assert
        assert_eq!(expected.len(), 2 + 299);
        assert_eq!(after["emails"], Value::Array(expected));
    }

    #[test]
    fn values_equal_as_json_are_duplicates_whatever_their_key_order_or_number_form() {
        // Arrange
        let ops = json!([{"op": "add", "path": "x509Certificates", "value": [
            {"value": "a", "display": "b"}, {"display": "b", "value": "a"},
            {"value": 1}, {"value": 1.0}, {"value": 1}
        ]}]);
        // Act
        let after = patch_user(bob(), ops);
        // Assert: 1 and 1.0 are different JSON numbers to serde_json.
        assert_eq!(
            after["x509Certificates"],
            json!([{"value": "a", "display": "b"}, {"value": 1}, {"value": 1.0}])
        );
    }

    #[test]
    fn more_values_than_the_cap_in_one_attribute_is_too_many() {
        // Arrange
        let values: Vec<Value> = (0..=MAX_VALUES_PER_REQUEST)
            .map(|i| json!({"value": format!("{i}@x")}))
            .collect();
        let body = json!({"schemas": [PATCH_OP_SCHEMA],
                          "Operations": [{"op": "add", "path": "emails", "value": values}]});
        // Act
        let err = parse_error(body);
        // Assert
        assert_eq!(err.scim_type, Some(ScimType::TooMany));
    }

    #[test]
    fn path_less_attributes_and_filter_comparisons_count_toward_the_cap() {
        // Arrange
        let attrs: Map<String, Value> = (0..=MAX_VALUES_PER_REQUEST)
            .map(|i| (format!("attr{i}"), json!(i)))
            .collect();
        let pathless = json!({"schemas": [PATCH_OP_SCHEMA],
                              "Operations": [{"op": "replace", "value": attrs}]});
        let filter = (0..40)
            .map(|i| format!("value eq \"u{i}\""))
            .collect::<Vec<_>>()
            .join(" or ");
        let removes = vec![json!({"op": "remove", "path": format!("members[{filter}]")}); 26];
        let filtered = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": removes});
        // Act
        let errors = [parse_error(pathless), parse_error(filtered)];
        // Assert
        for err in errors {
            assert_eq!(err.scim_type, Some(ScimType::TooMany), "{}", err.detail);
        }
    }

    #[test]
    fn a_replace_of_members_may_carry_a_whole_membership_up_to_its_own_cap() {
        // Arrange: Okta's full replace lists every member, like a PUT.
        let ids = |n: usize| -> Vec<Value> {
            (0..n).map(|i| json!({"value": format!("u{i}")})).collect()
        };
        let big = json!([{"op": "replace", "path": "members", "value": ids(5000)}]);
        let too_big = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [
            {"op": "replace", "value": {"members": ids(MAX_MEMBERS_PER_LIST + 1)}}]});
        // Act
        let changes = members(big);
        let err = parse_error(too_big);
        // Assert
        assert!(matches!(&changes[..], [MemberChange::Replace(ids)] if ids.len() == 5000));
        assert_eq!(err.scim_type, Some(ScimType::TooMany));
    }

    #[test]
    fn an_object_with_many_spellings_of_its_keys_is_merged_in_linear_time() {
        // Arrange: 40,000 keys in 2 spellings each (`k0`, `K0`, …), as an
        // element value and as a complex value; the later spelling's value
        // wins, under the first spelling written.
        let mut fields = Map::new();
        for i in 0..20_000 {
            fields.insert(format!("k{i}"), json!(1));
            fields.insert(format!("K{i}"), json!(2));
        }
        let ops = json!([
            {"op": "add", "path": "emails", "value": [Value::Object(fields.clone())]},
            {"op": "replace", "path": "name", "value": Value::Object(fields)}
        ]);
        // Act
        let after = patch_user(bob(), ops);
        // Assert
        let element = after["emails"][0].as_object().unwrap();
        assert_eq!(element.len(), 20_000);
        assert_eq!(element["k7"], 2);
        let name = after["name"].as_object().unwrap();
        assert_eq!(name.len(), 20_000);
        assert_eq!(name["k19999"], 2);
        assert!(!name.contains_key("K3"));
    }

    #[test]
    fn a_filtered_remove_over_a_long_list_removes_every_match() {
        // Arrange: a stored list of 30,000 elements, all matching.
        let items: Vec<Value> = (0..30_000)
            .map(|i| json!({"value": i, "type": "x"}))
            .collect();
        let doc = obj(json!({"userName": "a", "things": items}));
        // Act
        let after = patch_user(
            doc,
            json!([{"op": "remove", "path": "things[type eq \"x\"]"}]),
        );
        // Assert
        assert!(!after.contains_key("things"));
    }

    // --- Multi-byte text (issue #9): nothing slices inside a character -----

    #[test]
    fn a_user_stored_with_multi_byte_top_level_keys_can_be_patched_and_revalidated() {
        // Arrange: `ab€` and `urn€:x` once panicked in validation (`key[..4]`
        // cut the `€`), on create and on every later PATCH or read.
        let stored = crate::resource::UserResource::from_request(
            json!({"userName": "a", "ab€": 1, "urn€:x": "y", "İd": "z"}),
        )
        .unwrap()
        .doc;
        // Act
        let after = patch_user(
            stored,
            json!([{"op": "add", "path": "x", "value": {"ab€": 1, "urn€:x": 2}},
                   {"op": "replace", "value": {"nickName": "n"}}]),
        );
        let user = crate::resource::UserResource::from_doc(after).unwrap();
        // Assert
        assert_eq!(user.doc["ab€"], 1);
        assert_eq!(user.doc["urn€:x"], "y");
        assert_eq!(user.doc["x"], json!({"ab€": 1, "urn€:x": 2}));
        assert_eq!(user.doc["nickName"], "n");
    }

    #[test]
    fn a_path_less_key_with_multi_byte_characters_is_invalid_path() {
        // Arrange: path-less keys are attribute paths, which are ASCII.
        for key in [
            "ab€",
            "urn€:x",
            "name.€",
            "urn:ietf:params:scim:schemas:extension:€:2.0:User:a",
        ] {
            let ops = json!([{"op": "replace", "value": {key: 1}}]);
            // Act
            let err = patch_error(&USER_RESOURCE, bob(), ops);
            // Assert
            assert_eq!(
                err.scim_type,
                Some(ScimType::InvalidPath),
                "{key}: {}",
                err.detail
            );
        }
    }

    #[test]
    fn multi_byte_paths_and_filter_values_are_handled_without_panicking() {
        // Arrange
        let doc = obj(json!({"userName": "a", "emails": [{"value": "ü@x", "type": "wörk€"}]}));
        // Act
        let after = patch_user(
            doc.clone(),
            json!([{"op": "replace", "path": "emails[type eq \"wörk€\"].value", "value": "€@x"}]),
        );
        let errors: Vec<ScimError> = ["ab€", "emails[ty€pe eq \"x\"]", "urn:€:x", "€", "na€me.x"]
            .into_iter()
            .map(|path| {
                parse_error(json!({"schemas": [PATCH_OP_SCHEMA],
                                   "Operations": [{"op": "add", "path": path, "value": 1}]}))
            })
            .collect();
        // Assert
        assert_eq!(after["emails"][0]["value"], "€@x");
        for err in errors {
            assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{}", err.detail);
        }
    }
}
