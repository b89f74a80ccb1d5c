//! The page's sections, in the order the admin meets them.

use maud::{Markup, html};
use member_sync::ChangeAction;
use scim_domain::tenancy::CALL_RECORD_INTERVAL;

use super::{CHANGES_PER_PAGE, COPY_ICON, Extras, PageData, action_word, show};
use crate::session::PageSession;

fn csrf(s: &PageSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

fn copy_field(id: &str, label: &str, value: &str) -> Markup {
    html! {
        div.copy {
            label for=(id) { (label) }
            div.row {
                input id=(id) type="text" readonly value=(value);
                button.copy-button type="button" data-copy=(id) { (COPY_ICON) }
            }
        }
    }
}

pub fn activate(s: &PageSession, d: &PageData, x: &Extras) -> Markup {
    html! {
        section.card #activate {
            h2 { "Step 1 — Activate user provisioning" }
            @if let Some(token) = &x.revealed_token {
                p.warning role="alert" { "Copy the API token now: it is shown only this once. If you lose it, generate an additional token." }
                (copy_field("tenant-url", "Tenant URL", &d.tenant_url))
                (copy_field("api-token", "API token (Secret Token)", token))
            } @else if d.status.active {
                (copy_field("tenant-url", "Tenant URL", &d.tenant_url))
            }
            @if d.status.active {
                table #tokens {
                    caption { "Active tokens" }
                    thead { tr { th scope="col" { "Token id" } th scope="col" { "Created" } } }
                    tbody {
                        @for t in &d.status.tokens {
                            tr { td { code { (t.id) } } td { time datetime=(rfc3339(&t.created)) { (readable_time(&rfc3339(&t.created))) } } }
                        }
                    }
                }
                div.actions {
                    form method="post" action="/portal/tokens" {
                        (csrf(s))
                        button type="submit" { "Generate an additional token" }
                    }
                    a.button.danger href="/portal/revoke" { "Revoke all tokens" }
                }
            } @else {
                p { "Activating creates the API token your identity provider uses to send users and groups to this account." }
                form method="post" action="/portal/activate" {
                    (csrf(s))
                    button.primary type="submit" { "Activate user provisioning" }
                }
            }
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// What a running sync has done so far (the script refreshes this line
/// from `/portal/api/sync` while the run goes on).
fn running_text(progress: Option<&member_sync::RunProgress>) -> String {
    match progress {
        None => "A synchronization is running…".to_owned(),
        Some(p) => format!(
            "A synchronization is running… so far {} created, {} updated, {} deactivated, {} reactivated, {} failed.",
            p.counts.created,
            p.counts.updated,
            p.counts.deactivated,
            p.counts.reactivated,
            p.counts.failed
        ),
    }
}

fn next_sync(d: &PageData) -> String {
    match &d.schedule {
        Some(schedule) => schedule.describe(time::OffsetDateTime::now_utc()),
        None => "This local server has no automatic synchronization: use Synchronize.".to_owned(),
    }
}

/// `2026-11-30T05:40:12.345Z` as `2026-11-30 05:40 UTC`.
fn readable_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(day), Some(minute)) => format!("{day} {minute} UTC"),
        _ => rfc3339.to_owned(),
    }
}

fn rfc3339(t: &time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn connect(d: &PageData) -> Markup {
    html! {
        section.card #connect {
            h2 { "Step 2 — Connect Microsoft Entra ID" }
            ol.steps {
                li { "In the Microsoft Entra admin center, open " b { "Enterprise applications" } " → " b { "New application" } " → " b { "Create your own application" } ", and choose " i { "Integrate any other application you don't find in the gallery (Non-gallery)" } "." }
                li { "In the new application, open " b { "Provisioning" } ", and set " b { "Provisioning Mode" } " to " b { "Automatic" } "." }
                li { "Under " b { "Admin Credentials" } ", enter the " b { "Tenant URL" } " " code { (d.tenant_url) } " and, as " b { "Secret Token" } ", the API token from step 1. Click " b { "Test Connection" } "." }
                li { "Under " b { "Mappings" } " → " i { "Provision Microsoft Entra ID Users" } ": match users on " code { "objectId" } " → " code { "externalId" } " (matching precedence 1), and turn matching on " code { "userName" } " off. Under " i { "Provision Microsoft Entra ID Groups" } ", match on " code { "objectId" } " → " code { "externalId" } "." }
                li { "Under " b { "Users and groups" } ", assign the users and groups to provision." }
                li { "Back under " b { "Provisioning" } ", set " b { "Provisioning Status" } " to " b { "On" } " and save." }
            }
            details #connect-okta {
                summary { "Using Okta instead?" }
                ol.steps {
                    li { "In the Okta Admin Console, open " b { "Applications" } " → " b { "Create App Integration" } ", then on the integration's " b { "General" } " tab choose " b { "Provisioning: SCIM" } "." }
                    li { "Under " b { "Provisioning" } " → " b { "Integration" } ": " b { "SCIM connector base URL" } " " code { (d.tenant_url) } ", " b { "Unique identifier field for users" } " " code { "userName" } ", provisioning actions " i { "Push New Users" } ", " i { "Push Profile Updates" } " and " i { "Push Groups" } ", " b { "Authentication Mode" } " " i { "HTTP Header" } " with the API token from step 1. Click " b { "Test Connector Configuration" } "." }
                    li { "Under " b { "To App" } ", enable " b { "Create Users" } ", " b { "Update User Attributes" } " and " b { "Deactivate Users" } "." }
                    li { "Assign people and groups under " b { "Assignments" } ", and push groups under " b { "Push Groups" } ". Okta matches users on " code { "userName" } "; a deactivated user is deactivated here at the next synchronization." }
                }
            }
            div #idp-activity {
                p #last-call {
                    @match &d.status.last_call {
                        None => "Your identity provider has not called yet. After Test Connection or the first provisioning cycle, this says when it last did.",
                        Some(call) => {
                            "Last request from " b { (call.provider.display_name()) } ": "
                            time datetime=(call.at) { (readable_time(&call.at)) }
                            " (noted at most every " (CALL_RECORD_INTERVAL.as_secs() / 60) " minutes)."
                        }
                    }
                }
                p #provisioned {
                    @if d.status.users == 0 && d.status.groups == 0 {
                        "Nothing has been provisioned to this account yet."
                    } @else {
                        "Provisioned so far: " (plural(d.status.users, "user")) " · " (plural(d.status.groups, "group"))
                    }
                }
            }
        }
    }
}

pub fn preview(s: &PageSession, d: &PageData) -> Markup {
    let c = &d.preview.counts;
    let changes = &d.preview.changes;
    let from = d.changes_from.min(changes.len());
    let page: Vec<_> = changes.iter().skip(from).take(CHANGES_PER_PAGE).collect();
    html! {
        section.card #preview {
            h2 { "Step 3 — Users available to be synced" }
            div.tiles {
                div.tile { span #count-create { (c.created) } " new" }
                div.tile { span #count-update { (c.updated) } " updated" }
                div.tile { span #count-deactivate { (c.deactivated) } " deactivated" }
                div.tile { span #count-reactivate { (c.reactivated) } " reactivated" }
            }
            @if changes.is_empty() {
                p { "Members are up to date with your identity provider." }
            } @else {
                table #changes {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Email" } th scope="col" { "Change" } } }
                    tbody {
                        @for ch in &page {
                            tr.change data-action=(format!("{:?}", ch.action).to_lowercase()) {
                                td { (ch.display_name) }
                                td { (ch.email) }
                                td {
                                    (action_word(ch.action))
                                    @if ch.action == ChangeAction::Update && !(ch.fields.is_empty() && ch.properties.is_empty()) {
                                        details {
                                            summary { "What changes" }
                                            ul {
                                                @for (name, v) in ch.fields.iter().chain(ch.properties.iter()) {
                                                    li { b { (name) } ": " (show(&v.before)) " → " (show(&v.after)) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                nav.pager aria-label="Changes pages" {
                    @if from > 0 { a href=(format!("/portal?from={}#preview", from.saturating_sub(CHANGES_PER_PAGE))) { "Previous" } }
                    " " (from + 1) "–" (from + page.len()) " of " (changes.len()) " "
                    @if from + CHANGES_PER_PAGE < changes.len() { a href=(format!("/portal?from={}#preview", from + CHANGES_PER_PAGE)) { "Next" } }
                }
            }
            form method="post" action="/portal/sync" #sync-form {
                (csrf(s))
                @if d.sync.running {
                    button.primary type="submit" disabled { "Synchronize" }
                    p #sync-running role="status" aria-live="polite" { (running_text(d.sync.progress.as_ref())) }
                } @else {
                    button.primary type="submit" { "Synchronize" }
                }
            }
            p #last-sync {
                @if d.sync.running {
                    "A synchronization is running… "
                }
                @match &d.sync.last_success {
                    Some(t) => { "Last synchronized: " time datetime=(t) { (readable_time(t)) } }
                    None => { "Not synchronized yet." }
                }
                @if let Some(r) = d.history.iter().find(|r| r["dryRun"] != true) {
                    " · " span.last-counts {
                        (show(&r["counts"]["created"])) " created, "
                        (show(&r["counts"]["updated"])) " updated, "
                        (show(&r["counts"]["deactivated"])) " deactivated, "
                        (show(&r["counts"]["reactivated"])) " reactivated, "
                        (show(&r["counts"]["failed"])) " failed"
                    }
                }
                " · " span #next-sync { (next_sync(d)) }
            }
        }
    }
}

pub fn mapping(s: &PageSession, d: &PageData, x: &Extras) -> Markup {
    let rows = x.mapping_rows.as_ref().unwrap_or(&d.mapping);
    let error_row = x.mapping_error.as_ref().and_then(|(i, _)| *i);
    html! {
        section.card #mapping {
            h2 { "Attribute mapping" }
            p { "Each row copies a SCIM attribute of a provisioned user into a property of its member." }
            @if let Some((None, msg)) = &x.mapping_error { p.row-error role="alert" { (msg) } }
            form method="post" action="/portal/mapping" {
                (csrf(s))
                table #mapping-table {
                    thead { tr { th scope="col" { "SCIM attribute" } th scope="col" { "Member property" } } }
                    tbody {
                        @for (i, row) in rows.iter().enumerate() {
                            tr.mapping-row {
                                td { label.visually-hidden for=(format!("path-{i}")) { "SCIM attribute" }
                                     input id=(format!("path-{i}")) name="path" value=(row.path); }
                                td { label.visually-hidden for=(format!("property-{i}")) { "Member property" }
                                     input id=(format!("property-{i}")) name="property" value=(row.property);
                                     @if error_row == Some(i + 1) {
                                         @if let Some((_, msg)) = &x.mapping_error { p.row-error role="alert" { (msg) } }
                                     }
                                }
                            }
                        }
                        tr.mapping-row.new {
                            td { label.visually-hidden for="path-new" { "SCIM attribute" }
                                 input id="path-new" name="path" placeholder="e.g. title"; }
                            td { label.visually-hidden for="property-new" { "Member property" }
                                 input id="property-new" name="property" placeholder="e.g. jobTitle"; }
                        }
                    }
                }
                p.hint { "Clear both cells of a row to remove it." }
                button.primary type="submit" { "Save mapping" }
            }
            form method="post" action="/portal/mapping/reset" {
                (csrf(s))
                button type="submit" { "Reset to defaults" }
            }
        }
    }
}

pub fn members(d: &PageData) -> Markup {
    html! {
        section.card #members {
            h2 { "Members" }
            @if d.members.is_empty() {
                p { "No members yet." }
            } @else {
                table #members-table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Email" } th scope="col" { "Status" } th scope="col" { "Managed by" } th scope="col" { "Properties" } } }
                    tbody {
                        @for m in &d.members {
                            @let v = serde_json::to_value(m).unwrap_or_default();
                            tr {
                                td { (m.display_name) }
                                td { (m.email) }
                                td { (show(&v["status"])) }
                                td { (show(&v["managedBy"])) }
                                td { @for (k, val) in &m.properties { span.prop { b { (k) } ": " (show(val)) } " " } }
                            }
                        }
                    }
                }
                @if let Some(next) = &d.members_next {
                    nav.pager aria-label="Members pages" { a href=(format!("/portal?after={next}#members")) { "Next members" } }
                }
            }
        }
    }
}

pub fn history(d: &PageData) -> Markup {
    html! {
        section.card #history {
            h2 { "Synchronization history" }
            @if d.history.is_empty() {
                p { "No synchronization yet." }
            } @else {
                table #history-table {
                    thead { tr { th scope="col" { "Started" } th scope="col" { "Result" } th scope="col" { "New" } th scope="col" { "Updated" } th scope="col" { "Deactivated" } th scope="col" { "Reactivated" } th scope="col" { "Failed" } } }
                    tbody {
                        @for r in &d.history {
                            tr {
                                td { (show(&r["started"])) }
                                td { @if r["dryRun"] == true { "Preview" } @else if r["complete"] == true { "Complete" } @else { "Partial" } }
                                td { (show(&r["counts"]["created"])) }
                                td { (show(&r["counts"]["updated"])) }
                                td { (show(&r["counts"]["deactivated"])) }
                                td { (show(&r["counts"]["reactivated"])) }
                                td { (show(&r["counts"]["failed"])) }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn activity(d: &PageData) -> Markup {
    html! {
        section.card #activity {
            h2 { "Provisioning activity" }
            p.hint { "What your identity provider did here, what was refused and why, and each synchronization, newest first (kept 30 days)." }
            @if d.activity.is_empty() {
                p { "No activity yet." }
            } @else {
                table #activity-table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "From" } th scope="col" { "Request" } th scope="col" { "About" } th scope="col" { "Result" } } }
                    tbody {
                        @for e in &d.activity {
                            tr.(if e.outcome.is_failure() { "failed" } else { "ok" }) {
                                td { (readable_time(&e.at)) }
                                td { (e.source) }
                                td { (e.operation.as_str()) " " (e.resource_type) }
                                td { (e.name.as_deref().or(e.id.as_deref()).unwrap_or("")) }
                                td {
                                    (e.outcome.as_str())
                                    @if let Some(r) = &e.rejection {
                                        " (" (r.status) @if let Some(t) = &r.scim_type { " " (t) } "): " (r.detail)
                                    }
                                    @if let Some(s) = &e.summary { ": " (s) }
                                    @if e.suppressed > 0 { " (+" (e.suppressed) " more rejections not logged)" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
