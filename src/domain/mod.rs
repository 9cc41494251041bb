//! The domain: one module per aggregate, with its typed commands and records, its
//! rules and the only SQL that writes its tables; and the unit of work every
//! change runs in. Nothing here knows HTTP or the services.

pub mod automations;
pub mod bulk_actions;
pub mod channel_accounts;
pub mod contacts;
pub mod conversation_files;
pub mod conversations;
pub mod messages;
pub mod provider_threads;
pub mod records;
pub mod unit_of_work;
pub mod webhook_receipts;

pub use records::Readers;
pub use unit_of_work::{Actor, UnitOfWork, Units};
