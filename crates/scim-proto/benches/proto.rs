//! CPU cost of the protocol work on Entra's hot path: parsing its filters,
//! parsing and applying its PATCH bodies, validating a create body.
//! Run with `make bench` (or `cargo bench -p scim-proto`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use scim_proto::filter::parse_filter;
use scim_proto::patch::{MAX_VALUES_PER_REQUEST, PatchRequest, apply};
use scim_proto::resource::UserResource;
use scim_proto::schema::{GROUP_RESOURCE, USER_RESOURCE};
use serde_json::json;

fn entra_user() -> serde_json::Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "adele.vance@contoso.com",
        "active": true,
        "displayName": "Adele Vance",
        "title": "Retail Manager",
        "emails": [{"primary": true, "type": "work", "value": "adele.vance@contoso.com"}],
        "name": {"formatted": "Adele Vance", "familyName": "Vance", "givenName": "Adele"},
        "addresses": [{"type": "work", "locality": "Redmond", "country": "US"}],
        "phoneNumbers": [{"type": "work", "value": "+1 425 555 0109"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Retail", "employeeNumber": "42"}
    })
}

fn filters(c: &mut Criterion) {
    c.bench_function("parse filter: externalId eq (Entra match)", |b| {
        b.iter(|| {
            parse_filter(black_box(
                r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#,
            ))
            .unwrap()
        });
    });
    c.bench_function("parse filter: work email value path", |b| {
        b.iter(|| {
            parse_filter(black_box(
                r#"emails[type eq "work"].value eq "adele.vance@contoso.com""#,
            ))
            .unwrap()
        });
    });
    let complex = r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org") and not (title pr)"#;
    c.bench_function("parse filter: RFC example with and/or/not", |b| {
        b.iter(|| parse_filter(black_box(complex)).unwrap());
    });
    let user = serde_json::Value::Object(UserResource::from_request(entra_user()).unwrap().doc);
    let f = parse_filter(r#"emails[type eq "work"].value eq "ADELE.VANCE@contoso.com""#).unwrap();
    c.bench_function("evaluate filter on a user", |b| {
        b.iter(|| f.matches(black_box(&user), &USER_RESOURCE));
    });
}

fn patches(c: &mut Criterion) {
    let doc = UserResource::from_request(entra_user()).unwrap().doc;
    let default_dialect = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"},
        {"op": "Replace", "path": "name.familyName", "value": "Smith"},
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"},
        {"op": "Replace", "path": "active", "value": "False"}]});
    let flag_dialect = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "value": {"displayName": "Bjfe", "name.givenName": "Kkom",
         "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"}}]});
    for (name, body) in [
        ("default dialect, 4 ops", default_dialect),
        ("aadOptscim062020 path-less", flag_dialect),
    ] {
        let req = PatchRequest::from_json(body.clone()).unwrap();
        c.bench_function(&format!("parse PATCH: {name}"), |b| {
            b.iter(|| PatchRequest::from_json(black_box(body.clone())).unwrap());
        });
        c.bench_function(&format!("apply PATCH + revalidate: {name}"), |b| {
            b.iter(|| {
                let mut d = doc.clone();
                apply(&mut d, &req, &USER_RESOURCE).unwrap();
                UserResource::from_doc(d).unwrap()
            });
        });
    }
    let members: Vec<_> = (0..100)
        .map(|i| json!({"value": format!("user-{i}")}))
        .collect();
    let add = PatchRequest::from_json(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members", "value": members}]}),
    )
    .unwrap();
    let group = serde_json::Map::from_iter([("displayName".to_owned(), json!("Sales"))]);
    c.bench_function("translate group PATCH: add 100 members", |b| {
        b.iter(|| {
            let mut g = group.clone();
            apply(&mut g, black_box(&add), &GROUP_RESOURCE).unwrap()
        });
    });
}

/// The cost of the per-request value cap (issue #9): deduplicating a
/// maximal list, and refusing a 1 MiB body of 130,000 member ids.
fn limits(c: &mut Criterion) {
    let patch_op = |op: serde_json::Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]});
    // 1000 member ids (the cap), each id twice, as Entra sends them.
    let members: Vec<_> = (0..MAX_VALUES_PER_REQUEST)
        .map(|i| json!({"value": format!("{:08x}-9d3a-4b5c-8e6f-0a1b2c3d4e5f", i % 500)}))
        .collect();
    let add = PatchRequest::from_json(patch_op(
        json!({"op": "Add", "path": "members", "value": members}),
    ))
    .unwrap();
    let group = serde_json::Map::from_iter([("displayName".to_owned(), json!("Sales"))]);
    c.bench_function("dedupe: add 1000 member ids (cap), 500 distinct", |b| {
        b.iter(|| {
            let mut g = group.clone();
            apply(&mut g, black_box(&add), &GROUP_RESOURCE).unwrap()
        });
    });
    // 1000 emails (the cap), 500 distinct, repeats with their keys reordered.
    let emails: Vec<_> = (0..MAX_VALUES_PER_REQUEST)
        .map(|i| {
            let value = format!("user{}@contoso.com", i % 500);
            if i % 2 == 0 {
                json!({"value": value, "type": "work"})
            } else {
                json!({"type": "work", "value": value})
            }
        })
        .collect();
    let add_emails = PatchRequest::from_json(patch_op(
        json!({"op": "add", "path": "emails", "value": emails}),
    ))
    .unwrap();
    let user = UserResource::from_request(entra_user()).unwrap().doc;
    c.bench_function("dedupe: add 1000 emails (cap), 500 distinct", |b| {
        b.iter(|| {
            let mut u = user.clone();
            apply(&mut u, black_box(&add_emails), &USER_RESOURCE).unwrap()
        });
    });
    let ids: Vec<_> = (0..130_000)
        .map(|i| json!({"value": format!("{i:08x}-9d3a-4b5c-8e6f-0a1b2c3d4e5f")}))
        .collect();
    let huge = patch_op(json!({"op": "Add", "path": "members", "value": ids}));
    let text = serde_json::to_vec(&huge).unwrap();
    c.bench_function(
        "reject 130,000 member ids (tooMany), from parsed JSON",
        |b| {
            b.iter_batched(
                || huge.clone(),
                |body| PatchRequest::from_json(body).unwrap_err(),
                BatchSize::LargeInput,
            );
        },
    );
    c.bench_function("reject 130,000 member ids (tooMany), from bytes", |b| {
        b.iter(|| {
            let body: serde_json::Value = serde_json::from_slice(black_box(&text)).unwrap();
            PatchRequest::from_json(body).unwrap_err()
        });
    });
}

fn resources(c: &mut Criterion) {
    let body = entra_user();
    c.bench_function("validate Entra create body", |b| {
        b.iter(|| UserResource::from_request(black_box(body.clone())).unwrap());
    });
}

criterion_group!(benches, filters, patches, limits, resources);
criterion_main!(benches);
