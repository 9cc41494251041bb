//! Messages: storing them, their effect on conversations, composing outgoing
//! ones (rules, placeholders, wire payloads) and idempotent creates.

pub mod compose;
pub mod counts;
pub mod idempotency;
pub mod placeholders;
pub mod store;
mod violations;
