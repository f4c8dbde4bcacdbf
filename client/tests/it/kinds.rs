//! Plugin licenses and agent enrollment through the library and the `glpi-network` CLI,
//! against the real server: activation, validation (fresh, then from the cache while the
//! server is down), release, a license of another instance, a revoked license, wrong-kind
//! keys; enrollment of a new agent, the same agent again, and an exhausted key.

use crate::cli::{cli, one_json};
use crate::helpers::{CacheDir, INSTANCE, TestClock, TestServer, builder, spawn_server};
use glpi_network_client::{ErrorCode, KeyKind, Reason, State, parse_kind_key};
use predicates::prelude::*;
use serde_json::json;

/// A commercial plugin `payroll` and a license of it: (license id, plaintext key).
fn license(server: &TestServer) -> (String, String) {
    server.admin_post(
        "/v1/admin/plugins",
        json!({"key": "payroll", "name": "Payroll", "commercial": true,
               "license_term_days": 30, "price": "99 EUR/year"}),
    );
    let sub = server.admin_post("/v1/admin/subscribers", json!({"name": "Buyer"}));
    let lic = server.admin_post(
        "/v1/admin/licenses",
        json!({"subscriber_id": sub["id"], "plugin": "payroll"}),
    );
    (
        lic["id"].as_str().unwrap().to_owned(),
        lic["key"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn a_license_is_activated_validated_kept_through_an_outage_and_released() {
    let mut server = spawn_server();
    let (_, key) = license(&server);
    let key = parse_kind_key(&key, KeyKind::License).unwrap();
    let cache = CacheDir::new();
    let clock = TestClock::default();
    let client = builder(&server.url, &cache, &clock)
        .instance_url(INSTANCE)
        .build()
        .unwrap();

    let st = client.activate_license(&key).unwrap();
    assert_eq!(st.state, State::Valid);
    assert_eq!(st.plugin(), Some("payroll"));
    assert!(st.expires_at().unwrap() > clock.now());
    let cached = client.license_cache_path(&key);
    assert!(cached.exists(), "the verified token is cached");
    let text = std::fs::read_to_string(&cached).unwrap();
    assert!(
        !text.contains(key.expose()),
        "the cache holds no plaintext key"
    );

    assert_eq!(client.validate_license(&key).unwrap().state, State::Valid);

    // Another instance cannot take it.
    let other = builder(&server.url, &CacheDir::new(), &clock)
        .instance_url("https://other.example.com")
        .build()
        .unwrap();
    let err = other.activate_license(&key).unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::KeyAlreadyBound), "{err}");

    // The server goes away: the cached token answers, grace until grace_until, then refused.
    server.stop();
    let st = client.validate_license(&key).unwrap();
    assert_eq!(st.state, State::Grace, "{st:?}");
    assert!(st.offline_reason.is_some());
    let grace_until = st.claims.as_ref().unwrap().grace_until;
    clock.advance(grace_until - clock.now() + 1);
    let st = client.validate_license(&key).unwrap();
    assert_eq!(st.state, State::Refused(Reason::Expired));
    // With nothing cached, an outage is the error.
    assert!(other.validate_license(&key).unwrap_err().is_unavailable());
}

#[test]
fn an_edited_license_cache_is_discarded_not_trusted() {
    let mut server = spawn_server();
    let (_, key) = license(&server);
    let key = parse_kind_key(&key, KeyKind::License).unwrap();
    let cache = CacheDir::new();
    let clock = TestClock::default();
    let client = builder(&server.url, &cache, &clock)
        .instance_url(INSTANCE)
        .build()
        .unwrap();
    client.activate_license(&key).unwrap();
    let path = client.license_cache_path(&key);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("payroll", "payrolX")).unwrap();
    server.stop();
    let err = client.validate_license(&key).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(!path.exists(), "the edited cache was removed");
}

#[test]
fn the_cli_activates_validates_and_releases_a_license() {
    let server = spawn_server();
    let (id, key) = license(&server);
    let cache = CacheDir::new();
    let run = |args: &[&str]| {
        let mut c = cli(&cache);
        c.args(["--server", &server.url, "--url", INSTANCE])
            .args(args);
        c
    };
    let out = run(&["license", "activate", &key, "--json"])
        .assert()
        .code(0);
    let v = one_json(&out.get_output().stdout);
    assert_eq!(v["command"], "license activate");
    assert_eq!(v["state"], "valid");
    assert_eq!(v["plugin"], "payroll");
    assert!(v["license_expires_at"].as_str().unwrap().ends_with('Z'));
    run(&["license", "validate", &key])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("valid:"))
        .stdout(predicate::str::contains(&key).not());

    // Revoked: the signed refusal, exit 1.
    server.admin_post(&format!("/v1/admin/licenses/{id}/revoke"), json!({}));
    let out = run(&["license", "validate", &key, "--json"])
        .assert()
        .code(1);
    let v = one_json(&out.get_output().stdout);
    assert_eq!(v["state"], "refused");
    assert_eq!(v["server_status"], "key_revoked");
    assert_eq!(v["reason"], "revoked");

    // A registration key given as a license: usage, before any request.
    let (_, _, reg) = server.new_key("standard");
    run(&["license", "validate", reg.expose()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("LIC-"));
}

#[test]
fn the_cli_releases_a_license_for_another_instance() {
    let server = spawn_server();
    let (_, key) = license(&server);
    let cache = CacheDir::new();
    let run = |url: &str, args: &[&str]| {
        let mut c = cli(&cache);
        c.args(["--server", &server.url, "--url", url]).args(args);
        c
    };
    run(INSTANCE, &["license", "activate", &key])
        .assert()
        .code(0);
    run("https://b.example.com", &["license", "activate", &key])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("key_already_bound"));
    run(INSTANCE, &["license", "release", &key])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("released"));
    run("https://b.example.com", &["license", "activate", &key])
        .assert()
        .code(0);
}

#[test]
fn agents_enroll_once_each_until_the_key_is_exhausted() {
    let server = spawn_server();
    let sub = server.admin_post("/v1/admin/subscribers", json!({"name": "Fleet"}));
    let enr = server.admin_post(
        "/v1/admin/enrollment-keys",
        json!({"subscriber_id": sub["id"], "entity": "Paris", "max_uses": 1}),
    );
    let key = enr["key"].as_str().unwrap();
    let cache = CacheDir::new();
    let enroll = |agent: &str| {
        let mut c = cli(&cache);
        c.args(["--server", &server.url, "enroll", key, "--agent-id", agent]);
        c
    };
    let out = enroll("agent-1").arg("--json").assert().code(0);
    let v = one_json(&out.get_output().stdout);
    assert_eq!(v["enrolled"], true);
    assert_eq!(v["created"], true);
    assert_eq!(v["enrollment"]["entity"], "Paris");
    assert_eq!(v["enrollment"]["agent_id"], "agent-1");
    let out = enroll("agent-1").arg("--json").assert().code(0);
    assert_eq!(one_json(&out.get_output().stdout)["created"], false);
    enroll("agent-2")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("enrollment_exhausted"));

    // The library verifies the token and that it names the agent.
    let clock = TestClock::default();
    let client = builder(&server.url, &cache, &clock).build().unwrap();
    let k = parse_kind_key(key, KeyKind::Enrollment).unwrap();
    let e = client.enroll(&k, "agent-1", Some("host-1")).unwrap();
    assert!(!e.created);
    assert_eq!(e.state, State::Valid);
    let claims = e.claims.unwrap();
    assert_eq!(claims.extra["agent_id"], "agent-1");
    assert_eq!(claims.extra["entity"], "Paris");

    // The server goes away: the cached enrollment answers, grace until its grace_until.
    let mut server = server;
    server.stop();
    let e = client.enroll(&k, "agent-1", None).unwrap();
    assert_eq!(e.state, State::Grace);
    assert!(e.offline_reason.is_some());
    assert_eq!(e.entity, "Paris");
    let grace_until = e.claims.unwrap().grace_until;
    // Another agent was never enrolled here: the outage is the error.
    assert!(
        client
            .enroll(&k, "agent-9", None)
            .unwrap_err()
            .is_unavailable()
    );
    clock.advance(grace_until - clock.now() + 1);
    let e = client.enroll(&k, "agent-1", None).unwrap();
    assert_eq!(e.state, State::Refused(Reason::Expired));
}
