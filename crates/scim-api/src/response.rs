//! SCIM responses: always `application/scim+json` (the Microsoft validator
//! aborts on `application/json`), with `ETag` and `Location` where they apply.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use scim_proto::list::list_response;
use scim_proto::search::ListRequest;
use serde_json::Value;

pub const SCIM_CONTENT_TYPE: &str = "application/scim+json; charset=utf-8";

/// A JSON body with SCIM headers.
#[derive(Debug)]
pub struct ScimResponse {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub etag: Option<String>,
    pub location: Option<String>,
}

impl ScimResponse {
    pub fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            etag: None,
            location: None,
        }
    }

    /// `200` with a `ListResponse` of one page of `total` results.
    pub fn listed(resources: Vec<Value>, total: usize, request: &ListRequest) -> Self {
        Self::ok(list_response(resources, total, request.paging.start_index))
    }

    pub fn created(body: Value, location: String) -> Self {
        Self {
            status: StatusCode::CREATED,
            body: Some(body),
            etag: None,
            location: Some(location),
        }
    }

    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: None,
            etag: None,
            location: None,
        }
    }

    pub fn with_etag(mut self, etag: String) -> Self {
        self.etag = Some(etag);
        self
    }
}

impl IntoResponse for ScimResponse {
    fn into_response(self) -> Response {
        let mut res = match &self.body {
            Some(body) => {
                let bytes = serde_json::to_vec(body).unwrap_or_default();
                let mut res = (self.status, bytes).into_response();
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(SCIM_CONTENT_TYPE),
                );
                res
            }
            None => self.status.into_response(),
        };
        let headers = res.headers_mut();
        if let Some(etag) = self.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
            headers.insert(header::ETAG, etag);
        }
        if let Some(loc) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, loc);
        }
        res
    }
}
