//! App events: publishing a tenant's outbox to the event sink (EventBridge)
//! and reading its event log. The events themselves are written by the
//! stores in the changes' own transactions (`scim_store::events`); this is
//! the one place that moves them on.
//!
//! At least once, nothing lost: the outbox is read oldest first, sent in
//! `PutEvents` batches of at most 10, and each event leaves the outbox only
//! after the bus accepted it. A rejected entry stays pending and the call
//! reports an error (so the stream, or the next publish, retries it); a
//! publisher killed anywhere re-sends, on its next run, exactly what was
//! not confirmed, with the same `id`.

use std::sync::Arc;

use scim_proto::ids::TenantId;
use scim_store::StoreError;
use scim_store::events::{
    AppEvent, EventOutbox, EventSink, LoggedEvent, MAX_EVENTS_PER_PUT, SinkError,
};

use crate::Members;

/// Pending events read per outbox query.
const PAGE: usize = 100;
/// `PutEvents` takes at most 256 KB per request; stay well below it.
const MAX_BATCH_BYTES: usize = 200 * 1024;
/// What an entry costs beyond its detail (source, detail type, time).
const ENTRY_OVERHEAD: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("no event bus is configured for publishing")]
    NoSink,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(
        "the event bus rejected {rejected} event(s) (first: {id}: {why}); they stay pending \
         and are sent again by the next publish ({published} published)"
    )]
    Rejected {
        rejected: usize,
        id: String,
        why: String,
        published: usize,
    },
}

/// `events` cut into `PutEvents` batches: at most 10 entries, and below the
/// request size limit (an oversized event still goes alone).
fn batches(events: &[AppEvent]) -> Vec<&[AppEvent]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, e) in events.iter().enumerate() {
        let size = e.detail().map_or(0, |d| d.len()) + ENTRY_OVERHEAD;
        let count = i - start;
        if count > 0 && (count == MAX_EVENTS_PER_PUT || bytes + size > MAX_BATCH_BYTES) {
            out.push(&events[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

/// Drains `tenant`'s outbox into `sink`, in order; how many were published.
/// An event the bus rejects stays pending and the publish goes on with the
/// rest (one bad event never holds the tenant's others back), then fails
/// naming it; a failed request stops it at once.
pub async fn publish(
    outbox: &dyn EventOutbox,
    sink: &dyn EventSink,
    tenant: &TenantId,
) -> Result<usize, PublishError> {
    let mut published = 0;
    let mut rejected: Vec<(String, String)> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (pending, next) = outbox.pending(tenant, after.as_deref(), PAGE).await?;
        for batch in batches(&pending) {
            let results = sink.put_events(batch).await?;
            let mut accepted = Vec::with_capacity(batch.len());
            for (i, e) in batch.iter().enumerate() {
                match results.get(i) {
                    Some(None) => accepted.push(e.clone()),
                    Some(Some(why)) => rejected.push((e.id.clone(), why.clone())),
                    None => rejected.push((e.id.clone(), "no result for this entry".to_owned())),
                }
            }
            if !accepted.is_empty() {
                outbox.mark_published(tenant, &accepted).await?;
                published += accepted.len();
            }
        }
        match next {
            Some(n) if !pending.is_empty() => after = Some(n),
            _ => break,
        }
    }
    match rejected.first() {
        None => Ok(published),
        Some((id, why)) => Err(PublishError::Rejected {
            rejected: rejected.len(),
            id: id.clone(),
            why: why.clone(),
            published,
        }),
    }
}

impl Members {
    /// Publishes app events to `sink` (`None`: they wait in the outbox for
    /// a publisher that has one).
    #[must_use]
    pub fn with_events(
        mut self,
        outbox: Arc<dyn EventOutbox>,
        sink: Option<Arc<dyn EventSink>>,
    ) -> Self {
        self.outbox = Some(outbox);
        self.sink = sink;
        self
    }

    fn outbox(&self) -> Result<&dyn EventOutbox, StoreError> {
        self.outbox
            .as_deref()
            .ok_or_else(|| StoreError::Internal("no event outbox is configured".into()))
    }

    /// Publishes the tenant's pending events; how many.
    pub async fn publish_events(&self, tenant: &TenantId) -> Result<usize, PublishError> {
        let sink = self.sink.as_deref().ok_or(PublishError::NoSink)?;
        let published = publish(self.outbox()?, sink, tenant).await?;
        if published > 0 {
            tracing::info!(%tenant, published, "app events published");
        }
        Ok(published)
    }

    /// Publishes after a run in this process (the CLI, `scimsync serve`)
    /// when a sink is configured; a failure only warns: the events stay
    /// pending for the next publish.
    pub(crate) async fn publish_after_run(&self, tenant: &TenantId) {
        if self.sink.is_none() || self.outbox.is_none() {
            return;
        }
        if let Err(e) = self.publish_events(tenant).await {
            tracing::warn!(%tenant, error = %format_args!("{e:#}"), "publishing app events failed; they stay pending");
        }
    }

    /// The tenant's last `limit` events, pending or published, newest first.
    pub async fn events(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        self.outbox()?.log(tenant, limit).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use scim_store::events::{EventState, EventType};

    use super::*;

    fn event(i: usize) -> AppEvent {
        AppEvent::sync_finished(
            &TenantId::parse("acme").unwrap(),
            &format!("r{i:03}"),
            &format!("2026-01-01T00:00:{:02}.{:03}Z", i / 1000, i % 1000),
            serde_json::json!({}),
        )
    }

    #[derive(Debug, Default)]
    struct Outbox {
        pending: Mutex<Vec<AppEvent>>,
        published: Mutex<Vec<AppEvent>>,
    }

    #[async_trait]
    impl EventOutbox for Outbox {
        async fn pending(
            &self,
            _: &TenantId,
            after: Option<&str>,
            limit: usize,
        ) -> Result<(Vec<AppEvent>, Option<String>), StoreError> {
            let page: Vec<AppEvent> = self
                .pending
                .lock()
                .unwrap()
                .iter()
                .filter(|e| after.is_none_or(|a| e.sort_key().as_str() > a))
                .take(limit)
                .cloned()
                .collect();
            let next = (page.len() == limit).then(|| page[limit - 1].sort_key());
            Ok((page, next))
        }
        async fn mark_published(
            &self,
            _: &TenantId,
            events: &[AppEvent],
        ) -> Result<(), StoreError> {
            self.pending.lock().unwrap().retain(|e| !events.contains(e));
            self.published
                .lock()
                .unwrap()
                .extend(events.iter().cloned());
            Ok(())
        }
        async fn log(&self, _: &TenantId, _: usize) -> Result<Vec<LoggedEvent>, StoreError> {
            Ok(Vec::new())
        }
    }

    /// Accepts every event except those whose id is in `reject`; records
    /// the size of each call.
    #[derive(Debug, Default)]
    struct Sink {
        reject: Vec<String>,
        calls: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl EventSink for Sink {
        async fn put_events(&self, events: &[AppEvent]) -> Result<Vec<Option<String>>, SinkError> {
            self.calls.lock().unwrap().push(events.len());
            Ok(events
                .iter()
                .map(|e| {
                    self.reject
                        .contains(&e.id)
                        .then(|| "InternalFailure".to_owned())
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn the_outbox_is_sent_in_batches_of_ten_and_emptied() {
        let outbox = Outbox::default();
        *outbox.pending.lock().unwrap() = (0..25).map(event).collect();
        let sink = Sink::default();
        let t = TenantId::parse("acme").unwrap();
        assert_eq!(publish(&outbox, &sink, &t).await.unwrap(), 25);
        assert_eq!(*sink.calls.lock().unwrap(), vec![10, 10, 5]);
        assert!(outbox.pending.lock().unwrap().is_empty());
        assert_eq!(outbox.published.lock().unwrap().len(), 25);
    }

    #[tokio::test]
    async fn a_rejected_entry_stays_pending_and_fails_the_publish() {
        let outbox = Outbox::default();
        *outbox.pending.lock().unwrap() = (0..12).map(event).collect();
        let sink = Sink {
            reject: vec![event(3).id],
            ..Sink::default()
        };
        let t = TenantId::parse("acme").unwrap();
        let err = publish(&outbox, &sink, &t).await.unwrap_err();
        assert!(matches!(
            err,
            PublishError::Rejected {
                rejected: 1,
                published: 11,
                ..
            }
        ));
        // Only the rejected one is still pending: the rest went on.
        let pending = outbox.pending.lock().unwrap().clone();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].id, event(3).id);
    }

    #[tokio::test]
    async fn more_rejected_events_than_a_page_never_loop_and_never_hold_the_rest_back() {
        let outbox = Outbox::default();
        *outbox.pending.lock().unwrap() = (0..250).map(event).collect();
        let sink = Sink {
            reject: (0..120).map(|i| event(i).id).collect(),
            ..Sink::default()
        };
        let t = TenantId::parse("acme").unwrap();
        let err = publish(&outbox, &sink, &t).await.unwrap_err();
        assert!(matches!(
            err,
            PublishError::Rejected {
                rejected: 120,
                published: 130,
                ..
            }
        ));
        assert_eq!(outbox.pending.lock().unwrap().len(), 120);
    }

    #[test]
    fn batches_stay_under_the_request_size_limit() {
        let mut big = event(0);
        big.reason = Some("x".repeat(150 * 1024));
        let events = vec![event(1), big.clone(), event(2), big, event(3)];
        let sizes: Vec<usize> = batches(&events).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![3, 2]);
        assert!(batches(&[]).is_empty());
        let _ = (EventState::Pending, EventType::SyncFailed);
    }
}
