//! API tokens: minting, activation, rotation and verification.
//!
//! A token is shown once, when it is minted. Secrets Manager keeps, per tenant,
//! only SHA-256 digests of the tenant's active tokens, in a small JSON document
//! ([`TokenDocument`]) so that several tokens can be valid at once while a
//! client rotates. A token names its tenant (`scimsync_<tenant>_<64 hex>`), so
//! verifying one is a (cached) read of that tenant's secret and a constant-time
//! comparison of digests.
//!
//! Tokens are wrapped in [`ApiToken`], whose `Debug` never shows the value; the
//! only way to the text is [`ApiToken::expose`].
//!
//! This module owns the token format, the secret document and the
//! [`TokenStore`] capability (they change with what a token is); its
//! children own the implementation:
//! - `secrets`: [`SecretsManagerTokenStore`], the reads and the
//!   compare-and-swap writes of the tenants' secrets (changes with how
//!   Secrets Manager is used).
//! - `cache`: the per-instance digest cache and the budget of reads for
//!   unseen tenants (changes with the verification cost rules).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use rand::TryRngCore;
use scim_proto::ids::TenantId;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use time::OffsetDateTime;

use crate::error::StoreError;

mod cache;
pub(crate) mod secrets;

pub use secrets::SecretsManagerTokenStore;

/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "scimsync_";
/// Random bytes in a token (hex-encoded: 64 characters).
const TOKEN_RANDOM_BYTES: usize = 32;
const TOKEN_HEX_LEN: usize = TOKEN_RANDOM_BYTES * 2;
/// Most tokens a tenant can hold at once; rotation drops the oldest beyond it.
pub const MAX_TOKENS: usize = 5;
/// The secret document's format version.
pub const DOCUMENT_VERSION: u32 = 1;
/// How long a cached digest list is trusted. Bounds how long a revoked token
/// keeps working on a warm instance: a revocation takes effect everywhere
/// within this time. Costs at most one secret read per tenant per warm
/// instance per interval, and only while that tenant sends requests.
pub const CACHE_TTL: Duration = Duration::from_secs(15);
/// On a token that matches nothing cached, the secret is read again at most
/// this often per tenant: wrong tokens cannot turn every request into a
/// Secrets Manager call, and a just-rotated token works within this delay.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Secret reads for tenants this instance has never seen: a burst of this
/// many, then [`UNSEEN_TENANT_REFILL`] apart. Well-formed tokens naming
/// invented tenants would otherwise cost one Secrets Manager read each.
pub const UNSEEN_TENANT_BURST: u32 = 10;
pub const UNSEEN_TENANT_REFILL: Duration = Duration::from_millis(500);

/// A bearer token. `Debug` is redacted; use [`ApiToken::expose`] only to show
/// a freshly minted token to the operator once.
#[derive(Clone)]
pub struct ApiToken(SecretString);

impl ApiToken {
    /// Mints a new token for `tenant` from the operating system's CSPRNG.
    ///
    /// Panics only if the OS random source fails, which on Linux means the
    /// `getrandom` syscall is unavailable: nothing sensible can be minted then.
    pub fn generate(tenant: &TenantId) -> Self {
        let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
        let mut rng = rand::rngs::OsRng.unwrap_err();
        rand::RngCore::fill_bytes(&mut rng, &mut bytes);
        let token = format!("{TOKEN_PREFIX}{tenant}_{}", hex::encode(bytes));
        Self(SecretString::from(token))
    }

    /// Wraps a token received from a client or from the environment. It is not
    /// validated here: a malformed token simply has no [`tenant`](Self::tenant).
    pub fn from_secret(secret: SecretString) -> Self {
        Self(secret)
    }

    /// The tenant the token claims to belong to, or `None` when the token is
    /// not of the form `scimsync_<tenant>_<64 lowercase hex>`.
    pub fn tenant(&self) -> Option<TenantId> {
        let rest = self.0.expose_secret().strip_prefix(TOKEN_PREFIX)?;
        let (tenant, random) = rest.rsplit_once('_')?;
        let hex_ok = random.len() == TOKEN_HEX_LEN
            && random
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_ok {
            return None;
        }
        TenantId::parse(tenant).ok()
    }

    /// SHA-256 of the whole token text: what the secret stores.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.expose_secret().as_bytes()).into()
    }

    /// A short public handle for the token (first 8 hex digits of its digest),
    /// safe to log and to show in status listings.
    pub fn id(&self) -> String {
        token_id(&self.digest())
    }

    /// The token text, for showing it once to whoever activated it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

fn token_id(digest: &[u8; 32]) -> String {
    hex::encode(&digest[..4])
}

/// The JSON value of a tenant's secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenDocument {
    pub version: u32,
    pub tokens: Vec<TokenRecord>,
}

/// One active token, by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// First 8 hex digits of the digest.
    pub id: String,
    /// Lowercase hex SHA-256 of the token text.
    pub sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

impl TokenRecord {
    pub fn new(token: &ApiToken, created: OffsetDateTime) -> Self {
        let digest = token.digest();
        Self {
            id: token_id(&digest),
            sha256: hex::encode(digest),
            created,
        }
    }
}

impl TokenDocument {
    /// A document holding only `token`.
    pub fn single(token: &ApiToken, created: OffsetDateTime) -> Self {
        Self {
            version: DOCUMENT_VERSION,
            tokens: vec![TokenRecord::new(token, created)],
        }
    }

    /// Parses and checks a secret's value.
    pub fn from_json(text: &str) -> Result<Self, StoreError> {
        let doc: Self = serde_json::from_str(text)
            .map_err(|e| StoreError::internal("token secret is not valid JSON", e))?;
        if doc.version != DOCUMENT_VERSION {
            return Err(StoreError::Internal(
                format!("token secret has unsupported version {}", doc.version).into(),
            ));
        }
        doc.digests()?;
        Ok(doc)
    }

    pub fn to_json(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(|e| StoreError::internal("serializing an item", e))
    }

    /// The stored digests, decoded.
    pub fn digests(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        self.tokens
            .iter()
            .map(|t| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&t.sha256, &mut digest).map_err(|e| {
                    StoreError::internal(format!("token {} has a malformed sha256", t.id), e)
                })?;
                Ok(digest)
            })
            .collect()
    }

    /// Adds `token`, then drops the oldest records beyond [`MAX_TOKENS`].
    pub fn add(&mut self, token: &ApiToken, created: OffsetDateTime) {
        self.tokens.push(TokenRecord::new(token, created));
        // Stable: records with equal times keep their order (oldest first).
        self.tokens.sort_by_key(|t| t.created);
        let excess = self.tokens.len().saturating_sub(MAX_TOKENS);
        self.tokens.drain(..excess);
    }
}

/// What [`TokenStore::status`] reports: ids and creation times, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantTokens {
    pub tenant: TenantId,
    pub tokens: Vec<TokenInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub created: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token given to `activate` belongs to another tenant.
    #[error("the token belongs to another tenant")]
    WrongTenant,
    /// The token given to `activate` is not of the form `scimsync_<tenant>_<64 hex>`.
    #[error("the token is not a scimsync token (scimsync_<tenant>_<64 lowercase hex>)")]
    Malformed,
    /// `rotate` or `revoke` on a tenant that was never activated, whose
    /// secret is gone, or (for `rotate`) whose tokens were all revoked.
    #[error("the tenant has no active token; activate it first")]
    NotActive,
    /// `rotate` kept losing the race against other writers of the secret.
    #[error("the tenant's tokens are being changed by someone else; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Token storage as the HTTP layer and the admin CLI see it.
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The tenant `token` authenticates, or `Ok(None)` when it authenticates
    /// nobody (malformed, unknown tenant, revoked). `Err` only when storage
    /// could not be asked.
    async fn verify(&self, token: &ApiToken) -> Result<Option<TenantId>, StoreError>;

    /// Makes `token` (or a freshly minted one) the tenant's only valid token,
    /// creating the tenant's secret if needed: re-activation revokes all
    /// earlier tokens. Returns the token, to be shown once.
    async fn activate(
        &self,
        tenant: &TenantId,
        token: Option<ApiToken>,
    ) -> Result<ApiToken, TokenError>;

    /// Mints an additional token, keeping the existing ones (at most
    /// [`MAX_TOKENS`], oldest dropped). Fails with [`TokenError::NotActive`]
    /// when the tenant has no active token. Never brings back a token that a
    /// concurrent [`activate`](Self::activate) or [`revoke`](Self::revoke)
    /// removed.
    async fn rotate(&self, tenant: &TenantId) -> Result<ApiToken, TokenError>;

    /// Revokes every token of the tenant (provisioning stops until the next
    /// `activate`). Returns how many tokens were active. Takes effect on every
    /// instance within [`CACHE_TTL`].
    async fn revoke(&self, tenant: &TenantId) -> Result<usize, TokenError>;

    /// The tenant's active tokens, or `None` when it was never activated.
    async fn status(&self, tenant: &TenantId) -> Result<Option<TenantTokens>, StoreError>;
}

/// Compares `digest` with every stored digest, without stopping early.
pub(crate) fn matches_any(stored: &[[u8; 32]], digest: &[u8; 32]) -> bool {
    let mut found = Choice::from(0);
    for candidate in stored {
        found |= candidate.as_slice().ct_eq(digest.as_slice());
    }
    found.into()
}

#[cfg(test)]
mod tests {
    use super::cache::{DigestCache, Lookup, MAX_CACHE_ENTRIES};
    use super::*;
    use tokio::time::Instant;

    fn tenant(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    fn token(s: &str) -> ApiToken {
        ApiToken::from_secret(SecretString::from(s))
    }

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn generated_tokens_have_the_documented_format_and_name_their_tenant() {
        let t = tenant("acme-42");
        let a = ApiToken::generate(&t);
        let b = ApiToken::generate(&t);
        let text = a.expose();
        let random = text.strip_prefix("scimsync_acme-42_").unwrap();
        assert_eq!(random.len(), 64);
        assert!(
            random
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_eq!(a.tenant(), Some(t.clone()));
        assert_ne!(a.expose(), b.expose());
        // Round trip through the text, as a client sends it back.
        let back = token(a.expose());
        assert_eq!(back.tenant(), Some(t));
        assert_eq!(back.digest(), a.digest());
    }

    #[test]
    fn tenant_extraction_rejects_malformed_tokens() {
        assert_eq!(
            token(&format!("scimsync_acme_{HEX}")).tenant(),
            Some(tenant("acme"))
        );
        let upper = HEX.to_uppercase();
        let with_underscore = format!("{}_{}", &HEX[..30], &HEX[31..]);
        let bad = [
            String::new(),
            format!("acme_{HEX}"),                   // no prefix
            format!("scimsinc_acme_{HEX}"),          // wrong prefix
            format!("Scimsync_acme_{HEX}"),          // prefix is case-sensitive
            format!("scimsync_acme_{}", &HEX[..63]), // short hex
            format!("scimsync_acme_{HEX}0"),         // long hex
            format!("scimsync_acme_{upper}"),        // uppercase hex
            format!("scimsync_acme_{with_underscore}"),
            format!("scimsync_acme_{}g", &HEX[..63]), // not hex
            format!("scimsync__{HEX}"),               // empty tenant
            format!("scimsync_Acme_{HEX}"),           // invalid tenant
            format!("scimsync_-acme_{HEX}"),
            format!("scimsync_ac_me_{HEX}"),
            format!("scimsync_{HEX}"),
            format!("scimsync_acme_{HEX} "),
            format!("scimsync_acme_{HEX}\n"),
            format!(" scimsync_acme_{HEX}"),
        ];
        for b in &bad {
            assert_eq!(token(b).tenant(), None, "{b:?} accepted");
        }
    }

    #[test]
    fn digest_is_sha256_of_the_whole_token() {
        let t = token(&format!("scimsync_acme_{HEX}"));
        assert_eq!(t.digest(), token(t.expose()).digest());
        // Independently computed: printf %s 'scimsync_acme_<HEX>' | sha256sum
        assert_eq!(
            hex::encode(t.digest()),
            hex::encode(Sha256::digest(format!("scimsync_acme_{HEX}")))
        );
        assert_eq!(hex::encode(t.digest()), KNOWN_DIGEST);
        assert_eq!(t.id(), &KNOWN_DIGEST[..8]);
        assert_ne!(t.digest(), token(&format!("scimsync_acmf_{HEX}")).digest());
    }
    const KNOWN_DIGEST: &str = "467021ee3b9136d7dc3b96510b302b8af4fdb7c276b38f0c3e7325a5285097dd";

    #[test]
    fn debug_never_shows_the_token() {
        let t = ApiToken::generate(&tenant("acme"));
        let random = &t.expose()["scimsync_acme_".len()..];
        let shown = format!("{t:?} {:?} {:#?}", Some(&t), vec![t.clone()]);
        assert!(!shown.contains(random), "{shown}");
        assert!(!shown.contains("scimsync_"), "{shown}");
        assert_eq!(format!("{t:?}"), "ApiToken(<redacted>)");
    }

    #[test]
    fn document_serde_matches_the_documented_shape() {
        let t = token(&format!("scimsync_acme_{HEX}"));
        let created = time::macros::datetime!(2025-03-01 12:00:00 UTC);
        let doc = TokenDocument::single(&t, created);
        let json: serde_json::Value = serde_json::from_str(&doc.to_json().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "version": 1,
                "tokens": [{
                    "id": &KNOWN_DIGEST[..8],
                    "sha256": KNOWN_DIGEST,
                    "created": "2025-03-01T12:00:00Z",
                }]
            })
        );
        let back = TokenDocument::from_json(&json.to_string()).unwrap();
        assert_eq!(back, doc);
        assert_eq!(back.digests().unwrap(), vec![t.digest()]);
    }

    #[test]
    fn documents_with_unknown_versions_or_bad_digests_are_rejected() {
        let created = "2025-03-01T12:00:00Z";
        for bad in [
            "not json".to_owned(),
            r#"{"version": 2, "tokens": []}"#.to_owned(),
            format!(
                r#"{{"version": 1, "tokens": [{{"id": "x", "sha256": "zz", "created": "{created}"}}]}}"#
            ),
            format!(
                r#"{{"version": 1, "tokens": [{{"id": "x", "sha256": "{}", "created": "{created}"}}]}}"#,
                &HEX[..62]
            ),
        ] {
            assert!(TokenDocument::from_json(&bad).is_err(), "{bad} accepted");
        }
        assert!(
            TokenDocument::from_json(r#"{"version": 1, "tokens": []}"#)
                .unwrap()
                .tokens
                .is_empty()
        );
    }

    #[test]
    fn adding_keeps_at_most_max_tokens_dropping_the_oldest() {
        let t = tenant("acme");
        let start = time::macros::datetime!(2025-03-01 12:00:00 UTC);
        let first = ApiToken::generate(&t);
        let mut doc = TokenDocument::single(&first, start);
        let mut minted = vec![first];
        for i in 1..=6 {
            let next = ApiToken::generate(&t);
            doc.add(&next, start + time::Duration::minutes(i));
            minted.push(next);
        }
        assert_eq!(doc.tokens.len(), MAX_TOKENS);
        let kept: Vec<_> = doc.tokens.iter().map(|r| r.id.clone()).collect();
        let expected: Vec<_> = minted[2..].iter().map(ApiToken::id).collect();
        assert_eq!(kept, expected);
    }

    #[test]
    fn constant_time_match_finds_any_stored_digest() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert!(matches_any(&[a, b], &b));
        assert!(matches_any(&[a, b], &a));
        assert!(!matches_any(&[a], &b));
        assert!(!matches_any(&[], &a));
    }

    #[test]
    fn cache_trusts_fresh_entries_and_rate_limits_refetches_on_mismatch() {
        let t = tenant("acme");
        let good = [1u8; 32];
        let wrong = [2u8; 32];
        let t0 = Instant::now();
        let mut cache = DigestCache::default();
        assert_eq!(cache.lookup(&t, &good, t0), Lookup::FetchUnseen);
        cache.insert(&t, vec![good], t0);

        assert_eq!(cache.lookup(&t, &good, t0), Lookup::Valid);
        assert_eq!(cache.lookup(&t, &wrong, t0), Lookup::Invalid);
        let soon = t0 + REFETCH_INTERVAL - Duration::from_millis(1);
        assert_eq!(cache.lookup(&t, &wrong, soon), Lookup::Invalid);
        let later = t0 + REFETCH_INTERVAL;
        assert_eq!(cache.lookup(&t, &wrong, later), Lookup::Fetch);
        let almost_stale = t0 + CACHE_TTL - Duration::from_millis(1);
        assert_eq!(cache.lookup(&t, &good, almost_stale), Lookup::Valid);
        assert_eq!(cache.lookup(&t, &good, t0 + CACHE_TTL), Lookup::Fetch);

        // Negative entries follow the same rules.
        let other = tenant("other");
        cache.insert(&other, Vec::new(), t0);
        assert_eq!(cache.lookup(&other, &good, soon), Lookup::Invalid);
        assert_eq!(cache.lookup(&other, &good, later), Lookup::Fetch);
    }

    #[test]
    fn a_revoked_token_stops_working_on_a_warm_instance_within_fifteen_seconds() {
        let t = tenant("acme");
        let leaked = [1u8; 32];
        let t0 = Instant::now();
        let mut cache = DigestCache::default();
        cache.insert(&t, vec![leaked], t0);
        // The revocation happened right after the read: the instance asks
        // Secrets Manager again no later than 15 s on.
        assert!(CACHE_TTL <= Duration::from_secs(15));
        assert_eq!(
            cache.lookup(&t, &leaked, t0 + Duration::from_secs(15)),
            Lookup::Fetch
        );
    }

    #[test]
    fn tokens_naming_unseen_tenants_get_a_bounded_number_of_secret_reads() {
        let t0 = Instant::now();
        let mut cache = DigestCache::default();
        for _ in 0..UNSEEN_TENANT_BURST {
            assert!(cache.take_unseen(t0));
        }
        assert!(!cache.take_unseen(t0), "the burst is spent");
        assert!(!cache.take_unseen(t0 + UNSEEN_TENANT_REFILL / 2));
        assert!(cache.take_unseen(t0 + UNSEEN_TENANT_REFILL));
        assert!(!cache.take_unseen(t0 + UNSEEN_TENANT_REFILL));
        // A long quiet spell refills the whole burst, no more.
        let later = t0 + UNSEEN_TENANT_REFILL * 1000;
        for _ in 0..UNSEEN_TENANT_BURST {
            assert!(cache.take_unseen(later));
        }
        assert!(!cache.take_unseen(later));
        // Known tenants are not limited by it.
        cache.insert(&tenant("acme"), vec![[1u8; 32]], later);
        assert_eq!(
            cache.lookup(&tenant("acme"), &[1u8; 32], later),
            Lookup::Valid
        );
    }

    #[test]
    fn cache_stays_bounded() {
        let t0 = Instant::now();
        let mut cache = DigestCache::default();
        for i in 0..MAX_CACHE_ENTRIES + 10 {
            cache.insert(&tenant(&format!("t{i}")), Vec::new(), t0);
        }
        assert!(cache.entries.len() <= MAX_CACHE_ENTRIES);
        assert!(
            cache
                .entries
                .contains_key(&tenant(&format!("t{}", MAX_CACHE_ENTRIES + 9)))
        );
    }

    /// A store whose endpoint refuses connections: any AWS call would be Err.
    fn unreachable_store() -> SecretsManagerTokenStore {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::from_static(
                "us-east-1",
            ))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "x", "x", None, None, "test",
            ))
            .build();
        SecretsManagerTokenStore::new(
            aws_sdk_secretsmanager::Client::from_conf(config),
            "scimsync/test/",
        )
    }

    #[tokio::test]
    async fn malformed_tokens_are_rejected_without_calling_aws() {
        let store = unreachable_store();
        let verdict = store.verify(&token("Bearer nonsense")).await.unwrap();
        assert_eq!(verdict, None);
        assert!(format!("{store:?}").contains("scimsync/test/"));
    }

    #[tokio::test]
    async fn activate_rejects_tokens_of_other_tenants_before_any_write() {
        let store = unreachable_store();
        let foreign = ApiToken::generate(&tenant("other"));
        let err = store
            .activate(&tenant("acme"), Some(foreign))
            .await
            .unwrap_err();
        assert!(matches!(err, TokenError::WrongTenant), "{err:?}");
        let err = store
            .activate(&tenant("acme"), Some(token("scimsync_acme_short")))
            .await
            .unwrap_err();
        assert!(matches!(err, TokenError::Malformed), "{err:?}");
    }
}
