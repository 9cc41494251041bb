//! Recently resolved callers, so a request does not read its user from the database.
//!
//! A JWT is still verified on every request (signature, type, expiry, audience); what
//! is cached is the user (or API key) it resolved to, for [`TTL`], per token (its
//! `jti`): the entry says that this token was not revoked when it was read. Writes to
//! users and API keys and token revocations in this process clear the cache at once;
//! on other instances a removed user, a changed role, a revoked token (logout,
//! password or role change) or a revoked key takes effect within [`TTL`].
//!
//! A read that raced a change is not kept: every clear or removal moves a
//! generation on, and an entry read under an older generation is dropped again
//! ([`PrincipalCache::insert`]), so a change holds at once on its own instance.
//!
//! Keys are small: a verified token's `jti` with its user and organization, or the
//! SHA-256 of an API key; an entry is made only for a credential the database
//! confirmed. The cache is bounded by bytes ([`BYTES`]), whatever the entries.

use crate::feathers::Principal;
use quick_cache::{Weighter, sync::Cache};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a resolved caller is trusted without reading the database again.
pub const TTL: Duration = Duration::from_secs(5);

/// Bytes of entries kept at most (least recently useful ones are evicted first):
/// some 20,000 callers.
pub const BYTES: u64 = 4 << 20;

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

#[derive(Clone)]
struct EntryWeight;

impl Weighter<Credential, (Principal, Instant)> for EntryWeight {
    fn weight(&self, key: &Credential, (p, _): &(Principal, Instant)) -> u64 {
        let key = match key {
            Credential::Token { jti, .. } => jti.len(),
            Credential::ApiKey(hash) => hash.len(),
        };
        (size_of::<Credential>() + size_of::<(Principal, Instant)>() + key) as u64
            + (p.role.len() + p.strategy.len()) as u64
            + 64
    }
}

/// Principals by credential, each valid for [`TTL`] after it was read.
pub struct PrincipalCache {
    entries: Cache<Credential, (Principal, Instant), EntryWeight>,
    /// Moves on at every clear and removal.
    generation: AtomicU64,
}

/// The cache's generation when a principal was about to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

impl Default for PrincipalCache {
    fn default() -> Self {
        Self {
            entries: Cache::with_weighter((BYTES / 160) as usize, BYTES, EntryWeight),
            generation: AtomicU64::new(0),
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

    /// Taken before reading a principal from the database, for [`Self::insert`].
    pub fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::SeqCst))
    }

    /// Keeps a principal read since `read_under`, unless the cache was cleared or the
    /// credential removed since: then the read may predate the change, and is dropped.
    pub fn insert(&self, read_under: Generation, credential: Credential, principal: Principal) {
        self.entries
            .insert(credential.clone(), (principal, Instant::now()));
        // A change that moved the generation after this check clears the entry itself.
        if self.generation() != read_under {
            self.entries.remove(&credential);
        }
    }

    /// Forgets one credential: a token just revoked.
    pub fn remove(&self, credential: &Credential) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.remove(credential);
    }

    /// Forgets every caller: after a user or an API key changed.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
    }

    /// Bytes held by the entries (their weights).
    pub fn bytes(&self) -> u64 {
        self.entries.weight()
    }
}

impl crate::feathers::Weighed for super::AuthContext {
    fn bytes(&self) -> u64 {
        self.cache.bytes()
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
        cache.insert(cache.generation(), key.clone(), principal());
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
    fn a_read_that_raced_a_change_is_not_kept() {
        let cache = PrincipalCache::default();
        let key = Credential::ApiKey("h".into());
        let before = cache.generation();
        cache.clear(); // a change commits while the principal is read
        cache.insert(before, key.clone(), principal());
        assert_eq!(cache.get(&key), None);
        let before = cache.generation();
        cache.remove(&Credential::ApiKey("other".into()));
        cache.insert(before, key.clone(), principal());
        assert_eq!(cache.get(&key), None);
        cache.insert(cache.generation(), key.clone(), principal());
        assert_eq!(cache.get(&key), Some(principal()));
    }

    #[test]
    fn entries_expire() {
        let cache = PrincipalCache::default();
        let key = Credential::ApiKey("h".into());
        let stale = Instant::now() - TTL - Duration::from_millis(1);
        cache.entries.insert(key.clone(), (principal(), stale));
        assert_eq!(cache.get(&key), None);
    }

    #[test]
    fn bounded_by_bytes() {
        let cache = PrincipalCache::default();
        for id in 0..200_000 {
            let key = Credential::Token {
                jti: uuid::Uuid::new_v4().to_string(),
                user_id: id,
                organization_id: 1,
            };
            cache.insert(cache.generation(), key, principal());
        }
        assert!(cache.bytes() <= BYTES, "{}", cache.bytes());
        assert!(cache.entries.len() < 200_000);
    }
}
