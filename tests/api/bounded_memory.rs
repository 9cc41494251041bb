//! What one process holds for hostile requests stays bounded: the deep-page caches by
//! their byte budgets (read from their own accounting), free-form JSON fields by their
//! caps, and one answer by `max_answer_bytes`.

use crate::helpers::*;
use futures_util::{StreamExt, stream};
use inbox_gateway::feathers::anchors::{ANCHOR_BYTES, STATEMENT_BYTES};
use inbox_gateway::services::contacts::CUSTOM_FIELDS_MAX_BYTES;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Bytes the conversations service's anchors and kept statements hold.
fn deep_page_cache_bytes(app: &TestApp) -> u64 {
    (app.registry.caches().iter())
        .filter(|(name, _)| name.starts_with("conversations"))
        .map(|(_, bytes)| bytes)
        .sum()
}

/// Each deep page `external_id[$ne]=<i, then x to `len` bytes>`, asked twice (the
/// second from the anchor the first left, which keeps its statement), 8 at a time.
async fn deep_pages(app: &TestApp, from: usize, count: usize, len: usize) {
    stream::iter(from..from + count)
        .for_each_concurrent(8, |i| async move {
            let mut value = format!("{i}-");
            value.extend(std::iter::repeat_n('x', len - value.len()));
            let path = format!("/conversations?external_id[$ne]={value}&$skip=1&$limit=1");
            let (status, first) = app.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{first}");
            let (_, second) = app.get(&path).await;
            assert_eq!(second, first);
            assert_eq!(records(&first).len(), 1);
        })
        .await;
}

#[actix_web::test]
async fn hostile_deep_pages_keep_the_caches_within_their_byte_budgets() {
    let app = spawn_app_with(|s| s.rate_limit_requests = 0).await;
    let contact = create_contact(&app, json!({"first_name": "Dana"})).await;
    for _ in 0..3 {
        let id = contact["id"].as_i64().unwrap();
        create_conversation(&app, app.org.org_id, id, "sms", "open").await;
    }
    // 30 KB filters: too large to remember anything for.
    deep_pages(&app, 0, 500, 30_000).await;
    assert_eq!(deep_page_cache_bytes(&app), 0);
    // Filters of 3 KB, small enough to keep: more statements than the budget holds.
    deep_pages(&app, 500, 1300, 3_000).await;
    let bytes = deep_page_cache_bytes(&app);
    assert!(bytes <= ANCHOR_BYTES + STATEMENT_BYTES, "{bytes}");
    assert!(bytes > STATEMENT_BYTES / 2, "statements were kept: {bytes}");
    let all: u64 = app.registry.caches().iter().map(|(_, b)| b).sum();
    assert!(all < 24 << 20, "every cache of the app: {all} bytes");
    eprintln!("deep-page caches: {bytes} bytes; every cache: {all} bytes");
}

fn custom_fields(bytes: usize) -> Value {
    // `{"notes":"<x...>"}` is 12 bytes of JSON around the string.
    json!({ "notes": "x".repeat(bytes - 12) })
}

#[actix_web::test]
async fn custom_fields_over_their_cap_are_refused() {
    let app = spawn_app().await;
    let over = custom_fields(CUSTOM_FIELDS_MAX_BYTES + 1);
    let (status, body) = app
        .post(
            "/contacts",
            json!({"first_name": "A", "custom_fields_by_name": over}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
    assert_eq!(
        body["message"],
        format!(
            "custom_fields_by_name: must be at most {CUSTOM_FIELDS_MAX_BYTES} bytes of JSON (it is {})",
            CUSTOM_FIELDS_MAX_BYTES + 1
        )
    );
    assert!(body["errors"]["custom_fields_by_name"].is_array(), "{body}");
    let at_cap = custom_fields(CUSTOM_FIELDS_MAX_BYTES);
    let contact = create_contact(
        &app,
        json!({"first_name": "A", "custom_fields_by_name": at_cap}),
    )
    .await;
    let path = format!("/contacts/{}", contact["id"]);
    let (status, body) = app
        .patch(&path, json!({"custom_fields_by_name": over}))
        .await;
    assert_error(status, &body, 400, "BadRequest");
    let (status, body) = app
        .post(
            "/conversation-views",
            json!({"name": "big", "query": {"status": "x".repeat(16 * 1024)}}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
    assert!(body["errors"]["query"].is_array(), "{body}");
    let (_, conversation) = channel_conversation(&app, &app.org, "whatsapp").await;
    let data =
        json!({"name": "x", "language": "en", "components": [], "pad": "x".repeat(16 * 1024)});
    let (status, body) = app
        .post(
            "/conversation-messages-transform-outgoing-whatsapp",
            json!({"conversation_id": conversation, "message_type": "template", "messageData": data}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
    assert!(body["errors"]["messageData"].is_array(), "{body}");
    let (status, body) = app
        .post(
            "/conversation-messages-transform-outgoing-whatsapp",
            json!({"conversation_id": conversation, "message_text": "hi", "s3_key": "k".repeat(2049),
                   "file_type": "image/png", "file_size": 10}),
        )
        .await;
    assert_error(status, &body, 400, "BadRequest");
    assert!(body["errors"]["s3_key"].is_array(), "{body}");
}

#[actix_web::test]
async fn a_page_of_contacts_at_the_cap_stays_under_the_answer_bound() {
    let app = spawn_app().await;
    for i in 0..50 {
        let body = json!({
            "first_name": format!("C{i}"),
            "custom_fields_by_name": custom_fields(CUSTOM_FIELDS_MAX_BYTES),
        });
        create_contact(&app, body).await;
    }
    let res = app.request(reqwest::Method::GET, "/contacts?$limit=50");
    let res = res.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.bytes().await.unwrap();
    let page: Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(records(&page).len(), 50);
    // 50 × 16 KiB of custom fields and the rest of each contact.
    assert!(text.len() < 1 << 20, "{} bytes", text.len());
}

#[actix_web::test]
async fn records_stored_above_the_caps_cannot_make_an_answer_larger_than_the_bound() {
    let app = spawn_app_with(|s| s.max_answer_bytes = 512 * 1024).await;
    let contact = create_contact(&app, json!({"first_name": "Dana"})).await;
    let contact_id = contact["id"].as_i64().unwrap();
    for i in 0..6 {
        create_contact(&app, json!({"first_name": format!("C{i}")})).await;
        create_conversation(&app, app.org.org_id, contact_id, "sms", "open").await;
    }
    // Stored before the caps (or by another writer): 100 KB each.
    let big = serde_json::to_string(&custom_fields(100_000)).unwrap();
    exec_sql(
        &app,
        &format!("UPDATE contacts SET custom_fields_by_name = '{big}'"),
    )
    .await;
    exec_sql(
        &app,
        &format!("UPDATE conversations SET metadata = '{big}'"),
    )
    .await;
    for path in ["/contacts", "/conversations"] {
        let (status, body) = app.get(&format!("{path}?$limit=50")).await;
        assert_error(status, &body, 400, "BadRequest");
        assert_eq!(body["data"]["maxAnswerBytes"], 512 * 1024, "{body}");
        // Fewer records, or fewer fields, fit.
        let page = get_ok(&app, &format!("{path}?$limit=3")).await;
        assert_eq!(records(&page).len(), 3, "{path}");
        let page = get_ok(&app, &format!("{path}?$limit=50&$select[]=id")).await;
        assert!(records(&page).len() >= 6, "{path}");
    }
}
