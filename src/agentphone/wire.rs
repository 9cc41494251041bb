//! AgentPhone's JSON bodies. Casing follows the API: the send and reaction bodies are
//! snake_case, everything else camelCase (NOTES.md section 1). Unknown fields are
//! ignored and optional ones default (a `null` list or flag counts as absent), so
//! additions on AgentPhone's side do not turn a good answer into an unreadable one.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `null` → the type's default, for fields AgentPhone may send as `null` or omit.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The 200 answer of `POST /v1/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentMessage {
    /// AgentPhone's message id: the target of reactions and `reply_to_message_id`.
    pub id: String,
    pub status: String,
    /// What was really used: `sms`, `mms`, `imessage` (or `whatsapp`).
    pub channel: String,
    pub from_number: String,
    /// The resolved recipient; the new `grp_...` id when `recipients` started a group.
    pub to_number: String,
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub media_urls: Vec<String>,
    #[serde(default)]
    pub reply_to_message_id: Option<String>,
    /// `true`: sent, but not threaded under its parent. Not an error.
    #[serde(default)]
    pub reply_parent_unresolved: Option<bool>,
}

/// One item of `GET /v1/conversations/{id}/messages` (`MessageInConversation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationMessage {
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub body: String,
    pub from_number: String,
    pub to_number: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// ISO-8601; also the `before` cursor of the next page.
    pub received_at: String,
    /// Which member of a group sent it.
    #[serde(default)]
    pub sender_identifier: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub media_url: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub media_urls: Vec<String>,
    /// `{messageId, message, mediaUrls}` of the parent, kept as sent.
    #[serde(default)]
    pub reply_to: Option<Value>,
}

/// `GET /v1/conversations/{id}/messages`: a cursor page (no total).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    pub data: Vec<ConversationMessage>,
    #[serde(default, deserialize_with = "null_default")]
    pub has_more: bool,
}

/// A member of a group conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub identifier: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// One item of `GET /v1/conversations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    pub id: String,
    #[serde(default)]
    pub agent_id: Option<String>,
    pub phone_number_id: String,
    /// Our number (E.164).
    pub phone_number: String,
    /// The other side; older answers call it `contactNumber`.
    #[serde(alias = "contactNumber")]
    pub participant: String,
    #[serde(default, deserialize_with = "null_default")]
    pub is_group: bool,
    #[serde(default)]
    pub group_id: Option<String>,
    #[serde(default)]
    pub group_name: Option<String>,
    #[serde(default)]
    pub participants: Option<Vec<Participant>>,
    #[serde(default)]
    pub last_message_at: Option<String>,
    /// Custom state (the webhooks' `conversationState`).
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// `GET /v1/conversations`: an offset page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationPage {
    pub data: Vec<ConversationSummary>,
    #[serde(default, deserialize_with = "null_default")]
    pub has_more: bool,
    #[serde(default)]
    pub total: Option<u64>,
}

/// The 200 answer of `POST /v1/messages/{id}/reactions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReactionSent {
    pub id: String,
    pub reaction_type: String,
    pub message_id: String,
    /// Docs show `"iMessage"`: compare case-insensitively.
    pub channel: String,
}

/// The 200 answer of `POST /v1/conversations/{id}/typing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingSent {
    pub conversation_id: String,
    pub channel: String,
    pub status: String,
}

/// The 200 answer of `POST /v1/conversations/{id}/background`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundSet {
    pub conversation_id: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub has_background: Option<bool>,
    #[serde(default)]
    pub background_id: Option<String>,
    #[serde(default)]
    pub background_version: Option<i64>,
    #[serde(default)]
    pub changed: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{from_value, json};

    #[test]
    fn sent_message_minimal_and_full() {
        let m: SentMessage = from_value(json!({
            "id": "msg_1", "status": "sent", "channel": "sms",
            "from_number": "+15550001111", "to_number": "+15551234567", "extra": 1
        }))
        .unwrap();
        assert_eq!(m.conversation_id, None);
        assert!(m.media_urls.is_empty());
        let m: SentMessage = from_value(json!({
            "id": "msg_1", "status": "sent", "channel": "imessage",
            "from_number": "+1", "to_number": "grp_1", "conversation_id": "conv_1",
            "media_urls": null, "reply_to_message_id": "msg_0", "reply_parent_unresolved": true
        }))
        .unwrap();
        assert_eq!(m.conversation_id.as_deref(), Some("conv_1"));
        assert_eq!(m.reply_parent_unresolved, Some(true));
        assert!(m.media_urls.is_empty());
        assert!(from_value::<SentMessage>(json!({"id": "msg_1"})).is_err());
    }

    #[test]
    fn message_page_in_camel_case() {
        let page: MessagePage = from_value(json!({
            "data": [{
                "id": "msg_2", "body": "hello", "fromNumber": "+1", "toNumber": "+2",
                "direction": "inbound", "receivedAt": "2026-01-01T00:00:00.000Z",
                "senderIdentifier": "+3", "channel": "imessage", "mediaUrl": "https://a/1.png",
                "mediaUrls": ["https://a/1.png"], "reactions": [],
                "replyTo": {"messageId": "msg_1", "message": "hi", "mediaUrls": []}
            }, {
                "id": "msg_1", "body": null, "fromNumber": "+2", "toNumber": "+1",
                "direction": "outbound", "receivedAt": "2025-12-31T00:00:00Z"
            }],
            "hasMore": true
        }))
        .unwrap();
        assert!(page.has_more);
        assert_eq!(page.data[0].received_at, "2026-01-01T00:00:00.000Z");
        assert_eq!(
            page.data[0].reply_to.as_ref().unwrap()["messageId"],
            "msg_1"
        );
        assert_eq!(page.data[1].body, "");
        assert_eq!(page.data[1].channel, None);
    }

    #[test]
    fn conversation_page_in_camel_case() {
        let page: ConversationPage = from_value(json!({
            "data": [{
                "id": "conv_1", "agentId": null, "phoneNumberId": "num_1", "phoneNumber": "+1",
                "participant": "grp_9", "isGroup": true, "groupId": "grp_9", "groupName": "Team",
                "participants": [{"identifier": "+2", "name": "Ann"}, {"identifier": "b@x.test"}],
                "lastMessageAt": "2026-01-01T00:00:00Z", "lastMessagePreview": "hi",
                "messageCount": 3, "metadata": {"ticket": 7}, "createdAt": "2025-01-01T00:00:00Z"
            }, {
                "id": "conv_2", "phoneNumberId": "num_1", "phoneNumber": "+1",
                "contactNumber": "+5", "isGroup": null
            }],
            "hasMore": false, "total": 2
        }))
        .unwrap();
        assert_eq!(page.total, Some(2));
        let group = &page.data[0];
        assert!(group.is_group);
        assert_eq!(group.participants.as_ref().unwrap()[1].name, None);
        assert_eq!(group.metadata, Some(json!({"ticket": 7})));
        assert_eq!(page.data[1].participant, "+5");
        assert!(!page.data[1].is_group);
    }

    #[test]
    fn reaction_typing_background() {
        let r: ReactionSent = from_value(json!({
            "id": "rx_1", "reaction_type": "love", "message_id": "msg_1", "channel": "iMessage"
        }))
        .unwrap();
        assert_eq!(r.reaction_type, "love");
        let t: TypingSent = from_value(json!({
            "conversationId": "conv_1", "channel": "imessage", "status": "sent"
        }))
        .unwrap();
        assert_eq!(t.conversation_id, "conv_1");
        let b: BackgroundSet = from_value(json!({
            "conversationId": "conv_1", "channel": "imessage", "hasBackground": true,
            "backgroundId": null, "backgroundVersion": 2, "changed": true
        }))
        .unwrap();
        assert_eq!(b.background_version, Some(2));
        let b: BackgroundSet = from_value(json!({"conversationId": "conv_1"})).unwrap();
        assert_eq!(b.changed, None);
    }
}
