//! How much one channel account may send at once: a few sends in flight per account
//! (AgentPhone publishes no limit for sends and enforces one server-side), and a
//! pause for the whole account when AgentPhone answers 429, so the account's other
//! sends wait out its `Retry-After` instead of each earning a 429 of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

struct Gate {
    permits: Arc<Semaphore>,
    paused_until: Mutex<Option<Instant>>,
}

pub struct AccountLimits {
    per_account: usize,
    gates: Mutex<HashMap<i64, Arc<Gate>>>,
}

impl AccountLimits {
    pub fn new(per_account: usize) -> Self {
        Self {
            per_account: per_account.max(1),
            gates: Mutex::new(HashMap::new()),
        }
    }

    fn gate(&self, account: i64) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        gates
            .entry(account)
            .or_insert_with(|| {
                Arc::new(Gate {
                    permits: Arc::new(Semaphore::new(self.per_account)),
                    paused_until: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Waits until the account is not paused and one of its permits is free.
    pub async fn acquire(&self, account: i64) -> OwnedSemaphorePermit {
        let gate = self.gate(account);
        loop {
            let until = *gate.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            match until {
                Some(at) if at > Instant::now() => tokio::time::sleep_until(at).await,
                _ => break,
            }
        }
        gate.permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Holds every send of the account for `pause`.
    pub fn pause(&self, account: i64, pause: Duration) {
        let gate = self.gate(account);
        let mut until = gate.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        let at = Instant::now() + pause;
        if until.is_none_or(|u| u < at) {
            *until = Some(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_wait_for_a_permit_and_for_a_pause() {
        let limits = AccountLimits::new(1);
        let first = limits.acquire(1).await;
        // Another account is not held by this one.
        drop(limits.acquire(2).await);
        let waiting = tokio::time::timeout(Duration::from_millis(10), limits.acquire(1)).await;
        assert!(waiting.is_err(), "a second send of the account waits");
        drop(first);
        limits.pause(1, Duration::from_millis(200));
        let start = Instant::now();
        drop(limits.acquire(1).await);
        assert!(start.elapsed() >= Duration::from_millis(200));
    }
}
