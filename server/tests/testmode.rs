//! Test mode through HTTP and through `TestServer`: fixtures, the clock, faults, the journal,
//! reset, and a pinned JWKS.

use glpi_network_server::testmode::server::TestServer;
use glpi_network_shared::{TokenError, Verifier, token::Expect};
use reqwest::blocking::Client;
use serde_json::{Value, json};
use std::time::Duration;

const KEY: &str = "TEST-FIXED-KEY-0001";
const URL: &str = "https://glpi.example.com";
const UID: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";

fn fixtures() -> Value {
    json!({
        "subscribers": [{"ref": "acme", "name": "ACME Corp", "email": "it@acme.test"}],
        "subscriptions": [
            {"ref": "trial", "subscriber": "acme", "offer": "standard", "trial_days": 7},
            {"ref": "paused", "subscriber": "acme", "offer": "basic", "status": "suspended"}
        ],
        "keys": [
            {"ref": "main", "key": KEY, "subscription": "trial"},
            {"key": "TEST-FIXED-KEY-0002", "subscription": "paused"}
        ],
        "registrations": [{"key": KEY, "instance_url": URL}]
    })
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn get(c: &Client, url: String) -> (u16, Value) {
    let r = c.get(url).send().unwrap();
    let s = r.status().as_u16();
    let text = r.text().unwrap();
    (s, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn post(c: &Client, url: String, body: Value) -> (u16, Value) {
    let r = c.post(url).json(&body).send().unwrap();
    let s = r.status().as_u16();
    let text = r.text().unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn validate(c: &Client, s: &TestServer, key: &str) -> (u16, Value) {
    post(
        c,
        format!("{}/v1/validations", s.url()),
        json!({"registration_key": key, "instance_url": URL}),
    )
}

fn verifier(c: &Client, s: &TestServer) -> Verifier {
    let jwks = c
        .get(format!("{}/.well-known/jwks.json", s.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    Verifier::new(s.url(), &jwks).unwrap()
}

#[test]
fn a_fixed_key_and_a_signing_seed_give_a_known_jwks_and_a_registration_at_once() {
    let a = TestServer::builder()
        .signing_seed("suite-1")
        .fixtures_json(fixtures())
        .start()
        .unwrap();
    let b = TestServer::builder()
        .signing_seed("suite-1")
        .start()
        .unwrap();
    let other = TestServer::builder()
        .signing_seed("suite-2")
        .start()
        .unwrap();
    let c = client();
    let jwks = |s: &TestServer| get(&c, format!("{}/.well-known/jwks.json", s.url())).1;
    assert_eq!(jwks(&a), jwks(&b), "the same seed pins the same JWKS");
    assert_ne!(jwks(&a), jwks(&other));

    let (status, v) = validate(&c, &a, KEY);
    assert_eq!(status, 200);
    assert_eq!(
        (v["valid"].clone(), v["status"].clone()),
        (json!(true), json!("valid"))
    );
    let claims = verifier(&c, &a)
        .verify(
            v["token"].as_str().unwrap(),
            a.clock().now().timestamp(),
            &Expect::default(),
        )
        .unwrap();
    assert_eq!(
        (claims.offer.as_str(), claims.owner.as_str()),
        ("standard", "ACME Corp")
    );
    let (_, v) = validate(&c, &a, "TEST-FIXED-KEY-0002");
    assert_eq!(v["status"], "not_registered");
}

#[test]
fn advancing_the_clock_ends_a_trial_and_the_token_says_so() {
    let s = TestServer::builder()
        .fixtures_json(fixtures())
        .start()
        .unwrap();
    let c = client();
    let (st, now) = post(
        &c,
        format!("{}/_test/clock", s.url()),
        json!({"advance_seconds": 8 * 86_400}),
    );
    assert_eq!(st, 200);
    let moved: chrono::DateTime<chrono::Utc> = now["now"].as_str().unwrap().parse().unwrap();
    assert!(moved > chrono::Utc::now() + chrono::Duration::days(7));
    let (_, v) = validate(&c, &s, KEY);
    let claims = verifier(&c, &s)
        .verify(
            v["token"].as_str().unwrap(),
            s.clock().now().timestamp(),
            &Expect::default(),
        )
        .unwrap();
    assert_eq!(
        (claims.status.as_str(), claims.valid),
        ("subscription_ended", true)
    );
    assert_eq!(claims.entitlements, ["marketplace"]);
    assert!(
        (claims.iat - moved.timestamp()).abs() < 60,
        "token times follow the test clock"
    );
    // set and back to real time
    let (st, _) = post(
        &c,
        format!("{}/_test/clock", s.url()),
        json!({"set": "2020-01-01T00:00:00Z"}),
    );
    assert_eq!(st, 200);
    assert_eq!(s.clock().now().date_naive().to_string(), "2020-01-01");
    post(
        &c,
        format!("{}/_test/clock", s.url()),
        json!({"real": true}),
    );
    assert!((s.clock().now() - chrono::Utc::now()).num_seconds().abs() < 5);
    let (st, e) = post(
        &c,
        format!("{}/_test/clock", s.url()),
        json!({"real": true, "advance_seconds": 5}),
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[test]
fn an_armed_503_times_3_fails_exactly_three_calls() {
    let s = TestServer::builder()
        .fixtures_json(fixtures())
        .start()
        .unwrap();
    let c = client();
    let (st, armed) = post(
        &c,
        format!("{}/_test/faults", s.url()),
        json!({"rules": [{"path": "/v1/validations", "method": "POST", "kind": "status", "status": 503, "times": 3}]}),
    );
    assert_eq!(st, 201);
    let id = armed["rules"][0]["id"].as_u64().unwrap();
    let statuses: Vec<u16> = (0..5).map(|_| validate(&c, &s, KEY).0).collect();
    assert_eq!(statuses, [503, 503, 503, 200, 200]);
    let (_, listed) = get(&c, format!("{}/_test/faults", s.url()));
    assert_eq!(listed["rules"][0]["id"].as_u64(), Some(id));
    assert_eq!(
        (
            listed["rules"][0]["fired"].as_u64(),
            listed["rules"][0]["remaining"].as_u64()
        ),
        (Some(3), Some(0))
    );
    // other paths and methods were never touched
    assert_eq!(get(&c, format!("{}/healthz", s.url())).0, 200);
    let r = c
        .delete(format!("{}/_test/faults", s.url()))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        get(&c, format!("{}/_test/faults", s.url())).1["rules"],
        json!([])
    );
    let (st, e) = post(
        &c,
        format!("{}/_test/faults", s.url()),
        json!({"rules": [{"path": "x", "kind": "delay"}]}),
    );
    assert_eq!(st, 400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("rules[0]")
    );
}

#[test]
fn every_fault_kind_does_what_it_says_and_hang_is_bounded() {
    let s = TestServer::builder()
        .fixtures_json(fixtures())
        .start()
        .unwrap();
    let c = client();
    let arm = |rule: Value| {
        c.delete(format!("{}/_test/faults", s.url()))
            .send()
            .unwrap();
        assert_eq!(
            post(
                &c,
                format!("{}/_test/faults", s.url()),
                json!({"rules": [rule]})
            )
            .0,
            201
        );
    };
    let raw = |path: &str| c.get(format!("{}{path}", s.url())).send();

    arm(json!({"path": "/api/ping", "kind": "empty_body", "times": 1}));
    let r = raw("/api/ping").unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().unwrap()),
        (200, String::new())
    );
    arm(json!({"path": "/api/*", "kind": "invalid_json", "times": 1}));
    let body = raw("/api/registration/offers").unwrap().text().unwrap();
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    arm(json!({"path": "/api/ping", "kind": "reset", "times": 1}));
    assert!(
        raw("/api/ping").and_then(|r| r.text()).is_err(),
        "the connection is cut mid-answer"
    );
    assert_eq!(
        raw("/api/ping").unwrap().status(),
        200,
        "and the next call is served"
    );
    arm(json!({"path": "/api/ping", "kind": "delay", "ms": 200, "times": 1}));
    let t = std::time::Instant::now();
    assert_eq!(raw("/api/ping").unwrap().status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    arm(json!({"path": "/api/ping", "kind": "hang", "ms": 300, "times": 1}));
    let r = raw("/api/ping").unwrap();
    assert_eq!(r.status(), 504, "a hang ends by itself");

    // token faults: the answer is served, the token no longer verifies
    let v = verifier(&c, &s);
    let now = s.clock().now().timestamp();
    arm(json!({"path": "/v1/validations", "kind": "bad_signature", "times": 1}));
    let (st, body) = validate(&c, &s, KEY);
    assert_eq!(st, 200);
    assert_eq!(
        v.verify(body["token"].as_str().unwrap(), now, &Expect::default()),
        Err(TokenError::BadSignature)
    );
    arm(json!({"path": "/v1/validations", "kind": "unknown_kid", "times": 1}));
    let (_, body) = validate(&c, &s, KEY);
    assert!(matches!(
        v.verify(body["token"].as_str().unwrap(), now, &Expect::default()),
        Err(TokenError::UnknownKid(_))
    ));
    let (_, body) = validate(&c, &s, KEY);
    v.verify(body["token"].as_str().unwrap(), now, &Expect::default())
        .unwrap();

    // a seeded probability repeats
    let fired = |seed: u64| {
        c.delete(format!("{}/_test/faults", s.url()))
            .send()
            .unwrap();
        post(
            &c,
            format!("{}/_test/faults", s.url()),
            json!({"rules": [{"path": "/healthz", "kind": "status", "status": 500, "probability": 0.5, "seed": seed}]}),
        );
        (0..20)
            .map(|_| raw("/healthz").unwrap().status().as_u16())
            .collect::<Vec<_>>()
    };
    assert_eq!(fired(42), fired(42));
}

#[test]
fn the_journal_shows_glpi_headers_but_never_the_key() {
    let s = TestServer::builder()
        .fixtures_json(fixtures())
        .start()
        .unwrap();
    let c = client();
    let r = c
        .get(format!("{}/api/registration/info", s.url()))
        .header("Accept", "application/json")
        .header("Accept-Language", "fr")
        .header("User-Agent", "GLPI/10.0.18 (installation-mode:TARBALL)")
        .header("X-Registration-Key", KEY)
        .header("X-Glpi-Network-Uid", UID)
        .send()
        .unwrap();
    assert_eq!(r.json::<Value>().unwrap()["is_valid"], true);
    get(&c, format!("{}/healthz", s.url()));
    let (_, j) = get(&c, format!("{}/_test/requests?uid={UID}", s.url()));
    let items = j["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let e = &items[0];
    assert_eq!(
        (
            e["method"].as_str(),
            e["path"].as_str(),
            e["status"].as_u64()
        ),
        (Some("GET"), Some("/api/registration/info"), Some(200))
    );
    assert_eq!(e["headers"]["x-glpi-network-uid"], UID);
    assert_eq!(e["headers"]["accept-language"], "fr");
    assert_eq!(
        e["headers"]["user-agent"],
        "GLPI/10.0.18 (installation-mode:TARBALL)"
    );
    assert!(e["at"].is_string());
    let (_, all) = get(&c, format!("{}/_test/requests?limit=1000", s.url()));
    assert!(
        !all.to_string().contains(KEY),
        "the journal never holds the plaintext key"
    );
    let (_, by_prefix) = get(&c, format!("{}/_test/requests?key_prefix=TEST-F", s.url()));
    assert_eq!(by_prefix["items"].as_array().unwrap().len(), 1);
    let (_, by_path) = get(&c, format!("{}/_test/requests?path=/healthz", s.url()));
    assert_eq!(by_path["items"].as_array().unwrap().len(), 1);
    let (_, none) = get(&c, format!("{}/_test/requests?path=/_test/*", s.url()));
    assert_eq!(
        none["items"],
        json!([]),
        "the /_test routes are not journaled"
    );
}

#[test]
fn fixtures_load_all_or_nothing_and_reset_empties_all_but_offers_and_signing_keys() {
    let s = TestServer::builder().signing_seed("reset").start().unwrap();
    let c = client();
    let mut bad = fixtures();
    bad["keys"][1]["subscription"] = json!("nope");
    let (st, e) = post(&c, format!("{}/_test/fixtures", s.url()), bad);
    assert_eq!(st, 400);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("keys[1]") && msg.contains("nope"), "{msg}");
    let admin = |path: &str| {
        c.get(format!("{}{path}", s.url()))
            .bearer_auth(s.admin_token())
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap()
    };
    assert_eq!(
        admin("/v1/admin/subscribers")["items"],
        json!([]),
        "nothing was half-loaded"
    );
    let mut typo = fixtures();
    typo["keys"][0]["key"] = json!("GLPI-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA");
    let (st, e) = post(&c, format!("{}/_test/fixtures", s.url()), typo);
    assert_eq!(st, 400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("keys[0]")
    );

    let (st, loaded) = post(&c, format!("{}/_test/fixtures", s.url()), fixtures());
    assert_eq!(st, 201);
    assert!(
        loaded["subscribers"]["acme"].is_string() && loaded["subscriptions"]["trial"].is_string()
    );
    assert!(loaded["keys"]["main"].is_string() && loaded["keys"]["keys[1]"].is_string());
    assert_eq!(loaded["registrations"].as_array().unwrap().len(), 1);
    let kid_before = get(&c, format!("{}/.well-known/jwks.json", s.url())).1;

    post(
        &c,
        format!("{}/_test/faults", s.url()),
        json!({"rules": [{"path": "/nothing", "kind": "delay"}]}),
    );
    let r = c.post(format!("{}/_test/reset", s.url())).send().unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(admin("/v1/admin/subscribers")["items"], json!([]));
    assert_eq!(admin("/v1/admin/registrations")["items"], json!([]));
    assert_eq!(admin("/v1/admin/audit")["items"], json!([]));
    assert_eq!(
        admin("/v1/admin/offers")["items"].as_array().unwrap().len(),
        4
    );
    assert_eq!(
        admin("/v1/admin/plugins")["items"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "demo plugins are back"
    );
    assert_eq!(
        get(&c, format!("{}/.well-known/jwks.json", s.url())).1,
        kid_before
    );
    assert_eq!(
        get(&c, format!("{}/_test/faults", s.url())).1["rules"],
        json!([])
    );
    assert_eq!(validate(&c, &s, KEY).0, 404);
    // the same fixtures load again after a reset
    assert_eq!(
        post(&c, format!("{}/_test/fixtures", s.url()), fixtures()).0,
        201
    );
}

#[test]
fn without_test_mode_the_test_routes_do_not_exist() {
    let s = TestServer::builder().test_mode(false).start().unwrap();
    let c = client();
    for path in ["/_test/clock", "/_test/requests", "/_test/faults"] {
        let (st, body) = get(&c, format!("{}{path}", s.url()));
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
}

#[test]
fn fixtures_posted_over_http_cannot_name_archive_files() {
    let s = TestServer::start().unwrap();
    let c = client();
    let (st, e) = post(
        &c,
        format!("{}/_test/fixtures", s.url()),
        json!({"plugins": [{"key": "leak", "name": "Leak", "versions": [{"num": "1.0.0", "archive": "/etc/hostname"}]}]}),
    );
    assert_eq!(st, 400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("plugins[0].versions[0]"),
        "{e}"
    );
    // without a path, the archive is generated
    let (st, _) = post(
        &c,
        format!("{}/_test/fixtures", s.url()),
        json!({"plugins": [{"key": "fine", "name": "Fine", "versions": [{"num": "1.0.0"}]}]}),
    );
    assert_eq!(st, 201);
}

/// The versions of plugin `key` that the marketplace lists to `agent`.
fn marketplace_nums(c: &Client, s: &TestServer, key: &str, agent: &str) -> Vec<String> {
    let list: Value = c
        .get(format!("{}/api/marketplace/plugins", s.url()))
        .header("User-Agent", agent)
        .header("X-Registration-Key", KEY)
        .header("X-Glpi-Network-Uid", UID)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let plugin = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == key)
        .unwrap_or_else(|| panic!("{key} is listed: {list}"));
    plugin["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["num"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn fixtures_set_version_compatibility_and_a_reload_changes_it() {
    let mut fx = fixtures();
    fx["plugins"] = json!([{"key": "fx", "name": "Fx", "versions": [
        {"num": "1.0.0", "compatibility": "~10.0"},
        {"num": "2.0.0", "compatibility": ">=11"}
    ]}]);
    let s = TestServer::builder().fixtures_json(fx).start().unwrap();
    let c = client();
    let g10 = "GLPI/10.0.18 (installation-mode:TARBALL)";
    let g11 = "GLPI/11.0.1 (installation-mode:TARBALL)";
    assert_eq!(marketplace_nums(&c, &s, "fx", g10), ["1.0.0"]);
    assert_eq!(marketplace_nums(&c, &s, "fx", g11), ["2.0.0"]);
    // loading the plugin again: `null` removes a requirement, an absent one keeps it
    let (st, _) = post(
        &c,
        format!("{}/_test/fixtures", s.url()),
        json!({"plugins": [{"key": "fx", "versions": [
            {"num": "1.0.0", "compatibility": null},
            {"num": "2.0.0"}
        ]}]}),
    );
    assert_eq!(st, 201);
    assert_eq!(marketplace_nums(&c, &s, "fx", g10), ["1.0.0"]);
    assert_eq!(marketplace_nums(&c, &s, "fx", g11), ["1.0.0", "2.0.0"]);
    // an invalid requirement names the entry, and nothing is loaded
    let (st, e) = post(
        &c,
        format!("{}/_test/fixtures", s.url()),
        json!({"plugins": [{"key": "fx", "versions": [
            {"num": "3.0.0"},
            {"num": "1.0.0", "compatibility": "ten"}
        ]}]}),
    );
    assert_eq!(st, 400);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("plugins[0]") && msg.contains("compatibility") && msg.contains("ten"),
        "{msg}"
    );
    assert_eq!(marketplace_nums(&c, &s, "fx", g11), ["1.0.0", "2.0.0"]);
}
