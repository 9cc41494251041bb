//! What AgentPhone's webhooks (and its history, read by the import) tell, as typed
//! events: parsed from the raw JSON once, so ingest never guesses at field names.
//! AgentPhone's payloads are camelCase; optional fields may be absent or null.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A group thread's roster.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub group_id: String,
    pub name: Option<String>,
    /// `[{identifier, name}]` as AgentPhone sends it.
    pub participants: Value,
}

/// `agent.message` (and a message of the history).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageEvent {
    /// AgentPhone's message id (the dedupe key; older payloads may lack it).
    pub message_id: Option<String>,
    pub conversation_id: Option<String>,
    pub number_id: Option<String>,
    pub from: String,
    pub to: String,
    pub text: String,
    /// `inbound`, or `outbound` for an echo of a send.
    pub direction: String,
    /// `sms`, `mms`, `imessage`...
    pub channel: String,
    pub received_at: Option<DateTime<Utc>>,
    pub media_urls: Vec<String>,
    pub contact_name: Option<String>,
    pub sender_identifier: Option<String>,
    pub group: Option<Group>,
    /// The thread's `metadata` as last set (the envelope's `conversationState`).
    pub conversation_state: Option<Value>,
    /// The event's `data` as received (kept on the message as its payload).
    pub data: Value,
}

impl MessageEvent {
    pub fn inbound(&self) -> bool {
        self.direction != "outbound"
    }

    /// The other side: who sent an inbound message, or who an echo went to.
    pub fn participant(&self) -> &str {
        if self.inbound() { &self.from } else { &self.to }
    }

    /// Our number in the thread.
    pub fn our_number(&self) -> &str {
        if self.inbound() { &self.to } else { &self.from }
    }
}

/// `agent.reaction`: a tapback on one of the thread's messages.
#[derive(Debug, Clone, PartialEq)]
pub struct ReactionEvent {
    pub conversation_id: Option<String>,
    /// The message reacted to.
    pub message_id: String,
    pub reaction: String,
    pub from_number: Option<String>,
    pub direction: String,
    pub created_at: Option<DateTime<Utc>>,
}

/// `agent.contact_shared` and `agent.call_ended`: kept as activity on the thread.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityEvent {
    pub event: String,
    pub conversation_id: Option<String>,
    pub number_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub summary: String,
    pub data: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Message(Box<MessageEvent>),
    Reaction(ReactionEvent),
    Activity(ActivityEvent),
    /// Acknowledged and ignored (a voice message, an event we do not know).
    Ignored(String),
}

/// Why a body is not an AgentPhone event we can take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn time(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    let s = v.get(key)?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn required(data: &Value, key: &str, event: &str) -> Result<String, Malformed> {
    text(data, key)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Malformed(format!("{event}: data.{key} is required")))
}

/// The media URLs of a message: `mediaUrls`, else the legacy `mediaUrl`.
fn media_of(data: &Value) -> Vec<String> {
    let urls: Vec<String> = (data
        .get("mediaUrls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten())
    .filter_map(|u| u.as_str().map(str::to_string))
    .collect();
    if urls.is_empty() {
        return text(data, "mediaUrl").into_iter().collect();
    }
    urls
}

/// Parses a webhook body (a JSON object).
pub fn parse(body: &Value) -> Result<Event, Malformed> {
    let event = text(body, "event").ok_or_else(|| Malformed("event is required".into()))?;
    let empty = Value::Object(Default::default());
    let data = body.get("data").filter(|d| d.is_object()).unwrap_or(&empty);
    let channel = text(body, "channel").unwrap_or_default();
    match event.as_str() {
        "agent.message" if channel == "voice" || data.get("callId").is_some() => {
            Ok(Event::Ignored("a voice message".into()))
        }
        "agent.message" => {
            let mut m = message(data, &event)?;
            if !channel.is_empty() {
                m.channel = channel;
            }
            m.conversation_state = body
                .get("conversationState")
                .filter(|s| !s.is_null())
                .cloned();
            Ok(Event::Message(Box::new(m)))
        }
        "agent.reaction" => Ok(Event::Reaction(ReactionEvent {
            conversation_id: text(data, "conversationId"),
            message_id: required(data, "messageId", &event)?,
            reaction: required(data, "reactionType", &event)?,
            from_number: text(data, "fromNumber"),
            direction: text(data, "direction").unwrap_or_else(|| "inbound".into()),
            created_at: time(data, "createdAt"),
        })),
        "agent.contact_shared" | "agent.call_ended" => {
            let summary = if event == "agent.call_ended" {
                match data.get("durationSeconds").and_then(Value::as_i64) {
                    Some(s) => format!("Call ended ({s} s)"),
                    None => "Call ended".to_string(),
                }
            } else {
                "Contact shared".to_string()
            };
            Ok(Event::Activity(ActivityEvent {
                event: event.clone(),
                conversation_id: text(data, "conversationId"),
                number_id: text(data, "numberId"),
                from: text(data, "from").or_else(|| text(data, "fromNumber")),
                to: text(data, "to"),
                summary,
                data: data.clone(),
            }))
        }
        other => Ok(Event::Ignored(format!("event {other:?}"))),
    }
}

/// The message of an `agent.message`'s `data`.
pub fn message(data: &Value, event: &str) -> Result<MessageEvent, Malformed> {
    let group = data.get("group").filter(|g| g.is_object()).and_then(|g| {
        Some(Group {
            group_id: text(g, "groupId")?,
            name: text(g, "groupName"),
            participants: g.get("participants").cloned().unwrap_or(Value::Null),
        })
    });
    Ok(MessageEvent {
        message_id: text(data, "messageId").or_else(|| text(data, "id")),
        conversation_id: text(data, "conversationId"),
        number_id: text(data, "numberId"),
        from: required(data, "from", event)?,
        to: required(data, "to", event)?,
        text: text(data, "message").unwrap_or_default(),
        direction: text(data, "direction").unwrap_or_else(|| "inbound".into()),
        channel: text(data, "channel").unwrap_or_else(|| "sms".into()),
        received_at: time(data, "receivedAt"),
        media_urls: media_of(data),
        contact_name: data.get("contact").and_then(|c| text(c, "name")),
        sender_identifier: text(data, "senderIdentifier"),
        group,
        conversation_state: None,
        data: data.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_message_event_reads_every_field() {
        let body = json!({
            "event": "agent.message", "channel": "imessage", "timestamp": "2026-01-01T00:00:00Z",
            "conversationState": {"stage": "lead"},
            "data": {
                "messageId": "msg_1", "conversationId": "conv_1", "numberId": "num_1",
                "from": "+15550001111", "to": "+15559990000", "message": "hi", "direction": "inbound",
                "receivedAt": "2026-01-01T00:00:00.123Z", "mediaUrls": ["https://x/a.jpg"],
                "contact": {"name": "Ada Lovelace"}, "senderIdentifier": "+15550001111",
                "group": {"isGroup": true, "groupId": "grp_1", "groupName": "Team",
                          "participants": [{"identifier": "+15550001111", "name": null}]}
            }
        });
        let Event::Message(m) = parse(&body).unwrap() else {
            panic!("a message")
        };
        assert_eq!(m.message_id.as_deref(), Some("msg_1"));
        assert_eq!(m.channel, "imessage");
        assert_eq!(m.participant(), "+15550001111");
        assert_eq!(m.our_number(), "+15559990000");
        assert_eq!(m.media_urls, vec!["https://x/a.jpg"]);
        assert_eq!(m.group.as_ref().unwrap().group_id, "grp_1");
        assert_eq!(m.conversation_state, Some(json!({"stage": "lead"})));
        assert!(m.received_at.is_some());
    }

    #[test]
    fn an_echo_is_from_our_number() {
        let body = json!({"event": "agent.message", "data": {
            "from": "+15559990000", "to": "+15550001111", "message": "yo", "direction": "outbound", "mediaUrl": "https://x/b.png"}});
        let Event::Message(m) = parse(&body).unwrap() else {
            panic!("a message")
        };
        assert!(!m.inbound());
        assert_eq!(m.participant(), "+15550001111");
        assert_eq!(m.media_urls, vec!["https://x/b.png"]);
    }

    #[test]
    fn reactions_activity_voice_and_unknown_events() {
        let r = json!({"event": "agent.reaction", "data": {"messageId": "msg_9", "reactionType": "love", "fromNumber": "+1555"}});
        assert!(
            matches!(parse(&r).unwrap(), Event::Reaction(ReactionEvent { ref reaction, .. }) if reaction == "love")
        );
        let c =
            json!({"event": "agent.call_ended", "data": {"from": "+1555", "durationSeconds": 42}});
        assert!(
            matches!(parse(&c).unwrap(), Event::Activity(ActivityEvent { ref summary, .. }) if summary == "Call ended (42 s)")
        );
        let v = json!({"event": "agent.message", "channel": "voice", "data": {"callId": "c1"}});
        assert!(matches!(parse(&v).unwrap(), Event::Ignored(_)));
        let u = json!({"event": "agent.something_new", "data": {}});
        assert!(matches!(parse(&u).unwrap(), Event::Ignored(_)));
    }

    #[test]
    fn required_fields_are_named_when_missing() {
        assert_eq!(
            parse(&json!({"data": {}})).unwrap_err().0,
            "event is required"
        );
        let e = parse(&json!({"event": "agent.message", "data": {"to": "+1"}})).unwrap_err();
        assert!(e.0.contains("data.from"), "{e}");
        let e = parse(&json!({"event": "agent.reaction", "data": {"messageId": "m"}})).unwrap_err();
        assert!(e.0.contains("reactionType"), "{e}");
    }
}
