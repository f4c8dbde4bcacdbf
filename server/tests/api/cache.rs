//! The in-memory key-state cache of `/info` and validations: repeated look-ups are answered
//! from memory, and every change made through the server is seen by the very next request.

use crate::glpi::info;
use crate::helpers::TestApp;
use serde_json::json;

const URL: &str = "https://cache.example.com/glpi";
const UID: &str = "cache000000000000000000000000000000000001";

/// `(hits, misses)` from `/metrics`. Tests of one binary share the cache's generation counters
/// (a write in any test's server invalidates the others' entries: a miss, never a wrong
/// answer), so the assertions below count hits as "at least one" rather than exactly.
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

/// Repeats `call` until the hit counter passes `from` (at most 50 times).
async fn hit_soon<F, Fut, T>(app: &TestApp, from: u64, call: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    for _ in 0..50 {
        call().await;
        if lookups(app).await.0 > from {
            return true;
        }
    }
    false
}

async fn info_is_valid(app: &TestApp, key: &str) {
    assert_eq!(info(app, key, UID, "en").await["is_valid"], true);
}

async fn status_of(app: &TestApp, key: &str) -> String {
    let v = app.validate(key, URL).await.expect(200);
    v["status"].as_str().unwrap().to_owned()
}

async fn validations_follow_every_change_made_through_the_server(app: TestApp) {
    let sub = app.subscription("standard", json!({})).await;
    let (key_id, key) = app.issue_key(&sub).await;
    let reg = app.register(&key, URL).await.expect(201);
    let reg_id = reg["registration"]["id"].as_str().unwrap().to_owned();

    let (h0, m0) = lookups(&app).await;
    assert_eq!(status_of(&app, &key).await, "valid");
    let (_, m1) = lookups(&app).await;
    assert!(m1 > m0, "the first validation reads the database");
    assert!(
        hit_soon(&app, h0, || status_of(&app, &key)).await,
        "repeated validations are answered from memory"
    );

    // a change to the subscription (many keys at once) is seen by the next request
    app.admin_post(&format!("/v1/admin/subscriptions/{sub}/suspend"), json!({}))
        .await
        .expect(200);
    assert_eq!(status_of(&app, &key).await, "subscription_suspended");
    app.admin_post(&format!("/v1/admin/subscriptions/{sub}/resume"), json!({}))
        .await
        .expect(200);
    assert_eq!(status_of(&app, &key).await, "valid");

    // a stale last_seen_at is refreshed through the database, not hidden by the cache
    let seen = |v: serde_json::Value| v["last_seen_at"].as_str().unwrap().to_owned();
    let before = seen(
        app.admin_get(&format!("/v1/admin/registrations/{reg_id}"))
            .await
            .expect(200),
    );
    assert_eq!(status_of(&app, &key).await, "valid"); // cached again
    app.clock.advance(120);
    assert_eq!(status_of(&app, &key).await, "valid");
    let after = seen(
        app.admin_get(&format!("/v1/admin/registrations/{reg_id}"))
            .await
            .expect(200),
    );
    assert!(after > before, "last_seen_at moved: {before} -> {after}");

    // the instance releases its binding: not registered at once
    app.release(&key, URL).await.expect(204);
    assert_eq!(status_of(&app, &key).await, "not_registered");
    app.register(&key, URL).await.expect(201);
    assert_eq!(status_of(&app, &key).await, "valid");
    assert_eq!(status_of(&app, &key).await, "valid");

    // revoked by an admin: refused at once
    app.admin_post(&format!("/v1/admin/keys/{key_id}/revoke"), json!({}))
        .await
        .expect(200);
    assert_eq!(status_of(&app, &key).await, "key_revoked");
    app.clock.reset();
}

async fn glpi_info_follows_every_change_made_through_the_server(app: TestApp) {
    let (key_id, key) = app.new_key().await;
    let v = info(&app, &key, UID, "en").await;
    assert_eq!(v["is_valid"], true, "{v}");
    let (h0, _) = lookups(&app).await;
    assert!(
        hit_soon(&app, h0, || info_is_valid(&app, &key)).await,
        "GLPI's repeated /info calls are answered from memory"
    );

    // another instance's UID is still refused (never answered from the first one's state)
    let other = info(
        &app,
        &key,
        "cache000000000000000000000000000000000002",
        "en",
    )
    .await;
    assert_eq!(other["is_valid"], false, "{other}");
    let (h2, _) = lookups(&app).await;
    assert!(
        hit_soon(&app, h2, || info_is_valid(&app, &key)).await,
        "cached again before the revocation"
    );
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
}

crate::on_both_backends!(
    validations_follow_every_change_made_through_the_server,
    glpi_info_follows_every_change_made_through_the_server,
);
