//! The Members sync at scale: users provisioned straight through the store,
//! then a full sync, an incremental one after 1% changed, and one with no
//! changes. Changes with the sync engine's options or report.

use scim_store::activity::{Operation, Origin};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::{StreamExt, stream};
use member_sync::{SyncEngine, SyncOptions};
use scim_proto::ids::TenantId;
use scim_proto::resource::UserResource;
use scim_store::Stores;
use scim_store::users::{StoredUser, UserStore};
use serde_json::json;

use crate::driver::Bench;

/// Provisions `n` users straight through the store (the SCIM path is measured
/// above), then measures a full Members sync, an incremental sync after 1% of
/// the users changed, and a sync with no changes.
pub(crate) async fn sync_bench(
    b: &Bench,
    stores: &Stores,
    tenant: &TenantId,
    n: usize,
    concurrency: usize,
) -> Result<()> {
    let seed_start = Instant::now();
    let users = seed_users(stores, tenant, n, concurrency).await?;
    let seeded = seed_start.elapsed();
    let (members, state) = stores.sync_stores()?;
    let engine = SyncEngine::new(stores.users.clone(), stores.groups.clone(), members, state);

    println!(
        "\n## Members sync: {n} provisioned users (seeded in {:.0} s)\n",
        seeded.as_secs_f64()
    );
    println!(
        "| run | users examined | created / updated / unchanged | wall s | users/s | DynamoDB requests | requests per user |"
    );
    println!("|---|---|---|---|---|---|---|");
    let run = |label: &'static str, full: bool| {
        let engine = &engine;
        async move {
            b.counter.take();
            let t = Instant::now();
            // Resumed until complete, as successive Lambda invocations would.
            let mut first = true;
            let (examined, totals) = loop {
                let report = engine
                    .sync(
                        tenant,
                        SyncOptions {
                            dry_run: false,
                            full: full && first,
                            deadline: Some(tokio::time::Instant::now() + Duration::from_secs(600)),
                        },
                    )
                    .await?;
                first = false;
                let c = &report.counts;
                if report.complete {
                    let examined = c.created
                        + c.updated
                        + c.unchanged
                        + c.deactivated
                        + c.reactivated
                        + c.linked
                        + c.failed;
                    break (examined, (c.created, c.updated, c.unchanged));
                }
            };
            let wall = t.elapsed().as_secs_f64();
            let requests = b.counter.take_total();
            println!(
                "| {label} | {examined} | {} / {} / {} | {wall:.1} | {:.0} | {requests} | {:.2} |",
                totals.0,
                totals.1,
                totals.2,
                examined as f64 / wall,
                requests as f64 / examined.max(1) as f64
            );
            anyhow::Ok(())
        }
    };
    run("first sync (full)", true).await?;
    let changed = (n / 100).max(1);
    for u in users.iter().take(changed) {
        let mut next = u.user.clone();
        next.doc.insert("title".into(), json!("Staff Engineer"));
        let next = UserResource::from_doc(next.doc)?;
        stores
            .users
            .replace(tenant, u, next, Origin::internal(Operation::Replace))
            .await?;
    }
    run("incremental, 1% changed", false).await?;
    run("incremental, nothing changed", false).await?;
    Ok(())
}

/// Provisions `n` users straight through the store, `concurrency` at a time,
/// reporting progress every 10,000.
async fn seed_users(
    stores: &Stores,
    tenant: &TenantId,
    n: usize,
    concurrency: usize,
) -> Result<Vec<StoredUser>> {
    let seed_start = Instant::now();
    let created: Vec<Result<StoredUser>> = stream::iter(0..n)
        .map(|i| async move {
            let body = json!({
                "userName": format!("sync{i:07}@contoso.com"),
                "externalId": format!("sync-{i:07}"),
                "active": true,
                "displayName": format!("Sync User {i}"),
                "title": "Engineer",
                "emails": [{"primary": true, "type": "work", "value": format!("sync{i:07}@contoso.com")}],
                "addresses": [{"type": "work", "locality": "Paris", "country": "FR"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
            });
            let user = UserResource::from_request(body)?;
            let user = stores
                .users
                .create(tenant, user, Origin::internal(Operation::Create))
                .await?;
            if (i + 1) % 10_000 == 0 {
                eprintln!("seeded {} users in {:.0} s", i + 1, seed_start.elapsed().as_secs_f64());
            }
            Ok(user)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    created.into_iter().collect()
}
