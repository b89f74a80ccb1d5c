//! Request parsing with SCIM errors instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::header;
use http::request::Parts;
use scim_domain::Precondition;
use scim_proto::ScimError;
use scim_proto::discovery::MAX_PAYLOAD_BYTES;
use scim_proto::projection::Projection;
use scim_proto::search::ListRequest;
use serde_json::Value;

use crate::SCIM_BASE_PATH;
use crate::error::ApiError;

/// A JSON request body, sent as `application/scim+json` (Entra) or
/// `application/json` (everyone else), or with no content type at all.
#[derive(Debug)]
pub struct ScimJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or_default().trim();
            let json = essence == "application/json"
                || essence == "application/scim+json"
                || essence.ends_with("+json");
            if !json {
                return Err(ScimError::unsupported_media_type(
                    "send the body as application/scim+json or application/json",
                )
                .into());
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                ScimError::payload_too_large(format!(
                    "the request body is larger than {MAX_PAYLOAD_BYTES} bytes"
                ))
            } else {
                ScimError::invalid_syntax("the request body could not be read")
            }
        })?;
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}"))
        })?;
        Ok(Self(value))
    }
}

/// A list request, in either of its forms: the query string of `GET /Users`
/// or `/Groups` (names matched ignoring case; unknown ones, such as Entra's
/// `aadOptscim062020` flag, ignored), or the `SearchRequest` body of
/// `POST …/.search`.
#[derive(Debug, Default)]
pub struct Listing(pub ListRequest);

/// `attributes` / `excludedAttributes` alone, for single-resource requests.
#[derive(Debug, Default)]
pub struct ProjectionQuery(pub Projection);

fn query_pairs(parts: &Parts) -> Result<Vec<(String, String)>, ApiError> {
    let raw = parts.uri.query().unwrap_or_default();
    serde_urlencoded_pairs(raw)
}

fn serde_urlencoded_pairs(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{raw}")
            .parse()
            .map_err(|_| ScimError::invalid_syntax("the query string is malformed"))?,
    )
    .map(|q| q.0)
    .map_err(|_| ScimError::invalid_syntax("the query string is malformed").into())
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn projection(pairs: &[(String, String)]) -> Result<Projection, ApiError> {
    Ok(Projection::from_query(
        param(pairs, "attributes"),
        param(pairs, "excludedAttributes"),
    )?)
}

impl<S: Send + Sync> FromRequest<S> for Listing {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == http::Method::POST {
            let ScimJson(body) = ScimJson::from_request(req, state).await?;
            return Ok(Self(ListRequest::from_search_body(&body)?));
        }
        let (parts, _) = req.into_parts();
        Ok(Self(ListRequest::from_query(&query_pairs(&parts)?)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ProjectionQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(projection(&query_pairs(parts)?)?))
    }
}

/// The one `{…}` segment of a resource path (`/Users/{id}`), decoded. axum's
/// own `Path` answers an undecodable segment (`/Users/%FF`) with a plain-text
/// 400; no resource can have such an id, so this answers a SCIM 404 instead.
#[derive(Debug)]
pub struct PathSegment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathSegment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(segment)| Self(segment))
            .map_err(|_| {
                ScimError::not_found("no such resource: the path segment is not valid UTF-8").into()
            })
    }
}

/// The `If-Match` precondition, if any (`*` matches everything).
#[derive(Debug, Default)]
pub struct IfMatch(pub Precondition);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(v) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(Precondition::none()));
        };
        let v = v
            .to_str()
            .map_err(|_| ScimError::invalid_syntax("If-Match is not valid text"))?;
        Ok(Self(Precondition::from_header(v)))
    }
}

/// The public base URL of the SCIM API (`https://host/scim/v2`), for
/// `meta.location` and `Location`. Taken from the request: behind API Gateway
/// `Host` is the API's domain and `X-Forwarded-Proto` is `https`.
#[derive(Debug, Clone)]
pub struct BaseUrl(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let host = header("host")
            .or_else(|| parts.uri.authority().map(ToString::to_string))
            .unwrap_or_else(|| "localhost".into());
        let proto = header("x-forwarded-proto")
            .map(|p| p.split(',').next().unwrap_or("https").trim().to_owned())
            .or_else(|| parts.uri.scheme_str().map(str::to_owned))
            .unwrap_or_else(|| "http".into());
        Ok(Self(format!("{proto}://{host}{SCIM_BASE_PATH}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decode_percent_and_plus() {
        let pairs =
            serde_urlencoded_pairs("filter=userName%20eq%20%22a%2Bb%40x%22&count=5").unwrap();
        assert_eq!(param(&pairs, "FILTER"), Some("userName eq \"a+b@x\""));
        assert_eq!(param(&pairs, "count"), Some("5"));
    }
}

/// `ScimJson` on generated requests: content types (valid, with parameters,
/// in any case, malformed, non-ASCII) and bodies (SCIM documents, random
/// JSON, truncated or mangled JSON, nesting past serde_json's limit of 128,
/// multi-byte text, invalid UTF-8, random bytes). A seeded generator instead
/// of proptest, which this crate does not depend on; cases per run:
/// `SCIMSYNC_FUZZ_CASES` (`make fuzz` runs a million), else a quick default.
#[cfg(test)]
mod extractor_tests {
    use axum::body::Body;
    use axum::routing::post;
    use http::{Request as HttpRequest, StatusCode};
    use http_body_util::BodyExt;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;

    const DEFAULT_CASES: u64 = 3_000;

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

    fn cases() -> u64 {
        std::env::var("SCIMSYNC_FUZZ_CASES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_CASES)
    }

    /// SplitMix64: small, seedable, good enough to pick generator branches.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }

        fn chance(&mut self, one_in: usize) -> bool {
            self.below(one_in) == 0
        }
    }

    const TEXT: &[&str] = &[
        "a",
        "userName",
        "True",
        "€",
        "İ",
        "ß",
        "😀",
        "\u{0}",
        "\"",
        "\\",
        " ",
        "urn:x:User",
        "ab€",
        "value",
        "members",
        "\u{feff}",
    ];

    fn text(rng: &mut Rng) -> String {
        (0..rng.below(5)).map(|_| *rng.pick(TEXT)).collect()
    }

    fn json_value(rng: &mut Rng, depth: usize) -> Value {
        match rng.below(if depth > 3 { 5 } else { 8 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.chance(2)),
            2 => json!(rng.next() as i64),
            3 => json!((rng.next() % 1_000_000) as f64 / 7.0),
            4 => Value::String(text(rng)),
            5 | 6 => Value::Object(
                (0..rng.below(5))
                    .map(|_| (text(rng), json_value(rng, depth + 1)))
                    .collect(),
            ),
            _ => Value::Array(
                (0..rng.below(5))
                    .map(|_| json_value(rng, depth + 1))
                    .collect(),
            ),
        }
    }

    fn scim_document(rng: &mut Rng) -> Value {
        let mut doc = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": text(rng),
            "active": *rng.pick(&["True", "False"]),
            "emails": [{"value": text(rng), "type": "work", "primary": true}],
        });
        if rng.chance(2) {
            doc["Operations"] = json!([{"op": "Add", "path": "members",
                                         "value": [{"value": text(rng)}]}]);
        }
        doc
    }

    fn body(rng: &mut Rng) -> Vec<u8> {
        match rng.below(10) {
            0 | 1 => serde_json::to_vec(&scim_document(rng)).unwrap_or_default(),
            2 | 3 => serde_json::to_vec(&json_value(rng, 0)).unwrap_or_default(),
            4 => {
                // Truncated or cut anywhere, even inside a character.
                let mut bytes = serde_json::to_vec(&scim_document(rng)).unwrap_or_default();
                let cut = rng.below(bytes.len() + 1);
                bytes.truncate(cut);
                bytes
            }
            5 => {
                // Nesting around serde_json's recursion limit of 128.
                let depth = 100 + rng.below(100);
                let (open, close) = *rng.pick(&[("[", "]"), ("{\"a\":", "}")]);
                format!("{}1{}", open.repeat(depth), close.repeat(depth)).into_bytes()
            }
            6 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
            7 => {
                // A valid document with one byte changed.
                let mut bytes = serde_json::to_vec(&scim_document(rng)).unwrap_or_default();
                let at = rng.below(bytes.len());
                if let Some(b) = bytes.get_mut(at) {
                    *b = rng.next() as u8;
                }
                bytes
            }
            8 => {
                let pieces = [
                    "",
                    " ",
                    "\u{feff}{}",
                    "{}",
                    "[]",
                    "null",
                    "1e999",
                    "-0",
                    "\"\\ud800\"",
                    "{\"a\":1}{\"a\":2}",
                    "{\"a\":1,}",
                    "\u{0}",
                    "\"€\"",
                    "{\"İ\":\"ß\"}",
                ];
                rng.pick(&pieces).as_bytes().to_vec()
            }
            _ => {
                // An array of member ids, now and then a long one.
                let n = if rng.chance(4) {
                    rng.below(3000)
                } else {
                    rng.below(50)
                };
                let members: Vec<Value> =
                    (0..n).map(|i| json!({"value": format!("u{i}")})).collect();
                serde_json::to_vec(&json!({"members": members})).unwrap_or_default()
            }
        }
    }

    fn content_type(rng: &mut Rng) -> Option<Vec<u8>> {
        const TYPES: &[&str] = &[
            "application/scim+json; charset=utf-8",
            "application/scim+json",
            "application/json",
            "APPLICATION/JSON; charset=UTF-8",
            "application/merge-patch+json",
            "application/json;",
            " application/json ",
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
            ";",
            "application/jsonx",
            "application/json€",
            "multipart/form-data; boundary=x",
        ];
        match rng.below(8) {
            0 => None,
            1 => Some((0..rng.below(24)).map(|_| rng.next() as u8).collect()),
            _ => Some(rng.pick(TYPES).as_bytes().to_vec()),
        }
    }

    /// What the extractor must do with a content type: `None` = accept.
    fn acceptable(ct: Option<&[u8]>) -> bool {
        let Some(ct) = ct else { return true };
        // Header text is visible ASCII; anything else reads as no type.
        let Some(ct) = http::HeaderValue::from_bytes(ct)
            .ok()
            .and_then(|v| v.to_str().ok().map(str::to_ascii_lowercase))
        else {
            return false;
        };
        let essence = ct.split(';').next().unwrap_or_default().trim();
        essence == "application/json" || essence.ends_with("+json")
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    }

    fn request(ct: Option<&[u8]>, body: Vec<u8>) -> Option<Request> {
        let mut builder = HttpRequest::builder().method("POST").uri("/scim/v2/Users");
        if let Some(ct) = ct {
            builder = builder.header(
                header::CONTENT_TYPE,
                http::HeaderValue::from_bytes(ct).ok()?,
            );
        }
        builder.body(Body::from(body)).ok()
    }

    /// A rejection is a SCIM error response: its status, the SCIM content
    /// type, and a body with `status` as a string and a known `scimType`.
    async fn check_rejection(err: ApiError, allowed: &[u16]) -> Result<(), String> {
        let res = axum::response::IntoResponse::into_response(err);
        let status = res.status().as_u16();
        if !allowed.contains(&status) {
            return Err(format!("status {status} not in {allowed:?}"));
        }
        let ct = res.headers().get(header::CONTENT_TYPE).cloned();
        if ct.as_ref().and_then(|v| v.to_str().ok()) != Some(crate::response::SCIM_CONTENT_TYPE) {
            return Err(format!("content type {ct:?}"));
        }
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if body["status"] != Value::String(status.to_string()) {
            return Err(format!("body status {} for {status}", body["status"]));
        }
        match body.get("scimType") {
            None => {}
            Some(Value::String(t)) if SCIM_TYPES.contains(&t.as_str()) => {}
            Some(other) => return Err(format!("scimType {other}")),
        }
        if body["detail"].as_str().is_none_or(str::is_empty) {
            return Err("no detail".into());
        }
        Ok(())
    }

    /// One generated case; `Err` describes the broken property.
    async fn check_case(ct: Option<Vec<u8>>, bytes: Vec<u8>) -> Result<(), String> {
        let Some(req) = request(ct.as_deref(), bytes.clone()) else {
            // Not a valid header value: no client can send it.
            return Ok(());
        };
        let parsed = serde_json::from_slice::<Value>(&bytes);
        match ScimJson::from_request(req, &()).await {
            Ok(ScimJson(value)) => {
                if !acceptable(ct.as_deref()) {
                    return Err("accepted a non-JSON content type".into());
                }
                match parsed {
                    Ok(expected) if expected == value => Ok(()),
                    other => Err(format!("extracted {value}, serde_json says {other:?}")),
                }
            }
            Err(err) => {
                let expected: &[u16] = match (acceptable(ct.as_deref()), parsed.is_ok()) {
                    (false, _) => &[415],
                    (true, false) => &[400],
                    (true, true) => return Err(format!("rejected valid JSON: {err:?}")),
                };
                check_rejection(err, expected).await
            }
        }
    }

    #[test]
    fn generated_requests_are_extracted_or_rejected_with_a_scim_error() {
        let cases = cases();
        // A plain `cargo test` is deterministic; a fuzz run (a case count
        // set) draws a seed, printed on failure; `SCIMSYNC_FUZZ_SEED` fixes it.
        let seed = std::env::var("SCIMSYNC_FUZZ_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                if std::env::var_os("SCIMSYNC_FUZZ_CASES").is_some() {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as u64)
                } else {
                    0x5c1e_5eed
                }
            });
        let rt = runtime();
        let mut rng = Rng(seed);
        let started = std::time::Instant::now();
        for case in 0..cases {
            let ct = content_type(&mut rng);
            let bytes = body(&mut rng);
            let result = rt.block_on(check_case(ct.clone(), bytes.clone()));
            if let Err(broken) = result {
                panic!(
                    "case {case} (seed {seed}): {broken}\ncontent type: {:?}\nbody: {:?}",
                    ct.map(|c| String::from_utf8_lossy(&c).into_owned()),
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
        println!(
            "fuzz target JSON extractor: {cases} generated inputs in {:.1} s (seed {seed})",
            started.elapsed().as_secs_f64()
        );
    }

    #[test]
    fn both_json_content_types_and_none_are_accepted() {
        let rt = runtime();
        for ct in [
            Some("application/scim+json; charset=utf-8"),
            Some("application/json"),
            Some("Application/SCIM+JSON"),
            None,
        ] {
            let req = request(
                ct.map(str::as_bytes),
                r#"{"userName":"ab€"}"#.as_bytes().to_vec(),
            )
            .unwrap();
            let ScimJson(v) = rt.block_on(ScimJson::from_request(req, &())).unwrap();
            assert_eq!(v, json!({"userName": "ab€"}), "{ct:?}");
        }
    }

    #[test]
    fn other_content_types_are_415_with_a_scim_body() {
        let rt = runtime();
        for ct in [
            &b"text/plain"[..],
            b"application/x-www-form-urlencoded",
            b"\xff\xfe",
        ] {
            let req = request(Some(ct), b"{}".to_vec()).unwrap();
            let err = rt.block_on(ScimJson::from_request(req, &())).unwrap_err();
            rt.block_on(check_rejection(err, &[415])).unwrap();
        }
    }

    #[test]
    fn malformed_or_too_deeply_nested_json_is_400_invalid_syntax() {
        let rt = runtime();
        for body in [
            b"{\"a\":".to_vec(),
            b"\xff\xfe{}".to_vec(),
            format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
            "{\"ab€\"".as_bytes()[..6].to_vec(),
        ] {
            let req = request(Some(b"application/json"), body).unwrap();
            let err = rt.block_on(ScimJson::from_request(req, &())).unwrap_err();
            assert_eq!(
                err.to_scim().scim_type,
                Some(scim_proto::ScimType::InvalidSyntax)
            );
            rt.block_on(check_rejection(err, &[400])).unwrap();
        }
    }

    #[test]
    fn a_body_over_the_router_limit_is_413_with_a_scim_body() {
        // Arrange: the limit the router sets.
        let app = axum::Router::new()
            .route("/", post(|ScimJson(_): ScimJson| async { "ok" }))
            .layer(axum::extract::DefaultBodyLimit::max(MAX_PAYLOAD_BYTES));
        let big = format!("[{}1]", "1,".repeat(MAX_PAYLOAD_BYTES / 2 + 1));
        let req = HttpRequest::builder()
            .method("POST")
            .uri("/")
            .header(header::CONTENT_TYPE, "application/scim+json")
            .body(Body::from(big))
            .unwrap();
        // Act
        let res = runtime().block_on(app.oneshot(req)).unwrap();
        // Assert
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            crate::response::SCIM_CONTENT_TYPE
        );
    }
}
