//! The Members sync against the real stores: users provisioned through the
//! SCIM API, then previewed, synced, changed and synced again; mapping
//! changes; app-managed members; link by email; interruptions; the lease;
//! the cost of a sync with nothing to do.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use member_sync::mapping::{MappingEntry, parse_assignment};
use member_sync::{
    ChangeAction, SyncCounts, SyncEngine, SyncError, SyncOptions, SyncReport, reset_mapping,
    set_mapping, show_mapping,
};
use scim_proto::ids::TenantId;
use scim_store::StoreError;
use scim_store::groups::GroupStore;
use scim_store::members::{
    LinkKind, LinkRecord, ManagedBy, ManagerWait, Member, MemberLink, MemberStatus, MemberStore,
    MemberWrite,
};
use scim_store::sync_state::SyncStateStore;
use scim_store::users::UserStore;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

pub(crate) const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
pub(crate) const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

// --- Helpers ---------------------------------------------------------------------

pub(crate) fn members_store(app: &TestApp) -> Arc<dyn MemberStore> {
    app.stores
        .members
        .clone()
        .expect("members store configured")
}

pub(crate) fn state_store(app: &TestApp) -> Arc<dyn SyncStateStore> {
    app.stores
        .sync_state
        .clone()
        .expect("sync state configured")
}

pub(crate) fn engine_with(app: &TestApp, members: Arc<dyn MemberStore>) -> SyncEngine {
    let users: Arc<dyn UserStore> = app.stores.users.clone();
    let groups: Arc<dyn GroupStore> = app.stores.groups.clone();
    SyncEngine::new(users, groups, members, state_store(app))
}

pub(crate) fn engine(app: &TestApp) -> SyncEngine {
    engine_with(app, members_store(app))
}

pub(crate) async fn sync(app: &TestApp) -> SyncReport {
    engine(app)
        .sync(&app.tenant, SyncOptions::default())
        .await
        .expect("sync succeeds")
}

/// Syncs with invocations that each start past their deadline, so each does
/// one batch, until the run completes (at most 20); their reports.
pub(crate) async fn sync_a_batch_per_invocation(
    app: &TestApp,
    engine: &SyncEngine,
) -> Vec<SyncReport> {
    let mut reports = Vec::new();
    loop {
        let report = engine
            .sync(
                &app.tenant,
                SyncOptions {
                    deadline: Some(tokio::time::Instant::now()),
                    ..SyncOptions::default()
                },
            )
            .await
            .expect("each invocation succeeds");
        let complete = report.complete;
        reports.push(report);
        if complete || reports.len() > 20 {
            return reports;
        }
    }
}

pub(crate) async fn preview(app: &TestApp) -> SyncReport {
    engine(app)
        .sync(
            &app.tenant,
            SyncOptions {
                dry_run: true,
                ..SyncOptions::default()
            },
        )
        .await
        .expect("preview succeeds")
}

pub(crate) fn counts(
    created: u64,
    updated: u64,
    deactivated: u64,
    reactivated: u64,
    unchanged: u64,
) -> SyncCounts {
    SyncCounts {
        created,
        updated,
        deactivated,
        reactivated,
        unchanged,
        linked: 0,
        failed: 0,
    }
}

/// A provisioned user as Entra sends it, with the attributes the default
/// mapping reads.
pub(crate) fn person(user_name: &str, title: &str, city: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": uuid::Uuid::new_v4().to_string(),
        "userName": user_name,
        "active": true,
        "displayName": format!("Display {user_name}"),
        "title": title,
        "name": {"givenName": "Given", "familyName": "Family", "formatted": "Given Family"},
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "addresses": [{"type": "work", "locality": city, "country": "NO"}],
        "phoneNumbers": [{"type": "work", "value": "+47 5555"}],
        ENTERPRISE: {"department": "Retail", "employeeNumber": "42"}
    })
}

pub(crate) async fn patch_user(app: &TestApp, id: &str, ops: Value) {
    let reply = app
        .patch(
            &format!("/Users/{id}"),
            &json!({"schemas": [PATCH_OP], "Operations": ops}),
        )
        .await;
    assert!(
        (200..300).contains(&reply.status),
        "PATCH failed: {} {}",
        reply.status,
        reply.body
    );
}

async fn all_members(app: &TestApp) -> Vec<Member> {
    let store = members_store(app);
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, next) = store
            .list(&app.tenant, after.as_deref(), 100)
            .await
            .expect("list members");
        out.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

pub(crate) async fn member_of(app: &TestApp, user_id: &str) -> Member {
    all_members(app)
        .await
        .into_iter()
        .find(|m| m.scim_user_id.as_deref() == Some(user_id))
        .unwrap_or_else(|| panic!("no member linked to {user_id}"))
}

/// Every item of the Members table, raw, in key order.
async fn members_table(app: &TestApp) -> BTreeMap<(String, String), String> {
    let table = app.config.members_table.as_deref().expect("members table");
    let mut out = BTreeMap::new();
    let mut start = None;
    loop {
        let page = app
            .dynamodb
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in page.items() {
            let key = |k: &str| match item.get(k) {
                Some(AttributeValue::S(s)) => s.clone(),
                _ => String::new(),
            };
            let mut fields: Vec<String> = item.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            fields.sort();
            out.insert((key("pk"), key("sk")), fields.join(";"));
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return out;
        }
    }
}

/// The raw items of the app members given and of their email claims.
async fn app_member_items(app: &TestApp, members: &[Member]) -> BTreeMap<(String, String), String> {
    let ids: BTreeSet<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let emails: BTreeSet<String> = members.iter().map(Member::email_key).collect();
    members_table(app)
        .await
        .into_iter()
        .filter(|((pk, sk), _)| {
            (pk.ends_with("#MEMBER") && ids.contains(sk.as_str()))
                || (pk.ends_with("#MEMAIL") && emails.contains(sk))
        })
        .collect()
}

async fn dirty_left(app: &TestApp) -> usize {
    app.stores
        .users
        .dirty(&app.tenant, None, 1000)
        .await
        .expect("dirty set")
        .0
        .len()
}

pub(crate) fn prop<'a>(m: &'a Member, name: &str) -> Option<&'a Value> {
    m.properties.get(name)
}

/// What a member looks like, without timestamps and versions.
fn shape(m: &Member) -> Value {
    json!({
        "id": m.id, "email": m.email, "displayName": m.display_name,
        "status": m.status, "properties": m.properties,
        "scimUserId": m.scim_user_id, "managedBy": m.managed_by,
    })
}

// --- Preview and first sync ----------------------------------------------------------

#[tokio::test]
async fn preview_lists_what_the_first_sync_would_do_and_writes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let adele = app
        .create_user(&person("adele@contoso.com", "Retail Manager", "Oslo"))
        .await;
    app.create_user(&person("alex@contoso.com", "Engineer", "Bergen"))
        .await;
    let mut inactive = person("gone@contoso.com", "Intern", "Oslo");
    inactive["active"] = json!(false);
    app.create_user(&inactive).await;
    let before = members_table(&app).await;

    // Act
    let report = preview(&app).await;

    // Assert
    assert!(report.dry_run && report.full && report.complete);
    assert_eq!(report.counts, counts(2, 0, 0, 0, 1));
    assert_eq!(report.changes.len(), 2);
    let change = report
        .changes
        .iter()
        .find(|c| c.scim_user_id == adele)
        .expect("a change for adele");
    assert_eq!(change.action, ChangeAction::Create);
    assert_eq!(change.member_id, format!("m-{adele}"));
    assert_eq!(change.email, "adele@contoso.com");
    assert_eq!(change.properties["jobTitle"].before, Value::Null);
    assert_eq!(change.properties["jobTitle"].after, json!("Retail Manager"));
    assert_eq!(change.properties["city"].after, json!("Oslo"));
    assert_eq!(
        members_table(&app).await,
        before,
        "a preview writes nothing to the Members table"
    );
    assert!(before.is_empty());
    assert_eq!(dirty_left(&app).await, 3, "a preview clears no dirty item");
}

#[tokio::test]
async fn first_sync_creates_one_member_per_active_user_with_the_default_mapping() {
    // Arrange
    let app = spawn_app().await;
    let adele = app
        .create_user(&person("adele@contoso.com", "Retail Manager", "Oslo"))
        .await;
    app.create_user(&person("alex@contoso.com", "Engineer", "Bergen"))
        .await;
    let expected = preview(&app).await;

    // Act
    let report = sync(&app).await;

    // Assert
    assert!(!report.dry_run && report.full && report.complete);
    assert_eq!(report.counts, counts(2, 0, 0, 0, 0));
    assert_eq!(
        report.counts, expected.counts,
        "the sync did what the preview said"
    );
    let members = all_members(&app).await;
    assert_eq!(members.len(), 2);
    let m = member_of(&app, &adele).await;
    assert_eq!(m.id, format!("m-{adele}"));
    assert_eq!(m.email, "adele@contoso.com");
    assert_eq!(m.display_name, "Display adele@contoso.com");
    assert_eq!(m.status, MemberStatus::Active);
    assert_eq!(m.managed_by, ManagedBy::Provisioning);
    assert_eq!(
        m.properties,
        BTreeMap::from([
            ("jobTitle".to_owned(), json!("Retail Manager")),
            ("department".to_owned(), json!("Retail")),
            ("city".to_owned(), json!("Oslo")),
            ("country".to_owned(), json!("NO")),
            ("phone".to_owned(), json!("+47 5555")),
            ("employeeNumber".to_owned(), json!("42")),
        ])
    );
    for change in &expected.changes {
        let planned = json!({"id": change.member_id, "email": change.email});
        assert!(
            members
                .iter()
                .any(|m| json!({"id": m.id, "email": m.email}) == planned),
            "{planned} was previewed"
        );
    }
    assert_eq!(dirty_left(&app).await, 0, "the dirty set is drained");
    let json = serde_json::to_value(&m).unwrap();
    for key in [
        "id",
        "email",
        "displayName",
        "status",
        "properties",
        "managedBy",
    ] {
        assert!(json.get(key).is_some(), "member JSON has {key}: {json}");
    }
}

// --- Life cycle --------------------------------------------------------------------------

#[tokio::test]
async fn attribute_changes_disable_reenable_and_delete_are_synced_with_exact_counts() {
    // Arrange
    let app = spawn_app().await;
    let adele = app
        .create_user(&person("adele@contoso.com", "Retail Manager", "Oslo"))
        .await;
    app.create_user(&person("alex@contoso.com", "Engineer", "Bergen"))
        .await;
    let mut later = person("late@contoso.com", "Intern", "Oslo");
    later["active"] = json!(false);
    let late = app.create_user(&later).await;
    assert_eq!(sync(&app).await.counts, counts(2, 0, 0, 0, 1));

    // Act + Assert: an attribute change.
    patch_user(
        &app,
        &adele,
        json!([{"op": "Replace", "path": "title", "value": "Store Director"},
               {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Trondheim"}]),
    )
    .await;
    let report = sync(&app).await;
    assert!(!report.full);
    assert_eq!(report.counts, counts(0, 1, 0, 0, 0));
    let change = &report.changes[0];
    assert_eq!(change.action, ChangeAction::Update);
    assert_eq!(change.properties.len(), 2, "{change:?}");
    assert_eq!(
        change.properties["jobTitle"].before,
        json!("Retail Manager")
    );
    assert_eq!(change.properties["jobTitle"].after, json!("Store Director"));
    assert_eq!(change.properties["city"].after, json!("Trondheim"));
    assert!(change.fields.is_empty());

    // Disable.
    patch_user(
        &app,
        &adele,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    assert_eq!(sync(&app).await.counts, counts(0, 0, 1, 0, 0));
    assert_eq!(
        member_of(&app, &adele).await.status,
        MemberStatus::Deactivated
    );

    // Re-enable.
    patch_user(
        &app,
        &adele,
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    )
    .await;
    let report = sync(&app).await;
    assert_eq!(report.counts, counts(0, 0, 0, 1, 0));
    assert_eq!(report.changes[0].action, ChangeAction::Reactivate);
    assert_eq!(member_of(&app, &adele).await.status, MemberStatus::Active);

    // Delete.
    assert_eq!(app.delete(&format!("/Users/{adele}")).await.status, 204);
    let preview = preview(&app).await;
    let report = sync(&app).await;
    assert_eq!(report.counts, counts(0, 0, 1, 0, 0));
    assert_eq!(preview.counts, report.counts);
    let m = all_members(&app)
        .await
        .into_iter()
        .find(|m| m.id == format!("m-{adele}"))
        .expect("the member of a deleted user is kept");
    assert_eq!(m.status, MemberStatus::Deactivated);
    assert_eq!(m.scim_user_id, None, "unlinked from the deleted user");

    // A user activated later gets its member then.
    patch_user(
        &app,
        &late,
        json!([{"op": "Replace", "path": "active", "value": true}]),
    )
    .await;
    assert_eq!(sync(&app).await.counts, counts(1, 0, 0, 0, 0));

    // Nothing changed: nothing to do.
    assert_eq!(sync(&app).await.counts, SyncCounts::default());
    assert_eq!(all_members(&app).await.len(), 3);
}

#[tokio::test]
async fn a_returning_user_with_the_email_of_a_deleted_users_member_is_relinked_to_it() {
    // Arrange
    let app = spawn_app().await;
    let first = app
        .create_user(&person("adele@contoso.com", "Retail Manager", "Oslo"))
        .await;
    sync(&app).await;
    assert_eq!(app.delete(&format!("/Users/{first}")).await.status, 204);
    sync(&app).await;
    let again = app
        .create_user(&person("adele@contoso.com", "Store Director", "Oslo"))
        .await;

    // Act
    let report = sync(&app).await;

    // Assert
    assert_eq!(report.counts.linked, 1);
    assert_eq!(report.changes[0].link, Some(LinkKind::Relinked));
    let members = all_members(&app).await;
    assert_eq!(members.len(), 1, "no second member for the returning user");
    assert_eq!(members[0].id, format!("m-{first}"));
    assert_eq!(members[0].scim_user_id.as_deref(), Some(again.as_str()));
    assert_eq!(members[0].status, MemberStatus::Active);
    assert_eq!(
        prop(&members[0], "jobTitle"),
        Some(&json!("Store Director"))
    );
}

// --- Manager and groups ---------------------------------------------------------------------

#[tokio::test]
async fn the_manager_property_is_the_managers_member_id_and_resolves_once_the_manager_has_one() {
    // Arrange: an active boss, and a boss not yet active.
    let app = spawn_app().await;
    let boss = app
        .create_user(&person("boss@contoso.com", "CEO", "Oslo"))
        .await;
    let mut pending_boss = person("pending@contoso.com", "CFO", "Oslo");
    pending_boss["active"] = json!(false);
    let pending_boss = app.create_user(&pending_boss).await;
    let mut report_a = person("a@contoso.com", "Clerk", "Oslo");
    report_a[ENTERPRISE]["manager"] = json!({"value": boss});
    let a = app.create_user(&report_a).await;
    let mut report_b = person("b@contoso.com", "Clerk", "Oslo");
    report_b[ENTERPRISE]["manager"] = json!(pending_boss);
    let b = app.create_user(&report_b).await;

    // Act
    let first = sync(&app).await;

    // Assert: resolved in the same sync, whatever the order of the users.
    assert_eq!(first.counts, counts(3, 0, 0, 0, 1));
    assert_eq!(
        prop(&member_of(&app, &a).await, "manager"),
        Some(&json!(format!("m-{boss}")))
    );
    assert_eq!(prop(&member_of(&app, &b).await, "manager"), None);

    // Act: the pending boss becomes active; only the boss is dirty.
    patch_user(
        &app,
        &pending_boss,
        json!([{"op": "Replace", "path": "active", "value": true}]),
    )
    .await;
    let second = sync(&app).await;

    // Assert: the report's manager is filled in by the same sync.
    assert_eq!(second.counts, counts(1, 1, 0, 0, 0));
    assert_eq!(
        prop(&member_of(&app, &b).await, "manager"),
        Some(&json!(format!("m-{pending_boss}")))
    );
    assert_eq!(sync(&app).await.counts, SyncCounts::default());
}

// --- Mapping --------------------------------------------------------------------------------

#[tokio::test]
async fn a_mapping_change_triggers_a_full_reconciliation_and_properties_follow_it() {
    // Arrange
    let app = spawn_app().await;
    let mut body = person("adele@contoso.com", "Retail Manager", "Oslo");
    body[CUSTOM] = json!({"costCode": "CC-7"});
    let adele = app.create_user(&body).await;
    app.create_user(&person("alex@contoso.com", "Engineer", "Bergen"))
        .await;
    let group = app
        .post(
            "/Groups",
            &json!({"displayName": "Sales", "members": [{"value": adele}]}),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.body);
    sync(&app).await;
    assert!(!sync(&app).await.full, "unchanged mapping: incremental");
    let entries: Vec<MappingEntry> = [
        "name.givenName=firstName",
        r#"emails[type eq "work"].value=workEmail"#,
        &format!("{ENTERPRISE}:department=department"),
        &format!("{CUSTOM}:costCode=costCenter"),
        "groups=teams",
    ]
    .iter()
    .map(|a| parse_assignment(a).expect("assignment parses"))
    .collect();

    // Act
    set_mapping(state_store(&app).as_ref(), &app.tenant, entries.clone())
        .await
        .expect("valid mapping saved");
    let expected = preview(&app).await;
    let report = sync(&app).await;

    // Assert
    assert_eq!(
        show_mapping(state_store(&app).as_ref(), &app.tenant)
            .await
            .unwrap(),
        entries
    );
    assert!(
        report.full,
        "a mapping change triggers a full reconciliation"
    );
    assert_eq!(report.counts, counts(0, 2, 0, 0, 0));
    assert_eq!(expected.counts, report.counts);
    assert_eq!(expected.changes, report.changes, "the preview was exact");
    let m = member_of(&app, &adele).await;
    assert_eq!(
        m.properties,
        BTreeMap::from([
            ("firstName".to_owned(), json!("Given")),
            ("workEmail".to_owned(), json!("adele@contoso.com")),
            ("department".to_owned(), json!("Retail")),
            ("costCenter".to_owned(), json!("CC-7")),
            ("teams".to_owned(), json!(["Sales"])),
        ])
    );
    let change = report
        .changes
        .iter()
        .find(|c| c.scim_user_id == adele)
        .unwrap();
    assert_eq!(change.properties["jobTitle"].after, Value::Null);
    assert_eq!(change.properties["teams"].after, json!(["Sales"]));
    assert!(!sync(&app).await.full, "applied: back to incremental");

    // Act: back to the defaults.
    reset_mapping(state_store(&app).as_ref(), &app.tenant)
        .await
        .unwrap();
    let report = sync(&app).await;

    // Assert
    assert!(report.full);
    assert_eq!(report.counts, counts(0, 2, 0, 0, 0));
    assert_eq!(
        prop(&member_of(&app, &adele).await, "jobTitle"),
        Some(&json!("Retail Manager"))
    );
}

#[tokio::test]
async fn an_invalid_mapping_is_refused_with_the_entry_named_and_nothing_is_saved() {
    // Arrange
    let app = spawn_app().await;
    let state = state_store(&app);
    let before = show_mapping(state.as_ref(), &app.tenant).await.unwrap();
    let entries = vec![
        MappingEntry::new("title", "jobTitle"),
        MappingEntry::new("favouriteColour", "colour"),
    ];

    // Act
    let err = set_mapping(state.as_ref(), &app.tenant, entries)
        .await
        .expect_err("an unknown attribute is refused");

    // Assert
    assert!(matches!(err, SyncError::Mapping(_)));
    assert!(
        err.to_string().contains("entry 2 (favouriteColour=colour)"),
        "{err}"
    );
    assert_eq!(
        show_mapping(state.as_ref(), &app.tenant).await.unwrap(),
        before
    );
    assert_eq!(state.mapping(&app.tenant).await.unwrap().version, 0);
    assert!(members_table(&app).await.is_empty(), "nothing saved");
}

// --- App members and linking -------------------------------------------------------------------

#[tokio::test]
async fn app_managed_members_are_byte_for_byte_unchanged_through_every_sync() {
    // Arrange: app members, one sharing a provisioned user's display name.
    let app = spawn_app().await;
    let store = members_store(&app);
    let app_members = vec![
        store
            .add_app_member(&app.tenant, "owner@contoso.com", "Owner")
            .await
            .unwrap(),
        store
            .add_app_member(
                &app.tenant,
                "Display adele@contoso.com@app",
                "Display adele@contoso.com",
            )
            .await
            .unwrap(),
    ];
    let before = app_member_items(&app, &app_members).await;
    assert_eq!(before.len(), 4, "two members and their email claims");

    // Act: the whole life cycle, a mapping change, a full sync.
    let adele = app
        .create_user(&person("adele@contoso.com", "Retail Manager", "Oslo"))
        .await;
    sync(&app).await;
    patch_user(
        &app,
        &adele,
        json!([{"op": "Replace", "path": "title", "value": "X"}]),
    )
    .await;
    sync(&app).await;
    patch_user(
        &app,
        &adele,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    sync(&app).await;
    set_mapping(
        state_store(&app).as_ref(),
        &app.tenant,
        vec![MappingEntry::new("name.familyName", "surname")],
    )
    .await
    .unwrap();
    sync(&app).await;
    assert_eq!(app.delete(&format!("/Users/{adele}")).await.status, 204);
    sync(&app).await;
    engine(&app)
        .sync(
            &app.tenant,
            SyncOptions {
                full: true,
                ..SyncOptions::default()
            },
        )
        .await
        .unwrap();

    // Assert
    assert_eq!(app_member_items(&app, &app_members).await, before);
    assert_eq!(all_members(&app).await.len(), 3);
}

#[tokio::test]
async fn with_link_by_email_on_an_app_member_with_the_users_email_is_linked_and_recorded() {
    // Arrange
    let app = spawn_app().await;
    let store = members_store(&app);
    let state = state_store(&app);
    state.set_link_by_email(&app.tenant, true).await.unwrap();
    let existing = store
        .add_app_member(&app.tenant, "Adele@Contoso.com", "Adele (app)")
        .await
        .unwrap();
    let adele = app
        .create_user(&person("adele@contoso.com", "Retail Manager", "Oslo"))
        .await;

    // Act
    let preview = preview(&app).await;
    let report = sync(&app).await;

    // Assert
    assert_eq!(preview.counts, report.counts);
    assert_eq!(
        report.counts,
        SyncCounts {
            linked: 1,
            ..SyncCounts::default()
        }
    );
    let change = &report.changes[0];
    assert_eq!(change.action, ChangeAction::Link);
    assert_eq!(change.link, Some(LinkKind::Email));
    assert_eq!(change.member_id, existing.id);
    assert_eq!(change.fields["managedBy"].before, json!("app"));
    assert_eq!(change.fields["managedBy"].after, json!("provisioning"));
    let members = all_members(&app).await;
    assert_eq!(members.len(), 1, "linked, not duplicated");
    assert_eq!(members[0].id, existing.id);
    assert_eq!(members[0].scim_user_id.as_deref(), Some(adele.as_str()));
    assert_eq!(members[0].managed_by, ManagedBy::Provisioning);
    assert_eq!(
        prop(&members[0], "jobTitle"),
        Some(&json!("Retail Manager"))
    );
    let records: Vec<LinkRecord> = store.link_records(&app.tenant, 10).await.unwrap();
    let email_links: Vec<&LinkRecord> = records
        .iter()
        .filter(|r| r.how == LinkKind::Email)
        .collect();
    assert_eq!(email_links.len(), 1);
    assert_eq!(email_links[0].member_id, existing.id);
    assert_eq!(email_links[0].user_id, adele);
    assert_eq!(email_links[0].run_id, report.run_id);
    assert_eq!(email_links[0].previous_managed_by, Some(ManagedBy::App));
}

#[tokio::test]
async fn with_link_by_email_off_a_user_with_an_app_members_email_fails_without_a_duplicate() {
    // Arrange
    let app = spawn_app().await;
    let store = members_store(&app);
    let existing = store
        .add_app_member(&app.tenant, "adele@contoso.com", "Adele (app)")
        .await
        .unwrap();
    let before = app_member_items(&app, std::slice::from_ref(&existing)).await;
    let adele = app
        .create_user(&person("adele@contoso.com", "Retail Manager", "Oslo"))
        .await;

    // Act
    let report = sync(&app).await;

    // Assert
    assert_eq!(
        report.counts,
        SyncCounts {
            failed: 1,
            ..SyncCounts::default()
        }
    );
    assert_eq!(report.errors.len(), 1);
    assert_eq!(
        report.errors[0].scim_user_id.as_deref(),
        Some(adele.as_str())
    );
    assert!(
        report.errors[0].message.contains("linking by email is off"),
        "{}",
        report.errors[0].message
    );
    assert_eq!(all_members(&app).await.len(), 1, "no duplicate member");
    assert_eq!(
        app_member_items(&app, std::slice::from_ref(&existing)).await,
        before
    );
    assert_eq!(dirty_left(&app).await, 1, "kept for the next sync");
    assert_eq!(
        sync(&app).await.counts.failed,
        1,
        "retried by the next sync"
    );

    // Act: turning the policy on links it at the next sync.
    state_store(&app)
        .set_link_by_email(&app.tenant, true)
        .await
        .unwrap();
    let report = sync(&app).await;

    // Assert
    assert_eq!(report.counts.linked, 1);
    assert_eq!(report.counts.failed, 0);
    assert_eq!(member_of(&app, &adele).await.id, existing.id);
    assert_eq!(dirty_left(&app).await, 0);
}

#[tokio::test]
async fn an_app_member_added_with_an_email_already_in_use_is_a_conflict() {
    // Arrange
    let app = spawn_app().await;
    let store = members_store(&app);
    store
        .add_app_member(&app.tenant, "owner@contoso.com", "Owner")
        .await
        .unwrap();

    // Act
    let err = store
        .add_app_member(&app.tenant, "OWNER@contoso.com", "Owner 2")
        .await
        .expect_err("duplicate email");

    // Assert
    assert!(matches!(
        err,
        StoreError::Conflict(scim_store::error::Unique::Email)
    ));
    assert_eq!(all_members(&app).await.len(), 1);
}

// --- Interruptions --------------------------------------------------------------------------

/// A member store whose writes start failing (as if DynamoDB became
/// unreachable) after `ok` of them.
#[derive(Debug)]
pub(crate) struct FailingAfter {
    pub(crate) inner: Arc<dyn MemberStore>,
    pub(crate) ok: AtomicUsize,
}

#[async_trait]
impl MemberStore for FailingAfter {
    async fn list(
        &self,
        t: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Member>, Option<String>), StoreError> {
        self.inner.list(t, after, limit).await
    }
    async fn get(&self, t: &TenantId, id: &str) -> Result<Option<Member>, StoreError> {
        self.inner.get(t, id).await
    }
    async fn get_many(&self, t: &TenantId, ids: &[String]) -> Result<Vec<Member>, StoreError> {
        self.inner.get_many(t, ids).await
    }
    async fn add_app_member(
        &self,
        t: &TenantId,
        email: &str,
        name: &str,
    ) -> Result<Member, StoreError> {
        self.inner.add_app_member(t, email, name).await
    }
    async fn email_owners(
        &self,
        t: &TenantId,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        self.inner.email_owners(t, keys).await
    }
    async fn links(
        &self,
        t: &TenantId,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, MemberLink>, StoreError> {
        self.inner.links(t, ids).await
    }
    async fn link_page(
        &self,
        t: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<MemberLink>, Option<String>), StoreError> {
        self.inner.link_page(t, after, limit).await
    }
    async fn link_records(
        &self,
        t: &TenantId,
        limit: usize,
    ) -> Result<Vec<LinkRecord>, StoreError> {
        self.inner.link_records(t, limit).await
    }
    async fn waits(
        &self,
        t: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ManagerWait>, Option<String>), StoreError> {
        self.inner.waits(t, after, limit).await
    }
    async fn write(&self, t: &TenantId, w: &MemberWrite) -> Result<(), StoreError> {
        let left = self
            .ok
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if left.is_err() {
            return Err(StoreError::Unavailable("injected failure".into()));
        }
        self.inner.write(t, w).await
    }
}

/// Provisions `n` users (every third with the previous one as manager) and
/// returns the members an uninterrupted sync would end with.
async fn provision_for_interruption(app: &TestApp, n: usize) -> Vec<Value> {
    let mut previous: Option<String> = None;
    for i in 0..n {
        let mut body = person(&format!("user{i:02}@contoso.com"), &format!("T{i}"), "Oslo");
        if i % 3 == 2
            && let Some(p) = &previous
        {
            body[ENTERPRISE]["manager"] = json!({"value": p});
        }
        previous = Some(app.create_user(&body).await);
    }
    let plan = preview(app).await;
    assert_eq!(plan.counts.created, n as u64);
    let mut expected: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| {
            let props: BTreeMap<&String, &Value> =
                c.properties.iter().map(|(k, v)| (k, &v.after)).collect();
            json!({
                "id": c.member_id, "email": c.email, "displayName": c.display_name,
                "status": "active", "properties": props,
                "scimUserId": c.scim_user_id, "managedBy": "provisioning",
            })
        })
        .collect();
    expected.sort_by_key(|v| v["id"].as_str().unwrap_or_default().to_owned());
    expected
}

async fn assert_converged(app: &TestApp, expected: &[Value]) {
    let members = all_members(app).await;
    let actual: Vec<Value> = members.iter().map(shape).collect();
    assert_eq!(actual, expected, "same members as an uninterrupted sync");
    let items = members_table(app).await;
    let count = |kind: &str| items.keys().filter(|(pk, _)| pk.ends_with(kind)).count();
    assert_eq!(count("#MEMBER"), expected.len(), "no duplicate member");
    assert_eq!(count("#MEMAIL"), expected.len(), "one email claim each");
    assert_eq!(count("#MLINK"), expected.len(), "one link each");
    assert_eq!(count("#WAIT"), 0, "no manager left pending");
    assert_eq!(dirty_left(app).await, 0);
}

#[tokio::test]
async fn a_sync_stopped_by_its_deadline_after_each_batch_resumes_and_converges() {
    // Arrange
    let app = spawn_app().await;
    let expected = provision_for_interruption(&app, 12).await;
    let engine = engine(&app).with_batch_size(3);

    // Act
    let reports = sync_a_batch_per_invocation(&app, &engine).await;

    // Assert
    let last = reports.last().unwrap();
    assert!(last.complete);
    assert!(reports.len() >= 4, "{} invocations", reports.len());
    assert!(
        reports.iter().all(|r| r.run_id == last.run_id),
        "one run, resumed"
    );
    assert_eq!(last.counts.created, 12, "counts cover the whole run");
    assert_eq!(last.counts.failed, 0);
    assert_converged(&app, &expected).await;
    let history = state_store(&app).history(&app.tenant, 50).await.unwrap();
    assert_eq!(history.len(), reports.len(), "a report per invocation");
    assert_eq!(history[0]["complete"], true, "newest first");
    assert_eq!(sync(&app).await.counts, SyncCounts::default());
}

#[tokio::test]
async fn a_sync_whose_writes_start_failing_midway_is_rerun_to_the_same_state() {
    // Arrange
    let app = spawn_app().await;
    let expected = provision_for_interruption(&app, 12).await;
    let failing = Arc::new(FailingAfter {
        inner: members_store(&app),
        ok: AtomicUsize::new(5),
    });

    // Act
    let err = engine_with(&app, failing)
        .with_batch_size(4)
        .sync(&app.tenant, SyncOptions::default())
        .await
        .expect_err("the injected failure stops the run");
    let written = all_members(&app).await.len();
    let report = sync(&app).await;

    // Assert
    assert!(
        matches!(err, SyncError::Store(StoreError::Unavailable(_))),
        "{err}"
    );
    assert_eq!(written, 5);
    assert!(report.complete);
    assert_eq!(report.counts.failed, 0);
    assert_converged(&app, &expected).await;
    let history = state_store(&app).history(&app.tenant, 10).await.unwrap();
    assert_eq!(
        history[1]["complete"], false,
        "the failed run left a report"
    );
    assert!(
        history[1]["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("injected failure")),
        "{}",
        history[1]
    );
}

#[tokio::test]
async fn a_sync_cancelled_at_arbitrary_points_is_taken_over_after_its_lease_expires_and_converges()
{
    // Arrange
    let app = spawn_app().await;
    let expected = provision_for_interruption(&app, 12).await;
    let ttl = Duration::from_millis(300);
    let engine = engine(&app).with_batch_size(2).with_lease_ttl(ttl);

    // Act: cancel the sync future (a crash) after growing delays.
    let mut delay = Duration::from_millis(15);
    let mut crashes = 0;
    let report = loop {
        match tokio::time::timeout(delay, engine.sync(&app.tenant, SyncOptions::default())).await {
            Ok(Ok(report)) => break report,
            Ok(Err(SyncError::LeaseHeld(_))) | Err(_) => {
                crashes += 1;
                tokio::time::sleep(ttl + Duration::from_millis(50)).await;
                delay += Duration::from_millis(40);
            }
            Ok(Err(e)) => panic!("unexpected error: {e}"),
        }
        assert!(crashes < 60, "the sync never finished");
    };

    // Assert
    assert!(report.complete);
    assert!(crashes > 0, "the test crashed the sync at least once");
    assert_converged(&app, &expected).await;
}

// --- Lease ------------------------------------------------------------------------------------

#[tokio::test]
async fn a_sync_of_a_tenant_whose_lease_is_held_is_refused_until_it_is_released_or_expires() {
    // Arrange
    let app = spawn_app().await;
    for i in 0..8 {
        app.create_user(&person(&format!("u{i}@contoso.com"), "T", "Oslo"))
            .await;
    }
    let state = state_store(&app);
    assert!(
        state
            .acquire_lease(&app.tenant, "another-sync", Duration::from_secs(60))
            .await
            .unwrap()
            .is_some()
    );

    // Act + Assert: held.
    let err = engine(&app)
        .sync(&app.tenant, SyncOptions::default())
        .await
        .expect_err("the lease is held");
    assert!(matches!(&err, SyncError::LeaseHeld(t) if *t == app.tenant.to_string()));
    assert_eq!(
        err.to_string(),
        format!("another sync of tenant {} is running", app.tenant)
    );
    assert!(all_members(&app).await.is_empty());

    // Released.
    state
        .release_lease(&app.tenant, "another-sync")
        .await
        .unwrap();
    let (first, second) = (engine(&app), engine(&app));
    let (a, b) = tokio::join!(
        first.sync(&app.tenant, SyncOptions::default()),
        second.sync(&app.tenant, SyncOptions::default())
    );
    let outcomes = [a, b];
    assert_eq!(
        outcomes.iter().filter(|r| r.is_ok()).count(),
        1,
        "exactly one of two concurrent syncs runs"
    );
    assert!(
        outcomes
            .iter()
            .any(|r| matches!(r, Err(SyncError::LeaseHeld(_))))
    );
    assert_eq!(all_members(&app).await.len(), 8);

    // Expired.
    assert!(
        state
            .acquire_lease(&app.tenant, "crashed-sync", Duration::from_millis(1))
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        engine(&app)
            .sync(&app.tenant, SyncOptions::default())
            .await
            .is_ok()
    );
}

// --- Cost and reports ----------------------------------------------------------------------------

/// Provisions `n` users, syncs them, and returns (requests of the first
/// sync, requests of a sync with no changes, per operation).
async fn costs_with(n: usize) -> (u64, BTreeMap<String, u64>) {
    let app = spawn_app().await;
    for i in 0..n {
        app.create_user(&person(&format!("u{i:03}@contoso.com"), "T", "Oslo"))
            .await;
    }
    app.requests.take();
    let first = sync(&app).await;
    let first_cost = app.requests.take_total();
    assert_eq!(first.counts.created, n as u64);
    let report = sync(&app).await;
    let idle = app.requests.take();
    assert_eq!(report.counts, SyncCounts::default());
    (first_cost, idle)
}

#[tokio::test]
async fn a_sync_with_no_changes_costs_the_same_requests_for_5_and_50_users() {
    // Arrange + Act
    let (first_5, idle_5) = costs_with(5).await;
    let (first_50, idle_50) = costs_with(50).await;

    // Assert
    println!("first sync: 5 users {first_5} requests, 50 users {first_50} requests");
    println!("no-change sync: {idle_50:?}");
    assert_eq!(idle_5, idle_50, "constant, whatever the number of users");
    assert_eq!(
        idle_50.values().sum::<u64>(),
        5,
        "lease + settings + membership changes + dirty set + finish: {idle_50:?}"
    );
    let per_user = (first_50 - first_5) as f64 / 45.0;
    println!("first sync: {per_user:.2} requests per synced user");
    assert!(per_user < 3.0, "{per_user} requests per synced user");
}

#[tokio::test]
async fn incremental_changes_cost_a_few_requests_per_changed_user() {
    // Arrange
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            app.create_user(&person(&format!("u{i:03}@contoso.com"), "T", "Oslo"))
                .await,
        );
    }
    sync(&app).await;
    for id in &ids[..10] {
        patch_user(
            &app,
            id,
            json!([{"op": "Replace", "path": "title", "value": "New"}]),
        )
        .await;
    }
    app.requests.take();

    // Act
    let report = sync(&app).await;
    let cost = app.requests.take();

    // Assert
    assert_eq!(report.counts, counts(0, 10, 0, 0, 0));
    println!("incremental sync of 10 changed users: {cost:?}");
    assert_eq!(
        cost.get("TransactWriteItems"),
        Some(&(10 + 1)),
        "a write each, and finish"
    );
    assert_eq!(
        cost.get("DeleteItem"),
        Some(&10),
        "a dirty item cleared each"
    );
    let total: u64 = cost.values().sum();
    assert!(total <= 10 * 2 + 9, "{total} requests: {cost:?}");
}

#[tokio::test]
async fn every_run_stores_a_report_in_the_tenants_history_newest_first() {
    // Arrange
    let app = spawn_app().await;
    app.create_user(&person("adele@contoso.com", "T", "Oslo"))
        .await;
    let first = sync(&app).await;
    let second = sync(&app).await;
    preview(&app).await;

    // Act
    let history = state_store(&app).history(&app.tenant, 10).await.unwrap();

    // Assert
    assert_eq!(history.len(), 2, "dry runs store nothing");
    assert_eq!(history[0]["runId"], second.run_id);
    assert_eq!(history[1]["runId"], first.run_id);
    assert_eq!(history[1]["counts"]["created"], 1);
    for report in &history {
        for key in ["started", "finished", "counts", "errors", "complete"] {
            assert!(report.get(key).is_some(), "{key} in {report}");
        }
    }
}

#[tokio::test]
async fn registered_tenants_are_listed_once() {
    // Arrange
    let app = spawn_app().await;
    let state = state_store(&app);
    let other = TenantId::parse("other-tenant").unwrap();

    // Act
    state.register_tenant(&app.tenant).await.unwrap();
    state.register_tenant(&other).await.unwrap();
    state.register_tenant(&app.tenant).await.unwrap();

    // Assert
    let mut expected = vec![app.tenant.clone(), other];
    expected.sort();
    assert_eq!(state.tenants().await.unwrap(), expected);
}

/// Okta's user as created: `userName` as the key, a 20-character Okta id as
/// `externalId`, an unsolicited password.
fn okta_user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": "Jane Doe",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true,
    })
}

#[tokio::test]
async fn okta_deactivation_and_reactivation_move_one_member_without_duplicates() {
    // Arrange
    let app = spawn_app().await;
    let jane = app.create_user(&okta_user("jane@acme.com")).await;
    assert_eq!(sync(&app).await.counts, counts(1, 0, 0, 0, 0));
    let member = member_of(&app, &jane).await.id;

    // Act + Assert: Okta's path-less deactivate (it never deletes).
    patch_user(
        &app,
        &jane,
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .await;
    assert_eq!(sync(&app).await.counts, counts(0, 0, 1, 0, 0));
    assert_eq!(
        member_of(&app, &jane).await.status,
        MemberStatus::Deactivated
    );

    // Reassigned: the same SCIM user, reactivated by a path-less replace.
    patch_user(
        &app,
        &jane,
        json!([{"op": "replace", "value": {"active": true}}]),
    )
    .await;
    assert_eq!(sync(&app).await.counts, counts(0, 0, 0, 1, 0));

    // The wizard-built integration deactivates by PUT of the whole user.
    let mut whole = app.get(&format!("/Users/{jane}")).await.body;
    whole["active"] = json!(false);
    let put = app
        .send("PUT", &format!("/Users/{jane}"), Some(&whole))
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(sync(&app).await.counts, counts(0, 0, 1, 0, 0));
    whole["active"] = json!(true);
    let put = app
        .send("PUT", &format!("/Users/{jane}"), Some(&whole))
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(sync(&app).await.counts, counts(0, 0, 0, 1, 0));

    let members = all_members(&app).await;
    assert_eq!(members.len(), 1, "one member throughout: {members:?}");
    assert_eq!(members[0].id, member);
    assert_eq!(members[0].status, MemberStatus::Active);
}
