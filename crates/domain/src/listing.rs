//! Paging shared by the user and group listings: an
//! offset window over id-ordered pages, and a bounded walk for filters no
//! index answers.

use std::future::Future;

use scim_proto::ScimError;
use scim_proto::ids::ResourceId;
use scim_proto::list::Paging;
use scim_store::StoreError;

use crate::error::Result;

/// Most resources a non-indexed filter may examine. Beyond this the client is
/// told to filter on an indexed attribute instead of us reading everything.
pub const MAX_FILTER_SCAN: usize = 10_000;

/// Largest page requested from storage at once.
const STORE_PAGE: usize = 1000;

/// From this offset on, the skipped resources are walked by key only
/// (`nth`) instead of being read and parsed in full; below it one query
/// reading them whole is cheaper than two.
pub const SKIP_BY_KEY_FROM: usize = 100;

/// Resources `offset .. offset + count` in id order, reading pages with
/// `page`; a large offset is skipped with `nth` (the id of the `n`th
/// resource, keys only).
pub async fn window<T, F, Fut, N, NFut>(
    offset: usize,
    count: usize,
    nth: N,
    mut page: F,
) -> Result<Vec<T>>
where
    F: FnMut(Option<ResourceId>, usize) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<ResourceId>), StoreError>>,
    N: FnOnce(usize) -> NFut,
    NFut: Future<Output = Result<Option<ResourceId>, StoreError>>,
{
    let mut out = Vec::with_capacity(count);
    if count == 0 {
        return Ok(out);
    }
    let mut skipped = 0;
    let mut after = None;
    if offset >= SKIP_BY_KEY_FROM {
        match nth(offset).await? {
            Some(id) => {
                skipped = offset;
                after = Some(id);
            }
            None => return Ok(out),
        }
    }
    loop {
        let want = (offset - skipped) + (count - out.len());
        let (items, next) = page(after, want.min(STORE_PAGE)).await?;
        for item in items {
            if skipped < offset {
                skipped += 1;
            } else if out.len() < count {
                out.push(item);
            }
        }
        match next {
            Some(id) if out.len() < count => after = Some(id),
            _ => return Ok(out),
        }
    }
}

/// Every resource, for filters no index can answer; at most
/// [`MAX_FILTER_SCAN`], else 400 `tooMany`.
pub async fn scan_all<T, F, Fut>(what: &str, hint: &str, mut page: F) -> Result<Vec<T>>
where
    F: FnMut(Option<ResourceId>, usize) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<ResourceId>), StoreError>>,
{
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let (items, next) = page(after, STORE_PAGE).await?;
        out.extend(items);
        if out.len() > MAX_FILTER_SCAN {
            return Err(ScimError::too_many(format!(
                "this request would examine more than {MAX_FILTER_SCAN} {what}; filter on {hint}"
            ))
            .into());
        }
        match next {
            Some(id) => after = Some(id),
            None => return Ok(out),
        }
    }
}

/// One page of a listing and the number of resources in the whole result.
#[derive(Debug)]
pub struct Page<T> {
    pub resources: Vec<T>,
    pub total: usize,
}

/// The page of an unfiltered listing of `total` resources, read in id order.
pub async fn unfiltered<T, F, Fut, N, NFut>(
    total: usize,
    paging: &Paging,
    nth: N,
    page: F,
) -> Result<Page<T>>
where
    F: FnMut(Option<ResourceId>, usize) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<ResourceId>), StoreError>>,
    N: FnOnce(usize) -> NFut,
    NFut: Future<Output = Result<Option<ResourceId>, StoreError>>,
{
    let resources = if paging.offset() < total {
        window(paging.offset(), paging.count, nth, page).await?
    } else {
        Vec::new()
    };
    Ok(Page { resources, total })
}

/// The page of a filtered or sorted listing: matches each once, in id order
/// or in the order `sorted` puts them (equal keys in id order).
pub fn matches_page<T>(
    mut matching: Vec<T>,
    id: impl Fn(&T) -> &ResourceId,
    paging: &Paging,
    sorted: Option<&dyn Fn(Vec<T>) -> Vec<T>>,
) -> Page<T> {
    matching.sort_by(|a, b| id(a).cmp(id(b)));
    matching.dedup_by(|a, b| id(a) == id(b));
    if let Some(sorted) = sorted {
        matching = sorted(matching);
    }
    let total = matching.len();
    let resources = matching
        .into_iter()
        .skip(paging.offset())
        .take(paging.count)
        .collect();
    Page { resources, total }
}
