//! Channels: the [`Channel`] and [`MessageType`] vocabularies and, in [`rules`],
//! each channel's sending rules as data (one `static` table per channel) plus the
//! pure [`check_outgoing`] function that applies them (DESIGN.md section 5).
//!
//! Nothing in here touches a database or the network; a broken rule comes back as
//! a [`RuleViolation`] that the service layer answers as a 422 `Unprocessable`
//! whose `data` is [`RuleViolation::to_data`].

pub mod rules;
pub mod transform;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use rules::{
    ChannelRules, HumanAgentRule, MediaCheck, MediaRule, NOTE_TEXT_LIMIT, OutgoingCheck,
    RuleViolation, TextLimit, TextUnit, WindowRule, check_outgoing,
};

/// A messaging channel. The wire name ([`Channel::as_str`]) is what appears in
/// service paths (`/conversation-messages-{channel}`) and in the `channel` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Whatsapp,
    Instagram,
    Messenger,
    Webchat,
    Sms,
    Playground,
}

impl Channel {
    /// Every channel, in a fixed order.
    pub const ALL: [Channel; 6] = [
        Channel::Whatsapp,
        Channel::Instagram,
        Channel::Messenger,
        Channel::Webchat,
        Channel::Sms,
        Channel::Playground,
    ];

    /// Every channel's wire name, in [`Channel::ALL`]'s order (schemas and SQL read it).
    pub const NAMES: [&'static str; 6] = {
        let mut names = [""; 6];
        let mut i = 0;
        while i < names.len() {
            names[i] = Channel::ALL[i].as_str();
            i += 1;
        }
        names
    };

    /// The wire name: `whatsapp instagram messenger webchat sms playground`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Whatsapp => "whatsapp",
            Channel::Instagram => "instagram",
            Channel::Messenger => "messenger",
            Channel::Webchat => "webchat",
            Channel::Sms => "sms",
            Channel::Playground => "playground",
        }
    }

    /// This channel's rule table (see [`rules`] for the tables and their sources).
    pub const fn rules(self) -> &'static ChannelRules {
        match self {
            Channel::Whatsapp => &rules::WHATSAPP,
            Channel::Instagram => &rules::INSTAGRAM,
            Channel::Messenger => &rules::MESSENGER,
            Channel::Webchat => &rules::WEBCHAT,
            Channel::Sms => &rules::SMS,
            Channel::Playground => &rules::PLAYGROUND,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a channel's wire name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel '{0}'")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    /// Exact wire names only (lowercase), as they appear in paths and the database.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

/// The `message_type` of a message (DESIGN.md section 4). Wire names are the
/// lowercase variant names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    Text,
    Image,
    Video,
    Document,
    Audio,
    Location,
    Reaction,
    /// Internal note: stored, shown to the team, never delivered.
    Note,
    /// WhatsApp template message (`messageData`).
    Template,
    /// System activity in the timeline (assignment, status change, ...); never composed.
    Activity,
}

impl MessageType {
    /// Every message type, in a fixed order.
    pub const ALL: [MessageType; 10] = [
        MessageType::Text,
        MessageType::Image,
        MessageType::Video,
        MessageType::Document,
        MessageType::Audio,
        MessageType::Location,
        MessageType::Reaction,
        MessageType::Note,
        MessageType::Template,
        MessageType::Activity,
    ];

    /// Every message type's wire name, in [`MessageType::ALL`]'s order.
    pub const NAMES: [&'static str; 10] = {
        let mut names = [""; 10];
        let mut i = 0;
        while i < names.len() {
            names[i] = MessageType::ALL[i].as_str();
            i += 1;
        }
        names
    };

    /// The wire name: `text image video document audio location reaction note template activity`.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageType::Text => "text",
            MessageType::Image => "image",
            MessageType::Video => "video",
            MessageType::Document => "document",
            MessageType::Audio => "audio",
            MessageType::Location => "location",
            MessageType::Reaction => "reaction",
            MessageType::Note => "note",
            MessageType::Template => "template",
            MessageType::Activity => "activity",
        }
    }

    /// Whether this type carries an attachment (`image video document audio`).
    pub const fn is_media(self) -> bool {
        matches!(
            self,
            MessageType::Image | MessageType::Video | MessageType::Document | MessageType::Audio
        )
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a message type's wire name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown message type '{0}'")]
pub struct UnknownMessageType(pub String);

impl FromStr for MessageType {
    type Err = UnknownMessageType;

    /// Exact wire names only (lowercase).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownMessageType(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_wire_names_round_trip() {
        let names: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "whatsapp",
                "instagram",
                "messenger",
                "webchat",
                "sms",
                "playground"
            ]
        );
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::json!(c.as_str())
            );
            assert_eq!(
                serde_json::from_value::<Channel>(serde_json::json!(c.as_str())).unwrap(),
                c
            );
        }
    }

    #[test]
    fn unknown_channel_names_are_refused() {
        for bad in ["", "WhatsApp", "SMS", "imessage", "whatsapp "] {
            assert_eq!(
                bad.parse::<Channel>(),
                Err(UnknownChannel(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn message_type_wire_names_round_trip() {
        let names: Vec<&str> = MessageType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "text", "image", "video", "document", "audio", "location", "reaction", "note",
                "template", "activity"
            ]
        );
        for t in MessageType::ALL {
            assert_eq!(t.as_str().parse::<MessageType>(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::json!(t.as_str())
            );
        }
        assert!("Text".parse::<MessageType>().is_err());
        assert!("sticker".parse::<MessageType>().is_err());
    }

    #[test]
    fn media_types_are_exactly_the_attachment_types() {
        let media: Vec<MessageType> = MessageType::ALL
            .into_iter()
            .filter(|t| t.is_media())
            .collect();
        assert_eq!(
            media,
            [
                MessageType::Image,
                MessageType::Video,
                MessageType::Document,
                MessageType::Audio
            ]
        );
    }
}
