//! Uniqueness claims, shared by users and groups.
//!
//! A resource's unique attributes (a user's userName and externalId, a
//! group's displayName and externalId) each own a claim item, put under
//! `attribute_not_exists` in the same transaction as the resource item. Two
//! concurrent writes can therefore never both take one value. A
//! [`ClaimedWrite`] collects such a transaction, remembering where each claim
//! sits in it, so a cancellation can name the attribute that was taken.

use aws_sdk_dynamodb::types::TransactWriteItem;
use scim_proto::ids::TenantId;

use crate::dynamo::{self, Cond, Table, TxFailure, key, pk};
use crate::error::{StoreError, Unique};

/// One claim a resource holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    /// The claim partition's kind (`USERNAME`, `GROUPEXT`, ...).
    pub(crate) kind: &'static str,
    /// The claimed value, as compared for uniqueness (userName and
    /// displayName lowercased).
    pub(crate) value: String,
    pub(crate) unique: Unique,
}

/// The items of one resource transaction, the resource item's own write
/// first, and the positions of the claims it takes.
pub(crate) struct ClaimedWrite {
    items: Vec<TransactWriteItem>,
    claims: Vec<(usize, Unique)>,
}

impl ClaimedWrite {
    /// Starts with the write of the resource item (always at index 0).
    pub(crate) fn new(resource: TransactWriteItem) -> Self {
        Self {
            items: vec![resource],
            claims: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, item: TransactWriteItem) {
        self.items.push(item);
    }

    /// Items so far (a transaction holds at most [`dynamo::TX_MAX_ITEMS`]).
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The items, and where each claim sits among them (for [`taken`]).
    pub(crate) fn into_parts(self) -> (Vec<TransactWriteItem>, Vec<(usize, Unique)>) {
        (self.items, self.claims)
    }

    /// Releases the claims of `old` that `new` does not hold (only if `owner`
    /// holds them) and takes those of `new` that `old` did not. A create has
    /// no `old`, a delete no `new`.
    pub(crate) fn change_claims(
        &mut self,
        table: &Table,
        tenant: &TenantId,
        owner: &str,
        old: &[Claim],
        new: &[Claim],
    ) -> Result<(), StoreError> {
        for c in old.iter().filter(|c| !new.contains(c)) {
            self.items.push(table.delete(
                key(pk(tenant, c.kind), c.value.as_str()),
                Some(Cond::owned_by(owner)),
            )?);
        }
        for c in new.iter().filter(|c| !old.contains(c)) {
            self.claims.push((self.items.len(), c.unique));
            self.items
                .push(table.claim(pk(tenant, c.kind), &c.value, owner)?);
        }
        Ok(())
    }

    /// Commits a create that took `claims`. The SDK retries a timed-out
    /// attempt; if the first attempt had committed, the retry fails on our
    /// own claim, and our id on that claim means the create happened.
    pub(crate) async fn commit_create(
        self,
        table: &Table,
        tenant: &TenantId,
        owner: &str,
        claims: &[Claim],
    ) -> Result<(), StoreError> {
        match dynamo::transact(&table.client, self.items).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Cancelled(reasons)) => {
                let ours = match claims.first() {
                    Some(c) => {
                        table
                            .claimed_by(pk(tenant, c.kind), &c.value)
                            .await?
                            .as_deref()
                            == Some(owner)
                    }
                    None => false,
                };
                if ours {
                    Ok(())
                } else {
                    Err(taken(&reasons, &self.claims))
                }
            }
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    /// Commits a replace. `Ok(false)`: the resource item's condition failed
    /// (it changed or is gone since read), nothing was written.
    pub(crate) async fn commit_replace(self, table: &Table) -> Result<bool, StoreError> {
        match dynamo::transact(&table.client, self.items).await {
            Ok(()) => Ok(true),
            Err(TxFailure::Cancelled(reasons)) if TxFailure::condition_failed(&reasons, 0) => {
                Ok(false)
            }
            Err(TxFailure::Cancelled(reasons)) => Err(taken(&reasons, &self.claims)),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    /// Commits a delete. `Ok(false)`: cancelled, nothing was written (the
    /// resource changed or is gone since read).
    pub(crate) async fn commit_delete(self, table: &Table) -> Result<bool, StoreError> {
        match dynamo::transact(&table.client, self.items).await {
            Ok(()) => Ok(true),
            Err(TxFailure::Cancelled(_)) => Ok(false),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }
}

/// The conflict a cancelled transaction reports: the first claim whose
/// condition failed, else a version mismatch.
pub(crate) fn taken(reasons: &[Option<String>], claims: &[(usize, Unique)]) -> StoreError {
    claims
        .iter()
        .find(|(i, _)| TxFailure::condition_failed(reasons, *i))
        .map_or(StoreError::VersionMismatch, |(_, u)| {
            StoreError::Conflict(*u)
        })
}
