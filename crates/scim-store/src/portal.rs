//! The User Provisioning page's storage: one-time portal links (items in the
//! Members table, expiring by TTL) and the key that signs portal sessions
//! (a Secrets Manager secret).
//!
//! A link's secret is never stored: its item is keyed by the SHA-256 of it,
//! so a read of the table cannot open the portal. Redeeming is one
//! conditional update (not used yet, not expired), so a link works once
//! however many requests race for it.

use std::fmt;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use rand::TryRngCore;
use scim_proto::ids::TenantId;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::StoreError;
use crate::dynamo::{get_opt_s, get_u64, key, n, pk, s};
use crate::error::from_sdk;
use crate::tokens::secrets::sm_error;

/// 32 bytes from the operating system's CSPRNG, as 64 hex digits: link
/// secrets, session nonces, a local session key.
pub fn random_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| StoreError::internal("generating a random secret", e))?;
    Ok(hex::encode(bytes))
}

/// What redeeming a link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The link was valid and is now used up.
    Opened { return_url: Option<String> },
    /// Opened before: a link works once.
    AlreadyUsed,
    /// Never opened, but past its expiry.
    Expired,
    /// No such link for this tenant.
    Unknown,
}

/// One-time portal links.
#[async_trait]
pub trait PortalLinkStore: Send + Sync + fmt::Debug {
    /// Records a link with secret `secret` valid until `expires` (seconds
    /// since the epoch).
    async fn put_link(
        &self,
        tenant: &TenantId,
        secret: &str,
        expires: i64,
        return_url: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Uses the link up if it is valid at `now` (seconds since the epoch).
    async fn redeem(
        &self,
        tenant: &TenantId,
        secret: &str,
        now: i64,
    ) -> Result<Redeemed, StoreError>;
}

/// Partition of a tenant's portal links.
const PORTAL: &str = "PORTAL";
/// Link items are kept a day past expiry (to say "expired" rather than
/// "unknown"), then DynamoDB's TTL removes them.
const KEEP_AFTER_EXPIRY: i64 = 86_400;

fn link_key(tenant: &TenantId, secret: &str) -> crate::dynamo::Item {
    let digest = hex::encode(Sha256::digest(secret.as_bytes()));
    key(pk(tenant, PORTAL), format!("LINK#{digest}"))
}

/// [`PortalLinkStore`] on the Members table.
#[derive(Clone)]
pub struct DynamoPortalLinks {
    client: crate::lazy::DynamoDb,
    table: String,
}

impl fmt::Debug for DynamoPortalLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DynamoPortalLinks({})", self.table)
    }
}

impl DynamoPortalLinks {
    pub fn new(client: impl Into<crate::lazy::DynamoDb>, table: &str) -> Self {
        Self {
            client: client.into(),
            table: table.to_owned(),
        }
    }
}

#[async_trait]
impl PortalLinkStore for DynamoPortalLinks {
    async fn put_link(
        &self,
        tenant: &TenantId,
        secret: &str,
        expires: i64,
        return_url: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut item = link_key(tenant, secret);
        item.insert("expires".into(), n(expires));
        item.insert("ttl".into(), n(expires + KEEP_AFTER_EXPIRY));
        if let Some(url) = return_url {
            item.insert("returnUrl".into(), s(url));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(())
    }

    async fn redeem(
        &self,
        tenant: &TenantId,
        secret: &str,
        now: i64,
    ) -> Result<Redeemed, StoreError> {
        let key = link_key(tenant, secret);
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .update_expression("SET used = :now")
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(used) AND expires > :now",
            )
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match crate::dynamo::conditional(updated)? {
            Some(out) => {
                let item = out.attributes.unwrap_or_default();
                Ok(Redeemed::Opened {
                    return_url: get_opt_s(&item, "returnUrl").map(str::to_owned),
                })
            }
            // Why it failed decides the page the admin sees.
            None => {
                let found = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(from_sdk)?
                    .item;
                Ok(match found {
                    None => Redeemed::Unknown,
                    Some(item) if item.contains_key("used") => Redeemed::AlreadyUsed,
                    Some(item) if get_u64(&item, "expires").is_ok() => Redeemed::Expired,
                    Some(_) => Redeemed::Unknown,
                })
            }
        }
    }
}

/// The key that signs portal session cookies and CSRF tokens.
#[async_trait]
pub trait SessionKeyStore: Send + Sync + fmt::Debug {
    /// The key (read once per process).
    async fn session_key(&self) -> Result<SecretSlice<u8>, StoreError>;
}

/// [`SessionKeyStore`] on a Secrets Manager secret. Deployed, the template
/// creates the secret with a generated value; locally (`create_if_missing`)
/// the first read creates it with 32 random bytes.
pub struct SecretsManagerSessionKey {
    client: crate::lazy::SecretsManager,
    secret_id: String,
    create_if_missing: bool,
    cached: OnceCell<SecretSlice<u8>>,
}

impl fmt::Debug for SecretsManagerSessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretsManagerSessionKey({})", self.secret_id)
    }
}

impl SecretsManagerSessionKey {
    /// `client` may be built already or on first use ([`crate::lazy`]).
    pub fn new(
        client: impl Into<crate::lazy::SecretsManager>,
        secret_id: &str,
        create_if_missing: bool,
    ) -> Self {
        Self {
            client: client.into(),
            secret_id: secret_id.to_owned(),
            create_if_missing,
            cached: OnceCell::new(),
        }
    }

    async fn read(&self) -> Result<Option<String>, StoreError> {
        match self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
        {
            Ok(out) => Ok(out.secret_string),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sm_error(e)),
        }
    }

    async fn load(&self) -> Result<SecretSlice<u8>, StoreError> {
        if let Some(v) = self.read().await? {
            return Ok(SecretSlice::from(v.into_bytes()));
        }
        if !self.create_if_missing {
            return Err(StoreError::internal(
                "reading the portal session key",
                format!("the secret {} has no value", self.secret_id),
            ));
        }
        let value = random_secret()?;
        let created = self
            .client
            .create_secret()
            .name(&self.secret_id)
            .secret_string(&value)
            .send()
            .await;
        match created {
            Ok(_) => Ok(SecretSlice::from(value.into_bytes())),
            // Another process created it first: use theirs.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_exists_exception()) =>
            {
                let v = self.read().await?.unwrap_or_default();
                Ok(SecretSlice::from(v.into_bytes()))
            }
            Err(e) => Err(sm_error(e)),
        }
    }
}

#[async_trait]
impl SessionKeyStore for SecretsManagerSessionKey {
    async fn session_key(&self) -> Result<SecretSlice<u8>, StoreError> {
        let key = self.cached.get_or_try_init(|| self.load()).await?;
        Ok(SecretSlice::from(key.expose_secret().to_vec()))
    }
}
