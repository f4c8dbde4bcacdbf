//! Holding under attack (issue 14): limits counted atomically in the database, refusals of a
//! known key coalesced and never limited, tokens bounded by the key's and the subscription's
//! end, and the contract gaps of DESIGN §8.

use crate::helpers::TestApp;
use serde_json::json;

const URL: &str = "https://glpi.example.com";

/// Moves the test clock to the start of a fresh one-minute window.
fn fresh_window(app: &TestApp) {
    let now = app.clock.now().timestamp();
    app.clock.advance(60 - now.rem_euclid(60));
}

/// Defect 1: 200 concurrent unknown keys from one address got 200 x 404 and no 429 (the limit
/// was checked before the look-up and counted after it).
async fn a_burst_of_concurrent_failed_lookups_gets_at_most_the_allowance(app: TestApp) {
    fresh_window(&app);
    let answers = futures::future::join_all((0..200).map(|i| {
        let app = &app;
        async move {
            let key = if i % 4 == 0 {
                "GLPI-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA".to_owned() // bad checksum
            } else {
                format!("unknown-{i}")
            };
            app.validate(&key, URL).await
        }
    }))
    .await;
    let refused = answers.iter().filter(|a| a.status == 429).count();
    let failed = answers
        .iter()
        .filter(|a| a.status == 404 || a.status == 400)
        .count();
    assert_eq!(refused + failed, 200, "only 404/400 and 429");
    assert!(
        failed <= 30,
        "{failed} failed look-ups answered, allowance 30"
    );
    assert!(failed >= 1);
    eprintln!("200 concurrent failed look-ups: {failed} answered, {refused} x 429");
}

fn key_cache_hits(metrics: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with("glpi_network_key_cache_lookups_total{result=\"hit\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Defect 7: refused validations of a known key (foreign URLs) each wrote an audit row with
/// the attacker's URL, and each emptied every process's key cache.
async fn refusals_of_a_known_key_are_coalesced_never_limited_and_leave_other_keys_cached(
    app: TestApp,
) {
    fresh_window(&app);
    let (key_id, key) = app.new_key().await;
    app.register(&key, URL).await.expect(201);
    let (_, other) = app.new_key().await;
    let other_url = "https://other.example.com";
    app.register(&other, other_url).await.expect(201);
    // let the periodic change check see these changes first
    actix_web::rt::time::sleep(std::time::Duration::from_secs(3)).await;
    app.validate(&other, other_url).await.expect(200);
    app.validate(&other, other_url).await.expect(200);
    let hits = key_cache_hits(&app.metrics().await);
    assert!(hits >= 1.0, "the other key is served from the cache");
    // 100 refusals from one address: more than the failed look-up allowance, never 429
    for i in 0..100 {
        let v = app
            .validate(&key, &format!("https://attacker{i}.example.com"))
            .await
            .expect(200);
        assert_eq!(v["status"], "key_already_bound");
    }
    // the periodic change check runs every half TTL (2.5 s) and must not take refusals for
    // changes; each round lets one run, then one more refusal reloads the signing ring if it
    // is due (which would send the next validation to the database too), then the other key
    // must be answered from memory (a few rounds: a loaded machine may delay the check so
    // long that the cache stops trusting itself, which is no answer either way)
    let mut served_from_memory = false;
    let mut extra = 0;
    for _ in 0..5 {
        actix_web::rt::time::sleep(std::time::Duration::from_secs(3)).await;
        app.validate(&key, "https://attacker0.example.com")
            .await
            .expect(200);
        extra += 1;
        let hits = key_cache_hits(&app.metrics().await);
        app.validate(&other, other_url).await.expect(200);
        if key_cache_hits(&app.metrics().await) > hits {
            served_from_memory = true;
            break;
        }
    }
    assert!(
        served_from_memory,
        "the other key's cached state did not survive the refusals"
    );
    let audit = app
        .admin_get(&format!("/v1/admin/audit?key_id={key_id}&limit=500"))
        .await
        .expect(200);
    let refusals: Vec<_> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "validation")
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["count"], 100 + extra);
    assert_eq!(refusals[0]["outcome"], "key_already_bound");
    assert_eq!(refusals[0]["instance_url"], "https://attacker0.example.com");
    // a minute later the same refusal is a new event
    app.clock.advance(61);
    app.validate(&key, "https://attacker0.example.com")
        .await
        .expect(200);
    let audit = app
        .admin_get(&format!("/v1/admin/audit?key_id={key_id}&limit=500"))
        .await
        .expect(200);
    let counts: Vec<_> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "validation")
        .map(|e| e["count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, vec![1, 100 + extra]);
    let check = app.admin_get("/v1/admin/audit/verify").await.expect(200);
    assert_eq!(check["intact"], true, "{check}");
}

fn claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// Defect 11: tokens outlived the key's `expires_at` and the subscription's end by up to `exp`
/// + grace (8 days).
async fn tokens_never_outlive_the_key_nor_paid_entitlements_the_subscription(app: TestApp) {
    let now = app.clock.now();
    let expires = now + chrono::Duration::hours(2);
    let sub = app.subscription("basic", json!({})).await;
    let k = app
        .admin_post(
            "/v1/admin/keys",
            json!({"subscription_id": sub, "expires_at": expires.to_rfc3339()}),
        )
        .await
        .expect(201);
    let key = k["key"].as_str().unwrap();
    let reg = app.register(key, URL).await.expect(201);
    let v = app.validate(key, URL).await.expect(200);
    for token in [&reg["token"], &v["token"]] {
        let c = claims(token.as_str().unwrap());
        assert!(c["exp"].as_i64().unwrap() <= expires.timestamp(), "{c}");
        assert!(
            c["grace_until"].as_i64().unwrap() <= expires.timestamp(),
            "{c}"
        );
        assert!(c["exp"].as_i64().unwrap() > now.timestamp());
    }
    // a subscription whose last day is today: paid entitlements end at midnight UTC
    let today = now.date_naive();
    let sub = app
        .subscription(
            "standard",
            json!({"end_date": today.format("%Y-%m-%d").to_string()}),
        )
        .await;
    let (_, key) = app.issue_key(&sub).await;
    let v = app.validate(&key, "https://ends.example.com").await;
    assert_eq!(v.status, 200);
    let reg = app
        .register(&key, "https://ends.example.com")
        .await
        .expect(201);
    let c = claims(reg["token"].as_str().unwrap());
    let midnight = today
        .succ_opt()
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    assert_eq!(c["status"], "valid", "{c}");
    assert!(c["exp"].as_i64().unwrap() <= midnight, "{c}");
    assert!(c["grace_until"].as_i64().unwrap() <= midnight, "{c}");
}

/// DESIGN §8 Lists: every admin list, `offers` and signing keys included, honours `limit` and
/// `cursor`; a limit outside 1..=500 answers `400`.
async fn offers_and_signing_keys_page_and_limits_are_checked(app: TestApp) {
    let mut refs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/admin/offers?limit=3".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.admin_get(&path).await.expect(200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        refs.extend(
            items
                .iter()
                .map(|o| o["reference"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(refs, ["registered", "basic", "standard", "advanced"]);
    for _ in 0..2 {
        app.admin_post("/v1/admin/signing-keys/rotate", json!({}))
            .await
            .expect(201);
    }
    let first = app
        .admin_get("/v1/admin/signing-keys?limit=2")
        .await
        .expect(200);
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let c = first["next_cursor"].as_str().unwrap();
    let rest = app
        .admin_get(&format!("/v1/admin/signing-keys?limit=2&cursor={c}"))
        .await
        .expect(200);
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    for bad in ["limit=0", "limit=501", "limit=-1", "cursor=nope"] {
        for list in ["offers", "signing-keys", "keys", "audit"] {
            let a = app.admin_get(&format!("/v1/admin/{list}?{bad}")).await;
            if bad == "cursor=nope" && (list == "keys" || list == "audit") {
                continue; // id cursors: an unknown id is just a position
            }
            a.expect_error(400, "invalid_request");
        }
    }
    app.admin_get("/v1/admin/keys?limit=500").await.expect(200);
}

/// DESIGN §8 Refusals at registration: a suspended subscription binds no new instance
/// (`403 subscription_suspended`, after the conflicts); an instance already bound keeps its
/// binding.
async fn a_suspended_subscription_binds_no_new_instance(app: TestApp) {
    let sub = app.subscription("basic", json!({})).await;
    let (_, bound_key) = app.issue_key(&sub).await;
    let (new_id, new_key) = app.issue_key(&sub).await;
    let (_, other) = app.new_key().await;
    app.register(&bound_key, URL).await.expect(201);
    app.register(&other, "https://taken.example.com")
        .await
        .expect(201);
    app.admin_post(&format!("/v1/admin/subscriptions/{sub}/suspend"), json!({}))
        .await
        .expect(200);
    app.register(&new_key, "https://new.example.com")
        .await
        .expect_error(403, "subscription_suspended");
    // conflicts come first
    app.register(&new_key, "https://taken.example.com")
        .await
        .expect_error(409, "url_already_registered");
    // GLPI's /info does not bind a new UID either (but answers the key as GLPI expects)
    let info: serde_json::Value = app
        .client
        .get(app.url("/api/registration/info"))
        .header("X-Registration-Key", &new_key)
        .header("X-Glpi-Network-Uid", "u".repeat(40))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["is_valid"], true, "{info}");
    assert_eq!(info["subscription"]["is_running"], false, "{info}");
    let bindings = app
        .admin_get(&format!("/v1/admin/registrations?key_id={new_id}"))
        .await
        .expect(200);
    assert_eq!(bindings["items"].as_array().unwrap().len(), 0, "{bindings}");
    // the bound instance keeps its binding
    let again = app.register(&bound_key, URL).await.expect(200);
    assert_eq!(again["status"], "subscription_suspended");
    let v = app.validate(&bound_key, URL).await.expect(200);
    assert_eq!(v["status"], "subscription_suspended");
    // resumed, the new key binds
    app.admin_post(&format!("/v1/admin/subscriptions/{sub}/resume"), json!({}))
        .await
        .expect(200);
    app.register(&new_key, "https://new.example.com")
        .await
        .expect(201);
}

/// DESIGN §8: the audit list (newest first) is in time order even under concurrent writers.
async fn the_audit_list_is_in_time_order_under_concurrent_writes(app: TestApp) {
    let sub = app.subscription("basic", json!({})).await;
    let issued = app
        .admin_post(
            "/v1/admin/keys/bulk",
            json!({"subscription_id": sub, "count": 60}),
        )
        .await
        .expect(201);
    let keys: Vec<String> = issued["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_owned())
        .collect();
    futures::future::join_all(keys.iter().enumerate().map(|(i, k)| {
        let app = &app;
        async move {
            let url = format!("https://glpi-{i}.example.com");
            app.register(k, &url).await.expect(201);
            app.validate(k, "https://elsewhere.example.com")
                .await
                .expect(200);
        }
    }))
    .await;
    let page = app.admin_get("/v1/admin/audit?limit=500").await.expect(200);
    let times: Vec<chrono::DateTime<chrono::Utc>> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.len() >= 120);
    for w in times.windows(2) {
        assert!(
            w[0] >= w[1],
            "newest first must be time order: {} before {}",
            w[0],
            w[1]
        );
    }
}

/// DESIGN §8 Docs: `/docs` and `/docs/` both lead to Swagger UI.
async fn docs_with_and_without_the_slash_serve_swagger_ui(app: TestApp) {
    for path in ["/docs", "/docs/"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.to_lowercase().contains("swagger"), "{path}: {body}");
    }
}

crate::on_both_backends!(
    a_burst_of_concurrent_failed_lookups_gets_at_most_the_allowance,
    refusals_of_a_known_key_are_coalesced_never_limited_and_leave_other_keys_cached,
    tokens_never_outlive_the_key_nor_paid_entitlements_the_subscription,
    offers_and_signing_keys_page_and_limits_are_checked,
    a_suspended_subscription_binds_no_new_instance,
    the_audit_list_is_in_time_order_under_concurrent_writes,
    docs_with_and_without_the_slash_serve_swagger_ui,
);

/// Defect 10: a signing key derived from `--signing-seed` in test mode stayed active when the
/// same data directory later served without test mode.
#[actix_web::test]
async fn a_seeded_signing_key_never_signs_nor_is_published_outside_test_mode() {
    use glpi_network_server::{Application, Settings};
    let dir = tempfile::tempdir().unwrap();
    let settings = |test_mode: bool| {
        let mut s = Settings::new("127.0.0.1:0", dir.path().to_path_buf());
        s.workers = Some(1);
        s.test_mode = test_mode;
        s.signing_seed = test_mode.then(|| "my-suite".to_owned());
        s
    };
    let kids = |app: &Application| -> Vec<String> {
        app.state()
            .signer
            .jwks()
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect()
    };
    let app = Application::build(&settings(true)).unwrap();
    let seeded = app.state().signer.active_kid();
    assert_eq!(kids(&app), vec![seeded.clone()]);
    drop(app);
    // the same data directory served without test mode
    let app = Application::build(&settings(false)).unwrap();
    let fresh = app.state().signer.active_kid();
    assert_ne!(fresh, seeded, "a fresh key signs");
    assert_eq!(
        kids(&app),
        vec![fresh.clone()],
        "the seeded key is withdrawn at once"
    );
    drop(app);
    // and stays withdrawn at the next start
    let app = Application::build(&settings(false)).unwrap();
    assert_eq!(app.state().signer.active_kid(), fresh);
    assert_eq!(kids(&app), vec![fresh]);
}
