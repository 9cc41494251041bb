//! The `messages` table as services show it: its schema and read options (the
//! domain's `messages` module writes it).

use crate::apex::{PAGE_DEFAULT, PAGE_MAX};
use crate::feathers::{Direction, Field, FieldType, Schema, SqlOptions};

pub const DIRECTIONS: &[&str] = &["inbound", "outbound"];
/// The message types, by their wire names (one vocabulary: `channels::MessageType`).
pub const MESSAGE_TYPES: &[&str] = &crate::channels::MessageType::NAMES;
pub const SENDER_TYPES: &[&str] = &["contact", "user", "ai", "automation", "system"];
pub const DELIVERY_STATUSES: &[&str] = &[
    "received",
    "queued",
    "sending",
    "sent",
    "delivered",
    "read",
    "failed",
    "unconfirmed",
];
/// One record shape for every channel; fields a channel lacks are null.
pub fn schema() -> Schema {
    use FieldType::*;
    Schema::new(
        "id",
        vec![
            Field::new("organization_id", Integer).query(),
            Field::new("conversation_id", Integer).query(),
            Field::new("channel", String).query(),
            Field::new("direction", Enum(DIRECTIONS)).query(),
            Field::new("message_type", Enum(MESSAGE_TYPES)).query(),
            Field::new("sender_type", Enum(SENDER_TYPES)).query(),
            Field::new("sender_id", Integer).nullable().query(),
            Field::new("text", String).nullable().query().like(),
            Field::new("media", Json).nullable(),
            Field::new("template", Json).nullable(),
            Field::new("payload", Json).nullable(),
            Field::new("channel_account_id", Integer).nullable().query(),
            Field::new("external_id", String).nullable().query(),
            Field::new("reply_to_message_id", Integer)
                .nullable()
                .query(),
            Field::new("send_style", String).nullable(),
            Field::new("transport", String).nullable().query(),
            Field::new("delivery_status", Enum(DELIVERY_STATUSES))
                .nullable()
                .query(),
            Field::new("error", Json).nullable(),
            Field::new("attempts", Integer),
            Field::new("reply_parent_unresolved", Boolean).nullable(),
            Field::new("created_at", Timestamp).query(),
            Field::new("updated_at", Timestamp).query(),
        ],
    )
}

/// The messages of one channel, newest first, soft-deleted ones invisible.
pub fn options(channel: &'static str) -> SqlOptions {
    SqlOptions::new("messages", schema())
        .tenant("organization_id")
        .soft_delete("deleted_at")
        .timestamps("created_at", "updated_at")
        .paginate(PAGE_DEFAULT, Some(PAGE_MAX))
        .default_sort(vec![("created_at", Direction::Desc)])
        .fixed("channel", channel)
        .counter(std::sync::Arc::new(super::counts::MessageCounter {
            channel,
        }))
}
