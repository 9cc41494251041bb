//! Event stream latency: opens N SSE streams (`GET /events`) of one organization,
//! creates tags at a steady rate through REST, and measures when each stream gets
//! each tag's `created` event, against the write's answer (≈ its commit) and
//! against the moment the write was sent. Run by `scripts/bench_stream.sh`.
//!
//!   bench_stream <base-url> <access-token> [clients=1000] [writes=200] [per-second=20]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, token) = (args[1].clone(), args[2].clone());
    let number = |i: usize, default: usize| args.get(i).map_or(default, |a| a.parse().unwrap());
    let (clients, writes, rate) = (number(3, 1000), number(4, 200), number(5, 20));
    let http = reqwest::Client::new();
    let connected = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut readers = Vec::new();
    for _ in 0..clients {
        let (http, base, token, connected) =
            (http.clone(), base.clone(), token.clone(), connected.clone());
        readers.push(tokio::spawn(async move {
            read(http, &base, &token, connected, writes).await
        }));
        // Not all at once: the listen backlog is finite.
        if readers.len() % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    while connected.load(Ordering::Acquire) < clients {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("{clients} streams open in {:?}", start.elapsed());

    let mut sent = Vec::with_capacity(writes);
    let mut answered = Vec::with_capacity(writes);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..writes {
        tick.tick().await;
        sent.push(Instant::now());
        let res = http
            .post(format!("{base}/tags"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "name": format!("bench-{i}") }))
            .send()
            .await
            .expect("write sent");
        answered.push(Instant::now());
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
    }
    let mut from_answer = Vec::new();
    let mut from_sent = Vec::new();
    let mut delivered = 0;
    for reader in readers {
        for (i, at) in reader.await.unwrap() {
            delivered += 1;
            from_answer.push(ms(at, answered[i]));
            from_sent.push(ms(at, sent[i]));
        }
    }
    let mut write_ms: Vec<f64> = (0..writes).map(|i| ms(answered[i], sent[i])).collect();
    println!(
        "clients {clients}, writes {writes} at {rate}/s, deliveries {delivered} of {}",
        clients * writes
    );
    report("write (REST round trip)", &mut write_ms);
    report(
        "delivery after the write's answer (~commit)",
        &mut from_answer,
    );
    report("delivery after the write was sent", &mut from_sent);
}

fn ms(later: Instant, earlier: Instant) -> f64 {
    if later >= earlier {
        (later - earlier).as_secs_f64() * 1000.0
    } else {
        -((earlier - later).as_secs_f64() * 1000.0)
    }
}

fn report(what: &str, values: &mut [f64]) {
    values.sort_by(f64::total_cmp);
    let at = |p: f64| values[((values.len() as f64 * p) as usize).min(values.len() - 1)];
    println!(
        "{what}: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.9),
        at(0.99),
        values[values.len() - 1]
    );
}

/// One stream: answers (write number, arrival) of each `bench-<i>` created event,
/// until all `writes` came or none came for 10 s.
async fn read(
    http: reqwest::Client,
    base: &str,
    token: &str,
    connected: Arc<AtomicUsize>,
    writes: usize,
) -> Vec<(usize, Instant)> {
    let mut res = http
        .get(format!("{base}/events?paths=tags"))
        .bearer_auth(token)
        .send()
        .await
        .expect("stream opened");
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let mut seen = Vec::with_capacity(writes);
    let mut buffer = String::new();
    let mut counted = false;
    while seen.len() < writes {
        let Ok(chunk) = tokio::time::timeout(Duration::from_secs(10), res.chunk()).await else {
            break;
        };
        let Some(chunk) = chunk.expect("stream read") else {
            break;
        };
        let at = Instant::now();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if !counted {
                connected.fetch_add(1, Ordering::Release);
                counted = true;
            }
            if let Some(rest) = frame.split("\"name\":\"bench-").nth(1) {
                let i: String = rest.chars().take_while(char::is_ascii_digit).collect();
                seen.push((i.parse().unwrap(), at));
            }
        }
    }
    seen
}
