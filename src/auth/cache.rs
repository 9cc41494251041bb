//! Recently resolved callers, so a request does not read its user from the database.
//!
//! A JWT is still verified on every request (signature, expiry, audience); what is
//! cached is the user (or API key) it resolved to, for [`TTL`]. Writes to users and
//! API keys in this process clear the cache at once; on other instances a removed
//! user, a changed role or a revoked key takes effect within [`TTL`].
//!
//! Keys are small and fixed: a verified token's user and organization ids, or the
//! SHA-256 of an API key; an entry is made only for a credential the database
//! confirmed. The cache is bounded by bytes ([`BYTES`]), whatever the entries.
//!
//! A reader takes the [`PrincipalCache::generation`] before it reads the database,
//! and its entry is stored with it; [`PrincipalCache::clear`] starts a new
//! generation, and entries of an older one are never served. So a caller read
//! before a concurrent removal or demotion (which clears after its commit) is not
//! served from the cache after that clear.

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
    /// A verified token's user and organization.
    User { id: i64, organization_id: i64 },
    /// The SHA-256 of an API key.
    ApiKey(String),
}

#[derive(Clone)]
struct Entry {
    principal: Principal,
    read_at: Instant,
    generation: u64,
}

#[derive(Clone)]
struct EntryWeight;

impl Weighter<Credential, Entry> for EntryWeight {
    fn weight(&self, key: &Credential, entry: &Entry) -> u64 {
        let key = match key {
            Credential::User { .. } => 0,
            Credential::ApiKey(hash) => hash.len(),
        };
        let p = &entry.principal;
        (size_of::<Credential>() + size_of::<Entry>() + key + p.role.len() + p.strategy.len())
            as u64
            + 64
    }
}

/// Principals by credential, each valid for [`TTL`] after it was read.
pub struct PrincipalCache {
    entries: Cache<Credential, Entry, EntryWeight>,
    generation: AtomicU64,
}

impl Default for PrincipalCache {
    fn default() -> Self {
        Self {
            entries: Cache::with_weighter((BYTES / 160) as usize, BYTES, EntryWeight),
            generation: AtomicU64::new(0),
        }
    }
}

impl PrincipalCache {
    /// The principal for `credential`, if read less than [`TTL`] ago, since the last
    /// [`Self::clear`].
    pub fn get(&self, credential: &Credential) -> Option<Principal> {
        let entry = self.entries.get(credential)?;
        if entry.read_at.elapsed() < TTL && entry.generation == self.generation() {
            Some(entry.principal)
        } else {
            self.entries.remove(credential);
            None
        }
    }

    /// The current generation: take it before reading what [`Self::insert`] stores.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Remembers `principal`, read from the database after `generation` was taken;
    /// refused when the cache was cleared since.
    pub fn insert(&self, credential: Credential, principal: Principal, generation: u64) {
        if generation != self.generation() {
            return;
        }
        let entry = Entry {
            principal,
            read_at: Instant::now(),
            generation,
        };
        self.entries.insert(credential, entry);
    }

    /// Forgets every caller: after a user or an API key changed (call it after the
    /// change committed).
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
        let key = Credential::User {
            id: 2,
            organization_id: 1,
        };
        assert_eq!(cache.get(&key), None);
        cache.insert(key.clone(), principal(), cache.generation());
        assert_eq!(cache.get(&key), Some(principal()));
        let other = Credential::User {
            id: 2,
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
        let entry = Entry {
            principal: principal(),
            read_at: stale,
            generation: cache.generation(),
        };
        cache.entries.insert(key.clone(), entry);
        assert_eq!(cache.get(&key), None);
    }

    #[test]
    fn a_read_from_before_a_clear_is_never_served() {
        let cache = PrincipalCache::default();
        let key = Credential::ApiKey("h".into());
        // Read before a concurrent write committed and cleared...
        let generation = cache.generation();
        cache.clear();
        // ...and inserted after: refused.
        cache.insert(key.clone(), principal(), generation);
        assert_eq!(cache.get(&key), None);
        // Inserted just before the clear's bump is seen: stored, but never served.
        let entry = Entry {
            principal: principal(),
            read_at: Instant::now(),
            generation,
        };
        cache.entries.insert(key.clone(), entry);
        assert_eq!(cache.get(&key), None);
        cache.insert(key.clone(), principal(), cache.generation());
        assert_eq!(cache.get(&key), Some(principal()));
    }

    #[test]
    fn bounded_by_bytes() {
        let cache = PrincipalCache::default();
        for id in 0..200_000 {
            let key = Credential::User {
                id,
                organization_id: 1,
            };
            cache.insert(key, principal(), cache.generation());
        }
        assert!(cache.bytes() <= BYTES, "{}", cache.bytes());
        assert!(cache.entries.len() < 200_000);
    }
}
