//! The `glpi-network` binary: every command and every exit code, human and `--json`.

use crate::helpers::{CacheDir, INSTANCE, spawn_server};
use assert_cmd::cargo::cargo_bin_cmd;
use predicates::prelude::*;
use serde_json::Value;

/// The binary with a private cache and no inherited configuration.
pub fn cli(cache: &CacheDir) -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("glpi-network");
    cmd.env_remove("GLPI_NETWORK_SERVER")
        .env_remove("GLPI_NETWORK_KEY")
        .env_remove("GLPI_NETWORK_ISSUER")
        .env_remove("GLPI_NETWORK_LOG")
        .arg("--cache")
        .arg(cache.path())
        .arg("--timeout")
        .arg("5");
    cmd
}

/// Stdout as exactly one JSON object.
#[track_caller]
pub fn one_json(out: &[u8]) -> Value {
    let text = std::str::from_utf8(out).unwrap();
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let v = values.next().expect("a JSON object").expect("valid JSON");
    assert!(values.next().is_none(), "more than one JSON value: {text}");
    assert!(v.is_object(), "{text}");
    v
}

#[test]
fn register_validate_status_and_release_exit_0() {
    let server = spawn_server();
    let cache = CacheDir::new();
    let (_, _, key) = server.new_key("standard");
    cli(&cache)
        .args([
            "--server",
            &server.url,
            "register",
            key.expose(),
            "--url",
            INSTANCE,
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("valid:"))
        .stdout(predicate::str::contains("GLPI Network Standard"))
        .stdout(predicate::str::contains(key.expose()).not());
    // Server, key and URL now come from the cache.
    cli(&cache)
        .arg("validate")
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("valid:"));
    let out = cli(&cache).args(["status", "--json"]).assert().code(0);
    let v = one_json(&out.get_output().stdout);
    assert_eq!(v["state"], "cached");
    assert_eq!(v["usable"], true);
    assert_eq!(v["instance_url"], INSTANCE);
    assert_eq!(v["offer"], "standard");
    assert!(v["grace_until"].as_str().unwrap().ends_with('Z'));
    cli(&cache)
        .arg("release")
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("released"));
    assert!(!cache.path().exists());
    cli(&cache)
        .arg("status")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("register"));
}

#[test]
fn the_server_can_come_from_the_environment() {
    let server = spawn_server();
    let cache = CacheDir::new();
    let (_, _, key) = server.new_key("basic");
    let out = cli(&cache)
        .env("GLPI_NETWORK_SERVER", &server.url)
        .args(["--json", "register", key.expose(), "--url", INSTANCE])
        .assert()
        .code(0);
    assert_eq!(one_json(&out.get_output().stdout)["state"], "valid");
}

#[test]
fn a_stopped_server_is_grace_and_exit_0_but_nothing_cached_is_exit_3() {
    let mut server = spawn_server();
    let cache = CacheDir::new();
    let (_, _, key) = server.new_key("basic");
    let url = server.url.clone();
    cli(&cache)
        .args([
            "--server",
            &url,
            "register",
            key.expose(),
            "--url",
            INSTANCE,
        ])
        .assert()
        .code(0);
    server.stop();
    cli(&cache)
        .arg("validate")
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("grace:"))
        .stdout(predicate::str::contains("cannot reach"));
    let empty = CacheDir::new();
    let args = ["--server", &url, "--key", key.expose(), "--url", INSTANCE];
    cli(&empty)
        .args(args)
        .arg("validate")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("cannot reach"));
    let out = cli(&empty)
        .args(args)
        .args(["validate", "--json"])
        .assert()
        .code(3);
    let v = one_json(&out.get_output().stdout);
    assert_eq!(v["error"]["kind"], "unreachable");
    assert_eq!(v["exit_code"], 3);
}

#[test]
fn a_revoked_key_exits_1_and_stays_refused_offline() {
    let mut server = spawn_server();
    let cache = CacheDir::new();
    let (_, key_id, key) = server.new_key("basic");
    cli(&cache)
        .args([
            "--server",
            &server.url,
            "register",
            key.expose(),
            "--url",
            INSTANCE,
        ])
        .assert()
        .code(0);
    server.revoke(&key_id);
    cli(&cache)
        .arg("validate")
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with("refused (revoked)"));
    server.stop();
    cli(&cache).arg("validate").assert().code(1);
    let out = cli(&cache).args(["status", "--json"]).assert().code(1);
    let v = one_json(&out.get_output().stdout);
    assert_eq!(v["state"], "refused");
    assert_eq!(v["reason"], "revoked");
    assert_eq!(v["server_status"], "key_revoked");
}

#[test]
fn a_server_refusal_exits_1_with_its_code() {
    let server = spawn_server();
    let cache = CacheDir::new();
    let out = cli(&cache)
        .args([
            "--server",
            &server.url,
            "--json",
            "register",
            "NO-SUCH-KEY",
            "--url",
            INSTANCE,
        ])
        .assert()
        .code(1);
    let v = one_json(&out.get_output().stdout);
    assert_eq!(v["error"]["status"], 404);
    assert_eq!(v["error"]["code"], "key_not_found");
}

#[test]
fn an_edited_cache_is_discarded_with_a_warning() {
    let server = spawn_server();
    let cache = CacheDir::new();
    let (_, _, key) = server.new_key("basic");
    cli(&cache)
        .args([
            "--server",
            &server.url,
            "register",
            key.expose(),
            "--url",
            INSTANCE,
        ])
        .assert()
        .code(0);
    let mut bytes = std::fs::read(cache.path()).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(cache.path(), &bytes).unwrap();
    cli(&cache)
        .arg("status")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("discarding the cache"));
    cli(&cache)
        .args([
            "--server",
            &server.url,
            "--key",
            key.expose(),
            "--url",
            INSTANCE,
            "validate",
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("valid:"));
}

#[test]
fn usage_errors_exit_2() {
    let cache = CacheDir::new();
    cli(&cache).assert().code(2);
    cli(&cache).args(["frobnicate"]).assert().code(2);
    cli(&cache)
        .args(["--server", "http://127.0.0.1:9", "register", "SOME-KEY"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--url"));
    cli(&cache)
        .args([
            "--server",
            "ftp://example.com",
            "--key",
            "K",
            "--url",
            INSTANCE,
            "validate",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("server URL"));
    cli(&cache)
        .args([
            "--server",
            "http://127.0.0.1:9",
            "--url",
            "gopher://x",
            "--key",
            "K",
            "validate",
        ])
        .assert()
        .code(2);
    // A generated-shape key with a wrong checksum.
    cli(&cache)
        .args([
            "register",
            "GLPI-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA",
            "--url",
            INSTANCE,
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("checksum"));
    // Nothing cached and nothing given.
    let out = cli(&cache).args(["validate", "--json"]).assert().code(2);
    assert_eq!(one_json(&out.get_output().stdout)["error"]["kind"], "usage");
    cli(&cache)
        .args(["--timeout", "0", "status"])
        .assert()
        .code(2);
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line_definitions() {
    let cache = CacheDir::new();
    for shell in ["bash", "zsh", "fish"] {
        cli(&cache)
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(
                predicate::str::contains("glpi-network").and(predicate::str::contains("register")),
            );
    }
    cli(&cache)
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH glpi-network 1"));
    cli(&cache)
        .args(["completions", "cmd.exe"])
        .assert()
        .code(2);
}
