//! An in-memory cache of key states (a key with its subscription, owner and binding), so that
//! the hot read paths (`GET /api/registration/info` of a bound instance, `POST /v1/validations`)
//! answer without a database round trip.
//!
//! Correctness rests on generations, not on remembering to evict:
//!
//! - every write transaction bumps a generation **after it commits** (see
//!   [`crate::db::write_txn`]): one of [`STRIPES`] counters picked by the key's hash when the
//!   transaction changed one key's binding, the global counter otherwise (revocations,
//!   subscription and subscriber changes, fixtures, resets...);
//! - a reader takes a [`Stamp`] (the global counter and its key's stripe) *before* it reads the
//!   database, and stores the state under that stamp;
//! - an entry is served only while both counters still equal its stamp, so a state read before
//!   a concurrent commit can never outlive that commit in this process.
//!
//! Other processes sharing the database cannot bump this process's counters: their changes are
//! seen when entries expire, after `--key-cache-ttl` seconds (5 by default, the same delay as
//! signing-key reloads). `--key-cache-size 0` turns the cache off.

use crate::db::registrations::KeyState;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How many per-key generation counters there are (keys share a counter by hash).
pub const STRIPES: usize = 16_384;

/// The generation counters: one global, [`STRIPES`] per key hash.
pub struct Generations {
    global: AtomicU64,
    stripes: [AtomicU64; STRIPES],
}

/// The counters the database layer bumps after each commit.
pub static GENERATIONS: Generations = Generations::new();

fn stripe_of(key_hash: &str) -> usize {
    // The hash is hex SHA-256: its first 4 hex digits are uniformly distributed.
    let h = key_hash
        .get(..4)
        .and_then(|s| usize::from_str_radix(s, 16).ok())
        .unwrap_or(0);
    h % STRIPES
}

impl Generations {
    pub const fn new() -> Self {
        Generations {
            global: AtomicU64::new(0),
            stripes: [const { AtomicU64::new(0) }; STRIPES],
        }
    }

    /// After a commit that changed the binding (or row) of the key with this hash.
    pub fn invalidate_key(&self, key_hash: &str) {
        self.stripes[stripe_of(key_hash)].fetch_add(1, Ordering::AcqRel);
    }

    /// After a commit that may have changed any key's state.
    pub fn invalidate_all(&self) {
        self.global.fetch_add(1, Ordering::AcqRel);
    }

    /// Takes the stamp for a key before reading its state from the database.
    pub fn stamp(&self, key_hash: &str) -> Stamp {
        Stamp {
            global: self.global.load(Ordering::Acquire),
            stripe: self.stripes[stripe_of(key_hash)].load(Ordering::Acquire),
        }
    }
}

impl Default for Generations {
    fn default() -> Self {
        Self::new()
    }
}

/// The generations a state was read under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    global: u64,
    stripe: u64,
}

struct Entry {
    state: Arc<KeyState>,
    stamp: Stamp,
    loaded: Instant,
}

impl Clone for Entry {
    fn clone(&self) -> Self {
        Entry {
            state: self.state.clone(),
            stamp: self.stamp,
            loaded: self.loaded,
        }
    }
}

/// The cache of one server (keyed by key hash; plaintext keys never enter it).
pub struct KeyCache {
    entries: Option<quick_cache::sync::Cache<String, Entry>>,
    ttl: Duration,
    gens: &'static Generations,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("capacity", &self.entries.as_ref().map(|e| e.capacity()))
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl KeyCache {
    /// A cache of at most `capacity` key states, each trusted for `ttl`; `capacity == 0` or a
    /// zero `ttl` turns it off.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self::with_generations(capacity, ttl, &GENERATIONS)
    }

    /// The same, following other counters (tests).
    pub fn with_generations(capacity: usize, ttl: Duration, gens: &'static Generations) -> Self {
        let on = capacity > 0 && !ttl.is_zero();
        KeyCache {
            entries: on.then(|| quick_cache::sync::Cache::new(capacity)),
            ttl,
            gens,
        }
    }

    /// Takes the stamp for a key before reading its state from the database.
    pub fn stamp(&self, key_hash: &str) -> Stamp {
        self.gens.stamp(key_hash)
    }

    /// Whether the cache is on.
    pub fn enabled(&self) -> bool {
        self.entries.is_some()
    }

    /// The state of the key with this hash, if cached, still current in this process and
    /// younger than the TTL.
    pub fn get(&self, key_hash: &str) -> Option<Arc<KeyState>> {
        let entries = self.entries.as_ref()?;
        let e = entries.get(key_hash)?;
        if e.stamp == self.stamp(key_hash) && e.loaded.elapsed() < self.ttl {
            Some(e.state)
        } else {
            entries.remove(key_hash);
            None
        }
    }

    /// Stores a state read from the database under the stamp taken before the read.
    pub fn put(&self, key_hash: &str, state: Arc<KeyState>, read_under: Stamp) {
        if let Some(entries) = &self.entries
            && read_under == self.stamp(key_hash)
        {
            let entry = Entry {
                state,
                stamp: read_under,
                loaded: Instant::now(),
            };
            entries.insert(key_hash.to_owned(), entry);
        }
    }

    /// Drops every entry (test mode's reset does this on top of the generation bump).
    pub fn clear(&self) {
        if let Some(e) = &self.entries {
            e.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::{KeyRow, RegistrationRow, SubscriptionRow};

    fn state(hash: &str) -> KeyState {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc();
        KeyState {
            key: KeyRow {
                id: "k".into(),
                subscription_id: "s".into(),
                key_hash: hash.into(),
                key_prefix: "GLPI-AAAA".into(),
                status: "active".into(),
                expires_at: None,
                created_at: t,
                revoked_at: None,
                replaced_by: None,
                ver: 1,
            },
            subscription: SubscriptionRow {
                id: "s".into(),
                subscriber_id: "o".into(),
                offer: "basic".into(),
                begin_date: t.date(),
                end_date: None,
                status: "active".into(),
                trial: false,
                created_at: t,
                updated_at: t,
            },
            owner: "Owner".into(),
            registration: Some(RegistrationRow {
                id: "r".into(),
                key_id: "k".into(),
                instance_url: None,
                instance_uid: Some("u".into()),
                bound_at: t,
                last_seen_at: t,
                released_at: None,
            }),
        }
    }

    fn setup(ttl: Duration) -> (KeyCache, &'static Generations, String) {
        let gens: &'static Generations = Box::leak(Box::default());
        let h = format!("0101{}", "0".repeat(60));
        (KeyCache::with_generations(100, ttl, gens), gens, h)
    }

    #[test]
    fn a_state_read_before_a_commit_on_its_key_is_never_served() {
        let (cache, gens, h) = setup(Duration::from_secs(60));
        let before = cache.stamp(&h);
        gens.invalidate_key(&h); // a write committed while the state was being read
        cache.put(&h, Arc::new(state(&h)), before);
        assert!(cache.get(&h).is_none());
        cache.put(&h, Arc::new(state(&h)), cache.stamp(&h));
        assert!(cache.get(&h).is_some(), "a current entry is served");
        // another key's stripe leaves it alone; its own stripe drops it
        gens.invalidate_key(&format!("0202{}", "0".repeat(60)));
        assert!(cache.get(&h).is_some());
        gens.invalidate_key(&h);
        assert!(cache.get(&h).is_none());
    }

    #[test]
    fn a_global_change_drops_every_entry() {
        let (cache, gens, h) = setup(Duration::from_secs(60));
        cache.put(&h, Arc::new(state(&h)), cache.stamp(&h));
        assert!(cache.get(&h).is_some());
        gens.invalidate_all();
        assert!(cache.get(&h).is_none());
    }

    #[test]
    fn entries_expire_after_the_ttl_and_a_zero_size_disables_the_cache() {
        let (cache, _, h) = setup(Duration::from_millis(30));
        cache.put(&h, Arc::new(state(&h)), cache.stamp(&h));
        assert!(cache.get(&h).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(&h).is_none());
        let off = KeyCache::new(0, Duration::from_secs(60));
        assert!(!off.enabled());
        off.put(&h, Arc::new(state(&h)), off.stamp(&h));
        assert!(off.get(&h).is_none());
    }
}
