//! Identifier newtypes. Each is parsed once at the edge and then trusted.

use std::fmt;

use crate::error::{ScimError, ScimResult};

/// Longest identifier we accept from a client. DynamoDB keys allow far more,
/// but nothing legitimate is this long and it bounds key sizes.
pub const MAX_ID_LEN: usize = 256;

/// A server-assigned resource id (`id`): a UUID we mint, but parsed from URLs
/// leniently (any printable, slash-free text up to [`MAX_ID_LEN`]) so that a
/// malformed id is a clean 404 rather than a 400.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(String);

impl ResourceId {
    /// Mints a fresh random id.
    pub fn from_uuid(uuid: impl fmt::Display) -> Self {
        Self(uuid.to_string())
    }

    /// Parses an id that came from a client (URL segment, member value).
    /// Returns `None` when it cannot possibly be one of ours.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= MAX_ID_LEN
            && !s.chars().any(|c| c.is_control() || c == '/' || c == '#');
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant (customer account): 1–63 characters of `a-z`, `0-9` and `-`,
/// starting with a letter or digit. The restricted alphabet lets a tenant id be
/// embedded in tokens, secret names and DynamoDB keys without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(s: &str) -> Result<Self, InvalidTenantId> {
        let valid = (1..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-');
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidTenantId(s.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TenantId {
    type Err = InvalidTenantId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant id {0:?}: use 1-63 characters of a-z, 0-9 and '-', not starting with '-'")]
pub struct InvalidTenantId(String);

/// Longest `userName` / `externalId` / `displayName` we store.
pub const MAX_NAME_LEN: usize = 1024;

/// `userName`: kept exactly as sent (Entra compares what we return with what it
/// sends), unique per tenant ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserName(String);

impl UserName {
    pub fn parse(s: &str) -> ScimResult<Self> {
        parse_name(s, "userName").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key: case-insensitive, as RFC 7643 defines `userName`.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// `externalId`: the client's id for the resource (Entra's objectId), case-exact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(s: &str) -> ScimResult<Self> {
        parse_name(s, "externalId").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A group's `displayName`, unique per tenant ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(s: &str) -> ScimResult<Self> {
        parse_name(s, "displayName").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

fn parse_name(s: &str, attr: &str) -> ScimResult<String> {
    if s.trim().is_empty() {
        return Err(ScimError::invalid_value(format!(
            "{attr} must be a non-empty string"
        )));
    }
    // The uniqueness key of a case-insensitive name is its lowercase form,
    // which can be longer in bytes than the name ('İ' → "i̇"): both must fit.
    if s.len() > MAX_NAME_LEN || lowercase_len(s) > MAX_NAME_LEN {
        return Err(ScimError::invalid_value(format!(
            "{attr} is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(ScimError::invalid_value(format!(
            "{attr} must not contain control characters"
        )));
    }
    Ok(s.to_owned())
}

/// Length in bytes of `s.to_lowercase()`, without building it.
fn lowercase_len(s: &str) -> usize {
    s.chars()
        .map(|c| c.to_lowercase().map(char::len_utf8).sum::<usize>())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_whose_lowercase_form_outgrows_the_key_limit_are_refused() {
        // 'İ' is 2 bytes; its lowercase "i̇" is 3.
        let name = "İ".repeat(MAX_NAME_LEN / 2);
        assert_eq!(name.len(), MAX_NAME_LEN);
        assert!(name.to_lowercase().len() > MAX_NAME_LEN);
        let err = UserName::parse(&name).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(DisplayName::parse(&name).is_err());
        assert!(UserName::parse(&"İ".repeat(MAX_NAME_LEN / 3)).is_ok());
        assert_eq!(lowercase_len("AbİΣ"), "AbİΣ".to_lowercase().len());
    }

    #[test]
    fn tenant_ids_accept_dns_like_names_only() {
        assert!(TenantId::parse("acme-42").is_ok());
        for bad in ["", "-acme", "Acme", "a_b", "a.b", &"a".repeat(64)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn user_name_key_ignores_case_but_value_is_kept_as_sent() {
        let name = UserName::parse("Alice@Contoso.com").unwrap();
        assert_eq!(name.as_str(), "Alice@Contoso.com");
        assert_eq!(name.key(), "alice@contoso.com");
    }

    #[test]
    fn blank_or_control_character_names_are_rejected_as_invalid_value() {
        for bad in ["", "  ", "a\u{0}b"] {
            let err = UserName::parse(bad).unwrap_err();
            assert_eq!(err.scim_type, Some(crate::ScimType::InvalidValue));
        }
    }

    #[test]
    fn resource_ids_from_urls_reject_slashes_and_empty() {
        assert!(ResourceId::parse("2819c223-7f76-453a-919d-413861904646").is_some());
        assert!(ResourceId::parse("").is_none());
        assert!(ResourceId::parse("a/b").is_none());
    }
}
