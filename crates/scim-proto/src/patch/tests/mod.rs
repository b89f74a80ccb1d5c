//! Unit tests of the PATCH engine, by topic; shared fixtures here.

mod echoes;
mod entra;
mod limits;
mod manager;
mod members;
mod multi;
mod paths;
mod remove;
mod request;

use serde_json::json;

use super::*;
use crate::ScimType;
use crate::error::ScimError;
use crate::path::parse_patch_path;
use crate::resource::MAX_MEMBERS_PER_LIST;
use crate::schema::{GROUP_RESOURCE, PATCH_OP_SCHEMA, USER_RESOURCE};

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
    PatchRequest::from_json(body).unwrap_or_else(|e| panic!("request should parse: {}", e.detail))
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

fn manager_path() -> String {
    format!("{ENTERPRISE}:manager")
}
