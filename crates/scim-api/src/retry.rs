//! Optimistic-concurrency retries. A PATCH or DELETE reads the resource,
//! computes the new state and writes it conditionally on the version it read;
//! when another request wrote first, it starts again after a short random
//! pause so that the writers that lost do not collide again in lockstep.

use std::time::Duration;

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
/// 256 ms, uniformly random. Even 32 attempts stay far below API Gateway's
/// 30 s integration timeout.
pub async fn pause(attempt: u32) {
    let ceiling = 8u64 << attempt.clamp(1, 5);
    tokio::time::sleep(Duration::from_millis(rand::random_range(
        ceiling / 4..ceiling,
    )))
    .await;
}
