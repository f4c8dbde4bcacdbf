//! `glpi-network test`: one line per check; 0 when all pass, 3 unreachable, 1 wrong answers.

use crate::cli::{cli, one_json};
use crate::helpers::{CacheDir, spawn_server};
use crate::hostile_server::{Hostile, Reply};
use predicates::prelude::*;
use std::sync::atomic::Ordering;

#[test]
fn test_passes_against_the_real_server() {
    let server = spawn_server();
    let cache = CacheDir::new();
    cli(&cache)
        .args(["--server", &server.url, "test"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("ok    ping"))
        .stdout(predicate::str::contains("ok    jwks"))
        .stdout(predicate::str::contains("skip  tls"))
        .stdout(predicate::str::contains("ok    clock"));
    let out = cli(&cache)
        .args(["--server", &server.url, "test", "--json"])
        .assert()
        .code(0);
    let v = one_json(&out.get_output().stdout);
    assert_eq!(v["ok"], true);
    assert_eq!(v["checks"].as_array().unwrap().len(), 4);
}

#[test]
fn test_exits_3_when_the_service_cannot_be_reached() {
    let mut server = spawn_server();
    let url = server.url.clone();
    server.stop();
    let cache = CacheDir::new();
    cli(&cache)
        .args(["--server", &url, "test"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("FAIL  ping"));
}

#[test]
fn test_exits_1_on_clock_skew_or_a_bad_jwks() {
    let h = Hostile::start();
    let cache = CacheDir::new();
    h.forge.date_offset.store(3600, Ordering::SeqCst);
    cli(&cache)
        .args(["--server", &h.url, "test"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("ok    jwks"))
        .stdout(predicate::str::contains("FAIL  clock"));
    h.forge.date_offset.store(0, Ordering::SeqCst);
    h.set(|f, r| match r.path.as_str() {
        "/.well-known/jwks.json" => Reply::Body(200, "<html>captive portal</html>".into()),
        _ => f.honest(r, 1),
    });
    cli(&cache)
        .args(["--server", &h.url, "test"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAIL  jwks"))
        .stdout(predicate::str::contains("ok    clock"));
}
