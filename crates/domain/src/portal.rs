//! Access to the User Provisioning page: one-time links and the sessions
//! they open. A link is minted for one tenant (by the app's backend through
//! the IAM-authorised admin route, or by `scimsync portal link`), works
//! once, and expires after minutes; opening it starts a session bound to
//! that tenant, carried by a cookie signed with the portal's key. Every
//! state-changing request also carries a CSRF token derived from the
//! session. The SCIM token never opens anything here.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use scim_proto::ids::TenantId;
use scim_store::StoreError;
use scim_store::portal::{PortalLinkStore, Redeemed, SessionKeyStore, random_secret};
use secrecy::ExposeSecret;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// How long a link works when nobody says otherwise.
pub const DEFAULT_LINK_TTL: Duration = Duration::from_secs(300);
/// The longest a link may work.
pub const MAX_LINK_TTL: Duration = Duration::from_secs(3600);
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A minted link.
#[derive(Debug, Clone)]
pub struct PortalLink {
    pub url: String,
    pub expires: OffsetDateTime,
}

/// Why a link did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefused {
    AlreadyUsed,
    Expired,
    Unknown,
}

/// A valid session: who it is for and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub tenant: TenantId,
    pub expires: i64,
    nonce: String,
}

/// Links and sessions of the portal.
#[derive(Debug, Clone)]
pub struct Portal {
    links: Arc<dyn PortalLinkStore>,
    key: Arc<dyn SessionKeyStore>,
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Whether two signatures or tokens are equal, in time independent of
/// where they differ.
pub fn same_token(expected: &str, submitted: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
}

/// Where the admin may be sent back to: an absolute https URL (http only on
/// loopback, for local development).
fn check_return_url(url: &str) -> Result<(), PortalError> {
    let lower = url.to_ascii_lowercase();
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| lower.starts_with(p));
    if (lower.starts_with("https://") && url.len() > "https://".len()) || loopback {
        if url
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '<' || c == '>')
        {
            return Err(PortalError::Invalid(
                "returnUrl contains characters a URL may not".into(),
            ));
        }
        Ok(())
    } else {
        Err(PortalError::Invalid(
            "returnUrl must be an absolute https:// URL of your application".into(),
        ))
    }
}

impl Portal {
    pub fn new(links: Arc<dyn PortalLinkStore>, key: Arc<dyn SessionKeyStore>) -> Self {
        Self { links, key }
    }

    /// A one-time link to the tenant's page under `base` (the API's origin,
    /// e.g. `https://api.example.com`), working for `ttl`.
    pub async fn mint_link(
        &self,
        tenant: &TenantId,
        base: &str,
        ttl: Duration,
        return_url: Option<&str>,
    ) -> Result<PortalLink, PortalError> {
        if ttl.is_zero() || ttl > MAX_LINK_TTL {
            return Err(PortalError::Invalid(format!(
                "a link may work between 1 second and {} minutes",
                MAX_LINK_TTL.as_secs() / 60
            )));
        }
        if let Some(url) = return_url {
            check_return_url(url)?;
        }
        let secret = random_secret()?;
        let expires = now() + i64::try_from(ttl.as_secs()).unwrap_or(300);
        self.links
            .put_link(tenant, &secret, expires, return_url)
            .await?;
        tracing::info!(%tenant, "portal link minted");
        Ok(PortalLink {
            url: format!(
                "{}/portal/open/{tenant}/{secret}",
                base.trim_end_matches('/')
            ),
            expires: OffsetDateTime::from_unix_timestamp(expires)
                .unwrap_or_else(|_| OffsetDateTime::now_utc()),
        })
    }

    /// Uses up the link and starts a session: the cookie value and where
    /// the admin came from.
    pub async fn open_link(
        &self,
        tenant: &TenantId,
        secret: &str,
    ) -> Result<Result<(String, Option<String>), LinkRefused>, StoreError> {
        // Secrets are 64 hex digits: anything else was never minted.
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Err(LinkRefused::Unknown));
        }
        match self.links.redeem(tenant, secret, now()).await? {
            Redeemed::Opened { return_url } => {
                let session = Session {
                    tenant: tenant.clone(),
                    expires: now() + i64::try_from(SESSION_TTL.as_secs()).unwrap_or(3600),
                    nonce: random_secret()?,
                };
                tracing::info!(%tenant, "portal session opened");
                Ok(Ok((self.encode(&session).await?, return_url)))
            }
            Redeemed::AlreadyUsed => Ok(Err(LinkRefused::AlreadyUsed)),
            Redeemed::Expired => Ok(Err(LinkRefused::Expired)),
            Redeemed::Unknown => Ok(Err(LinkRefused::Unknown)),
        }
    }

    async fn mac(&self, parts: &[&str]) -> Result<Hmac<Sha256>, StoreError> {
        let key = self.key.session_key().await?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.expose_secret())
            .map_err(|e| StoreError::internal("keying the portal session MAC", e.to_string()))?;
        for p in parts {
            mac.update(p.as_bytes());
            mac.update(b"\n");
        }
        Ok(mac)
    }

    async fn sign(&self, parts: &[&str]) -> Result<String, StoreError> {
        Ok(hex::encode(self.mac(parts).await?.finalize().into_bytes()))
    }

    async fn encode(&self, s: &Session) -> Result<String, StoreError> {
        let expires = s.expires.to_string();
        let sig = self
            .sign(&["session", s.tenant.as_str(), &expires, &s.nonce])
            .await?;
        Ok(format!("{}.{expires}.{}.{sig}", s.tenant, s.nonce))
    }

    /// The session a cookie value carries, if it is genuine and current.
    pub async fn session(&self, cookie: &str) -> Result<Option<Session>, StoreError> {
        let mut parts = cookie.split('.');
        let (Some(tenant), Some(expires), Some(nonce), Some(sig), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Ok(None);
        };
        let expected = self.sign(&["session", tenant, expires, nonce]).await?;
        if !same_token(&expected, sig) {
            return Ok(None);
        }
        let (Ok(tenant), Ok(expires)) = (TenantId::parse(tenant), expires.parse::<i64>()) else {
            return Ok(None);
        };
        if expires <= now() {
            return Ok(None);
        }
        Ok(Some(Session {
            tenant,
            expires,
            nonce: nonce.to_owned(),
        }))
    }

    /// The CSRF token of a session: forms and API writes must echo it.
    pub async fn csrf_token(&self, session: &Session) -> Result<String, StoreError> {
        self.sign(&["csrf", session.tenant.as_str(), &session.nonce])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal_whatever_their_length() {
        assert!(same_token("abc123", "abc123"));
        assert!(!same_token("abc123", "abc124"));
        assert!(!same_token("abc123", "abc12"));
        assert!(!same_token("abc123", ""));
    }

    #[test]
    fn return_urls_must_be_https_or_loopback() {
        assert!(check_return_url("https://app.example.com/settings").is_ok());
        assert!(check_return_url("http://127.0.0.1:3000/x").is_ok());
        assert!(check_return_url("http://app.example.com").is_err());
        assert!(check_return_url("javascript:alert(1)").is_err());
        assert!(check_return_url("https://").is_err());
        assert!(check_return_url("https://a.example/\"><script>").is_err());
    }
}
