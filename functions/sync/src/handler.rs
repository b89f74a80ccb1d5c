//! The sync function's event handling, apart from the Lambda wiring so that
//! it is testable with the payloads in `events/`.
//!
//! Two kinds of event arrive:
//! - the EventBridge schedule (`{"scheduled": true}` as the rule's input, or a
//!   raw `aws.events` event): fan out one asynchronous invocation per tenant
//!   with provisioning active, so tenants are synced in parallel and one
//!   tenant's failure or size never delays another;
//! - an on-demand invocation `{"tenant": "...", "dryRun": bool, "full": bool}`
//!   (the "Synchronize" button, `scimsync sync --invoke`, or the fan-out):
//!   sync that tenant and return the report. A sync that reaches the time
//!   budget checkpoints and re-invokes the function to continue;
//! - the Members table's stream (inserts of `T#<tenant>#OUTBOX` items):
//!   publish those tenants' pending app events (`Command::PublishEvents`);
//!   the directory's stream carries `T#<tenant>#CLEANUP` items instead.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use member_sync::{SyncError, SyncOptions, SyncReport};
use scim_domain::Members;
use scim_proto::ids::TenantId;
use scim_store::StoreError;
use serde::Deserialize;
use serde_json::{Value, json};

/// Time kept back from the Lambda deadline to checkpoint, store the report
/// and hand over to the next invocation.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(60);

/// An on-demand sync request, its tenant id checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    pub tenant: TenantId,
    pub dry_run: bool,
    pub full: bool,
}

/// The on-demand payload as it arrives.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    tenant: String,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    full: bool,
}

/// What the function was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// The daily schedule: sync every active tenant.
    Scheduled,
    Sync(SyncRequest),
    /// The directory table's stream: these tenants have deletes left to the
    /// background or users to deprovision (cleanup or deprovisioning
    /// entries were inserted).
    FinishDeletes(Vec<TenantId>),
    /// The Members table's stream: these tenants have pending app events
    /// (outbox items were inserted).
    PublishEvents(Vec<TenantId>),
}

/// The tenants of the pending app events in a Members-table stream event
/// (keys `pk = T#<tenant>#OUTBOX`), each once; `None` if it is not one.
fn outbox_tenants(event: &Value) -> Option<Result<Vec<TenantId>, HandlerError>> {
    let records = event.get("Records")?.as_array()?;
    let pks = records
        .iter()
        .filter(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:dynamodb"))
        .map(|r| r.pointer("/dynamodb/Keys/pk/S").and_then(Value::as_str))
        .collect::<Option<Vec<&str>>>()?;
    if pks.is_empty() || pks.len() != records.len() || !pks.iter().all(|p| p.ends_with("#OUTBOX")) {
        return None;
    }
    let mut tenants = Vec::new();
    for pk in pks {
        let tenant = pk
            .strip_prefix("T#")
            .and_then(|rest| rest.strip_suffix("#OUTBOX"))
            .map(TenantId::parse);
        match tenant {
            Some(Ok(t)) if !tenants.contains(&t) => tenants.push(t),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Some(Err(HandlerError::BadEvent(e.to_string()))),
            None => {
                return Some(Err(HandlerError::BadEvent(format!(
                    "not an outbox item: {pk:?}"
                ))));
            }
        }
    }
    Some(Ok(tenants))
}

/// The tenants of the cleanup entries in a DynamoDB stream event (keys
/// `pk = T#<tenant>#CLEANUP`), each once; `None` if it is not one.
fn cleanup_tenants(event: &Value) -> Option<Result<Vec<TenantId>, HandlerError>> {
    let records = event.get("Records")?.as_array()?;
    let from_dynamodb = records
        .iter()
        .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:dynamodb"));
    if records.is_empty() || !from_dynamodb {
        return None;
    }
    let mut tenants = Vec::new();
    for record in records {
        let pk = record
            .pointer("/dynamodb/Keys/pk/S")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let tenant = pk
            .strip_prefix("T#")
            .and_then(|rest| rest.strip_suffix("#CLEANUP"))
            .ok_or_else(|| HandlerError::BadEvent(format!("not a cleanup entry: {pk:?}")))
            .and_then(|t| TenantId::parse(t).map_err(|e| HandlerError::BadEvent(e.to_string())));
        match tenant {
            Ok(t) if !tenants.contains(&t) => tenants.push(t),
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(tenants))
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("unrecognised event: {0}")]
    BadEvent(String),
    #[error("sync failed: {0}")]
    Sync(SyncError),
    #[error("could not invoke the sync function: {0}")]
    Invoke(String),
    #[error("publishing app events failed: {0}")]
    Publish(#[from] scim_domain::events::PublishError),
}

impl From<SyncError> for HandlerError {
    fn from(e: SyncError) -> Self {
        Self::Sync(e)
    }
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> Self {
        Self::Sync(SyncError::Store(e))
    }
}

/// Reads an event: the schedule (our rule's input or a raw EventBridge
/// event) or an on-demand request.
pub fn parse_event(event: &Value) -> Result<Command, HandlerError> {
    let scheduled = event.get("scheduled").and_then(Value::as_bool) == Some(true)
        || event.get("source").and_then(Value::as_str) == Some("aws.events");
    if scheduled {
        return Ok(Command::Scheduled);
    }
    if let Some(tenants) = outbox_tenants(event) {
        return tenants.map(Command::PublishEvents);
    }
    if let Some(tenants) = cleanup_tenants(event) {
        return tenants.map(Command::FinishDeletes);
    }
    let payload: Payload = serde_json::from_value(event.clone()).map_err(|e| {
        HandlerError::BadEvent(format!(
            "expected {{\"tenant\": ..., \"dryRun\": ...}}: {e}"
        ))
    })?;
    let tenant =
        TenantId::parse(&payload.tenant).map_err(|e| HandlerError::BadEvent(e.to_string()))?;
    Ok(Command::Sync(SyncRequest {
        tenant,
        dry_run: payload.dry_run,
        full: payload.full,
    }))
}

/// Asynchronous invocation of this function (self-continuation, fan-out).
#[async_trait]
pub trait Invoker: Send + Sync {
    async fn invoke_async(&self, payload: Value) -> Result<(), String>;
}

/// The production invoker: `Invoke` with `InvocationType=Event` on this
/// function (`AWS_LAMBDA_FUNCTION_NAME`).
#[derive(Debug, Clone)]
pub struct LambdaInvoker {
    /// Built by the first continuation, not at init.
    pub client: scim_store::lazy::LazyClient<aws_sdk_lambda::Client>,
    pub function_name: String,
}

#[async_trait]
impl Invoker for LambdaInvoker {
    async fn invoke_async(&self, payload: Value) -> Result<(), String> {
        let bytes = serde_json::to_vec(&payload).map_err(|e| e.to_string())?;
        self.client
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(bytes))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_lambda::error::DisplayErrorContext(e).to_string())
    }
}

/// Everything the handler needs, built once per execution environment.
pub struct Handler {
    /// The Members-sync operations (`scim_domain`).
    pub members: Members,
    pub invoker: Arc<dyn Invoker>,
}

impl Handler {
    /// Handles one event; `remaining` is the time left before the Lambda
    /// deadline.
    pub async fn handle(&self, event: &Value, remaining: Duration) -> Result<Value, HandlerError> {
        match parse_event(event)? {
            Command::Scheduled => {
                let tenants = self.members.registered_tenants().await?;
                for tenant in &tenants {
                    self.invoker
                        .invoke_async(json!({"tenant": tenant.as_str()}))
                        .await
                        .map_err(HandlerError::Invoke)?;
                }
                tracing::info!(tenants = tenants.len(), "scheduled sync fanned out");
                Ok(json!({"scheduled": tenants.len()}))
            }
            Command::Sync(request) => {
                let report = self.sync(&request, remaining).await?;
                Ok(serde_json::to_value(&report).unwrap_or_default())
            }
            Command::FinishDeletes(tenants) => {
                // A failure fails the batch: the stream retries it, and the
                // work resumes where it stopped. So does a sync holding the
                // lease: deprovisioning waits for it (bounded by the
                // stream's retries; the sync deactivates them itself).
                let (mut finished, mut deactivated) = (0, 0);
                for tenant in &tenants {
                    finished += self.members.finish_deletes(tenant).await?;
                    deactivated += self.members.deprovision(tenant).await?;
                }
                tracing::info!(
                    tenants = tenants.len(),
                    finished,
                    deactivated,
                    "deletes finished and users deprovisioned from the stream"
                );
                Ok(json!({"finished": finished, "deactivated": deactivated}))
            }
            Command::PublishEvents(tenants) => {
                // Every tenant gets its turn; any failure fails the batch, so
                // the stream retries it (a drained outbox costs one Query).
                let (mut published, mut first_error) = (0, None);
                for tenant in &tenants {
                    match self.members.publish_events(tenant).await {
                        Ok(n) => published += n,
                        Err(e) => {
                            tracing::error!(event = "publish_failed", tenant = %tenant, error = %format_args!("{e:#}"), "publishing app events failed");
                            first_error.get_or_insert(e);
                        }
                    }
                }
                match first_error {
                    Some(e) => Err(e.into()),
                    None => Ok(json!({"published": published})),
                }
            }
        }
    }

    async fn sync(
        &self,
        request: &SyncRequest,
        remaining: Duration,
    ) -> Result<SyncReport, HandlerError> {
        let tenant = &request.tenant;
        let budget = remaining.saturating_sub(SAFETY_MARGIN);
        let options = SyncOptions {
            dry_run: request.dry_run,
            full: request.full,
            deadline: Some(tokio::time::Instant::now() + budget),
        };
        let report = match self.members.sync_once(tenant, options).await {
            Ok(report) => report,
            Err(e) => {
                tracing::error!(event = "sync_failed", tenant = %tenant, error = %format_args!("{e:#}"), "sync failed");
                return Err(e.into());
            }
        };
        if !report.complete && !request.dry_run {
            // Out of time: the engine checkpointed; carry on in a fresh
            // invocation with a full 15 minutes. `full` is not repeated: the
            // checkpoint remembers what kind of run it belongs to.
            self.invoker
                .invoke_async(json!({"tenant": tenant.as_str()}))
                .await
                .map_err(HandlerError::Invoke)?;
        }
        tracing::info!(
            event = "sync_finished",
            tenant = %tenant,
            complete = report.complete,
            created = report.counts.created,
            updated = report.counts.updated,
            deactivated = report.counts.deactivated,
            reactivated = report.counts.reactivated,
            failed = report.counts.failed,
            "sync finished"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn the_eventbridge_schedule_event_is_a_scheduled_run() {
        assert_eq!(
            parse_event(&fixture("sync-schedule.json")).unwrap(),
            Command::Scheduled
        );
        assert_eq!(
            parse_event(&json!({"scheduled": true})).unwrap(),
            Command::Scheduled
        );
    }

    #[test]
    fn the_on_demand_payload_names_the_tenant_and_dry_run() {
        let cmd = parse_event(&fixture("sync-on-demand.json")).unwrap();
        assert_eq!(
            cmd,
            Command::Sync(SyncRequest {
                tenant: TenantId::parse("default").unwrap(),
                dry_run: false,
                full: false
            })
        );
        let cmd = parse_event(&fixture("sync-preview.json")).unwrap();
        assert!(matches!(
            cmd,
            Command::Sync(SyncRequest { dry_run: true, .. })
        ));
    }

    #[test]
    fn a_deprovisioning_entry_from_the_stream_names_its_tenant() {
        let cmd = parse_event(&fixture("sync-deprovision-stream.json")).unwrap();
        assert_eq!(
            cmd,
            Command::FinishDeletes(vec![TenantId::parse("acme").unwrap()])
        );
    }

    #[test]
    fn a_stream_batch_of_cleanup_entries_names_each_tenant_once() {
        let cmd = parse_event(&fixture("sync-cleanup-stream.json")).unwrap();
        assert_eq!(
            cmd,
            Command::FinishDeletes(vec![
                TenantId::parse("default").unwrap(),
                TenantId::parse("acme").unwrap()
            ])
        );
        let other = json!({"Records": [{"eventSource": "aws:dynamodb",
            "dynamodb": {"Keys": {"pk": {"S": "T#default#USER"}, "sk": {"S": "x"}}}}]});
        assert!(
            parse_event(&other).is_err(),
            "only cleanup entries are expected"
        );
    }

    #[test]
    fn a_members_stream_batch_of_outbox_items_publishes_each_tenant_once() {
        let cmd = parse_event(&fixture("sync-outbox-stream.json")).unwrap();
        assert_eq!(
            cmd,
            Command::PublishEvents(vec![
                TenantId::parse("default").unwrap(),
                TenantId::parse("acme").unwrap()
            ])
        );
        // The directory's cleanup stream stays what it was.
        assert!(matches!(
            parse_event(&fixture("sync-cleanup-stream.json")).unwrap(),
            Command::FinishDeletes(_)
        ));
        let bad = json!({"Records": [{"eventSource": "aws:dynamodb",
            "dynamodb": {"Keys": {"pk": {"S": "T#Not A Tenant#OUTBOX"}, "sk": {"S": "OUTBOX#x"}}}}]});
        assert!(parse_event(&bad).is_err());
    }

    #[test]
    fn events_without_a_valid_tenant_are_rejected() {
        assert!(parse_event(&json!({})).is_err());
        assert!(parse_event(&json!({"tenant": "Not A Tenant"})).is_err());
        assert!(parse_event(&json!({"tenant": 5})).is_err());
    }
}
