//! Automation runs end to end: starts a webhook receiver on 127.0.0.1:0, creates
//! an automation `[webhook → receiver, update_status closed]`, triggers N
//! executions (`POST /automations-executions`, 32 in flight) spread over the
//! conversations `lo..=hi`, and waits until every one is over. Reports triggers per
//! second, runs per second from the first trigger to the last run finished, and
//! checks that each run succeeded with one signed webhook call. Run by
//! `scripts/bench_automations.sh`.
//!
//!   bench_automations <base-url> <access-token> <lo> <hi> [runs=1000]

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    calls: web::Data<Arc<AtomicUsize>>,
) -> HttpResponse {
    let signed = req.headers().get("x-webhook-signature").is_some()
        && req.headers().get("x-webhook-timestamp").is_some()
        && req.headers().get("x-webhook-id").is_some()
        && serde_json::from_slice::<Value>(&body).is_ok();
    if !signed {
        return HttpResponse::BadRequest().finish();
    }
    calls.fetch_add(1, Ordering::Relaxed);
    HttpResponse::Ok().json(json!({ "ok": true }))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, token) = (args[1].clone(), args[2].clone());
    let lo: i64 = args[3].parse().unwrap();
    let hi: i64 = args[4].parse().unwrap();
    let runs: usize = args.get(5).map_or(1000, |a| a.parse().unwrap());

    let calls = Arc::new(AtomicUsize::new(0));
    let data = web::Data::new(calls.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(receive))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("bind the receiver");
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());

    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let automation: Value = post(
        "/automations",
        json!({"name": "bench", "steps": [
            {"type": "webhook", "url": format!("http://127.0.0.1:{port}/hook")},
            {"type": "update_status", "status": "closed"},
        ]}),
    )
    .await
    .expect("create the automation")
    .json()
    .await
    .unwrap();
    let automation = automation["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{automation}"));

    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..32 {
        let (http, base, token, next) = (http.clone(), base.clone(), token.clone(), next.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= runs {
                    return;
                }
                let conversation = lo + (i as i64 % (hi - lo + 1));
                let res = http
                    .post(format!("{base}/automations-executions"))
                    .bearer_auth(&token)
                    .json(&json!({"automation_id": automation, "conversation_id": conversation}))
                    .send()
                    .await
                    .expect("trigger");
                assert_eq!(
                    res.status().as_u16(),
                    201,
                    "{}",
                    res.text().await.unwrap_or_default()
                );
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let triggered = start.elapsed();
    eprintln!(
        "{runs} runs triggered in {triggered:.2?} ({:.0}/s)",
        runs as f64 / triggered.as_secs_f64()
    );

    let count = |status: &'static str| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            let page: Value = http
                .get(format!("{base}/automations-executions?automation_id={automation}&status={status}&$limit=0"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("count")
                .json()
                .await
                .unwrap();
            page["total"].as_u64().unwrap_or_else(|| panic!("{page}")) as usize
        }
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    let (succeeded, failed) = loop {
        let (succeeded, failed) = (count("succeeded").await, count("failed").await);
        if succeeded + failed >= runs {
            break (succeeded, failed);
        }
        assert!(
            Instant::now() < deadline,
            "runs never finished: {succeeded} succeeded, {failed} failed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = start.elapsed();
    println!(
        "{runs} automation runs (webhook + update_status) in {elapsed:.2?}: {:.0} runs/s end to end; \
         {succeeded} succeeded, {failed} failed, {} webhook calls received",
        runs as f64 / elapsed.as_secs_f64(),
        calls.load(Ordering::Relaxed)
    );
    assert_eq!((succeeded, failed), (runs, 0));
}
