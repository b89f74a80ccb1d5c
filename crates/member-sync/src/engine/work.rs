//! The users a batch is asked to look at, and what the run already knows
//! about each; for full runs, the merge of the directory with the dirty
//! set. Changes when a phase finds its users differently.

use std::collections::VecDeque;

use scim_proto::ids::ResourceId;
use scim_store::users::{DirtyUser, StoredUser};

/// What the run knows about a user before reading it.
#[derive(Debug, PartialEq)]
pub(super) enum Known {
    Fetched(Box<StoredUser>),
    /// Deleted (the dirty set says so, or it is not in the directory).
    Absent,
    Unknown,
}

/// One user for a batch, with its dirty item when it has one.
#[derive(Debug, PartialEq)]
pub(super) struct Work {
    pub id: ResourceId,
    pub known: Known,
    pub dirty: Option<DirtyUser>,
}

impl Work {
    /// A user to read and sync, not from the dirty set.
    pub(super) fn read(id: ResourceId) -> Self {
        Self {
            id,
            known: Known::Unknown,
            dirty: None,
        }
    }

    /// A user whose link outlived it.
    pub(super) fn gone(id: ResourceId) -> Self {
        Self {
            id,
            known: Known::Absent,
            dirty: None,
        }
    }

    /// A user of the dirty set: deleted, or to read.
    pub(super) fn dirty(d: DirtyUser) -> Self {
        Self {
            id: d.id.clone(),
            known: if d.deleted {
                Known::Absent
            } else {
                Known::Unknown
            },
            dirty: Some(d),
        }
    }
}

/// The directory's users and the dirty set, both read in id order, as they
/// stand in the buffers of a full run.
#[derive(Debug, Default)]
pub(super) struct Merge {
    pub users: VecDeque<StoredUser>,
    pub dirty: VecDeque<DirtyUser>,
    /// The directory has no more pages.
    pub users_done: bool,
    /// The dirty set has no more pages.
    pub dirty_done: bool,
}

impl Merge {
    /// Takes at most `n` users in id order, each with its dirty item, and
    /// only as far as both lists are known to be complete (a user beyond the
    /// end of an unfinished page might still have a dirty item, or a user).
    pub(super) fn take(&mut self, n: usize) -> Vec<Work> {
        let bound = [
            (!self.users_done).then(|| self.users.back().map(|u| u.id.clone())),
            (!self.dirty_done).then(|| self.dirty.back().map(|d| d.id.clone())),
        ]
        .into_iter()
        .flatten()
        .flatten()
        .min();
        let mut work = Vec::new();
        while work.len() < n {
            let next_user = self.users.front().map(|u| u.id.clone());
            let next_dirty = self.dirty.front().map(|d| d.id.clone());
            let Some(id) = [next_user.clone(), next_dirty.clone()]
                .into_iter()
                .flatten()
                .min()
            else {
                break;
            };
            if bound.as_ref().is_some_and(|b| id > *b) {
                break;
            }
            let user = (next_user.as_ref() == Some(&id))
                .then(|| self.users.pop_front())
                .flatten();
            let dirty = (next_dirty.as_ref() == Some(&id))
                .then(|| self.dirty.pop_front())
                .flatten();
            let known = match (user, &dirty) {
                (Some(u), _) => Known::Fetched(Box::new(u)),
                (None, Some(d)) if d.deleted => Known::Absent,
                (None, _) => Known::Unknown,
            };
            work.push(Work { id, known, dirty });
        }
        work
    }

    pub(super) fn is_empty(&self) -> bool {
        self.users.is_empty() && self.dirty.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use scim_proto::resource::{Meta, UserResource};
    use serde_json::json;

    use super::*;

    fn id(s: &str) -> ResourceId {
        ResourceId::parse(s).unwrap()
    }

    fn user(s: &str) -> StoredUser {
        StoredUser {
            id: id(s),
            meta: Meta::new(time::OffsetDateTime::UNIX_EPOCH),
            user: UserResource::from_request(json!({"userName": format!("{s}@x")})).unwrap(),
        }
    }

    fn dirty(s: &str, deleted: bool) -> DirtyUser {
        DirtyUser {
            id: id(s),
            version: 2,
            deleted,
        }
    }

    fn ids(work: &[Work]) -> Vec<&str> {
        work.iter().map(|w| w.id.as_str()).collect()
    }

    #[test]
    fn a_user_in_both_lists_is_one_item_carrying_its_dirty_item() {
        let mut m = Merge {
            users: [user("a")].into(),
            dirty: [dirty("a", false)].into(),
            users_done: true,
            dirty_done: true,
        };
        let work = m.take(10);
        assert_eq!(ids(&work), ["a"]);
        assert!(matches!(work[0].known, Known::Fetched(_)));
        assert_eq!(work[0].dirty, Some(dirty("a", false)));
        assert!(m.is_empty());
    }

    #[test]
    fn a_deleted_dirty_user_missing_from_the_directory_is_known_absent() {
        let mut m = Merge {
            dirty: [dirty("b", true), dirty("c", false)].into(),
            users_done: true,
            dirty_done: true,
            ..Merge::default()
        };
        let work = m.take(10);
        assert_eq!(ids(&work), ["b", "c"]);
        assert_eq!(work[0].known, Known::Absent);
        // Not deleted yet not listed: created since the page was read.
        assert_eq!(work[1].known, Known::Unknown);
    }

    #[test]
    fn users_come_out_in_id_order_across_both_lists() {
        let mut m = Merge {
            users: [user("a"), user("c")].into(),
            dirty: [dirty("b", true), dirty("d", true)].into(),
            users_done: true,
            dirty_done: true,
        };
        assert_eq!(ids(&m.take(10)), ["a", "b", "c", "d"]);
    }

    #[test]
    fn the_merge_stops_where_an_unfinished_list_ends() {
        let mut m = Merge {
            users: [user("a"), user("b")].into(),
            dirty: [dirty("c", false)].into(),
            users_done: false,
            dirty_done: true,
        };
        // "c" waits: the next directory page may hold it.
        assert_eq!(ids(&m.take(10)), ["a", "b"]);
        assert_eq!(m.dirty.len(), 1);
    }

    #[test]
    fn a_batch_takes_at_most_n_users() {
        let mut m = Merge {
            users: [user("a"), user("b"), user("c")].into(),
            users_done: true,
            dirty_done: true,
            ..Merge::default()
        };
        assert_eq!(ids(&m.take(2)), ["a", "b"]);
        assert_eq!(ids(&m.take(2)), ["c"]);
    }

    #[test]
    fn a_dirty_item_says_whether_to_read_the_user() {
        assert_eq!(Work::dirty(dirty("a", true)).known, Known::Absent);
        assert_eq!(Work::dirty(dirty("a", false)).known, Known::Unknown);
        assert_eq!(Work::gone(id("a")).known, Known::Absent);
    }
}
