//! An in-memory cache of key states (a key with its subscription, owner and binding), so that
//! the hot read paths (`GET /api/registration/info` of a bound instance, `POST /v1/validations`)
//! answer without a database round trip.
//!
//! Correctness rests on generations, not on remembering to evict:
//!
//! - every write transaction of the server's [`crate::db::Db`] bumps a generation **after it
//!   commits** (see [`crate::db::Transact`]): one of [`STRIPES`] counters picked by the key's hash when the
//!   transaction changed one key's binding, the global counter otherwise (revocations,
//!   subscription and subscriber changes, fixtures, resets...);
//! - a reader takes a [`Stamp`] (the global counter and its key's stripe) *before* it reads the
//!   database, and stores the state under that stamp;
//! - an entry is served only while both counters still equal its stamp, so a state read before
//!   a concurrent commit can never outlive that commit in this process.
//!
//! Other processes sharing the database cannot bump this process's counters. Every change to a
//! key state writes an audit event in the same transaction, and audit events are appended in
//! commit order (one writer on SQLite, an advisory lock held to the commit on PostgreSQL), so
//! the largest audit event id is a change counter for the whole database: a task reads it every
//! half `--key-cache-ttl` ([`KeyCache::note_latest_event`]) and, when it moved, drops every
//! entry (an epoch that is part of the [`Stamp`]). Entries are served only while the last
//! successful check is younger than the TTL (5 s by default, the same delay as signing-key
//! reloads), so another process's change is seen within about the TTL, and nothing is served
//! from memory while the database cannot be checked. A hot key is then read once, not once per
//! TTL, as long as nothing changes; as a last resort against changes made outside the server
//! (SQL by hand), no entry lives longer than [`MAX_AGE_TTLS`] TTLs. `--key-cache-size 0` turns
//! the cache off.
//!
//! What is stored is decided by how much the cache answers ([`Admission`]): while fewer than
//! one look-up in [`SPARSE`] hits over the last [`ADMISSION_WINDOW`] look-ups (a fleet larger
//! than the cache, each instance calling once in a while), only about one state read in
//! [`SPARSE`] is stored, since storing each one would only evict another that will not be asked
//! for either; as soon as a window hits more, every state read is stored again.

use crate::domain::binding::KeyState;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// No entry outlives this many TTLs, even when no change is seen.
pub const MAX_AGE_TTLS: u32 = 12;

/// How many per-key generation counters there are (keys share a counter by hash).
pub const STRIPES: usize = 16_384;

/// Look-ups per admission window ([`Admission`]).
pub const ADMISSION_WINDOW: u64 = 8_192;
/// While fewer than one look-up in this many hit, about one miss in this many is stored.
pub const SPARSE: u64 = 64;

/// Whether a state read on a miss is stored: always while the cache answers, about one in
/// [`SPARSE`] while a window of [`ADMISSION_WINDOW`] look-ups hit less than one in [`SPARSE`].
/// On the 1,000,000-key fleet every look-up misses, and storing each state read cost a miss
/// three more look-ups in the cache and an eviction (the cache-on fleet ran slower than the
/// cache-off one); the sampled stores still let keys that come back often in, whose hits then
/// turn full admission back on. Aligned apart from the counters every stamp reads, which it
/// would otherwise pull from core to core.
#[repr(align(128))]
#[derive(Default)]
struct Admission {
    lookups: AtomicU64,
    hits: AtomicU64,
    /// `hits` when the last window closed.
    hits_then: AtomicU64,
    sparse: AtomicBool,
}

impl Admission {
    fn looked_up(&self, hit: bool) {
        if hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        let n = self.lookups.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(ADMISSION_WINDOW) {
            let hits = self.hits.load(Ordering::Relaxed);
            let then = self.hits_then.swap(hits, Ordering::Relaxed);
            let sparse = hits.saturating_sub(then) * SPARSE < ADMISSION_WINDOW;
            self.sparse.store(sparse, Ordering::Relaxed);
        }
    }

    /// Whether a state read now is stored.
    fn admits(&self) -> bool {
        !self.sparse.load(Ordering::Relaxed)
            || self.lookups.load(Ordering::Relaxed).is_multiple_of(SPARSE)
    }
}

/// The generation counters: one global, [`STRIPES`] per key hash.
pub struct Generations {
    global: AtomicU64,
    stripes: [AtomicU64; STRIPES],
}

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
            epoch: 0,
            seq: 0,
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
    /// The cache's epoch (changes seen in the database).
    epoch: u64,
    /// The cache's fence sequence when the stamp was taken (see [`KeyCache::forget`]).
    seq: u64,
}

impl Stamp {
    /// Whether both stamps are of the same generations (their fence sequences aside).
    fn same_generations(&self, other: &Stamp) -> bool {
        (self.global, self.stripe, self.epoch) == (other.global, other.stripe, other.epoch)
    }
}

/// Where a key hash's entry sits in the cache: the first 128 bits of the hex SHA-256 (any other
/// text: its SipHash). 16 bytes and no allocation where the hash's own text took 88; two hashes
/// that share a slot never serve each other's state, since a hit must name the same hash
/// ([`KeyCache::get`]).
fn slot(key_hash: &str) -> u128 {
    let hex = key_hash
        .get(..32)
        .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    match hex {
        Some(h) => u128::from_str_radix(h, 16).unwrap_or_default(),
        None => {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::hash::DefaultHasher::new();
            key_hash.hash(&mut hasher);
            u128::from(hasher.finish())
        }
    }
}

#[derive(Clone)]
struct Entry {
    state: Arc<KeyState>,
    stamp: Stamp,
    loaded: Instant,
}

/// The cache of one server (keyed by key hash; plaintext keys never enter it).
pub struct KeyCache {
    entries: Option<quick_cache::sync::Cache<u128, Entry>>,
    ttl: Duration,
    gens: Arc<Generations>,
    /// Bumped when the database changed (a new largest audit event id).
    epoch: AtomicU64,
    /// The largest audit event id seen by the last check.
    latest_event: std::sync::Mutex<Option<Option<i64>>>,
    /// Milliseconds from `started` to the last successful check, plus one (0: never).
    checked_ms: AtomicU64,
    started: Instant,
    /// Fence sequence: grows with every [`Self::forget`].
    seq: AtomicU64,
    /// Per key hash, the sequence of its last [`Self::forget`]: a state read under an older
    /// stamp is never stored nor served.
    fences: Option<quick_cache::sync::Cache<u128, u64>>,
    admission: Admission,
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
    /// A cache of at most `capacity` key states, each trusted for `ttl`, following the
    /// generations of one database ([`crate::db::Db::generations`]); `capacity == 0` or a zero
    /// `ttl` turns it off.
    pub fn new(capacity: usize, ttl: Duration, gens: Arc<Generations>) -> Self {
        let on = capacity > 0 && !ttl.is_zero();
        KeyCache {
            entries: on.then(|| quick_cache::sync::Cache::new(capacity)),
            ttl,
            gens,
            epoch: AtomicU64::new(0),
            latest_event: std::sync::Mutex::new(None),
            checked_ms: AtomicU64::new(0),
            started: Instant::now(),
            seq: AtomicU64::new(0),
            fences: on.then(|| quick_cache::sync::Cache::new(capacity.max(1024))),
            admission: Admission::default(),
        }
    }

    /// Takes the stamp for a key before reading its state from the database.
    pub fn stamp(&self, key_hash: &str) -> Stamp {
        Stamp {
            epoch: self.epoch.load(Ordering::Acquire),
            seq: self.seq.load(Ordering::Acquire),
            ..self.gens.stamp(key_hash)
        }
    }

    /// Whether the key in slot `at` was forgotten after `stamp` was taken.
    fn fenced(&self, at: u128, stamp: &Stamp) -> bool {
        self.fences
            .as_ref()
            .and_then(|f| f.get(&at))
            .is_some_and(|fence| fence > stamp.seq)
    }

    /// Forgets the key's cached state, and refuses every state of it read under a stamp taken
    /// before this call: after a database read that found a newer state than the cached one
    /// (a refusal: this process never answers the older state again), or a notification that
    /// the key changed elsewhere. Other keys keep their entries.
    pub fn forget(&self, key_hash: &str) {
        if let (Some(entries), Some(fences)) = (&self.entries, &self.fences) {
            let fence = self.seq.fetch_add(1, Ordering::AcqRel) + 1;
            // a fence on a shared slot also fences the other key: it is only re-read
            let at = slot(key_hash);
            fences.insert(at, fence);
            entries.remove(&at);
        }
    }

    /// A change made elsewhere (a notification): the key's state, or every state.
    pub fn changed(&self, key_hash: Option<&str>) {
        match key_hash {
            Some(h) => self.forget(h),
            None => {
                self.epoch.fetch_add(1, Ordering::AcqRel);
                self.clear();
            }
        }
    }

    /// How often the database should be checked for changes ([`Self::note_latest_event`]).
    pub fn check_interval(&self) -> Duration {
        (self.ttl / 2).max(Duration::from_millis(100))
    }

    /// Records a successful check: `latest` is the largest audit event id in the database. A
    /// value other than the last one (including the first) drops every entry.
    pub fn note_latest_event(&self, latest: Option<i64>) {
        self.note_latest_event_at(latest, Instant::now());
    }

    /// [`Self::note_latest_event`] with the check made at `now`.
    fn note_latest_event_at(&self, latest: Option<i64>, now: Instant) {
        let mut last = self
            .latest_event
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last != Some(latest) {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            self.clear();
            *last = Some(latest);
        }
        self.checked_ms.store(self.ms_at(now), Ordering::Release);
    }

    /// Milliseconds from `started` to `now`, plus one.
    fn ms_at(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_millis() as u64 + 1
    }

    /// Whether the last successful check is younger than the TTL at `now`.
    fn recently_checked(&self, now: Instant) -> bool {
        match self.checked_ms.load(Ordering::Acquire) {
            0 => false,
            at => self.ms_at(now).saturating_sub(at) < self.ttl.as_millis() as u64,
        }
    }

    /// Whether the cache is on.
    pub fn enabled(&self) -> bool {
        self.entries.is_some()
    }

    /// The state of the key with this hash, if cached, still current (no change in this process
    /// or, as of a check younger than the TTL, in the database) and younger than
    /// [`MAX_AGE_TTLS`] TTLs.
    pub fn get(&self, key_hash: &str) -> Option<Arc<KeyState>> {
        let got = self.get_at(key_hash, Instant::now());
        if self.enabled() {
            self.admission.looked_up(got.is_some());
        }
        got
    }

    /// [`Self::get`] at `now`.
    fn get_at(&self, key_hash: &str, now: Instant) -> Option<Arc<KeyState>> {
        let entries = self.entries.as_ref()?;
        let at = slot(key_hash);
        let e = entries.get(&at)?;
        if e.state.key.key_hash != key_hash {
            return None; // another key's state in the same slot
        }
        if e.stamp.same_generations(&self.stamp(key_hash))
            && !self.fenced(at, &e.stamp)
            && self.recently_checked(now)
            && now.saturating_duration_since(e.loaded) < self.ttl * MAX_AGE_TTLS
        {
            Some(e.state)
        } else {
            entries.remove(&at);
            None
        }
    }

    /// Stores a state read from the database under the stamp taken before the read.
    pub fn put(&self, key_hash: &str, state: Arc<KeyState>, read_under: Stamp) {
        self.put_at(key_hash, state, read_under, Instant::now());
    }

    /// [`Self::put`] at `now`.
    fn put_at(&self, key_hash: &str, state: Arc<KeyState>, read_under: Stamp, now: Instant) {
        let Some(entries) = &self.entries else {
            return; // the cache is off
        };
        if !self.admission.admits() {
            return; // the cache hardly answers: see `Admission`
        }
        let at = slot(key_hash);
        if state.key.key_hash == key_hash
            && read_under.same_generations(&self.stamp(key_hash))
            && !self.fenced(at, &read_under)
            // a state older than the one cached (a slower concurrent read) never replaces it
            && entries
                .get(&at)
                .is_none_or(|e| e.state.key.key_hash != key_hash || e.state.key.ver <= state.key.ver)
        {
            let entry = Entry {
                state,
                stamp: read_under,
                loaded: now,
            };
            entries.insert(at, entry);
        }
    }

    /// Drops every entry (when the database changed).
    fn clear(&self) {
        if let Some(e) = &self.entries {
            e.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::binding::Binding;
    use crate::domain::key::{Key, KeyStatus};
    use crate::domain::subscription::{Subscription, SubscriptionStatus};

    fn state(hash: &str) -> KeyState {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc();
        KeyState {
            key: Key {
                id: "k".into(),
                subscription_id: "s".into(),
                key_hash: hash.into(),
                key_prefix: "GLPI-AAAA".into(),
                status: KeyStatus::Active,
                expires_at: None,
                created_at: t,
                revoked_at: None,
                replaced_by: None,
                ver: 1,
            },
            subscription: Subscription {
                id: "s".into(),
                subscriber_id: "o".into(),
                offer: "basic".into(),
                begin_date: t.date(),
                end_date: None,
                status: SubscriptionStatus::Active,
                trial: false,
                created_at: t,
                updated_at: t,
            },
            owner: "Owner".into(),
            registration: Some(Binding {
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

    fn setup(ttl: Duration) -> (KeyCache, Arc<Generations>, String) {
        let gens: Arc<Generations> = Arc::default();
        let h = format!("0101{}", "0".repeat(60));
        let cache = KeyCache::new(100, ttl, gens.clone());
        cache.note_latest_event(Some(1));
        (cache, gens, h)
    }

    /// Whether the cache serves exactly `expected` (the very value stored) for `h`.
    fn serves(cache: &KeyCache, h: &str, expected: &Arc<KeyState>) -> bool {
        cache.get(h).is_some_and(|got| Arc::ptr_eq(&got, expected))
    }

    /// A miss, then the state read stored as the servers do; whether it is served afterwards.
    fn miss_and_store(cache: &KeyCache, h: &str) -> bool {
        assert!(cache.get(h).is_none(), "{h} was not cached yet");
        let stamp = cache.stamp(h);
        cache.put(h, Arc::new(state(h)), stamp);
        cache.get_at(h, Instant::now()).is_some()
    }

    #[test]
    fn a_cache_that_answers_nothing_stores_few_states_until_it_answers_again() {
        let gens: Arc<Generations> = Arc::default();
        let cache = KeyCache::new(100_000, Duration::from_secs(60), gens);
        cache.note_latest_event(Some(1));
        // distinct 128-bit slots, as real hashes have
        let key = |i: u64| format!("{i:016x}{}", "5".repeat(48));
        // a first window of misses: every state read is stored
        for i in 0..ADMISSION_WINDOW {
            assert!(
                miss_and_store(&cache, &key(i)),
                "stored while admitting all"
            );
        }
        // no hit in that window: about one state read in SPARSE is stored
        let walk = 100 * SPARSE;
        let stored = (ADMISSION_WINDOW..ADMISSION_WINDOW + walk)
            .filter(|&i| miss_and_store(&cache, &key(i)))
            .count() as u64;
        assert!(
            (walk / SPARSE / 2..=walk / SPARSE * 2).contains(&stored),
            "{stored} of {walk} stored"
        );
        // a key asked for again and again gets in, and its hits turn full admission back on
        let hot = key(u64::MAX);
        let tries = (0..4 * SPARSE)
            .position(|_| miss_and_store(&cache, &hot))
            .expect("a key that keeps coming back is stored");
        assert!(tries < 2 * SPARSE as usize, "stored after {tries} misses");
        for _ in 0..2 * ADMISSION_WINDOW {
            assert!(cache.get(&hot).is_some());
        }
        assert!(
            miss_and_store(&cache, &key(u64::MAX - 1)),
            "admitting all again"
        );
    }

    #[test]
    fn a_state_read_before_a_commit_on_its_key_is_never_served() {
        let (cache, gens, h) = setup(Duration::from_secs(60));
        let before = cache.stamp(&h);
        gens.invalidate_key(&h); // a write committed while the state was being read
        cache.put(&h, Arc::new(state(&h)), before);
        assert!(cache.get(&h).is_none());
        let current = Arc::new(state(&h));
        cache.put(&h, current.clone(), cache.stamp(&h));
        assert!(serves(&cache, &h, &current), "a current entry is served");
        // another key's stripe leaves it alone; its own stripe drops it
        gens.invalidate_key(&format!("0202{}", "0".repeat(60)));
        assert!(serves(&cache, &h, &current));
        gens.invalidate_key(&h);
        assert!(cache.get(&h).is_none());
    }

    #[test]
    fn hashes_that_share_a_slot_never_serve_each_others_state() {
        let (cache, _, a) = setup(Duration::from_secs(60));
        // the same first 128 bits, another hash
        let b = format!("{}{}", &a[..32], "f".repeat(32));
        assert_eq!(slot(&a), slot(&b));
        let (sa, sb) = (Arc::new(state(&a)), Arc::new(state(&b)));
        cache.put(&a, sa.clone(), cache.stamp(&a));
        assert!(serves(&cache, &a, &sa));
        assert!(cache.get(&b).is_none(), "b must not get a's state");
        cache.put(&b, sb.clone(), cache.stamp(&b));
        assert!(serves(&cache, &b, &sb));
        assert!(cache.get(&a).is_none(), "a must not get b's state");
        // a state is stored only under its own hash
        cache.put(&a, sb.clone(), cache.stamp(&a));
        assert!(cache.get(&a).is_none());
        // texts that are not hex hashes get slots too, and still only their own state
        for odd in ["", "short", "zz-not-hex-zz-not-hex-zz-not-hex-zz"] {
            let s = Arc::new(state(odd));
            cache.put(odd, s.clone(), cache.stamp(odd));
            assert!(serves(&cache, odd, &s), "{odd:?}");
        }
        assert_ne!(slot("short"), slot("shorter"));
    }

    #[test]
    fn a_global_change_drops_every_entry() {
        let (cache, gens, h) = setup(Duration::from_secs(60));
        let other = format!("0202{}", "0".repeat(60));
        let (a, b) = (Arc::new(state(&h)), Arc::new(state(&other)));
        cache.put(&h, a.clone(), cache.stamp(&h));
        cache.put(&other, b.clone(), cache.stamp(&other));
        assert!(serves(&cache, &h, &a) && serves(&cache, &other, &b));
        gens.invalidate_all();
        assert!(cache.get(&h).is_none());
        assert!(cache.get(&other).is_none());
    }

    #[test]
    fn two_databases_generations_never_disturb_each_other() {
        // two servers in one process: each cache follows its own database's generations
        let (one, one_gens, h) = setup(Duration::from_secs(60));
        let (two, two_gens, _) = setup(Duration::from_secs(60));
        let (a, b) = (Arc::new(state(&h)), Arc::new(state(&h)));
        one.put(&h, a.clone(), one.stamp(&h));
        two.put(&h, b.clone(), two.stamp(&h));
        one_gens.invalidate_all();
        one_gens.invalidate_key(&h);
        assert!(one.get(&h).is_none());
        assert!(
            serves(&two, &h, &b),
            "the other server's entry is untouched"
        );
        two_gens.invalidate_key(&h);
        assert!(two.get(&h).is_none());
        one.put(&h, a.clone(), one.stamp(&h));
        assert!(serves(&one, &h, &a));
    }

    #[test]
    fn entries_live_while_checks_find_no_change_and_a_zero_size_disables_the_cache() {
        let ttl = Duration::from_secs(60);
        let (cache, _, h) = setup(ttl);
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        cache.note_latest_event_at(Some(1), t0);
        cache.put_at(&h, Arc::new(state(&h)), cache.stamp(&h), t0);
        assert!(cache.get_at(&h, t0 + ttl - ms).is_some());
        // no check for the whole TTL: nothing is served
        assert!(cache.get_at(&h, t0 + ttl).is_none());
        // checks that find no change keep an entry up to its maximum age
        cache.put_at(&h, Arc::new(state(&h)), cache.stamp(&h), t0);
        let max = ttl * MAX_AGE_TTLS;
        cache.note_latest_event_at(Some(1), t0 + max - ms);
        assert!(cache.get_at(&h, t0 + max - ms).is_some());
        cache.note_latest_event_at(Some(1), t0 + max);
        assert!(cache.get_at(&h, t0 + max).is_none(), "too old");
        let off = KeyCache::new(0, Duration::from_secs(60), Arc::default());
        assert!(!off.enabled());
        off.put(&h, Arc::new(state(&h)), off.stamp(&h));
        assert!(off.get(&h).is_none());
    }

    #[test]
    fn a_change_seen_in_the_database_drops_every_entry_and_no_change_keeps_them() {
        let h = format!("0303{}", "0".repeat(60));
        let cache = KeyCache::new(100, Duration::from_secs(60), Arc::default());
        // before the first check nothing is served
        let before_check = cache.stamp(&h);
        cache.put(&h, Arc::new(state(&h)), before_check);
        assert!(cache.get(&h).is_none());
        cache.note_latest_event(Some(7));
        cache.put(&h, Arc::new(state(&h)), before_check);
        assert!(cache.get(&h).is_none(), "read before the first check");
        cache.put(&h, Arc::new(state(&h)), cache.stamp(&h));
        assert!(cache.get(&h).is_some());
        // checks that find the same latest event keep the entry
        cache.note_latest_event(Some(7));
        cache.note_latest_event(Some(7));
        assert!(cache.get(&h).is_some());
        // a state read while another process committed is refused once the change is seen
        let reading = cache.stamp(&h);
        cache.note_latest_event(Some(8));
        assert!(cache.get(&h).is_none(), "dropped by the change");
        cache.put(&h, Arc::new(state(&h)), reading);
        assert!(cache.get(&h).is_none(), "read under the old epoch");
        // an emptied audit trail (test mode's reset) is a change too
        cache.put(&h, Arc::new(state(&h)), cache.stamp(&h));
        cache.note_latest_event(None);
        assert!(cache.get(&h).is_none());
    }

    /// Defect 5: after a database read found the key changed (a refusal, or a notification
    /// from another process), neither the cached older state nor one read before it is served.
    #[test]
    fn once_the_database_said_no_the_older_state_is_never_served_again() {
        let (cache, _, h) = setup(Duration::from_secs(60));
        let other = format!("0404{}", "0".repeat(60));
        cache.put(&h, Arc::new(state(&h)), cache.stamp(&h));
        cache.put(&other, Arc::new(state(&other)), cache.stamp(&other));
        // a slower request started reading before the change
        let slow = cache.stamp(&h);
        // a request read the database and found the key revoked
        cache.forget(&h);
        assert!(cache.get(&h).is_none(), "the cached valid is gone");
        cache.put(&h, Arc::new(state(&h)), slow);
        assert!(
            cache.get(&h).is_none(),
            "a state read before is never stored"
        );
        assert!(cache.get(&other).is_some(), "other keys keep their entries");
        // a notification for the key fences it the same way
        let slow = cache.stamp(&h);
        cache.changed(Some(&h));
        cache.put(&h, Arc::new(state(&h)), slow);
        assert!(cache.get(&h).is_none());
        // a read that starts afterwards is cached again
        cache.put(&h, Arc::new(state(&h)), cache.stamp(&h));
        assert!(cache.get(&h).is_some());
        // an older ver never replaces a newer one
        let mut old = state(&h);
        old.key.ver = 0;
        cache.put(&h, Arc::new(old), cache.stamp(&h));
        assert_eq!(cache.get(&h).unwrap().key.ver, 1);
        // "anything changed" drops every entry
        cache.changed(None);
        assert!(cache.get(&other).is_none());
    }
}
