//! Membership changes: the member operations of a PATCH or PUT, netted into
//! per-member writes ([`MemberWrites`]) that the store applies. Every member
//! named by an add or replace must be a user of the tenant; that is checked
//! before anything is written, so a bad member changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use scim_proto::ScimError;
use scim_proto::ids::{ResourceId, TenantId};
use scim_proto::patch::{self, MemberChange, PatchOpKind, PatchRequest};
use scim_proto::schema::{GROUP_RESOURCE, GROUP_SCHEMA};
use scim_store::StoreError;
use scim_store::groups::MemberWrites;

use crate::Directory;
use crate::error::{DomainError, Result};

/// A member deleted while being added: the client named a user that is gone.
pub(crate) fn member_gone(e: StoreError) -> DomainError {
    match e {
        StoreError::NotFound => ScimError::invalid_value(
            "a member was deleted while the request ran; members must be existing users",
        )
        .into(),
        other => other.into(),
    }
}

/// 400 for a member that is not a user of the tenant.
pub(crate) fn not_a_user(id: &str) -> DomainError {
    ScimError::invalid_value(format!(
        "member {id:?} is not a user of this tenant; members must be existing users"
    ))
    .into()
}

/// The member changes of a PATCH made only of `add`/`remove` operations on
/// `members` (Entra's and Okta's membership updates), which need nothing
/// read to apply; `None` for any other request.
pub(crate) fn members_only(request: &PatchRequest) -> Option<Vec<MemberChange>> {
    let on_members = request.operations.iter().all(|op| {
        matches!(op.op, PatchOpKind::Add | PatchOpKind::Remove)
            && op.path.as_ref().is_some_and(|p| {
                p.attr.name.eq_ignore_ascii_case("members")
                    && p.attr
                        .urn
                        .as_deref()
                        .is_none_or(|u| u.eq_ignore_ascii_case(GROUP_SCHEMA))
            })
    });
    if !on_members {
        return None;
    }
    let mut doc = serde_json::Map::new();
    let outcome = patch::apply(&mut doc, request, &GROUP_RESOURCE).ok()?;
    let simple = outcome
        .member_changes
        .iter()
        .all(|c| matches!(c, MemberChange::Add(_) | MemberChange::Remove(_)));
    (doc.is_empty() && simple).then_some(outcome.member_changes)
}

/// The user ids named by adds and replaces (the ones that must exist).
pub(crate) fn named_members(changes: &[MemberChange]) -> Vec<String> {
    changes
        .iter()
        .filter_map(|change| match change {
            MemberChange::Add(ids) | MemberChange::Replace(ids) => Some(ids),
            _ => None,
        })
        .flatten()
        .cloned()
        .collect()
}

/// Net effect of `changes` applied in request order (so add-then-remove of
/// one member ends without it): per named user, member or not at the end,
/// and whether every current member not named is removed.
pub(crate) fn net_changes(changes: &[MemberChange]) -> (BTreeMap<ResourceId, bool>, bool) {
    let parse = |ids: &[String]| -> Vec<ResourceId> {
        ids.iter().filter_map(|r| ResourceId::parse(r)).collect()
    };
    let mut wanted = BTreeMap::new();
    let mut cleared = false;
    for change in changes {
        match change {
            MemberChange::Add(ids) => wanted.extend(parse(ids).into_iter().map(|id| (id, true))),
            MemberChange::Remove(ids) => {
                wanted.extend(parse(ids).into_iter().map(|id| (id, false)));
            }
            MemberChange::RemoveAll => {
                wanted.clear();
                cleared = true;
            }
            MemberChange::Replace(ids) => {
                wanted.clear();
                cleared = true;
                wanted.extend(parse(ids).into_iter().map(|id| (id, true)));
            }
        }
    }
    (wanted, cleared)
}

/// The writes that take a group with members `current` (known only when
/// the changes clear it) to `wanted`; only real changes when it is known.
pub(crate) fn writes_for(
    wanted: BTreeMap<ResourceId, bool>,
    current: Option<&BTreeSet<ResourceId>>,
) -> MemberWrites {
    let mut writes = MemberWrites::default();
    match current {
        Some(current) => {
            for m in current.iter().filter(|m| !wanted.contains_key(*m)) {
                writes.remove.insert(m.clone());
            }
            // A replace by the same members writes nothing.
            for (id, member) in wanted {
                match (member, current.contains(&id)) {
                    (true, false) => writes.add.insert(id),
                    (false, true) => writes.remove.insert(id),
                    _ => false,
                };
            }
        }
        // Adds and removes are idempotent: written without reading first.
        None => {
            for (id, member) in wanted {
                if member {
                    writes.add.insert(id);
                } else {
                    writes.remove.insert(id);
                }
            }
        }
    }
    writes
}

impl Directory {
    /// Parses member ids and checks each is a user of the tenant (400
    /// `invalidValue` naming the first that is not).
    pub(crate) async fn existing_users(
        &self,
        tenant: &TenantId,
        raw: &[String],
    ) -> Result<Vec<ResourceId>> {
        let invalid = not_a_user;
        let mut ids = Vec::with_capacity(raw.len());
        for r in raw {
            ids.push(ResourceId::parse(r).ok_or_else(|| invalid(r))?);
        }
        ids.sort();
        ids.dedup();
        let found = self.users.existing(tenant, &ids).await?;
        if let Some(missing) = ids.iter().find(|id| found.binary_search(id).is_err()) {
            return Err(invalid(missing.as_str()));
        }
        Ok(ids)
    }

    /// The member writes of `changes` to `group`. A replace or a remove of
    /// every member is resolved against the group's current members, read
    /// once.
    pub(crate) async fn member_writes(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        changes: &[MemberChange],
    ) -> Result<MemberWrites> {
        let (wanted, cleared) = net_changes(changes);
        let current = if cleared {
            let members = self.groups.members(tenant, group, None).await?;
            Some(members.into_iter().collect::<BTreeSet<_>>())
        } else {
            None
        };
        Ok(writes_for(wanted, current.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ResourceId {
        ResourceId::parse(&format!("00000000-0000-4000-8000-0000000000{n:02}")).unwrap()
    }

    fn ids(ns: &[u8]) -> Vec<String> {
        ns.iter().map(|n| id(*n).as_str().to_owned()).collect()
    }

    #[test]
    fn add_then_remove_of_one_member_in_one_request_ends_without_it() {
        let (wanted, cleared) = net_changes(&[
            MemberChange::Add(ids(&[1, 2])),
            MemberChange::Remove(ids(&[1])),
        ]);
        let w = writes_for(wanted, None);
        assert!(!cleared);
        assert_eq!(w.add.iter().cloned().collect::<Vec<_>>(), vec![id(2)]);
        assert_eq!(w.remove.iter().cloned().collect::<Vec<_>>(), vec![id(1)]);
    }

    #[test]
    fn replace_by_the_same_members_writes_nothing() {
        let (wanted, cleared) = net_changes(&[MemberChange::Replace(ids(&[1, 2]))]);
        assert!(cleared);
        let current: BTreeSet<_> = [id(1), id(2)].into_iter().collect();
        let w = writes_for(wanted, Some(&current));
        assert!(w.add.is_empty() && w.remove.is_empty());
    }

    #[test]
    fn replace_removes_members_not_named_and_adds_new_ones() {
        let (wanted, _) = net_changes(&[MemberChange::Replace(ids(&[2, 3]))]);
        let current: BTreeSet<_> = [id(1), id(2)].into_iter().collect();
        let w = writes_for(wanted, Some(&current));
        assert_eq!(w.add.iter().cloned().collect::<Vec<_>>(), vec![id(3)]);
        assert_eq!(w.remove.iter().cloned().collect::<Vec<_>>(), vec![id(1)]);
    }

    #[test]
    fn remove_all_then_add_keeps_only_the_added_member() {
        let (wanted, cleared) =
            net_changes(&[MemberChange::RemoveAll, MemberChange::Add(ids(&[3]))]);
        assert!(cleared);
        let current: BTreeSet<_> = [id(1), id(3)].into_iter().collect();
        let w = writes_for(wanted, Some(&current));
        assert!(w.add.is_empty());
        assert_eq!(w.remove.iter().cloned().collect::<Vec<_>>(), vec![id(1)]);
    }

    #[test]
    fn only_adds_and_replaces_name_members_that_must_exist() {
        let named = named_members(&[
            MemberChange::Add(ids(&[1])),
            MemberChange::Remove(ids(&[2])),
            MemberChange::Replace(ids(&[3])),
        ]);
        assert_eq!(named, ids(&[1, 3]));
    }
}
