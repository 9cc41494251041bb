//! Integration tests through the HTTP API, one binary for all of them.

mod api_keys;
mod auth;
mod auth_hardening;
mod bounded_queries;
mod channel_rules_http;
mod commands;
mod contacts;
mod conversation_counts;
mod conversation_views;
mod conversations;
mod deep_pages;
mod events;
mod feathers_rest;
mod generated_requests;
mod helpers;
mod idempotency;
mod messages;
mod migrations;
mod pipelines;
mod predefined_messages;
mod rate_limit;
mod smaller_holes;
mod tenant_isolation_domain;
mod tenant_references;
mod users;
