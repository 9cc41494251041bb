//! AgentPhone delivery throughput: a fake AgentPhone in this process (`POST
//! /v1/messages` answers a 200 `SentMessage` after a fixed latency and counts what it
//! got), one channel account pointing at it (`settings.base_url`), K SMS
//! conversations made by signed inbound webhooks (as AgentPhone would make them),
//! then M outbound messages enqueued with `POST /conversation-messages-sms`. The fake
//! holds every send until the last message is enqueued, so what is measured is the
//! workers draining a backlog of M: from the fake's opening until every send job is
//! done (the script then checks every message is `sent`). The database is analyzed
//! before the enqueue and before the drain. Reports sends/s, what the fake saw (each message sent exactly once, the
//! most sends in flight at once) and the server's and PostgreSQL's CPU per send.
//! Run by `scripts/bench_delivery.sh`.
//!
//!   bench_delivery <base-url> <access-token> <server-pid> <database> <account-concurrency>
//!                  [messages=2000] [conversations=100] [latency-ms=50]

mod bench_common;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bench_common::Cpu;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const API_KEY: &str = "sk_bench";
const WEBHOOK_SECRET: &str = "whsec_bench";
const OUR_NUMBER: &str = "+15550001111";
/// Concurrent `POST /conversation-messages-sms` while enqueueing.
const POSTERS: usize = 8;

/// `ANALYZE` on the bench database (this machine's PostgreSQL runs without autovacuum),
/// unless `BENCH_ANALYZE=0`.
fn analyze(database: &str) {
    if std::env::var("BENCH_ANALYZE").is_ok_and(|v| v == "0") {
        return;
    }
    let status = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            database,
            "-qc",
            "ANALYZE",
        ])
        .status()
        .expect("psql runs");
    assert!(status.success(), "ANALYZE failed");
}

/// The fake AgentPhone's state.
struct Fake {
    latency: Duration,
    /// Sends wait until this is true.
    open: tokio::sync::watch::Receiver<bool>,
    sends: AtomicUsize,
    answered: AtomicUsize,
    other_requests: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    texts: Mutex<HashSet<String>>,
}

/// AgentPhone's conversation id of the thread with `phone` (the same in webhooks and sends).
fn thread_id(phone: &str) -> String {
    format!("conv_{}", phone.trim_start_matches('+'))
}

async fn send(req: HttpRequest, body: web::Json<Value>, fake: web::Data<Fake>) -> HttpResponse {
    let n = fake.sends.fetch_add(1, Ordering::Relaxed) + 1;
    let now = fake.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
    fake.max_in_flight.fetch_max(now, Ordering::AcqRel);
    let mut open = fake.open.clone();
    let _ = open.wait_for(|open| *open).await;
    actix_web::rt::time::sleep(fake.latency).await;
    fake.in_flight.fetch_sub(1, Ordering::AcqRel);
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {API_KEY}")) {
        return HttpResponse::Unauthorized().json(json!({"detail": "Invalid API key"}));
    }
    let text = body["body"].as_str().unwrap_or_default().to_owned();
    let to = body["to_number"].as_str().unwrap_or_default().to_owned();
    fake.texts.lock().unwrap().insert(text);
    fake.answered.fetch_add(1, Ordering::Relaxed);
    HttpResponse::Ok().json(json!({
        "id": format!("sent_{n}"), "status": "sent", "channel": "sms", "from_number": OUR_NUMBER,
        "to_number": to, "conversation_id": thread_id(&to), "media_urls": [],
    }))
}

async fn other(fake: web::Data<Fake>) -> HttpResponse {
    fake.other_requests.fetch_add(1, Ordering::Relaxed);
    HttpResponse::NotFound().json(json!({"detail": "Not Found"}))
}

/// A REST call that must answer `expected`; answers the JSON.
async fn call(req: reqwest::RequestBuilder, expected: u16) -> Value {
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    assert_eq!(status, expected, "{text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[actix_web::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, token) = (args[1].clone(), args[2].clone());
    let (pid, database): (u32, String) = (args[3].parse().unwrap(), args[4].clone());
    let number = |i: usize, default: usize| args.get(i).map_or(default, |a| a.parse().unwrap());
    let concurrency = number(5, 4);
    let (m, conversations, latency_ms) = (number(6, 2_000), number(7, 100), number(8, 50));

    let (opener, open) = tokio::sync::watch::channel(false);
    let fake = web::Data::new(Fake {
        latency: Duration::from_millis(latency_ms as u64),
        open,
        sends: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
        other_requests: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
        texts: Mutex::new(HashSet::new()),
    });
    let data = fake.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/v1/messages", web::post().to(send))
            .default_service(web::to(other))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("bind the fake AgentPhone");
    let fake_url = format!("http://127.0.0.1:{}", server.addrs()[0].port());
    actix_web::rt::spawn(server.run());

    let http = reqwest::Client::new();
    let account = call(
        http.post(format!("{base}/channel-accounts")).bearer_auth(&token).json(&json!({
            "channel": "sms", "provider": "agentphone", "name": "bench",
            "settings": {"agent_id": "agt_1", "numbers": [{"id": "num_1", "phone_number": OUR_NUMBER}],
                         "base_url": fake_url},
            "secrets": {"api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET},
        })),
        201,
    )
    .await["id"]
        .as_i64()
        .expect("the account's id");

    // One inbound message per conversation makes its contact and conversation.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for k in 0..conversations {
        let from = format!("+1555300{k:04}");
        let body = serde_json::to_vec(&json!({
            "event": "agent.message", "channel": "sms", "timestamp": now,
            "data": {"messageId": format!("in_{k}"), "conversationId": thread_id(&from), "numberId": "num_1",
                     "from": from, "to": OUR_NUMBER, "message": "hi", "direction": "inbound", "receivedAt": now},
        }))
        .unwrap();
        let ts = chrono::Utc::now().timestamp().to_string();
        let req = http
            .post(format!("{base}/webhooks/agentphone/{account}"))
            .header(
                "X-Webhook-Signature",
                inbox_gateway::agentphone::signature::sign(WEBHOOK_SECRET, &ts, &body),
            )
            .header("X-Webhook-Timestamp", ts)
            .header("X-Webhook-ID", format!("del_in_{k}"))
            .header("Content-Type", "application/json")
            .body(body);
        call(req, 200).await;
    }
    let mut threads = Vec::new();
    while threads.len() < conversations {
        let page = call(
            http.get(format!(
                "{base}/conversations?channel=sms&$limit=50&$skip={}&$sort[id]=1&$select[]=id",
                threads.len()
            ))
            .bearer_auth(&token),
            200,
        )
        .await;
        let ids: Vec<i64> = (page["data"].as_array().expect("a page").iter())
            .filter_map(|c| c["id"].as_i64())
            .collect();
        assert!(!ids.is_empty(), "only {} conversations", threads.len());
        threads.extend(ids);
    }

    analyze(&database);

    // Enqueue: the fake holds the sends meanwhile.
    let threads = Arc::new(threads);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut posters = Vec::new();
    for _ in 0..POSTERS {
        let (http, base, token, threads, next) = (
            http.clone(),
            base.clone(),
            token.clone(),
            threads.clone(),
            next.clone(),
        );
        posters.push(actix_web::rt::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= m {
                    break;
                }
                let body = json!({"conversation_id": threads[i % threads.len()], "message_text": format!("bench {i}")});
                let req = http.post(format!("{base}/conversation-messages-sms")).bearer_auth(&token);
                call(req.json(&body), 201).await;
            }
        }));
    }
    for poster in posters {
        poster.await.unwrap();
    }
    let enqueued = start.elapsed().as_secs_f64();
    let held = fake.sends.load(Ordering::Relaxed);
    analyze(&database);

    // Drain: open the fake and wait until every message is sent.
    let jobs_done = || {
        let req = http
            .get(format!(
                "{base}/jobs?kind=agentphone.send&status=done&$limit=0"
            ))
            .bearer_auth(&token);
        async move { call(req, 200).await["total"].as_u64().unwrap_or(0) as usize }
    };
    let cpu = Cpu::now(pid, &database);
    let start = Instant::now();
    opener.send(true).unwrap();
    // The fake's own count first (polling the server would cost it CPU), then the send jobs.
    let (mut last, mut progressed) = (0, Instant::now());
    loop {
        let answered = fake.answered.load(Ordering::Relaxed);
        if answered >= m && jobs_done().await >= m {
            break;
        }
        if answered > last {
            (last, progressed) = (answered, Instant::now());
        } else if progressed.elapsed() > Duration::from_secs(60) {
            eprintln!("no progress for 60 s: {answered} of {m} sends answered");
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu_after = Cpu::now(pid, &database);
    let (sends, texts) = (
        fake.sends.load(Ordering::Relaxed),
        fake.texts.lock().unwrap().len(),
    );
    let other_requests = fake.other_requests.load(Ordering::Relaxed);

    println!(
        "{m} messages over {conversations} conversations, account concurrency {concurrency}, fake latency {latency_ms} ms"
    );
    println!(
        "enqueue: {enqueued:.2} s, {:.0} messages/s ({POSTERS} concurrent POSTs); {held} sends held at the fake meanwhile",
        m as f64 / enqueued
    );
    println!("drain: {wall:.2} s, {:.1} sends/s", m as f64 / wall);
    let ideal = m as f64 * latency_ms as f64 / 1000.0 / concurrency as f64;
    let slot_ms = wall * 1000.0 * concurrency as f64 / m as f64;
    println!(
        "  at {concurrency} in flight the fake's latency alone takes {ideal:.2} s: each send holds its slot \
         {slot_ms:.1} ms, {:.1} ms more than the fake's {latency_ms} ms",
        slot_ms - latency_ms as f64
    );
    println!(
        "fake: {sends} POST /v1/messages, {texts} distinct texts, {other_requests} other requests, \
         at most {} in flight",
        fake.max_in_flight.load(Ordering::Relaxed)
    );
    println!("{}", cpu.per(cpu_after, m, "send"));
    if sends != m || texts != m || other_requests != 0 {
        std::process::exit(1);
    }
}
