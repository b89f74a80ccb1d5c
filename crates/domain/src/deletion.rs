//! DELETE of a user or group, one implementation for both: read the resource
//! (or what an interrupted delete of it left), check `If-Match`, and remove it
//! in one version-checked write (see `scim_store::deletion`), retrying lost
//! races.

use std::future::Future;

use scim_proto::ScimError;
use scim_proto::ids::ResourceId;
use scim_store::StoreError;
use scim_store::deletion::Deletion;

use crate::error::Result;
use crate::precondition::Precondition;
use crate::retry::optimistic;

/// Deletes the `noun` `id`: `read` finds what to delete, `delete` removes it.
pub(crate) async fn delete<R, G, GF, D, DF>(
    noun: &str,
    id: &ResourceId,
    pre: &Precondition,
    read: G,
    delete: D,
) -> Result<()>
where
    G: Fn() -> GF,
    GF: Future<Output = Result<Option<Deletion<R>>, StoreError>>,
    D: Fn(Deletion<R>) -> DF,
    DF: Future<Output = Result<(), StoreError>>,
{
    let not_found = || ScimError::not_found(format!("no {noun} with id {id:?}"));
    let (read, remove, not_found) = (&read, &delete, &not_found);
    optimistic(pre, noun, move |_| async move {
        let target = read().await?.ok_or_else(not_found)?;
        match &target.meta {
            Some(meta) => pre.check(&meta.etag())?,
            // An interrupted delete whose last version is not kept: no ETag
            // can match it.
            None if pre.is_set() => {
                return Err(ScimError::precondition_failed(format!(
                    "the {noun} is already deleted (If-Match)"
                ))
                .into());
            }
            None => {}
        }
        match remove(target).await {
            Err(StoreError::NotFound) => Err(not_found().into()),
            other => Ok(other?),
        }
    })
    .await?;
    tracing::info!(%id, "{noun} deleted");
    Ok(())
}
