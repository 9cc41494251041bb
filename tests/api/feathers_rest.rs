//! Feathers REST semantics over the fixture service.

use crate::helpers::*;
use serde_json::json;

#[actix_web::test]
async fn unknown_path_is_a_feathers_404() {
    let app = spawn_app().await;
    let (status, body) = app.get("/nope").await;
    assert_error(status, &body, 404, "NotFound");
    assert_eq!(body["message"], "Path /nope not found");
}

#[actix_web::test]
async fn create_answers_201_and_find_pages_are_clamped() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.create("/people", json!({"name": format!("p{i}"), "age": i})).await;
    }
    let (status, page) = app.get("/people-p1?$limit=4").await;
    assert_eq!(status, 200);
    assert_eq!(page["limit"], 2);
    assert_eq!(page["total"], 5);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
}
