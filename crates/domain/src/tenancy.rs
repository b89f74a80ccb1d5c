//! Tenant operations: activate provisioning (a token, and the tenant
//! registered for the daily sync), generate an additional token, revoke all,
//! status, and resolving a request's token to its tenant.

use std::sync::Arc;

use scim_proto::ids::TenantId;
use scim_proto::provider::Provider;
use scim_store::StoreError;
use scim_store::calls::{DirectoryStats, ProviderCall};
use scim_store::sync_state::SyncStateStore;
use scim_store::tokens::{ApiToken, TokenError, TokenInfo, TokenStore};

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
    /// When the identity provider last called, and which one (recorded at
    /// most once per [`CALL_RECORD_INTERVAL`] per function instance).
    pub last_call: Option<ProviderCall>,
}

/// How often one function instance records a tenant's latest call: the
/// page's "last called" costs one write per tenant per instance per
/// interval, not one per request.
pub const CALL_RECORD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// The tenants' provisioning switch and API tokens.
#[derive(Debug, Clone)]
pub struct Tenants {
    tokens: Arc<dyn TokenStore>,
    registry: Option<Arc<dyn SyncStateStore>>,
    stats: Arc<dyn DirectoryStats>,
}

impl Tenants {
    pub fn new(
        tokens: Arc<dyn TokenStore>,
        registry: Option<Arc<dyn SyncStateStore>>,
        stats: Arc<dyn DirectoryStats>,
    ) -> Self {
        Self {
            tokens,
            registry,
            stats,
        }
    }

    /// The tenant a request's bearer token authenticates, if any.
    pub async fn authenticate(&self, token: &ApiToken) -> Result<Option<TenantId>, StoreError> {
        self.tokens.verify(token).await
    }

    /// Notes that the tenant's identity provider called just now.
    pub async fn record_call(
        &self,
        tenant: &TenantId,
        provider: Provider,
    ) -> Result<(), StoreError> {
        let call = ProviderCall {
            at: scim_proto::resource::format_time(time::OffsetDateTime::now_utc()),
            provider,
        };
        self.stats.record_call(tenant, &call).await
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
        let summary = self.stats.summary(tenant).await?;
        Ok(TenantStatus {
            tenant: tenant.clone(),
            active: !tokens.is_empty(),
            tokens,
            users: summary.users,
            groups: summary.groups,
            last_call: summary.last_call,
        })
    }
}
