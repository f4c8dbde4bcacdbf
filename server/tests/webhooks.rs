//! Webhooks (DESIGN §12) through the real binary, on SQLite and on PostgreSQL, delivered to a
//! real receiver on a loopback port: `tests/webhooks/receiver.php` under `php -S`, which checks
//! every signature with PHP's own `hash_hmac` (an implementation independent of the server's),
//! answers the status the test sets and logs every request.
//!
//! Shown: the admin API's shapes; a delivery retried after the receiver's `500`, in event order;
//! `failed` at the end of the schedule under test mode's clock; no event for a change that
//! rolled back; a server killed with `kill -9` after the commit delivers after its restart; two
//! processes on one PostgreSQL deliver each event exactly once; private targets refused without
//! `--webhooks-allow-private`, at creation and at delivery.

mod common;

use common::{ADMIN, PgDb, Proc, create_pg_database, free_port, start_with};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The PHP receiver, its directory (secret, status to answer, log) and its URL.
struct Receiver {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    /// Starts `php -S` on a free loopback port. Without `php`, the test fails in CI and is
    /// skipped (with a message) elsewhere.
    fn start(dir: &Path) -> Option<Receiver> {
        if Command::new("php").arg("-v").output().is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "php is required in CI: the webhook receiver checks signatures with PHP"
            );
            eprintln!("skipping a webhook test: php is not installed");
            return None;
        }
        let dir = dir.join("receiver");
        std::fs::create_dir_all(&dir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/receiver.php");
        let port = free_port();
        let child = Command::new("php")
            .args(["-S", &format!("127.0.0.1:{port}")])
            .arg(&script)
            .env("RECEIVER_DIR", &dir)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("php -S");
        let r = Receiver {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}/hook"),
        };
        wait_until("the receiver listens", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Some(r)
    }

    fn answer(&self, status: u16) {
        std::fs::write(self.dir.join("status.txt"), status.to_string()).unwrap();
    }

    fn secret(&self, secret: &str) {
        std::fs::write(self.dir.join("secret.txt"), secret).unwrap();
    }

    /// Every request it got, in arrival order.
    fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The events it answered with a 2xx, in order.
    fn delivered(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|r| {
                r["answered"]
                    .as_u64()
                    .is_some_and(|s| (200..300).contains(&s))
            })
            .map(|r| r["body"].clone())
            .collect()
    }

    /// Every request was a POST of JSON with a valid, fresh signature.
    fn assert_all_signed(&self) {
        for r in self.log() {
            assert_eq!(r["method"], "POST", "{r}");
            assert_eq!(r["valid"], true, "a bad signature: {r}");
            assert_eq!(
                r["fresh"], true,
                "webhook-timestamp is not the real time: {r}"
            );
            assert_eq!(r["content_type"], "application/json", "{r}");
            assert_eq!(r["id"], r["body"]["id"], "webhook-id is the event id: {r}");
        }
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The backends: SQLite always, PostgreSQL when `TEST_DATABASE_URL` is set (required in CI).
fn backends(prefix: &str, dir: &Path) -> Vec<(String, Option<PgDb>)> {
    let mut out = vec![(format!("sqlite://{}/db.sqlite", dir.display()), None)];
    if let Some((base, url, name)) = create_pg_database(prefix) {
        out.push((url, Some(PgDb { base, name })));
    }
    out
}

fn serve(db_url: &str, data: &Path, extra: &[&str]) -> Proc {
    let mut args = vec!["--workers", "1"];
    args.extend_from_slice(extra);
    let mut p = start_with(db_url, data, &args);
    let client = reqwest::blocking::Client::new();
    wait_until("the server is ready", Duration::from_secs(30), || {
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!("server exited: {status}");
        }
        client
            .get(format!("{}/readyz", p.base))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });
    p
}

/// An admin call: (status, body or null).
fn call(p: &Proc, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client
        .request(m, format!("{}{path}", p.base))
        .bearer_auth(ADMIN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn post(p: &Proc, path: &str, body: Value) -> Value {
    let (s, v) = call(p, "POST", path, Some(body));
    assert!((200..300).contains(&s), "POST {path}: {s} {v}");
    v
}

fn get(p: &Proc, path: &str) -> Value {
    let (s, v) = call(p, "GET", path, None);
    assert_eq!(s, 200, "GET {path}: {v}");
    v
}

/// Creates a webhook to the receiver for `events` and hands the receiver its secret.
fn hook(p: &Proc, r: &Receiver, events: Value) -> Value {
    let (s, v) = call(
        p,
        "POST",
        "/v1/admin/webhooks",
        Some(json!({"url": r.url, "events": events, "description": "test receiver"})),
    );
    assert_eq!(s, 201, "{v}");
    let secret = v["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    r.secret(secret);
    v
}

fn deliveries(p: &Proc, hook_id: &str) -> Vec<Value> {
    get(
        p,
        &format!("/v1/admin/webhooks/{hook_id}/deliveries?limit=500"),
    )["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn subscription(p: &Proc, name: &str) -> Value {
    let s = post(p, "/v1/admin/subscribers", json!({"name": name}));
    post(
        p,
        "/v1/admin/subscriptions",
        json!({"subscriber_id": s["id"], "offer": "basic"}),
    )
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn events_are_signed_retried_after_a_500_and_delivered_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = Receiver::start(tmp.path()) else {
        return;
    };
    for (i, (db, _pg)) in backends("wh_order", tmp.path()).into_iter().enumerate() {
        let data = tmp.path().join(format!("data{i}"));
        let p = serve(&db, &data, &["--webhooks-allow-private"]);
        std::fs::remove_file(r.dir.join("log.jsonl")).ok();
        r.answer(500);
        let h = hook(
            &p,
            &r,
            json!([
                "subscription.created",
                "key.issued",
                "key.revoked",
                "subscription.suspended"
            ]),
        );
        let id = h["id"].as_str().unwrap();
        api_shapes(&p, id);
        let sub = subscription(&p, "Order Corp");
        let key = post(&p, "/v1/admin/keys", json!({"subscription_id": sub["id"]}));
        post(
            &p,
            &format!("/v1/admin/keys/{}/revoke", key["id"].as_str().unwrap()),
            json!({}),
        );
        post(
            &p,
            &format!(
                "/v1/admin/subscriptions/{}/suspend",
                sub["id"].as_str().unwrap()
            ),
            json!({}),
        );
        // the first event is attempted within 5 s of its commit, refused, and holds the others
        wait_until("the first attempt", Duration::from_secs(5), || {
            !r.log().is_empty()
        });
        std::thread::sleep(Duration::from_secs(1));
        let d = deliveries(&p, id);
        assert_eq!(d.len(), 4, "{d:?}");
        let first = d.last().unwrap();
        assert_eq!(
            (first["type"].as_str(), first["attempts"].as_i64()),
            (Some("subscription.created"), Some(1))
        );
        assert_eq!(first["last_status"], 500);
        assert_eq!(first["status"], "pending");
        assert!(
            d[..3].iter().all(|x| x["attempts"] == 0),
            "later events wait their turn: {d:?}"
        );
        r.answer(200);
        wait_until("every event delivered", Duration::from_secs(20), || {
            r.delivered().len() == 4
        });
        let got = r.delivered();
        assert_eq!(
            types(&got),
            [
                "subscription.created",
                "key.issued",
                "key.revoked",
                "subscription.suspended"
            ]
        );
        assert_eq!(r.log().len(), 5, "one retry, then one attempt each");
        r.assert_all_signed();
        // data is the object as the admin API shows it, never the plaintext key
        assert_eq!(got[0]["data"]["id"], sub["id"]);
        assert_eq!(got[1]["data"]["id"], key["id"]);
        assert_eq!(got[1]["data"]["key_prefix"], key["key_prefix"]);
        assert!(got[1]["data"].get("key").is_none());
        let plaintext = key["key"].as_str().unwrap();
        assert!(!r.log().iter().any(|l| l.to_string().contains(plaintext)));
        assert_eq!(got[2]["data"]["status"], "revoked");
        assert_eq!(got[3]["data"]["status"], "suspended");
        assert!(got.iter().all(|e| e["created_at"].is_string()));
        wait_until("all delivered", Duration::from_secs(5), || {
            deliveries(&p, id)
                .iter()
                .all(|x| x["status"] == "delivered" && x["next_attempt_at"].is_null())
        });
        let metrics = reqwest::blocking::get(format!("{}/metrics", p.base))
            .unwrap()
            .text()
            .unwrap();
        assert!(
            metrics.contains("glpi_network_webhook_deliveries_total{outcome=\"delivered\"} 4"),
            "{metrics}"
        );
        assert!(
            metrics.contains("glpi_network_webhook_outbox_depth 0"),
            "{metrics}"
        );
    }
}

/// POST answered the secret; GET, list, PUT, retry and DELETE follow §12.
fn api_shapes(p: &Proc, id: &str) {
    let one = get(p, &format!("/v1/admin/webhooks/{id}"));
    assert!(
        one.get("secret").is_none(),
        "the secret is shown once: {one}"
    );
    assert_eq!(one["description"], "test receiver");
    let list = get(p, "/v1/admin/webhooks");
    assert!(list["next_cursor"].is_null());
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == id)
    );
    let (s, v) = call(
        p,
        "POST",
        "/v1/admin/webhooks",
        Some(json!({"url": "http://127.0.0.1:9/", "events": ["nope"]})),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    let (s, _) = call(p, "GET", "/v1/admin/webhooks/none", None);
    assert_eq!(s, 404);
    let (s, _) = call(
        p,
        "POST",
        &format!("/v1/admin/webhooks/{id}/deliveries/none/retry"),
        None,
    );
    assert_eq!(s, 404);
    // a second webhook: replaced by PUT (its secret stays), then deleted
    let other = post(
        p,
        "/v1/admin/webhooks",
        json!({"url": "http://127.0.0.1:9/a", "events": ["*"]}),
    );
    let oid = other["id"].as_str().unwrap();
    let (s, v) = call(
        p,
        "PUT",
        &format!("/v1/admin/webhooks/{oid}"),
        Some(json!({"url": "http://127.0.0.1:9/b", "events": ["key.issued"]})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["url"].as_str(), &v["events"], &v["description"]),
        (
            Some("http://127.0.0.1:9/b"),
            &json!(["key.issued"]),
            &Value::Null
        )
    );
    assert!(v.get("secret").is_none());
    let (s, _) = call(p, "DELETE", &format!("/v1/admin/webhooks/{oid}"), None);
    assert_eq!(s, 204);
    let (s, _) = call(p, "GET", &format!("/v1/admin/webhooks/{oid}"), None);
    assert_eq!(s, 404);
    let audit = get(p, "/v1/admin/audit?limit=500");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"].as_str().is_some_and(|d| d.contains(oid)))
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["webhook.delete", "webhook.update", "webhook.create"]
    );
}

#[test]
fn a_delivery_fails_at_the_end_of_the_schedule_under_the_test_clock_and_can_be_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = Receiver::start(tmp.path()) else {
        return;
    };
    for (i, (db, _pg)) in backends("wh_sched", tmp.path()).into_iter().enumerate() {
        let data = tmp.path().join(format!("data{i}"));
        let p = serve(&db, &data, &["--webhooks-allow-private", "--test-mode"]);
        std::fs::remove_file(r.dir.join("log.jsonl")).ok();
        r.answer(500);
        let h = hook(&p, &r, json!(["*"]));
        let id = h["id"].as_str().unwrap();
        subscription(&p, "Failing Corp");
        let mut seen = 0;
        for attempt in 1..=8 {
            wait_until(
                &format!("attempt {attempt}"),
                Duration::from_secs(10),
                || deliveries(&p, id)[0]["attempts"] == attempt,
            );
            let d = deliveries(&p, id)[0].clone();
            assert_eq!(d["last_status"], 500);
            if attempt < 8 {
                assert_eq!(d["status"], "pending", "{d}");
                // the next attempt is due on the server's clock: move it past the delay
                post(&p, "/_test/clock", json!({"advance_seconds": 36_001}));
            } else {
                assert_eq!(d["status"], "failed", "{d}");
                assert!(d["next_attempt_at"].is_null());
            }
            seen += 1;
        }
        assert_eq!(seen, 8);
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(r.log().len(), 8, "no attempt after the schedule");
        r.assert_all_signed();
        // retried by hand: 202 with the delivery, due now; delivered once the receiver agrees
        r.answer(204);
        let did = deliveries(&p, id)[0]["id"].as_str().unwrap().to_owned();
        let (s, v) = call(
            &p,
            "POST",
            &format!("/v1/admin/webhooks/{id}/deliveries/{did}/retry"),
            None,
        );
        assert_eq!(s, 202, "{v}");
        assert_eq!(
            (v["status"].as_str(), v["id"].as_str()),
            (Some("pending"), Some(did.as_str()))
        );
        wait_until("the retried delivery", Duration::from_secs(10), || {
            deliveries(&p, id)[0]["status"] == "delivered"
        });
        assert_eq!(deliveries(&p, id)[0]["last_status"], 204);
    }
}

#[test]
fn a_change_that_rolled_back_sends_no_event() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = Receiver::start(tmp.path()) else {
        return;
    };
    for (i, (db, _pg)) in backends("wh_rollback", tmp.path()).into_iter().enumerate() {
        let data = tmp.path().join(format!("data{i}"));
        let p = serve(&db, &data, &["--webhooks-allow-private", "--test-mode"]);
        std::fs::remove_file(r.dir.join("log.jsonl")).ok();
        r.answer(200);
        hook(&p, &r, json!(["*"]));
        // one fixture file is one transaction: its last entry fails, so nothing of it stays
        let fx = |n: &str, reg_key: &str| {
            json!({
                "subscribers": [{"ref": "s", "name": n}],
                "subscriptions": [{"ref": "sub", "subscriber": "s", "offer": "basic"}],
                "keys": [{"key": format!("FIXTURE-{n}"), "subscription": "sub"}],
                "registrations": [{"key": reg_key, "instance_url": format!("https://{n}.example/glpi")}],
            })
        };
        let (s, v) = call(
            &p,
            "POST",
            "/_test/fixtures",
            Some(fx("rolledback", "NO-SUCH-KEY")),
        );
        assert!((400..500).contains(&s), "{s} {v}");
        // the same file without the failing entry commits, and its events arrive
        let (s, v) = call(
            &p,
            "POST",
            "/_test/fixtures",
            Some(fx("committed", "FIXTURE-committed")),
        );
        assert_eq!(s, 201, "{v}");
        wait_until("the committed events", Duration::from_secs(10), || {
            r.delivered().len() == 3
        });
        std::thread::sleep(Duration::from_millis(1500));
        let got = r.delivered();
        assert_eq!(
            types(&got),
            ["subscription.created", "key.issued", "registration.created"]
        );
        assert_eq!(r.log().len(), 3);
        assert!(!r.log().iter().any(|l| l.to_string().contains("rolledback")));
        r.assert_all_signed();
    }
}

#[test]
fn a_server_killed_after_the_commit_delivers_after_its_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = Receiver::start(tmp.path()) else {
        return;
    };
    for (i, (db, _pg)) in backends("wh_kill", tmp.path()).into_iter().enumerate() {
        let data = tmp.path().join(format!("data{i}"));
        let mut p = serve(&db, &data, &["--webhooks-allow-private"]);
        std::fs::remove_file(r.dir.join("log.jsonl")).ok();
        r.answer(503);
        hook(&p, &r, json!(["subscription.created"]));
        let sub = subscription(&p, "Killed Corp");
        wait_until("the first attempt", Duration::from_secs(5), || {
            !r.log().is_empty()
        });
        p.child.kill().unwrap(); // SIGKILL
        p.child.wait().unwrap();
        r.answer(200);
        std::thread::sleep(Duration::from_secs(6));
        assert!(
            r.delivered().is_empty(),
            "nothing delivers while the server is down"
        );
        let _p = serve(&db, &data, &["--webhooks-allow-private"]);
        wait_until(
            "the delivery after the restart",
            Duration::from_secs(45),
            || r.delivered().len() == 1,
        );
        assert_eq!(r.delivered()[0]["data"]["id"], sub["id"]);
        r.assert_all_signed();
    }
}

/// Prints how long events took from their commit to the receiver (`cargo test -- --nocapture`).
fn report_latency(log: &[Value], made: Duration, all: Duration) {
    let mut ms: Vec<f64> = log
        .iter()
        .map(|l| {
            let at = l["body"]["created_at"].as_str().unwrap();
            let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
            l["received"].as_f64().unwrap() * 1000.0 - at.timestamp_micros() as f64 / 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q) as usize];
    eprintln!(
        "{} events made in {made:?}, all delivered after {all:?}; commit to receiver: p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        ms.len(),
        pick(0.5),
        pick(0.9),
        pick(1.0)
    );
}

#[test]
fn two_processes_on_one_postgresql_deliver_each_event_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((base, url, name)) = create_pg_database("wh_two") else {
        return;
    };
    let _db = PgDb { base, name };
    let Some(r) = Receiver::start(tmp.path()) else {
        return;
    };
    r.answer(200);
    // one deployment: the processes share the data directory (its master key)
    let a = serve(
        &url,
        &tmp.path().join("data"),
        &["--webhooks-allow-private"],
    );
    let b = serve(
        &url,
        &tmp.path().join("data"),
        &["--webhooks-allow-private"],
    );
    hook(&a, &r, json!(["subscription.created"]));
    let n: usize = std::env::var("WEBHOOK_TEST_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..n {
        let p = if i % 2 == 0 { &a } else { &b };
        ids.push(subscription(p, &format!("Twice {i}"))["id"].clone());
    }
    let made = started.elapsed();
    wait_until("every event", Duration::from_secs(120), || {
        r.delivered().len() >= n
    });
    report_latency(&r.log(), made, started.elapsed());
    std::thread::sleep(Duration::from_secs(3));
    let got = r.delivered();
    assert_eq!(r.log().len(), n, "each event reaches the receiver once");
    let order: Vec<Value> = got.iter().map(|e| e["data"]["id"].clone()).collect();
    assert_eq!(order, ids, "in event order");
    r.assert_all_signed();
}

#[test]
fn private_targets_are_refused_without_the_flag_at_creation_and_at_delivery() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = Receiver::start(tmp.path()) else {
        return;
    };
    let db = format!("sqlite://{}/db.sqlite", tmp.path().display());
    let data = tmp.path().join("data");
    // a webhook made while private targets were allowed ...
    let p = serve(&db, &data, &["--webhooks-allow-private"]);
    let h = hook(&p, &r, json!(["*"]));
    drop(p);
    // ... then refused at delivery once they are not: a failed attempt with no status
    let p = serve(&db, &data, &[]);
    for target in [
        "http://127.0.0.1:8080/h",
        "http://10.0.0.1/h",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/h",
        "http://localhost:8080/h",
        "http://[::ffff:127.0.0.1]/h",
        "http://100.64.0.1/h",
        "http://no-such-host.invalid/h",
    ] {
        let (s, v) = call(
            &p,
            "POST",
            "/v1/admin/webhooks",
            Some(json!({"url": target, "events": ["*"]})),
        );
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{target}: {v}"
        );
    }
    let id = h["id"].as_str().unwrap();
    let (s, v) = call(
        &p,
        "PUT",
        &format!("/v1/admin/webhooks/{id}"),
        Some(json!({"url": "http://10.0.0.1/", "events": ["*"]})),
    );
    assert_eq!(s, 400, "{v}");
    subscription(&p, "Refused Corp");
    wait_until("the refused attempt", Duration::from_secs(10), || {
        deliveries(&p, id)
            .first()
            .is_some_and(|d| d["attempts"] == 1)
    });
    let d = &deliveries(&p, id)[0];
    assert_eq!(
        (d["status"].as_str(), &d["last_status"]),
        (Some("pending"), &Value::Null),
        "{d}"
    );
    assert!(r.log().is_empty(), "nothing reached the private address");
}

#[test]
fn the_cli_creates_lists_retries_and_deletes_webhooks() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_glpi-network-server"))
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .env_remove("DATABASE_URL")
            .env_remove("GLPI_NETWORK_MASTER_KEY")
            .args(args)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.success(),
            v,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // listing only reads: on a deployment that does not exist it fails and creates nothing
    let (ok, _, err) = cli(&["webhooks", "list"]);
    assert!(!ok && err.contains("does not exist"), "{err}");
    assert!(!tmp.path().join("data").exists());
    // writing commands need a database: migrate makes it
    let (ok, _, err) = cli(&["migrate"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["webhooks", "create", "--url", "http://127.0.0.1:9/h"]);
    assert!(!ok, "a loopback target needs --webhooks-allow-private");
    assert!(err.contains("127.0.0.1"), "{err}");
    let (ok, h, err) = cli(&[
        "--webhooks-allow-private",
        "webhooks",
        "create",
        "--url",
        "http://127.0.0.1:9/h",
        "--event",
        "key.issued",
        "--event",
        "key.revoked",
    ]);
    assert!(ok, "{err}");
    assert!(h["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(h["events"], json!(["key.issued", "key.revoked"]));
    let id = h["id"].as_str().unwrap();
    let (ok, list, _) = cli(&["webhooks", "list"]);
    assert!(ok);
    assert_eq!(list["items"][0]["id"], id);
    assert!(list["items"][0].get("secret").is_none());
    let (ok, d, _) = cli(&["webhooks", "deliveries", id]);
    assert!(ok);
    assert_eq!(d["items"], json!([]));
    let (ok, _, _) = cli(&["webhooks", "retry", id, "no-such-delivery"]);
    assert!(!ok);
    let (ok, _, err) = cli(&["webhooks", "delete", id]);
    assert!(ok, "{err}");
    let (_, list, _) = cli(&["webhooks", "list"]);
    assert_eq!(list["items"], json!([]));
}

/// Public (no admin token) `POST` answering 2xx.
fn public_post(p: &Proc, path: &str, body: Value) -> Value {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}{path}", p.base))
        .json(&body)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let v: Value = resp.json().unwrap_or(Value::Null);
    assert!((200..300).contains(&status), "POST {path}: {status} {v}");
    v
}

#[test]
fn every_kind_of_change_sends_its_event_and_no_body_holds_a_plaintext_key() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(r) = Receiver::start(tmp.path()) else {
        return;
    };
    r.answer(200);
    let db = format!("sqlite://{}/db.sqlite", tmp.path().display());
    let p = serve(
        &db,
        &tmp.path().join("data"),
        &[
            "--webhooks-allow-private",
            "--failed-lookups-per-minute",
            "3",
        ],
    );
    hook(&p, &r, json!(["*"]));
    let sub = subscription(&p, "Every Corp");
    let subscriber = sub["subscriber_id"].as_str().unwrap();
    let key = post(&p, "/v1/admin/keys", json!({"subscription_id": sub["id"]}));
    let plain = key["key"].as_str().unwrap();
    let reg = public_post(
        &p,
        "/v1/registrations",
        json!({"registration_key": plain, "instance_url": "https://every.example/glpi"}),
    );
    let reg_id = reg["registration"]["id"].as_str().unwrap();
    let (s, _) = call(
        &p,
        "DELETE",
        &format!("/v1/admin/registrations/{reg_id}"),
        None,
    );
    assert_eq!(s, 204);
    let kid = key["id"].as_str().unwrap();
    let new_key = post(&p, &format!("/v1/admin/keys/{kid}/regenerate"), json!({}));
    let sid = sub["id"].as_str().unwrap();
    post(
        &p,
        &format!("/v1/admin/subscriptions/{sid}/suspend"),
        json!({}),
    );
    post(
        &p,
        &format!("/v1/admin/subscriptions/{sid}/resume"),
        json!({}),
    );
    post(
        &p,
        &format!("/v1/admin/subscriptions/{sid}/cancel"),
        json!({}),
    );
    post(
        &p,
        "/v1/admin/plugins",
        json!({"key": "payroll", "name": "Payroll", "commercial": true, "license_term_days": 30}),
    );
    let lic = post(
        &p,
        "/v1/admin/licenses",
        json!({"subscriber_id": subscriber, "plugin": "payroll"}),
    );
    public_post(
        &p,
        "/v1/licenses/activations",
        json!({"license_key": lic["key"], "instance_url": "https://every.example/glpi"}),
    );
    let ek = post(
        &p,
        "/v1/admin/enrollment-keys",
        json!({"subscriber_id": subscriber, "entity": "Root", "max_uses": 0}),
    );
    public_post(
        &p,
        "/v1/enrollments",
        json!({"enrollment_key": ek["key"], "agent_id": "agent-1"}),
    );
    let inv = post(
        &p,
        "/v1/admin/invitations",
        json!({"subscriber_id": subscriber, "role": "viewer"}),
    );
    public_post(
        &p,
        "/v1/invitations/redemptions",
        json!({"invitation_key": inv["key"], "email": "new@every.example", "name": "New"}),
    );
    post(&p, "/v1/admin/signing-keys/rotate", json!({}));
    // failed look-ups past the allowance: one event for the address and its window
    let client = reqwest::blocking::Client::new();
    for _ in 0..8 {
        client
            .post(format!("{}/v1/validations", p.base))
            .json(&json!({"registration_key": "NO-SUCH-KEY", "instance_url": "https://x.example/"}))
            .send()
            .unwrap();
    }
    let expected = [
        "subscription.created",
        "key.issued",
        "registration.created",
        "registration.released",
        "key.issued",
        "key.revoked",
        "key.regenerated",
        "subscription.suspended",
        "subscription.resumed",
        "subscription.cancelled",
        "license.issued",
        "license.activated",
        "enrollment.created",
        "invitation.redeemed",
        "signing_key.rotated",
        "lookup.rate_limited",
    ];
    wait_until("every event", Duration::from_secs(30), || {
        r.delivered().len() >= expected.len()
    });
    std::thread::sleep(Duration::from_millis(1500));
    let got = r.delivered();
    assert_eq!(types(&got), expected);
    r.assert_all_signed();
    let log = serde_json::to_string(&r.log()).unwrap();
    for secret in [
        plain,
        new_key["key"].as_str().unwrap(),
        lic["key"].as_str().unwrap(),
    ] {
        assert!(!log.contains(secret), "a plaintext key in a webhook body");
    }
    for secret in [ek["key"].as_str().unwrap(), inv["key"].as_str().unwrap()] {
        assert!(!log.contains(secret), "a plaintext key in a webhook body");
    }
    assert_eq!(got[6]["data"]["id"], new_key["id"]);
    assert_eq!(got[15]["data"]["client_addr"], "127.0.0.1");
}
