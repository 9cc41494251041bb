//! Durable jobs (`jobs` table): enqueued inside the transaction of the change that
//! asks for the work, claimed by any instance with `FOR UPDATE SKIP LOCKED`
//! (PostgreSQL) or one atomic `UPDATE ... RETURNING` (SQLite), run under a lease
//! with a heartbeat, retried with exponential backoff and jitter, kept with their
//! last error when they fail for good. No library fits: none can enqueue inside a
//! sea-orm transaction (DEPS-NEXT.md section 1).

pub mod kinds;
pub mod queue;
pub mod worker;

pub use queue::{Job, NewJob, enqueue};
pub use worker::{Handler, JobError, Worker, WorkerConfig, wake};
