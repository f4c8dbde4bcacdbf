//! The in-memory key-state cache of `/info` and validations: repeated look-ups are answered
//! from memory, and every change made through the server is seen by the very next request.
//!
//! Each server has its own cache generations (held by its `Db`) and its own metrics, so the
//! look-ups of `/metrics` (`glpi_network_key_cache_lookups_total{result}`) are counted exactly,
//! request by request. Two things outside a test's requests could still move them, and are
//! kept out:
//! - the check for other processes' changes, which empties the cache when the largest audit
//!   event id moved: it runs when the server starts and then every half `--key-cache-ttl`, so the
//!   servers here run with a TTL of an hour, and each test first waits for one hit (the proof
//!   that the start-up check is done, after which nothing is served until it is);
//! - the signing ring's age (validations only): a validation is answered from memory only while
//!   the ring is younger than `RELOAD_SECS` of real time, so [`Lookups::answered_from_memory`] accepts one
//!   miss that reloads it once the ring may be that old (never in a test that runs faster).

use crate::glpi::info;
use crate::helpers::TestApp;
use glpi_network_server::signing::RELOAD_SECS;
use serde_json::json;
use std::time::{Duration, Instant};

const URL: &str = "https://cache.example.com/glpi";
const UID: &str = "cache000000000000000000000000000000000001";
/// `--key-cache-ttl` of these servers: no change check runs during a test.
const TTL_SECS: u64 = 3600;

/// `(hits, misses)` from `/metrics`.
async fn lookups(app: &TestApp) -> (u64, u64) {
    let text = app.metrics().await;
    let count = |result: &str| {
        let prefix = format!("glpi_network_key_cache_lookups_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    (count("hit"), count("miss"))
}

const HIT: (u64, u64) = (1, 0);
const MISS: (u64, u64) = (0, 1);

/// The look-ups of one server, counted request by request.
struct Lookups<'a> {
    app: &'a TestApp,
    seen: (u64, u64),
    /// The signing ring was loaded (at start, or by a miss that found it stale) after this.
    ring_loaded_after: Instant,
}

impl<'a> Lookups<'a> {
    async fn new(app: &'a TestApp) -> Lookups<'a> {
        Lookups {
            app,
            seen: lookups(app).await,
            ring_loaded_after: app.started,
        }
    }

    /// `(hits, misses)` since the last call.
    async fn delta(&mut self) -> (u64, u64) {
        let now = lookups(self.app).await;
        let d = (now.0 - self.seen.0, now.1 - self.seen.1);
        self.seen = now;
        d
    }

    /// Asserts the look-ups since the last call are exactly `expected`.
    async fn expect(&mut self, expected: (u64, u64), what: &str) {
        let d = self.delta().await;
        assert_eq!(d, expected, "(hits, misses) of {what}");
    }

    /// Repeats `call` until it is answered from memory (at most 50 times): the start-up change
    /// check has then run, and none runs again during the test.
    async fn warm_up<F, Fut, T>(&mut self, call: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        for _ in 0..50 {
            call().await;
            let d = self.delta().await;
            if d.0 > 0 {
                assert_eq!(d, HIT, "(hits, misses) of the first answer from memory");
                return;
            }
        }
        panic!("never answered from memory");
    }

    /// A validation answered from memory: exactly one hit. Only when the signing ring may be
    /// older than `RELOAD_SECS` (the server started, or the ring was last reloaded, that long
    /// ago) is one miss accepted instead: the cached answer is not used, the miss reloads the
    /// ring, and the same validation again is a hit.
    async fn answered_from_memory<F, Fut, T>(&mut self, call: F, what: &str)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let before = Instant::now();
        call().await;
        let d = self.delta().await;
        if d == MISS {
            let reload = Duration::from_secs(RELOAD_SECS);
            assert!(
                self.ring_loaded_after.elapsed() >= reload,
                "{what}: a miss, although the signing ring is younger than {RELOAD_SECS} s"
            );
            self.ring_loaded_after = before;
            call().await;
            self.expect(HIT, what).await;
        } else {
            assert_eq!(d, HIT, "(hits, misses) of {what}");
        }
    }
}

async fn status_of(app: &TestApp, key: &str) -> String {
    let v = app.validate(key, URL).await.expect(200);
    v["status"].as_str().unwrap().to_owned()
}

async fn assert_valid(app: &TestApp, key: &str) {
    assert_eq!(status_of(app, key).await, "valid");
}

async fn validations_follow_every_change_made_through_the_server(app: TestApp) {
    let sub = app.subscription("standard", json!({})).await;
    let (key_id, key) = app.issue_key(&sub).await;
    let reg = app.register(&key, URL).await.expect(201);
    let reg_id = reg["registration"]["id"].as_str().unwrap().to_owned();
    let mut n = Lookups::new(&app).await;
    n.expect((0, 0), "issuing and registering").await;

    assert_valid(&app, &key).await;
    n.expect(MISS, "the first validation").await;
    n.warm_up(|| assert_valid(&app, &key)).await;
    n.answered_from_memory(|| assert_valid(&app, &key), "a repeated validation")
        .await;
    n.answered_from_memory(|| assert_valid(&app, &key), "a repeated validation")
        .await;

    // a change to the subscription (many keys at once) is seen by the next request
    app.admin_post(&format!("/v1/admin/subscriptions/{sub}/suspend"), json!({}))
        .await
        .expect(200);
    assert_eq!(status_of(&app, &key).await, "subscription_suspended");
    n.expect(MISS, "the validation after a suspension").await;
    app.admin_post(&format!("/v1/admin/subscriptions/{sub}/resume"), json!({}))
        .await
        .expect(200);
    assert_valid(&app, &key).await;
    n.expect(MISS, "the validation after the resumption").await;
    n.answered_from_memory(|| assert_valid(&app, &key), "the next validation")
        .await;

    // a stale last_seen_at is refreshed through the database, not hidden by the cache
    let seen = |v: serde_json::Value| v["last_seen_at"].as_str().unwrap().to_owned();
    let before = seen(
        app.admin_get(&format!("/v1/admin/registrations/{reg_id}"))
            .await
            .expect(200),
    );
    app.clock.advance(120);
    assert_valid(&app, &key).await;
    n.expect(MISS, "a validation with last_seen_at due").await;
    let after = seen(
        app.admin_get(&format!("/v1/admin/registrations/{reg_id}"))
            .await
            .expect(200),
    );
    assert!(after > before, "last_seen_at moved: {before} -> {after}");
    n.answered_from_memory(
        || assert_valid(&app, &key),
        "the validation after the refresh",
    )
    .await;

    // the instance releases its binding: not registered at once
    app.release(&key, URL).await.expect(204);
    assert_eq!(status_of(&app, &key).await, "not_registered");
    n.expect(MISS, "the validation after a release").await;
    app.register(&key, URL).await.expect(201);
    assert_valid(&app, &key).await;
    n.expect(MISS, "the validation after a new registration")
        .await;
    n.answered_from_memory(|| assert_valid(&app, &key), "the next validation")
        .await;

    // revoked by an admin: refused at once
    app.admin_post(&format!("/v1/admin/keys/{key_id}/revoke"), json!({}))
        .await
        .expect(200);
    assert_eq!(status_of(&app, &key).await, "key_revoked");
    n.expect(MISS, "the validation after a revocation").await;
    assert_eq!(status_of(&app, &key).await, "key_revoked");
    n.expect(MISS, "a refusal (never cached)").await;
    app.clock.reset();
}

async fn info_is_valid(app: &TestApp, key: &str) {
    assert_eq!(info(app, key, UID, "en").await["is_valid"], true);
}

async fn glpi_info_follows_every_change_made_through_the_server(app: TestApp) {
    let (key_id, key) = app.new_key().await;
    let mut n = Lookups::new(&app).await;
    let v = info(&app, &key, UID, "en").await;
    assert_eq!(v["is_valid"], true, "{v}");
    // the first call binds the UID: its write moves the key's generation, so the state read
    // before it is not kept
    n.expect(MISS, "the first /info").await;
    info_is_valid(&app, &key).await;
    n.expect(MISS, "the second /info (the binding is read again)")
        .await;
    n.warm_up(|| info_is_valid(&app, &key)).await;
    for _ in 0..3 {
        info_is_valid(&app, &key).await;
    }
    n.expect((3, 0), "GLPI's repeated /info calls").await;

    // another instance's UID is still refused (never answered from the first one's state), and
    // its refused bind attempt moves the key's generation when it rolls back
    let other = info(
        &app,
        &key,
        "cache000000000000000000000000000000000002",
        "en",
    )
    .await;
    assert_eq!(other["is_valid"], false, "{other}");
    n.expect(MISS, "another instance's /info").await;
    info_is_valid(&app, &key).await;
    n.expect(MISS, "the bound instance's next /info").await;
    info_is_valid(&app, &key).await;
    n.expect(HIT, "cached again before the revocation").await;

    app.admin_post(&format!("/v1/admin/keys/{key_id}/revoke"), json!({}))
        .await
        .expect(200);
    let v = info(&app, &key, UID, "en").await;
    assert_eq!(
        (v["is_valid"].clone(), v["validation_message"].clone()),
        (
            json!(false),
            json!("This registration key has been revoked.")
        )
    );
    n.expect(MISS, "the /info after a revocation").await;
}

crate::on_both_backends!(
    configure = |b| b.key_cache_ttl(TTL_SECS);
    validations_follow_every_change_made_through_the_server,
    glpi_info_follows_every_change_made_through_the_server,
);
