//! Discovery documents (RFC 7644 §4): `/ServiceProviderConfig`, `/Schemas`,
//! `/ResourceTypes`, rendered from the static schema definitions.

use serde_json::{Map, Value, json};

use crate::list::{MAX_PAGE_SIZE, list_response};
use crate::schema::{AttributeDef, ResourceType, SchemaDef};

/// Largest request body we accept, advertised as `bulk.maxPayloadSize` and
/// enforced by the HTTP layer.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

pub fn service_provider_config(base_url: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": format!("{base_url}/ServiceProviderConfig"),
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": MAX_PAYLOAD_BYTES},
        "filter": {"supported": true, "maxResults": MAX_PAGE_SIZE},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with the tenant's API token in the Authorization header.",
            "primary": true
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base_url}/ServiceProviderConfig"),
        }
    })
}

pub fn resource_type(rt: &ResourceType, base_url: &str) -> Value {
    let extensions: Vec<Value> = rt
        .extensions
        .iter()
        .map(|(s, required)| json!({"schema": s.id, "required": required}))
        .collect();
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": rt.name,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.description,
        "schema": rt.schema.id,
        "schemaExtensions": extensions,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base_url}/ResourceTypes/{}", rt.name),
        }
    })
}

pub fn resource_types(rts: &[&ResourceType], base_url: &str) -> Value {
    let all: Vec<Value> = rts.iter().map(|rt| resource_type(rt, base_url)).collect();
    let n = all.len();
    list_response(all, n, 1)
}

pub fn schema(def: &SchemaDef, base_url: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": def.id,
        "name": def.name,
        "description": def.description,
        "attributes": def.attributes.iter()
            // Common attributes are described by RFC 7643 §3.1, not per schema.
            .filter(|a| !matches!(a.name, "id" | "externalId" | "meta"))
            .map(attribute).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{base_url}/Schemas/{}", def.id),
        }
    })
}

pub fn schemas(defs: &[&SchemaDef], base_url: &str) -> Value {
    let all: Vec<Value> = defs.iter().map(|d| schema(d, base_url)).collect();
    let n = all.len();
    list_response(all, n, 1)
}

fn attribute(a: &AttributeDef) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), a.name.into());
    m.insert("type".into(), a.ty.as_str().into());
    m.insert("multiValued".into(), a.multi_valued.into());
    m.insert("description".into(), a.description.into());
    m.insert("required".into(), a.required.into());
    m.insert("caseExact".into(), a.case_exact.into());
    m.insert("mutability".into(), a.mutability.as_str().into());
    m.insert("returned".into(), a.returned.as_str().into());
    m.insert("uniqueness".into(), a.uniqueness.as_str().into());
    if !a.canonical_values.is_empty() {
        m.insert("canonicalValues".into(), json!(a.canonical_values));
    }
    if !a.reference_types.is_empty() {
        m.insert("referenceTypes".into(), json!(a.reference_types));
    }
    if !a.sub_attributes.is_empty() {
        m.insert(
            "subAttributes".into(),
            Value::Array(a.sub_attributes.iter().map(attribute).collect()),
        );
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER, USER, USER_RESOURCE};

    #[test]
    fn user_schema_lists_user_name_as_required_and_unique() {
        let doc = schema(&USER, "https://x/scim/v2");
        let user_name = doc["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "userName")
            .unwrap();
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["uniqueness"], "server");
    }

    #[test]
    fn user_resource_type_declares_the_enterprise_extension() {
        let doc = resource_type(&USER_RESOURCE, "https://x/scim/v2");
        assert_eq!(doc["schemaExtensions"][0]["schema"], ENTERPRISE_USER.id);
        assert_eq!(doc["endpoint"], "/Users");
    }
}
