//! `agentphone-import`: an account's history at a fake AgentPhone, imported in-process
//! and checked through the HTTP API; a second run stores nothing; the binary's
//! command prints one JSON report, and names a missing account.

use std::cell::RefCell;
use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use inbox_gateway::agentphone::Http;
use inbox_gateway::agentphone::import::{self, Progress, Report};
use inbox_gateway::auth::sealing::Sealer;
use inbox_gateway::delivery::AgentPhone;
use inbox_gateway::domain::channel_accounts::AccountId;
use serde_json::{Value, json};

use crate::fake_agentphone::{FAKE_API_KEY, FAKE_FROM_NUMBER, FakeAgentPhone};
use crate::helpers::*;

const ANN: &str = "+15552220001";
const BO: &str = "+15552220002";
const CY: &str = "+15552220003";
const DI: &str = "+15552220004";
/// More than one page of 100: the import must page back by `before`.
const LONG: usize = 125;

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(minute)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One message as AgentPhone lists it; `from` is the sender, our number otherwise.
struct Msg {
    id: String,
    body: String,
    inbound: bool,
    at: DateTime<Utc>,
}

/// A conversation at the fake, its messages in the order they were received.
struct Thread {
    id: &'static str,
    /// Who the conversation is with: the contact, or the group id.
    external: &'static str,
    group: bool,
    messages: Vec<Msg>,
}

fn msg(id: String, inbound: bool, at: DateTime<Utc>) -> Msg {
    Msg {
        body: format!("text of {id}"),
        id,
        inbound,
        at,
    }
}

/// Three conversations: a long one with Ann, a short one with Bo (the newest, with
/// media), a group with Cy and Di; added to the fake out of time order.
fn threads() -> Vec<Thread> {
    let long = (0..LONG)
        .map(|i| msg(format!("msg_a{i:03}"), i % 3 != 2, at(i as i64)))
        .collect();
    let short = vec![
        msg("msg_b1".into(), true, at(200)),
        msg("msg_b2".into(), false, at(201)),
        msg("msg_b3".into(), true, at(202)),
    ];
    let group = vec![
        msg("msg_g1".into(), true, at(150)),
        msg("msg_g2".into(), true, at(151)),
        msg("msg_g3".into(), false, at(152)),
        msg("msg_g4".into(), true, at(153)),
    ];
    vec![
        Thread {
            id: "conv_ann",
            external: ANN,
            group: false,
            messages: long,
        },
        Thread {
            id: "conv_bo",
            external: BO,
            group: false,
            messages: short,
        },
        Thread {
            id: "conv_team",
            external: "grp_team",
            group: true,
            messages: group,
        },
    ]
}

fn roster() -> Value {
    json!([{"identifier": CY, "name": "Cy"}, {"identifier": DI, "name": null}])
}

/// Fills `fake` with `threads`: summaries as AgentPhone lists them, messages newest
/// first (as its pages are), group messages from alternating members.
fn fill(fake: &FakeAgentPhone, threads: &[Thread]) {
    for t in threads {
        let newest = t.messages.last().expect("a conversation has messages");
        let mut summary = json!({
            "id": t.id, "agentId": "agt_1", "phoneNumberId": "num_1", "phoneNumber": FAKE_FROM_NUMBER,
            "participant": t.external, "isGroup": t.group, "lastMessageAt": stamp(newest.at),
            "lastMessagePreview": newest.body, "messageCount": t.messages.len(),
            "metadata": {"imported": true}, "createdAt": stamp(t.messages[0].at),
        });
        if t.group {
            summary["groupId"] = json!(t.external);
            summary["groupName"] = json!("Team");
            summary["participants"] = roster();
        }
        fake.add_conversation(summary);
        for (i, m) in t.messages.iter().enumerate().rev() {
            let member = if i % 2 == 0 { CY } else { DI };
            let contact = if t.group { member } else { t.external };
            let (from, to) = match m.inbound {
                true => (contact, FAKE_FROM_NUMBER),
                false => (FAKE_FROM_NUMBER, t.external),
            };
            let media = if m.id == "msg_b3" {
                json!(["https://media.test/photo.jpg"])
            } else {
                json!([])
            };
            fake.add_message(
                t.id,
                json!({
                    "id": m.id, "body": m.body, "fromNumber": from, "toNumber": to,
                    "direction": if m.inbound { "inbound" } else { "outbound" },
                    "receivedAt": stamp(m.at), "channel": if t.group { "imessage" } else { "sms" },
                    "senderIdentifier": if t.group && m.inbound { json!(member) } else { Value::Null },
                    "mediaUrls": media, "reactions": [],
                }),
            );
        }
    }
}

/// An AgentPhone account of the first organization, reaching `fake`; answers its id.
async fn account(app: &TestApp, fake: &FakeAgentPhone) -> i64 {
    let account = app
        .create(
            "/channel-accounts",
            json!({
                "channel": "sms", "provider": "agentphone", "name": "Main line",
                "settings": {
                    "agent_id": "agt_1",
                    "numbers": [{"id": "num_1", "phone_number": FAKE_FROM_NUMBER}],
                    "base_url": fake.base_url,
                },
                "secrets": {"api_key": FAKE_API_KEY, "webhook_secret": "whsec_x"},
            }),
        )
        .await;
    account["id"].as_i64().expect("the account's id")
}

/// AgentPhone as the app reaches it: its sealer is keyed by the app's JWT secret.
fn agentphone(app: &TestApp) -> AgentPhone {
    AgentPhone {
        sealer: Arc::new(Sealer::new(None, &app.jwt_secret).expect("a sealer")),
        http: Http::new(Duration::from_secs(2), Duration::from_secs(10)).expect("a client"),
        base_url: "http://127.0.0.1:9".into(),
    }
}

async fn import(app: &TestApp, agentphone: &AgentPhone, account: i64) -> (Report, Vec<Progress>) {
    let seen = RefCell::new(Vec::new());
    let report = import::run(&app.units, agentphone, AccountId(account), &|p| {
        seen.borrow_mut().push(p)
    })
    .await
    .expect("the import runs");
    (report, seen.into_inner())
}

/// Every conversation of the organization, by its `external_id`.
async fn conversations(app: &TestApp) -> HashMap<String, Value> {
    let page = get_ok(app, "/conversations?$limit=50").await;
    records(&page)
        .iter()
        .map(|c| {
            (
                c["external_id"].as_str().unwrap_or_default().to_owned(),
                c.clone(),
            )
        })
        .collect()
}

/// Every message of one conversation, oldest first.
async fn messages_of(app: &TestApp, conversation: i64) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let page = get_ok(
            app,
            &format!(
                "/conversation-messages-sms?conversation_id={conversation}&$sort[created_at]=1&$limit=50&$skip={}",
                all.len()
            ),
        )
        .await;
        let got = records(&page).clone();
        if got.is_empty() {
            return all;
        }
        all.extend(got);
    }
}

/// What the API shows of the import: each conversation and its messages.
async fn inbox(app: &TestApp) -> HashMap<String, (Value, Vec<Value>)> {
    let mut out = HashMap::new();
    for (external, c) in conversations(app).await {
        let messages = messages_of(app, c["id"].as_i64().unwrap()).await;
        out.insert(external, (c, messages));
    }
    out
}

#[actix_web::test]
async fn agentphone_import_stores_every_message_once_and_a_second_run_nothing() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    let threads = threads();
    fill(&fake, &threads);
    let account = account(&app, &fake).await;
    let agentphone = agentphone(&app);
    let total: usize = threads.iter().map(|t| t.messages.len()).sum();

    let (report, progress) = import(&app, &agentphone, account).await;
    assert_eq!(
        (report.account_id, report.conversations, report.messages),
        (account, 3, total as u64),
        "{report:?}"
    );
    assert_eq!(
        (report.stored, report.confirmed, report.known, report.failed),
        (total as u64, 0, 0, 0),
        "{report:?}"
    );
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(progress.first().unwrap().conversations_total, Some(3));
    let last = *progress.last().unwrap();
    assert_eq!(
        (
            last.conversations_done,
            last.conversations_total,
            last.messages
        ),
        (3, Some(3), total as u64)
    );

    // Pages of 100, and the long conversation paged back from its 26th newest message.
    let requests: Vec<String> = fake
        .requests()
        .into_iter()
        .map(|(_, path, _)| path)
        .collect();
    assert!(
        requests.contains(&"/v1/conversations?limit=100&offset=0".to_string()),
        "{requests:?}"
    );
    let cursor = stamp(threads[0].messages[LONG - 100].at).replace(':', "%3A");
    assert!(
        requests.contains(&format!(
            "/v1/conversations/conv_ann/messages?limit=100&before={cursor}"
        )),
        "{requests:?}"
    );

    let seen = inbox(&app).await;
    assert_eq!(seen.len(), 3, "{:?}", seen.keys());
    for t in &threads {
        let (conversation, messages) = &seen[t.external];
        let ids: Vec<&str> = (messages.iter())
            .map(|m| m["external_id"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = t.messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, expected, "every message of {} once, in order", t.id);
        for (stored, m) in messages.iter().zip(&t.messages) {
            assert_eq!(stored["text"], m.body.as_str());
            assert_eq!(stored["channel_account_id"], account);
            assert_eq!(stored["created_at"], api_time(m.at));
            if m.inbound {
                assert_eq!(stored["direction"], "inbound", "{stored}");
                assert_eq!(stored["sender_type"], "contact", "{stored}");
            } else {
                assert_eq!(stored["direction"], "outbound", "{stored}");
                assert_eq!(stored["delivery_status"], "sent", "{stored}");
            }
        }
        let newest = t.messages.last().unwrap();
        assert_eq!(
            conversation["last_message_preview"],
            newest.body.as_str(),
            "{conversation}"
        );
        assert_eq!(conversation["last_interaction_at"], api_time(newest.at));
        assert_eq!(conversation["is_group"], t.group, "{conversation}");
        assert_eq!(
            conversation["metadata"]["agentphone"]["conversation_id"],
            t.id
        );
        assert_eq!(
            conversation["metadata"]["conversationState"],
            json!({"imported": true})
        );
        if t.group {
            assert_eq!(conversation["participants"], roster(), "{conversation}");
        } else {
            // The inbound messages are the contact's: the conversation's contact.
            assert_eq!(
                conversation["contact"]["phone"], t.external,
                "{conversation}"
            );
        }
    }
    let (_, short) = &seen[BO];
    assert_eq!(short[2]["message_type"], "image");
    assert_eq!(short[2]["media"]["url"], "https://media.test/photo.jpg");
    let (_, group) = &seen["grp_team"];
    assert_eq!(group[0]["transport"], "imessage");
    assert_eq!(group[0]["payload"]["senderIdentifier"], CY);

    let (again, _) = import(&app, &agentphone, account).await;
    assert_eq!(
        (again.messages, again.stored, again.known, again.failed),
        (total as u64, 0, total as u64, 0),
        "{again:?}"
    );
    let after = inbox(&app).await;
    assert_eq!(after.len(), 3);
    for t in &threads {
        let (before_c, before_m) = &seen[t.external];
        let (after_c, after_m) = &after[t.external];
        assert_eq!(after_m, before_m, "the messages of {} did not change", t.id);
        assert_eq!(after_c["id"], before_c["id"]);
        assert_eq!(
            after_c["last_message_preview"],
            before_c["last_message_preview"]
        );
    }
}

/// Runs `inbox-gateway agentphone-import --account ID` on `database_url`.
fn run_binary(database_url: &str, jwt_secret: &str, account: i64) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_inbox-gateway"))
        .args(["agentphone-import", "--account", &account.to_string()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_ENV", "test")
        .env("DATABASE_URL", database_url)
        .env("JWT_SECRET", jwt_secret)
        .env("RUST_LOG", "warn")
        .output()
        .expect("inbox-gateway runs")
}

#[actix_web::test]
async fn agentphone_import_binary_prints_one_json_report() {
    let app = spawn_app().await;
    let fake = FakeAgentPhone::start().await;
    let mut threads = threads();
    threads.truncate(2);
    threads[0].messages.truncate(5);
    fill(&fake, &threads);
    let account = account(&app, &fake).await;
    let (url, secret) = (app.database_url.clone(), app.jwt_secret.clone());
    // Off this thread: the fake AgentPhone's server answers on this test's runtime.
    let output = actix_web::rt::task::spawn_blocking(move || run_binary(&url, &secret, account))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let report: Value = serde_json::from_str(&stdout).expect("one JSON report");
    assert_eq!(report["account_id"], account);
    assert_eq!(report["conversations"], 2);
    assert_eq!(report["stored"], 8, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["errors"], json!([]));
    assert_eq!(
        total_of(&app, "/conversations?$limit=0").await,
        2,
        "the import's conversations show through the API"
    );
}

#[actix_web::test]
async fn agentphone_import_binary_names_a_missing_account_and_exits_1() {
    let app = spawn_app().await;
    let output = run_binary(&app.database_url, &app.jwt_secret, 987_654);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "no report on stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = (stderr.lines())
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(line.contains("agentphone-import"), "{line}");
    assert!(line.contains("No channel account 987654"), "{line}");
}
