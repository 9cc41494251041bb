//! Failed logins, counted per email and per client address over a fixed window,
//! in this process (each instance counts its own).
//!
//! An attempt reserves one failure on each of its keys before the password is
//! verified, so concurrent guesses cannot overshoot the limit; a successful login
//! gives its reservation back (it does not count). Once a key has its limit of
//! failures, every login on it (a right password too, or the answer would still
//! tell a guess) gets 429 `TooManyRequests` with `retryAfter` until the window that
//! began with its first failure is over.
//!
//! The memory is bounded: at most [`CAPACITY`] keys, least useful evicted first;
//! emails are kept as 16 bytes of their SHA-256, addresses as the IP (IPv6 by its
//! /64, what one host usually holds).

use crate::feathers::error::ErrorKind;
use crate::feathers::{FeathersError, Result};
use quick_cache::unsync::Cache;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys remembered at most.
pub const CAPACITY: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Email([u8; 16]),
    Address(IpAddr),
}

impl Key {
    fn email(email: &str) -> Self {
        let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
        let mut short = [0u8; 16];
        short.copy_from_slice(&digest[..16]);
        Key::Email(short)
    }

    fn address(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                Key::Address(IpAddr::from(octets))
            }
            v4 => Key::Address(v4),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// The limits; 0 turns a limit off.
pub struct LoginThrottle {
    per_email: u32,
    per_address: u32,
    window: Duration,
    entries: Mutex<Cache<Key, Window>>,
}

/// A login in progress: its reserved failures, given back by [`LoginThrottle::succeeded`].
#[must_use]
pub struct Attempt {
    keys: Vec<Key>,
}

impl LoginThrottle {
    pub fn new(per_email: u32, per_address: u32, window: Duration) -> Self {
        Self {
            per_email,
            per_address,
            window,
            entries: Mutex::new(Cache::new(CAPACITY)),
        }
    }

    /// Reserves a failure for `email` and `address`, or refuses with 429 when either
    /// already has its limit in the current window.
    pub fn begin(&self, email: &str, address: Option<IpAddr>) -> Result<Attempt> {
        self.begin_at(email, address, Instant::now())
    }

    fn begin_at(&self, email: &str, address: Option<IpAddr>, now: Instant) -> Result<Attempt> {
        let mut keys = Vec::with_capacity(2);
        if self.per_email > 0 {
            keys.push((Key::email(email), self.per_email));
        }
        if let (Some(ip), true) = (address, self.per_address > 0) {
            keys.push((Key::address(ip), self.per_address));
        }
        if keys.is_empty() || self.window.is_zero() {
            return Ok(Attempt { keys: Vec::new() });
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut retry_after = None::<Duration>;
        for (key, limit) in &keys {
            if let Some(window) = entries.get(key)
                && now.duration_since(window.started) < self.window
                && window.failures >= *limit
            {
                let left = self.window - now.duration_since(window.started);
                retry_after = Some(retry_after.map_or(left, |r| r.max(left)));
            }
        }
        if let Some(left) = retry_after {
            let seconds = left.as_millis().div_ceil(1000).max(1) as u64;
            return Err(FeathersError::new(
                ErrorKind::TooManyRequests,
                format!("Too many failed logins: try again in {seconds} seconds"),
            )
            .with_data(json!({
                "window": self.window.as_secs(),
                "retryAfter": seconds,
            })));
        }
        for (key, _) in &keys {
            match entries.get_mut(key) {
                Some(mut window) if now.duration_since(window.started) < self.window => {
                    window.failures += 1;
                }
                _ => entries.insert(
                    *key,
                    Window {
                        started: now,
                        failures: 1,
                    },
                ),
            }
        }
        Ok(Attempt {
            keys: keys.into_iter().map(|(key, _)| key).collect(),
        })
    }

    /// The login succeeded: its reserved failures are given back.
    pub fn succeeded(&self, attempt: Attempt) {
        if attempt.keys.is_empty() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for key in &attempt.keys {
            if let Some(mut window) = entries.get_mut(key) {
                window.failures = window.failures.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn refuses_an_email_after_its_failures_until_the_window_ends() {
        let throttle = LoginThrottle::new(3, 0, MINUTE);
        let t0 = Instant::now();
        for _ in 0..3 {
            let _ = throttle.begin_at("a@x.test", None, t0).expect("allowed");
        }
        let err = throttle
            .begin_at("A@X.test ", None, t0 + Duration::from_secs(20))
            .err()
            .expect("refused, whatever the case");
        assert_eq!(err.code(), 429);
        assert_eq!(err.data.as_ref().unwrap()["retryAfter"], 40);
        let _ = throttle
            .begin_at("b@x.test", None, t0)
            .expect("another email");
        let _ = throttle
            .begin_at("a@x.test", None, t0 + MINUTE)
            .expect("a new window");
    }

    #[test]
    fn a_success_does_not_count() {
        let throttle = LoginThrottle::new(2, 0, MINUTE);
        let t0 = Instant::now();
        for _ in 0..5 {
            let attempt = throttle.begin_at("a@x.test", None, t0).expect("allowed");
            throttle.succeeded(attempt);
        }
        let _ = throttle.begin_at("a@x.test", None, t0).unwrap();
        let _ = throttle.begin_at("a@x.test", None, t0).unwrap();
        assert!(throttle.begin_at("a@x.test", None, t0).is_err());
    }

    #[test]
    fn counts_per_address_across_emails() {
        let throttle = LoginThrottle::new(100, 2, MINUTE);
        let t0 = Instant::now();
        let _ = throttle.begin_at("a@x.test", ip("10.0.0.1"), t0).unwrap();
        let _ = throttle.begin_at("b@x.test", ip("10.0.0.1"), t0).unwrap();
        assert!(throttle.begin_at("c@x.test", ip("10.0.0.1"), t0).is_err());
        let _ = throttle
            .begin_at("c@x.test", ip("10.0.0.2"), t0)
            .expect("another address");
        // One IPv6 host is its /64.
        let _ = throttle
            .begin_at("d@x.test", ip("2001:db8::1"), t0)
            .unwrap();
        let _ = throttle
            .begin_at("e@x.test", ip("2001:db8::2"), t0)
            .unwrap();
        assert!(
            throttle
                .begin_at("f@x.test", ip("2001:db8::3"), t0)
                .is_err()
        );
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let throttle = LoginThrottle::new(0, 0, MINUTE);
        for _ in 0..100 {
            let _ = throttle.begin("a@x.test", ip("10.0.0.1")).unwrap();
        }
    }

    #[test]
    fn memory_is_bounded() {
        let throttle = LoginThrottle::new(5, 0, MINUTE);
        for i in 0..(CAPACITY + 1000) {
            let _ = throttle.begin(&format!("{i}@x.test"), None).unwrap();
        }
        let entries = throttle.entries.lock().unwrap();
        assert!(entries.len() <= CAPACITY, "{}", entries.len());
    }
}
