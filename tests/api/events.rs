//! App events end to end: members changed by the sync, published by the
//! real EventBridge sink to a bus in the emulator, whose rule delivers them
//! to an SQS queue, read the way an app subscribed to them reads them.
//! Each test has its own bus, rule and queue.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use scim_domain::{Domain, Members, SyncRequest};
use scim_proto::ids::TenantId;
use scim_store::config::emulator_aws_config;
use scim_store::events::{
    AppEvent, EventBridgeSink, EventSink, EventState, MAX_EVENTS_PER_PUT, SinkError,
};
use serde_json::{Value, json};

use crate::helpers::{TestApp, emulator_url, spawn_app};
use crate::sync::{FailingAfter, engine_with, members_store, patch_user, person};

/// A bus with a rule sending every scimsync event to a queue.
struct Subscription {
    sink: Arc<EventBridgeSink>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Subscription {
    async fn new() -> Self {
        let sdk = emulator_aws_config(&emulator_url().await).await;
        let run = uuid::Uuid::new_v4().simple().to_string();
        let (bus, queue) = (format!("test-bus-{run}"), format!("test-events-{run}"));
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        events
            .create_event_bus()
            .name(&bus)
            .send()
            .await
            .expect("bus");
        let queue_url = sqs
            .create_queue()
            .queue_name(&queue)
            .send()
            .await
            .expect("queue")
            .queue_url
            .expect("queue url");
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        let arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("queue arn")
            .clone();
        // The README's subscription: the source, any of our types.
        events
            .put_rule()
            .name("app")
            .event_bus_name(&bus)
            .event_pattern(json!({"source": ["scimsync"]}).to_string())
            .send()
            .await
            .expect("rule");
        events
            .put_targets()
            .rule("app")
            .event_bus_name(&bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("target");
        Self {
            sink: Arc::new(EventBridgeSink::new(events, Some(bus))),
            sqs,
            queue_url,
        }
    }

    /// Everything delivered so far (each message deleted once read): the
    /// EventBridge envelopes, in the order received.
    async fn received(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let page = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let messages = page.messages();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                out.push(serde_json::from_str(m.body().expect("body")).expect("JSON body"));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().expect("handle"))
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }

    /// The delivered events' documents (`detail`), checking the envelope.
    async fn details(&self) -> Vec<Value> {
        self.received()
            .await
            .into_iter()
            .map(|envelope| {
                assert_eq!(envelope["source"], "scimsync");
                assert_eq!(envelope["detail-type"], envelope["detail"]["type"]);
                envelope["detail"].clone()
            })
            .collect()
    }
}

/// The Members operations of `app` publishing to `sink`.
fn members_with(app: &TestApp, sink: Arc<dyn EventSink>) -> Members {
    Domain::from(&app.stores.clone().with_event_sink(sink))
        .members
        .expect("members table")
}

/// The Members operations of `app` with no sink: events stay pending.
fn members_without_sink(app: &TestApp) -> Members {
    Domain::from(&app.stores).members.expect("members table")
}

async fn synchronize(members: &Members, tenant: &TenantId) -> member_sync::SyncReport {
    members
        .synchronize(
            tenant,
            SyncRequest::default(),
            Duration::from_secs(60),
            |_| {},
        )
        .await
        .expect("sync succeeds")
}

fn types(details: &[Value]) -> Vec<String> {
    let mut t: Vec<String> = details
        .iter()
        .map(|d| d["type"].as_str().expect("type").to_owned())
        .collect();
    t.sort();
    t
}

fn ids(details: &[Value]) -> BTreeSet<String> {
    details
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The one event of type `kind` among `details`.
fn one<'a>(details: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = details.iter().filter(|d| d["type"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} in {details:#?}");
    found[0]
}

#[tokio::test]
async fn each_member_change_is_delivered_once_with_its_dedupe_id() {
    // Arrange
    let app = spawn_app().await;
    let sub = Subscription::new().await;
    let members = members_with(&app, sub.sink.clone());
    let tenant = app.tenant.as_str();
    let user = app
        .create_user(&person("adele@contoso.com", "Retail Manager", "Oslo"))
        .await;
    let mut all_ids = BTreeSet::new();

    // Act + Assert: create
    let report = synchronize(&members, &app.tenant).await;
    let got = sub.details().await;
    assert_eq!(types(&got), vec!["member.created", "sync.finished"]);
    let created = one(&got, "member.created");
    let member_id = format!("m-{user}");
    assert_eq!(created["schemaVersion"], "1");
    assert_eq!(created["tenant"], tenant);
    assert_eq!(created["memberId"], member_id.as_str());
    assert_eq!(created["userId"], user.as_str());
    assert_eq!(created["id"], format!("{tenant}/{member_id}/1").as_str());
    assert_eq!(created["member"]["email"], "adele@contoso.com");
    assert_eq!(
        created["member"]["properties"]["jobTitle"],
        "Retail Manager"
    );
    assert!(created["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let finished = one(&got, "sync.finished");
    assert_eq!(finished["runId"], report.run_id.as_str());
    assert_eq!(finished["counts"]["created"], 1);
    assert_eq!(
        finished["id"],
        format!("{tenant}/sync/{}/finished", report.run_id).as_str()
    );
    all_ids.extend(ids(&got));

    // Act + Assert: a property change
    patch_user(
        &app,
        &user,
        json!([{"op": "Replace", "path": "title", "value": "Director"}]),
    )
    .await;
    synchronize(&members, &app.tenant).await;
    let got = sub.details().await;
    assert_eq!(types(&got), vec!["member.updated", "sync.finished"]);
    let updated = one(&got, "member.updated");
    assert_eq!(updated["changed"], json!(["properties.jobTitle"]));
    assert_eq!(updated["member"]["properties"]["jobTitle"], "Director");
    assert_eq!(updated["id"], format!("{tenant}/{member_id}/2").as_str());
    all_ids.extend(ids(&got));

    // Act + Assert: disabled in the identity provider
    patch_user(
        &app,
        &user,
        json!([{"op": "Replace", "path": "active", "value": false}]),
    )
    .await;
    synchronize(&members, &app.tenant).await;
    let got = sub.details().await;
    assert_eq!(types(&got), vec!["member.deactivated", "sync.finished"]);
    let deactivated = one(&got, "member.deactivated");
    assert_eq!(deactivated["memberId"], member_id.as_str());
    assert_eq!(deactivated["member"]["status"], "deactivated");
    assert_eq!(deactivated["changed"], json!(["status"]));
    all_ids.extend(ids(&got));

    // Act + Assert: enabled again
    patch_user(
        &app,
        &user,
        json!([{"op": "Replace", "path": "active", "value": true}]),
    )
    .await;
    synchronize(&members, &app.tenant).await;
    let got = sub.details().await;
    assert_eq!(types(&got), vec!["member.reactivated", "sync.finished"]);
    assert_eq!(
        one(&got, "member.reactivated")["member"]["status"],
        "active"
    );
    all_ids.extend(ids(&got));

    // Assert: a sync with nothing to do says so, and nothing else
    synchronize(&members, &app.tenant).await;
    let got = sub.details().await;
    assert_eq!(types(&got), vec!["sync.finished"]);
    all_ids.extend(ids(&got));
    assert_eq!(
        all_ids.len(),
        4 + 5,
        "every event has its own id: {all_ids:?}"
    );

    // Assert: the log holds them all, published, newest first
    let log = members.events(&app.tenant, 100).await.expect("log");
    assert_eq!(log.len(), 4 + 5);
    assert!(log.iter().all(|e| e.state == EventState::Published));
    assert!(
        log.windows(2)
            .all(|w| w[0].event.sort_key() >= w[1].event.sort_key())
    );
    assert_eq!(log[0].event.kind.as_str(), "sync.finished");
}

#[tokio::test]
async fn a_failing_sync_publishes_sync_failed_with_its_reason() {
    // Arrange: member writes fail after the first one
    let app = spawn_app().await;
    let sub = Subscription::new().await;
    for i in 0..3 {
        app.create_user(&person(&format!("u{i}@contoso.com"), "T", "Oslo"))
            .await;
    }
    let failing = Arc::new(FailingAfter {
        inner: members_store(&app),
        ok: AtomicUsize::new(1),
    });

    // Act
    let err = engine_with(&app, failing)
        .sync(&app.tenant, member_sync::SyncOptions::default())
        .await
        .expect_err("the run stops");
    let published = members_with(&app, sub.sink.clone())
        .publish_events(&app.tenant)
        .await
        .expect("published");

    // Assert: the one member written, and the failure with its reason
    let got = sub.details().await;
    assert_eq!(published, 2);
    assert_eq!(types(&got), vec!["member.created", "sync.failed"]);
    let failed = one(&got, "sync.failed");
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("injected failure")),
        "{failed} / {err}"
    );
    assert!(failed["runId"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(failed["tenant"], app.tenant.as_str());
}

/// A sink that forwards to the real one; on call `hang_on` (1-based) it
/// forwards and then never returns, as if the publisher were killed right
/// after EventBridge accepted the batch.
#[derive(Debug)]
struct DiesAfterSending {
    inner: Arc<EventBridgeSink>,
    calls: AtomicUsize,
    hang_on: usize,
}

#[async_trait]
impl EventSink for DiesAfterSending {
    async fn put_events(&self, events: &[AppEvent]) -> Result<Vec<Option<String>>, SinkError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let result = self.inner.put_events(events).await;
        if call == self.hang_on {
            std::future::pending::<()>().await;
        }
        result
    }
}

#[tokio::test]
async fn killing_the_publisher_mid_way_loses_no_event_and_a_rerun_resends_with_the_same_ids() {
    // Arrange: 25 members created, 26 events pending
    let app = spawn_app().await;
    let sub = Subscription::new().await;
    for i in 0..25 {
        app.create_user(&person(&format!("u{i:02}@contoso.com"), "T", "Oslo"))
            .await;
    }
    synchronize(&members_without_sink(&app), &app.tenant).await;
    let pending = members_without_sink(&app)
        .events(&app.tenant, 100)
        .await
        .expect("log");
    assert_eq!(pending.len(), 26);
    assert!(pending.iter().all(|e| e.state == EventState::Pending));
    let expected: BTreeSet<String> = pending.iter().map(|e| e.event.id.clone()).collect();

    // Act: killed after the 2nd batch was accepted, before it was confirmed
    let dying = members_with(
        &app,
        Arc::new(DiesAfterSending {
            inner: sub.sink.clone(),
            calls: AtomicUsize::new(0),
            hang_on: 2,
        }),
    );
    let killed =
        tokio::time::timeout(Duration::from_secs(3), dying.publish_events(&app.tenant)).await;
    assert!(killed.is_err(), "the publisher was killed");
    let first = sub.details().await;
    let log = members_without_sink(&app)
        .events(&app.tenant, 100)
        .await
        .expect("log");
    let still_pending = log
        .iter()
        .filter(|e| e.state == EventState::Pending)
        .count();
    let rerun = members_with(&app, sub.sink.clone())
        .publish_events(&app.tenant)
        .await
        .expect("rerun publishes");
    let second = sub.details().await;

    // Assert
    assert_eq!(
        first.len(),
        2 * MAX_EVENTS_PER_PUT,
        "two batches were accepted"
    );
    assert_eq!(
        still_pending,
        26 - MAX_EVENTS_PER_PUT,
        "only the confirmed batch left the outbox"
    );
    assert_eq!(rerun, still_pending);
    let mut all = first.clone();
    all.extend(second.iter().cloned());
    assert_eq!(ids(&all), expected, "no event lost");
    let mut seen: BTreeMap<String, &Value> = BTreeMap::new();
    let mut duplicates = 0;
    for d in &all {
        let id = d["id"].as_str().expect("id").to_owned();
        if let Some(earlier) = seen.insert(id, d) {
            assert_eq!(earlier, d, "a duplicate is the same event");
            duplicates += 1;
        }
    }
    assert_eq!(
        duplicates, MAX_EVENTS_PER_PUT,
        "the unconfirmed batch came twice"
    );
    let log = members_without_sink(&app)
        .events(&app.tenant, 100)
        .await
        .expect("log");
    assert_eq!(log.len(), 26);
    assert!(log.iter().all(|e| e.state == EventState::Published));
}

#[tokio::test]
async fn another_tenants_events_are_never_in_a_tenants_tail_or_publish() {
    // Arrange: a user and a sync in each of two tenants, nothing published
    let app = spawn_app().await;
    let sub = Subscription::new().await;
    let other = TenantId::parse(&format!(
        "o{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ))
    .expect("tenant id");
    let other_token = app.other_tenant(other.as_str()).await;
    app.create_user(&person("mine@contoso.com", "T", "Oslo"))
        .await;
    let reply = app
        .send_with(
            "POST",
            "/Users",
            Some(&person("theirs@contoso.com", "T", "Oslo")),
            &other_token,
            &[],
        )
        .await;
    assert_eq!(reply.status, 201);
    let quiet = members_without_sink(&app);
    synchronize(&quiet, &app.tenant).await;
    synchronize(&quiet, &other).await;

    // Act
    let mine = quiet.events(&app.tenant, 100).await.expect("log");
    let theirs = quiet.events(&other, 100).await.expect("log");
    let published = members_with(&app, sub.sink.clone())
        .publish_events(&app.tenant)
        .await
        .expect("published");
    let got = sub.details().await;

    // Assert
    assert_eq!(mine.len(), 2);
    assert_eq!(theirs.len(), 2);
    assert!(mine.iter().all(|e| e.event.tenant == app.tenant.as_str()));
    assert!(theirs.iter().all(|e| e.event.tenant == other.as_str()));
    assert_eq!(published, 2);
    assert!(
        got.iter().all(|d| d["tenant"] == app.tenant.as_str()),
        "{got:#?}"
    );
    let theirs_after = quiet.events(&other, 100).await.expect("log");
    assert!(
        theirs_after.iter().all(|e| e.state == EventState::Pending),
        "untouched"
    );
}

#[tokio::test]
async fn a_dry_run_publishes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let sub = Subscription::new().await;
    let members = members_with(&app, sub.sink.clone());
    app.create_user(&person("preview@contoso.com", "T", "Oslo"))
        .await;

    // Act
    let preview = members
        .synchronize(
            &app.tenant,
            SyncRequest {
                dry_run: true,
                full: false,
            },
            Duration::from_secs(60),
            |_| {},
        )
        .await
        .expect("preview");
    let published = members.publish_events(&app.tenant).await.expect("publish");

    // Assert
    assert_eq!(preview.counts.created, 1);
    assert_eq!(published, 0);
    assert!(
        members
            .events(&app.tenant, 100)
            .await
            .expect("log")
            .is_empty()
    );
    assert!(sub.received().await.is_empty());
}

#[tokio::test]
async fn member_writes_cost_no_extra_request_and_publishing_costs_a_query_and_a_transaction_per_ten()
 {
    // Arrange
    let app = spawn_app().await;
    let sub = Subscription::new().await;
    for i in 0..12 {
        app.create_user(&person(&format!("c{i:02}@contoso.com"), "T", "Oslo"))
            .await;
    }
    let quiet = members_without_sink(&app);
    app.requests.take();

    // Act
    synchronize(&quiet, &app.tenant).await;
    let sync_cost = app.requests.take();
    let published = members_with(&app, sub.sink.clone())
        .publish_events(&app.tenant)
        .await
        .expect("published");
    let publish_cost = app.requests.take();

    // Assert: one transaction per member and one to finish, as without events
    println!("sync of 12 new users: {sync_cost:?}");
    println!("publishing 13 events: {publish_cost:?} + 2 PutEvents");
    assert_eq!(sync_cost.get("TransactWriteItems"), Some(&(12 + 1)));
    assert_eq!(published, 13);
    assert_eq!(
        publish_cost,
        BTreeMap::from([
            ("Query".to_owned(), 1),
            ("TransactWriteItems".to_owned(), 2)
        ]),
        "one outbox read, one confirmation per PutEvents batch"
    );
    assert_eq!(sub.details().await.len(), 13);
}
