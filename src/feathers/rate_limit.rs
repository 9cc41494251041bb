//! A request limit per tenant over a sliding window, kept in this process.
//!
//! The window slides with the sliding-window-counter method: the count of the
//! current fixed window, plus the previous window's count weighted by the share of
//! it the sliding window still covers. It needs two counters per tenant whatever
//! the limit, and never lets more than the limit through in any window-long span
//! by more than the previous window's rounding. Refused requests are not counted.
//!
//! The map holds one entry per tenant (an authenticated organization) that made a
//! request in the last two windows: once it holds [`PRUNE_AT`] entries, those of
//! tenants idle for two windows or more are dropped (they count for nothing, their
//! next request starts at zero either way), so it is bounded by the active tenants,
//! about 48 bytes each, and never grows by requests alone.

use super::error::{ErrorKind, FeathersError, Result};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries at which idle tenants are dropped (then twice the entries left, if more).
pub const PRUNE_AT: usize = 10_000;

/// `limit` requests per `window` for each tenant.
pub struct RateLimit {
    limit: u64,
    window_ms: u64,
    started: Instant,
    tenants: Mutex<Tenants>,
}

#[derive(Default)]
struct Tenants {
    counts: HashMap<i64, Counts>,
    /// The entry count at which idle tenants are dropped next.
    prune_at: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// Index of the fixed window `current` counts (time since start / window).
    window: u64,
    current: u64,
    previous: u64,
}

impl RateLimit {
    /// `None` when `limit` or `window` is zero: no limit.
    pub fn new(limit: u64, window: Duration) -> Option<Self> {
        let window_ms = window.as_millis() as u64;
        (limit > 0 && window_ms > 0).then(|| Self {
            limit,
            window_ms,
            started: Instant::now(),
            tenants: Mutex::new(Tenants {
                counts: HashMap::new(),
                prune_at: PRUNE_AT,
            }),
        })
    }

    /// How many tenants the limiter holds counts for.
    pub fn tenants(&self) -> usize {
        self.tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .counts
            .len()
    }

    /// Counts a request of `tenant`, or refuses it with 429 `TooManyRequests`
    /// (`data: {limit, current, window, retryAfter}`, seconds).
    pub fn check(&self, tenant: i64) -> Result<()> {
        self.check_at(tenant, self.started.elapsed().as_millis() as u64)
    }

    fn check_at(&self, tenant: i64, now_ms: u64) -> Result<()> {
        let window = now_ms / self.window_ms;
        let into = now_ms % self.window_ms;
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        let tenants = &mut *tenants;
        if tenants.counts.len() >= tenants.prune_at && !tenants.counts.contains_key(&tenant) {
            // Idle for two windows: both counts would be reset to zero at its next request.
            tenants.counts.retain(|_, c| c.window + 1 >= window);
            tenants.prune_at = (tenants.counts.len() * 2).max(PRUNE_AT);
        }
        let counts = tenants.counts.entry(tenant).or_default();
        if counts.window != window {
            counts.previous = if counts.window + 1 == window {
                counts.current
            } else {
                0
            };
            counts.current = 0;
            counts.window = window;
        }
        // The previous window's share still inside the sliding window, rounded up.
        let carried = (counts.previous * (self.window_ms - into)).div_ceil(self.window_ms);
        let current = carried + counts.current;
        if current < self.limit {
            counts.current += 1;
            return Ok(());
        }
        let retry_ms = self.retry_after_ms(*counts, into);
        let retry_after = retry_ms.div_ceil(1000).max(1);
        Err(FeathersError::new(
            ErrorKind::TooManyRequests,
            format!(
                "Too many requests: at most {} per {} seconds",
                self.limit,
                self.window_ms / 1000
            ),
        )
        .with_data(json!({
            "limit": self.limit,
            "current": current,
            "window": self.window_ms / 1000,
            "retryAfter": retry_after,
        })))
    }

    /// How long until one more request fits, with no other request in between.
    fn retry_after_ms(&self, counts: Counts, into: u64) -> u64 {
        let w = self.window_ms;
        // One more fits once `weighted + current + 1 <= limit`, the weighted part being
        // `older * (1 - f)` at a point `f` of a window.
        let fits_at = |older: u64, current: u64| -> Option<u64> {
            let room = self.limit.checked_sub(current + 1)?;
            if older <= room {
                return Some(0);
            }
            // older * (w - t) <= room * w  <=>  t >= w - room * w / older
            Some(w - room * w / older)
        };
        match fits_at(counts.previous, counts.current) {
            Some(t) if t < w => t.saturating_sub(into).max(1),
            // Not in this window: the current count becomes the older one next window.
            _ => {
                let next = fits_at(counts.current, 0).unwrap_or(w).min(w);
                (w - into) + next
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn refused(limit: &RateLimit, tenant: i64, at: u64) -> serde_json::Value {
        let err = limit.check_at(tenant, at).expect_err("refused");
        assert_eq!(err.code(), 429);
        *err.data.expect("data")
    }

    #[test]
    fn idle_tenants_are_dropped() {
        let w = HOUR.as_millis() as u64;
        let limit = RateLimit::new(3, HOUR).unwrap();
        for tenant in 0..PRUNE_AT as i64 {
            limit.check_at(tenant, 0).unwrap();
        }
        assert_eq!(limit.tenants(), PRUNE_AT);
        // Still within the next window: everyone still counts, nobody is dropped.
        limit.check_at(-1, w).unwrap();
        assert_eq!(limit.tenants(), PRUNE_AT + 1);
        for tenant in 0..3 * PRUNE_AT as i64 {
            limit.check_at(PRUNE_AT as i64 + tenant, 2 * w).unwrap();
        }
        // Two windows later the first ones were dropped as new tenants came.
        assert!(limit.tenants() <= 3 * PRUNE_AT + 1, "{}", limit.tenants());
        // A dropped tenant starts again from zero, as it would have anyway.
        for _ in 0..3 {
            limit.check_at(0, 2 * w).unwrap();
        }
        refused(&limit, 0, 2 * w);
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(RateLimit::new(0, HOUR).is_none());
        assert!(RateLimit::new(10, Duration::ZERO).is_none());
    }

    #[test]
    fn counts_per_tenant_up_to_the_limit() {
        let limit = RateLimit::new(3, HOUR).unwrap();
        for i in 0..3 {
            limit.check_at(1, i).expect("within the limit");
        }
        let data = refused(&limit, 1, 10);
        assert_eq!(data["limit"], 3);
        assert_eq!(data["current"], 3);
        assert_eq!(data["window"], 3600);
        // The three are taken as spread over this window, so they still weigh on the
        // next one: one more fits a third into it, 4,800 s from now.
        assert_eq!(data["retryAfter"], 4800);
        limit
            .check_at(2, 10)
            .expect("another tenant has its own count");
        refused(&limit, 1, 4_799_000);
        limit.check_at(1, 4_800_000).expect("fits after retryAfter");
    }

    #[test]
    fn the_previous_window_weighs_by_how_much_of_it_is_still_covered() {
        let w = HOUR.as_millis() as u64;
        let limit = RateLimit::new(100, HOUR).unwrap();
        for _ in 0..100 {
            limit.check_at(1, w - 1).unwrap();
        }
        // A quarter into the next window, 75 of those 100 still count.
        let at = w + w / 4;
        for _ in 0..25 {
            limit.check_at(1, at).expect("room for 25");
        }
        let data = refused(&limit, 1, at);
        assert_eq!(data["current"], 100);
        // 75 + 25 + 1 <= 100 once the old share is 74: at 26% of the window, 1% later.
        assert_eq!(data["retryAfter"], 36);
        limit
            .check_at(1, w + w * 26 / 100)
            .expect("fits after retryAfter");
        // Two windows later nothing of it is left.
        for _ in 0..100 {
            limit.check_at(1, 3 * w).unwrap();
        }
    }
}
