//! The form handlers: parse the form (checking its CSRF token), call the
//! domain, then redirect to the page (POST → redirect → GET). Revealing a
//! token is the exception: that answer is the page itself, with the token
//! in it once, never in a URL.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use member_sync::mapping::{MappingEntry, MappingError};
use scim_domain::Members;
use scim_proto::ids::TenantId;
use scim_store::tokens::ApiToken;

use crate::PortalState;
use crate::pages::{self, Extras};
use crate::session::{CheckedForm, PageSession, set_cookie};

fn to(notice: &str) -> Response {
    Redirect::to(&format!("/portal?notice={notice}")).into_response()
}

pub async fn open(
    State(state): State<PortalState>,
    Path((tenant, secret)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Ok(tenant) = TenantId::parse(&tenant) else {
        return pages::refused(&state.config, scim_domain::portal::LinkRefused::Unknown);
    };
    match state.portal.open_link(&tenant, &secret).await {
        Ok(Ok((cookie, _return_url))) => (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, set_cookie(&headers, &cookie)),
                (header::LOCATION, "/portal".to_owned()),
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (header::REFERRER_POLICY, "no-referrer".to_owned()),
            ],
        )
            .into_response(),
        Ok(Err(why)) => pages::refused(&state.config, why),
        Err(e) => pages::failure(&e),
    }
}

/// Renders the page with a freshly issued token in it (shown once).
async fn reveal(
    state: &PortalState,
    s: &PageSession,
    headers: &HeaderMap,
    token: &ApiToken,
) -> Response {
    match pages::load(state, s, headers, 0, None).await {
        Ok(data) => {
            let extras = Extras {
                revealed_token: Some(token.expose().to_owned()),
                notice: Some(
                    "User provisioning is active. Enter the Tenant URL and the API token in your identity provider.",
                ),
                ..Extras::default()
            };
            pages::render(state, s, &data, &extras, StatusCode::OK)
        }
        Err(r) => r,
    }
}

pub async fn activate(
    State(state): State<PortalState>,
    headers: HeaderMap,
    CheckedForm { session: s, .. }: CheckedForm,
) -> Response {
    match state.tenants.activate(&s.session.tenant, None).await {
        Ok(token) => reveal(&state, &s, &headers, &token).await,
        Err(e) => pages::failure(&e),
    }
}

pub async fn add_token(
    State(state): State<PortalState>,
    headers: HeaderMap,
    CheckedForm { session: s, .. }: CheckedForm,
) -> Response {
    match state.tenants.rotate(&s.session.tenant).await {
        Ok(token) => reveal(&state, &s, &headers, &token).await,
        Err(scim_domain::TenancyError::Token(scim_store::tokens::TokenError::NotActive)) => {
            Redirect::to("/portal#activate").into_response()
        }
        Err(e) => pages::failure(&e),
    }
}

pub async fn revoke(
    State(state): State<PortalState>,
    CheckedForm { session: s, .. }: CheckedForm,
) -> Response {
    match state.tenants.revoke(&s.session.tenant).await {
        Ok(_)
        | Err(scim_domain::TenancyError::Token(scim_store::tokens::TokenError::NotActive)) => {
            to("revoked")
        }
        Err(e) => pages::failure(&e),
    }
}

pub async fn synchronize(
    State(state): State<PortalState>,
    CheckedForm { session: s, .. }: CheckedForm,
) -> Response {
    match crate::launch::start(&state, &s.session.tenant).await {
        Ok(true) => to("sync-started"),
        Ok(false) => to("sync-running"),
        Err(e) => pages::failure(e.as_ref()),
    }
}

/// The mapping rows of a form: `path`/`property` pairs in order, rows with
/// both cells empty dropped.
pub fn mapping_rows(f: &[(String, String)]) -> Vec<MappingEntry> {
    let paths = f.iter().filter(|(k, _)| k == "path").map(|(_, v)| v.trim());
    let props = f
        .iter()
        .filter(|(k, _)| k == "property")
        .map(|(_, v)| v.trim());
    paths
        .zip(props)
        .filter(|(p, q)| !(p.is_empty() && q.is_empty()))
        .map(|(p, q)| MappingEntry::new(p, q))
        .collect()
}

/// A mapping error as the page shows it: on its row when it names one.
pub fn row_error(e: &MappingError) -> (Option<usize>, String) {
    match e {
        MappingError::Entry { index, reason, .. } => (Some(*index), reason.clone()),
        other => (None, other.to_string()),
    }
}

pub async fn save_mapping(
    State(state): State<PortalState>,
    headers: HeaderMap,
    CheckedForm {
        session: s,
        fields: f,
    }: CheckedForm,
) -> Response {
    let rows = mapping_rows(&f);
    if let Err(e) = Members::check_mapping(&rows) {
        // Nothing saved: the page again, the rows as typed, the error on
        // its row.
        return match pages::load(&state, &s, &headers, 0, None).await {
            Ok(data) => {
                let extras = Extras {
                    mapping_rows: Some(rows),
                    mapping_error: Some(row_error(&e)),
                    ..Extras::default()
                };
                pages::render(&state, &s, &data, &extras, StatusCode::BAD_REQUEST)
            }
            Err(r) => r,
        };
    }
    match state.members.set_mapping(&s.session.tenant, rows).await {
        Ok(_) => Redirect::to("/portal?notice=mapping-saved#mapping").into_response(),
        Err(e) => pages::failure(&e),
    }
}

pub async fn reset_mapping(
    State(state): State<PortalState>,
    CheckedForm { session: s, .. }: CheckedForm,
) -> Response {
    match state.members.reset_mapping(&s.session.tenant).await {
        Ok(_) => Redirect::to("/portal?notice=mapping-reset#mapping").into_response(),
        Err(e) => pages::failure(&e),
    }
}
