//! The User resource: validation of a canonical document into the typed
//! fields the store indexes (`userName`, `externalId`, email keys, the
//! manager). Changes when User gains an indexed field or a rule.

use serde_json::{Map, Value};

use super::canonical::canonicalize;
use super::caps::{MAX_EMAILS, check_list_sizes, check_size};
use super::{expect_object, optional_external_id};
use crate::error::{ScimError, ScimResult};
use crate::ids::{ExternalId, UserName};
use crate::schema::{ENTERPRISE_USER_SCHEMA, Mutability, USER_RESOURCE};

/// A validated User.
#[derive(Debug, Clone, PartialEq)]
pub struct UserResource {
    pub user_name: UserName,
    pub external_id: Option<ExternalId>,
    /// `active` defaults to true when absent (Entra always sends it on create).
    pub active: bool,
    /// Distinct email values, lowercased: the keys of the email index.
    pub email_keys: Vec<String>,
    /// The enterprise manager's id, if any.
    pub manager: Option<String>,
    pub doc: Map<String, Value>,
}

impl UserResource {
    /// Parses a POST/PUT body.
    pub fn from_request(body: Value) -> ScimResult<Self> {
        let body = expect_object(body)?;
        check_list_sizes(&body, &USER_RESOURCE)?;
        Self::from_doc(canonicalize(body, &USER_RESOURCE)?)
    }

    /// Validates a canonical document (e.g. the result of a PATCH).
    pub fn from_doc(doc: Map<String, Value>) -> ScimResult<Self> {
        // Re-canonicalising is idempotent and catches type errors a PATCH wrote.
        let mut doc = canonicalize(doc, &USER_RESOURCE)?;
        // Write-only attributes (`password`: Okta sends one unasked) have no
        // use here, since users sign in at their identity provider: dropped,
        // never stored.
        for def in USER_RESOURCE.schema.attributes {
            if def.mutability == Mutability::WriteOnly {
                doc.remove(def.name);
            }
        }
        let user_name = match doc.get("userName") {
            Some(Value::String(s)) => UserName::parse(s)?,
            _ => {
                return Err(ScimError::invalid_value(
                    "userName is required and must be a string",
                ));
            }
        };
        let external_id = optional_external_id(&doc)?;
        let active = doc.get("active").and_then(Value::as_bool).unwrap_or(true);
        let mut email_keys: Vec<String> = doc
            .get("emails")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("value").and_then(Value::as_str))
            .filter(|v| !v.is_empty())
            .map(str::to_lowercase)
            .collect();
        email_keys.sort();
        email_keys.dedup();
        if email_keys.len() > MAX_EMAILS {
            return Err(ScimError::invalid_value(format!(
                "a user may have at most {MAX_EMAILS} distinct emails"
            )));
        }
        if email_keys
            .iter()
            .any(|e| e.len() > crate::ids::MAX_NAME_LEN)
        {
            return Err(ScimError::invalid_value("an email value is too long"));
        }
        let manager = doc
            .get(ENTERPRISE_USER_SCHEMA)
            .and_then(|e| e.get("manager"))
            .and_then(|m| m.get("value"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        check_size(&doc)?;
        Ok(Self {
            user_name,
            external_id,
            active,
            email_keys,
            manager,
            doc,
        })
    }
}
