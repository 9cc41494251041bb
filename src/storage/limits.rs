//! What each `file_category` accepts: by default the conversation's channel limits
//! (`src/channels/rules.rs`: `image`, `audio`, `video`, and `file` for documents),
//! or the configured `s3_limits` of that category on every channel.

use crate::channels::rules::normalize_mime;
use crate::channels::{Channel, MessageType};
use crate::config::CategoryLimit;
use crate::feathers::{FeathersError, Result};
use serde_json::json;
use std::collections::BTreeMap;

/// A `file_category` of `/conversation-files`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    Image,
    Audio,
    Video,
    File,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Image,
        Category::Audio,
        Category::Video,
        Category::File,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Image => "image",
            Category::Audio => "audio",
            Category::Video => "video",
            Category::File => "file",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The category of a MIME type: its top-level type, else `file`.
    pub fn of_mime(mime: &str) -> Self {
        let mime = normalize_mime(mime);
        match mime.split('/').next() {
            Some("image") => Category::Image,
            Some("audio") => Category::Audio,
            Some("video") => Category::Video,
            _ => Category::File,
        }
    }

    /// The message type that sends a file of this category.
    pub fn message_type(self) -> MessageType {
        match self {
            Category::Image => MessageType::Image,
            Category::Audio => MessageType::Audio,
            Category::Video => MessageType::Video,
            Category::File => MessageType::Document,
        }
    }
}

/// The configured limits (the channel's where none is set).
#[derive(Debug, Clone, Default)]
pub struct Limits(BTreeMap<Category, CategoryLimit>);

/// One category's accepted types and largest size on one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub mime_types: Vec<String>,
    pub max_bytes: u64,
}

impl Limits {
    /// From `s3_limits` (names already validated; unknown ones are ignored).
    pub fn new(configured: &BTreeMap<String, CategoryLimit>) -> Self {
        Self(
            configured
                .iter()
                .filter_map(|(name, limit)| Some((Category::parse(name)?, limit.clone())))
                .collect(),
        )
    }

    /// What `category` accepts on `channel`; `None`: the channel sends no such files.
    pub fn rule(&self, channel: Channel, category: Category) -> Option<Rule> {
        let configured = self.0.get(&category);
        let channel_rule = channel.rules().media_rule(category.message_type());
        let mime_types = match configured.and_then(|c| c.mime_types.clone()) {
            Some(types) => types.iter().map(|t| normalize_mime(t)).collect(),
            None => channel_rule?
                .mime_types
                .iter()
                .map(|t| (*t).to_string())
                .collect(),
        };
        let max_bytes = match configured.and_then(|c| c.max_bytes) {
            Some(max) => max,
            None => channel_rule?.max_bytes,
        };
        Some(Rule {
            mime_types,
            max_bytes,
        })
    }

    /// 422 naming the rule, the limit and the value unless a `category` file of
    /// type `mime` and `size` bytes may be stored for a `channel` conversation.
    pub fn check(&self, channel: Channel, category: Category, mime: &str, size: u64) -> Result<()> {
        let Some(rule) = self.rule(channel, category) else {
            return Err(FeathersError::unprocessable(format!(
                "{channel} conversations take no {} files",
                category.as_str()
            ))
            .with_data(json!({
                "rule": "file_category", "channel": channel.as_str(),
                "file_category": category.as_str(), "allowed": allowed_categories(self, channel),
            })));
        };
        let normalized = normalize_mime(mime);
        if !rule.mime_types.contains(&normalized) {
            return Err(FeathersError::unprocessable(format!(
                "file_type {mime} is not accepted for {} files on {channel}; accepted: {}",
                category.as_str(),
                rule.mime_types.join(", ")
            ))
            .with_data(json!({
                "rule": "file_type", "channel": channel.as_str(), "file_category": category.as_str(),
                "allowed": rule.mime_types, "actual": mime,
            })));
        }
        if size > rule.max_bytes {
            return Err(FeathersError::unprocessable(format!(
                "file_size {size} is above the {} bytes {} files may have on {channel}",
                rule.max_bytes,
                category.as_str()
            ))
            .with_data(json!({
                "rule": "file_size", "channel": channel.as_str(), "file_category": category.as_str(),
                "limit": rule.max_bytes, "actual": size,
            })));
        }
        Ok(())
    }
}

fn allowed_categories(limits: &Limits, channel: Channel) -> Vec<&'static str> {
    (Category::ALL.into_iter())
        .filter(|c| limits.rule(channel, *c).is_some())
        .map(Category::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::rules::MB;

    #[test]
    fn the_channel_limits_by_default_the_configured_ones_when_set() {
        let limits = Limits::default();
        assert!(
            limits
                .check(Channel::Sms, Category::Image, "image/jpeg", 5 * MB)
                .is_ok()
        );
        let e = limits
            .check(Channel::Sms, Category::Image, "image/jpeg", 5 * MB + 1)
            .unwrap_err();
        assert_eq!(e.code(), 422);
        assert_eq!(e.data.as_ref().unwrap()["rule"], "file_size");
        assert_eq!(e.data.as_ref().unwrap()["limit"], 5 * MB);
        let e = limits
            .check(Channel::Sms, Category::Image, "image/webp", 1)
            .unwrap_err();
        assert_eq!(e.data.as_ref().unwrap()["rule"], "file_type");
        let e = limits
            .check(Channel::Sms, Category::File, "application/pdf", 1)
            .unwrap_err();
        assert_eq!(e.data.as_ref().unwrap()["rule"], "file_category");
        assert!(
            limits
                .check(
                    Channel::Whatsapp,
                    Category::File,
                    "application/pdf",
                    100 * MB
                )
                .is_ok()
        );
        assert!(
            limits
                .check(Channel::Sms, Category::Image, "image/JPG", 10)
                .is_ok(),
            "aliases"
        );

        let configured = BTreeMap::from([
            (
                "image".to_string(),
                CategoryLimit {
                    mime_types: Some(vec!["image/webp".into()]),
                    max_bytes: None,
                },
            ),
            (
                "file".to_string(),
                CategoryLimit {
                    mime_types: Some(vec!["text/plain".into()]),
                    max_bytes: Some(10),
                },
            ),
        ]);
        let limits = Limits::new(&configured);
        assert!(
            limits
                .check(Channel::Sms, Category::Image, "image/webp", 5 * MB)
                .is_ok()
        );
        assert!(
            limits
                .check(Channel::Sms, Category::Image, "image/jpeg", 1)
                .is_err()
        );
        assert!(
            limits
                .check(Channel::Sms, Category::File, "text/plain", 10)
                .is_ok(),
            "configured on every channel"
        );
        assert!(
            limits
                .check(Channel::Sms, Category::File, "text/plain", 11)
                .is_err()
        );
    }

    #[test]
    fn categories_of_mime_types() {
        assert_eq!(Category::of_mime("image/png"), Category::Image);
        assert_eq!(Category::of_mime("Audio/MP3"), Category::Audio);
        assert_eq!(Category::of_mime("video/mp4; codecs=x"), Category::Video);
        assert_eq!(Category::of_mime("application/pdf"), Category::File);
    }
}
