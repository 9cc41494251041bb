//! Attachments through S3 against a real S3-compatible server in the test process
//! (s3s + s3s-fs, which verifies presigned SigV4): sign, PUT the bytes, register,
//! download; what S3 and the server refuse; sanitized names; `_id`; remove; the 503
//! without storage; orphans; an SMS whose file reaches AgentPhone as a working URL.

use crate::fake_agentphone::{FAKE_API_KEY, FakeAgentPhone};
use crate::fake_s3::{BUCKET, FakeS3};
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n fake image bytes for the tests";

async fn app_with(fake: &FakeS3) -> TestApp {
    spawn_app_with(|s| fake.configure(s)).await
}

async fn sign(
    app: &TestApp,
    conversation: i64,
    name: &str,
    mime: &str,
    size: usize,
) -> (StatusCode, Value) {
    app.post(
        "/s3-url-signing",
        json!({"conversation_id": conversation, "file_name": name, "file_type": mime, "file_size": size}),
    )
    .await
}

/// PUTs `bytes` to a signing answer's URL with its headers, `content_type` instead
/// of the signed one when given.
async fn put(
    app: &TestApp,
    signed: &Value,
    bytes: &[u8],
    content_type: Option<&str>,
) -> reqwest::Response {
    assert_eq!(signed["method"], "PUT");
    let mut req = app.client.put(signed["url"].as_str().unwrap());
    for (name, value) in signed["headers"].as_object().unwrap() {
        if name == "content-type" && content_type.is_some() {
            continue;
        }
        if name == "content-length" {
            continue; // reqwest sets it from the body
        }
        req = req.header(name, value.as_str().unwrap());
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.body(bytes.to_vec()).send().await.expect("PUT sent")
}

fn registration(
    signed: &Value,
    conversation: i64,
    org: i64,
    mime: &str,
    size: usize,
    category: &str,
) -> Value {
    json!({
        "conversation_id": conversation, "organization_id": org, "file_name": "photo.png",
        "file_type": mime, "file_size": size, "s3_key": signed["s3_key"],
        "s3_path": signed["s3_path"], "file_category": category,
    })
}

/// Signs, uploads and registers `bytes`; answers the file record.
async fn upload(app: &TestApp, conversation: i64, name: &str, mime: &str, bytes: &[u8]) -> Value {
    let (status, signed) = sign(app, conversation, name, mime, bytes.len()).await;
    assert_eq!(status, StatusCode::CREATED, "{signed}");
    let res = put(app, &signed, bytes, None).await;
    assert!(
        res.status().is_success(),
        "PUT: {} {}",
        res.status(),
        res.text().await.unwrap()
    );
    let category = signed["file_category"].as_str().unwrap().to_string();
    app.create(
        "/conversation-files",
        registration(
            &signed,
            conversation,
            app.org.org_id,
            mime,
            bytes.len(),
            &category,
        ),
    )
    .await
}

async fn download(app: &TestApp, url: &str) -> (StatusCode, Vec<u8>) {
    let res = app.client.get(url).send().await.expect("GET sent");
    (res.status(), res.bytes().await.unwrap().to_vec())
}

#[actix_web::test]
async fn sign_put_register_download_find_and_remove() {
    let fake = FakeS3::start().await;
    let app = app_with(&fake).await;
    let (_, conversation) = channel_conversation(&app, &app.org, "whatsapp").await;
    let (status, signed) = sign(&app, conversation, "photo.png", "image/png", PNG.len()).await;
    assert_eq!(status, StatusCode::CREATED, "{signed}");
    let key = signed["s3_key"].as_str().unwrap().to_string();
    let prefix = format!("org/{}/conversations/{conversation}/", app.org.org_id);
    assert!(
        key.starts_with(&prefix) && key.ends_with("/photo.png"),
        "{key}"
    );
    assert_eq!(signed["s3PathWithoutBucket"], key);
    assert_eq!(signed["s3_path"], format!("s3://{BUCKET}/{key}"));
    assert_eq!(signed["headers"]["content-type"], "image/png", "{signed}");
    assert!(signed["expires_at"].is_string());
    assert!(signed["url"].as_str().unwrap().contains("X-Amz-Signature="));
    assert!(!fake.has(&key), "nothing is stored before the PUT");

    let res = put(&app, &signed, PNG, None).await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    assert!(fake.has(&key));

    let file = app
        .create(
            "/conversation-files",
            registration(
                &signed,
                conversation,
                app.org.org_id,
                "image/png",
                PNG.len(),
                "image",
            ),
        )
        .await;
    assert_eq!(file["_id"], file["id"], "{file}");
    assert_eq!(file["s3_key"], key);
    assert_eq!(file["file_size"], PNG.len());
    assert_eq!(file["file_category"], "image");
    assert_eq!(file["created_by_user_id"], app.org.user_id);
    let id = file["id"].as_i64().unwrap();

    let got = get_ok(&app, &format!("/conversation-files/{id}")).await;
    assert_eq!(got["_id"], id);
    let (status, bytes) = download(&app, got["url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, PNG, "the download is the upload");
    // The object is private: without the signature S3 refuses it.
    let bare = got["url"]
        .as_str()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(download(&app, &bare).await.0, StatusCode::FORBIDDEN);

    let page = get_ok(
        &app,
        &format!("/conversation-files?conversation_id={conversation}&file_category=image"),
    )
    .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["data"][0]["_id"], id);
    let none = get_ok(
        &app,
        &format!("/conversation-files?conversation_id={conversation}&file_category=audio"),
    )
    .await;
    assert_eq!(none["total"], 0);
    let paged = get_ok(
        &app,
        &format!("/conversation-files?conversation_id={conversation}&$limit=1&$skip=1"),
    )
    .await;
    assert_eq!(paged["total"], 1);
    assert_eq!(records(&paged).len(), 0);

    // The same object twice is a 409.
    let (status, body) = app
        .post(
            "/conversation-files",
            registration(
                &signed,
                conversation,
                app.org.org_id,
                "image/png",
                PNG.len(),
                "image",
            ),
        )
        .await;
    assert_error(status, &body, 409, "Conflict");

    // Another organization sees nothing of it.
    let other = app.new_tenant("Other").await;
    let (status, _) = app
        .call_as(
            &other,
            Method::GET,
            &format!("/conversation-files/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call_as(
            &other,
            Method::DELETE,
            &format!("/conversation-files/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, removed) = app.delete(&format!("/conversation-files/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["_id"], id);
    assert_eq!(
        app.get(&format!("/conversation-files/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fake.has(&key) {
        assert!(
            std::time::Instant::now() < deadline,
            "the object is removed after the record"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = sql_i64(
        &app,
        "SELECT COUNT(*) FROM events WHERE path = 'conversation-files' AND event IN ('created', 'removed')",
    )
    .await;
    assert_eq!(events, 2, "create and remove are events");
}

#[actix_web::test]
async fn s3_refuses_another_type_another_size_a_tampered_url_and_an_expired_one() {
    let fake = FakeS3::start().await;
    let app = spawn_app_with(|s| {
        fake.configure(s);
        s.s3_upload_url_secs = 1;
    })
    .await;
    let (_, conversation) = channel_conversation(&app, &app.org, "whatsapp").await;
    let (_, signed) = sign(&app, conversation, "a.png", "image/png", PNG.len()).await;
    let key = signed["s3_key"].as_str().unwrap().to_string();
    let res = put(&app, &signed, PNG, Some("image/jpeg")).await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "another Content-Type: {}",
        res.text().await.unwrap()
    );
    let res = put(&app, &signed, &PNG[1..], None).await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "another size: {}",
        res.text().await.unwrap()
    );
    let tampered = json!({
        "method": "PUT", "headers": signed["headers"],
        "url": signed["url"].as_str().unwrap().replace("a.png", "b.png"),
    });
    assert_eq!(
        put(&app, &tampered, PNG, None).await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(!fake.has(&key));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = put(&app, &signed, PNG, None).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "expired");
    assert!(res.text().await.unwrap().contains("expired"));
    assert!(!fake.has(&key));
}

#[actix_web::test]
async fn registrations_must_match_the_object_and_lie_under_the_conversation() {
    let fake = FakeS3::start().await;
    let app = app_with(&fake).await;
    let org = app.org.org_id;
    let (_, conversation) = channel_conversation(&app, &app.org, "whatsapp").await;
    let (_, other_conversation) = channel_conversation(&app, &app.org, "whatsapp").await;
    let (_, signed) = sign(&app, conversation, "a.png", "image/png", PNG.len()).await;

    // Not uploaded yet.
    let (status, body) = app
        .post(
            "/conversation-files",
            registration(&signed, conversation, org, "image/png", PNG.len(), "image"),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], "object_exists");

    assert!(put(&app, &signed, PNG, None).await.status().is_success());
    let (status, body) = app
        .post(
            "/conversation-files",
            registration(
                &signed,
                conversation,
                org,
                "image/png",
                PNG.len() + 1,
                "image",
            ),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], "object_size", "{body}");
    assert_eq!(body["data"]["actual"], PNG.len());
    let (status, body) = app
        .post(
            "/conversation-files",
            registration(&signed, conversation, org, "image/jpeg", PNG.len(), "image"),
        )
        .await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], "object_type", "{body}");

    // The key must be under this organization's and this conversation's prefix.
    let (status, body) = app
        .post(
            "/conversation-files",
            registration(
                &signed,
                other_conversation,
                org,
                "image/png",
                PNG.len(),
                "image",
            ),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    assert_eq!(body["data"]["rule"], "file_in_conversation");
    let other = app.new_tenant("Other").await;
    let (_, theirs) = channel_conversation(&app, &other, "whatsapp").await;
    let (status, body) = app
        .call_as(
            &other,
            Method::POST,
            "/conversation-files",
            Some(registration(
                &signed,
                theirs,
                other.org_id,
                "image/png",
                PNG.len(),
                "image",
            )),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    // Nor may the caller name another organization or its conversation.
    let (status, body) = app
        .post(
            "/conversation-files",
            registration(
                &signed,
                conversation,
                other.org_id,
                "image/png",
                PNG.len(),
                "image",
            ),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let (status, body) = sign(&app, theirs, "a.png", "image/png", 10).await;
    assert_error(status, &body, 404, "NotFound");
    let mut escaping = registration(&signed, conversation, org, "image/png", PNG.len(), "image");
    escaping["s3_key"] = json!(format!(
        "org/{org}/conversations/{conversation}/../{other_conversation}/x/a.png"
    ));
    escaping["s3_path"] = Value::Null;
    let (status, _) = app.post("/conversation-files", escaping).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut wrong_bucket =
        registration(&signed, conversation, org, "image/png", PNG.len(), "image");
    wrong_bucket["s3_path"] = json!(format!(
        "s3://elsewhere/{}",
        signed["s3_key"].as_str().unwrap()
    ));
    let (status, _) = app.post("/conversation-files", wrong_bucket).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The limits: the channel's by default (WhatsApp images: jpeg/png, 5 MB).
    let (status, body) = sign(&app, conversation, "big.png", "image/png", 5_000_001).await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], "file_size");
    assert_eq!(body["data"]["limit"], 5_000_000);
    assert_eq!(body["data"]["actual"], 5_000_001);
    let (status, body) = sign(&app, conversation, "a.webp", "image/webp", 10).await;
    assert_error(status, &body, 422, "Unprocessable");
    assert_eq!(body["data"]["rule"], "file_type");
    let (status, body) = app
        .post("/s3-url-signing", json!({"conversation_id": conversation, "file_name": "a.png", "file_type": "image/png", "file_size": 10, "extra": 1}))
        .await;
    assert_error(status, &body, 400, "BadRequest");

    // Right at last.
    let file = app
        .create(
            "/conversation-files",
            registration(&signed, conversation, org, "image/png", PNG.len(), "image"),
        )
        .await;
    assert_eq!(file["_id"], file["id"]);
}

#[actix_web::test]
async fn file_names_are_sanitized_and_unicode_survives_the_round_trip() {
    let fake = FakeS3::start().await;
    let app = app_with(&fake).await;
    let (_, conversation) = channel_conversation(&app, &app.org, "webchat").await;
    let prefix = format!("org/{}/conversations/{conversation}/", app.org.org_id);
    let long = format!("{}.png", "x".repeat(400));
    for (name, expected) in [
        ("../../../etc/passwd.png", Some("_._._etc_passwd.png")),
        ("..\\..\\boot.png", Some("_._boot.png")),
        ("a\u{7}b\u{1b}[31mc\n.png", Some("ab_31mc.png")),
        (".hidden.png", Some("hidden.png")),
        ("東京の写真 фото.png", Some("東京の写真 фото.png")),
        (long.as_str(), None),
    ] {
        let (status, signed) = sign(&app, conversation, name, "image/png", PNG.len()).await;
        assert_eq!(status, StatusCode::CREATED, "{name:?}: {signed}");
        let key = signed["s3_key"].as_str().unwrap();
        let last = key.rsplit('/').next().unwrap();
        assert!(
            key.starts_with(&prefix) && key.split('/').count() == 6,
            "{key}"
        );
        assert!(!key.contains("..") && !last.starts_with('.'), "{key}");
        assert!(!key.chars().any(char::is_control), "{key:?}");
        match expected {
            Some(expected) => assert_eq!(last, expected, "{name:?}"),
            None => {
                assert_eq!(last.chars().count(), 150, "{last}");
                assert!(last.ends_with(".png"));
            }
        }
        assert_eq!(signed["file_name"], last);
        if expected.is_none() {
            // s3s-fs names a metadata file after the whole encoded key, past the
            // filesystem's 255 bytes for a key this long; S3 keys hold 1,024 bytes.
            continue;
        }
        let res = put(&app, &signed, PNG, None).await;
        assert!(
            res.status().is_success(),
            "{name:?}: {}",
            res.text().await.unwrap()
        );
        assert!(fake.has(key), "{key}");
    }
    let file = upload(&app, conversation, "東京.png", "image/png", PNG).await;
    let (status, bytes) = download(&app, file["url"].as_str().unwrap()).await;
    assert_eq!((status, bytes.as_slice()), (StatusCode::OK, PNG));
}

#[actix_web::test]
async fn without_storage_the_file_services_answer_503_and_the_rest_works() {
    let app = spawn_app().await;
    let (_, conversation) = channel_conversation(&app, &app.org, "webchat").await;
    let (status, body) = sign(&app, conversation, "a.png", "image/png", 10).await;
    assert_error(status, &body, 503, "Unavailable");
    assert!(
        body["message"].as_str().unwrap().contains("S3_BUCKET"),
        "{body}"
    );
    for (method, path) in [
        (Method::GET, "/conversation-files".to_string()),
        (Method::GET, "/conversation-files/1".to_string()),
        (Method::DELETE, "/conversation-files/1".to_string()),
    ] {
        let (status, body) = app.call(method, &path, None, Some(&app.org.token)).await;
        assert_error(status, &body, 503, "Unavailable");
    }
    let (status, body) = app
        .post(
            "/conversation-files",
            json!({"conversation_id": conversation}),
        )
        .await;
    assert_error(status, &body, 503, "Unavailable");
    get_ok(&app, "/conversations").await;
    let (status, _) = app
        .post(
            "/conversation-messages-transform-outgoing-webchat",
            json!({"conversation_id": conversation, "message_text": "still works"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[actix_web::test]
async fn the_sweep_removes_old_unregistered_uploads_only() {
    let fake = FakeS3::start().await;
    let app = app_with(&fake).await;
    let (_, conversation) = channel_conversation(&app, &app.org, "webchat").await;
    let registered = upload(&app, conversation, "kept.png", "image/png", PNG).await;
    let mut orphans = Vec::new();
    for name in ["orphan.png", "sent-as-fields.png"] {
        let (_, signed) = sign(&app, conversation, name, "image/png", PNG.len()).await;
        assert!(put(&app, &signed, PNG, None).await.status().is_success());
        orphans.push(signed);
    }
    // A message names the second by its media fields, without a file record.
    let (status, body) = app
        .post(
            "/conversation-messages-transform-outgoing-webchat",
            json!({"conversation_id": conversation, "message_type": "image", "s3_key": orphans[1]["s3_key"],
                   "file_type": "image/png", "file_size": PNG.len()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let mut settings = settings(&app.database_url);
    fake.configure(&mut settings);
    let storage = inbox_gateway::storage::Storage::from_settings(&settings)
        .unwrap()
        .unwrap();
    let young = inbox_gateway::storage::orphans::sweep(&app.db, &storage)
        .await
        .unwrap();
    assert!(young.removed.is_empty(), "nothing is a day old: {young:?}");
    settings.s3_orphan_age_secs = 0;
    let storage = inbox_gateway::storage::Storage::from_settings(&settings)
        .unwrap()
        .unwrap();
    let swept = inbox_gateway::storage::orphans::sweep(&app.db, &storage)
        .await
        .unwrap();
    assert_eq!(swept.listed, 3);
    let orphan = orphans[0]["s3_key"].as_str().unwrap();
    assert_eq!(swept.removed, vec![orphan.to_string()]);
    assert!(!fake.has(orphan));
    assert!(fake.has(orphans[1]["s3_key"].as_str().unwrap()));
    assert!(fake.has(registered["s3_key"].as_str().unwrap()));
}

#[actix_web::test]
async fn an_sms_with_a_file_reaches_agentphone_with_a_working_download_url() {
    let fake = FakeS3::start().await;
    let agentphone = FakeAgentPhone::start().await;
    let app = app_with(&fake).await;
    let (status, body) = app
        .post(
            "/channel-accounts",
            json!({
                "channel": "sms", "provider": "agentphone", "name": "Main line",
                "settings": {"agent_id": "agt_1", "numbers": [{"id": "num_1", "phone_number": "+15550001111"}], "base_url": agentphone.base_url},
                "secrets": {"api_key": FAKE_API_KEY, "webhook_secret": "whsec_x"},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let contact = create_contact_as(
        &app,
        &app.org,
        json!({"first_name": "Grace", "phone": "+15557654321"}),
    )
    .await;
    let conversation = create_conversation(&app, app.org.org_id, contact, "sms", "open").await;
    let other = create_conversation(&app, app.org.org_id, contact, "sms", "open").await;
    let file = upload(&app, conversation, "photo.png", "image/png", PNG).await;
    let id = file["id"].as_i64().unwrap();

    // A file of another conversation is not this one's to send.
    let (status, body) = app
        .post(
            "/conversation-messages-sms",
            json!({"conversation_id": other, "message_type": "image", "conversation_file_id": id}),
        )
        .await;
    assert_error(status, &body, 403, "Forbidden");
    let (status, body) = app
        .post("/conversation-messages-sms", json!({"conversation_id": conversation, "message_type": "image", "conversation_file_id": id + 1000}))
        .await;
    assert_error(status, &body, 403, "Forbidden");

    let (status, message) = app
        .post(
            "/conversation-messages-sms",
            json!({"conversation_id": conversation, "message_type": "image", "message_text": "the photo", "conversation_file_id": id.to_string()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["media"]["conversation_file_id"], id);
    assert_eq!(message["media"]["s3_key"], file["s3_key"]);
    // Stored: the file's reference, not a URL that would expire.
    let stored = message["payload"]["media_urls"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(stored, file["s3_path"].as_str().unwrap());

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while agentphone.sent().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = agentphone.sent();
    let url = sent[0]["media_urls"][0].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&fake.endpoint) && url.contains("X-Amz-Signature="),
        "{url}"
    );
    assert_eq!(sent[0]["body"], "the photo");
    let (status, bytes) = download(&app, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, PNG, "AgentPhone fetches the uploaded bytes");
}
