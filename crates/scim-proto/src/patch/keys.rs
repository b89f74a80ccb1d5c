//! Case-insensitive object keys (SCIM names are case-insensitive, but the
//! stored document keeps one spelling): find, take, detach-and-store that
//! keeps an attribute's position, and [`CiObject`] for large objects in
//! linear time. Changes only with the key-matching rules.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Objects of at most this many fields are rewritten in place, scanning for
/// other spellings of each name (cheapest for the few fields clients send);
/// larger ones through a [`CiObject`], so that no object costs quadratic time.
pub(super) const SMALL_OBJECT: usize = 16;

/// An object being rewritten key by key with the case-insensitive rules of
/// [`find_key`], [`detach`], [`take_ci`] and [`store`], in expected linear
/// time: keys are indexed by their ASCII-lowercased form, and removed entries
/// leave holes instead of shifting the rest, so a request object with many
/// keys (or many spellings of one) costs no more than its size.
#[derive(Default)]
pub(super) struct CiObject {
    /// Entries in order; `None` where one was removed.
    slots: Vec<Option<(String, Value)>>,
    /// Lowercased key → slots holding a spelling of it, in order.
    index: HashMap<String, Vec<usize>>,
}

impl CiObject {
    pub(super) fn from_map(map: Map<String, Value>) -> Self {
        let mut out = Self::default();
        for (k, v) in map {
            out.push(k, v);
        }
        out
    }

    fn push(&mut self, key: String, value: Value) {
        self.index
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(self.slots.len());
        self.slots.push(Some((key, value)));
    }

    fn live(&self, lower: &str) -> impl Iterator<Item = (usize, &String)> {
        self.index
            .get(lower)
            .into_iter()
            .flatten()
            .filter_map(|&i| match self.slots.get(i) {
                Some(Some((k, _))) => Some((i, k)),
                _ => None,
            })
    }

    /// The first key equal to `name` ignoring ASCII case.
    pub(super) fn find_key(&self, name: &str) -> Option<&str> {
        self.live(&name.to_ascii_lowercase())
            .next()
            .map(|(_, k)| k.as_str())
    }

    /// Like [`detach`]: removes the other spellings of `key` and takes the
    /// value of `key` itself, leaving its slot (for [`Self::store`]).
    pub(super) fn detach(&mut self, key: &str) -> Option<Value> {
        let lower = key.to_ascii_lowercase();
        let spellings: Vec<usize> = self.live(&lower).map(|(i, _)| i).collect();
        let mut found = None;
        let mut exact = None;
        for i in spellings {
            let Some(slot) = self.slots.get_mut(i) else {
                continue;
            };
            if slot.as_ref().is_some_and(|(k, _)| k == key) {
                exact = Some(i);
            } else if let Some((_, v)) = slot.take()
                && found.is_none()
            {
                // Removed either way; the first spelling's value is kept.
                found = Some(v);
            }
        }
        self.index.insert(lower, exact.into_iter().collect());
        match exact.and_then(|i| self.slots.get_mut(i)) {
            Some(Some((_, v))) => Some(std::mem::take(v)),
            _ => found,
        }
    }

    /// Like [`take_ci`]: removes every spelling of `name`.
    pub(super) fn take_ci(&mut self, name: &str) -> Option<Value> {
        let lower = name.to_ascii_lowercase();
        let mut found = None;
        for i in self.index.remove(&lower).unwrap_or_default() {
            if let Some((k, v)) = self.slots.get_mut(i).and_then(Option::take)
                && (k == name || found.is_none())
            {
                found = Some(v);
            }
        }
        found
    }

    /// Like [`store`] after [`Self::detach`]: `Some` writes `key` in its
    /// existing slot or at the end, `None` removes it.
    pub(super) fn store(&mut self, key: String, value: Option<Value>) {
        let lower = key.to_ascii_lowercase();
        let exact = self.live(&lower).find(|(_, k)| **k == key).map(|(i, _)| i);
        match (exact, value) {
            (Some(i), Some(v)) => {
                if let Some(Some((_, slot))) = self.slots.get_mut(i) {
                    *slot = v;
                }
            }
            (Some(i), None) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = None;
                }
            }
            (None, Some(v)) => self.push(key, v),
            (None, None) => {}
        }
    }

    pub(super) fn into_map(self) -> Map<String, Value> {
        self.slots.into_iter().flatten().collect()
    }
}

pub(super) fn is_urn(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

pub(super) fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

pub(super) fn get_ci<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Removes every key equal to `name` ignoring case; returns the value of the
/// exact spelling if present, else of the first variant.
pub(super) fn take_ci(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let keys: Vec<String> = map
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    let mut found = None;
    for k in keys {
        let v = map.shift_remove(&k);
        if k == name || found.is_none() {
            found = v;
        }
    }
    found
}

/// Takes the value of `key` out of `map`, leaving its slot in place so that
/// writing it back with [`store`] keeps the attribute's position. Keys that
/// differ from `key` only in case are removed (their value is returned when
/// `key` itself is absent).
pub(super) fn detach(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let variants: Vec<String> = map
        .keys()
        .filter(|k| *k != key && k.eq_ignore_ascii_case(key))
        .cloned()
        .collect();
    let mut found = None;
    for k in variants {
        let v = map.shift_remove(&k);
        if found.is_none() {
            found = v;
        }
    }
    match map.get_mut(key) {
        Some(slot) => Some(std::mem::take(slot)),
        None => found,
    }
}

/// Writes back what [`detach`] took: `None` removes the key.
pub(super) fn store(map: &mut Map<String, Value>, key: String, value: Option<Value>) {
    match value {
        Some(v) => {
            map.insert(key, v);
        }
        None => {
            map.shift_remove(&key);
        }
    }
}
