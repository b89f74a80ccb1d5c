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
//!
//! Layout: `request` reads the body, `limits` bounds its size, the `Engine`
//! here applies it with `engine` dispatching each operation to `pathless`,
//! `attr`, `filtered` or `members`; `multi`, `coerce` and `keys` hold the
//! list, value and key rules they share.

mod attr;
mod coerce;
mod engine;
mod filtered;
mod keys;
mod limits;
mod members;
mod multi;
mod pathless;
mod request;

use serde_json::{Map, Value};

use self::coerce::canonical_key;
pub use self::limits::{MAX_OPERATIONS, MAX_VALUES_PER_REQUEST};
pub use self::request::{PatchOpKind, PatchOperation, PatchRequest};
use crate::error::ScimResult;
use crate::schema::{AttributeDef, ResourceType};

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

#[cfg(test)]
mod tests;
