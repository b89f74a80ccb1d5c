//! Optimistic-concurrency retries. A PATCH or DELETE reads the resource,
//! computes the new state and writes it conditionally on the version it read;
//! when another request wrote first, it starts again after a short random
//! pause so that the writers that lost do not collide again in lockstep.

use std::time::Duration;

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
