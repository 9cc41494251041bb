//! Per-channel sending rules as data, and [`check_outgoing`], the pure function
//! that applies them to a message about to be sent.
//!
//! Sources for every number are in `apex/NOTES.md` section 13. Conventions used
//! throughout:
//!
//! - **Sizes are decimal: 1 MB = 1,000,000 bytes** ([`MB`]). Meta, AWS and Twilio
//!   all write "MB" and none of them says MiB, so the smaller (decimal) reading is
//!   the safe one: a file we accept is never refused by the platform for size.
//! - **Characters are Unicode scalar values** (`str::chars`), not UTF-16 code units
//!   and not grapheme clusters. Instagram is the exception: its limit is in UTF-8
//!   **bytes** ([`TextUnit::Bytes`]).
//! - **MIME types** are compared case-insensitively, without parameters
//!   (`audio/ogg; codecs=opus` is `audio/ogg`), after mapping common aliases
//!   (`image/jpg` → `image/jpeg`, `audio/mp3` → `audio/mpeg`, ...; see [`MIME_ALIASES`]).
//! - **The window** is open while strictly less than its length has passed since
//!   the contact's last inbound message: at exactly 24 h it is closed. A contact
//!   who never wrote has no window (closed). An inbound timestamp in the future
//!   (clock skew) counts as open.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};

use super::{Channel, MessageType};

/// One megabyte as the platforms' docs count it: **1 MB = 1,000,000 bytes**
/// (decimal, not MiB). Every size in the tables is a multiple of this.
pub const MB: u64 = 1_000_000;

/// What a [`TextLimit`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextUnit {
    /// Unicode scalar values (`str::chars().count()`).
    Chars,
    /// UTF-8 bytes (`str::len()`).
    Bytes,
}

impl TextUnit {
    /// The wire name used in violation data: `chars` or `bytes`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TextUnit::Chars => "chars",
            TextUnit::Bytes => "bytes",
        }
    }

    /// The word for a sentence: `characters` or `bytes`.
    pub const fn noun(self) -> &'static str {
        match self {
            TextUnit::Chars => "characters",
            TextUnit::Bytes => "bytes",
        }
    }

    /// The length of `text` in this unit.
    pub fn measure(self, text: &str) -> usize {
        match self {
            TextUnit::Chars => text.chars().count(),
            TextUnit::Bytes => text.len(),
        }
    }
}

/// A maximum text length: `max` [`TextUnit`]s, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLimit {
    pub max: usize,
    pub unit: TextUnit,
}

impl TextLimit {
    pub const fn chars(max: usize) -> Self {
        Self {
            max,
            unit: TextUnit::Chars,
        }
    }

    pub const fn bytes(max: usize) -> Self {
        Self {
            max,
            unit: TextUnit::Bytes,
        }
    }
}

/// One sendable attachment type on one channel: the MIME types it accepts
/// (lowercase, without parameters) and the largest file, in bytes, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaRule {
    pub message_type: MessageType,
    pub mime_types: &'static [&'static str],
    pub max_bytes: u64,
}

impl MediaRule {
    /// Whether `mime` (as a client sent it) is one of this rule's types, after
    /// [`normalize_mime`].
    pub fn allows_mime(&self, mime: &str) -> bool {
        let mime = normalize_mime(mime);
        self.mime_types.iter().any(|m| *m == mime)
    }
}

/// The human-agent extension of a window: with `tag` on the message, a human
/// may reply for `hours` after the contact's last inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanAgentRule {
    pub tag: &'static str,
    pub hours: u32,
}

/// A customer-service window: free-form messages only within `hours` of the
/// contact's last inbound message; outside it only notes and (where the channel
/// has them) templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRule {
    pub hours: u32,
    pub human_agent: Option<HumanAgentRule>,
}

/// One channel's sending rules. The tables are the `static`s below, reached
/// through [`Channel::rules`].
///
/// What a channel can send follows from the table: `text` always (limited by
/// `text_limit`), each media type that has a [`MediaRule`], `template` where
/// `templates` is true, and `note` everywhere. `location`, `reaction` and
/// `activity` are never composed through the API (the composer has no fields
/// for them; reactions and activities are recorded, not sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelRules {
    /// Limit on message text (and on captions of media messages). `None` would
    /// mean unlimited; every channel has one today.
    pub text_limit: Option<TextLimit>,
    /// One rule per sendable media type; a media type without a rule is not sendable.
    pub media: &'static [MediaRule],
    /// The platform's customer-service window, if it has one.
    pub window: Option<WindowRule>,
    /// Whether template messages (`message_type: "template"`) exist on this channel.
    pub templates: bool,
}

impl ChannelRules {
    /// The rule for a media type, if this channel can send it.
    pub fn media_rule(&self, message_type: MessageType) -> Option<&'static MediaRule> {
        self.media.iter().find(|r| r.message_type == message_type)
    }

    /// The human-agent extension, if this channel's window has one.
    pub fn human_agent(&self) -> Option<HumanAgentRule> {
        self.window.and_then(|w| w.human_agent)
    }

    /// Whether a message of this type can be composed on this channel at all.
    pub fn can_send(&self, message_type: MessageType) -> bool {
        match message_type {
            MessageType::Text | MessageType::Note => true,
            MessageType::Template => self.templates,
            MessageType::Image
            | MessageType::Video
            | MessageType::Document
            | MessageType::Audio => self.media_rule(message_type).is_some(),
            MessageType::Location | MessageType::Reaction | MessageType::Activity => false,
        }
    }

    /// Every type [`ChannelRules::can_send`] accepts, in [`MessageType::ALL`] order.
    pub fn sendable_types(&self) -> Vec<MessageType> {
        MessageType::ALL
            .into_iter()
            .filter(|t| self.can_send(*t))
            .collect()
    }

    /// The types that may be sent while the window is closed: `note`, and
    /// `template` where the channel has templates.
    pub fn allowed_outside_window(&self) -> Vec<MessageType> {
        MessageType::ALL
            .into_iter()
            .filter(|t| exempt_from_window(*t) && self.can_send(*t))
            .collect()
    }
}

/// Notes are internal and never delivered, and templates are the platform's way
/// to reach a contact outside the window: neither is subject to it.
fn exempt_from_window(message_type: MessageType) -> bool {
    matches!(message_type, MessageType::Note | MessageType::Template)
}

/// Notes are internal (stored, never delivered) and the same on every channel:
/// non-empty text of at most **10,000 characters**, no attachment. They ignore the
/// channel's text limit, media table and window, so a note can be written
/// whatever the channel would accept.
pub const NOTE_TEXT_LIMIT: TextLimit = TextLimit::chars(10_000);

/// The human-agent allowance of Messenger and Instagram: tag `HUMAN_AGENT`,
/// human replies up to 7 days after the contact's last message.
const HUMAN_AGENT_7_DAYS: HumanAgentRule = HumanAgentRule {
    tag: "HUMAN_AGENT",
    hours: 7 * 24,
};

/// Meta's standard window, without an extension (WhatsApp).
const WINDOW_24H: WindowRule = WindowRule {
    hours: 24,
    human_agent: None,
};

/// Meta's standard window with the `HUMAN_AGENT` extension (Messenger, Instagram).
const WINDOW_24H_HUMAN_AGENT: WindowRule = WindowRule {
    hours: 24,
    human_agent: Some(HUMAN_AGENT_7_DAYS),
};

/// Common office documents: PDF, plain text, Word, Excel, PowerPoint (old and OOXML).
const OFFICE_DOCUMENTS: &[&str] = &[
    "application/pdf",
    "text/plain",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
];

/// Office documents plus CSV: what the web widgets can offer for download.
const WEB_DOCUMENTS: &[&str] = &[
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
];

/// Aliases clients and browsers send for the canonical types in the tables.
/// Applied by [`normalize_mime`] before a type is looked up.
pub const MIME_ALIASES: &[(&str, &str)] = &[
    ("image/jpg", "image/jpeg"),
    ("image/pjpeg", "image/jpeg"),
    ("audio/mp3", "audio/mpeg"),
    ("audio/x-aac", "audio/aac"),
    ("audio/m4a", "audio/mp4"),
    ("audio/x-m4a", "audio/mp4"),
    ("audio/x-wav", "audio/wav"),
    ("audio/wave", "audio/wav"),
    ("audio/vnd.wave", "audio/wav"),
    ("video/avi", "video/x-msvideo"),
    ("video/msvideo", "video/x-msvideo"),
    ("video/3gp", "video/3gpp"),
];

/// A MIME type as the tables spell it: without parameters, trimmed, lowercase,
/// aliases mapped to their canonical type.
pub fn normalize_mime(mime: &str) -> String {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    MIME_ALIASES
        .iter()
        .find(|(alias, _)| *alias == essence)
        .map_or(essence, |(_, canonical)| (*canonical).to_owned())
}

/// **WhatsApp** (Cloud API). Text 4,096 characters; image jpeg/png 5 MB; video
/// mp4/3gpp 16 MB; audio aac/amr/mpeg/mp4/ogg 16 MB; document (office types)
/// 100 MB; templates; 24 h window without extension (templates go outside it).
/// Stickers (webp) are not composable here.
pub static WHATSAPP: ChannelRules = ChannelRules {
    text_limit: Some(TextLimit::chars(4_096)),
    media: &[
        MediaRule {
            message_type: MessageType::Image,
            mime_types: &["image/jpeg", "image/png"],
            max_bytes: 5 * MB,
        },
        MediaRule {
            message_type: MessageType::Video,
            mime_types: &["video/mp4", "video/3gpp"],
            max_bytes: 16 * MB,
        },
        MediaRule {
            message_type: MessageType::Audio,
            mime_types: &[
                "audio/aac",
                "audio/amr",
                "audio/mpeg",
                "audio/mp4",
                "audio/ogg",
            ],
            max_bytes: 16 * MB,
        },
        MediaRule {
            message_type: MessageType::Document,
            mime_types: OFFICE_DOCUMENTS,
            max_bytes: 100 * MB,
        },
    ],
    window: Some(WINDOW_24H),
    templates: true,
};

/// **Instagram** (Messenger API for Instagram). Text 1,000 UTF-8 **bytes**;
/// image png/jpeg/gif 8 MB; audio aac/m4a (`audio/mp4`)/wav 25 MB; video
/// mp4/ogg/avi/mov/webm 25 MB; document pdf 25 MB; no templates; 24 h window,
/// 7 days with `HUMAN_AGENT`.
pub static INSTAGRAM: ChannelRules = ChannelRules {
    text_limit: Some(TextLimit::bytes(1_000)),
    media: &[
        MediaRule {
            message_type: MessageType::Image,
            mime_types: &["image/png", "image/jpeg", "image/gif"],
            max_bytes: 8 * MB,
        },
        MediaRule {
            message_type: MessageType::Audio,
            mime_types: &["audio/aac", "audio/mp4", "audio/wav"],
            max_bytes: 25 * MB,
        },
        MediaRule {
            message_type: MessageType::Video,
            mime_types: &[
                "video/mp4",
                "video/ogg",
                "video/x-msvideo",
                "video/quicktime",
                "video/webm",
            ],
            max_bytes: 25 * MB,
        },
        MediaRule {
            message_type: MessageType::Document,
            mime_types: &["application/pdf"],
            max_bytes: 25 * MB,
        },
    ],
    window: Some(WINDOW_24H_HUMAN_AGENT),
    templates: false,
};

/// **Messenger** (Send API). Text 2,000 characters; image 8 MB, other media
/// 25 MB; no templates; 24 h window, 7 days with `HUMAN_AGENT`.
///
/// Meta publishes sizes but no MIME list for Messenger attachments; the types
/// here are our choice, the formats Messenger's own apps play and show: image
/// jpeg/png/gif, video mp4/mov/webm, audio mpeg/mp4/aac/wav/ogg, office documents.
pub static MESSENGER: ChannelRules = ChannelRules {
    text_limit: Some(TextLimit::chars(2_000)),
    media: &[
        MediaRule {
            message_type: MessageType::Image,
            mime_types: &["image/jpeg", "image/png", "image/gif"],
            max_bytes: 8 * MB,
        },
        MediaRule {
            message_type: MessageType::Video,
            mime_types: &["video/mp4", "video/quicktime", "video/webm"],
            max_bytes: 25 * MB,
        },
        MediaRule {
            message_type: MessageType::Audio,
            mime_types: &[
                "audio/mpeg",
                "audio/mp4",
                "audio/aac",
                "audio/wav",
                "audio/ogg",
            ],
            max_bytes: 25 * MB,
        },
        MediaRule {
            message_type: MessageType::Document,
            mime_types: OFFICE_DOCUMENTS,
            max_bytes: 25 * MB,
        },
    ],
    window: Some(WINDOW_24H_HUMAN_AGENT),
    templates: false,
};

/// **Webchat** (our own widget; no platform rules apply, so these are our
/// choices). Text 10,000 characters, generous for a chat bubble yet bounded;
/// media 25 MB per file (the largest Meta limit short of WhatsApp documents),
/// in formats every current browser shows or plays: image jpeg/png/gif/webp,
/// video mp4/webm/mov, audio mpeg/mp4/aac/ogg/wav/webm, office documents and
/// CSV. No window, no templates.
pub static WEBCHAT: ChannelRules = WEB_WIDGET;

/// **Playground** (the in-app test channel): the same rules as [`WEBCHAT`], so
/// what works in the playground works on the website widget.
pub static PLAYGROUND: ChannelRules = WEB_WIDGET;

/// The rules shared by webchat and playground.
const WEB_WIDGET: ChannelRules = ChannelRules {
    text_limit: Some(TextLimit::chars(10_000)),
    media: &[
        MediaRule {
            message_type: MessageType::Image,
            mime_types: &["image/jpeg", "image/png", "image/gif", "image/webp"],
            max_bytes: 25 * MB,
        },
        MediaRule {
            message_type: MessageType::Video,
            mime_types: &["video/mp4", "video/webm", "video/quicktime"],
            max_bytes: 25 * MB,
        },
        MediaRule {
            message_type: MessageType::Audio,
            mime_types: &[
                "audio/mpeg",
                "audio/mp4",
                "audio/aac",
                "audio/ogg",
                "audio/wav",
                "audio/webm",
            ],
            max_bytes: 25 * MB,
        },
        MediaRule {
            message_type: MessageType::Document,
            mime_types: WEB_DOCUMENTS,
            max_bytes: 25 * MB,
        },
    ],
    window: None,
    templates: false,
};

/// **SMS / MMS** (through AgentPhone). Text 1,600 characters (the common
/// provider maximum for a concatenated SMS); MMS media image jpeg/png/gif,
/// video mp4, audio mpeg/mp4, at most 5 MB (Twilio's cap, which is per message
/// in total: a message carries one attachment, so it is the file's limit).
/// Many carriers deliver less (about 1 MB, toll-free 750 KB) and transcode or
/// drop larger media; that is a delivery outcome, not a rule we can check.
/// No documents, no window, no templates.
pub static SMS: ChannelRules = ChannelRules {
    text_limit: Some(TextLimit::chars(1_600)),
    media: &[
        MediaRule {
            message_type: MessageType::Image,
            mime_types: &["image/jpeg", "image/png", "image/gif"],
            max_bytes: 5 * MB,
        },
        MediaRule {
            message_type: MessageType::Video,
            mime_types: &["video/mp4"],
            max_bytes: 5 * MB,
        },
        MediaRule {
            message_type: MessageType::Audio,
            mime_types: &["audio/mpeg", "audio/mp4"],
            max_bytes: 5 * MB,
        },
    ],
    window: None,
    templates: false,
};

/// The attachment of a message about to be sent, as the client declared it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaCheck<'a> {
    pub mime: &'a str,
    pub size: u64,
}

/// What [`check_outgoing`] needs to know about a message about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingCheck<'a> {
    pub message_type: MessageType,
    /// The message text, or the caption of a media message.
    pub text: Option<&'a str>,
    pub media: Option<MediaCheck<'a>>,
    /// When the contact last wrote in this conversation; `None` if never.
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// The sender asks for the `HUMAN_AGENT` tag (Messenger, Instagram).
    pub human_agent: bool,
}

impl<'a> OutgoingCheck<'a> {
    /// A message of this type with no text, no media, no inbound message, no tag.
    pub fn new(message_type: MessageType) -> Self {
        Self {
            message_type,
            text: None,
            media: None,
            last_inbound_at: None,
            human_agent: false,
        }
    }

    pub fn with_text(mut self, text: &'a str) -> Self {
        self.text = Some(text);
        self
    }

    pub fn with_media(mut self, mime: &'a str, size: u64) -> Self {
        self.media = Some(MediaCheck { mime, size });
        self
    }

    pub fn with_last_inbound_at(mut self, at: DateTime<Utc>) -> Self {
        self.last_inbound_at = Some(at);
        self
    }

    pub fn with_human_agent(mut self) -> Self {
        self.human_agent = true;
        self
    }
}

/// A broken channel rule. The service layer answers it as 422 `Unprocessable`
/// with [`RuleViolation::message`] and [`RuleViolation::to_data`]
/// (the messaging layer's conversion into a Feathers error does exactly that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleViolation {
    /// The window is closed for this message type. `window_hours` is the window
    /// that was applied (24, or the human-agent hours when the tag was asked for).
    CustomerServiceWindow {
        channel: Channel,
        last_inbound_at: Option<DateTime<Utc>>,
        window_hours: u32,
        allowed_message_types: Vec<MessageType>,
        /// The channel's human-agent extension, if it has one.
        human_agent: Option<HumanAgentRule>,
        /// Whether the message asked for the human-agent tag.
        human_agent_requested: bool,
    },
    TextLength {
        channel: Channel,
        message_type: MessageType,
        unit: TextUnit,
        limit: usize,
        actual: usize,
    },
    MediaSize {
        channel: Channel,
        message_type: MessageType,
        limit: u64,
        actual: u64,
    },
    MediaType {
        channel: Channel,
        message_type: MessageType,
        allowed: &'static [&'static str],
        actual: String,
    },
    TemplatesUnsupported {
        channel: Channel,
    },
    MessageTypeNotSendable {
        channel: Channel,
        message_type: MessageType,
    },
    TextRequired {
        channel: Channel,
        message_type: MessageType,
    },
    MediaRequired {
        channel: Channel,
        message_type: MessageType,
    },
    /// An attachment on a message type that has none (`text`, `note`).
    MediaNotAllowed {
        channel: Channel,
        message_type: MessageType,
    },
    HumanAgentUnsupported {
        channel: Channel,
    },
}

/// The channels where `pred` holds for the rule table, as wire names.
fn channels_where(pred: impl Fn(&ChannelRules) -> bool) -> Vec<&'static str> {
    Channel::ALL
        .into_iter()
        .filter(|c| pred(c.rules()))
        .map(Channel::as_str)
        .collect()
}

fn type_names(types: &[MessageType]) -> Vec<&'static str> {
    types.iter().map(|t| t.as_str()).collect()
}

impl RuleViolation {
    /// The rule's name, `data.rule` in the 422 answer.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::CustomerServiceWindow { .. } => "customer_service_window",
            Self::TextLength { .. } => "text_length",
            Self::MediaSize { .. } => "media_size",
            Self::MediaType { .. } => "media_type",
            Self::TemplatesUnsupported { .. } => "templates_unsupported",
            Self::MessageTypeNotSendable { .. } => "message_type_not_sendable",
            Self::TextRequired { .. } => "text_required",
            Self::MediaRequired { .. } => "media_required",
            Self::MediaNotAllowed { .. } => "media_not_allowed",
            Self::HumanAgentUnsupported { .. } => "human_agent_unsupported",
        }
    }

    /// The channel whose rule was broken.
    pub fn channel(&self) -> Channel {
        match self {
            Self::CustomerServiceWindow { channel, .. }
            | Self::TextLength { channel, .. }
            | Self::MediaSize { channel, .. }
            | Self::MediaType { channel, .. }
            | Self::TemplatesUnsupported { channel }
            | Self::MessageTypeNotSendable { channel, .. }
            | Self::TextRequired { channel, .. }
            | Self::MediaRequired { channel, .. }
            | Self::MediaNotAllowed { channel, .. }
            | Self::HumanAgentUnsupported { channel } => *channel,
        }
    }

    /// The `data` object of the 422 answer: `rule`, `channel`, then the limit
    /// and the actual value under the names a composer shows. Timestamps are
    /// UTC with milliseconds.
    pub fn to_data(&self) -> Value {
        let mut data = Map::new();
        data.insert("rule".into(), self.rule().into());
        data.insert("channel".into(), self.channel().as_str().into());
        let rest = match self {
            Self::CustomerServiceWindow {
                last_inbound_at,
                window_hours,
                allowed_message_types,
                human_agent,
                human_agent_requested,
                ..
            } => {
                let mut rest = json!({
                    "last_inbound_at": last_inbound_at.as_ref().map(format_timestamp),
                    "window_hours": window_hours,
                    "allowed_message_types": type_names(allowed_message_types),
                });
                if let Some(h) = human_agent {
                    rest["human_agent"] = json!({
                        "tag": h.tag,
                        "window_hours": h.hours,
                        "requested": human_agent_requested,
                    });
                }
                rest
            }
            Self::TextLength {
                message_type,
                unit,
                limit,
                actual,
                ..
            } => json!({
                "message_type": message_type.as_str(),
                "unit": unit.as_str(),
                "limit": limit,
                "actual": actual,
            }),
            Self::MediaSize {
                message_type,
                limit,
                actual,
                ..
            } => json!({
                "message_type": message_type.as_str(),
                "limit": limit,
                "actual": actual,
            }),
            Self::MediaType {
                message_type,
                allowed,
                actual,
                ..
            } => json!({
                "message_type": message_type.as_str(),
                "allowed": allowed,
                "actual": actual,
            }),
            Self::TemplatesUnsupported { .. } => json!({
                "supported_channels": channels_where(|r| r.templates),
            }),
            Self::MessageTypeNotSendable {
                channel,
                message_type,
            } => json!({
                "message_type": message_type.as_str(),
                "sendable_message_types": type_names(&channel.rules().sendable_types()),
            }),
            Self::TextRequired { message_type, .. }
            | Self::MediaRequired { message_type, .. }
            | Self::MediaNotAllowed { message_type, .. } => json!({
                "message_type": message_type.as_str(),
            }),
            Self::HumanAgentUnsupported { .. } => json!({
                "supported_channels": channels_where(|r| r.human_agent().is_some()),
            }),
        };
        if let Value::Object(rest) = rest {
            data.extend(rest);
        }
        Value::Object(data)
    }

    /// A sentence for a person: what was refused and what is allowed.
    pub fn message(&self) -> String {
        match self {
            Self::CustomerServiceWindow {
                channel,
                last_inbound_at,
                window_hours,
                allowed_message_types,
                human_agent,
                human_agent_requested,
            } => {
                let since = match last_inbound_at {
                    Some(at) => format!("the contact last wrote at {}", format_timestamp(at)),
                    None => "the contact has not written yet".to_owned(),
                };
                let mut s = format!(
                    "The {window_hours}-hour customer-service window on {channel} is closed ({since}); \
                     only {} messages can be sent",
                    type_names(allowed_message_types).join(" and ")
                );
                if let (Some(h), false) = (human_agent, human_agent_requested) {
                    s.push_str(&format!(
                        ", or a human reply tagged {} within {} hours",
                        h.tag, h.hours
                    ));
                }
                s.push('.');
                s
            }
            Self::TextLength {
                channel,
                message_type: MessageType::Note,
                unit,
                limit,
                actual,
            } => format!(
                "Notes are limited to {limit} {}; this one has {actual} (channel {channel}).",
                unit.noun()
            ),
            Self::TextLength {
                channel,
                unit,
                limit,
                actual,
                ..
            } => format!(
                "The text is {actual} {noun}; {channel} allows at most {limit} {noun}.",
                noun = unit.noun()
            ),
            Self::MediaSize {
                channel,
                message_type,
                limit,
                actual,
            } => format!(
                "The {message_type} file is {actual} bytes; {channel} allows at most {limit} bytes \
                 ({} MB) for {message_type} messages.",
                limit / MB
            ),
            Self::MediaType {
                channel,
                message_type,
                allowed,
                actual,
            } => format!(
                "{channel} does not accept '{actual}' for {message_type} messages; allowed: {}.",
                allowed.join(", ")
            ),
            Self::TemplatesUnsupported { channel } => format!(
                "Template messages are not available on {channel} (only on {}).",
                channels_where(|r| r.templates).join(", ")
            ),
            Self::MessageTypeNotSendable {
                channel,
                message_type,
            } => format!(
                "{message_type} messages cannot be sent on {channel}; sendable: {}.",
                type_names(&channel.rules().sendable_types()).join(", ")
            ),
            Self::TextRequired { message_type, .. } => {
                format!("A {message_type} message needs non-empty text.")
            }
            Self::MediaRequired { message_type, .. } => {
                format!("A {message_type} message needs an attachment.")
            }
            Self::MediaNotAllowed { message_type, .. } => {
                format!("A {message_type} message cannot carry an attachment.")
            }
            Self::HumanAgentUnsupported { channel } => format!(
                "The HUMAN_AGENT tag is not available on {channel} (only on {}).",
                channels_where(|r| r.human_agent().is_some()).join(", ")
            ),
        }
    }
}

impl fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for RuleViolation {}

/// Check a message about to be sent on `channel` against that channel's rules,
/// at time `now`. Pure: no clock, no database.
///
/// In order, the first broken rule is answered:
///
/// 1. `note`: the same everywhere ([`NOTE_TEXT_LIMIT`]): no attachment
///    (`media_not_allowed`), non-empty text (`text_required`), at most 10,000
///    characters (`text_length`). The window, the channel's limits and the
///    `human_agent` flag do not apply to notes.
/// 2. The type must be sendable on the channel: `template` only where the table
///    has templates (`templates_unsupported`); `location`, `reaction`,
///    `activity` and media types without a [`MediaRule`] never
///    (`message_type_not_sendable`).
/// 3. `human_agent` asked for on a channel without the extension:
///    `human_agent_unsupported`.
/// 4. `template` passes here, at any time: its content (`messageData`) is
///    checked by the messages service, `text` and `media` are not looked at.
/// 5. The window, where the channel has one: open while less than 24 h (or the
///    human-agent hours, if asked for) have passed since `last_inbound_at`;
///    never-written is closed (`customer_service_window`).
/// 6. Content. `text`: no attachment, non-empty text (whitespace only counts as
///    empty). Media types: an attachment (`media_required`) of a listed MIME
///    type (`media_type`) and at most the size (`media_size`); a caption is
///    optional. Text and captions: at most the channel's text limit
///    (`text_length`).
pub fn check_outgoing(
    channel: Channel,
    msg: &OutgoingCheck<'_>,
    now: DateTime<Utc>,
) -> Result<(), RuleViolation> {
    let rules = channel.rules();
    let message_type = msg.message_type;

    if message_type == MessageType::Note {
        if msg.media.is_some() {
            return Err(RuleViolation::MediaNotAllowed {
                channel,
                message_type,
            });
        }
        return check_text(channel, message_type, msg.text, Some(NOTE_TEXT_LIMIT), true);
    }

    if !rules.can_send(message_type) {
        return Err(if message_type == MessageType::Template {
            RuleViolation::TemplatesUnsupported { channel }
        } else {
            RuleViolation::MessageTypeNotSendable {
                channel,
                message_type,
            }
        });
    }

    if msg.human_agent && rules.human_agent().is_none() {
        return Err(RuleViolation::HumanAgentUnsupported { channel });
    }

    if exempt_from_window(message_type) {
        return Ok(());
    }

    if let Some(window) = rules.window {
        check_window(channel, rules, window, msg, now)?;
    }

    match rules.media_rule(message_type) {
        Some(media_rule) => {
            let Some(media) = msg.media else {
                return Err(RuleViolation::MediaRequired {
                    channel,
                    message_type,
                });
            };
            if !media_rule.allows_mime(media.mime) {
                return Err(RuleViolation::MediaType {
                    channel,
                    message_type,
                    allowed: media_rule.mime_types,
                    actual: media.mime.to_owned(),
                });
            }
            if media.size > media_rule.max_bytes {
                return Err(RuleViolation::MediaSize {
                    channel,
                    message_type,
                    limit: media_rule.max_bytes,
                    actual: media.size,
                });
            }
            check_text(channel, message_type, msg.text, rules.text_limit, false)
        }
        None => {
            if msg.media.is_some() {
                return Err(RuleViolation::MediaNotAllowed {
                    channel,
                    message_type,
                });
            }
            check_text(channel, message_type, msg.text, rules.text_limit, true)
        }
    }
}

fn check_window(
    channel: Channel,
    rules: &ChannelRules,
    window: WindowRule,
    msg: &OutgoingCheck<'_>,
    now: DateTime<Utc>,
) -> Result<(), RuleViolation> {
    // The tag was checked against the table before; here it only lengthens the window.
    let hours = match (msg.human_agent, window.human_agent) {
        (true, Some(h)) => h.hours,
        _ => window.hours,
    };
    let open = msg
        .last_inbound_at
        .is_some_and(|at| now.signed_duration_since(at) < TimeDelta::hours(i64::from(hours)));
    if open {
        Ok(())
    } else {
        Err(RuleViolation::CustomerServiceWindow {
            channel,
            last_inbound_at: msg.last_inbound_at,
            window_hours: hours,
            allowed_message_types: rules.allowed_outside_window(),
            human_agent: window.human_agent,
            human_agent_requested: msg.human_agent,
        })
    }
}

fn check_text(
    channel: Channel,
    message_type: MessageType,
    text: Option<&str>,
    limit: Option<TextLimit>,
    required: bool,
) -> Result<(), RuleViolation> {
    let text = text.unwrap_or("");
    if required && text.trim().is_empty() {
        return Err(RuleViolation::TextRequired {
            channel,
            message_type,
        });
    }
    if let Some(limit) = limit {
        let actual = limit.unit.measure(text);
        if actual > limit.max {
            return Err(RuleViolation::TextLength {
                channel,
                message_type,
                unit: limit.unit,
                limit: limit.max,
                actual,
            });
        }
    }
    Ok(())
}

/// The wire form of a time in a rule's data: UTC with milliseconds.
fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests;
