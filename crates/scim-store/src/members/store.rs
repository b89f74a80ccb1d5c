//! [`DynamoMemberStore`]: members, email claims, links, link records and
//! manager waits as items of the Members table (layout in [`super`]), and
//! the one transaction every member write is.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use scim_proto::ids::TenantId;

use super::{
    LinkKind, LinkRecord, LinkWrite, ManagedBy, ManagerWait, Member, MemberLink, MemberStatus,
    MemberStore, MemberWrite, validate_app_member,
};
use crate::dynamo::{self, Cond, ID, Item, Table, TxFailure, get_opt_s, get_s, key, pk, s};
use crate::error::{StoreError, Unique};

const MEMBER: &str = "MEMBER";
const EMAIL: &str = "MEMAIL";
const LINK: &str = "MLINK";
const LINK_LOG: &str = "LINKLOG";
const WAIT: &str = "WAIT";

/// The DynamoDB implementation.
#[derive(Debug, Clone)]
pub struct DynamoMemberStore {
    table: Table,
}

impl DynamoMemberStore {
    pub fn new(client: impl Into<crate::lazy::DynamoDb>, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    /// The tenant outboxes and event logs in the same table.
    pub fn outbox(&self) -> crate::events::DynamoEventOutbox {
        crate::events::DynamoEventOutbox::new(self.table.client.clone(), self.table.name.clone())
    }

    fn member_key(tenant: &TenantId, id: &str) -> Item {
        key(pk(tenant, MEMBER), id)
    }

    fn email_key(tenant: &TenantId, email_key: &str) -> Item {
        key(pk(tenant, EMAIL), email_key)
    }

    fn link_key(tenant: &TenantId, user_id: &str) -> Item {
        key(pk(tenant, LINK), user_id)
    }

    fn wait_key(tenant: &TenantId, wait: &ManagerWait) -> Item {
        key(
            pk(tenant, WAIT),
            format!("{}#{}", wait.manager, wait.report),
        )
    }

    fn to_item(tenant: &TenantId, m: &Member) -> Result<Item, StoreError> {
        let mut item = Self::member_key(tenant, &m.id);
        item.insert("email".into(), s(m.email.as_str()));
        item.insert("displayName".into(), s(m.display_name.as_str()));
        item.insert("status".into(), s(m.status.as_str()));
        let props = serde_json::to_string(&m.properties)
            .map_err(|e| StoreError::internal("serializing an item", e))?;
        item.insert("properties".into(), s(props));
        if let Some(u) = &m.scim_user_id {
            item.insert("scimUserId".into(), s(u.as_str()));
        }
        item.insert("managedBy".into(), s(m.managed_by.as_str()));
        item.insert("created".into(), s(m.created.as_str()));
        item.insert("updated".into(), s(m.updated.as_str()));
        item.insert("version".into(), dynamo::n(m.version));
        if let Some(p) = &m.pending_manager {
            item.insert("pendingManager".into(), s(p.as_str()));
        }
        Ok(item)
    }

    fn from_item(item: &Item) -> Result<Member, StoreError> {
        let bad =
            |what: &str| StoreError::Internal(format!("stored member has a bad {what}").into());
        Ok(Member {
            id: get_s(item, crate::tables::SK)?.to_owned(),
            email: get_s(item, "email")?.to_owned(),
            display_name: get_s(item, "displayName")?.to_owned(),
            status: MemberStatus::parse(get_s(item, "status")?).ok_or_else(|| bad("status"))?,
            properties: serde_json::from_str(get_s(item, "properties")?)
                .map_err(|e| StoreError::internal("stored member has bad properties", e))?,
            scim_user_id: get_opt_s(item, "scimUserId").map(str::to_owned),
            managed_by: ManagedBy::parse(get_s(item, "managedBy")?)
                .ok_or_else(|| bad("managedBy"))?,
            created: get_s(item, "created")?.to_owned(),
            updated: get_s(item, "updated")?.to_owned(),
            version: dynamo::get_u64(item, "version")?,
            pending_manager: get_opt_s(item, "pendingManager").map(str::to_owned),
        })
    }

    fn link_from_item(item: &Item) -> Result<MemberLink, StoreError> {
        Ok(MemberLink {
            user_id: get_s(item, crate::tables::SK)?.to_owned(),
            member_id: get_s(item, ID)?.to_owned(),
            how: LinkKind::parse(get_s(item, "how")?)
                .ok_or_else(|| StoreError::Internal("stored link has a bad kind".into()))?,
            at: get_s(item, "at")?.to_owned(),
            run_id: get_s(item, "runId")?.to_owned(),
        })
    }
}

#[async_trait]
impl MemberStore for DynamoMemberStore {
    async fn list(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Member>, Option<String>), StoreError> {
        let (items, next) = self.table.page(pk(tenant, MEMBER), after, limit).await?;
        let members = items
            .iter()
            .map(Self::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((members, next))
    }

    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<Member>, StoreError> {
        self.table
            .get(Self::member_key(tenant, id))
            .await?
            .map(|item| Self::from_item(&item))
            .transpose()
    }

    async fn get_many(&self, tenant: &TenantId, ids: &[String]) -> Result<Vec<Member>, StoreError> {
        let mut members = self
            .table
            .get_unique(ids, |id| Self::member_key(tenant, id))
            .await?
            .iter()
            .map(Self::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        members.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(members)
    }

    async fn add_app_member(
        &self,
        tenant: &TenantId,
        email: &str,
        display_name: &str,
    ) -> Result<Member, StoreError> {
        let (email, display_name) = (email.trim(), display_name.trim());
        validate_app_member(email, display_name).map_err(|e| StoreError::Internal(e.into()))?;
        let now = scim_proto::resource::format_time(dynamo::now());
        let member = Member {
            id: format!("a-{}", uuid::Uuid::new_v4().simple()),
            email: email.to_owned(),
            display_name: display_name.to_owned(),
            status: MemberStatus::Active,
            properties: BTreeMap::new(),
            scim_user_id: None,
            managed_by: ManagedBy::App,
            created: now.clone(),
            updated: now,
            version: 1,
            pending_manager: None,
        };
        self.write(
            tenant,
            &MemberWrite {
                claim_email: Some(member.email_key()),
                member: member.clone(),
                expected_version: None,
                release_email: None,
                link: None,
                wait_add: None,
                wait_remove: None,
                event: None,
            },
        )
        .await?;
        Ok(member)
    }

    async fn email_owners(
        &self,
        tenant: &TenantId,
        email_keys: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        self.table
            .get_unique(email_keys, |e| Self::email_key(tenant, e))
            .await?
            .iter()
            .map(|item| {
                Ok((
                    get_s(item, crate::tables::SK)?.to_owned(),
                    get_s(item, ID)?.to_owned(),
                ))
            })
            .collect()
    }

    async fn links(
        &self,
        tenant: &TenantId,
        user_ids: &[String],
    ) -> Result<HashMap<String, MemberLink>, StoreError> {
        self.table
            .get_unique(user_ids, |u| Self::link_key(tenant, u))
            .await?
            .iter()
            .map(|item| Self::link_from_item(item).map(|l| (l.user_id.clone(), l)))
            .collect()
    }

    async fn link_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<MemberLink>, Option<String>), StoreError> {
        let (items, next) = self.table.page(pk(tenant, LINK), after, limit).await?;
        let links = items
            .iter()
            .map(Self::link_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((links, next))
    }

    async fn link_records(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<LinkRecord>, StoreError> {
        self.table
            .newest_first(pk(tenant, LINK_LOG), limit)
            .await?
            .iter()
            .map(|item| {
                Ok(LinkRecord {
                    at: get_s(item, "at")?.to_owned(),
                    user_id: get_s(item, "userId")?.to_owned(),
                    member_id: get_s(item, "memberId")?.to_owned(),
                    how: LinkKind::parse(get_s(item, "how")?).ok_or_else(|| {
                        StoreError::Internal("stored link record has a bad kind".into())
                    })?,
                    run_id: get_s(item, "runId")?.to_owned(),
                    previous_managed_by: get_opt_s(item, "previousManagedBy")
                        .and_then(ManagedBy::parse),
                })
            })
            .collect()
    }

    async fn waits(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ManagerWait>, Option<String>), StoreError> {
        let (items, next) = self.table.page(pk(tenant, WAIT), after, limit).await?;
        let waits = items
            .iter()
            .map(|item| {
                Ok(ManagerWait {
                    manager: get_s(item, "manager")?.to_owned(),
                    report: get_s(item, "report")?.to_owned(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((waits, next))
    }

    async fn write(&self, tenant: &TenantId, w: &MemberWrite) -> Result<(), StoreError> {
        let t = &self.table;
        let m = &w.member;
        let mut items = vec![match w.expected_version {
            None => t.put(Self::to_item(tenant, m)?, Some(Cond::absent()))?,
            Some(v) => t.put(Self::to_item(tenant, m)?, Some(Cond::version(v)))?,
        }];
        let mut claim_index = None;
        if let Some(old) = &w.release_email
            && w.claim_email.as_ref() != Some(old)
        {
            items.push(t.delete(
                Self::email_key(tenant, old),
                Some(Cond::absent_or_owned_by(&m.id)),
            )?);
        }
        if let Some(new) = &w.claim_email {
            let mut claim = Self::email_key(tenant, new);
            claim.insert(ID.into(), s(m.id.as_str()));
            claim_index = Some(items.len());
            items.push(t.put(claim, Some(Cond::absent_or_owned_by(&m.id)))?);
        }
        match &w.link {
            Some(LinkWrite::Add {
                link,
                previous_managed_by,
            }) => {
                let mut item = Self::link_key(tenant, &link.user_id);
                item.insert(ID.into(), s(link.member_id.as_str()));
                item.insert("how".into(), s(link.how.as_str()));
                item.insert("at".into(), s(link.at.as_str()));
                item.insert("runId".into(), s(link.run_id.as_str()));
                items.push(t.put(item, Some(Cond::absent()))?);
                let mut record = key(
                    pk(tenant, LINK_LOG),
                    format!("{}#{}", link.at, link.user_id),
                );
                record.insert("at".into(), s(link.at.as_str()));
                record.insert("userId".into(), s(link.user_id.as_str()));
                record.insert("memberId".into(), s(link.member_id.as_str()));
                record.insert("how".into(), s(link.how.as_str()));
                record.insert("runId".into(), s(link.run_id.as_str()));
                if let Some(p) = previous_managed_by {
                    record.insert("previousManagedBy".into(), s(p.as_str()));
                }
                items.push(t.put(record, None)?);
            }
            Some(LinkWrite::Remove { user_id }) => {
                items.push(t.delete(
                    Self::link_key(tenant, user_id),
                    Some(Cond::absent_or_owned_by(&m.id)),
                )?);
            }
            None => {}
        }
        if let Some(wait) = &w.wait_remove
            && w.wait_add.as_ref() != Some(wait)
        {
            items.push(t.delete(Self::wait_key(tenant, wait), None)?);
        }
        if let Some(wait) = &w.wait_add {
            let mut item = Self::wait_key(tenant, wait);
            item.insert("manager".into(), s(wait.manager.as_str()));
            item.insert("report".into(), s(wait.report.as_str()));
            items.push(t.put(item, None)?);
        }
        if let Some(event) = &w.event {
            items.push(t.put(crate::events::outbox_item(tenant, event)?, None)?);
        }
        match dynamo::transact(&t.client, items).await {
            Ok(()) => Ok(()),
            // The SDK retries a timed-out attempt; if that attempt had
            // committed, the retry fails on its own conditions. The member
            // stored exactly as written (`updated` included) means it did.
            Err(TxFailure::Cancelled(_)) if self.get(tenant, &m.id).await?.as_ref() == Some(m) => {
                Ok(())
            }
            Err(TxFailure::Cancelled(reasons))
                if claim_index.is_some_and(|i| TxFailure::condition_failed(&reasons, i)) =>
            {
                Err(StoreError::Conflict(Unique::Email))
            }
            Err(TxFailure::Cancelled(_)) => Err(StoreError::VersionMismatch),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }
}
