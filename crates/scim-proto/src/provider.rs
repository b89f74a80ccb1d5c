//! Which identity provider sent a request, told from its `User-Agent`, so an
//! operator (and the admin's page) can tell Entra's traffic from Okta's.
//! Only a fixed label is ever kept: the header itself is client text.

use std::fmt;

/// A SCIM client, as far as its `User-Agent` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Entra,
    Okta,
    OneLogin,
    JumpCloud,
    PingIdentity,
    /// A `User-Agent` none of the above send (a script, a test tool).
    Other,
    /// No `User-Agent` at all (Entra sometimes sends none).
    Unnamed,
}

/// Substrings (lowercase) that name each provider in its `User-Agent`.
const SIGNATURES: &[(&str, Provider)] = &[
    ("okta", Provider::Okta),
    ("onelogin", Provider::OneLogin),
    ("jumpcloud", Provider::JumpCloud),
    ("pingone", Provider::PingIdentity),
    ("pingfederate", Provider::PingIdentity),
    ("ping identity", Provider::PingIdentity),
    ("azure", Provider::Entra),
    ("microsoft", Provider::Entra),
];

impl Provider {
    pub fn from_user_agent(user_agent: Option<&str>) -> Self {
        let Some(ua) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else {
            return Self::Unnamed;
        };
        let ua = ua.to_ascii_lowercase();
        SIGNATURES
            .iter()
            .find(|(needle, _)| ua.contains(needle))
            .map_or(Self::Other, |(_, p)| *p)
    }

    /// The stable label used in logs and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Entra => "entra",
            Self::Okta => "okta",
            Self::OneLogin => "onelogin",
            Self::JumpCloud => "jumpcloud",
            Self::PingIdentity => "pingidentity",
            Self::Other => "other",
            Self::Unnamed => "unnamed",
        }
    }

    /// The inverse of [`Provider::as_str`].
    pub fn from_label(label: &str) -> Option<Self> {
        [
            Self::Entra,
            Self::Okta,
            Self::OneLogin,
            Self::JumpCloud,
            Self::PingIdentity,
            Self::Other,
            Self::Unnamed,
        ]
        .into_iter()
        .find(|p| p.as_str() == label)
    }

    /// How a person names it.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Entra => "Microsoft Entra ID",
            Self::Okta => "Okta",
            Self::OneLogin => "OneLogin",
            Self::JumpCloud => "JumpCloud",
            Self::PingIdentity => "PingOne / PingFederate",
            Self::Other => "another SCIM client",
            Self::Unnamed => "a client without a User-Agent (Entra sends none at times)",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_providers_documented_user_agent_is_recognised() {
        for (ua, want) in [
            ("Okta SCIM Client 1.0.0", Provider::Okta),
            ("OneLogin SCIM", Provider::OneLogin),
            ("JumpCloud SCIM Client", Provider::JumpCloud),
            ("PingOne-SCIM/1.0", Provider::PingIdentity),
            ("Microsoft.AAD.Provisioning", Provider::Entra),
            ("Azure AD SCIM", Provider::Entra),
            ("Central Sync 2.0", Provider::Other),
            ("curl/8.5.0", Provider::Other),
        ] {
            assert_eq!(Provider::from_user_agent(Some(ua)), want, "{ua}");
        }
    }

    #[test]
    fn a_missing_or_blank_user_agent_is_unnamed() {
        assert_eq!(Provider::from_user_agent(None), Provider::Unnamed);
        assert_eq!(Provider::from_user_agent(Some("  ")), Provider::Unnamed);
    }

    #[test]
    fn labels_round_trip() {
        for ua in [None, Some("okta"), Some("x"), Some("azure")] {
            let p = Provider::from_user_agent(ua);
            assert_eq!(Provider::from_label(p.as_str()), Some(p));
        }
    }
}
