//! [`SecretsManagerTokenStore`]: the tenants' token digests in Secrets
//! Manager, one secret per tenant. Reads go through the digest cache;
//! rotation is a compare-and-swap on the `AWSCURRENT` stage.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use scim_proto::ids::TenantId;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::cache::{DigestCache, Lookup};
use super::{
    ApiToken, DOCUMENT_VERSION, TenantTokens, TokenDocument, TokenError, TokenInfo, TokenStore,
    matches_any,
};
use crate::error::{Cause, StoreError, from_sdk, operation};

const AWSCURRENT: &str = "AWSCURRENT";
/// The stage a rotation writes its new version under before it moves
/// `AWSCURRENT` onto it (compare-and-swap, see [`TokenStore::rotate`]).
const PENDING_STAGE: &str = "SCIMSYNC_PENDING";
/// How often a rotation that lost a race with another writer re-reads and
/// tries again.
const ROTATE_ATTEMPTS: u32 = 5;

/// [`TokenStore`] on Secrets Manager: one secret `<prefix><tenant>` per tenant.
#[derive(Clone)]
pub struct SecretsManagerTokenStore {
    client: crate::lazy::SecretsManager,
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
    pub fn new(client: impl Into<crate::lazy::SecretsManager>, prefix: impl Into<String>) -> Self {
        Self {
            client: client.into(),
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
                    StoreError::Internal(format!("secret {name} has no string value").into())
                })?;
                let version_id = out
                    .version_id()
                    .ok_or_else(|| {
                        StoreError::Internal(format!("secret {name} has no version id").into())
                    })?
                    .to_owned();
                let doc = TokenDocument::from_json(text)
                    .map_err(|e| StoreError::internal(format!("reading secret {name}"), e))?;
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

    /// Stores `doc` as a new version of the tenant's existing secret: the
    /// current one, or with `pending` (a version id) one under the pending
    /// stage only. `NotActive` when the secret is gone.
    async fn put_existing(
        &self,
        tenant: &TenantId,
        doc: &TokenDocument,
        pending: Option<&str>,
    ) -> Result<(), TokenError> {
        let put = self
            .client
            .put_secret_value()
            .secret_id(self.secret_name(tenant))
            .secret_string(doc.to_json()?);
        let put = match pending {
            Some(version) => put
                .client_request_token(version)
                .version_stages(PENDING_STAGE),
            None => put,
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(PutSecretValueError::is_resource_not_found_exception) =>
            {
                Err(TokenError::NotActive)
            }
            Err(err) => Err(sm_error(err).into()),
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
        self.put_existing(tenant, doc, Some(version)).await?;
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
                        "too many token checks for tenants not seen yet".into(),
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
        self.put_existing(tenant, &empty, None).await?;
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
pub(crate) fn sm_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    if let SdkError::ServiceError(se) = &err
        && se.err().code() == Some("InternalServiceError")
    {
        return StoreError::Unavailable(Cause::with_source(operation::<E>(), err));
    }
    from_sdk(err)
}

/// A tenant's document and the id of the secret version it was read from.
#[derive(Debug)]
struct Current {
    doc: TokenDocument,
    version_id: String,
}
