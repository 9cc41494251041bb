//! Under faults and load: held locks, a saturated or broken pool, too many requests,
//! slow bodies, a second process on one SQLite file, concurrent patches and a
//! shutdown under load. Every refusal is a 503 with `Retry-After` (408 for a slow
//! body), never a 500. The figures are printed (`--nocapture`).

use crate::helpers::*;
use inbox_gateway::app::Application;
use reqwest::{Method, StatusCode};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn is_postgres(app: &TestApp) -> bool {
    app.database_url.starts_with("postgres")
}

/// A contact and an open playground conversation with it; answers the conversation id.
async fn conversation(app: &TestApp) -> i64 {
    let contact = create_contact(app, json!({"first_name": "Lock"})).await;
    let contact = contact["id"].as_i64().expect("contact id");
    create_conversation(app, app.org.org_id, contact, "playground", "open").await
}

/// Another client holding a write lock: on PostgreSQL the conversation's row
/// (`FOR UPDATE`), on SQLite the file's write lock (`BEGIN IMMEDIATE`).
async fn hold_lock(url: &str, conversation: i64) -> (DatabaseConnection, DatabaseTransaction) {
    let db = inbox_gateway::db::connect(url, 1).await.expect("connect");
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
        .expect("begin");
    if url.starts_with("postgres") {
        txn.execute_unprepared(&format!(
            "SELECT id FROM conversations WHERE id = {conversation} FOR UPDATE"
        ))
        .await
        .expect("lock the row");
    }
    (db, txn)
}

/// One request's outcome: status, `Retry-After`, body, and how long it took.
#[derive(Debug)]
struct Outcome {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
    elapsed: Duration,
}

async fn timed(req: reqwest::RequestBuilder) -> Outcome {
    let started = Instant::now();
    let res = req.send().await.expect("request sent");
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = res.text().await.expect("body");
    Outcome {
        status,
        retry_after,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        elapsed: started.elapsed(),
    }
}

/// Starts `req` now, in the background.
fn start(req: reqwest::RequestBuilder) -> tokio::task::JoinHandle<Outcome> {
    tokio::spawn(timed(req))
}

fn patch_status(app: &TestApp, conversation: i64, status: &str) -> reqwest::RequestBuilder {
    app.request(Method::PATCH, &format!("/conversations/{conversation}"))
        .json(&json!({ "status": status }))
}

fn assert_unavailable(outcome: &Outcome) {
    assert_error(outcome.status, &outcome.body, 503, "Unavailable");
    assert_eq!(outcome.retry_after.as_deref(), Some("1"), "{outcome:?}");
}

fn millis(d: Duration) -> u128 {
    d.as_millis()
}

#[actix_web::test]
async fn a_held_lock_answers_503_after_the_lock_timeout_and_unrelated_reads_stay_fast() {
    let app = spawn_app_with(|s| {
        s.lock_timeout_ms = 500;
        s.sqlite_busy_timeout_ms = 500;
        s.max_connections = 2;
    })
    .await;
    let locked = conversation(&app).await;
    let other = conversation(&app).await;
    let (_holder, lock) = hold_lock(&app.database_url, locked).await;

    // Pool size + 2 writers on the locked row, and reads of another row meanwhile.
    let patches: Vec<_> = (0..4)
        .map(|_| start(patch_status(&app, locked, "closed")))
        .collect();
    let mut reads = Vec::new();
    for _ in 0..20 {
        reads.push(start(
            app.request(Method::GET, &format!("/conversations/{other}")),
        ));
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let mut patch_times = Vec::new();
    for patch in patches {
        let outcome = patch.await.unwrap();
        assert_unavailable(&outcome);
        assert!(
            outcome.body["message"]
                .as_str()
                .is_some_and(|m| m.contains("took too long") || m.contains("busy")),
            "{outcome:?}"
        );
        patch_times.push(millis(outcome.elapsed));
    }
    let mut read_times = Vec::new();
    for read in reads {
        let outcome = read.await.unwrap();
        assert_ne!(
            outcome.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{outcome:?}"
        );
        if is_postgres(&app) {
            // The waiting writers give their connections back after 500 ms: reads never starve.
            assert_eq!(outcome.status, StatusCode::OK, "{outcome:?}");
        }
        read_times.push(millis(outcome.elapsed));
    }
    eprintln!(
        "lock held; lock timeout 500 ms, pool 2: PATCHes on the locked row answered 503 after {patch_times:?} ms; \
         20 unrelated reads took max {} ms",
        read_times.iter().max().unwrap()
    );
    lock.rollback().await.unwrap();
    let outcome = timed(patch_status(&app, locked, "closed")).await;
    assert_eq!(outcome.status, StatusCode::OK, "{outcome:?}");
}

#[actix_web::test]
async fn a_statement_over_the_statement_timeout_answers_503() {
    let app = spawn_app_with(|s| {
        s.lock_timeout_ms = 0;
        s.statement_timeout_ms = 400;
    })
    .await;
    if !is_postgres(&app) {
        return; // PostgreSQL only (SQLite has no statement timeout).
    }
    let locked = conversation(&app).await;
    let (_holder, lock) = hold_lock(&app.database_url, locked).await;
    let outcome = timed(patch_status(&app, locked, "closed")).await;
    assert_unavailable(&outcome);
    assert!(
        outcome.body["message"]
            .as_str()
            .unwrap()
            .contains("took too long"),
        "{outcome:?}"
    );
    assert!(outcome.elapsed < Duration::from_secs(2), "{outcome:?}");
    eprintln!(
        "statement_timeout 400 ms: 503 after {} ms",
        millis(outcome.elapsed)
    );
    lock.rollback().await.unwrap();
}

#[actix_web::test]
async fn a_saturated_pool_answers_503_within_the_acquire_timeout_and_readyz_within_its_own() {
    let app = spawn_app_with(|s| {
        s.max_connections = 1;
        s.lock_timeout_ms = 0;
        s.statement_timeout_ms = 0;
        s.sqlite_busy_timeout_ms = 10_000;
        s.db_acquire_timeout_ms = 700;
        s.readyz_timeout_ms = 300;
    })
    .await;
    let locked = conversation(&app).await;
    let other = conversation(&app).await;
    let (_holder, lock) = hold_lock(&app.database_url, locked).await;
    // This write waits on the lock, holding the pool's only connection.
    let waiting = start(patch_status(&app, locked, "closed"));
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;

    let ready = timed(app.client.get(app.url("/readyz"))).await;
    assert_unavailable(&ready);
    assert!(ready.elapsed < Duration::from_millis(1000), "{ready:?}");
    let read = timed(app.request(Method::GET, &format!("/conversations/{other}"))).await;
    assert_unavailable(&read);
    assert!(read.elapsed < Duration::from_millis(2000), "{read:?}");
    let health = timed(app.client.get(app.url("/healthz"))).await;
    assert_eq!(health.status, StatusCode::OK);
    eprintln!(
        "pool of 1 held: /readyz 503 after {} ms (timeout 300), a read 503 after {} ms (acquire timeout 700)",
        millis(ready.elapsed),
        millis(read.elapsed)
    );

    lock.rollback().await.unwrap();
    let waited = waiting.await.unwrap();
    assert_eq!(waited.status, StatusCode::OK, "{waited:?}");
    let ready = timed(app.client.get(app.url("/readyz"))).await;
    assert_eq!(ready.status, StatusCode::OK, "{ready:?}");
}

#[actix_web::test]
async fn connections_broken_by_the_database_answer_503_not_500() {
    let app = spawn_app().await;
    if !is_postgres(&app) {
        return; // Needs a server that can end the app's connections.
    }
    let other = conversation(&app).await;
    let _ = get_ok(&app, &format!("/conversations/{other}")).await;
    let name = app.database_url.rsplit_once('/').unwrap().1.to_string();
    let admin = inbox_gateway::db::connect(&std::env::var("TEST_DATABASE_URL").unwrap(), 1)
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        // What a database restart or failover does to the pooled connections.
        admin
            .execute_unprepared(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ))
            .await
            .unwrap();
        for _ in 0..4 {
            let read = timed(app.request(Method::GET, &format!("/conversations/{other}"))).await;
            if read.status != StatusCode::OK {
                assert_unavailable(&read);
            }
            statuses.push(read.status.as_u16());
        }
    }
    eprintln!("reads after their connections were terminated: {statuses:?}");
    assert_eq!(statuses.last(), Some(&200), "the pool recovers");
}

#[actix_web::test]
async fn requests_beyond_max_in_flight_are_shed_at_once_and_probes_are_exempt() {
    let app = spawn_app_with(|s| {
        s.max_in_flight = 2;
        s.lock_timeout_ms = 5000;
        s.sqlite_busy_timeout_ms = 5000;
        s.db_acquire_timeout_ms = 5000;
    })
    .await;
    let locked = conversation(&app).await;
    let other = conversation(&app).await;
    let (_holder, lock) = hold_lock(&app.database_url, locked).await;
    let slow: Vec<_> = (0..2)
        .map(|_| start(patch_status(&app, locked, "closed")))
        .collect();
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;

    let shed = timed(app.request(Method::GET, &format!("/conversations/{other}"))).await;
    assert_unavailable(&shed);
    assert!(shed.elapsed < Duration::from_millis(200), "{shed:?}");
    let health = timed(app.client.get(app.url("/healthz"))).await;
    assert_eq!(health.status, StatusCode::OK);
    eprintln!(
        "max_in_flight 2, 2 in flight: the third request shed in {} ms",
        millis(shed.elapsed)
    );

    lock.rollback().await.unwrap();
    for request in slow {
        let outcome = request.await.unwrap();
        assert_eq!(outcome.status, StatusCode::OK, "{outcome:?}");
    }
    let _ = get_ok(&app, &format!("/conversations/{other}")).await;
}

#[actix_web::test]
async fn a_body_trickled_in_times_out_with_408() {
    let app = spawn_app_with(|s| s.body_timeout_ms = 1000).await;
    let port: u16 = app.base.rsplit_once(':').unwrap().1.parse().unwrap();
    // Unauthenticated, as the review's attack: the head at once, then one byte per 200 ms.
    let (elapsed, response) = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let started = Instant::now();
        stream
            .write_all(
                b"POST /authentication HTTP/1.1\r\nHost: localhost\r\n\
                  Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
            )
            .unwrap();
        let mut response = Vec::new();
        let mut buf = [0u8; 4096];
        while started.elapsed() < Duration::from_secs(5) {
            match stream.read(&mut buf) {
                Ok(0) => break, // closed by the server
                Ok(n) => response.extend_from_slice(&buf[..n]),
                Err(_) => {
                    // Nothing yet: trickle one more byte (the server may have closed).
                    if stream.write_all(b" ").is_err() {
                        break;
                    }
                }
            }
        }
        (
            started.elapsed(),
            String::from_utf8_lossy(&response).into_owned(),
        )
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 408"), "{response:?}");
    assert!(response.contains("\"name\":\"Timeout\""), "{response}");
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    eprintln!(
        "body at 5 bytes/s, body timeout 1 s: 408 and closed after {} ms",
        millis(elapsed)
    );
}

#[actix_web::test]
async fn two_instances_writing_to_one_database_get_no_500() {
    let app = spawn_app_with(|s| s.rate_limit_requests = 0).await;
    let mut second = settings(&app.database_url);
    second.rate_limit_requests = 0;
    // Instances of one deployment share the secret, so each accepts the other's tokens.
    second.jwt_secret = Some(app.jwt_secret.clone());
    let second = Application::build(&second).await.expect("second instance");
    let second_base = format!("http://127.0.0.1:{}", second.port());
    actix_web::rt::spawn(second.run_until_stopped());
    let conversations = [conversation(&app).await, conversation(&app).await];

    let deadline = Instant::now() + Duration::from_secs(3);
    let mut writers = Vec::new();
    for w in 0..12 {
        let base = if w % 2 == 0 {
            app.base.clone()
        } else {
            second_base.clone()
        };
        let (client, token, id) = (
            app.client.clone(),
            app.org.token.clone(),
            conversations[w % 2],
        );
        writers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline {
                i += 1;
                let req = if i % 2 == 0 {
                    client
                        .patch(format!("{base}/conversations/{id}"))
                        .json(&json!({"status": if i % 4 == 0 { "open" } else { "closed" }}))
                } else {
                    client
                        .post(format!("{base}/contacts"))
                        .json(&json!({"first_name": format!("w{w}-{i}")}))
                };
                let res = req.bearer_auth(&token).send().await.expect("sent");
                let status = res.status().as_u16();
                if status == 500 {
                    panic!("500: {}", res.text().await.unwrap_or_default());
                }
                statuses.push(status);
            }
            statuses
        }));
    }
    let mut all = Vec::new();
    for writer in writers {
        all.extend(writer.await.expect("no 500"));
    }
    let ok = all.iter().filter(|s| (200..300).contains(*s)).count();
    let unavailable = all.iter().filter(|s| **s == 503).count();
    assert_eq!(ok + unavailable, all.len(), "only 2xx and 503: {all:?}");
    assert!(ok > 0);
    eprintln!(
        "two instances, 12 writers, 3 s: {} writes, {ok} × 2xx, {unavailable} × 503, 0 × 500",
        all.len()
    );
}

#[actix_web::test]
async fn the_last_committed_patch_carries_the_latest_updated_at() {
    let app = spawn_app_with(|s| s.rate_limit_requests = 0).await;
    let id = conversation(&app).await;
    let earlier = conversation(&app).await;
    let patches: Vec<_> = (0..30)
        .map(|i| {
            start(patch_status(
                &app,
                id,
                if i % 2 == 0 { "closed" } else { "open" },
            ))
        })
        .collect();
    let mut answered = Vec::new();
    for patch in patches {
        let outcome = patch.await.unwrap();
        if outcome.status == StatusCode::OK {
            answered.push(outcome.body["updated_at"].as_str().unwrap().to_owned());
        } else {
            assert_unavailable(&outcome);
        }
    }
    assert!(answered.len() >= 20, "{answered:?}");
    let format = |t: &str| {
        t.len() == 24 && t.ends_with('Z') && t.as_bytes()[10] == b'T' && t.as_bytes()[19] == b'.'
    };
    assert!(answered.iter().all(|t| format(t)), "{answered:?}");
    let stored = conversation_record(&app, id).await;
    let stored = stored["updated_at"].as_str().unwrap();
    let latest = answered.iter().max().unwrap();
    // The API's timestamps (`…T10:00:00.123Z`) sort as text in time order.
    assert!(
        stored >= latest.as_str(),
        "stored {stored}, answered {latest}"
    );
    // Sorting and filtering by the database-stamped time still work.
    let page = get_ok(&app, "/conversations?$sort[updated_at]=-1&$limit=2").await;
    assert_eq!(ids(&page), vec![id, earlier]);
    let page = get_ok(
        &app,
        &format!("/conversations?updated_at[$gte]={stored}&$limit=5"),
    )
    .await;
    assert_eq!(ids(&page), vec![id]);
    eprintln!(
        "30 concurrent PATCHes: {} answered, stored updated_at {stored} >= latest answered {latest}",
        answered.len()
    );
}

#[actix_web::test]
async fn sigterm_under_load_lets_in_flight_requests_finish_then_exits() {
    let app = spawn_app().await;
    let locked = conversation(&app).await;
    let other = conversation(&app).await;
    let (mut child, base) = start_binary(
        &app.database_url,
        &[
            // Many workers, so that most are idle at SIGTERM and exit at once.
            ("APP__WORKERS_PER_CORE", "4"),
            ("APP__MAX_CONNECTIONS", "8"),
            ("APP__RATE_LIMIT_REQUESTS", "0"),
            ("APP__LOCK_TIMEOUT_MS", "0"),
            ("APP__STATEMENT_TIMEOUT_MS", "0"),
            ("APP__SQLITE_BUSY_TIMEOUT_MS", "10000"),
            ("APP__DB_ACQUIRE_TIMEOUT_MS", "10000"),
            // The test app's secret, so the binary accepts its tokens.
            ("JWT_SECRET", app.jwt_secret.as_str()),
        ],
    );
    let client = reqwest::Client::new();
    let token = app.org.token.clone();
    // Warm up: concurrent reads on fresh connections spread over the workers, which
    // open the pool's connections.
    let mut warm = Vec::new();
    for _ in 0..48 {
        let req = reqwest::Client::new()
            .get(format!("{base}/conversations/{other}"))
            .bearer_auth(&token);
        warm.push(start(req));
    }
    for w in warm {
        assert_eq!(w.await.unwrap().status, StatusCode::OK);
    }

    let (_holder, lock) = hold_lock(&app.database_url, locked).await;
    // Slow requests: writes waiting on the lock, each on its own connection.
    let slow: Vec<_> = (0..6)
        .map(|i| {
            start(
                reqwest::Client::new()
                    .patch(format!("{base}/conversations/{locked}"))
                    .bearer_auth(&token)
                    .json(&json!({"status": if i % 2 == 0 { "closed" } else { "open" }})),
            )
        })
        .collect();
    // Fast requests in a loop until the server stops answering.
    let mut fast = Vec::new();
    for _ in 0..8 {
        let (client, url, token) = (
            client.clone(),
            format!("{base}/conversations/{other}"),
            token.clone(),
        );
        fast.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(6) {
                match client.get(&url).bearer_auth(&token).send().await {
                    Ok(res) => statuses.push(res.status().as_u16()),
                    // Refused or closed after SIGTERM: the server no longer takes requests.
                    Err(_) => break,
                }
            }
            statuses
        }));
    }
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let stopped_at = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Idle workers exit within about a second; the slow requests go on for longer.
    actix_web::rt::time::sleep(Duration::from_millis(2000)).await;
    lock.rollback().await.unwrap();

    for request in slow {
        let outcome = request.await.unwrap();
        assert_eq!(outcome.status, StatusCode::OK, "{outcome:?}");
        assert!(outcome.body["status"].is_string(), "{outcome:?}");
    }
    let slow_done = stopped_at.elapsed();
    let mut answered = 0;
    for f in fast {
        let statuses = f.await.unwrap();
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        answered += statuses.len();
    }
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped_at.elapsed() < Duration::from_secs(15),
            "the server did not exit"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    eprintln!(
        "SIGTERM with 6 writes waiting on a lock released 2 s later: all 6 answered 200 by {} ms, \
         {answered} fast reads all 200, exited {} ms after SIGTERM",
        millis(slow_done),
        millis(stopped_at.elapsed())
    );
}
