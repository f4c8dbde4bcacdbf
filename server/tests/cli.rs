//! The real `glpi-network-server` binary: admin subcommands and `serve`, black-box.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn server(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_glpi-network-server"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("GLPI_NETWORK_ADMIN_TOKEN");
    cmd
}

/// A fresh data directory with a migrated database (only `serve`, `migrate` and `restore`
/// create one).
fn migrated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = server(dir.path()).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn run_json(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn keys_issued_by_the_cli_register_through_the_served_api() {
    let dir = migrated();
    let key = run_json(server(dir.path()).args([
        "keys",
        "issue",
        "--subscriber",
        "ACME Corp",
        "--offer",
        "standard",
    ]));
    let plaintext = key["key"].as_str().unwrap().to_owned();
    assert!(plaintext.starts_with("GLPI-"));
    // the same subscriber is reused for a second key
    run_json(server(dir.path()).args([
        "keys",
        "issue",
        "--subscriber",
        "ACME Corp",
        "--offer",
        "basic",
    ]));
    let subs = run_json(server(dir.path()).args(["subscribers", "list"]));
    assert_eq!(subs["items"].as_array().unwrap().len(), 1);
    let keys = run_json(server(dir.path()).args(["keys", "list"]));
    assert_eq!(keys["items"].as_array().unwrap().len(), 2);
    assert!(
        !keys.to_string().contains(&plaintext),
        "lists never show the plaintext"
    );
    let offers = run_json(server(dir.path()).args(["offers", "list"]));
    assert_eq!(offers.as_array().unwrap().len(), 4);

    let port = free_port();
    let child = server(dir.path())
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Killed(child);
    let client = reqwest::blocking::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/healthz")).send().is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let token_file = dir.path().join("admin-token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = std::fs::read_to_string(token_file).unwrap();
    let r = client
        .post(format!("{base}/v1/registrations"))
        .json(&serde_json::json!({"registration_key": plaintext, "instance_url": "https://glpi.acme.test"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let regs: Value = client
        .get(format!("{base}/v1/admin/registrations"))
        .bearer_auth(token.trim())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(regs["items"][0]["instance_url"], "https://glpi.acme.test");

    // the CLI sees what the server wrote, and revokes through the same database
    let key_id = key["id"].as_str().unwrap();
    let revoked = run_json(server(dir.path()).args(["keys", "revoke", key_id]));
    assert_eq!(revoked["status"], "revoked");
    let v: Value = client
        .post(format!("{base}/v1/validations"))
        .json(&serde_json::json!({"registration_key": plaintext, "instance_url": "https://glpi.acme.test"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["status"], "key_revoked");
    let audit = run_json(server(dir.path()).args(["audit", "list", "--limit", "500"]));
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "key.revoke" && e["actor"] == "cli")
    );
}

#[test]
fn usage_errors_and_bad_references_fail_with_a_message() {
    let dir = migrated();
    let out = server(dir.path()).args(["keys", "issue"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--subscriber"));
    let out = server(dir.path())
        .args(["keys", "issue", "--subscription", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no subscription nope"));
    let out = server(dir.path())
        .args(["keys", "frobnicate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit 2");
    let out = server(dir.path()).args(["migrate"]).output().unwrap();
    assert!(out.status.success());
    let out = server(dir.path())
        .args([
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
            "migrate",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to PostgreSQL"));
}

#[test]
fn audit_verify_names_the_first_edited_or_removed_event() {
    use diesel::{Connection, RunQueryDsl};
    let dir = migrated();
    for offer in ["basic", "standard", "advanced"] {
        run_json(server(dir.path()).args([
            "keys",
            "issue",
            "--subscriber",
            "ACME",
            "--offer",
            offer,
        ]));
    }
    let out = server(dir.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.starts_with("audit chain intact:"), "{text}");
    let events: u64 = text.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(events >= 6, "{text}");

    let db = dir.path().join("glpi-network.db");
    let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    diesel::sql_query("UPDATE audit_events SET outcome = 'forged' WHERE id = 3")
        .execute(&mut conn)
        .unwrap();
    let out = server(dir.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("broken at event 3") && text.contains("edited"),
        "{text}"
    );

    diesel::sql_query("UPDATE audit_events SET outcome = 'ok' WHERE id = 3")
        .execute(&mut conn)
        .unwrap();
    assert!(
        server(dir.path())
            .args(["audit", "verify"])
            .output()
            .unwrap()
            .status
            .success(),
        "restored"
    );
    diesel::sql_query("DELETE FROM audit_events WHERE id = 4")
        .execute(&mut conn)
        .unwrap();
    let out = server(dir.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("broken at event 5") && text.contains("removed"),
        "{text}"
    );
}

/// An edit of any hashed column of an event is found and named (not only `outcome`); `count`,
/// the tally of coalesced refusals, is outside the chain. Each edit is made on an earlier
/// event than the one before, so `verify` names the event of the edit just made.
#[test]
fn audit_verify_finds_an_edit_of_every_hashed_column() {
    use diesel::{Connection, RunQueryDsl};
    let dir = migrated();
    for i in 0..8 {
        run_json(server(dir.path()).args([
            "keys",
            "issue",
            "--subscriber",
            &format!("ACME {i}"),
            "--offer",
            "basic",
        ]));
    }
    let verify = || {
        let out = server(dir.path())
            .args(["audit", "verify"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, text) = verify();
    assert_eq!(code, Some(0), "{text}");
    let events: i64 = text.split_whitespace().nth(3).unwrap().parse().unwrap();
    let db = dir.path().join("glpi-network.db");
    let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    let mut edit = |sql: String| diesel::sql_query(sql).execute(&mut conn).unwrap();
    // outside the chain: still intact
    edit("UPDATE audit_events SET count = 99 WHERE id = 2".into());
    assert_eq!(verify().0, Some(0), "count is not hashed");
    let columns = [
        ("at", "'2001-01-01 00:00:00.000000'", "edited"),
        ("actor", "'forged'", "edited"),
        ("action", "'forged'", "edited"),
        ("outcome", "'forged'", "edited"),
        ("key_id", "'forged'", "edited"),
        ("key_prefix", "'forged'", "edited"),
        ("instance_url", "'https://forged.example.com'", "edited"),
        ("instance_uid", "'forged'", "edited"),
        ("client_addr", "'203.0.113.66'", "edited"),
        ("detail", "'forged'", "edited"),
        ("hash", "'0000'", "edited"),
        ("prev_hash", "'0000'", "removed or reordered"),
    ];
    assert!(events > columns.len() as i64, "{events} events");
    for (i, (column, value, why)) in columns.iter().enumerate() {
        let id = events - i as i64;
        edit(format!(
            "UPDATE audit_events SET {column} = {value} WHERE id = {id}"
        ));
        let (code, text) = verify();
        assert_eq!(code, Some(1), "{column}: {text}");
        assert!(
            text.contains(&format!("broken at event {id}")) && text.contains(why),
            "{column}: {text}"
        );
    }
}

#[test]
fn a_full_run_logs_one_json_line_per_request_and_never_a_plaintext_key() {
    let dir = migrated();
    let mut keys = Vec::new();
    for offer in ["basic", "standard"] {
        let k = run_json(server(dir.path()).args([
            "keys",
            "issue",
            "--subscriber",
            "ACME",
            "--offer",
            offer,
        ]));
        keys.push(k["key"].as_str().unwrap().to_owned());
    }
    let fixtures = dir.path().join("fx.json");
    std::fs::write(
        &fixtures,
        r#"{"subscribers":[{"ref":"o","name":"Fixture Co"}],"subscriptions":[{"ref":"s","subscriber":"o","offer":"advanced"}],"keys":[{"key":"FIXTURE-SECRET-KEY-42","subscription":"s"}]}"#,
    )
    .unwrap();
    keys.push("FIXTURE-SECRET-KEY-42".to_owned());
    let log_path = dir.path().join("server.log");
    let port = free_port();
    let child = server(dir.path())
        .args([
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
            "--test-mode",
        ])
        .arg("--fixtures")
        .arg(&fixtures)
        .env("RUST_LOG", "debug")
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let guard = Killed(child);
    let client = reqwest::blocking::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/healthz")).send().is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut requests = 1;
    for (i, key) in keys.iter().enumerate() {
        let url = format!("https://glpi{i}.example.com");
        let body = serde_json::json!({"registration_key": key, "instance_url": url});
        assert!(
            client
                .post(format!("{base}/v1/registrations"))
                .json(&body)
                .send()
                .unwrap()
                .status()
                .is_success()
        );
        client
            .post(format!("{base}/v1/validations"))
            .json(&body)
            .send()
            .unwrap();
        client
            .get(format!("{base}/api/registration/info"))
            .header("X-Registration-Key", key)
            .header("X-Glpi-Network-Uid", "u".repeat(40))
            .send()
            .unwrap();
        client
            .get(format!("{base}/api/marketplace/plugins"))
            .header("X-Registration-Key", key)
            .send()
            .unwrap();
        // a mistyped key and a key in a malformed body
        client
            .post(format!("{base}/v1/validations"))
            .body(format!(
                "{{\"registration_key\": \"{key}\", \"instance_url\": 5}}"
            ))
            .header("content-type", "application/json")
            .send()
            .unwrap();
        requests += 5;
    }
    drop(guard);
    let log = std::fs::read_to_string(&log_path).unwrap();
    for key in &keys {
        assert!(!log.contains(key.as_str()), "the log holds a plaintext key");
    }
    let request_lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "request")
        .collect();
    assert_eq!(request_lines.len(), requests, "one line per request");
    let reg = request_lines
        .iter()
        .find(|v| v["fields"]["route"] == "/v1/registrations")
        .unwrap();
    for f in ["request_id", "status", "latency_ms", "method", "client"] {
        assert!(!reg["fields"][f].is_null(), "{f} missing in {reg}");
    }
    assert_eq!(reg["fields"]["key_prefix"], keys[0][..9]);
    assert!(log.contains("TEST MODE IS ON"), "test mode says so loudly");
}

#[test]
fn bulk_issue_writes_every_key_once_in_batches() {
    let dir = migrated();
    let out = server(dir.path())
        .args([
            "keys",
            "issue",
            "--subscriber",
            "Bulk",
            "--offer",
            "basic",
            "--count",
            "2500",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "id,key,key_prefix,subscription_id");
    assert_eq!(lines.len(), 2501);
    let keys: std::collections::HashSet<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(keys.len(), 2500);
    assert!(keys.iter().all(|k| {
        glpi_network_shared::RegistrationKey::parse(k)
            .unwrap()
            .is_generated()
    }));
    let listed = run_json(server(dir.path()).args(["keys", "list", "--limit", "500"]));
    assert_eq!(listed["items"].as_array().unwrap().len(), 500);
    assert!(listed["next_cursor"].is_string());
    let out = server(dir.path())
        .args([
            "keys",
            "issue",
            "--subscriber",
            "Bulk",
            "--offer",
            "basic",
            "--count",
            "2",
            "--format",
            "jsonl",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r["key"].as_str().unwrap().starts_with("GLPI-"))
    );
    let out = server(dir.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(out.status.success());
}
