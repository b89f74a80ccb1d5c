//! Request parsing with SCIM errors instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::header;
use http::request::Parts;
use scim_proto::ScimError;
use scim_proto::discovery::MAX_PAYLOAD_BYTES;
use scim_proto::list::Paging;
use scim_proto::projection::Projection;
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

/// Query parameters of a list request. Names are matched ignoring case and
/// unknown ones (such as Entra's `aadOptscim062020` flag) are ignored.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub filter: Option<String>,
    pub paging: Paging,
    pub projection: Projection,
}

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

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let pairs = query_pairs(parts)?;
        Ok(Self {
            filter: param(&pairs, "filter")
                .filter(|f| !f.trim().is_empty())
                .map(str::to_owned),
            paging: Paging::from_query(param(&pairs, "startIndex"), param(&pairs, "count"))?,
            projection: projection(&pairs)?,
        })
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
pub struct IfMatch(Option<Vec<String>>);

impl IfMatch {
    /// Checks the current ETag against the precondition (412 on mismatch).
    pub fn check(&self, current_etag: &str) -> Result<(), ApiError> {
        let Some(tags) = &self.0 else { return Ok(()) };
        let strip = |t: &str| {
            t.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_owned()
        };
        let current = strip(current_etag);
        if tags.iter().any(|t| t.trim() == "*" || strip(t) == current) {
            Ok(())
        } else {
            Err(ScimError::precondition_failed(
                "the resource has changed since it was read (If-Match does not match its ETag)",
            )
            .into())
        }
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(v) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let v = v
            .to_str()
            .map_err(|_| ScimError::invalid_syntax("If-Match is not valid text"))?;
        Ok(Self(Some(v.split(',').map(str::to_owned).collect())))
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
    fn if_match_accepts_weak_strong_and_star() {
        for header in ["W/\"3\"", "\"3\"", "*", "W/\"1\", W/\"3\""] {
            let m = IfMatch(Some(header.split(',').map(str::to_owned).collect()));
            assert!(m.check("W/\"3\"").is_ok(), "{header}");
        }
        let m = IfMatch(Some(vec!["W/\"2\"".into()]));
        assert!(m.check("W/\"3\"").is_err());
    }

    #[test]
    fn query_pairs_decode_percent_and_plus() {
        let pairs =
            serde_urlencoded_pairs("filter=userName%20eq%20%22a%2Bb%40x%22&count=5").unwrap();
        assert_eq!(param(&pairs, "FILTER"), Some("userName eq \"a+b@x\""));
        assert_eq!(param(&pairs, "count"), Some("5"));
    }
}
