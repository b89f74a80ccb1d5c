//! The retry policy of every read → compute → conditional-write operation.
//! A write that lost a version race to another request starts again after a
//! short random pause, so the losers do not collide again in lockstep;
//! `If-Match` pins the version, so there a lost race is 412 instead.

use std::future::Future;
use std::time::Duration;

use scim_proto::ScimError;

use crate::error::{DomainError, Result};
use crate::precondition::Precondition;

/// Read-apply-write attempts of a PATCH, PUT or DELETE (without `If-Match`)
/// racing other writes to the same user or group. Every round of a race lets
/// one writer through, so this bounds how many concurrent writers of one
/// resource are all served without a 409. One budget for users and groups:
/// Entra sends one request per change and several can arrive at once for a
/// user, and a group's attribute write races every membership PATCH of a
/// burst (each bumps the group's version), a crowd at least as large. 32
/// pauses of at most 256 ms stay far below API Gateway's 30 s.
pub const ATTEMPTS: u32 = 32;

/// Sleeps before retry `attempt` (1-based): up to 8 ms × 2^attempt, capped at
/// 256 ms, uniformly random.
pub async fn pause(attempt: u32) {
    let ceiling = 8u64 << attempt.clamp(1, 5);
    tokio::time::sleep(Duration::from_millis(rand::random_range(
        ceiling / 4..ceiling,
    )))
    .await;
}

/// Runs `attempt` until it does not lose a version race, at most
/// [`ATTEMPTS`] times (then the lost race is returned: 409). Under an
/// `If-Match` precondition a lost race is 412 at once: the client pinned the
/// version it read. `noun` names the resource in that answer.
pub async fn optimistic<T, F, Fut>(pre: &Precondition, noun: &str, mut attempt: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut n = 0;
    loop {
        n += 1;
        match attempt(n).await {
            Err(e) if e.is_version_mismatch() && pre.is_set() => {
                return Err(DomainError::Scim(ScimError::precondition_failed(format!(
                    "the {noun} changed while the request was processed (If-Match)"
                ))));
            }
            Err(e) if e.is_version_mismatch() && n < ATTEMPTS => pause(n).await,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use scim_store::StoreError;

    use super::*;

    fn lost() -> Result<()> {
        Err(StoreError::VersionMismatch.into())
    }

    #[tokio::test]
    async fn a_lost_race_is_retried_until_the_write_goes_through() {
        let calls = AtomicU32::new(0);
        let out = optimistic(&Precondition::none(), "user", |_| async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                lost()
            } else {
                Ok(())
            }
        })
        .await;
        assert!(out.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn races_lost_every_time_end_as_the_lost_race_after_the_budget() {
        let calls = AtomicU32::new(0);
        let out = optimistic(&Precondition::none(), "user", |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            lost()
        })
        .await;
        assert!(out.is_err_and(|e| e.is_version_mismatch()));
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);
    }

    #[tokio::test]
    async fn under_if_match_a_lost_race_is_412_without_retry() {
        let calls = AtomicU32::new(0);
        let pre = Precondition::from_header("W/\"1\"");
        let out = optimistic(&pre, "group", |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            lost()
        })
        .await;
        match out {
            Err(DomainError::Scim(e)) => assert_eq!(e.status, 412),
            other => panic!("expected 412, got {other:?}"),
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let out: Result<()> = optimistic(&Precondition::none(), "user", |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::NotFound.into())
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
