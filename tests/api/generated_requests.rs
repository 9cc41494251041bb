//! Generated requests: a seeded, bounded run of random requests through HTTP over
//! every service path, as one organization's admin and agent (and sometimes with no
//! or invalid credentials), while a second organization holds marked records in
//! every service. Every answer must be below 500, carry none of the second
//! organization's markers, and (when it succeeds) no record of it; at the end the
//! second organization's data is unchanged and the server still answers.
//!
//! `GEN_SEED` (decimal or `0x` hex) replays a run, `GEN_REQUESTS` sets its length
//! (default 2,500), `GEN_VERBOSE=1` prints every request and answer. Requests are sent
//! one at a time, so a seed replays the same run; `GEN_CONCURRENCY=N` sends N at a
//! time instead (the same requests, in batches: answers may then depend on timing).
//! Half of the requests are plausible (known fields, good values, JSON), so that many
//! succeed and reach the writes; the others are mutated anywhere.

use crate::helpers::*;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const DEFAULT_SEED: u64 = 0x5EED_2026_1201;
const DEFAULT_REQUESTS: usize = 2_500;
const CHANNELS: [&str; 6] = [
    "whatsapp",
    "instagram",
    "messenger",
    "webchat",
    "sms",
    "playground",
];
const OUTGOING: [&str; 4] = ["whatsapp", "instagram", "messenger", "webchat"];
const MESSAGE_TYPES: &[&str] = &[
    "text", "image", "video", "document", "audio", "location", "reaction", "note", "template",
    "activity",
];

// A small deterministic generator (splitmix64).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn word(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}

// What the generator knows of the services (from src/services/*.rs and
// src/messaging/store.rs).

/// The kinds of record, for ids in paths and reference fields.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
enum Table {
    Users,
    ApiKeys,
    Contacts,
    Tags,
    AiAssistants,
    Pipelines,
    Stages,
    Views,
    Conversations,
    Messages,
    Predefined,
    People,
}

#[derive(Clone, Copy, Debug)]
enum Ty {
    /// An organization id (A's when good).
    Org,
    Int,
    Num,
    Str,
    Email,
    Password,
    Bool,
    Time,
    Json,
    Enum(&'static [&'static str]),
    Ref(Table),
    RefList(Table),
    StageList,
    ViewQuery,
    Vars,
    /// A conversation of this channel (A's, mostly).
    ConvOn(&'static str),
    FileKey,
}

#[derive(Clone, Copy)]
struct F {
    name: &'static str,
    ty: Ty,
    query: bool,
    write: bool,
}

const fn q(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        query: true,
        write: false,
    }
}
const fn w(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        query: false,
        write: true,
    }
}
const fn qw(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        query: true,
        write: true,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Auth,
    Crud,
    Messages(&'static str),
    Outgoing(&'static str),
}

struct Svc {
    path: String,
    table: Option<Table>,
    kind: Kind,
    fields: Vec<F>,
}

fn tenant_fields(mut fields: Vec<F>, table: Table) -> Vec<F> {
    fields.insert(0, q("organization_id", Ty::Org));
    fields.insert(0, q("id", Ty::Ref(table)));
    fields.push(q("created_at", Ty::Time));
    fields.push(q("updated_at", Ty::Time));
    fields
}

fn message_query_fields(channel: &'static str) -> Vec<F> {
    use Ty::*;
    tenant_fields(
        vec![
            q("conversation_id", ConvOn(channel)),
            q("channel", Str),
            q("direction", Enum(&["inbound", "outbound"])),
            q("message_type", Enum(MESSAGE_TYPES)),
            q(
                "sender_type",
                Enum(&["contact", "user", "ai", "automation", "system"]),
            ),
            q("sender_id", Ref(Table::Users)),
            q("text", Str),
            q("channel_account_id", Int),
            q("external_id", Str),
            q("reply_to_message_id", Ref(Table::Messages)),
            q("transport", Str),
            q(
                "delivery_status",
                Enum(&["received", "queued", "sent", "delivered", "read", "failed"]),
            ),
        ],
        Table::Messages,
    )
}

/// The fields of a message create body (`messaging::compose::Body`).
fn message_body_fields(channel: &'static str) -> Vec<F> {
    use Ty::*;
    vec![
        w("conversation_id", ConvOn(channel)),
        w("organization_id", Org),
        w("message_text", Str),
        w("message_type", Enum(MESSAGE_TYPES)),
        w("s3_key", FileKey),
        w("s3_path", FileKey),
        w("file_name", Str),
        w(
            "file_type",
            Enum(&[
                "image/png",
                "image/jpeg",
                "application/pdf",
                "video/mp4",
                "text/x-sh",
            ]),
        ),
        w("file_size", Int),
        w("conversation_file_id", Json),
        w("messageData", Json),
        w("predefined_message_id", Ref(Table::Predefined)),
        w("variables", Vars),
        w("human_agent", Bool),
        w(
            "send_style",
            Enum(&["slam", "loud", "gentle", "invisible", "celebration"]),
        ),
        w("reply_to_message_id", Ref(Table::Messages)),
        w("contact_id", Ref(Table::Contacts)),
        w("sender_type", Enum(&["contact", "user", "ai"])),
    ]
}

fn services() -> Vec<Svc> {
    use Table::*;
    use Ty::*;
    let crud = |path: &str, table: Table, fields: Vec<F>| Svc {
        path: path.to_string(),
        table: Some(table),
        kind: Kind::Crud,
        fields: tenant_fields(fields, table),
    };
    let contact_text = |name| qw(name, Str);
    let mut all = vec![
        Svc {
            path: "/authentication".into(),
            table: None,
            kind: Kind::Auth,
            fields: vec![
                w("strategy", Enum(&["local", "jwt", "oauth", ""])),
                w("email", Email),
                w("password", Password),
                w("accessToken", Str),
            ],
        },
        crud(
            "/users",
            Users,
            vec![
                qw("email", Email),
                qw("first_name", Str),
                qw("last_name", Str),
                qw("role", Enum(&["admin", "agent", "owner"])),
                w("password", Password),
            ],
        ),
        crud(
            "/api-keys",
            ApiKeys,
            vec![
                qw("user_id", Ref(Table::Users)),
                qw("name", Str),
                q("key_prefix", Str),
                q("last_used_at", Time),
            ],
        ),
        crud(
            "/contacts",
            Contacts,
            vec![
                contact_text("first_name"),
                contact_text("last_name"),
                contact_text("email"),
                contact_text("phone"),
                contact_text("phone_country_code"),
                contact_text("phone_country_iso"),
                contact_text("channel_whatsapp_wa_id"),
                contact_text("channel_instagram_user_id"),
                w("avatar_url", Str),
                qw("owned_by_user_id", Ref(Table::Users)),
                q("created_by_user_id", Ref(Table::Users)),
                w("custom_fields_by_name", Json),
                w("tag_ids", RefList(Tags)),
                q("tag_id", Ref(Tags)),
            ],
        ),
        crud("/tags", Tags, vec![qw("name", Str)]),
        crud("/ai-assistants", AiAssistants, vec![qw("name", Str)]),
        crud(
            "/pipelines",
            Pipelines,
            vec![qw("name", Str), w("stages", StageList)],
        ),
        crud(
            "/conversation-views",
            Views,
            vec![
                q("owner_user_id", Ref(Table::Users)),
                qw("name", Str),
                w("query", ViewQuery),
            ],
        ),
        crud(
            "/conversations",
            Conversations,
            vec![
                q("contact_id", Ref(Table::Contacts)),
                q("channel", Enum(&CHANNELS)),
                q("channel_account_id", Int),
                q("external_id", Str),
                qw("status", Enum(&["open", "closed", "snoozed"])),
                qw("assigned_user_id", Ref(Table::Users)),
                qw("assigned_ai_assistant_id", Ref(AiAssistants)),
                qw("pipeline_id", Ref(Pipelines)),
                qw("pipeline_stage_id", Ref(Table::Stages)),
                qw("unread_count", Int),
                qw("ai_context_cut", Time),
                qw("ai_auto_assignment_disabled", Bool),
                w("ai_auto_assignment_disabled_reason", Str),
                qw("blocked", Bool),
                q("waiting_since", Time),
                q("last_interaction_at", Time),
                q("last_inbound_at", Time),
                q("is_group", Bool),
                q("searchTerm", Str),
                q("waitingResponseOnly", Bool),
                q("tag_id", Ref(Tags)),
                q("view_id", Ref(Views)),
            ],
        ),
        crud(
            "/conversation-predefined-messages",
            Predefined,
            vec![
                qw("title", Str),
                qw("content", Str),
                qw("message_type", Enum(MESSAGE_TYPES)),
                w("media_url", FileKey),
                w("filename", Str),
                w("mime_type", Str),
                q("created_by_user_id", Ref(Table::Users)),
            ],
        ),
    ];
    for channel in CHANNELS {
        let mut fields = message_query_fields(channel);
        fields.extend(message_body_fields(channel));
        all.push(Svc {
            path: format!("/conversation-messages-{channel}"),
            table: Some(Messages),
            kind: Kind::Messages(channel),
            fields,
        });
    }
    for channel in OUTGOING {
        let mut fields = message_body_fields(channel);
        fields.push(q("$preview", Bool));
        all.push(Svc {
            path: format!("/conversation-messages-transform-outgoing-{channel}"),
            table: Some(Messages),
            kind: Kind::Outgoing(channel),
            fields,
        });
    }
    for path in [
        "/people",
        "/people-multi",
        "/people-p1",
        "/people-p3",
        "/people-p10",
    ] {
        all.push(Svc {
            path: path.to_string(),
            table: Some(People),
            kind: Kind::Crud,
            fields: vec![
                q("id", Ref(People)),
                qw("name", Str),
                qw("age", Num),
                qw("created", Bool),
            ],
        });
    }
    all
}

// One organization's records.

struct Org {
    admin: Tenant,
    agent: Tenant,
    agent_password: String,
    /// Ids by kind (the second organization's never change; the first's grow with creates).
    ids: HashMap<Table, Vec<i64>>,
    /// One conversation per channel.
    conversations: HashMap<&'static str, i64>,
    api_key: String,
}

impl Org {
    fn add(&mut self, table: Table, id: i64) {
        let list = self.ids.entry(table).or_default();
        if !list.contains(&id) {
            list.push(id);
        }
    }
}

fn id_of(record: &Value) -> i64 {
    record["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("id is not a number: {record}"))
}

async fn post_as(app: &TestApp, tenant: &Tenant, path: &str, body: Value) -> Value {
    let (status, record) = app
        .call_as(tenant, Method::POST, path, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "POST {path} {body}: {record}");
    record
}

async fn patch_as(app: &TestApp, tenant: &Tenant, path: &str, body: Value) -> Value {
    let (status, record) = app
        .call_as(tenant, Method::PATCH, path, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "PATCH {path} {body}: {record}");
    record
}

/// Records of every kind in `admin`'s organization, each text carrying `label`.
async fn seed_org(app: &TestApp, admin: Tenant, label: &str) -> Org {
    use Table::*;
    let lower = label.to_lowercase();
    patch_as(
        app,
        &admin,
        &format!("/users/{}", admin.user_id),
        json!({"first_name": label, "last_name": format!("{label} admin")}),
    )
    .await;
    let agent_password = "agent-password".to_string();
    let mut users = vec![admin.user_id];
    let mut agent = None;
    for n in 0..3 {
        let email = format!(
            "{lower}-user{n}-{}@example.test",
            uuid::Uuid::new_v4().simple()
        );
        let user = post_as(
            app,
            &admin,
            "/users",
            json!({"email": email, "password": agent_password, "role": if n == 2 { "admin" } else { "agent" },
                   "first_name": label, "last_name": format!("{label} user{n}")}),
        )
        .await;
        users.push(id_of(&user));
        if n == 0 {
            let token = app.login(&email, &agent_password).await;
            agent = Some(Tenant {
                org_id: admin.org_id,
                user_id: id_of(&user),
                email,
                token,
            });
        }
    }
    let agent = agent.expect("agent");
    let key = post_as(
        app,
        &admin,
        "/api-keys",
        json!({"name": format!("{label} key")}),
    )
    .await;
    let api_key = key["key"].as_str().expect("key").to_string();
    let mut org = Org {
        admin: admin.clone(),
        agent: agent.clone(),
        agent_password,
        ids: HashMap::new(),
        conversations: HashMap::new(),
        api_key,
    };
    for user in users {
        org.add(Users, user);
    }
    org.add(ApiKeys, id_of(&key));
    let mut tags = Vec::new();
    for n in 0..2 {
        let tag = post_as(
            app,
            &admin,
            "/tags",
            json!({"name": format!("{label} tag {n}")}),
        )
        .await;
        tags.push(id_of(&tag));
        org.add(Tags, id_of(&tag));
    }
    for n in 0..2 {
        let contact = post_as(
            app,
            &admin,
            "/contacts",
            json!({"first_name": label, "last_name": format!("{label} contact{n}"),
                   "email": format!("{lower}-contact{n}@example.test"), "phone": "+15550002222",
                   "tag_ids": tags, "owned_by_user_id": agent.user_id,
                   "custom_fields_by_name": {"note": label}}),
        )
        .await;
        org.add(Contacts, id_of(&contact));
    }
    let bot = post_as(
        app,
        &admin,
        "/ai-assistants",
        json!({"name": format!("{label} bot")}),
    )
    .await;
    org.add(AiAssistants, id_of(&bot));
    let pipeline = post_as(
        app,
        &admin,
        "/pipelines",
        json!({"name": format!("{label} pipeline"),
               "stages": [{"name": format!("{label} new")}, {"name": format!("{label} won")}]}),
    )
    .await;
    org.add(Pipelines, id_of(&pipeline));
    let stages: Vec<i64> = pipeline["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(id_of)
        .collect();
    for stage in &stages {
        org.add(Stages, *stage);
    }
    for tenant in [&admin, &agent] {
        let view = post_as(
            app,
            tenant,
            "/conversation-views",
            json!({"name": format!("{label} view"), "query": {"status": "open"}}),
        )
        .await;
        org.add(Views, id_of(&view));
    }
    let reply = post_as(
        app,
        &admin,
        "/conversation-predefined-messages",
        json!({"title": format!("{label} reply"), "content": format!("Hi {{{{contact.first_name}}}}, {label} here"),
               "message_type": "text"}),
    )
    .await;
    org.add(Predefined, id_of(&reply));
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    for (n, channel) in CHANNELS.into_iter().enumerate() {
        let (contact, conversation) = channel_conversation(app, &admin, channel).await;
        patch_as(
            app,
            &admin,
            &format!("/contacts/{contact}"),
            json!({"first_name": label, "last_name": format!("{label} on {channel}"), "tag_ids": [tags[n % 2]]}),
        )
        .await;
        set_conversation_time(app, conversation, "last_inbound_at", Some(hour_ago)).await;
        if n % 2 == 0 {
            patch_as(
                app,
                &admin,
                &format!("/conversations/{conversation}"),
                json!({"assigned_user_id": agent.user_id, "assigned_ai_assistant_id": id_of(&bot),
                       "pipeline_stage_id": stages[0], "unread_count": 2}),
            )
            .await;
        }
        let message = insert_message(app, admin.org_id, conversation, channel, |d| {
            d.text = Some(format!("{label} says hello on {channel}"));
            d.sender_id = Some(contact);
        })
        .await;
        org.add(Contacts, contact);
        org.add(Conversations, conversation);
        org.add(Messages, message);
        org.conversations.insert(channel, conversation);
    }
    let sent = [
        (
            "/conversation-messages-sms".to_string(),
            json!({"conversation_id": org.conversations["sms"], "message_text": format!("{label} by sms")}),
        ),
        (
            "/conversation-messages-playground".to_string(),
            json!({"contact_id": org.ids[&Contacts][0], "sender_type": "contact",
                   "message_text": format!("{label} in the playground")}),
        ),
        (
            "/conversation-messages-transform-outgoing-webchat".to_string(),
            json!({"conversation_id": org.conversations["webchat"], "message_text": format!("{label} on webchat")}),
        ),
        (
            "/conversation-messages-transform-outgoing-whatsapp".to_string(),
            json!({"conversation_id": org.conversations["whatsapp"], "message_text": format!("{label} note"),
                   "message_type": "note"}),
        ),
    ];
    for (path, body) in sent {
        let message = post_as(app, &admin, &path, body).await;
        org.add(Messages, id_of(&message));
        let conversation = message["conversation_id"].as_i64().expect("conversation");
        org.add(Conversations, conversation);
    }
    for path in ["/people", "/people-multi"] {
        let person = post_as(
            app,
            &admin,
            path,
            json!({"name": format!("{label} person"), "age": 33, "created": true}),
        )
        .await;
        org.add(People, id_of(&person));
    }
    org
}

/// What the second organization sees of its own data, through the API and in SQL.
async fn snapshot(app: &TestApp, org: &Org) -> Vec<(String, Value)> {
    let mut paths: Vec<String> = [
        "/users",
        "/api-keys",
        "/contacts",
        "/tags",
        "/ai-assistants",
        "/pipelines",
        "/conversation-views",
        "/conversations",
        "/conversation-predefined-messages",
        "/people-p10",
    ]
    .iter()
    .map(|p| format!("{p}?$limit=50&$sort[id]=1"))
    .collect();
    for channel in CHANNELS {
        paths.push(format!(
            "/conversation-messages-{channel}?conversation_id={}&$limit=50&$sort[id]=1",
            org.conversations[channel]
        ));
    }
    let mut out = Vec::new();
    for path in paths {
        let (status, body) = app.call_as(&org.admin, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path} as B: {body}");
        out.push((path, body));
    }
    for table in [
        "users",
        "api_keys",
        "contacts",
        "contact_tags",
        "tags",
        "ai_assistants",
        "pipelines",
        "pipeline_stages",
        "conversation_views",
        "conversations",
        "messages",
        "predefined_messages",
        "people",
    ] {
        let sql = format!(
            "SELECT COUNT(*) FROM {table} WHERE organization_id = {}",
            org.admin.org_id
        );
        out.push((sql.clone(), json!(sql_i64(app, &sql).await)));
    }
    for (table, column) in [("conversations", "deleted_at"), ("messages", "deleted_at")] {
        let sql = format!(
            "SELECT COUNT(*) FROM {table} WHERE organization_id = {} AND {column} IS NOT NULL",
            org.admin.org_id
        );
        out.push((sql.clone(), json!(sql_i64(app, &sql).await)));
    }
    out
}

// Requests.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Admin,
    Agent,
    Nobody,
    Invalid,
}

enum Body {
    None,
    Json(Value, Option<&'static str>),
    Form(Vec<(String, String)>),
    Raw(Vec<u8>, Option<&'static str>),
}

struct Req {
    method: Method,
    /// Path and query, as sent.
    target: String,
    who: Who,
    headers: Vec<(String, Vec<u8>)>,
    body: Body,
    table: Option<Table>,
    tame: bool,
}

impl Req {
    fn content_type(&self) -> Option<&'static str> {
        match &self.body {
            Body::None => None,
            Body::Json(_, ct) | Body::Raw(_, ct) => *ct,
            Body::Form(_) => Some("application/x-www-form-urlencoded"),
        }
    }
    fn bytes(&self) -> Option<Vec<u8>> {
        match &self.body {
            Body::None => None,
            Body::Json(v, _) => Some(serde_json::to_vec(v).expect("json")),
            Body::Form(pairs) => Some(
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
                    .into_bytes(),
            ),
            Body::Raw(b, _) => Some(b.clone()),
        }
    }
    fn describe(&self) -> String {
        let mut out = format!(
            "{} {} as {:?}{}",
            self.method,
            clip(&self.target),
            self.who,
            if self.tame { " (tame)" } else { "" }
        );
        for (k, v) in &self.headers {
            let _ = write!(out, "\n  header {k}: {}", clip(&String::from_utf8_lossy(v)));
        }
        if let Some(ct) = self.content_type() {
            let _ = write!(out, "\n  content-type: {ct}");
        }
        if let Some(bytes) = self.bytes() {
            let _ = write!(
                out,
                "\n  body: {}",
                clip(&format!("{:?}", String::from_utf8_lossy(&bytes)))
            );
        }
        out
    }
}

fn clip(s: &str) -> String {
    if s.len() <= 1500 {
        return s.to_string();
    }
    let mut end = 1500;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// Percent-encodes all but unreserved characters and `$` (and brackets when `brackets`).
fn enc(s: &str, brackets: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'$' => {
                out.push(b as char)
            }
            b'[' | b']' if brackets => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Decodes `%XX` (lossily), as the server decodes a path's id.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const WORDS: &[&str] = &[
    "alpha",
    "Ada",
    "Zoë",
    "日本語",
    "x y",
    "' OR 1=1 --",
    "%",
    "_",
    "\\",
    "{{contact.first_name}}",
    "{{nope}}",
    "<script>alert(1)</script>",
    "😀",
    "null",
    "0",
    "true",
    "Robert'); DROP TABLE contacts;--",
    "a,b",
    "+15550001111",
    "15550001111",
    "IG-17841",
    "PSID-2718",
    "open",
    "ad",
    " ",
];
const GOOD_TIMES: &[&str] = &[
    "2026-03-02T09:00:00.000Z",
    "2026-03-02T09:00:00Z",
    "2030-01-01T00:00:00.000Z",
    "2020-01-01",
];
const BAD_TIMES: &[&str] = &[
    "2026-13-45T99:00:00Z",
    "now",
    "0",
    "-1",
    "9999999-01-01T00:00:00Z",
    "2026-03-02T09:00:00+25:00",
    "1e10",
    "+275760-09-13T00:00:00.000Z",
    "2026-02-30T00:00:00Z",
];
/// Odd path ids (already as they go in the URL).
const ODD_IDS: &[&str] = &[
    "1.0",
    "-1",
    "%00",
    "0",
    "%FF%FE",
    "abc",
    "%201",
    "1%20",
    "+1",
    "1e3",
    "null",
    "%2F1",
    "%27%20OR%201=1",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "99999999999999999999999",
    "%E2%80%AE1",
    "0x10",
    "%",
    "%zz",
    "1;2",
    "[1]",
];
const RAW_BODIES: &[&[u8]] = &[
    b"{",
    b"{\"name\":",
    b"{'name': 1}",
    b"[1,2",
    b"\xff\xfe\x00\x01",
    b"{\"name\":\"\xff\xfe\"}",
    b"{\"name\":\"\\ud800\"}",
    b"{\"name\":\"a\\u0000b\"}",
    b"1e999999",
    b"{\"a\":1}{\"b\":2}",
    b"\"just a string\"",
    b"null",
    b"true",
    b"123",
    b"[]",
    b"[{}]",
    b"name=%FF%FE",
    b"name=\xff\xfe&x=1",
    b"name[=1&[a]=2&a[b]]=3",
    b"\x00\x00\x00",
    b"{\"name\": NaN}",
    b"{\"name\": 1, \"name\": 2}",
];
const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    None,
    Some("application/json; charset=utf-16"),
    Some("multipart/form-data; boundary=x"),
];

struct Gen<'a> {
    rng: Rng,
    services: &'a [Svc],
    a: &'a Org,
    /// A's ids as the run learns them.
    pool: HashMap<Table, Vec<i64>>,
    b: &'a Org,
    /// This request is plausible: good values, known keys, JSON (so that many succeed).
    tame: bool,
}

impl Gen<'_> {
    fn word(&mut self) -> String {
        self.rng.pick(WORDS).to_string()
    }

    fn huge(&mut self) -> String {
        let n = self.rng.range(500, 6000) as usize;
        let unit = self.word();
        unit.repeat(n / unit.len().max(1) + 1)
    }

    fn a_id(&mut self, table: Table) -> Option<i64> {
        let list = self.pool.get(&table)?;
        if list.is_empty() {
            return None;
        }
        Some(list[self.rng.below(list.len())])
    }

    fn b_id(&mut self, table: Table) -> i64 {
        match self.b.ids.get(&table) {
            Some(list) if !list.is_empty() => list[self.rng.below(list.len())],
            _ => 1,
        }
    }

    /// Any record id of the second organization.
    fn b_any(&mut self) -> i64 {
        let tables: Vec<Table> = self.b.ids.keys().copied().collect();
        let mut tables = tables;
        tables.sort();
        let table = *self.rng.pick(&tables);
        self.b_id(table)
    }

    fn ref_id(&mut self, table: Table) -> i64 {
        let roll = self.rng.below(10);
        if roll < if self.tame { 8 } else { 6 }
            && let Some(id) = self.a_id(table)
        {
            return id;
        }
        if roll < 9 {
            return self.b_id(table);
        }
        *self.rng.pick(&[999_999_999, 0, -1, i64::MAX])
    }

    fn conv_on(&mut self, channel: &str) -> i64 {
        match self.rng.below(if self.tame { 7 } else { 10 }) {
            0..=5 => self.a.conversations[channel],
            6 => {
                let other = *self.rng.pick(&CHANNELS);
                self.a.conversations[other]
            }
            7 | 8 => self.b.conversations[channel],
            _ => self.ref_id(Table::Conversations),
        }
    }

    fn file_key(&mut self) -> String {
        let (org, conv) = if self.rng.chance(60) {
            let ch = *self.rng.pick(&CHANNELS);
            (self.a.admin.org_id, self.a.conversations[ch])
        } else {
            let ch = *self.rng.pick(&CHANNELS);
            (self.b.admin.org_id, self.b.conversations[ch])
        };
        match self.rng.below(6) {
            0 => format!("org/{org}/conversations/{conv}/photo.png"),
            1 => format!("org/{org}/conversations/{conv}/../../x.png"),
            2 => format!("s3://bucket/org/{org}/conversations/{conv}/doc.pdf"),
            3 => format!("org/{org}/reply.png"),
            4 => "https://example.test/a.png".to_string(),
            _ => format!("org/{org}/conversations/{conv}//x"),
        }
    }

    /// A JSON value with no `organization_id` key anywhere (free JSON fields are stored as given).
    fn blob(&mut self, depth: usize) -> Value {
        match self.rng.below(if depth == 0 { 4 } else { 7 }) {
            0 => json!(self.word()),
            1 => json!(self.rng.range(-5, 1000)),
            2 => Value::Null,
            3 => json!(self.rng.chance(50)),
            4 => Value::Array(
                (0..self.rng.below(4))
                    .map(|_| self.blob(depth - 1))
                    .collect(),
            ),
            _ => {
                let mut map = Map::new();
                for _ in 0..self.rng.below(4) {
                    let key = self
                        .rng
                        .pick(&["note", "type", "text", "a", "$in", "", "ü"])
                        .to_string();
                    map.insert(key, self.blob(depth - 1));
                }
                Value::Object(map)
            }
        }
    }

    fn deep(&mut self, depth: usize) -> Value {
        let mut v = json!(1);
        let objects = self.rng.chance(50);
        for _ in 0..depth {
            v = if objects {
                json!({ "a": v })
            } else {
                json!([v])
            };
        }
        v
    }

    fn view_query(&mut self) -> Value {
        let b_org = self.b.admin.org_id;
        match self.rng.below(12) {
            0 => json!({"status": "open"}),
            1 => json!({"assigned_user_id": self.ref_id(Table::Users)}),
            2 => json!({"organization_id": b_org}),
            3 => json!({"$or": [{"status": "closed"}, {"organization_id": b_org}]}),
            4 => json!({"view_id": self.ref_id(Table::Views)}),
            5 => json!({"searchTerm": self.word()}),
            6 => json!({"$limit": 5, "$sort": {"id": -1}}),
            7 => json!({"tag_id": self.ref_id(Table::Tags)}),
            8 => {
                json!({"pipeline_stage_id": {"$in": [self.ref_id(Table::Stages), self.ref_id(Table::Stages)]}})
            }
            9 => json!({"channel": {"$nin": ["sms"]}, "waitingResponseOnly": true}),
            10 => json!({"$and": [{"$or": [{"status": "open"}]}], "unknown": 1}),
            _ => self.blob(3),
        }
    }

    fn good(&mut self, ty: Ty) -> Value {
        match ty {
            Ty::Org => json!(self.a.admin.org_id),
            Ty::Int => json!(self.rng.range(0, 100)),
            Ty::Num => {
                if self.rng.chance(50) {
                    json!(self.rng.range(0, 120))
                } else {
                    json!(self.rng.range(0, 1000) as f64 / 7.0)
                }
            }
            Ty::Str => json!(self.word()),
            Ty::Email => json!(format!("gen{}@example.test", self.rng.next() % 1_000_000)),
            Ty::Password => json!(format!("password-{}", self.rng.next() % 1000)),
            Ty::Bool => json!(self.rng.chance(50)),
            Ty::Time => json!(self.rng.pick(GOOD_TIMES)),
            Ty::Json => self.blob(3),
            Ty::Enum(values) => json!(self.rng.pick(values)),
            Ty::Ref(table) => json!(self.ref_id(table)),
            Ty::RefList(table) => Value::Array(
                (0..self.rng.below(4))
                    .map(|_| json!(self.ref_id(table)))
                    .collect(),
            ),
            Ty::StageList => {
                let stages = (0..self.rng.below(4))
                    .map(|_| {
                        let name = self.word();
                        if self.rng.chance(40) {
                            json!({"name": name, "id": self.ref_id(Table::Stages)})
                        } else {
                            json!({ "name": name })
                        }
                    })
                    .collect();
                Value::Array(stages)
            }
            Ty::ViewQuery => self.view_query(),
            Ty::Vars => {
                let mut map = Map::new();
                for _ in 0..self.rng.below(3) {
                    map.insert(self.word(), json!(self.word()));
                }
                Value::Object(map)
            }
            Ty::ConvOn(channel) => json!(self.conv_on(channel)),
            Ty::FileKey => json!(self.file_key()),
        }
    }

    fn bad(&mut self, ty: Ty) -> Value {
        match self.rng.below(19) {
            0 => Value::Null,
            1 => json!("abc"),
            2 => json!(1.5),
            3 => json!(-1),
            4 => json!(true),
            5 => json!([]),
            6 => json!({}),
            7 => json!([self.good(ty), self.good(ty)]),
            8 => json!({"$in": [1, 2]}),
            9 => json!(self.huge()),
            10 => json!("a\u{0}b"),
            11 => {
                let depth = self.rng.range(10, 300) as usize;
                self.deep(depth)
            }
            12 => json!(self.b_any()),
            13 => json!(""),
            14 => self
                .rng
                .pick(&[
                    json!(u64::MAX),
                    json!(1e300),
                    json!(-1e-300),
                    json!(i64::MIN),
                ])
                .clone(),
            15 => json!(" 12 "),
            16 => self
                .rng
                .pick(&[json!(2.0), json!(-0.0), json!(1e3), json!(5e-324)])
                .clone(),
            17 => json!(self.rng.pick(&["12", "1.0", "0x1f", "+7", "1_000"])),
            _ => json!(self.rng.pick(BAD_TIMES)),
        }
    }

    fn value(&mut self, ty: Ty) -> Value {
        if self.tame || self.rng.chance(70) {
            self.good(ty)
        } else {
            self.bad(ty)
        }
    }

    /// A query value, encoded.
    fn query_value(&mut self, ty: Ty) -> String {
        if !self.tame && self.rng.chance(6) {
            return self
                .rng
                .pick(&[
                    "%00",
                    "%FF%FE",
                    "%",
                    "%zz",
                    "a%00b",
                    "%C0%80",
                    "%ED%A0%80",
                    "%E2%80%AE",
                ])
                .to_string();
        }
        let text = if self.tame || self.rng.chance(70) {
            match ty {
                Ty::Org => self.a.admin.org_id.to_string(),
                Ty::Int => self.rng.range(0, 100).to_string(),
                Ty::Num => format!("{}", self.rng.range(0, 1000) as f64 / 4.0),
                Ty::Bool => self.rng.pick(&["true", "false"]).to_string(),
                Ty::Time => self.rng.pick(GOOD_TIMES).to_string(),
                Ty::Enum(values) => self.rng.pick(values).to_string(),
                Ty::Ref(table) => self.ref_id(table).to_string(),
                Ty::RefList(table) => self.ref_id(table).to_string(),
                Ty::ConvOn(channel) => self.conv_on(channel).to_string(),
                Ty::FileKey => self.file_key(),
                Ty::Email => format!("gen{}@example.test", self.rng.below(5)),
                _ => self.word(),
            }
        } else {
            match self.rng.below(15) {
                0 => "abc".into(),
                1 => "1.5".into(),
                2 => "-1".into(),
                3 => String::new(),
                4 => "null".into(),
                5 => "9223372036854775808".into(),
                6 => "1e3".into(),
                7 => " 5".into(),
                8 => self.b_any().to_string(),
                9 => self.huge(),
                10 => "true".into(),
                11 => self.rng.pick(BAD_TIMES).to_string(),
                12 => "[object Object]".into(),
                13 => self
                    .rng
                    .word(&["1.0", "01", "+1", "0x1", "1e0", "-0", "NaN", "Infinity"])
                    .into(),
                _ => "ORG".into(),
            }
        };
        enc(&text, false)
    }

    fn svc_query_fields(svc: &Svc) -> Vec<F> {
        svc.fields.iter().filter(|f| f.query).copied().collect()
    }

    fn field_name(&mut self, fields: &[F]) -> (String, Ty) {
        if fields.is_empty() || (!self.tame && self.rng.chance(8)) {
            let name = self.rng.pick(&[
                "foo",
                "password_hash",
                "key_hash",
                "deleted_at",
                "organization",
                "contact.first_name",
                "$where",
                "__proto__",
                "constructor",
                "id\"",
                "name;",
                "",
                "Name",
            ]);
            return (name.to_string(), Ty::Str);
        }
        let f = *self.rng.pick(fields);
        (f.name.to_string(), f.ty)
    }

    fn op(&mut self, ty: Ty) -> &'static str {
        if self.tame {
            return match ty {
                Ty::Str | Ty::Email => self
                    .rng
                    .word(&["$in", "$nin", "$ne", "$like", "$ilike", "$notlike"]),
                Ty::Int | Ty::Num | Ty::Time | Ty::Ref(_) | Ty::ConvOn(_) => self
                    .rng
                    .word(&["$in", "$nin", "$lt", "$lte", "$gt", "$gte", "$ne"]),
                _ => self.rng.word(&["$in", "$nin", "$ne"]),
            };
        }
        self.rng.word(&[
            "$in", "$nin", "$lt", "$lte", "$gt", "$gte", "$ne", "$like", "$ilike", "$notlike",
            "$in", "$ne", "$like", "$eq", "$regex", "$exists", "$or", "$limit", "",
        ])
    }

    /// `field…=value` pairs for one condition under `prefix` (e.g. `$or[0]`).
    fn condition(&mut self, fields: &[F], prefix: &str, out: &mut Vec<(String, String)>) {
        let (name, ty) = self.field_name(fields);
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}[{name}]")
        };
        if self.rng.chance(45) {
            out.push((key, self.query_value(ty)));
            return;
        }
        let op = self.op(ty);
        match op {
            "$in" | "$nin" => match self.rng.below(if self.tame { 2 } else { 4 }) {
                0 => {
                    for _ in 0..self.rng.range(1, 3) {
                        out.push((format!("{key}[{op}][]"), self.query_value(ty)));
                    }
                }
                1 => {
                    for i in 0..self.rng.range(1, 3) {
                        out.push((format!("{key}[{op}][{i}]"), self.query_value(ty)));
                    }
                }
                2 => out.push((format!("{key}[{op}]"), self.query_value(ty))),
                _ => {
                    let n = if self.rng.chance(50) { 600 } else { 20 };
                    for _ in 0..n {
                        out.push((
                            format!("{key}[{op}][]"),
                            self.rng.range(0, 99_999).to_string(),
                        ));
                    }
                }
            },
            _ => out.push((format!("{key}[{op}]"), self.query_value(ty))),
        }
    }

    fn query(&mut self, svc: &Svc, method: &Method) -> Vec<(String, String)> {
        let fields = Self::svc_query_fields(svc);
        let mut out = Vec::new();
        let b_org = self.b.admin.org_id;
        let a_org = self.a.admin.org_id;
        if let Kind::Messages(channel) = svc.kind
            && *method == Method::GET
            && (self.tame || self.rng.chance(75))
        {
            out.push(("conversation_id".into(), self.conv_on(channel).to_string()));
        }
        // The virtual filters, which read other tables.
        if matches!(svc.path.as_str(), "/conversations" | "/contacts")
            && *method == Method::GET
            && self.rng.chance(40)
        {
            let pair = match self.rng.below(if svc.path == "/contacts" { 1 } else { 5 }) {
                0 => ("tag_id".to_string(), self.query_value(Ty::Ref(Table::Tags))),
                1 => (
                    "view_id".to_string(),
                    self.query_value(Ty::Ref(Table::Views)),
                ),
                2 => {
                    let term = if self.rng.chance(70) {
                        self.rng
                            .word(&["ada", "orga", "lovelace", "+1555", "1555000", "ex", "%_"])
                            .to_string()
                    } else {
                        self.word()
                    };
                    ("searchTerm".to_string(), enc(&term, false))
                }
                3 => (
                    "waitingResponseOnly".to_string(),
                    self.query_value(Ty::Bool),
                ),
                _ => (
                    "$or[0][tag_id]".to_string(),
                    self.query_value(Ty::Ref(Table::Tags)),
                ),
            };
            out.push(pair);
        }
        if let Kind::Outgoing(_) = svc.kind
            && self.rng.chance(30)
        {
            let v = self
                .rng
                .pick(&["true", "false", "maybe", "1", ""])
                .to_string();
            out.push(("$preview".into(), v));
        }
        // A plausible write names its record by id alone (a query would narrow it).
        let n = if self.rng.chance(25) || (self.tame && *method != Method::GET) {
            0
        } else {
            self.rng.range(1, 5)
        };
        for _ in 0..n {
            let roll = if self.tame {
                self.rng.below(74)
            } else {
                self.rng.below(100)
            };
            match roll {
                0..=39 => self.condition(&fields, "", &mut out),
                40..=47 => {
                    let top = *self.rng.pick(&["$or", "$and"]);
                    for i in 0..self.rng.range(1, 3) {
                        let prefix = if self.rng.chance(25) {
                            let inner = *self.rng.pick(&["$or", "$and"]);
                            format!("{top}[{i}][{inner}][0]")
                        } else {
                            format!("{top}[{i}]")
                        };
                        self.condition(&fields, &prefix, &mut out);
                    }
                    if self.rng.chance(10) {
                        out.push((top.into(), self.word()));
                    }
                }
                48..=54 if self.tame => {
                    let v = self.rng.pick(&["0", "1", "10", "50", "3"]).to_string();
                    out.push(("$limit".into(), v));
                }
                55..=60 if self.tame => {
                    let v = self.rng.pick(&["0", "1", "5", "100"]).to_string();
                    out.push(("$skip".into(), v));
                }
                61..=67 if self.tame => {
                    let (name, _) = self.field_name(&fields);
                    let dir = self.rng.pick(&["1", "-1"]).to_string();
                    out.push((format!("$sort[{name}]"), dir));
                }
                68..=73 if self.tame => {
                    for _ in 0..self.rng.range(1, 3) {
                        let name = if self.rng.chance(20) {
                            // Computed and embedded fields.
                            self.rng
                                .word(&["contact", "tag_ids", "stages", "id", "key"])
                                .to_string()
                        } else {
                            self.field_name(&fields).0
                        };
                        out.push(("$select[]".to_string(), name));
                    }
                }
                48..=54 => {
                    let v = self
                        .rng
                        .pick(&[
                            "0",
                            "1",
                            "10",
                            "50",
                            "51",
                            "1000",
                            "-1",
                            "abc",
                            "1.5",
                            "99999999999999999999",
                            "",
                            "1e2",
                        ])
                        .to_string();
                    out.push(("$limit".into(), v));
                }
                55..=60 => {
                    let v = self
                        .rng
                        .pick(&[
                            "0",
                            "5",
                            "100000",
                            "-1",
                            "abc",
                            "9223372036854775807",
                            "1.5",
                            "18446744073709551616",
                        ])
                        .to_string();
                    out.push(("$skip".into(), v));
                }
                61..=67 => {
                    let (name, _) = self.field_name(&fields);
                    let dir = self
                        .rng
                        .pick(&["1", "-1", "0", "2", "abc", "", "asc"])
                        .to_string();
                    if self.rng.chance(85) {
                        out.push((format!("$sort[{name}]"), dir));
                    } else {
                        out.push(("$sort".into(), name));
                    }
                }
                68..=73 => {
                    for _ in 0..self.rng.range(1, 3) {
                        let (name, _) = self.field_name(&fields);
                        let key =
                            self.rng
                                .pick(&["$select[]", "$select", "$select[0]", "$select[$in]"]);
                        out.push((key.to_string(), enc(&name, false)));
                    }
                }
                74..=77 => {
                    let pair = match self.rng.below(6) {
                        0 => ("organization_id".into(), b_org.to_string()),
                        1 => ("organization_id[$in][]".into(), b_org.to_string()),
                        2 => ("organization_id[$ne]".into(), a_org.to_string()),
                        3 => ("$or[0][organization_id]".into(), b_org.to_string()),
                        4 => ("organization_id".into(), a_org.to_string()),
                        _ => ("organization_id[$gt]".into(), "0".into()),
                    };
                    out.push(pair);
                }
                78..=81 => {
                    // A key given twice, or as a value and as an operator object.
                    let (name, ty) = self.field_name(&fields);
                    out.push((name.clone(), self.query_value(ty)));
                    if self.rng.chance(50) {
                        out.push((name, self.query_value(ty)));
                    } else {
                        let op = self.op(ty);
                        out.push((format!("{name}[{op}]"), self.query_value(ty)));
                    }
                }
                82..=84 => {
                    let key = self
                        .rng
                        .pick(&[
                            "a[b][c][d][e][f][g][h]",
                            "name[[",
                            "name]",
                            "name[",
                            "[x]",
                            "name[][]",
                            "$or[999999999][name]",
                            "$or[-1][name]",
                            "$and[0][$and][0][$and][0][$and][0][$and][0][name]",
                            "name[$in][$in][]",
                        ])
                        .to_string();
                    out.push((key, self.query_value(Ty::Str)));
                }
                85..=87 => {
                    let (name, _) = self.field_name(&fields);
                    let huge = self.huge();
                    out.push((name, enc(&huge, false)));
                }
                88..=89 => {
                    let raw = self
                        .rng
                        .pick(&[
                            "%00=1",
                            "name%00=1",
                            "%FF%FE=%FF%FE",
                            "=1",
                            "&&",
                            "name",
                            "%5B%5D=1",
                        ])
                        .to_string();
                    out.push((raw, String::from("\u{1}")));
                }
                90 => {
                    let n = if self.rng.chance(50) { 1001 } else { 300 };
                    for i in 0..n {
                        out.push((format!("x{i}"), "1".into()));
                    }
                }
                _ => {
                    let key =
                        self.rng
                            .pick(&["foo", "$foo", "$populate", "$eager", "strategy", "id"]);
                    out.push((key.to_string(), self.word()));
                }
            }
        }
        out
    }

    fn body_for(&mut self, svc: &Svc, method: &Method) -> Value {
        let mut map = Map::new();
        match svc.kind {
            Kind::Auth => {
                match self.rng.below(8) {
                    0 => {
                        map.insert("strategy".into(), json!("local"));
                        map.insert("email".into(), json!(self.a.admin.email));
                        map.insert("password".into(), json!("admin-password"));
                    }
                    1 => {
                        map.insert("strategy".into(), json!("local"));
                        map.insert(
                            "email".into(),
                            json!(format!("nobody{}@example.test", self.rng.below(3))),
                        );
                        map.insert("password".into(), json!("wrong-password"));
                    }
                    2 => {
                        map.insert("strategy".into(), json!("jwt"));
                        map.insert("accessToken".into(), json!(self.a.agent.token));
                    }
                    3 => {
                        map.insert("strategy".into(), json!("jwt"));
                        map.insert("accessToken".into(), json!(self.word()));
                    }
                    _ => {
                        for f in &svc.fields {
                            if self.rng.chance(60) {
                                let v = self.value(f.ty);
                                map.insert(f.name.into(), v);
                            }
                        }
                        // Never a real password of A's users: a handful of failing logins only.
                        if map.get("password") == Some(&json!("admin-password")) {
                            map.remove("password");
                        }
                    }
                }
                return Value::Object(map);
            }
            Kind::Messages(_) | Kind::Outgoing(_) => {
                let text_len = self.rng.pick(&[0usize, 0, 0, 0, 10_001, 20_000]);
                if *text_len > 0 && !self.tame {
                    map.insert("message_text".into(), json!("x".repeat(*text_len)));
                }
            }
            Kind::Crud => {}
        }
        // A plausible body names only what the path accepts.
        let accepted: Option<&[&str]> = match svc.kind {
            _ if !self.tame => None,
            Kind::Messages("sms") => Some(&[
                "conversation_id",
                "message_text",
                "message_type",
                "send_style",
                "reply_to_message_id",
            ]),
            Kind::Messages(_) => Some(&[
                "contact_id",
                "message_text",
                "sender_type",
                "predefined_message_id",
                "variables",
            ]),
            Kind::Outgoing(_) => Some(&[
                "conversation_id",
                "message_text",
                "message_type",
                "messageData",
                "predefined_message_id",
                "variables",
                "human_agent",
            ]),
            _ => None,
        };
        let writable: Vec<F> = svc
            .fields
            .iter()
            .filter(|f| f.write && accepted.is_none_or(|names| names.contains(&f.name)))
            .copied()
            .collect();
        let create = *method == Method::POST;
        for f in &writable {
            let wanted = match (create, f.name) {
                (true, "name" | "title" | "content" | "email" | "password" | "query") => 85,
                (_, "conversation_id" | "contact_id" | "message_text") => 85,
                _ if self.tame => 20,
                _ => 35,
            };
            if self.rng.chance(wanted) && !map.contains_key(f.name) {
                let v = match f.name {
                    "message_type" if self.tame => json!(self.rng.pick(&["text", "note"])),
                    _ => self.value(f.ty),
                };
                map.insert(f.name.into(), v);
            }
        }
        if self.tame {
            return Value::Object(map);
        }
        if self.rng.chance(12) {
            let name = self.rng.pick(&[
                "colour",
                "id",
                "participants",
                "metadata",
                "last_message_preview",
                "sender_id",
                "stages",
                "tag_ids",
                "password_hash",
                "key_hash",
                "deleted_at",
                "created_by_user_id",
                "owner_user_id",
                "$in",
                "",
                "organization",
            ]);
            let v = self.blob(2);
            map.insert(name.to_string(), v);
        }
        if self.rng.chance(8) {
            let v = match self.rng.below(4) {
                0 => json!(self.b.admin.org_id),
                1 => json!(self.a.admin.org_id),
                2 => json!(self.b.admin.org_id.to_string()),
                _ => Value::Null,
            };
            map.insert("organization_id".into(), v);
        }
        if self.rng.chance(4) && !writable.is_empty() {
            let f = *self.rng.pick(&writable);
            map.insert(f.name.into(), json!(format!("{}\u{0}", self.word())));
        }
        let body = Value::Object(map);
        match self.rng.below(100) {
            0..=3 => Value::Array(vec![body.clone(), body]),
            4..=5 => self.bad(Ty::Json),
            6 => {
                let depth = self.rng.range(100, 200) as usize;
                self.deep(depth)
            }
            _ => body,
        }
    }

    fn form(&mut self, value: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
        let bracket = |rng: &mut Rng, key: &str| -> String {
            if rng.chance(70) {
                key.to_string()
            } else {
                enc(key, false)
            }
        };
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        enc(k, false)
                    } else {
                        format!("{prefix}[{}]", enc(k, false))
                    };
                    self.form(v, &key, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    let key = if self.rng.chance(50) {
                        format!("{prefix}[]")
                    } else {
                        format!("{prefix}[{i}]")
                    };
                    self.form(v, &key, out);
                }
            }
            Value::String(s) => {
                let key = bracket(&mut self.rng, prefix);
                out.push((key, enc(s, false)))
            }
            Value::Null => {
                let key = bracket(&mut self.rng, prefix);
                out.push((key, String::new()))
            }
            other => {
                let key = bracket(&mut self.rng, prefix);
                out.push((key, enc(&other.to_string(), false)))
            }
        }
    }

    fn encode_body(&mut self, value: Value) -> Body {
        if self.tame {
            return Body::Json(value, Some("application/json"));
        }
        match self.rng.below(100) {
            0..=71 => Body::Json(value, Some("application/json")),
            72..=77 => Body::Json(value, *self.rng.pick(CONTENT_TYPES)),
            78..=90 => {
                let mut pairs = Vec::new();
                let prefix = if value.is_object() { "" } else { "data" };
                self.form(&value, prefix, &mut pairs);
                Body::Form(pairs)
            }
            _ => {
                let raw = if self.rng.chance(15) {
                    let mut big = b"{\"name\":\"".to_vec();
                    big.extend(std::iter::repeat_n(b'x', 70 * 1024));
                    big.extend_from_slice(b"\"}");
                    big
                } else {
                    self.rng.pick(RAW_BODIES).to_vec()
                };
                Body::Raw(raw, *self.rng.pick(CONTENT_TYPES))
            }
        }
    }

    fn path_id(&mut self, table: Option<Table>) -> String {
        let roll = self.rng.below(100);
        let a_share = if self.tame { 85 } else { 55 };
        if let Some(table) = table {
            if roll < a_share
                && let Some(id) = self.a_id(table)
            {
                return id.to_string();
            }
            if roll < a_share + 17 {
                return self.b_id(table).to_string();
            }
        }
        if roll < 80 {
            return self.rng.pick(&["999999999", "0", "2147483648"]).to_string();
        }
        if roll < 83 {
            return "9".repeat(self.rng.range(100, 4000) as usize);
        }
        self.rng.pick(ODD_IDS).to_string()
    }

    /// A method the path offers.
    fn tame_method(&mut self, svc: &Svc, with_id: bool) -> Method {
        let creates = matches!(svc.kind, Kind::Messages("sms" | "playground"));
        match (svc.kind, with_id) {
            (Kind::Outgoing(_), _) | (Kind::Auth, _) => Method::POST,
            (Kind::Messages(_), true) => self.rng.pick(&[Method::GET, Method::DELETE]).clone(),
            (Kind::Messages(_), false) if creates => {
                self.rng.pick(&[Method::GET, Method::POST]).clone()
            }
            (Kind::Messages(_), false) => Method::GET,
            (Kind::Crud, false) => self
                .rng
                .pick(&[Method::GET, Method::GET, Method::POST])
                .clone(),
            (Kind::Crud, true) => {
                let put = matches!(svc.path.as_str(), "/tags" | "/ai-assistants")
                    || svc.path.starts_with("/people");
                match self.rng.below(10) {
                    0..=3 => Method::GET,
                    4..=6 => Method::PATCH,
                    7 if put => Method::PUT,
                    _ => Method::DELETE,
                }
            }
        }
    }

    /// Mostly the methods a path offers (find and create without an id, the others with one).
    fn method(&mut self, with_id: bool) -> Method {
        if self.tame || self.rng.chance(75) {
            return if with_id {
                self.rng
                    .pick(&[
                        Method::GET,
                        Method::PATCH,
                        Method::PATCH,
                        Method::PUT,
                        Method::DELETE,
                    ])
                    .clone()
            } else {
                self.rng
                    .pick(&[Method::GET, Method::GET, Method::POST])
                    .clone()
            };
        }
        match self.rng.below(100) {
            0..=29 => Method::GET,
            30..=49 => Method::POST,
            50..=68 => Method::PATCH,
            69..=75 => Method::PUT,
            76..=91 => Method::DELETE,
            92..=94 => Method::HEAD,
            95 => Method::OPTIONS,
            96 => Method::TRACE,
            97 => Method::from_bytes(b"PROPFIND").expect("method"),
            98 => Method::from_bytes(b"FOO").expect("method"),
            _ => Method::CONNECT,
        }
    }

    fn request(&mut self) -> Req {
        let who = match self.rng.below(100) {
            0..=56 => Who::Admin,
            57..=86 => Who::Agent,
            87..=92 => Who::Nobody,
            _ => Who::Invalid,
        };
        self.tame = self.rng.chance(50);
        let mut headers = Vec::new();
        // Odd paths now and then: unknown, nested, or near-misses.
        if self.rng.chance(3) {
            let path = self
                .rng
                .pick(&[
                    "/",
                    "/nope",
                    "/users/1/2",
                    "/healthz",
                    "/readyz",
                    "//users",
                    "/users/",
                    "/Users",
                    "/conversation-messages-",
                    "/conversation-messages-telegram",
                    "/people-p2",
                    "/authentication/x/y",
                    "/users%2F1",
                    "/%FF",
                    "/%00",
                    "/conversations/1/messages",
                    "/api-keys/../users",
                ])
                .to_string();
            return Req {
                method: self.method(false),
                target: path,
                who,
                headers,
                body: Body::None,
                table: None,
                tame: false,
            };
        }
        let services = self.services;
        // The authentication path less often: a handful of failing logins only.
        let svc = loop {
            let svc = self.rng.pick(services);
            if svc.kind != Kind::Auth || self.rng.chance(25) {
                break svc;
            }
        };
        let with_id = svc.kind != Kind::Auth && self.rng.chance(45)
            || svc.kind == Kind::Auth && self.rng.chance(10);
        let mut method = if self.tame {
            self.tame_method(svc, with_id)
        } else {
            self.method(with_id)
        };
        let mut id = with_id.then(|| self.path_id(svc.table));
        // A's admin and agent stay themselves: no removal, no role or password change.
        let protected = svc.table == Some(Table::Users)
            && id.as_deref().is_some_and(|id| {
                percent_decoded(id)
                    .trim()
                    .parse::<i64>()
                    .is_ok_and(|n| n == self.a.admin.user_id || n == self.a.agent.user_id)
            });
        if protected && method == Method::DELETE {
            id = Some("999999999".into());
        }
        let mut target = svc.path.clone();
        if let Some(id) = &id {
            target.push('/');
            target.push_str(id);
        }
        let query = self.query(svc, &method);
        if !query.is_empty() {
            let joined: Vec<String> = query
                .iter()
                .map(|(k, v)| {
                    let k = if self.rng.chance(20) {
                        k.replace('[', "%5B").replace(']', "%5D")
                    } else {
                        k.clone()
                    };
                    if v == "\u{1}" { k } else { format!("{k}={v}") }
                })
                .collect();
            target.push('?');
            target.push_str(&joined.join("&"));
        }
        let body = if matches!(method, Method::POST | Method::PUT | Method::PATCH)
            || (method == Method::DELETE && self.rng.chance(5))
        {
            let mut value = self.body_for(svc, &method);
            if protected && let Some(map) = value.as_object_mut() {
                map.remove("role");
                map.remove("password");
            }
            let body = self.encode_body(value);
            match body {
                Body::Form(pairs) if protected => Body::Form(
                    pairs
                        .into_iter()
                        .filter(|(k, _)| !k.starts_with("role") && !k.starts_with("password"))
                        .collect(),
                ),
                other => other,
            }
        } else {
            Body::None
        };
        if (matches!(svc.kind, Kind::Messages(_) | Kind::Outgoing(_))
            || svc.path == "/conversation-predefined-messages")
            && self.rng.chance(20)
        {
            {
                let key: Vec<u8> = match self.rng.below(5) {
                    0 => format!("key-{}", self.rng.below(20)).into_bytes(),
                    1 => "k".repeat(300).into_bytes(),
                    2 => b"caf\xc3\xa9 key".to_vec(),
                    3 => b" ".to_vec(),
                    _ => b"\xff\xfe".to_vec(),
                };
                headers.push(("idempotency-key".to_string(), key));
            }
        }
        if self.rng.chance(2) {
            headers.push(("x-service-method".to_string(), b"find".to_vec()));
        }
        if !self.tame && self.rng.chance(4) {
            let (name, value): (&str, &[u8]) = *self.rng.pick(&[
                ("content-encoding", b"gzip".as_slice()),
                ("content-encoding", b"br"),
                ("content-encoding", b"deflate"),
                ("content-encoding", b"zstd"),
                ("content-encoding", b"x-unknown"),
                ("accept-encoding", b"gzip, br"),
                ("accept", b"text/html"),
                ("x-forwarded-for", b"not an address"),
                ("x-real-ip", b"::1"),
                ("origin", b"https://evil.test"),
                ("content-length-extra", b"1"),
            ]);
            headers.push((name.to_string(), value.to_vec()));
        }
        if self.rng.chance(1) {
            method = Method::POST;
            headers.push(("x-http-method-override".to_string(), b"DELETE".to_vec()));
        }
        if who == Who::Invalid {
            let mut bad_token = self.a.admin.token.clone().into_bytes();
            let last = bad_token.len() - 2;
            bad_token[last] = if bad_token[last] == b'A' { b'B' } else { b'A' };
            let (name, value): (&str, Vec<u8>) = match self.rng.below(8) {
                0 => ("authorization", b"Bearer garbage".to_vec()),
                1 => ("authorization", b"Basic Zm9vOmJhcg==".to_vec()),
                2 => ("authorization", [b"Bearer ".to_vec(), bad_token].concat()),
                3 => ("x-api-key", b"ik_nope".to_vec()),
                4 => ("authorization", b"Bearer".to_vec()),
                5 => (
                    "authorization",
                    format!("Bearer {}", "a".repeat(5000)).into_bytes(),
                ),
                6 => ("authorization", b"Bearer \xff\xfe".to_vec()),
                _ => (
                    "x-api-key",
                    self.a.api_key.as_bytes()[..self.a.api_key.len() - 1].to_vec(),
                ),
            };
            headers.push((name.to_string(), value));
        }
        Req {
            method,
            target,
            who,
            headers,
            body,
            table: svc.table,
            tame: self.tame,
        }
    }
}

// Checks on answers.

/// JSON paths where `organization_id` is `org`.
fn org_ids(value: &Value, org: i64, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}.{k}");
                if k == "organization_id"
                    && (v.as_i64() == Some(org) || v.as_str() == Some(org.to_string().as_str()))
                {
                    out.push(here.clone());
                }
                org_ids(v, org, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                org_ids(v, org, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The records of an answer: a page's data, an array, or the record itself.
fn answer_records(value: &Value) -> Vec<&Value> {
    if let Some(data) = value.get("data").and_then(Value::as_array)
        && value.get("total").is_some()
    {
        return data.iter().collect();
    }
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![value],
        _ => Vec::new(),
    }
}

struct Checker {
    markers: Vec<String>,
    b_org: i64,
    b_ids: HashMap<Table, HashSet<i64>>,
}

impl Checker {
    fn problems(&self, req: &Req, status: u16, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        if status >= 500 {
            out.push(format!("status {status}"));
        }
        let lower = text.to_lowercase();
        for marker in &self.markers {
            if lower.contains(marker.as_str()) {
                out.push(format!("the answer holds B's marker {}", clip(marker)));
            }
        }
        if (200..300).contains(&status)
            && let Ok(json) = serde_json::from_str::<Value>(text)
        {
            let mut found = Vec::new();
            org_ids(&json, self.b_org, "$", &mut found);
            if !found.is_empty() {
                out.push(format!("organization_id of B at {}", found.join(", ")));
            }
            if let Some(table) = req.table
                && let Some(b_ids) = self.b_ids.get(&table)
            {
                for record in answer_records(&json) {
                    if let Some(id) = record.get("id").and_then(Value::as_i64)
                        && b_ids.contains(&id)
                    {
                        out.push(format!("a record of B ({table:?} {id})"));
                    }
                }
            }
        }
        out
    }
}

struct Sent {
    status: u16,
    text: String,
}

async fn send_req(app: &TestApp, req: &Req, admin: &str, agent: &str) -> Result<Sent, String> {
    let mut builder = app
        .client
        .request(req.method.clone(), app.url(&req.target))
        .timeout(Duration::from_secs(60));
    match req.who {
        Who::Admin => builder = builder.bearer_auth(admin),
        Who::Agent => builder = builder.bearer_auth(agent),
        Who::Nobody | Who::Invalid => {}
    }
    for (name, value) in &req.headers {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header name: {e}"))?;
        let value = HeaderValue::from_bytes(value).map_err(|e| format!("header value: {e}"))?;
        builder = builder.header(name, value);
    }
    if let Some(ct) = req.content_type() {
        builder = builder.header("content-type", ct);
    }
    if let Some(bytes) = req.bytes() {
        builder = builder.body(bytes);
    }
    let res = builder
        .send()
        .await
        .map_err(|e| format!("no answer: {e:?}"))?;
    let status = res.status().as_u16();
    let bytes = res
        .bytes()
        .await
        .map_err(|e| format!("body not read: {e:?}"))?;
    Ok(Sent {
        status,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// Forgets the ids a removal answered (some stay known as removed ones).
fn forget(pool: &mut HashMap<Table, Vec<i64>>, table: Table, text: &str) {
    let Ok(json) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let removed: HashSet<i64> = answer_records(&json)
        .iter()
        .filter_map(|r| r.get("id").and_then(Value::as_i64))
        .collect();
    if let Some(list) = pool.get_mut(&table) {
        list.retain(|id| !removed.contains(id) || id % 4 == 0);
    }
}

/// Learns A's new ids from a successful answer.
fn learn(pool: &mut HashMap<Table, Vec<i64>>, table: Table, text: &str) {
    let Ok(json) = serde_json::from_str::<Value>(text) else {
        return;
    };
    for record in answer_records(&json) {
        if let Some(id) = record.get("id").and_then(Value::as_i64) {
            let list = pool.entry(table).or_default();
            if !list.contains(&id) && list.len() < 60 {
                list.push(id);
            }
        }
        if table == Table::Pipelines
            && let Some(stages) = record.get("stages").and_then(Value::as_array)
        {
            for stage in stages {
                if let Some(id) = stage.get("id").and_then(Value::as_i64) {
                    let list = pool.entry(Table::Stages).or_default();
                    if !list.contains(&id) && list.len() < 60 {
                        list.push(id);
                    }
                }
            }
        }
        if table == Table::Messages
            && let Some(id) = record.get("conversation_id").and_then(Value::as_i64)
        {
            let list = pool.entry(Table::Conversations).or_default();
            if !list.contains(&id) && list.len() < 60 {
                list.push(id);
            }
        }
    }
}

fn env_number(name: &str) -> Option<u64> {
    let raw = std::env::var(name).ok()?;
    let raw = raw.trim();
    match raw.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => raw.parse().ok(),
    }
}

#[actix_web::test]
async fn generated_requests_never_fail_and_never_leak() {
    let seed = env_number("GEN_SEED").unwrap_or(DEFAULT_SEED);
    let count = env_number("GEN_REQUESTS").map_or(DEFAULT_REQUESTS, |n| n as usize);
    println!("generated requests: seed {seed:#x} (GEN_SEED), {count} requests (GEN_REQUESTS)");
    let app = spawn_app_with(|s| {
        s.rate_limit_requests = 1_000_000;
        s.login_failures_per_email = 0;
        s.login_failures_per_address = 0;
    })
    .await;
    let setup = Instant::now();
    let marker = format!("ORGB-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let b_admin = app.new_tenant(&marker).await;
    let mut a = seed_org(&app, app.org.clone(), "OrgA-gen").await;
    let b = seed_org(&app, b_admin, &marker).await;
    let before = snapshot(&app, &b).await;
    println!("setup: {:.1?}", setup.elapsed());

    let services = services();
    let checker = Checker {
        markers: [
            marker.clone(),
            b.admin.token.clone(),
            b.agent.token.clone(),
            b.api_key.clone(),
            b.admin.email.clone(),
        ]
        .iter()
        .map(|m| m.to_lowercase())
        .collect(),
        b_org: b.admin.org_id,
        b_ids: b
            .ids
            .iter()
            .map(|(t, ids)| (*t, ids.iter().copied().collect()))
            .collect(),
    };
    // The checks see B's data when it is there: B's own answers fail them.
    for (path, table) in [
        ("/contacts?$select[]=id", Table::Contacts),
        ("/conversations", Table::Conversations),
        ("/users?$select[]=email", Table::Users),
    ] {
        let req = Req {
            method: Method::GET,
            target: path.to_string(),
            who: Who::Admin,
            headers: Vec::new(),
            body: Body::None,
            table: Some(table),
            tame: true,
        };
        let sent = send_req(&app, &req, &b.admin.token, &b.agent.token)
            .await
            .expect("B's answer");
        assert_eq!(sent.status, 200, "{path} as B: {}", sent.text);
        let found = checker.problems(&req, sent.status, &sent.text);
        assert!(
            !found.is_empty(),
            "the checks miss B's data in {}",
            sent.text
        );
    }
    let mut pool = a.ids.clone();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut ok_by_path: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut relogins = 0;
    let mut rng_state = seed;
    // `GEN_VERBOSE=1` prints every request and its answer.
    let verbose = std::env::var_os("GEN_VERBOSE").is_some();
    // `GEN_CONCURRENCY=N` sends N at a time (1 by default: a seed then replays exactly).
    let concurrency = env_number("GEN_CONCURRENCY").map_or(1, |n| n.max(1) as usize);
    let run = Instant::now();
    let mut first = 0;
    while first < count {
        let batch = concurrency.min(count - first);
        let reqs: Vec<Req> = {
            let mut generator = Gen {
                rng: Rng(rng_state),
                services: &services,
                a: &a,
                pool: std::mem::take(&mut pool),
                tame: false,
                b: &b,
            };
            let reqs = (0..batch).map(|_| generator.request()).collect();
            rng_state = generator.rng.0;
            pool = generator.pool;
            reqs
        };
        let (admin_token, agent_token) = (a.admin.token.clone(), a.agent.token.clone());
        let answers = futures_util::future::join_all(
            reqs.iter()
                .map(|req| send_req(&app, req, &admin_token, &agent_token)),
        )
        .await;
        first += batch;
        for (i, (req, answer)) in reqs.into_iter().zip(answers).enumerate() {
            let n = first - batch + i;
            let sent = match answer {
                Ok(sent) => sent,
                Err(e) => {
                    report(&mut failures, format!("#{n} {}\n  => {e}", req.describe()));
                    continue;
                }
            };
            *statuses.entry(sent.status).or_default() += 1;
            if verbose {
                println!(
                    "#{n} {} => {} {}",
                    req.describe(),
                    sent.status,
                    clip(&sent.text)
                );
            }
            let problems = checker.problems(&req, sent.status, &sent.text);
            if !problems.is_empty() {
                report(
                    &mut failures,
                    format!(
                        "#{n} {}\n  => {} {}\n  problems: {}",
                        req.describe(),
                        sent.status,
                        clip(&sent.text),
                        problems.join("; ")
                    ),
                );
                continue;
            }
            if (200..300).contains(&sent.status) {
                let base = req.target.split('?').next().unwrap_or("");
                let base = match base.rsplit_once('/') {
                    Some((head, _)) if !head.is_empty() => format!("{head}/:id"),
                    _ => base.to_string(),
                };
                *ok_by_path
                    .entry(format!("{} {base}", req.method))
                    .or_default() += 1;
                if matches!(req.who, Who::Admin | Who::Agent)
                    && let Some(table) = req.table
                {
                    if req.method == Method::DELETE {
                        forget(&mut pool, table, &sent.text);
                    } else {
                        learn(&mut pool, table, &sent.text);
                    }
                }
            }
            // A logout (or anything else) that ended a session: log in again.
            if sent.status == 401 && matches!(req.who, Who::Admin | Who::Agent) {
                let (status, _) = app
                    .call(
                        Method::GET,
                        &format!("/users/{}", a.admin.user_id),
                        None,
                        Some(if req.who == Who::Admin {
                            &a.admin.token
                        } else {
                            &a.agent.token
                        }),
                    )
                    .await;
                if status == StatusCode::UNAUTHORIZED {
                    relogins += 1;
                    if req.who == Who::Admin {
                        a.admin.token = app.login(&a.admin.email, "admin-password").await;
                    } else {
                        a.agent.token = app.login(&a.agent.email, &a.agent_password).await;
                    }
                }
            }
        }
    }
    let elapsed = run.elapsed();
    println!(
        "{count} requests in {elapsed:.1?} ({:.0}/s), {relogins} re-logins",
        count as f64 / elapsed.as_secs_f64()
    );
    println!("statuses: {statuses:?}");
    println!("2xx by method and path: {ok_by_path:#?}");

    // The server still answers, A's admin still works, B's data did not move.
    let (status, body) = app.call(Method::GET, "/healthz", None, None).await;
    if status != StatusCode::OK {
        report(
            &mut failures,
            format!("GET /healthz after the run: {status} {body}"),
        );
    }
    let (status, body) = app
        .call(Method::GET, "/conversations", None, Some(&a.admin.token))
        .await;
    if status != StatusCode::OK {
        report(
            &mut failures,
            format!("GET /conversations as A after the run: {status} {body}"),
        );
    }
    let after = snapshot(&app, &b).await;
    for ((path, was), (_, is)) in before.iter().zip(&after) {
        if was != is {
            report(
                &mut failures,
                format!(
                    "B's data changed: {path}\n  before: {}\n  after: {}",
                    clip(&was.to_string()),
                    clip(&is.to_string())
                ),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures (seed {seed:#x}), the first ones printed above",
        failures.len()
    );
    let ok: usize = statuses
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    assert!(
        ok * 10 >= count,
        "only {ok} of {count} requests succeeded: the run tests too little"
    );
}

/// Prints a failure as it is found (the first 40), and keeps it for the verdict.
fn report(failures: &mut Vec<String>, failure: String) {
    if failures.len() < 40 {
        println!("FAILURE {failure}\n");
    }
    failures.push(failure);
}
