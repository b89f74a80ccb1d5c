//! Tenant operations: activate provisioning (a token, and the tenant
//! registered for the daily sync), generate an additional token, revoke all,
//! status, and resolving a request's token to its tenant.

use std::sync::Arc;

use scim_proto::ids::TenantId;
use scim_store::StoreError;
use scim_store::sync_state::SyncStateStore;
use scim_store::tokens::{ApiToken, TokenError, TokenInfo, TokenStore};

use crate::Directory;

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Activation registers the tenant in the Members table's registry.
    #[error("the Members table is not configured (MEMBERS_TABLE)")]
    NoRegistry,
}

/// Where a tenant's provisioning stands.
#[derive(Debug, Clone)]
pub struct TenantStatus {
    pub tenant: TenantId,
    /// Some token is valid (a revoked tenant keeps its secret, empty).
    pub active: bool,
    pub tokens: Vec<TokenInfo>,
    /// Provisioned users and groups in the directory.
    pub users: usize,
    pub groups: usize,
}

/// The tenants' provisioning switch and API tokens.
#[derive(Debug, Clone)]
pub struct Tenants {
    tokens: Arc<dyn TokenStore>,
    registry: Option<Arc<dyn SyncStateStore>>,
    directory: Directory,
}

impl Tenants {
    pub fn new(
        tokens: Arc<dyn TokenStore>,
        registry: Option<Arc<dyn SyncStateStore>>,
        directory: Directory,
    ) -> Self {
        Self {
            tokens,
            registry,
            directory,
        }
    }

    /// The tenant a request's bearer token authenticates, if any.
    pub async fn authenticate(&self, token: &ApiToken) -> Result<Option<TenantId>, StoreError> {
        self.tokens.verify(token).await
    }

    /// Turns provisioning on: `chosen` (or a fresh token) becomes the only
    /// valid token, and the tenant joins the daily sync. Returns the token,
    /// to be shown once.
    pub async fn activate(
        &self,
        tenant: &TenantId,
        chosen: Option<ApiToken>,
    ) -> Result<ApiToken, TenancyError> {
        let registry = self.registry.as_ref().ok_or(TenancyError::NoRegistry)?;
        let token = self.tokens.activate(tenant, chosen).await?;
        registry.register_tenant(tenant).await?;
        tracing::info!(%tenant, "provisioning activated");
        Ok(token)
    }

    /// An additional token; the existing ones stay valid (overlap for a
    /// change of token in the identity provider).
    pub async fn rotate(&self, tenant: &TenantId) -> Result<ApiToken, TenancyError> {
        let token = self.tokens.rotate(tenant).await?;
        tracing::info!(%tenant, "additional token generated");
        Ok(token)
    }

    /// Revokes every token: provisioning stops until the next activation.
    /// Returns how many tokens were valid.
    pub async fn revoke(&self, tenant: &TenantId) -> Result<usize, TenancyError> {
        let revoked = self.tokens.revoke(tenant).await?;
        tracing::info!(%tenant, revoked, "tokens revoked");
        Ok(revoked)
    }

    pub async fn status(&self, tenant: &TenantId) -> Result<TenantStatus, StoreError> {
        let tokens = self
            .tokens
            .status(tenant)
            .await?
            .map(|s| s.tokens)
            .unwrap_or_default();
        Ok(TenantStatus {
            tenant: tenant.clone(),
            active: !tokens.is_empty(),
            tokens,
            users: self.directory.users.count(tenant).await?,
            groups: self.directory.groups.count(tenant).await?,
        })
    }
}
