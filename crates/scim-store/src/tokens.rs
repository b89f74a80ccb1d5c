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

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use rand::TryRngCore;
use scim_proto::ids::TenantId;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::error::{StoreError, from_sdk};

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
/// Bound on cached tenants (tokens naming unknown tenants are cached too).
const MAX_CACHE_ENTRIES: usize = 10_000;
/// Secret reads for tenants this instance has never seen: a burst of this
/// many, then [`UNSEEN_TENANT_REFILL`] apart. Well-formed tokens naming
/// invented tenants would otherwise cost one Secrets Manager read each.
pub const UNSEEN_TENANT_BURST: u32 = 10;
pub const UNSEEN_TENANT_REFILL: Duration = Duration::from_millis(500);
const AWSCURRENT: &str = "AWSCURRENT";
/// The stage a rotation writes its new version under before it moves
/// `AWSCURRENT` onto it (compare-and-swap, see [`TokenStore::rotate`]).
const PENDING_STAGE: &str = "SCIMSYNC_PENDING";
/// How often a rotation that lost a race with another writer re-reads and
/// tries again.
const ROTATE_ATTEMPTS: u32 = 5;

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
        Self::parse(text).map_err(StoreError::Internal)
    }

    fn parse(text: &str) -> Result<Self, String> {
        let doc: Self = serde_json::from_str(text)
            .map_err(|e| format!("token secret is not valid JSON: {e}"))?;
        if doc.version != DOCUMENT_VERSION {
            return Err(format!(
                "token secret has unsupported version {}",
                doc.version
            ));
        }
        doc.decode_digests()?;
        Ok(doc)
    }

    pub fn to_json(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(StoreError::internal)
    }

    /// The stored digests, decoded.
    pub fn digests(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        self.decode_digests().map_err(StoreError::Internal)
    }

    fn decode_digests(&self) -> Result<Vec<[u8; 32]>, String> {
        self.tokens
            .iter()
            .map(|t| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&t.sha256, &mut digest)
                    .map_err(|e| format!("token {} has a malformed sha256: {e}", t.id))?;
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

/// [`TokenStore`] on Secrets Manager: one secret `<prefix><tenant>` per tenant.
#[derive(Clone)]
pub struct SecretsManagerTokenStore {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
    cache: Arc<Mutex<DigestCache>>,
}

impl fmt::Debug for SecretsManagerTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManagerTokenStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl SecretsManagerTokenStore {
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            cache: Arc::default(),
        }
    }

    /// The secret holding `tenant`'s digests.
    pub fn secret_name(&self, tenant: &TenantId) -> String {
        format!("{}{tenant}", self.prefix)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, DigestCache> {
        // Every critical section leaves the map consistent, so a poisoned lock
        // (a panic elsewhere while holding it) is safe to keep using.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the tenant's document; `None` when the tenant has no usable
    /// secret (never created, or scheduled for deletion).
    async fn fetch(&self, tenant: &TenantId) -> Result<Option<TokenDocument>, StoreError> {
        Ok(self.fetch_current(tenant).await?.map(|c| c.doc))
    }

    /// [`fetch`](Self::fetch), with the id of the version that was current.
    async fn fetch_current(&self, tenant: &TenantId) -> Result<Option<Current>, StoreError> {
        let name = self.secret_name(tenant);
        tracing::debug!(secret = %name, "reading token digests");
        let result = self
            .client
            .get_secret_value()
            .secret_id(&name)
            .version_stage(AWSCURRENT)
            .send()
            .await;
        match result {
            Ok(out) => {
                let text = out.secret_string().ok_or_else(|| {
                    StoreError::Internal(format!("secret {name} has no string value"))
                })?;
                let version_id = out
                    .version_id()
                    .ok_or_else(|| {
                        StoreError::Internal(format!("secret {name} has no version id"))
                    })?
                    .to_owned();
                let doc = TokenDocument::parse(text)
                    .map_err(|e| StoreError::Internal(format!("secret {name}: {e}")))?;
                Ok(Some(Current { doc, version_id }))
            }
            Err(err) => match err.as_service_error() {
                Some(se) if se.is_resource_not_found_exception() => Ok(None),
                // The secret is scheduled for deletion: the tenant is being
                // offboarded, so none of its tokens are valid.
                Some(se) if se.is_invalid_request_exception() => {
                    tracing::warn!(secret = %name, error = %DisplayErrorContext(&err),
                        "token secret is unreadable (scheduled for deletion?); treating tenant as inactive");
                    Ok(None)
                }
                _ => Err(sm_error(err)),
            },
        }
    }

    /// Creates the tenant's secret with `doc`, or replaces its value.
    async fn create_or_put(
        &self,
        tenant: &TenantId,
        doc: &TokenDocument,
    ) -> Result<(), StoreError> {
        let name = self.secret_name(tenant);
        let body = doc.to_json()?;
        let created = self
            .client
            .create_secret()
            .name(&name)
            .description(format!("scimsync API token digests for tenant {tenant}"))
            .secret_string(&body)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(CreateSecretError::is_resource_exists_exception) =>
            {
                self.client
                    .put_secret_value()
                    .secret_id(&name)
                    .secret_string(body)
                    .send()
                    .await
                    .map_err(sm_error)?;
                Ok(())
            }
            Err(err) => Err(sm_error(err)),
        }
    }

    /// Compare-and-swap: stores `doc` as a new version and makes it current
    /// only if `expected` is still the current version. Secrets Manager has
    /// no conditional put, but moving `AWSCURRENT` with `RemoveFromVersionId`
    /// fails when the label has meanwhile moved to another version (an
    /// `activate`, a `revoke` or another rotation). `Ok(false)`: lost the
    /// race; the written version keeps only the pending stage, is never read,
    /// and is replaced by the next pending write.
    async fn swap(
        &self,
        tenant: &TenantId,
        expected: &str,
        version: &str,
        doc: &TokenDocument,
    ) -> Result<bool, TokenError> {
        let name = self.secret_name(tenant);
        let put = self
            .client
            .put_secret_value()
            .secret_id(&name)
            .client_request_token(version)
            .secret_string(doc.to_json()?)
            .version_stages(PENDING_STAGE)
            .send()
            .await;
        match put {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(PutSecretValueError::is_resource_not_found_exception) =>
            {
                return Err(TokenError::NotActive);
            }
            Err(err) => return Err(sm_error(err).into()),
        }
        let moved = self
            .client
            .update_secret_version_stage()
            .secret_id(&name)
            .version_stage(AWSCURRENT)
            .remove_from_version_id(expected)
            .move_to_version_id(version)
            .send()
            .await;
        match moved {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(se) if se.is_invalid_parameter_exception() => {
                    tracing::info!(%tenant, error = %DisplayErrorContext(&err),
                        "token secret changed during rotation; reading it again");
                    Ok(false)
                }
                Some(se) if se.is_resource_not_found_exception() => Err(TokenError::NotActive),
                _ => Err(sm_error(err).into()),
            },
        }
    }

    fn remember(&self, tenant: &TenantId, doc: Option<&TokenDocument>) -> Result<(), StoreError> {
        let digests = match doc {
            Some(doc) => doc.digests()?,
            None => Vec::new(),
        };
        self.cache().insert(tenant, digests, Instant::now());
        Ok(())
    }
}

#[async_trait]
impl TokenStore for SecretsManagerTokenStore {
    async fn verify(&self, token: &ApiToken) -> Result<Option<TenantId>, StoreError> {
        let Some(tenant) = token.tenant() else {
            return Ok(None);
        };
        let digest = token.digest();
        let now = Instant::now();
        // Bound first: the cache's guard must not live through the match.
        let lookup = self.cache().lookup(&tenant, &digest, now);
        match lookup {
            Lookup::Valid => return Ok(Some(tenant)),
            Lookup::Invalid => return Ok(None),
            Lookup::Fetch => {}
            Lookup::FetchUnseen => {
                if !self.cache().take_unseen(now) {
                    tracing::warn!(%tenant, "too many tokens naming tenants not seen yet; not reading the secret");
                    return Err(StoreError::Unavailable(
                        "too many token checks for tenants not seen yet".to_owned(),
                    ));
                }
            }
        }
        let doc = self.fetch(&tenant).await?;
        let digests = match &doc {
            Some(doc) => doc.digests()?,
            None => Vec::new(),
        };
        let valid = matches_any(&digests, &digest);
        self.cache().insert(&tenant, digests, Instant::now());
        Ok(valid.then_some(tenant))
    }

    async fn activate(
        &self,
        tenant: &TenantId,
        token: Option<ApiToken>,
    ) -> Result<ApiToken, TokenError> {
        let token = match token {
            Some(token) => match token.tenant() {
                Some(t) if &t == tenant => token,
                Some(_) => return Err(TokenError::WrongTenant),
                None => return Err(TokenError::Malformed),
            },
            None => ApiToken::generate(tenant),
        };
        let doc = TokenDocument::single(&token, OffsetDateTime::now_utc());
        self.create_or_put(tenant, &doc).await?;
        self.remember(tenant, Some(&doc))?;
        tracing::info!(%tenant, token_id = %token.id(), "tenant activated; earlier tokens revoked");
        Ok(token)
    }

    async fn rotate(&self, tenant: &TenantId) -> Result<ApiToken, TokenError> {
        // Read, add, compare-and-swap: a revocation that lands in between
        // makes the swap fail, and the next read sees it.
        for attempt in 1..=ROTATE_ATTEMPTS {
            let Some(Current {
                mut doc,
                version_id,
            }) = self.fetch_current(tenant).await?
            else {
                return Err(TokenError::NotActive);
            };
            if doc.tokens.is_empty() {
                // Revoked: only `activate` turns provisioning back on.
                return Err(TokenError::NotActive);
            }
            let token = ApiToken::generate(tenant);
            doc.add(&token, OffsetDateTime::now_utc());
            let version = uuid::Uuid::new_v4().to_string();
            let swapped = self.swap(tenant, &version_id, &version, &doc).await?
                // The move can succeed with its answer lost; the SDK's retry
                // is then refused. Ours being current means it succeeded.
                || self
                    .fetch_current(tenant)
                    .await?
                    .is_some_and(|now| now.version_id == version);
            if swapped {
                self.remember(tenant, Some(&doc))?;
                tracing::info!(%tenant, token_id = %token.id(), active = doc.tokens.len(), "token rotated");
                return Ok(token);
            }
            let pause = Duration::from_millis(50u64 << attempt.min(5));
            tokio::time::sleep(pause + Duration::from_millis(rand::random_range(0..50))).await;
        }
        Err(TokenError::Contended)
    }

    async fn revoke(&self, tenant: &TenantId) -> Result<usize, TokenError> {
        let Some(doc) = self.fetch(tenant).await? else {
            return Err(TokenError::NotActive);
        };
        // Unconditional, like `activate`: a revocation must win over any
        // rotation in flight (whose swap then fails).
        let empty = TokenDocument {
            version: DOCUMENT_VERSION,
            tokens: Vec::new(),
        };
        let put = self
            .client
            .put_secret_value()
            .secret_id(self.secret_name(tenant))
            .secret_string(empty.to_json()?)
            .send()
            .await;
        match put {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(PutSecretValueError::is_resource_not_found_exception) =>
            {
                return Err(TokenError::NotActive);
            }
            Err(err) => return Err(sm_error(err).into()),
        }
        self.remember(tenant, Some(&empty))?;
        tracing::info!(%tenant, revoked = doc.tokens.len(), "every token of the tenant revoked");
        Ok(doc.tokens.len())
    }

    async fn status(&self, tenant: &TenantId) -> Result<Option<TenantTokens>, StoreError> {
        let doc = self.fetch(tenant).await?;
        self.remember(tenant, doc.as_ref())?;
        Ok(doc.map(|doc| TenantTokens {
            tenant: tenant.clone(),
            tokens: doc
                .tokens
                .into_iter()
                .map(|t| TokenInfo {
                    id: t.id,
                    created: t.created,
                })
                .collect(),
        }))
    }
}

/// Classifies a Secrets Manager error; its transient service error is named
/// differently from DynamoDB's.
fn sm_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: fmt::Debug,
{
    if let SdkError::ServiceError(se) = &err
        && se.err().code() == Some("InternalServiceError")
    {
        return StoreError::Unavailable(DisplayErrorContext(&err).to_string());
    }
    from_sdk(err)
}

/// Compares `digest` with every stored digest, without stopping early.
fn matches_any(stored: &[[u8; 32]], digest: &[u8; 32]) -> bool {
    let mut found = Choice::from(0);
    for candidate in stored {
        found |= candidate.as_slice().ct_eq(digest.as_slice());
    }
    found.into()
}

/// A tenant's document and the id of the secret version it was read from.
#[derive(Debug)]
struct Current {
    doc: TokenDocument,
    version_id: String,
}

#[derive(Debug)]
struct CacheEntry {
    /// Empty when the tenant has no secret (negative cache).
    digests: Vec<[u8; 32]>,
    fetched_at: Instant,
}

/// Per-tenant digest lists with their read times, and the budget of reads
/// for tenants not seen yet. Pure: the caller supplies the clock, holds the
/// lock only around a call, and does the I/O.
#[derive(Debug)]
struct DigestCache {
    entries: HashMap<TenantId, CacheEntry>,
    /// Reads left for tenants without an entry; refilled one per
    /// [`UNSEEN_TENANT_REFILL`] since `refilled_at`, up to the burst.
    unseen_budget: u32,
    refilled_at: Option<Instant>,
}

impl Default for DigestCache {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            unseen_budget: UNSEEN_TENANT_BURST,
            refilled_at: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// A fresh entry holds the digest.
    Valid,
    /// The digest is not in an entry read less than [`REFETCH_INTERVAL`] ago.
    Invalid,
    /// A stale entry, or a mismatch against an entry old enough to read again.
    Fetch,
    /// No entry at all: read only within the budget for unseen tenants.
    FetchUnseen,
}

impl DigestCache {
    fn lookup(&self, tenant: &TenantId, digest: &[u8; 32], now: Instant) -> Lookup {
        let Some(entry) = self.entries.get(tenant) else {
            return Lookup::FetchUnseen;
        };
        let age = now.saturating_duration_since(entry.fetched_at);
        if age >= CACHE_TTL {
            Lookup::Fetch
        } else if matches_any(&entry.digests, digest) {
            Lookup::Valid
        } else if age < REFETCH_INTERVAL {
            Lookup::Invalid
        } else {
            Lookup::Fetch
        }
    }

    /// Takes one read from the budget for unseen tenants; `false` when it is
    /// spent.
    fn take_unseen(&mut self, now: Instant) -> bool {
        let since = *self.refilled_at.get_or_insert(now);
        let periods = now.saturating_duration_since(since).as_nanos()
            / UNSEEN_TENANT_REFILL.as_nanos().max(1);
        match u32::try_from(periods) {
            Ok(0) => {}
            Ok(n) if n < UNSEEN_TENANT_BURST => {
                self.unseen_budget = (self.unseen_budget + n).min(UNSEEN_TENANT_BURST);
                self.refilled_at = Some(since + UNSEEN_TENANT_REFILL * n);
            }
            _ => {
                self.unseen_budget = UNSEEN_TENANT_BURST;
                self.refilled_at = Some(now);
            }
        }
        if self.unseen_budget == 0 {
            return false;
        }
        self.unseen_budget -= 1;
        true
    }

    fn insert(&mut self, tenant: &TenantId, digests: Vec<[u8; 32]>, now: Instant) {
        if self.entries.len() >= MAX_CACHE_ENTRIES && !self.entries.contains_key(tenant) {
            self.entries
                .retain(|_, e| now.saturating_duration_since(e.fetched_at) < CACHE_TTL);
            if self.entries.len() >= MAX_CACHE_ENTRIES {
                // Mostly tokens naming tenants that do not exist: drop those first.
                self.entries.retain(|_, e| !e.digests.is_empty());
            }
            if self.entries.len() >= MAX_CACHE_ENTRIES {
                self.entries.clear();
            }
        }
        self.entries.insert(
            tenant.clone(),
            CacheEntry {
                digests,
                fetched_at: now,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn malformed_tokens_are_rejected_without_calling_aws() {
        // A client whose endpoint refuses connections: any call would be Err.
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
        let store = SecretsManagerTokenStore::new(
            aws_sdk_secretsmanager::Client::from_conf(config),
            "scimsync/test/",
        );
        let verdict = store.verify(&token("Bearer nonsense")).await.unwrap();
        assert_eq!(verdict, None);
        assert!(format!("{store:?}").contains("scimsync/test/"));
    }

    #[tokio::test]
    async fn activate_rejects_tokens_of_other_tenants_before_any_write() {
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
        let store = SecretsManagerTokenStore::new(
            aws_sdk_secretsmanager::Client::from_conf(config),
            "scimsync/test/",
        );
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
