//! `/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes` (RFC 7644 §4).
//! They describe the service, not a tenant, so they need no token.

use scim_proto::ScimError;
use scim_proto::discovery;
use scim_proto::schema::{
    ENTERPRISE_USER, GROUP, GROUP_RESOURCE, ResourceType, SchemaDef, USER, USER_RESOURCE,
};

use crate::error::ApiResult;
use crate::extract::{BaseUrl, PathSegment};
use crate::response::ScimResponse;

const RESOURCE_TYPES: &[&ResourceType] = &[&USER_RESOURCE, &GROUP_RESOURCE];
const SCHEMAS: &[&SchemaDef] = &[&USER, &ENTERPRISE_USER, &GROUP];

pub async fn service_provider_config(BaseUrl(base): BaseUrl) -> ScimResponse {
    ScimResponse::ok(discovery::service_provider_config(&base))
}

pub async fn resource_types(BaseUrl(base): BaseUrl) -> ScimResponse {
    ScimResponse::ok(discovery::resource_types(RESOURCE_TYPES, &base))
}

pub async fn resource_type(
    BaseUrl(base): BaseUrl,
    PathSegment(name): PathSegment,
) -> ApiResult<ScimResponse> {
    RESOURCE_TYPES
        .iter()
        .find(|rt| rt.name.eq_ignore_ascii_case(&name))
        .map(|rt| ScimResponse::ok(discovery::resource_type(rt, &base)))
        .ok_or_else(|| ScimError::not_found(format!("no resource type {name:?}")).into())
}

pub async fn schemas(BaseUrl(base): BaseUrl) -> ScimResponse {
    ScimResponse::ok(discovery::schemas(SCHEMAS, &base))
}

pub async fn schema(
    BaseUrl(base): BaseUrl,
    PathSegment(id): PathSegment,
) -> ApiResult<ScimResponse> {
    SCHEMAS
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(&id))
        .map(|s| ScimResponse::ok(discovery::schema(s, &base)))
        .ok_or_else(|| ScimError::not_found(format!("no schema {id:?}")).into())
}
