//! `scimsync activity`: the tenant's provisioning activity, newest first.
//! One line per entry for people (time, who, what, about whom, outcome and
//! why), or a JSON array with `--json`.

use anyhow::Result;
use scim_proto::ids::TenantId;
use scim_store::activity::{ActivityEntry, ActivityQuery};
use serde_json::{Value, json};

use crate::commands::Ctx;

pub async fn show(
    ctx: &Ctx,
    tenant: &TenantId,
    user: Option<String>,
    failed: bool,
    limit: usize,
) -> Result<()> {
    let query = ActivityQuery {
        resource_id: user,
        failed_only: failed,
        limit,
    };
    let entries = ctx.domain.activity.recent(tenant, &query).await?;
    ctx.print(
        &Value::Array(entries.iter().map(entry_json).collect()),
        || {
            if entries.is_empty() {
                return "No activity in the last 30 days.".to_owned();
            }
            entries
                .iter()
                .map(entry_line)
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    Ok(())
}

pub fn entry_json(e: &ActivityEntry) -> Value {
    json!({
        "at": e.at,
        "source": e.source,
        "operation": e.operation.as_str(),
        "resourceType": e.resource_type,
        "id": e.id,
        "name": e.name,
        "outcome": e.outcome.as_str(),
        "summary": e.summary,
        "status": e.rejection.as_ref().map(|r| r.status),
        "scimType": e.rejection.as_ref().and_then(|r| r.scim_type.clone()),
        "detail": e.rejection.as_ref().map(|r| r.detail.clone()),
        "suppressed": e.suppressed,
    })
}

/// `<at>  <source> <operation> <type> <name (id)>  <outcome>[: why]`.
fn entry_line(e: &ActivityEntry) -> String {
    let subject = match (&e.name, &e.id) {
        (Some(n), Some(id)) => format!("{n} ({id})"),
        (Some(n), None) => n.clone(),
        (None, Some(id)) => id.clone(),
        (None, None) => "-".to_owned(),
    };
    let mut line = format!(
        "{}  {:<9} {:<11} {:<5} {}  {}",
        e.at,
        e.source,
        e.operation.as_str(),
        if e.resource_type.is_empty() {
            "-"
        } else {
            &e.resource_type
        },
        subject,
        e.outcome.as_str()
    );
    if let Some(r) = &e.rejection {
        let kind = r
            .scim_type
            .as_deref()
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        line.push_str(&format!(" {}{kind}: {}", r.status, r.detail));
    }
    if let Some(s) = &e.summary {
        line.push_str(&format!(": {s}"));
    }
    if e.suppressed > 0 {
        line.push_str(&format!(" (+{} more rejections not logged)", e.suppressed));
    }
    line
}
