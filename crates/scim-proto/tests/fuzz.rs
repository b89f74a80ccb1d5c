//! Property tests of everything in this crate that reads client input: the
//! filter parser and evaluator, the PATCH-path parser, the PATCH engine on
//! User and Group documents (both Entra dialects), and resource validation.
//!
//! Properties: nothing panics; every rejection is a 400 [`ScimError`] whose
//! body has `status` as a string and a known `scimType`; what is accepted
//! satisfies the invariants callers rely on (a failed PATCH leaves the
//! document untouched, canonical documents re-validate to themselves, filters
//! and paths print back to text that parses to the same tree).
//!
//! Cases per property: `SCIMSYNC_FUZZ_CASES` (else proptest's own
//! `PROPTEST_CASES`, else a small default that keeps `cargo test` quick).
//! `make fuzz` runs a million per target in release mode; each test prints
//! how many inputs it generated (visible with `--nocapture`). A plain
//! `cargo test` uses a fixed seed, so CI is deterministic; a run with a case
//! count set draws a random one, and `SCIMSYNC_FUZZ_SEED` (or
//! `PROPTEST_RNG_SEED`) fixes it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![deny(clippy::string_slice)]

#[path = "fuzz/strategies.rs"]
mod strategies;

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use scim_proto::ScimError;
use scim_proto::filter::{MAX_FILTER_LEN, parse_filter};
use scim_proto::ids::ResourceId;
use scim_proto::patch::{MAX_VALUES_PER_REQUEST, MemberChange, PatchOutcome, PatchRequest, apply};
use scim_proto::path::{parse_attr_path, parse_patch_path};
use scim_proto::projection::Projection;
use scim_proto::resource::{
    GroupResource, MAX_DOCUMENT_BYTES, MAX_EMAILS, MAX_MEMBERS_PER_LIST, Meta, UserResource,
    canonicalize, render,
};
use scim_proto::schema::{GROUP_RESOURCE, ResourceType, USER_RESOURCE};
use serde_json::{Map, Value, json};

/// Cases per property in a plain `cargo test` (debug build, all properties
/// together well under a minute on two cores).
const DEFAULT_CASES: u32 = 1000;

/// The seed of a plain `cargo test`.
const DEFAULT_SEED: u64 = 0x5c1e_5eed;

fn from_env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn cases() -> u32 {
    from_env("SCIMSYNC_FUZZ_CASES")
        .or_else(|| from_env("PROPTEST_CASES"))
        .unwrap_or(DEFAULT_CASES)
}

fn seed(from_proptest_env: RngSeed) -> RngSeed {
    match from_env("SCIMSYNC_FUZZ_SEED") {
        Some(seed) => RngSeed::Fixed(seed),
        None if from_proptest_env != RngSeed::Random => from_proptest_env,
        None if from_env::<u64>("SCIMSYNC_FUZZ_CASES")
            .or_else(|| from_env("PROPTEST_CASES"))
            .is_some() =>
        {
            RngSeed::Random
        }
        None => RngSeed::Fixed(DEFAULT_SEED),
    }
}

/// Runs `test` on `cases()` inputs of `strategy`, prints how many inputs were
/// generated (shrinking included), and fails with the minimal failing input.
/// Runs on a thread with a large stack: proptest's strategy trees for these
/// nested generators take big stack frames in debug builds (the code under
/// test is not the one that needs it).
fn run<S>(
    target: &'static str,
    strategy: impl FnOnce() -> S + Send + 'static,
    test: impl Fn(S::Value) -> Result<(), TestCaseError> + Send + 'static,
) where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let worker = std::thread::Builder::new()
        .name(target.to_owned())
        .stack_size(256 << 20)
        .spawn(move || run_here(target, strategy(), test))
        .expect("spawn the property thread");
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
}

fn run_here<S: Strategy>(
    target: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let defaults = Config::default();
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        rng_seed: seed(defaults.rng_seed),
        ..defaults
    };
    let seed = config.rng_seed;
    let mut runner = TestRunner::new(config);
    let generated = AtomicU64::new(0);
    let started = std::time::Instant::now();
    let result = runner.run(&strategy, |input| {
        generated.fetch_add(1, Ordering::Relaxed);
        test(input)
    });
    println!(
        "fuzz target {target}: {} generated inputs in {:.1} s (seed {seed})",
        generated.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{target}: {e}");
    }
}

const SCIM_TYPES: &[&str] = &[
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
];

/// A client-input rejection: a 400 with a SCIM body (`status` a string, a
/// known `scimType`, a non-empty `detail`).
fn check_error(e: &ScimError) -> Result<(), TestCaseError> {
    let body = e.to_body();
    prop_assert_eq!(e.status, 400, "not a 400: {:?}", e);
    prop_assert_eq!(body["status"].as_str(), Some("400"));
    prop_assert_eq!(&body["schemas"], &json!([scim_proto::error::ERROR_SCHEMA]));
    match body.get("scimType") {
        None => {}
        Some(t) => prop_assert!(
            t.as_str().is_some_and(|t| SCIM_TYPES.contains(&t)),
            "unknown scimType {}",
            t
        ),
    }
    prop_assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty()),
        "empty detail: {:?}",
        e
    );
    Ok(())
}

fn check_error_of_type(e: &ScimError, expected: &str) -> Result<(), TestCaseError> {
    check_error(e)?;
    let body = e.to_body();
    prop_assert_eq!(body["scimType"].as_str(), Some(expected), "{:?}", e);
    Ok(())
}

fn object(v: &Value) -> Option<Map<String, Value>> {
    v.as_object().cloned()
}

// --- Filter parser and evaluator ---------------------------------------------

fn check_filter(text: &str, docs: &[Value]) -> Result<(), TestCaseError> {
    let filter = match parse_filter(text) {
        Err(e) => return check_error_of_type(&e, "invalidFilter"),
        Ok(f) => f,
    };
    // Display is canonical text that parses back to the same tree (when it
    // still fits the length limit: escaping can lengthen strings).
    let printed = filter.to_string();
    if printed.len() <= MAX_FILTER_LEN {
        match parse_filter(&printed) {
            Ok(again) => prop_assert_eq!(&again, &filter, "{} printed as {}", text, printed),
            Err(e) => prop_assert!(false, "{text:?} printed as {printed:?}, which fails: {e:?}"),
        }
    }
    prop_assert!(!filter.conjuncts().is_empty());
    for doc in docs {
        for rt in [&USER_RESOURCE, &GROUP_RESOURCE] {
            let _ = filter.matches(doc, rt);
        }
    }
    Ok(())
}

#[test]
fn filter_parser_and_evaluator() {
    run(
        "filter parser",
        || (strategies::filter_input(), strategies::resource_body()),
        |(text, body)| {
            let mut docs = vec![body.clone()];
            if let Ok(user) = UserResource::from_request(body) {
                docs.push(Value::Object(render(
                    &USER_RESOURCE,
                    &ResourceId::from_uuid("id-1"),
                    &user.doc,
                    &Meta::new(time::OffsetDateTime::UNIX_EPOCH),
                    "https://x/scim/v2/Users/id-1",
                )));
            }
            check_filter(&text, &docs)
        },
    );
}

// --- PATCH paths ---------------------------------------------------------------

#[test]
fn patch_path_parser() {
    run("PATCH path parser", strategies::patch_path, |text| {
        match parse_patch_path(&text) {
            Err(e) => check_error_of_type(&e, "invalidPath")?,
            Ok(path) => {
                let printed = path.to_string();
                if printed.len() <= MAX_FILTER_LEN {
                    let again = parse_patch_path(&printed);
                    prop_assert_eq!(again.as_ref(), Ok(&path), "{} printed as {}", text, printed);
                }
            }
        }
        match parse_attr_path(&text) {
            Err(e) => check_error_of_type(&e, "invalidPath")?,
            Ok(attr) => {
                let again = parse_attr_path(&attr.to_string());
                prop_assert_eq!(again.as_ref(), Ok(&attr));
            }
        }
        Ok(())
    });
}

// --- PATCH engine --------------------------------------------------------------

fn alice() -> Map<String, Value> {
    object(&json!({
        "userName": "alice@contoso.com",
        "externalId": "alice",
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "displayName": "Alice Smith",
        "active": true,
        "emails": [{"value": "alice@contoso.com", "type": "work", "primary": true},
                   {"value": "al€@home.example", "type": "home"}],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
        "roles": [{"value": "Admin", "primary": true}],
        strategies::ENTERPRISE: {"department": "Sales", "manager": {"value": "m1"}},
        strategies::CUSTOM: {"costCode": "X1", "ab€": 1}
    }))
    .unwrap_or_default()
}

fn sales() -> Map<String, Value> {
    object(&json!({"displayName": "Sales €", "externalId": "g1"})).unwrap_or_default()
}

/// Applies `request` to `doc` and checks the engine's contract.
fn check_apply(
    doc: &Map<String, Value>,
    request: &PatchRequest,
    rt: &ResourceType,
) -> Result<(), TestCaseError> {
    let mut patched = doc.clone();
    let outcome: PatchOutcome = match apply(&mut patched, request, rt) {
        Err(e) => {
            check_error(&e)?;
            prop_assert_eq!(&patched, doc, "a failed PATCH changed the document");
            return Ok(());
        }
        Ok(o) => o,
    };
    if !outcome.changed {
        prop_assert_eq!(&patched, doc, "changed is false but the document changed");
    }
    if std::ptr::eq(rt, &USER_RESOURCE) {
        prop_assert!(outcome.member_changes.is_empty());
    }
    let mut add_remove = 0usize;
    for change in &outcome.member_changes {
        let ids = match change {
            MemberChange::Add(ids) | MemberChange::Remove(ids) => {
                add_remove += ids.len();
                ids
            }
            MemberChange::Replace(ids) => {
                prop_assert!(ids.len() <= MAX_MEMBERS_PER_LIST);
                ids
            }
            MemberChange::RemoveAll => continue,
        };
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        prop_assert_eq!(distinct.len(), ids.len(), "duplicate member ids: {:?}", ids);
        prop_assert!(ids.iter().all(|id| !id.is_empty()));
    }
    prop_assert!(add_remove <= MAX_VALUES_PER_REQUEST);
    // The result re-validates (or is refused with a SCIM error), and a
    // validated document is canonical: validating it again changes nothing.
    if std::ptr::eq(rt, &USER_RESOURCE) {
        match UserResource::from_doc(patched) {
            Err(e) => check_error(&e)?,
            Ok(user) => {
                let again = UserResource::from_doc(user.doc.clone());
                prop_assert_eq!(again.as_ref(), Ok(&user));
            }
        }
    } else {
        match GroupResource::from_doc(patched) {
            Err(e) => check_error(&e)?,
            Ok(group) => {
                let again = GroupResource::from_doc(group.doc.clone());
                prop_assert_eq!(again.as_ref(), Ok(&group));
            }
        }
    }
    Ok(())
}

#[test]
fn patch_parser_and_engine() {
    run(
        "PATCH parser + engine",
        || (strategies::patch_body(), strategies::resource_body()),
        |(body, resource)| {
            let request = match PatchRequest::from_json(body) {
                Err(e) => return check_error(&e),
                Ok(r) => r,
            };
            let user =
                UserResource::from_request(resource.clone()).map_or_else(|_| alice(), |u| u.doc);
            check_apply(&user, &request, &USER_RESOURCE)?;
            let group = GroupResource::from_request(resource.clone())
                .map_or_else(|_| sales(), |(g, _)| g.doc);
            check_apply(&group, &request, &GROUP_RESOURCE)?;
            // Stored documents are canonical, but the engine must not panic
            // or lose atomicity on anything.
            if let Some(raw) = object(&resource) {
                check_apply(&raw, &request, &USER_RESOURCE)?;
            }
            Ok(())
        },
    );
}

// --- Resource validation -----------------------------------------------------

fn check_user(body: Value) -> Result<(), TestCaseError> {
    let user = match UserResource::from_request(body) {
        Err(e) => return check_error(&e),
        Ok(u) => u,
    };
    let again = canonicalize(user.doc.clone(), &USER_RESOURCE);
    prop_assert_eq!(
        again.as_ref(),
        Ok(&user.doc),
        "canonicalize is not idempotent"
    );
    let revalidated = UserResource::from_doc(user.doc.clone());
    prop_assert_eq!(revalidated.as_ref(), Ok(&user));
    for k in user.doc.keys() {
        for never in ["schemas", "id", "meta", "groups"] {
            prop_assert!(!k.eq_ignore_ascii_case(never), "{} kept", k);
        }
    }
    prop_assert!(user.email_keys.len() <= MAX_EMAILS);
    prop_assert!(user.email_keys.windows(2).all(|w| w[0] < w[1]));
    prop_assert!(serde_json::to_vec(&user.doc).unwrap().len() <= MAX_DOCUMENT_BYTES);
    let rendered = render(
        &USER_RESOURCE,
        &ResourceId::from_uuid("id-1"),
        &user.doc,
        &Meta::new(time::OffsetDateTime::UNIX_EPOCH),
        "https://x/scim/v2/Users/id-1",
    );
    prop_assert_eq!(&rendered["id"], &json!("id-1"));
    prop_assert!(!rendered.contains_key("password"));
    Ok(())
}

fn check_group(body: Value) -> Result<(), TestCaseError> {
    let (group, members) = match GroupResource::from_request(body) {
        Err(e) => return check_error(&e),
        Ok(g) => g,
    };
    prop_assert!(members.len() <= MAX_MEMBERS_PER_LIST);
    let distinct: std::collections::HashSet<&String> = members.iter().collect();
    prop_assert_eq!(distinct.len(), members.len());
    prop_assert!(!group.doc.contains_key("members"));
    let again = canonicalize(group.doc.clone(), &GROUP_RESOURCE);
    prop_assert_eq!(
        again.as_ref(),
        Ok(&group.doc),
        "canonicalize is not idempotent"
    );
    let revalidated = GroupResource::from_doc(group.doc.clone());
    prop_assert_eq!(revalidated.as_ref(), Ok(&group));
    Ok(())
}

fn check_projection(list: &str, body: &Value) -> Result<(), TestCaseError> {
    for (attributes, excluded) in [(Some(list), None), (None, Some(list))] {
        let projection = match Projection::from_query(attributes, excluded) {
            Err(e) => {
                check_error_of_type(&e, "invalidPath")?;
                continue;
            }
            Ok(p) => p,
        };
        let Some(mut doc) = object(body) else {
            continue;
        };
        doc.insert("id".into(), json!("id-1"));
        for rt in [&USER_RESOURCE, &GROUP_RESOURCE] {
            let mut d = doc.clone();
            projection.apply(&mut d, rt);
            prop_assert!(d.contains_key("id"), "id projected away by {list:?}");
        }
    }
    Ok(())
}

#[test]
fn resource_validation() {
    run(
        "resource validation",
        || (strategies::resource_body(), strategies::patch_path()),
        |(body, list)| {
            check_user(body.clone())?;
            check_group(body.clone())?;
            check_projection(&list, &body)
        },
    );
}
