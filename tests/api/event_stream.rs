//! `GET /events` through HTTP: live delivery, resume without loss or duplicates,
//! tenant isolation, `reset` past the retention, `X-Last-Event-Id`, the `paths`
//! filter, stream tokens, the stream cap, two instances on one database, and the
//! sequence trap (a reader of the outbox never skips a seq that commits later).

use crate::helpers::*;
use inbox_gateway::events::{dispatcher, outbox};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// One SSE frame: an event, or a comment-only block (`comment`).
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    id: Option<i64>,
    event: String,
    data: Value,
    comment: Option<String>,
}

/// An open stream, read frame by frame.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

/// How long a frame that should come may take.
const PATIENCE: Duration = Duration::from_secs(10);

impl Sse {
    /// The next frame, comments included; `None` if none comes within `wait`.
    async fn frame(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .expect("the stream reads")
                .expect("the stream stays open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next event (comments skipped), which must come.
    async fn event(&mut self) -> Frame {
        loop {
            let frame = (self.frame(PATIENCE).await).expect("an event within the patience");
            if frame.comment.is_none() {
                return frame;
            }
        }
    }

    /// The next `n` events.
    async fn events(&mut self, n: usize) -> Vec<Frame> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.event().await);
        }
        out
    }

    /// Asserts that no event comes within `wait`.
    async fn quiet(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Some(frame) = self
            .frame(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            assert!(frame.comment.is_some(), "unexpected event: {frame:?}");
        }
    }
}

fn parse(block: &str) -> Frame {
    let mut frame = Frame {
        id: None,
        event: String::new(),
        data: Value::Null,
        comment: None,
    };
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            frame.comment = Some(comment.trim().to_string());
        } else if let Some(id) = line.strip_prefix("id: ") {
            frame.id = Some(id.parse().expect("a numeric id"));
        } else if let Some(event) = line.strip_prefix("event: ") {
            frame.event = event.to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            frame.data = serde_json::from_str(data).expect("JSON data");
        }
    }
    if !frame.event.is_empty() {
        frame.comment = None;
    }
    frame
}

/// Opens `/events{query}` on `base` with `request`'s credentials; asserts a stream.
async fn open(request: reqwest::RequestBuilder) -> Sse {
    let response = request.send().await.expect("sent");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{:?}",
        response.text().await
    );
    let kind = response.headers()["content-type"].to_str().unwrap();
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    let mut sse = Sse {
        response,
        buffer: String::new(),
    };
    let first = sse.frame(PATIENCE).await.expect("the stream opens");
    assert_eq!(first.comment.as_deref(), Some("connected"), "{first:?}");
    sse
}

/// The first organization's stream (Bearer), with `query` (`?...` or empty).
async fn subscribe(app: &TestApp, query: &str) -> Sse {
    open(app.request(Method::GET, &format!("/events{query}"))).await
}

/// A stream of `tenant`'s organization on `base`.
async fn subscribe_at(base: &str, tenant: &Tenant, query: &str) -> Sse {
    let client = reqwest::Client::new();
    open(
        client
            .get(format!("{base}/events{query}"))
            .bearer_auth(&tenant.token),
    )
    .await
}

async fn tag(app: &TestApp, tenant: &Tenant, name: &str) -> i64 {
    let (status, tag) = app
        .call_as(tenant, Method::POST, "/tags", Some(json!({ "name": name })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tag}");
    tag["id"].as_i64().unwrap()
}

/// `(event, name)` of frames, for comparing.
fn named(frames: &[Frame]) -> Vec<(String, String)> {
    frames
        .iter()
        .map(|f| {
            let name = f.data["name"].as_str().or(f.data["first_name"].as_str());
            (f.event.clone(), name.unwrap_or_default().to_string())
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    (expected.iter())
        .map(|(e, n)| (e.to_string(), n.to_string()))
        .collect()
}

#[actix_web::test]
async fn writes_arrive_live_with_their_seq_event_and_record() {
    let app = spawn_app_with(|s| s.event_keep_alive_ms = 300).await;
    let mut stream = subscribe(&app, "").await;
    let id = tag(&app, &app.org, "Live").await;
    let created = stream.event().await;
    assert_eq!(created.event, "tags created");
    assert_eq!(created.data["id"], id);
    assert_eq!(created.data["name"], "Live");
    assert_eq!(created.id, Some(outbox::last_seq(&app.db).await.unwrap()));
    patch_ok(&app, &format!("/tags/{id}"), json!({"name": "Livelier"})).await;
    let (status, _) = app.delete(&format!("/tags/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let [patched, removed] = <[Frame; 2]>::try_from(stream.events(2).await).unwrap();
    assert_eq!(
        (patched.event.as_str(), &patched.data["name"]),
        ("tags patched", &json!("Livelier"))
    );
    assert_eq!(removed.event, "tags removed");
    assert_eq!(removed.data["id"], id);
    assert_eq!(patched.id.unwrap(), created.id.unwrap() + 1);
    assert_eq!(removed.id.unwrap(), created.id.unwrap() + 2);
    // Idle, it keeps the connection alive with a comment.
    let idle = stream.frame(Duration::from_secs(5)).await.expect("a frame");
    assert_eq!(idle.comment.as_deref(), Some("keep-alive"), "{idle:?}");
}

#[actix_web::test]
async fn a_stream_resumes_with_exactly_the_events_missed_in_order() {
    let app = spawn_app().await;
    let mut stream = subscribe(&app, "").await;
    let first = tag(&app, &app.org, "A").await;
    let seen = stream.event().await;
    drop(stream);
    // Committed while disconnected.
    tag(&app, &app.org, "B").await;
    patch_ok(&app, &format!("/tags/{first}"), json!({"name": "A2"})).await;
    create_contact(&app, json!({"first_name": "Cy"})).await;

    let resume = app
        .request(Method::GET, "/events")
        .header("Last-Event-ID", seen.id.unwrap().to_string());
    let mut stream = open(resume).await;
    let missed = stream.events(3).await;
    assert_eq!(
        named(&missed),
        pairs(&[
            ("tags created", "B"),
            ("tags patched", "A2"),
            ("contacts created", "Cy")
        ])
    );
    let ids: Vec<i64> = missed.iter().map(|f| f.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(ids[0] > seen.id.unwrap());
    // Then live, and nothing twice.
    tag(&app, &app.org, "D").await;
    assert_eq!(
        named(&[stream.event().await]),
        pairs(&[("tags created", "D")])
    );
    stream.quiet(Duration::from_millis(1500)).await;

    // `?since=` does the same; the header outranks it (an EventSource reconnecting).
    let mut again = subscribe(&app, &format!("?since={}", ids[1])).await;
    assert_eq!(
        named(&again.events(2).await),
        pairs(&[("contacts created", "Cy"), ("tags created", "D")])
    );
    let both = app
        .request(Method::GET, "/events?since=0")
        .header("Last-Event-ID", ids[2].to_string());
    let mut both = open(both).await;
    assert_eq!(
        named(&[both.event().await]),
        pairs(&[("tags created", "D")])
    );
}

#[actix_web::test]
async fn no_event_of_another_organization_reaches_a_stream() {
    let app = spawn_app().await;
    let other = app.new_tenant("Globex").await;
    let mut mine = subscribe_at(&app.base, &app.org, "").await;
    let mut theirs = subscribe_at(&app.base, &other, "").await;
    for i in 0..3 {
        tag(&app, &app.org, &format!("acme-{i}")).await;
        tag(&app, &other, &format!("globex-{i}")).await;
    }
    let names = |frames: Vec<Frame>| -> Vec<String> {
        frames
            .iter()
            .map(|f| f.data["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(mine.events(3).await), ["acme-0", "acme-1", "acme-2"]);
    assert_eq!(
        names(theirs.events(3).await),
        ["globex-0", "globex-1", "globex-2"]
    );
    mine.quiet(Duration::from_millis(800)).await;
    theirs.quiet(Duration::from_millis(100)).await;
    // Nor through a replay from the table.
    let mut replay = subscribe_at(&app.base, &app.org, "?since=0").await;
    let replayed = replay.events(3).await;
    assert!(
        replayed.iter().all(|f| f.data["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("acme-"))),
        "{replayed:?}"
    );
    replay.quiet(Duration::from_millis(300)).await;
}

#[actix_web::test]
async fn a_cursor_older_than_the_retention_gets_a_reset_then_the_present() {
    let app = spawn_app().await;
    tag(&app, &app.org, "Old").await;
    let old = outbox::last_seq(&app.db).await.unwrap();
    tag(&app, &app.org, "Older").await;
    // A retention of zero prunes everything committed so far.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pruned = dispatcher::prune(&app.db, chrono::Duration::zero())
        .await
        .unwrap();
    assert!(pruned >= 2, "{pruned}");
    let present = outbox::last_seq(&app.db).await.unwrap();
    assert_eq!(outbox::pruned_through(&app.db).await.unwrap(), present);

    let mut stream = subscribe(&app, &format!("?since={}", old - 1)).await;
    let reset = stream.event().await;
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.data["reason"], "expired");
    assert_eq!(reset.data["since"], old - 1);
    assert!(reset.data["message"].is_string());
    assert_eq!(
        reset.id,
        Some(present),
        "a reconnect resumes at the present"
    );
    tag(&app, &app.org, "New").await;
    assert_eq!(
        named(&[stream.event().await]),
        pairs(&[("tags created", "New")])
    );
    // The cursor the prune left is still good; one ahead of every event is not.
    let mut fine = subscribe(&app, &format!("?since={present}")).await;
    assert_eq!(
        named(&[fine.event().await]),
        pairs(&[("tags created", "New")])
    );
    let mut ahead = subscribe(&app, "?since=1000000").await;
    let reset = ahead.event().await;
    assert_eq!(
        (reset.event.as_str(), &reset.data["reason"]),
        ("reset", &json!("unknown"))
    );
}

#[actix_web::test]
async fn a_page_then_a_stream_from_its_last_event_id_misses_no_write() {
    let app = spawn_app().await;
    tag(&app, &app.org, "Before").await;
    let page = app.request(Method::GET, "/tags").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let position: i64 = page.headers()["x-last-event-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(page.text().await.unwrap().contains("Before"));
    // A write between the page and the subscription.
    tag(&app, &app.org, "Between").await;
    let mut stream = subscribe(&app, &format!("?since={position}")).await;
    // The header is this instance's dispatcher position, read before the page: a
    // write committed just before may come again (the page shows it already).
    let mut frame = stream.event().await;
    if named(&[frame.clone()]) == pairs(&[("tags created", "Before")]) {
        frame = stream.event().await;
    }
    assert_eq!(named(&[frame]), pairs(&[("tags created", "Between")]));
    stream.quiet(Duration::from_millis(500)).await;
}

#[actix_web::test]
async fn the_paths_filter_and_bad_queries() {
    let app = spawn_app().await;
    let mut contacts = subscribe(&app, "?paths=contacts,conversations").await;
    tag(&app, &app.org, "Skipped").await;
    let contact = create_contact(&app, json!({"first_name": "Kept"})).await;
    let conversation = create_conversation(
        &app,
        app.org.org_id,
        contact["id"].as_i64().unwrap(),
        "playground",
        "open",
    )
    .await;
    patch_ok(
        &app,
        &format!("/conversations/{conversation}"),
        json!({"status": "closed"}),
    )
    .await;
    let frames = contacts.events(2).await;
    assert_eq!(frames[0].event, "contacts created");
    assert_eq!(frames[1].event, "conversations patched");
    assert_eq!(frames[1].data["id"], conversation);
    contacts.quiet(Duration::from_millis(500)).await;

    for (query, field) in [
        ("?paths=contacts,nope", "paths"),
        ("?paths=", "paths"),
        ("?since=abc", "since"),
        ("?since=-1", "since"),
        ("?limit=5", ""),
    ] {
        let (status, body) = send(app.request(Method::GET, &format!("/events{query}"))).await;
        assert_error(status, &body, 400, "BadRequest");
        assert!(
            body["message"].as_str().unwrap().contains(field),
            "{query}: {body}"
        );
    }
    let bad = app
        .request(Method::GET, "/events")
        .header("Last-Event-ID", "x");
    let (status, body) = send(bad).await;
    assert_error(status, &body, 400, "BadRequest");
    let (status, body) = send(app.request(Method::POST, "/events")).await;
    assert_error(status, &body, 405, "MethodNotAllowed");
}

#[actix_web::test]
async fn stream_tokens_open_a_stream_and_nothing_else() {
    let app = spawn_app().await;
    let unauthenticated = app.client.get(app.url("/events"));
    let (status, body) = send(unauthenticated).await;
    assert_error(status, &body, 401, "NotAuthenticated");
    let (status, body) = send(app.client.post(app.url("/event-tokens"))).await;
    assert_error(status, &body, 401, "NotAuthenticated");

    let (status, minted) = app.post("/event-tokens", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    assert_eq!(minted["expires_in"], 60);
    let token = minted["token"].as_str().unwrap().to_string();
    // The query token alone, no header: what an EventSource sends.
    let mut stream = open(app.client.get(app.url(&format!("/events?token={token}")))).await;
    tag(&app, &app.org, "Via token").await;
    assert_eq!(
        named(&[stream.event().await]),
        pairs(&[("tags created", "Via token")])
    );
    // An access token does not go in a URL; a stream token opens nothing else.
    let access = app
        .client
        .get(app.url(&format!("/events?token={}", app.org.token)));
    let (status, body) = send(access).await;
    assert_error(status, &body, 401, "NotAuthenticated");
    let elsewhere = app.client.get(app.url("/tags")).bearer_auth(&token);
    let (status, body) = send(elsewhere).await;
    assert_error(status, &body, 401, "NotAuthenticated");
    let forged = app.client.get(app.url("/events?token=not.a.token"));
    assert_eq!(send(forged).await.0, StatusCode::UNAUTHORIZED);
    // An API key opens a stream and mints a token as well.
    let key = app.create("/api-keys", json!({"name": "sse"})).await;
    let key = key["key"].as_str().unwrap();
    let by_key = app.client.get(app.url("/events")).header("x-api-key", key);
    open(by_key).await;
    let mint = app
        .client
        .post(app.url("/event-tokens"))
        .header("x-api-key", key);
    assert_eq!(send(mint).await.0, StatusCode::CREATED);
}

#[actix_web::test]
async fn streams_have_their_own_cap_outside_the_request_limit() {
    let app = spawn_app_with(|s| {
        s.max_event_streams = 2;
        s.max_in_flight = 1;
        s.event_keep_alive_ms = 100;
    })
    .await;
    let first = subscribe(&app, "").await;
    let _second = subscribe(&app, "").await;
    // Requests are still served: open streams hold no request slot.
    assert_eq!(app.get("/tags").await.0, StatusCode::OK);
    let (status, body) = send(app.request(Method::GET, "/events")).await;
    assert_error(status, &body, 503, "Unavailable");
    drop(first);
    // The closed stream's slot comes back once its end is noticed.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let res = app.request(Method::GET, "/events").send().await.unwrap();
        if res.status() == StatusCode::OK {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two server processes on one database: a write through one reaches a stream on
/// the other (NOTIFY wakes its dispatcher). PostgreSQL only: one SQLite file
/// is served by one process.
#[actix_web::test]
async fn a_write_through_one_instance_reaches_a_stream_on_another() {
    let app = spawn_app().await;
    if !app.database_url.starts_with("postgres") {
        return;
    }
    let (_server, other) = start_binary(
        &app.database_url,
        &[
            ("JWT_SECRET", app.jwt_secret.as_str()),
            ("APP__JOB_CONCURRENCY", "0"),
        ],
    );
    let mut there = subscribe_at(&other, &app.org, "").await;
    let mut here = subscribe(&app, "").await;
    let started = std::time::Instant::now();
    tag(&app, &app.org, "Cross").await;
    let frame = there.event().await;
    assert_eq!(named(&[frame]), pairs(&[("tags created", "Cross")]));
    // Woken by NOTIFY, well before the 1 s poll.
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // And the other way round.
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{other}/tags"))
        .bearer_auth(&app.org.token)
        .json(&json!({"name": "Back"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        named(&here.events(2).await),
        pairs(&[("tags created", "Cross"), ("tags created", "Back")])
    );
}

/// The sequence trap: with many concurrent writers, a reader of the outbox by seq
/// never sees a seq whose predecessor commits later (it would skip it for ever).
/// Every seq the reader sees, in the order it sees them, is exactly 1..=N; and a
/// stream open meanwhile gets every write once, in order.
#[actix_web::test]
async fn concurrent_writers_never_leave_a_gap_a_reader_skips() {
    let app = spawn_app_with(|s| {
        s.rate_limit_requests = 0;
        s.max_connections = 12;
    })
    .await;
    let (tasks, writes) = if app.database_url.starts_with("postgres") {
        (8, 50)
    } else {
        (4, 25)
    };
    let start = outbox::last_seq(&app.db).await.unwrap();
    let mut stream = subscribe(&app, "").await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (db, done) = (app.db.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut last = 0;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                let batch = outbox::after(&db, None, None, last, 1000).await.unwrap();
                for event in &batch {
                    seen.push(event.seq);
                    last = event.seq;
                }
                if finished && batch.is_empty() {
                    return seen;
                }
            }
        })
    };
    let mut writers = Vec::new();
    for t in 0..tasks {
        let (client, base, token) = (app.client.clone(), app.base.clone(), app.org.token.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..writes {
                let res = client
                    .post(format!("{base}/tags"))
                    .bearer_auth(&token)
                    .json(&json!({ "name": format!("w{t}-{i}") }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::CREATED);
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let seen = reader.await.unwrap();
    let total = outbox::last_seq(&app.db).await.unwrap();
    assert_eq!(total - start, tasks * writes);
    let expected: Vec<i64> = (1..=total).collect();
    assert_eq!(
        seen, expected,
        "the reader saw a seq before one that committed later"
    );

    let frames = stream.events((tasks * writes) as usize).await;
    let ids: Vec<i64> = frames.iter().map(|f| f.id.unwrap()).collect();
    assert_eq!(ids, ((start + 1)..=total).collect::<Vec<_>>());
    stream.quiet(Duration::from_millis(500)).await;
}
