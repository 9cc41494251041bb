//! AgentPhone (SMS, MMS and iMessage through one REST API): the HTTP client, its wire
//! types and errors, and webhook signature checks. Kept apart from the channel code so
//! that what AgentPhone sends and answers is described in one place
//! (research notes: `agentphone/NOTES.md`).

pub mod client;
pub mod errors;
pub mod import;
pub mod inbound;
pub mod ingest;
pub mod signature;
pub mod wire;

pub use client::{CallError, Client, Http};
pub use errors::ApiError;
pub use signature::{SignatureError, TOLERANCE_SECS, sign, verify};
pub use wire::{
    BackgroundSet, ConversationMessage, ConversationPage, ConversationSummary, MessagePage,
    Participant, ReactionSent, SentMessage, TypingSent,
};
