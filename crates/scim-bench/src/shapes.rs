//! Entra-shaped request bodies and URL encoding for the benchmark traffic.
//! Changes when the traffic mix should look like a different client.

use serde_json::{Value, json};

pub(crate) fn user(i: usize, run: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": format!("{run}-{i:06}"),
        "userName": format!("user{i:06}@contoso.com"),
        "active": true,
        "displayName": format!("User {i}"),
        "emails": [{"primary": true, "type": "work", "value": format!("user{i:06}@contoso.com")}],
        "name": {"givenName": "User", "familyName": format!("{i}")},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Retail"}
    })
}

pub(crate) fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

pub(crate) fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
