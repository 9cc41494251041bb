//! Signed AgentPhone webhook ingest: sends N distinct inbound `agent.message`
//! deliveries, spread over K conversations, to `POST /webhooks/agentphone/{account}`
//! from S concurrent senders on kept-alive connections, and delivers 20% of them a
//! second time (same `X-Webhook-ID` and body, signed again): half right after the
//! original, so usually while it is still in flight, half about a thousand deliveries
//! later. Reports distinct messages stored per second of wall time, deliveries per
//! second, latency, every answer that was not a 200, and the server's and
//! PostgreSQL's CPU per message. Run by `scripts/bench_webhooks.sh`.
//!
//!   bench_webhooks <base-url> <account-id> <webhook-secret> <server-pid> <database>
//!                  [messages=20000] [conversations=2000] [senders=16]

mod bench_common;

use bench_common::{Cpu, percentiles};
use inbox_gateway::agentphone::signature::sign;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Redeliveries held back are sent after this many later messages (~1,000 deliveries).
const LATER_AFTER: usize = 100;

#[derive(Default)]
struct Tally {
    stored: usize,
    duplicate: usize,
    other: Vec<String>,
    latencies_ms: Vec<f64>,
    /// Immediate redeliveries sent before the original had its answer.
    while_in_flight: usize,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, account, secret) = (args[1].clone(), args[2].clone(), args[3].clone());
    let (pid, database): (u32, String) = (args[4].parse().unwrap(), args[5].clone());
    let number = |i: usize, default: usize| args.get(i).map_or(default, |a| a.parse().unwrap());
    let (n, conversations, senders) = (number(6, 20_000), number(7, 2_000), number(8, 16));

    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let bodies: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let k = i % conversations;
            serde_json::to_vec(&json!({
                "event": "agent.message", "channel": "sms", "timestamp": now,
                "data": {
                    "messageId": format!("msg_{i}"), "conversationId": format!("conv_{k}"),
                    "numberId": "num_1", "from": format!("+1555200{k:04}"), "to": "+15550001111",
                    "message": format!("hello {i}"), "direction": "inbound", "receivedAt": now,
                },
            }))
            .unwrap()
        })
        .collect();
    // The order of deliveries: (message, whether it is a redelivery sent right after it).
    let mut order: Vec<(usize, bool)> = Vec::with_capacity(n + n / 5);
    let mut later = std::collections::VecDeque::new();
    for i in 0..n {
        order.push((i, false));
        match i % 10 {
            0 => order.push((i, true)),
            5 => later.push_back(i),
            _ => {}
        }
        if later.len() > LATER_AFTER {
            order.push((later.pop_front().unwrap(), false));
        }
    }
    order.extend(later.into_iter().map(|i| (i, false)));
    let deliveries = order.len();

    let http = reqwest::Client::new();
    let url = format!("{base}/webhooks/agentphone/{account}");
    let (bodies, order) = (Arc::new(bodies), Arc::new(order));
    let answered: Arc<Vec<AtomicBool>> = Arc::new((0..n).map(|_| AtomicBool::new(false)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let cpu = Cpu::now(pid, &database);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (http, url, secret) = (http.clone(), url.clone(), secret.clone());
        let (bodies, order, answered, next, tally) = (
            bodies.clone(),
            order.clone(),
            answered.clone(),
            next.clone(),
            tally.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while let Some(&(i, right_after)) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                let in_flight = right_after && !answered[i].load(Ordering::Acquire);
                let ts = chrono::Utc::now().timestamp().to_string();
                let sent = Instant::now();
                let res = http
                    .post(&url)
                    .header("X-Webhook-Signature", sign(&secret, &ts, &bodies[i]))
                    .header("X-Webhook-Timestamp", &ts)
                    .header("X-Webhook-ID", format!("del_msg_{i}"))
                    .header("Content-Type", "application/json")
                    .body(bodies[i].clone())
                    .send()
                    .await;
                let answer = match res {
                    Ok(res) => (res.status().as_u16(), res.text().await.unwrap_or_default()),
                    Err(e) => (0, e.to_string()),
                };
                let ms = sent.elapsed().as_secs_f64() * 1000.0;
                answered[i].store(true, Ordering::Release);
                let status = serde_json::from_str::<Value>(&answer.1).ok();
                let status = status.as_ref().and_then(|v| v["status"].as_str());
                let mut t = tally.lock().unwrap();
                t.latencies_ms.push(ms);
                t.while_in_flight += usize::from(in_flight);
                match (answer.0, status) {
                    (200, Some("stored")) => t.stored += 1,
                    (200, Some("duplicate")) => t.duplicate += 1,
                    _ => t.other.push(format!("{} {}", answer.0, answer.1)),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu_after = Cpu::now(pid, &database);
    let mut t = tally.lock().unwrap();
    println!(
        "{n} messages over {conversations} conversations, {deliveries} deliveries ({} redelivered, \
         {} of them right after the original: {} while it was still in flight), {senders} senders",
        deliveries - n,
        n / 10 + usize::from(n % 10 != 0),
        t.while_in_flight,
    );
    println!(
        "wall {wall:.2} s: {:.0} messages/s stored, {:.0} deliveries/s",
        n as f64 / wall,
        deliveries as f64 / wall
    );
    println!("latency: {}", percentiles(&mut t.latencies_ms));
    println!(
        "answers: {} stored, {} duplicate, {} other (non-200 or unexpected)",
        t.stored,
        t.duplicate,
        t.other.len()
    );
    for other in t.other.iter().take(5) {
        println!("  e.g. {}", other.chars().take(200).collect::<String>());
    }
    println!("{}", cpu.per(cpu_after, n, "message"));
    if t.stored != n || !t.other.is_empty() {
        std::process::exit(1);
    }
}
