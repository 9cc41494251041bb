//! The schema, one migration at a time; the only way it changes.

pub use sea_orm_migration::prelude::*;

mod conversation_counts;
pub mod current;
mod m0001_foundation;
mod m0002_messages;
mod m0003_contact_search;
mod m0004_message_counts;
mod m0005_conversation_versions;
mod m0006_ordered_count_locks;
mod m0007_contact_copies;
mod m0008_tenant_references;
mod m0009_token_revocation;
mod m0010_idempotency_per_caller;
mod m0011_one_playground_conversation;
mod m0012_jobs;
mod m0013_events;
mod m0014_job_claim_order;
mod m0015_agentphone;
mod m0016_conversation_files;
mod m0017_bulk_actions;
mod m0018_automations;
mod m0019_message_search;
mod triggers;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_foundation::Migration),
            Box::new(m0002_messages::Migration),
            Box::new(m0003_contact_search::Migration),
            Box::new(m0004_message_counts::Migration),
            Box::new(m0005_conversation_versions::Migration),
            Box::new(m0006_ordered_count_locks::Migration),
            Box::new(m0007_contact_copies::Migration),
            Box::new(m0008_tenant_references::Migration),
            Box::new(m0009_token_revocation::Migration),
            Box::new(m0010_idempotency_per_caller::Migration),
            Box::new(m0011_one_playground_conversation::Migration),
            Box::new(m0012_jobs::Migration),
            Box::new(m0013_events::Migration),
            Box::new(m0014_job_claim_order::Migration),
            Box::new(m0015_agentphone::Migration),
            Box::new(m0016_conversation_files::Migration),
            Box::new(m0017_bulk_actions::Migration),
            Box::new(m0018_automations::Migration),
            Box::new(m0019_message_search::Migration),
        ]
    }
}
