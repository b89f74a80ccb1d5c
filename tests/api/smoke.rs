//! The shortest path through the service: a created user is found by
//! Entra's match query.

use serde_json::json;

use crate::helpers::{enc, entra_user, spawn_app};

#[tokio::test]
async fn created_user_is_found_by_external_id_right_after_its_201() {
    // Arrange
    let app = spawn_app().await;
    let id = app
        .create_user(&entra_user(
            "adele@contoso.com",
            "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        ))
        .await;

    // Act
    let reply = app
        .get(&format!(
            "/Users?filter={}",
            enc(r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#)
        ))
        .await;

    // Assert
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["totalResults"], 1);
    assert_eq!(reply.body["Resources"][0]["id"], json!(id));
}
