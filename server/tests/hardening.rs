//! The real `glpi-network-server` binary against defects of issue 14 that black-box probes
//! found (each test names its defect).

use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::blocking::Client;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn server() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_glpi-network-server"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("GLPI_NETWORK_ADMIN_TOKEN")
        .env_remove("GLPI_NETWORK_KEY_CACHE_TTL")
        .env_remove("GLPI_NETWORK_TRUSTED_PROXIES")
        .env("RUST_LOG", "warn");
    cmd
}

/// A served binary, killed when dropped.
struct Served {
    child: Child,
    base: String,
    client: Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn start(data_dir: &Path, args: &[&str]) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = server()
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let served = Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while served.client.get(served.url("/healthz")).send().is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        served
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and answers what it wrote on stderr.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let out = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Issue 14 #14: `--key-cache-ttl 18446744073709551615` started, then panicked every worker.
#[test]
fn numeric_flags_out_of_range_stop_the_binary_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (args, env, flag) in [
        (
            &["--key-cache-ttl", "18446744073709551615"][..],
            None,
            "--key-cache-ttl",
        ),
        (
            &[][..],
            Some(("GLPI_NETWORK_KEY_CACHE_TTL", "18446744073709551615")),
            "--key-cache-ttl",
        ),
        (
            &["--key-cache-size", "18446744073709551615"],
            None,
            "--key-cache-size",
        ),
        (&["--workers", "0"], None, "--workers"),
        (
            &["--failed-lookups-per-minute", "0"],
            None,
            "--failed-lookups-per-minute",
        ),
        (&["--token-ttl", "9223372036854775807"], None, "--token-ttl"),
    ] {
        let mut cmd = server();
        cmd.arg("--data-dir")
            .arg(dir.path().join("never"))
            .args(["--bind", "127.0.0.1:0"])
            .args(args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?} {env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!dir.path().join("never").exists(), "nothing is created");
    }
}

/// Issue 14 #15: the data directory was created 0755 and the database files 0644.
#[test]
fn the_data_directory_is_0700_and_every_file_0600_wherever_it_points() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let elsewhere = dir.path().join("elsewhere/db");
    let db = elsewhere.join("glpi.db");
    let data2 = dir.path().join("data2");
    let served = Served::start(&data, &[]);
    let served_elsewhere = Served::start(
        &data2,
        &["--database-url", &format!("sqlite://{}", db.display())],
    );
    // a write, so that the -wal and -shm files exist
    for (s, d) in [(&served, &data), (&served_elsewhere, &data2)] {
        let token = std::fs::read_to_string(d.join("admin-token")).unwrap();
        let r = s
            .client
            .post(s.url("/v1/admin/subscribers"))
            .bearer_auth(token.trim())
            .json(&json!({"name": "ACME"}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    assert_eq!(mode(&data), 0o700);
    for name in [
        "glpi-network.db",
        "glpi-network.db-wal",
        "glpi-network.db-shm",
        "admin-token",
        "master.key",
    ] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    assert_eq!(mode(&elsewhere), 0o700);
    assert_eq!(mode(&dir.path().join("elsewhere")), 0o700);
    for name in ["glpi.db", "glpi.db-wal", "glpi.db-shm"] {
        assert_eq!(mode(&elsewhere.join(name)), 0o600, "{name}");
    }
    let quiet = served.stop();
    drop(served_elsewhere);
    assert!(!quiet.contains("other users"), "{quiet}");

    // loosened secrets are reported at the next start
    std::fs::set_permissions(
        data.join("admin-token"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(
        data.join("master.key"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let stderr = Served::start(&data, &[]).stop();
    for name in ["admin-token", "master.key"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("WARN") && l.contains(name) && l.contains("other users")),
            "no warning for {name} in:\n{stderr}"
        );
    }
}

/// Issue 14 #3: 301 requests with invented methods grew `/metrics` from 44 KB to 19.7 MB.
#[test]
fn invented_methods_and_paths_do_not_grow_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let s = Served::start(&dir.path().join("data"), &[]);
    let metrics = || {
        s.client
            .get(s.url("/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    // one of each kind first, so every series that can exist does
    let send = |method: &str, path: &str| {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        s.client.request(m, s.url(path)).send().unwrap().status()
    };
    send("BREW0", "/v1/validations");
    send("BREW0", "/nowhere/0");
    send("GET", "/nowhere/0");
    metrics(); // a scrape is counted after it is answered
    let before = metrics();
    for i in 0..300 {
        let method = format!("X{i}{}", "M".repeat(i % 50));
        send(&method, &format!("/nowhere/{i}/{}", "p".repeat(i)));
        send(&method, "/v1/validations");
        send("GET", &format!("/nowhere/{i}"));
    }
    let after = metrics();
    eprintln!(
        "/metrics: {} bytes before, {} bytes after 900 requests",
        before.len(),
        after.len()
    );
    let series = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(series(&before), series(&after), "no new series");
    assert!(
        after.len() < before.len() + 2_000,
        "{} -> {}",
        before.len(),
        after.len()
    );
    assert!(!after.contains("X1M") && !after.contains("/nowhere"));
    assert!(after.contains("method=\"other\""), "{after}");
    assert!(after.contains("route=\"unmatched\""), "{after}");
}

fn failed_lookup(s: &Served, lines: &[&str]) -> u16 {
    let mut h = HeaderMap::new();
    for l in lines {
        h.append("x-forwarded-for", HeaderValue::from_str(l).unwrap());
    }
    s.client
        .post(s.url("/v1/validations"))
        .headers(h)
        .json(
            &json!({"registration_key": "no-such-key", "instance_url": "https://glpi.example.com"}),
        )
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// Issue 14 #2: behind a trusted proxy only the first `X-Forwarded-For` line was read, so a
/// client's own line won over the one its proxy appended (HAProxy does).
#[test]
fn forwarded_for_lines_are_joined_and_the_right_most_untrusted_hop_counts() {
    let dir = tempfile::tempdir().unwrap();
    let s = Served::start(
        &dir.path().join("data"),
        &[
            "--test-mode",
            "--trusted-proxy",
            "127.0.0.0/8",
            "--trusted-proxy",
            "fd00::/8",
            "--failed-lookups-per-minute",
            "3",
        ],
    );
    // all inside one window of the server's clock
    let r = s
        .client
        .post(s.url("/_test/clock"))
        .json(&json!({"set": "2030-01-01T00:00:05Z"}))
        .send()
        .unwrap();
    assert!(r.status().is_success());
    // the client forges a first line each time; the proxy's line names it
    for i in 0..3 {
        assert_eq!(
            failed_lookup(&s, &[&format!("6.6.6.{i}"), "203.0.113.9"]),
            404
        );
    }
    assert_eq!(failed_lookup(&s, &["6.6.6.99", "203.0.113.9"]), 429);
    assert_eq!(
        failed_lookup(&s, &["203.0.113.9, fd00::1"]),
        429,
        "a trusted hop is skipped"
    );
    assert_eq!(
        failed_lookup(&s, &["203.0.113.9", "198.51.100.1"]),
        404,
        "another client"
    );

    // IPv6 clients count per /64
    for i in 1..=3 {
        assert_eq!(failed_lookup(&s, &[&format!("2001:db8:1:2::{i}")]), 404);
    }
    assert_eq!(
        failed_lookup(&s, &["2001:db8:1:2:ffff::1"]),
        429,
        "same /64"
    );
    assert_eq!(failed_lookup(&s, &["2001:db8:1:3::1"]), 404, "another /64");
}

fn tar_gz(entries: &[(&[u8], tar::EntryType, u32, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (name, kind, mode, body) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_size(body.len() as u64);
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            h.set_link_name("/etc/passwd").unwrap();
        }
        h.set_cksum();
        b.append(&h, *body).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// Issue 14 #6: symlinks, hard links, devices, FIFOs, setuid files, `\` in names and a bomb
/// were stored and served. Each is refused with `400` naming the entry, and nothing is stored.
#[test]
fn hostile_plugin_archives_are_refused_naming_the_entry_and_nothing_is_stored() {
    use tar::EntryType::*;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Served::start(&data, &[]);
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    let token = token.trim();
    let r = s
        .client
        .post(s.url("/v1/admin/plugins"))
        .bearer_auth(token)
        .json(&json!({"key": "evil", "name": "Evil"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let setup: (&[u8], _, _, &[u8]) = (
        b"evil/setup.php",
        Regular,
        0o644,
        b"<?php function plugin_version_evil() {}",
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            tar_gz(&[setup, (b"evil/passwd", Symlink, 0o777, b"")]),
            "evil/passwd",
        ),
        (
            tar_gz(&[setup, (b"evil/hard", Link, 0o644, b"")]),
            "evil/hard",
        ),
        (
            tar_gz(&[setup, (b"evil/tty", Char, 0o644, b"")]),
            "evil/tty",
        ),
        (
            tar_gz(&[setup, (b"evil/sda", Block, 0o644, b"")]),
            "evil/sda",
        ),
        (
            tar_gz(&[setup, (b"evil/pipe", Fifo, 0o644, b"")]),
            "evil/pipe",
        ),
        (
            tar_gz(&[setup, (b"evil/suid", Regular, 0o4755, b"x")]),
            "evil/suid",
        ),
        (
            tar_gz(&[setup, (b"evil/sgid", Regular, 0o2755, b"x")]),
            "evil/sgid",
        ),
        (
            tar_gz(&[setup, (b"evil\\..\\x.php", Regular, 0o644, b"x")]),
            "evil\\..\\x.php",
        ),
        (
            tar_gz(&[setup, (b"/evil/x.php", Regular, 0o644, b"x")]),
            "/evil/x.php",
        ),
        (
            tar_gz(&[setup, (b"evil/../x.php", Regular, 0o644, b"x")]),
            "evil/../x.php",
        ),
    ];
    for (i, (archive, entry)) in cases.into_iter().enumerate() {
        let r = s
            .client
            .post(s.url(&format!("/v1/admin/plugins/evil/versions?num=1.0.{i}")))
            .bearer_auth(token)
            .header("content-type", "application/gzip")
            .body(archive)
            .send()
            .unwrap();
        assert_eq!(r.status(), 400, "{entry}");
        let body: Value = r.json().unwrap();
        let message = body["error"]["message"]
            .as_str()
            .or_else(|| body["message"].as_str())
            .unwrap_or_else(|| panic!("{body}"));
        assert!(message.contains(entry), "{entry}: {message}");
    }
    // a bomb: 101 MiB of zeros, about 100 KiB on the wire
    let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut h = tar::Header::new_gnu();
    h.set_path("evil/zeros").unwrap();
    h.set_size(101 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, std::io::Read::take(std::io::repeat(0), 101 << 20))
        .unwrap();
    let bomb = b.into_inner().unwrap().finish().unwrap();
    let r = s
        .client
        .post(s.url("/v1/admin/plugins/evil/versions?num=2.0.0"))
        .bearer_auth(token)
        .header("content-type", "application/gzip")
        .body(bomb)
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("100 MiB"));

    let shown: Value = s
        .client
        .get(s.url("/v1/admin/plugins/evil"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(shown["versions"], json!([]), "{shown}");
}
