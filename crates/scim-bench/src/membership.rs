//! The cost of a membership change in an empty group versus a large one
//! (seeded straight into the table), and of the reads that touch members.
//! Changes when membership storage or its request shapes change.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::{StreamExt, stream};
use scim_proto::ids::TenantId;
use serde_json::{Value, json};

use crate::driver::Bench;
use crate::shapes::{enc, patch};

/// Membership cost: one member in/out of an empty group and of a group of
/// `members` members, then the reads of that group; the member moved is
/// `ids[0]`, a user created before.
pub(crate) async fn run(
    b: &Bench,
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    tenant: &TenantId,
    members: usize,
    ids: &[String],
) -> Result<()> {
    let (status, empty) = b
        .send(
            "POST",
            "/Groups",
            Some(json!({"displayName": "empty", "externalId": "g-empty"})),
        )
        .await?;
    ensure!(status == 201, "create group: {status}");
    let (status, big) = b
        .send(
            "POST",
            "/Groups",
            Some(json!({"displayName": "big", "externalId": "g-big"})),
        )
        .await?;
    ensure!(status == 201, "create group: {status}");
    let big_id = big["id"].as_str().context("group id")?.to_owned();
    let empty_id = empty["id"].as_str().context("group id")?.to_owned();
    let seed_start = Instant::now();
    seed_members(dynamodb, table, tenant, &big_id, members).await?;
    let seed = seed_start.elapsed();

    println!(
        "\n## Group membership: empty group vs {} members (seeded in {:.0} s)\n",
        members,
        seed.as_secs_f64()
    );
    println!(
        "| operation | empty group: DynamoDB requests | {}-member group: DynamoDB requests | latency empty / large (ms) |",
        members
    );
    println!("|---|---|---|---|");
    let member = &ids[0];
    let shapes: [(&str, Value); 3] = [
        (
            "Add 1 member",
            json!([{"op": "Add", "path": "members", "value": [{"value": member}]}]),
        ),
        (
            "Remove 1 member (value array)",
            json!([{"op": "Remove", "path": "members", "value": [{"value": member}]}]),
        ),
        (
            "remove members[value eq] (flag dialect)",
            json!([{"op": "remove", "path": format!("members[value eq \"{member}\"]")}]),
        ),
    ];
    for (label, ops) in shapes {
        let mut cells = Vec::new();
        let mut times = Vec::new();
        for gid in [&empty_id, &big_id] {
            b.counter.take();
            let t = Instant::now();
            let (status, body) = b
                .send("PATCH", &format!("/Groups/{gid}"), Some(patch(ops.clone())))
                .await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            ensure!(status == 204, "{label}: {status} {body}");
            let counts = b.counter.take();
            let total: u64 = counts.values().sum();
            cells.push(format!(
                "{total} ({})",
                counts
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        println!(
            "| {label} | {} | {} | {:.1} / {:.1} |",
            cells[0], cells[1], times[0], times[1]
        );
    }
    read_costs(b, &big_id, member).await?;
    let (status, body) = b.send("GET", &format!("/Groups/{big_id}"), None).await?;
    println!(
        "\nGET of the {}-member group with members: {status} {}",
        members, body["scimType"]
    );
    Ok(())
}

/// The reads that touch a large group's members: a GET without them and
/// the legacy membership check filter.
async fn read_costs(b: &Bench, big_id: &str, member: &str) -> Result<()> {
    for (label, path) in [
        (
            "GET group, excludedAttributes=members",
            format!("/Groups/{big_id}?excludedAttributes=members"),
        ),
        (
            "legacy membership check (id eq and members eq)",
            format!(
                "/Groups?filter={}&attributes=id",
                enc(&format!("id eq \"{big_id}\" and members eq \"{member}\""))
            ),
        ),
    ] {
        b.counter.take();
        let t = Instant::now();
        let (status, _) = b.send("GET", &path, None).await?;
        ensure!(status == 200, "{label}: {status}");
        let counts = b.counter.take();
        println!(
            "| {label} | – | {} ({}) | – / {:.1} |",
            counts.values().sum::<u64>(),
            counts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

/// Writes `count` synthetic membership pairs for `group` straight into the
/// table (the layout of `scim_store::tables`), 25 items per BatchWriteItem.
async fn seed_members(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    tenant: &TenantId,
    group: &str,
    count: usize,
) -> Result<()> {
    let s = |v: String| AttributeValue::S(v);
    let mut requests = Vec::with_capacity(count * 2);
    for i in 0..count {
        let user = format!("seed-{i:07}");
        for (pk, sk) in [
            (format!("T#{tenant}#GM#{group}"), user.clone()),
            (format!("T#{tenant}#UG#{user}"), group.to_owned()),
        ] {
            let item = [("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))]
                .into_iter()
                .collect();
            requests.push(
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                    .build(),
            );
        }
    }
    let chunks: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[_]>::to_vec).collect();
    let results: Vec<Result<()>> = stream::iter(chunks)
        .map(|mut chunk| async move {
            while !chunk.is_empty() {
                let out = client
                    .batch_write_item()
                    .request_items(table, chunk)
                    .send()
                    .await?;
                chunk = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(table))
                    .unwrap_or_default();
            }
            Ok(())
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect()
}
