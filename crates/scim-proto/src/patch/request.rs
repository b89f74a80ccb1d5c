//! Reading a `PatchOp` body into a [`PatchRequest`]: the `schemas` check,
//! `Operations`, `op` in any case (Entra's default dialect capitalises it),
//! and paths parsed up front so that a malformed one fails the request before
//! anything is applied. Changes when a client sends a new body shape.

use serde_json::Value;

use super::MAX_OPERATIONS;
use super::keys::{get_ci, take_ci};
use crate::ast::PatchPath;
use crate::error::{ScimError, ScimResult};
use crate::path::parse_patch_path;
use crate::schema::PATCH_OP_SCHEMA;

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
