//! A fake AgentPhone on 127.0.0.1:0 for tests: scripted answers to `POST /v1/messages`
//! (including the ambiguous ones: sent-then-error, hangs, 409 unconfirmed), a record
//! of every request, and conversations that sends fill in, so reconciliation through
//! `GET /v1/conversations/{id}/messages` can be exercised. Also the webhook sender's
//! headers ([`signed_headers`]).

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde_json::{Value, json};

/// The key the fake accepts unless [`FakeAgentPhone::set_api_key`] changes it.
pub const FAKE_API_KEY: &str = "sk_test_fake";
/// The sending number when a send names none (`from_number`).
pub const FAKE_FROM_NUMBER: &str = "+15550001111";

const HANG: Duration = Duration::from_secs(60);

/// How the fake answers one `POST /v1/messages`.
#[derive(Clone, Debug)]
pub enum SendReply {
    /// 200 `SentMessage` with the channel of `set_channel` (default "sms"); recorded as sent.
    Ok,
    /// 200 with that channel ("imessage", "mms"); recorded as sent.
    Channel(&'static str),
    /// 200 with `reply_parent_unresolved: true`; recorded as sent.
    Unresolved,
    /// That status and JSON body; nothing recorded.
    Status(u16, Value),
    /// 429 with `Retry-After: n` and `RATE_LIMIT_EXCEEDED`; nothing recorded.
    RateLimited(u64),
    /// Recorded as sent, then answers that status (e.g. 500, 502).
    SentThen(u16),
    /// Recorded as sent, then sleeps 60 s before answering (the client times out).
    SentThenHang,
    /// Not recorded; sleeps 60 s.
    Hang,
    /// 409 `DELIVERY_UNCONFIRMED`; recorded as sent.
    Unconfirmed,
}

struct Conversation {
    summary: Value,
    messages: Vec<Value>,
}

struct State {
    api_key: String,
    script: VecDeque<SendReply>,
    latency: Duration,
    channel: &'static str,
    sent: Vec<Value>,
    send_attempts: usize,
    requests: Vec<(String, String, Value)>,
    sends_in_flight: usize,
    max_concurrent_sends: usize,
    conversations: Vec<Conversation>,
    /// (sender, to_number) → index into `conversations`, for conversations sends created.
    by_pair: HashMap<(String, String), usize>,
    next_id: u64,
    last_time: Option<DateTime<Utc>>,
}

impl State {
    /// A fresh `{prefix}_{n}` not already used by a conversation or message.
    fn fresh_id(&mut self, prefix: &str) -> String {
        loop {
            self.next_id += 1;
            let id = format!("{prefix}_{}", self.next_id);
            let taken = self.conversations.iter().any(|c| {
                c.summary["id"] == id.as_str() || c.messages.iter().any(|m| m["id"] == id.as_str())
            });
            if !taken {
                return id;
            }
        }
    }

    /// Now, but strictly after the last timestamp handed out, so `before` cursors never tie.
    fn now(&mut self) -> String {
        // Compared at the precision it is written in (millis), or two sends could tie.
        let mut now = Utc::now().trunc_subsecs(3);
        if let Some(last) = self.last_time
            && now <= last
        {
            now = last + chrono::Duration::milliseconds(1);
        }
        self.last_time = Some(now);
        now.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    fn conversation(&mut self, id: &str) -> Option<&mut Conversation> {
        self.conversations
            .iter_mut()
            .find(|c| c.summary["id"] == id)
    }

    fn find_message(&mut self, id: &str) -> Option<&mut Value> {
        self.conversations
            .iter_mut()
            .flat_map(|c| c.messages.iter_mut())
            .find(|m| m["id"] == id)
    }

    /// Records `body` as sent on `channel`: its conversation (created on first use) gets
    /// the message; answers the 200 `SentMessage`.
    fn record_send(&mut self, body: &Value, channel: &str, unresolved: bool) -> Value {
        self.sent.push(body.clone());
        let text = body["body"].as_str().unwrap_or_default().to_owned();
        let from = body["from_number"]
            .as_str()
            .unwrap_or(FAKE_FROM_NUMBER)
            .to_owned();
        let to = match body["to_number"].as_str() {
            Some(to) => to.to_owned(),
            None => self.fresh_id("grp"),
        };
        let sender = ["from_number", "number_id", "agent_id"]
            .iter()
            .find_map(|k| body[*k].as_str())
            .unwrap_or_default()
            .to_owned();
        let media_urls = match (&body["media_urls"], &body["media_url"]) {
            (Value::Array(urls), _) => Value::Array(urls.clone()),
            (_, Value::String(url)) => json!([url]),
            _ => json!([]),
        };
        let now = self.now();
        let index = match self.by_pair.get(&(sender.clone(), to.clone())) {
            Some(&i) => i,
            None => {
                let id = self.fresh_id("conv");
                let is_group = to.starts_with("grp_");
                self.conversations.push(Conversation {
                    summary: json!({
                        "id": id,
                        "agentId": body["agent_id"],
                        "phoneNumberId": body["number_id"].as_str().unwrap_or("num_fake"),
                        "phoneNumber": from,
                        "participant": to,
                        "isGroup": is_group,
                        "groupId": if is_group { json!(to) } else { Value::Null },
                        "groupName": null,
                        "groupIconUrl": null,
                        "participants": null,
                        "lastMessageAt": now,
                        "lastMessagePreview": "",
                        "messageCount": 0,
                        "metadata": null,
                        "createdAt": now,
                    }),
                    messages: Vec::new(),
                });
                let i = self.conversations.len() - 1;
                self.by_pair.insert((sender, to.clone()), i);
                i
            }
        };
        let message_id = self.fresh_id("msg");
        let reply_to = body["reply_to_message_id"].as_str().map(str::to_owned);
        let reply_value = match &reply_to {
            Some(parent) if !unresolved => self.find_message(parent).map(
                |p| json!({"messageId": parent, "message": p["body"], "mediaUrls": p["mediaUrls"]}),
            ),
            _ => None,
        };
        let conversation = &mut self.conversations[index];
        let conversation_id = conversation.summary["id"].clone();
        conversation.messages.push(json!({
            "id": message_id,
            "body": text,
            "fromNumber": from,
            "toNumber": to,
            "direction": "outbound",
            "senderIdentifier": null,
            "channel": channel,
            "mediaUrl": media_urls.get(0).cloned().unwrap_or(Value::Null),
            "mediaUrls": media_urls,
            "receivedAt": now,
            "reactions": [],
            "replyTo": reply_value.unwrap_or(Value::Null),
        }));
        conversation.summary["lastMessageAt"] = json!(now);
        conversation.summary["lastMessagePreview"] = json!(text);
        conversation.summary["messageCount"] = json!(conversation.messages.len());
        json!({
            "id": message_id,
            "status": "sent",
            "channel": channel,
            "from_number": from,
            "to_number": to,
            "conversation_id": conversation_id,
            "media_urls": media_urls,
            "reply_to_message_id": reply_to,
            "reply_parent_unresolved": if unresolved { json!(true) } else { Value::Null },
        })
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct FakeAgentPhone {
    /// `http://127.0.0.1:{port}`, no trailing slash.
    pub base_url: String,
    state: Shared,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for FakeAgentPhone {
    /// Stops the server (the command is sent at once; hanging answers are abandoned).
    fn drop(&mut self) {
        // `stop` sends its command when called; the future only waits for completion.
        drop(self.handle.stop(false));
    }
}

impl FakeAgentPhone {
    pub async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(State {
            api_key: FAKE_API_KEY.to_owned(),
            script: VecDeque::new(),
            latency: Duration::ZERO,
            channel: "sms",
            sent: Vec::new(),
            send_attempts: 0,
            requests: Vec::new(),
            sends_in_flight: 0,
            max_concurrent_sends: 0,
            conversations: Vec::new(),
            by_pair: HashMap::new(),
            next_id: 0,
            last_time: None,
        }));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/v1/messages", web::post().to(send))
                .route("/v1/messages/{id}/reactions", web::post().to(react))
                .route("/v1/conversations", web::get().to(conversations))
                .route("/v1/conversations/{id}/messages", web::get().to(messages))
                .route("/v1/conversations/{id}/typing", web::post().to(typing))
                .route(
                    "/v1/conversations/{id}/background",
                    web::post().to(set_background),
                )
                .route(
                    "/v1/conversations/{id}/background",
                    web::delete().to(delete_background),
                )
                .route("/redirect/{tail:.*}", web::to(redirect))
                .default_service(web::to(not_found))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind the fake AgentPhone");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        FakeAgentPhone {
            base_url: format!("http://127.0.0.1:{port}"),
            state,
            handle,
        }
    }

    /// `POST /v1/messages` answers these in order, then [`SendReply::Ok`] forever.
    pub fn script(&self, replies: Vec<SendReply>) {
        lock(&self.state).script = replies.into();
    }

    /// Added before every answer.
    pub fn set_latency(&self, d: Duration) {
        lock(&self.state).latency = d;
    }

    /// The channel of [`SendReply::Ok`] answers.
    pub fn set_channel(&self, channel: &'static str) {
        lock(&self.state).channel = channel;
    }

    /// The only key accepted as `Authorization: Bearer <key>` (default [`FAKE_API_KEY`]).
    pub fn set_api_key(&self, key: &str) {
        lock(&self.state).api_key = key.to_owned();
    }

    /// Bodies of the messages recorded as sent, in order.
    pub fn sent(&self) -> Vec<Value> {
        lock(&self.state).sent.clone()
    }

    /// `POST /v1/messages` requests received (authorised or not).
    pub fn send_attempts(&self) -> usize {
        lock(&self.state).send_attempts
    }

    /// (method, path with its query string as received, JSON body or Null), every request.
    pub fn requests(&self) -> Vec<(String, String, Value)> {
        lock(&self.state).requests.clone()
    }

    /// The most `POST /v1/messages` in flight at once.
    pub fn max_concurrent_sends(&self) -> usize {
        lock(&self.state).max_concurrent_sends
    }

    /// A `ConversationSummary` (camelCase, with `id`) for `GET /v1/conversations`.
    pub fn add_conversation(&self, c: Value) {
        let mut state = lock(&self.state);
        let id = c["id"]
            .as_str()
            .expect("a conversation has an id")
            .to_owned();
        match state.conversation(&id) {
            Some(existing) => existing.summary = c,
            None => state.conversations.push(Conversation {
                summary: c,
                messages: Vec::new(),
            }),
        }
    }

    /// A `MessageInConversation` (camelCase) for that conversation's message list; an
    /// unknown conversation is created with a bare summary.
    pub fn add_message(&self, conversation_id: &str, m: Value) {
        let mut state = lock(&self.state);
        if state.conversation(conversation_id).is_none() {
            let now = state.now();
            state.conversations.push(Conversation {
                summary: json!({
                    "id": conversation_id, "agentId": null, "phoneNumberId": "num_fake",
                    "phoneNumber": FAKE_FROM_NUMBER, "participant": m["fromNumber"],
                    "isGroup": false, "lastMessageAt": m["receivedAt"].as_str().unwrap_or(&now),
                    "lastMessagePreview": m["body"], "messageCount": 0, "metadata": null,
                    "createdAt": now,
                }),
                messages: Vec::new(),
            });
        }
        let conversation = state.conversation(conversation_id).expect("just added");
        conversation.messages.push(m);
        conversation.summary["messageCount"] = json!(conversation.messages.len());
    }
}

/// The webhook headers AgentPhone sends with `body` (`X-Webhook-Event` from its `event`).
pub fn signed_headers(
    secret: &str,
    body: &[u8],
    timestamp: i64,
    delivery_id: &str,
) -> Vec<(&'static str, String)> {
    let timestamp = timestamp.to_string();
    let event = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["event"].as_str().map(str::to_owned))
        .unwrap_or_default();
    vec![
        (
            "X-Webhook-Signature",
            inbox_gateway::agentphone::signature::sign(secret, &timestamp, body),
        ),
        ("X-Webhook-Timestamp", timestamp),
        ("X-Webhook-ID", delivery_id.to_owned()),
        ("X-Webhook-Event", event),
        ("Content-Type", "application/json".to_owned()),
    ]
}

// ---- the server ----

fn answer(status: u16, body: Value) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .json(body)
}

fn detail(status: u16, text: &str) -> HttpResponse {
    answer(status, json!({ "detail": text }))
}

fn missing(field: &str) -> HttpResponse {
    answer(
        422,
        json!({"detail": [{"loc": ["body", field], "msg": "Field required", "type": "missing"}]}),
    )
}

/// Records the request, waits the latency, checks the key: `Err` is the 401 to answer.
async fn prelude(state: &Shared, req: &HttpRequest, body: &[u8]) -> Result<Value, HttpResponse> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let latency = {
        let mut s = lock(state);
        s.requests
            .push((req.method().to_string(), path, json.clone()));
        s.latency
    };
    if !latency.is_zero() {
        actix_web::rt::time::sleep(latency).await;
    }
    let expected = format!("Bearer {}", lock(state).api_key);
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        return Err(detail(401, "Invalid API key"));
    }
    Ok(json)
}

/// Counts a send in flight for as long as its handler runs (dropped with it on disconnect).
struct InFlight(Shared);

impl InFlight {
    fn enter(state: &Shared) -> Self {
        let mut s = lock(state);
        s.send_attempts += 1;
        s.sends_in_flight += 1;
        s.max_concurrent_sends = s.max_concurrent_sends.max(s.sends_in_flight);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.0).sends_in_flight -= 1;
    }
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

async fn send(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let _in_flight = InFlight::enter(&state);
    let json = match prelude(&state, &req, &body).await {
        Ok(json) => json,
        Err(denied) => return denied,
    };
    if !json.is_object() {
        return answer(
            422,
            json!({"detail": [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "model_attributes_type"}]}),
        );
    }
    if !json["body"].is_string() {
        return missing("body");
    }
    if !json["to_number"].is_string() && !json["recipients"].is_array() {
        return detail(400, "Provide to_number or recipients");
    }
    let (reply, channel) = {
        let mut s = lock(&state);
        (s.script.pop_front().unwrap_or(SendReply::Ok), s.channel)
    };
    let record =
        |channel: &str, unresolved: bool| lock(&state).record_send(&json, channel, unresolved);
    match reply {
        SendReply::Ok => answer(200, record(channel, false)),
        SendReply::Channel(c) => answer(200, record(c, false)),
        SendReply::Unresolved => answer(200, record(channel, true)),
        SendReply::Status(status, body) => answer(status, body),
        SendReply::RateLimited(secs) => HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", secs.to_string()))
            .json(json!({"error": {
                "code": "RATE_LIMIT_EXCEEDED",
                "message": format!("Rate limit exceeded. Retry after {secs} seconds."),
                "type": "rate_limit_error",
            }})),
        SendReply::SentThen(status) => {
            record(channel, false);
            let reason = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            detail(status, reason)
        }
        SendReply::SentThenHang => {
            let sent = record(channel, false);
            actix_web::rt::time::sleep(HANG).await;
            answer(200, sent)
        }
        SendReply::Hang => {
            actix_web::rt::time::sleep(HANG).await;
            detail(504, "Gateway Timeout")
        }
        SendReply::Unconfirmed => {
            record(channel, false);
            answer(
                409,
                json!({"error": {
                    "code": "DELIVERY_UNCONFIRMED",
                    "message": "The carrier did not confirm delivery; the message may have been sent. Do not retry.",
                    "type": "delivery_error",
                }}),
            )
        }
    }
}

async fn react(
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
    state: web::Data<Shared>,
) -> HttpResponse {
    let json = match prelude(&state, &req, &body).await {
        Ok(json) => json,
        Err(denied) => return denied,
    };
    let Some(reaction) = json["reaction"].as_str() else {
        return missing("reaction");
    };
    let mut s = lock(&state);
    let id = s.fresh_id("rxn");
    let now = s.now();
    let Some(message) = s.find_message(&path) else {
        return detail(404, "Message not found");
    };
    let channel = message["channel"].as_str().unwrap_or_default();
    if !channel.eq_ignore_ascii_case("imessage") {
        return detail(
            400,
            &format!("Reactions are only supported on iMessage (this message is {channel})"),
        );
    }
    let reaction_entry = json!({
        "id": id, "reactionType": reaction, "fromNumber": message["toNumber"],
        "direction": "outbound", "createdAt": now,
    });
    match message["reactions"].as_array_mut() {
        Some(list) => list.push(reaction_entry),
        None => message["reactions"] = json!([reaction_entry]),
    }
    answer(
        200,
        json!({"id": id, "reaction_type": reaction, "message_id": path.as_str(), "channel": "imessage"}),
    )
}

fn timestamp(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

async fn messages(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<Shared>,
) -> HttpResponse {
    if let Err(denied) = prelude(&state, &req, &[]).await {
        return denied;
    }
    let q = query(&req);
    let limit: usize = match q.get("limit").map(|l| l.parse()) {
        None => 50,
        Some(Ok(l)) if (1..=200).contains(&l) => l,
        Some(_) => return detail(422, "limit must be between 1 and 200"),
    };
    let mut bounds = [None, None];
    for (i, key) in ["before", "after"].iter().enumerate() {
        if let Some(text) = q.get(*key) {
            match timestamp(&json!(text)) {
                Some(t) => bounds[i] = Some(t),
                None => return detail(422, &format!("{key} must be an ISO-8601 date-time")),
            }
        }
    }
    let [before, after] = bounds;
    let mut s = lock(&state);
    let Some(conversation) = s.conversation(&path) else {
        return detail(404, "Conversation not found");
    };
    let mut list: Vec<(Option<DateTime<Utc>>, &Value)> = conversation
        .messages
        .iter()
        .map(|m| (timestamp(&m["receivedAt"]), m))
        .filter(|(t, _)| before.is_none_or(|b| t.is_some_and(|t| t < b)))
        .filter(|(t, _)| after.is_none_or(|a| t.is_some_and(|t| t > a)))
        .collect();
    // Newest first; equal times keep the later-added first.
    list.reverse();
    list.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    let has_more = list.len() > limit;
    let data: Vec<Value> = list
        .into_iter()
        .take(limit)
        .map(|(_, m)| m.clone())
        .collect();
    answer(200, json!({"data": data, "hasMore": has_more}))
}

async fn conversations(req: HttpRequest, state: web::Data<Shared>) -> HttpResponse {
    if let Err(denied) = prelude(&state, &req, &[]).await {
        return denied;
    }
    let q = query(&req);
    let limit: usize = match q.get("limit").map(|l| l.parse()) {
        None => 20,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        Some(_) => return detail(422, "limit must be between 1 and 100"),
    };
    let offset: usize = match q.get("offset").map(|o| o.parse()) {
        None => 0,
        Some(Ok(o)) => o,
        Some(_) => return detail(422, "offset must be an integer"),
    };
    let s = lock(&state);
    let mut list: Vec<(Option<DateTime<Utc>>, &Value)> = s
        .conversations
        .iter()
        .map(|c| (timestamp(&c.summary["lastMessageAt"]), &c.summary))
        .collect();
    list.reverse();
    list.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    let total = list.len();
    let data: Vec<Value> = list
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(_, c)| c.clone())
        .collect();
    answer(
        200,
        json!({"data": data, "hasMore": offset.saturating_add(limit) < total, "total": total}),
    )
}

async fn typing(
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
    state: web::Data<Shared>,
) -> HttpResponse {
    if let Err(denied) = prelude(&state, &req, &body).await {
        return denied;
    }
    if lock(&state).conversation(&path).is_none() {
        return detail(404, "Conversation not found");
    }
    answer(
        200,
        json!({"conversationId": path.as_str(), "channel": "imessage", "status": "sent"}),
    )
}

async fn set_background(
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
    state: web::Data<Shared>,
) -> HttpResponse {
    let json = match prelude(&state, &req, &body).await {
        Ok(json) => json,
        Err(denied) => return denied,
    };
    let mut s = lock(&state);
    if s.conversation(&path).is_none() {
        return detail(404, "Conversation not found");
    }
    if !json["image_url"].is_string() {
        return missing("image_url");
    }
    let id = s.fresh_id("bg");
    let version = s.next_id;
    answer(
        200,
        json!({
            "conversationId": path.as_str(), "channel": "imessage", "hasBackground": true,
            "backgroundId": id, "backgroundVersion": version, "changed": true,
        }),
    )
}

async fn delete_background(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<Shared>,
) -> HttpResponse {
    if let Err(denied) = prelude(&state, &req, &[]).await {
        return denied;
    }
    if lock(&state).conversation(&path).is_none() {
        return detail(404, "Conversation not found");
    }
    HttpResponse::NoContent().finish()
}

/// `/redirect/{tail}` → 307 to `/{tail}`: a base URL of `{base_url}/redirect` redirects every call.
async fn redirect(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let target = path.strip_prefix("/redirect").unwrap_or("/").to_owned();
    lock(&state)
        .requests
        .push((req.method().to_string(), path, json));
    HttpResponse::TemporaryRedirect()
        .insert_header(("Location", target))
        .finish()
}

async fn not_found(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    match prelude(&state, &req, &body).await {
        Ok(_) => detail(404, "Not Found"),
        Err(denied) => denied,
    }
}
