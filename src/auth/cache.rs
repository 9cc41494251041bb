//! Recently resolved callers, so a request does not read its user from the database.
//!
//! A JWT is still verified on every request (signature, type, expiry, audience); what
//! is cached is the user (or API key) it resolved to, for [`TTL`], per token (its
//! `jti`): the entry says that this token was not revoked when it was read. Writes to
//! users and API keys and token revocations in this process clear the cache at once;
//! on other instances a removed user, a changed role, a revoked token (logout,
//! password or role change) or a revoked key takes effect within [`TTL`].

use crate::feathers::Principal;
use quick_cache::sync::Cache;
use std::time::{Duration, Instant};

/// How long a resolved caller is trusted without reading the database again.
pub const TTL: Duration = Duration::from_secs(5);

/// Entries kept at most (least recently useful ones are evicted first).
const CAPACITY: usize = 10_000;

/// A credential, as the cache knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credential {
    /// A verified token (its `jti`), with its user and organization.
    Token {
        jti: String,
        user_id: i64,
        organization_id: i64,
    },
    /// The SHA-256 of an API key.
    ApiKey(String),
}

/// Principals by credential, each valid for [`TTL`] after it was read.
pub struct PrincipalCache {
    entries: Cache<Credential, (Principal, Instant)>,
}

impl Default for PrincipalCache {
    fn default() -> Self {
        Self {
            entries: Cache::new(CAPACITY),
        }
    }
}

impl PrincipalCache {
    /// The principal for `credential`, if read less than [`TTL`] ago.
    pub fn get(&self, credential: &Credential) -> Option<Principal> {
        let (principal, read_at) = self.entries.get(credential)?;
        if read_at.elapsed() < TTL {
            Some(principal)
        } else {
            self.entries.remove(credential);
            None
        }
    }

    pub fn insert(&self, credential: Credential, principal: Principal) {
        self.entries.insert(credential, (principal, Instant::now()));
    }

    /// Forgets one credential: a token just revoked.
    pub fn remove(&self, credential: &Credential) {
        self.entries.remove(credential);
    }

    /// Forgets every caller: after a user or an API key changed.
    pub fn clear(&self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> Principal {
        Principal {
            tenant_id: 1,
            user_id: 2,
            role: "agent".into(),
            strategy: "jwt".into(),
        }
    }

    #[test]
    fn remembers_until_cleared() {
        let cache = PrincipalCache::default();
        let key = Credential::Token {
            jti: "j".into(),
            user_id: 2,
            organization_id: 1,
        };
        assert_eq!(cache.get(&key), None);
        cache.insert(key.clone(), principal());
        assert_eq!(cache.get(&key), Some(principal()));
        let other = Credential::Token {
            jti: "j".into(),
            user_id: 2,
            organization_id: 3,
        };
        assert_eq!(
            cache.get(&other),
            None,
            "another organization is another key"
        );
        cache.clear();
        assert_eq!(cache.get(&key), None);
    }

    #[test]
    fn entries_expire() {
        let cache = PrincipalCache::default();
        let key = Credential::ApiKey("h".into());
        let stale = Instant::now() - TTL - Duration::from_millis(1);
        cache.entries.insert(key.clone(), (principal(), stale));
        assert_eq!(cache.get(&key), None);
    }
}
