//! Two real server processes on one PostgreSQL database: they start together, share one
//! signing key, verify each other's tokens, and follow a rotation and a revocation made by the
//! other.

use crate::common::{ADMIN, PgDb, Proc, start_with, wait_ready};
use crate::helpers::create_pg_database;
use glpi_network_shared::{Verifier, token::Expect};
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

fn start(db_url: &str, data_dir: &std::path::Path) -> Proc {
    start_with(
        db_url,
        data_dir,
        &["--public-url", "https://licensing.example.com"],
    )
}

async fn post(client: &reqwest::Client, url: String, body: Value, admin: bool) -> Value {
    let mut req = client.post(url).json(&body);
    if admin {
        req = req.bearer_auth(ADMIN);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json().await.unwrap()
}

async fn jwks(client: &reqwest::Client, p: &Proc) -> JwkSet {
    client
        .get(format!("{}/.well-known/jwks.json", p.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Validates through `p` every 250 ms until `done` holds (at most 30 s); the answer that did.
async fn validate_until(
    client: &reqwest::Client,
    p: &Proc,
    key: &str,
    url: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = post(
            client,
            format!("{}/v1/validations", p.base),
            json!({"registration_key": key, "instance_url": url}),
            false,
        )
        .await;
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{} never saw {what}", p.base);
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[actix_web::test]
async fn two_processes_on_one_postgres_share_keys_and_verify_each_others_tokens() {
    let Some((base, db_url, name)) = create_pg_database() else {
        return;
    };
    let _db = PgDb { base, name }; // dropped last, after both servers
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    // started together on a fresh database and data directory
    let mut a = start(&db_url, dir.path());
    let mut b = start(&db_url, dir.path());
    wait_ready(&client, &mut a).await;
    wait_ready(&client, &mut b).await;
    let (ja, jb) = (jwks(&client, &a).await, jwks(&client, &b).await);
    assert_eq!(ja.keys.len(), 1, "one signing key for the deployment");
    assert_eq!(
        serde_json::to_value(&ja).unwrap(),
        serde_json::to_value(&jb).unwrap()
    );

    let sub = post(
        &client,
        format!("{}/v1/admin/subscribers", a.base),
        json!({"name": "ACME"}),
        true,
    )
    .await;
    let subscription = post(
        &client,
        format!("{}/v1/admin/subscriptions", b.base),
        json!({"subscriber_id": sub["id"], "offer": "basic"}),
        true,
    )
    .await;
    let key = post(
        &client,
        format!("{}/v1/admin/keys", a.base),
        json!({"subscription_id": subscription["id"]}),
        true,
    )
    .await;
    let key = key["key"].as_str().unwrap();
    let url = "https://glpi.example.com";
    let reg = post(
        &client,
        format!("{}/v1/registrations", a.base),
        json!({"registration_key": key, "instance_url": url}),
        false,
    )
    .await;
    let val = post(
        &client,
        format!("{}/v1/validations", b.base),
        json!({"registration_key": key, "instance_url": url, "nonce": "n1"}),
        false,
    )
    .await;
    let now = chrono::Utc::now().timestamp();
    let va = Verifier::new("https://licensing.example.com", &ja).unwrap();
    let vb = Verifier::new("https://licensing.example.com", &jb).unwrap();
    let from_a = vb
        .verify(reg["token"].as_str().unwrap(), now, &Expect::default())
        .unwrap();
    let from_b = va
        .verify(
            val["token"].as_str().unwrap(),
            now,
            &Expect {
                instance_url: Some(url),
                nonce: Some("n1"),
            },
        )
        .unwrap();
    assert_eq!(from_a.sub, from_b.sub);
    assert_eq!(from_a.ver, from_b.ver);

    // a rotation made through A reaches B within its reload interval
    let rotated = post(
        &client,
        format!("{}/v1/admin/signing-keys/rotate", a.base),
        json!({}),
        true,
    )
    .await;
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let v = validate_until(&client, &b, key, url, "the rotation", |v| {
        kid(v["token"].as_str().unwrap()) == new_kid
    })
    .await;
    let ja = jwks(&client, &a).await;
    Verifier::new("https://licensing.example.com", &ja)
        .unwrap()
        .verify(
            v["token"].as_str().unwrap(),
            chrono::Utc::now().timestamp(),
            &Expect::default(),
        )
        .unwrap();
    assert_eq!(ja.keys.len(), 2, "the retired key stays published");

    // B answers validations from its key-state cache; a revocation made through A reaches it
    // through PostgreSQL's NOTIFY (shared_state.rs measures the delay)
    let key_id = reg["registration"]["key_id"].as_str().unwrap();
    post(
        &client,
        format!("{}/v1/admin/keys/{key_id}/revoke", a.base),
        json!({}),
        true,
    )
    .await;
    validate_until(&client, &b, key, url, "the revocation", |v| {
        assert!(
            v["status"] == "valid" || v["status"] == "key_revoked",
            "{v}"
        );
        v["status"] == "key_revoked"
    })
    .await;
}

#[actix_web::test]
async fn a_wrong_master_key_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_glpi-network-server"))
            .args(["--database-url", &db])
            .arg("--data-dir")
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(run(&["migrate"]).status.success());
    // `signing-keys list` only reads: `rotate` opens the signer (making the first key)
    let ok = run(&["signing-keys", "rotate"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let listed: Value = serde_json::from_slice(&run(&["signing-keys", "list"]).stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let run = |extra: &[&str]| run(&[extra, &["signing-keys", "rotate"][..]].concat());
    let wrong = run(&["--master-key", &"ab".repeat(32)]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("master key does not match"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    std::fs::remove_file(dir.path().join("master.key")).unwrap();
    let missing = run(&[]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no master key"));
}
