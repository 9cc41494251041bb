//! Inbox gateway: a Feathers-style service backend for multi-channel inboxes.

pub mod admin;
pub mod agentphone;
pub mod apex;
pub mod app;
pub mod auth;
pub mod automations;
pub mod bulk;
pub mod channels;
pub mod config;
pub mod db;
pub mod delivery;
pub mod domain;
pub mod events;
pub mod feathers;
pub mod jobs;
pub mod messaging;
pub mod seed;
pub mod services;
pub mod storage;
pub mod telemetry;
pub mod webhooks;
