//! Integration tests through the HTTP API, one binary for all of them.

mod api_keys;
mod auth;
mod channel_rules_http;
mod commands;
mod contacts;
mod conversation_counts;
mod conversation_views;
mod conversations;
mod deep_pages;
mod events;
mod feathers_rest;
mod helpers;
mod idempotency;
mod messages;
mod migrations;
mod pipelines;
mod predefined_messages;
mod rate_limit;
mod reliability;
mod tenant_isolation_domain;
mod users;
