//! The Users table: create, the filters Entra sends (Test Connection probe,
//! matching by externalId and by work email), GET, the PATCH shapes of an
//! update and a disable, and paging. Changes with Entra's User traffic.

use anyhow::Result;
use serde_json::json;

use crate::driver::Bench;
use crate::shapes::{enc, patch, user};

/// Runs every User request shape `n` times (paging: `n / 100` pages), prints
/// the table, and returns the ids of the users created.
pub(crate) async fn run(b: &Bench, n: usize, run: &str) -> Result<Vec<String>> {
    let (create, bodies) = b
        .run("POST /Users", n, 201, |i| {
            ("POST", "/Users".into(), Some(user(i, run)))
        })
        .await?;
    let ids: Vec<String> = bodies
        .iter()
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect();
    let (probe, _) = b
        .run(
            "GET filter externalId (Test Connection, miss)",
            n,
            200,
            |i| {
                (
                    "GET",
                    format!(
                        "/Users?filter={}",
                        enc(&format!("externalId eq \"probe-{i}\""))
                    ),
                    None,
                )
            },
        )
        .await?;
    let (matched, _) = b
        .run("GET filter externalId (match, hit)", n, 200, |i| {
            (
                "GET",
                format!(
                    "/Users?filter={}",
                    enc(&format!("externalId eq \"{run}-{i:06}\""))
                ),
                None,
            )
        })
        .await?;
    let (by_email, _) = b
        .run("GET filter emails[type eq \"work\"].value", n, 200, |i| {
            let f = format!("emails[type eq \"work\"].value eq \"user{i:06}@contoso.com\"");
            ("GET", format!("/Users?filter={}", enc(&f)), None)
        })
        .await?;
    let (get, _) = b
        .run("GET /Users/{id}", n, 200, |i| {
            ("GET", format!("/Users/{}", ids[i]), None)
        })
        .await?;
    let (update, _) = b
        .run("PATCH Replace title + email (default dialect)", n, 200, |i| {
            let ops = json!([
                {"op": "Replace", "path": "title", "value": "Director"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": format!("u{i}@fabrikam.com")}]);
            ("PATCH", format!("/Users/{}", ids[i]), Some(patch(ops)))
        })
        .await?;
    let (disable, _) = b
        .run("PATCH Replace active \"False\"", n, 200, |i| {
            let ops = json!([{"op": "Replace", "path": "active", "value": "False"}]);
            ("PATCH", format!("/Users/{}", ids[i]), Some(patch(ops)))
        })
        .await?;
    let pages = n.div_ceil(100);
    let (page, _) = b
        .run("GET /Users?startIndex&count=100", pages, 200, |i| {
            (
                "GET",
                format!("/Users?startIndex={}&count=100", i * 100 + 1),
                None,
            )
        })
        .await?;

    println!("## Users: {n} users, concurrency {}\n", b.concurrency);
    println!("| request | n | req/s | p50 ms | p95 ms | p99 ms | DynamoDB req/op |");
    println!("|---|---|---|---|---|---|---|");
    for s in [
        &create, &probe, &matched, &by_email, &get, &update, &disable, &page,
    ] {
        println!("{}", s.row());
    }
    Ok(ids)
}
