//! `GET /events`: the caller's organization's events as Server-Sent Events, and
//! `POST /event-tokens`, which mints the short-lived token a browser's EventSource
//! (which cannot send headers) passes as `?token=`.
//!
//! A stream subscribes to the dispatcher's broadcast first, then replays from the
//! table everything after its cursor, then takes broadcast events it has not sent
//! (seq above the last one): nothing is lost between the two, nothing comes twice.
//! A stream that falls behind the broadcast is backfilled from the table.

use super::dispatcher::Dispatcher;
use super::{Stored, outbox};
use crate::auth::{AuthContext, STREAM_TOKEN_SECS};
use crate::feathers::error::ErrorKind;
use crate::feathers::rest::RestState;
use crate::feathers::{FeathersError, Principal, Result};
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use sea_orm::DatabaseConnection;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Events read per query while replaying or backfilling.
const BATCH: u64 = 500;
/// Frames written ahead of a slow client; past them the stream waits, its
/// broadcast lags, and it backfills from the table.
const AHEAD: usize = 32;
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// What the stream routes need besides [`RestState`].
pub struct StreamState {
    pub db: DatabaseConnection,
    /// Mints and reads stream tokens (headers go through `RestState::authenticator`).
    pub auth: Arc<AuthContext>,
    pub dispatcher: Arc<Dispatcher>,
    /// The service paths a `paths` filter may name.
    pub paths: HashSet<String>,
    pub keep_alive: Duration,
    /// Streams this instance serves at once (`max_event_streams`; `None`: no cap).
    pub streams: Option<Arc<Semaphore>>,
    /// Ends every stream at shutdown: a stream never ends by itself.
    pub stop: CancellationToken,
}

/// `GET /events`.
pub async fn subscribe(
    req: HttpRequest,
    rest: web::Data<RestState>,
    state: web::Data<StreamState>,
) -> HttpResponse {
    open(&req, &rest, &state).await.unwrap_or_else(refuse)
}

/// `POST /event-tokens`: `{"token": "...", "expires_in": 60}`.
pub async fn mint_token(
    req: HttpRequest,
    rest: web::Data<RestState>,
    state: web::Data<StreamState>,
) -> HttpResponse {
    let minted = async {
        let principal = caller(&req, &rest).await?;
        state.auth.issue_stream_token(&principal).await
    };
    match minted.await {
        Ok(token) => {
            HttpResponse::Created().json(json!({ "token": token, "expires_in": STREAM_TOKEN_SECS }))
        }
        Err(e) => refuse(e),
    }
}

/// Any other verb on the stream routes.
pub async fn not_allowed(req: HttpRequest) -> HttpResponse {
    refuse(FeathersError::method_not_allowed(format!(
        "Method {} not allowed on {}",
        req.method(),
        req.path()
    )))
}

fn refuse(err: FeathersError) -> HttpResponse {
    if err.code() >= 500 {
        tracing::warn!(code = err.code(), message = %err.message, cause = %err.chain(), "event stream refused");
    } else {
        tracing::info!(code = err.code(), message = %err.message, "event stream refused");
    }
    err.error_response()
}

/// The caller by its headers (Bearer JWT or `x-api-key`), as every service sees it;
/// counted against its organization's rate limit.
async fn caller(req: &HttpRequest, rest: &RestState) -> Result<Principal> {
    let headers: HashMap<String, String> = (req.headers().iter())
        .map(|(k, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (k.as_str().to_ascii_lowercase(), value)
        })
        .collect();
    let principal = (rest.authenticator.authenticate(&headers).await?)
        .ok_or_else(|| FeathersError::not_authenticated("Not authenticated"))?;
    limit(rest, &principal)?;
    Ok(principal)
}

fn limit(rest: &RestState, principal: &Principal) -> Result<()> {
    match &rest.rate_limit {
        Some(limit) => limit.check(principal.tenant_id),
        None => Ok(()),
    }
}

/// What a subscription asks for in its query.
#[derive(Debug, Default, PartialEq)]
struct Query {
    token: Option<String>,
    since: Option<i64>,
    paths: Option<Vec<String>>,
}

fn parse_query(query: &str, known: &HashSet<String>) -> Result<Query> {
    let mut parsed = Query::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "token" => parsed.token = Some(value.into_owned()),
            "since" => parsed.since = Some(cursor("since", &value)?),
            "paths" => parsed.paths = Some(paths(&value, known)?),
            other => {
                return Err(FeathersError::bad_request(format!(
                    "Unknown query parameter '{other}' (expected since, paths or token)"
                )));
            }
        }
    }
    Ok(parsed)
}

fn cursor(name: &str, value: &str) -> Result<i64> {
    (value.trim().parse::<i64>().ok())
        .filter(|seq| *seq >= 0)
        .ok_or_else(|| FeathersError::invalid(name, "must be an event id (an integer, 0 or more)"))
}

fn paths(value: &str, known: &HashSet<String>) -> Result<Vec<String>> {
    let mut paths: Vec<String> = Vec::new();
    for path in value.split(',').map(|p| p.trim().trim_matches('/')) {
        if !known.contains(path) {
            return Err(FeathersError::invalid(
                "paths",
                format!("unknown path '{path}' (a comma-separated list of service paths)"),
            ));
        }
        if !paths.iter().any(|p| p == path) {
            paths.push(path.to_string());
        }
    }
    Ok(paths)
}

async fn open(req: &HttpRequest, rest: &RestState, state: &StreamState) -> Result<HttpResponse> {
    let query = parse_query(req.query_string(), &state.paths)?;
    let principal = match &query.token {
        Some(token) => {
            let principal = state.auth.principal_for_stream_token(token).await?;
            limit(rest, &principal)?;
            principal
        }
        None => caller(req, rest).await?,
    };
    // An EventSource reconnecting sends the last id it saw; it outranks the URL's.
    let cursor = match req.headers().get("last-event-id") {
        Some(value) => Some(cursor(
            "Last-Event-ID",
            &String::from_utf8_lossy(value.as_bytes()),
        )?),
        None => query.since,
    };
    let permit = match &state.streams {
        Some(streams) => Some(streams.clone().try_acquire_owned().map_err(|_| {
            FeathersError::new(
                ErrorKind::Unavailable,
                "Too many event streams on this instance, try again later",
            )
        })?),
        None => None,
    };
    // Subscribed before the replay reads the table: what commits meanwhile is in
    // one or the other (or both, and then skipped by seq).
    let events = state.dispatcher.subscribe();
    let present = match state.dispatcher.position() {
        Some(seq) => seq,
        None => outbox::last_seq(&state.db).await?,
    };
    let (start, reset) = match cursor {
        None => (present, None),
        Some(seq) if seq < outbox::pruned_through(&state.db).await? => {
            (present, Some(reset(seq, present, "expired")))
        }
        Some(seq) if seq > present && seq > outbox::last_seq(&state.db).await? => {
            (present, Some(reset(seq, present, "unknown")))
        }
        Some(seq) => (seq, None),
    };
    let (tx, mut rx) = mpsc::channel(AHEAD);
    let stream = Subscription {
        db: state.db.clone(),
        organization: principal.tenant_id,
        paths: query.paths,
        events,
        last: start,
        keep_alive: state.keep_alive,
        stop: state.stop.clone(),
    };
    // On the database runtime: the replay's connections belong there (see `db::runtime`).
    crate::db::runtime().spawn(stream.run(tx, reset, permit));
    let body = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|frame| frame.map(Ok::<_, std::convert::Infallible>))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // nginx: pass each frame on at once.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

/// The `reset` frame: the cursor's events are gone (`expired`: past the retention)
/// or were never written here (`unknown`); the stream goes on from the present,
/// whose seq the frame carries, so a reconnect resumes there.
fn reset(since: i64, present: i64, reason: &str) -> Bytes {
    let message = match reason {
        "expired" => {
            "The events after this cursor are no longer kept: reload what you show, then go on from here"
        }
        _ => "This cursor is ahead of every event: reload what you show, then go on from here",
    };
    let data = json!({ "reason": reason, "message": message, "since": since });
    Bytes::from(format!("id: {present}\nevent: reset\ndata: {data}\n\n"))
}

fn frame(event: &Stored) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: {} {}\ndata: {}\n\n",
        event.seq, event.path, event.event, event.data
    ))
}

/// Why a stream ended early.
enum End {
    /// The client went away.
    Gone,
    Failed(FeathersError),
}

impl From<FeathersError> for End {
    fn from(e: FeathersError) -> Self {
        End::Failed(e)
    }
}

/// One client's stream: its organization, its filter and the last seq it has passed.
struct Subscription {
    db: DatabaseConnection,
    organization: i64,
    paths: Option<Vec<String>>,
    events: broadcast::Receiver<Arc<Stored>>,
    /// Every event up to it has been sent or was not this stream's.
    last: i64,
    keep_alive: Duration,
    stop: CancellationToken,
}

impl Subscription {
    async fn run(
        mut self,
        tx: mpsc::Sender<Bytes>,
        reset: Option<Bytes>,
        _permit: Option<OwnedSemaphorePermit>,
    ) {
        match self.serve(&tx, reset).await {
            Ok(()) | Err(End::Gone) => {}
            // The client reconnects with its Last-Event-ID and misses nothing.
            Err(End::Failed(e)) => {
                tracing::warn!(error = %e.message, cause = %e.chain(), "event stream ended by a failure")
            }
        }
    }

    async fn serve(&mut self, tx: &mpsc::Sender<Bytes>, reset: Option<Bytes>) -> Result<(), End> {
        // The first bytes: the client knows the stream is open.
        send(tx, Bytes::from_static(b": connected\n\n")).await?;
        if let Some(reset) = reset {
            send(tx, reset).await?;
        }
        self.backfill(tx).await?;
        let start = tokio::time::Instant::now() + self.keep_alive;
        let mut keep_alive = tokio::time::interval_at(start, self.keep_alive);
        keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return Ok(()),
                _ = tx.closed() => return Err(End::Gone),
                _ = keep_alive.tick() => send(tx, Bytes::from_static(KEEP_ALIVE)).await?,
                event = self.events.recv() => match event {
                    Ok(event) => self.deliver(tx, &event).await?,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "event stream fell behind; backfilling from the table");
                        self.backfill(tx).await?;
                    }
                    Err(RecvError::Closed) => return Ok(()),
                },
            }
        }
    }

    /// A broadcast event: sent if it is new and this stream's.
    async fn deliver(&mut self, tx: &mpsc::Sender<Bytes>, event: &Stored) -> Result<(), End> {
        if event.seq <= self.last {
            return Ok(());
        }
        self.last = event.seq;
        let wanted = (self.paths.as_ref()).is_none_or(|paths| paths.contains(&event.path));
        if event.organization_id == self.organization && wanted {
            send(tx, frame(event)).await?;
        }
        Ok(())
    }

    /// Sends this stream's events after `last` from the table, until caught up.
    async fn backfill(&mut self, tx: &mpsc::Sender<Bytes>) -> Result<(), End> {
        loop {
            let batch = outbox::after(
                &self.db,
                Some(self.organization),
                self.paths.as_deref(),
                self.last,
                BATCH,
            )
            .await?;
            let full = batch.len() as u64 == BATCH;
            for event in &batch {
                self.last = event.seq;
                send(tx, frame(event)).await?;
            }
            if !full {
                return Ok(());
            }
        }
    }
}

async fn send(tx: &mpsc::Sender<Bytes>, frame: Bytes) -> Result<(), End> {
    tx.send(frame).await.map_err(|_| End::Gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Pending;
    use sea_orm::TransactionTrait;

    async fn commit_tags(db: &DatabaseConnection, organization: i64, n: usize) {
        for i in 0..n {
            let txn = db.begin().await.unwrap();
            let event = Pending {
                path: "tags".into(),
                event: "created",
                data: json!({ "name": format!("t{i}") }),
            };
            outbox::append(&txn, organization, &json!({"type": "system"}), &[event])
                .await
                .unwrap();
            txn.commit().await.unwrap();
        }
    }

    /// A stream that falls behind the broadcast (here a buffer of 4 and 20 events
    /// dispatched at once) is backfilled from the table: every event once, in order.
    #[tokio::test]
    async fn a_lagging_stream_is_backfilled_not_dropped() {
        let db = crate::db::connect("sqlite::memory:", 1).await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let (org, _) = crate::admin::create_admin(&db, "Acme", "lag@acme.test", "password")
            .await
            .unwrap();
        let dispatcher = Dispatcher::new(db.clone(), 4);
        assert_eq!(dispatcher.start().await.unwrap(), 0);
        let stream = Subscription {
            db: db.clone(),
            organization: org,
            paths: None,
            events: dispatcher.subscribe(),
            last: 0,
            keep_alive: Duration::from_secs(60),
            stop: CancellationToken::new(),
        };
        let (tx, mut rx) = mpsc::channel(64);
        let running = tokio::spawn(stream.run(tx, None, None));
        assert_eq!(&rx.recv().await.unwrap()[..], b": connected\n\n");
        // Let it read the (empty) table and wait on the broadcast.
        tokio::time::sleep(Duration::from_millis(200)).await;
        commit_tags(&db, org, 20).await;
        // One catch-up sends all 20 without yielding: the receiver keeps the last 4.
        dispatcher.catch_up().await.unwrap();
        let mut ids = Vec::new();
        while ids.len() < 20 {
            let frame = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("a frame")
                .unwrap();
            let text = String::from_utf8(frame.to_vec()).unwrap();
            let id = text
                .strip_prefix("id: ")
                .unwrap()
                .split('\n')
                .next()
                .unwrap();
            ids.push(id.parse::<i64>().unwrap());
        }
        assert_eq!(ids, (1..=20).collect::<Vec<_>>());
        let more = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await;
        assert!(more.is_err(), "nothing twice: {more:?}");
        running.abort();
    }

    #[test]
    fn queries_are_read_strictly() {
        let known: HashSet<String> = ["tags", "contacts"].map(String::from).into();
        let parsed = parse_query("since=7&paths=tags,%2Fcontacts,tags&token=t", &known).unwrap();
        assert_eq!(
            parsed,
            Query {
                token: Some("t".into()),
                since: Some(7),
                paths: Some(vec!["tags".into(), "contacts".into()]),
            }
        );
        for bad in [
            "since=",
            "since=1.5",
            "paths=tags,,contacts",
            "paths=users",
            "x=1",
        ] {
            let err = parse_query(bad, &known).unwrap_err();
            assert_eq!(err.code(), 400, "{bad}");
        }
    }
}
