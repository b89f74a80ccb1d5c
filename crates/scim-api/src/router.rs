//! The application: routes, middleware, and path normalisation.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware;
use axum::routing::{get, post};
use http::Uri;
use scim_proto::ScimError;
use scim_proto::discovery::MAX_PAYLOAD_BYTES;
use tower::util::MapRequestLayer;
use tower::{Layer as _, util::MapRequest};
use tower_http::trace::TraceLayer;

use crate::error::scim_error_response;
use crate::{AppState, auth, discovery, groups, search, users};

/// The app as served: the router behind path normalisation.
pub type App = MapRequest<Router, fn(Request) -> Request>;

/// The routes with their middleware. Tests can drive it with `oneshot`.
pub fn router(state: AppState) -> Router {
    let tenant_routes = Router::new()
        .route("/scim/v2/Users", get(users::list).post(users::create))
        .route("/scim/v2/Users/.search", post(users::list))
        .route("/scim/v2/Groups/.search", post(groups::list))
        .route("/scim/v2/.search", post(search::search))
        .route(
            "/scim/v2/Users/{id}",
            get(users::get)
                .put(users::replace)
                .patch(users::patch)
                .delete(users::delete),
        )
        .route("/scim/v2/Groups", get(groups::list).post(groups::create))
        .route(
            "/scim/v2/Groups/{id}",
            get(groups::get)
                .put(groups::replace)
                .patch(groups::patch)
                .delete(groups::delete),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_tenant,
        ));

    let discovery_routes = Router::new()
        .route(
            "/scim/v2/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route("/scim/v2/ResourceTypes", get(discovery::resource_types))
        .route(
            "/scim/v2/ResourceTypes/{name}",
            get(discovery::resource_type),
        )
        .route("/scim/v2/Schemas", get(discovery::schemas))
        .route("/scim/v2/Schemas/{id}", get(discovery::schema));

    Router::new()
        .merge(tenant_routes)
        .merge(discovery_routes)
        .fallback(|| async {
            scim_error_response(&ScimError::not_found(
                "no such endpoint; the tenant URL ends with /scim/v2",
            ))
        })
        .method_not_allowed_fallback(|| async {
            scim_error_response(&ScimError::method_not_allowed(
                "method not allowed on this endpoint",
            ))
        })
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // The URI can hold a filter with personal data: log the path only.
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                tenant = tracing::field::Empty,
                provider = tracing::field::Empty,
            )
        }))
        .with_state(state)
}

/// The router behind [`normalize_path`].
pub fn app(state: AppState) -> App {
    wrap(router(state))
}

/// Any router (e.g. the SCIM routes merged with the portal's) behind
/// [`normalize_path`].
pub fn wrap(router: Router) -> App {
    MapRequestLayer::new(normalize_path as fn(Request) -> Request).layer(router)
}

/// Collapses repeated slashes and drops a trailing slash before routing, so
/// that a tenant URL entered as `…/scim/v2/` (Entra then asks for
/// `…/scim/v2//Users`) still works.
pub fn normalize_path(mut req: Request) -> Request {
    let path = req.uri().path();
    if !(path.contains("//") || (path.len() > 1 && path.ends_with('/'))) {
        return req;
    }
    let mut clean = String::with_capacity(path.len());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        clean.push('/');
        clean.push_str(segment);
    }
    if clean.is_empty() {
        clean.push('/');
    }
    if let Some(q) = req.uri().query() {
        clean.push('?');
        clean.push_str(q);
    }
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = clean.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(uri: &str) -> String {
        let req = Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap();
        normalize_path(req).uri().to_string()
    }

    #[test]
    fn double_and_trailing_slashes_are_removed_and_the_query_kept() {
        assert_eq!(norm("/scim/v2//Users?x=1"), "/scim/v2/Users?x=1");
        assert_eq!(norm("/scim/v2/Users/"), "/scim/v2/Users");
        assert_eq!(norm("/scim/v2/Users"), "/scim/v2/Users");
        assert_eq!(norm("https://h/scim/v2//Users"), "https://h/scim/v2/Users");
    }
}
