//! `scimsync events tail` and `scimsync events publish`.

use anyhow::{Context, Result};
use scim_store::events::LoggedEvent;
use serde_json::{Value, json};

use crate::cli::EventsCommand;
use crate::commands::Ctx;

/// One event as `--json` prints it: its state and the event document.
fn event_json(e: &LoggedEvent) -> Value {
    json!({
        "state": e.state.as_str(),
        "published": e.published,
        "event": serde_json::to_value(&e.event).unwrap_or_default(),
    })
}

/// One event as a line: time, state, type, id, then what it is about.
fn event_line(e: &LoggedEvent) -> String {
    let ev = &e.event;
    let mut line = format!(
        "{}  {:<9}  {:<18}  {}",
        ev.time,
        e.state.as_str(),
        ev.kind.as_str(),
        ev.id
    );
    if let Some(m) = &ev.member_id {
        line.push_str(&format!("  member={m}"));
    }
    if let Some(u) = &ev.user_id {
        line.push_str(&format!("  user={u}"));
    }
    if !ev.changed.is_empty() {
        line.push_str(&format!("  changed={}", ev.changed.join(",")));
    }
    if let Some(r) = &ev.run_id {
        line.push_str(&format!("  run={r}"));
    }
    if let Some(c) = &ev.counts {
        line.push_str(&format!("  counts={c}"));
    }
    if let Some(r) = &ev.reason {
        line.push_str(&format!("  reason={}", Value::String(r.clone())));
    }
    line
}

pub async fn run(ctx: &Ctx, command: EventsCommand) -> Result<()> {
    let members = ctx.members()?;
    match command {
        EventsCommand::Tail { tenant, limit } => {
            let events = members
                .events(&tenant, usize::from(limit))
                .await
                .with_context(|| format!("reading the events of tenant {tenant}"))?;
            for e in &events {
                if ctx.json {
                    println!("{}", event_json(e));
                } else {
                    println!("{}", event_line(e));
                }
            }
        }
        EventsCommand::Publish(t) => {
            let published = members.publish_events(&t.tenant).await.with_context(|| {
                format!(
                    "publishing the events of tenant {} (deployed: set EVENT_BUS_NAME to the \
                         stack's EventBusName, or `default`)",
                    t.tenant
                )
            })?;
            ctx.print(
                &json!({"tenant": t.tenant.as_str(), "published": published}),
                || format!("Tenant: {}\nPublished: {published}", t.tenant),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use scim_proto::ids::TenantId;
    use scim_store::events::{AppEvent, EventState};

    use super::*;

    #[test]
    fn a_sync_event_line_names_its_run_and_counts() {
        let t = TenantId::parse("acme").unwrap();
        let e = LoggedEvent {
            event: AppEvent::sync_finished(
                &t,
                "r1",
                "2026-11-30T08:00:00.000Z",
                json!({"created": 1}),
            ),
            state: EventState::Published,
            published: Some("2026-11-30T08:00:01.000Z".into()),
        };
        assert_eq!(
            event_line(&e),
            "2026-11-30T08:00:00.000Z  published  sync.finished       acme/sync/r1/finished  run=r1  counts={\"created\":1}"
        );
        let v = event_json(&e);
        assert_eq!(v["state"], "published");
        assert_eq!(v["event"]["type"], "sync.finished");
        assert_eq!(v["event"]["schemaVersion"], "1");
    }
}
