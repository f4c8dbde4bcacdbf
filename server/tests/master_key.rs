//! `master-key rotate | status` (DESIGN §13) through the real binary on SQLite: tokens issued
//! before the change keep verifying, servers given either key sign, and a rotation stopped after
//! any of its steps leaves a data directory a server starts from.

use glpi_network_shared::{Verifier, token::Expect};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ISS: &str = "https://licensing.example.test";
const ADMIN: &str = "master-key-test-admin-token";
const URL: &str = "https://glpi.example.test";
/// The exit code of a rotation stopped at a fault point.
const CRASH_EXIT: i32 = 86;

fn server(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_glpi-network-server"));
    cmd.arg("--data-dir")
        .arg(dir)
        .env_remove("DATABASE_URL")
        .env_remove("GLPI_NETWORK_MASTER_KEY")
        .env_remove("GLPI_NETWORK_TEST_CRASH_AFTER")
        .env_remove("GLPI_NETWORK_ADMIN_TOKEN");
    cmd
}

fn ok(out: Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn run(cmd: &mut Command) -> Value {
    ok(cmd.output().unwrap())
}

/// `master-key status` as `(id, sealed_with)` pairs.
fn status(dir: &Path) -> Vec<(String, String)> {
    let v = run(server(dir).args(["master-key", "status"]));
    v["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["kind"], "signing_key");
            (
                s["id"].as_str().unwrap().to_owned(),
                s["sealed_with"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn sealed_with(dir: &Path) -> Vec<String> {
    status(dir).into_iter().map(|(_, w)| w).collect()
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

/// A running server, killed when dropped.
struct Proc {
    child: Child,
    base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` as a server and waits until it answers; `None` when it exits first.
fn start(mut cmd: Command) -> Proc {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = cmd
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args([
            "--public-url",
            ISS,
            "--admin-token",
            ADMIN,
            "--workers",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut p = Proc {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{}/readyz", p.base)).send()
            && r.status() == 200
        {
            return p;
        }
        if let Ok(Some(status)) = p.child.try_wait() {
            let mut err = String::new();
            std::io::Read::read_to_string(p.child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("server exited: {status}: {err}");
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Proc {
    fn post(&self, path: &str, body: Value, admin: bool) -> Value {
        let mut req = reqwest::blocking::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body);
        if admin {
            req = req.bearer_auth(ADMIN);
        }
        let r = req.send().unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().unwrap()
    }

    /// A token for `key` (registering it on first use).
    fn token(&self, key: &str, register: bool) -> String {
        let path = if register {
            "/v1/registrations"
        } else {
            "/v1/validations"
        };
        let v = self.post(
            path,
            json!({"registration_key": key, "instance_url": URL}),
            false,
        );
        v["token"].as_str().unwrap().to_owned()
    }

    fn verifier(&self) -> Verifier {
        let jwks = reqwest::blocking::get(format!("{}/.well-known/jwks.json", self.base))
            .unwrap()
            .json()
            .unwrap();
        Verifier::new(ISS, &jwks).unwrap()
    }

    /// Signs a fresh token and verifies it and every one of `old` with this server's JWKS.
    fn signs_and_verifies(&self, key: &str, old: &[&str]) -> String {
        let fresh = self.token(key, false);
        let v = self.verifier();
        let now = chrono::Utc::now().timestamp();
        for t in old.iter().copied().chain([fresh.as_str()]) {
            v.verify(t, now, &Expect::default())
                .unwrap_or_else(|e| panic!("a token no longer verifies: {e}"));
        }
        fresh
    }
}

/// A data directory with one key, registered through a server: the key and its first token.
fn deployment(dir: &Path) -> (String, String) {
    assert!(server(dir).arg("migrate").status().unwrap().success());
    let key = run(server(dir).args(["keys", "issue", "--subscriber", "ACME", "--offer", "basic"]));
    let key = key["key"].as_str().unwrap().to_owned();
    let first = start(server(dir));
    let token = first.token(&key, true);
    (key, token)
}

fn key_file(dir: &Path, hex: &str) -> std::path::PathBuf {
    // one file per content, so several can be prepared before any is used
    let f = dir.join(format!("new-{}.key", &hex[..hex.len().min(16)]));
    std::fs::write(&f, format!("{hex}\n")).unwrap();
    f
}

#[test]
fn a_rotation_keeps_every_token_and_servers_given_either_key_sign() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &tmp.path().join("data");
    let (key, t1) = deployment(dir);
    let old = read(dir.join("master.key"));
    assert_eq!(sealed_with(dir), ["current"]);
    // a server started before the change keeps signing through it
    let before = start(server(dir));
    let new_hex = "ab".repeat(32);
    let out = run(server(dir)
        .args(["master-key", "rotate", "--new-key-file"])
        .arg(key_file(tmp.path(), &new_hex)));
    assert_eq!(out["resealed"], 1);
    assert_eq!(read(dir.join("master.key")), new_hex);
    assert_eq!(read(dir.join("master.key.previous")), old);
    for f in ["master.key", "master.key.previous"] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    assert!(!dir.join("master.key.new").exists());
    assert_eq!(sealed_with(dir), ["current"]);
    std::thread::sleep(Duration::from_secs(6)); // past the signing ring's reload interval
    let t2 = before.signs_and_verifies(&key, &[&t1]);
    // ... and, with only the old key, rotates a signing key: sealed under the previous key
    before.post("/v1/admin/signing-keys/rotate", json!({}), true);
    assert_eq!(sealed_with(dir), ["current", "previous"]);
    // a server given both keys (the files) signs with that key
    let both = start(server(dir));
    let t3 = both.signs_and_verifies(&key, &[&t1, &t2]);
    // both keys in the environment, current first (no key file in its data directory)
    let db = format!("sqlite://{}", dir.join("glpi-network.db").display());
    let mut env = server(&tmp.path().join("other"));
    env.args(["--database-url", &db])
        .env("GLPI_NETWORK_MASTER_KEY", format!("{new_hex},{old}"));
    let t4 = start(env).signs_and_verifies(&key, &[&t1, &t2, &t3]);
    drop((before, both));
    let out = run(server(dir).args(["master-key", "rotate", "--finish"]));
    assert_eq!(out["resealed"], 1);
    assert!(!dir.join("master.key.previous").exists());
    assert_eq!(sealed_with(dir), ["current", "current"]);
    // a server with the new key only: every token issued before verifies
    start(server(dir)).signs_and_verifies(&key, &[&t1, &t2, &t3, &t4]);
    // a second rotation, generated key, then finished: still the same tokens
    run(server(dir).args(["master-key", "rotate"]));
    assert_ne!(read(dir.join("master.key")), new_hex);
    assert_eq!(read(dir.join("master.key.previous")), new_hex);
    run(server(dir).args(["master-key", "rotate", "--finish"]));
    start(server(dir)).signs_and_verifies(&key, &[&t1, &t4]);
}

/// The steps of a rotation (see `cli/master_key.rs`), in order.
const STEPS: [&str; 6] = [
    "reseal-previous",
    "write-previous",
    "write-temp",
    "rename",
    "reseal-uncommitted",
    "reseal",
];

#[test]
fn a_rotation_stopped_after_any_step_leaves_a_server_that_starts_and_signs() {
    for step in STEPS.iter().chain(&["finish-reseal"]) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = &tmp.path().join("data");
        let (key, t1) = deployment(dir);
        // an earlier rotation not finished: master.key.previous exists
        run(server(dir).args(["master-key", "rotate"]));
        let mut rotate = server(dir);
        rotate
            .args(["--test-mode", "master-key", "rotate"])
            .env("GLPI_NETWORK_TEST_CRASH_AFTER", step);
        if *step == "finish-reseal" {
            rotate.arg("--finish");
        }
        let out = rotate.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(CRASH_EXIT),
            "{step}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(sealed_with(dir).iter().all(|w| w != "unknown"), "{step}");
        let t2 = start(server(dir)).signs_and_verifies(&key, &[&t1]);
        // the operator finishes the change: everything under the current key, one file
        run(server(dir).args(["master-key", "rotate", "--finish"]));
        assert_eq!(sealed_with(dir), ["current"], "{step}");
        assert!(!dir.join("master.key.previous").exists(), "{step}");
        start(server(dir)).signs_and_verifies(&key, &[&t1, &t2]);
    }
}

#[test]
fn the_fault_point_needs_test_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &tmp.path().join("data");
    deployment(dir);
    let out = server(dir)
        .args(["master-key", "rotate"])
        .env("GLPI_NETWORK_TEST_CRASH_AFTER", "rename")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(dir.join("master.key.previous").exists());
}

#[test]
fn a_wrong_new_key_file_is_a_clear_error_that_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = &tmp.path().join("data");
    let (key, t1) = deployment(dir);
    let current = read(dir.join("master.key"));
    let before = status(dir);
    let missing = tmp.path().join("missing.key");
    for (file, says) in [
        (missing, "cannot read --new-key-file"),
        (key_file(tmp.path(), &"zz".repeat(32)), "not hex"),
        (key_file(tmp.path(), &"ab".repeat(31)), "64 hex characters"),
        (key_file(tmp.path(), &current), "is the current master key"),
    ] {
        let out = server(dir)
            .args(["master-key", "rotate", "--new-key-file"])
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(says), "{says}: {err}");
        assert_eq!(read(dir.join("master.key")), current);
        assert!(!dir.join("master.key.previous").exists());
        assert!(!dir.join("master.key.new").exists());
        assert_eq!(status(dir), before);
    }
    let out = server(dir)
        .args(["master-key", "rotate", "--finish", "--new-key-file", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--finish takes no new key");
    start(server(dir)).signs_and_verifies(&key, &[&t1]);
}

#[test]
fn status_is_read_only_and_names_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nowhere");
    let out = server(&dir)
        .args(["master-key", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&dir.display().to_string()), "{err}");
    assert!(!dir.exists(), "status created the data directory");
    // a master key but no database
    let dir = tmp.path().join("keyonly");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("master.key"), "ab".repeat(32)).unwrap();
    let out = server(&dir)
        .args(["master-key", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("glpi-network.db") && err.contains("does not exist"),
        "{err}"
    );
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["master.key"], "status created a file");
    // the secrets of a deployment, all sealed with the current key, and nothing written
    let dir = tmp.path().join("data");
    deployment(&dir);
    let db = dir.join("glpi-network.db");
    let modified = std::fs::metadata(&db).unwrap().modified().unwrap();
    assert_eq!(sealed_with(&dir), ["current"]);
    assert_eq!(
        std::fs::metadata(&db).unwrap().modified().unwrap(),
        modified
    );
}

/// One request caught on a loopback port (answered `200`): its header lines and its body.
fn catch_one(listener: std::net::TcpListener) -> (Vec<String>, String) {
    use std::io::{BufRead, BufReader, Read, Write};
    listener.set_nonblocking(false).unwrap();
    let (stream, _) = listener.accept().unwrap();
    let mut reader = BufReader::new(stream);
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        headers.push(line);
    }
    let len: usize = headers
        .iter()
        .find_map(|h| {
            h.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).unwrap();
    let mut stream = reader.into_inner();
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .unwrap();
    (headers, String::from_utf8(body).unwrap())
}

fn header<'a>(headers: &'a [String], name: &str) -> &'a str {
    headers
        .iter()
        .find_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

#[test]
fn a_rotation_reseals_webhook_secrets_and_their_signatures_stay_the_same() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let tmp = tempfile::tempdir().unwrap();
    let dir = &tmp.path().join("data");
    deployment(dir);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("http://{}/hook", listener.local_addr().unwrap());
    let first = start({
        let mut c = server(dir);
        c.arg("--webhooks-allow-private");
        c
    });
    let hook = first.post(
        "/v1/admin/webhooks",
        json!({"url": target, "events": ["subscription.created"]}),
        true,
    );
    drop(first);
    let id = hook["id"].as_str().unwrap();
    let secret = hook["secret"].as_str().unwrap();
    let kinds = |dir: &Path| -> Vec<(String, String)> {
        let v = run(server(dir).args(["master-key", "status"]));
        v["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["id"] == id)
            .map(|s| {
                (
                    s["kind"].as_str().unwrap().into(),
                    s["sealed_with"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    assert_eq!(
        kinds(dir),
        [("webhook_secret".to_owned(), "current".to_owned())]
    );
    let out = run(server(dir)
        .args(["master-key", "rotate", "--new-key-file"])
        .arg(key_file(tmp.path(), &"cd".repeat(32))));
    assert_eq!(out["resealed"], 2, "the signing key and the webhook secret");
    assert_eq!(
        kinds(dir),
        [("webhook_secret".to_owned(), "current".to_owned())]
    );
    run(server(dir).args(["master-key", "rotate", "--finish"]));
    assert!(!dir.join("master.key.previous").exists());
    // a server with only the new key signs with the same secret
    let p = start({
        let mut c = server(dir);
        c.arg("--webhooks-allow-private");
        c
    });
    let s = p.post("/v1/admin/subscribers", json!({"name": "Hooked"}), true);
    p.post(
        "/v1/admin/subscriptions",
        json!({"subscriber_id": s["id"], "offer": "basic"}),
        true,
    );
    let (headers, body) = catch_one(listener);
    let (msg, ts) = (
        header(&headers, "webhook-id"),
        header(&headers, "webhook-timestamp"),
    );
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap(),
    );
    let tag = ring::hmac::sign(&key, format!("{msg}.{ts}.{body}").as_bytes());
    assert_eq!(
        header(&headers, "webhook-signature"),
        format!("v1,{}", b64.encode(tag.as_ref()))
    );
}
