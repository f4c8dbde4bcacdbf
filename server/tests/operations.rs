//! Operating a deployment (DESIGN §14) through the real binary: read-only commands that never
//! write, `keys show` by id or prefix, filters that filter or refuse (API and CLI), and backup
//! and restore while a server keeps serving writes (SQLite; PostgreSQL when
//! `TEST_DATABASE_URL` is set).

mod common;

use common::ADMIN;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The server binary on `dir`, with no database or token from the environment.
fn cli(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_glpi-network-server"));
    cmd.arg("--data-dir")
        .arg(dir)
        .env_remove("DATABASE_URL")
        .env_remove("GLPI_NETWORK_ADMIN_TOKEN")
        .env_remove("GLPI_NETWORK_MASTER_KEY")
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn ok_json(cmd: &mut Command) -> Value {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("glpi-network.db").display())
}

/// Waits until the server answers `/readyz`.
fn wait_ready(http: &reqwest::blocking::Client, p: &mut common::Proc) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{}/readyz", p.base)).send()
            && r.status() == 200
        {
            return;
        }
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!("server exited early: {status}");
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops a server the way an operator does (SIGTERM), so it closes its database cleanly.
fn stop(mut p: common::Proc) {
    let _ = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while p.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn admin(
    http: &reqwest::blocking::Client,
    p: &common::Proc,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", p.base);
    let req = match method {
        "POST" => http.post(url).json(&body.unwrap_or(json!({}))),
        _ => http.get(url),
    };
    let r = req.bearer_auth(ADMIN).send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Every file of `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// The read-only commands (DESIGN §14), with the ids they show.
fn read_only_commands(key: &str, subscriber: &str, subscription: &str) -> Vec<Vec<String>> {
    let cmds: &[&[&str]] = &[
        &["keys", "list"],
        &["keys", "list", "--status", "active"],
        &["keys", "show", key],
        &["signing-keys", "list"],
        &["audit", "list"],
        &["audit", "verify"],
        &["master-key", "status"],
        &["subscribers", "list"],
        &["subscribers", "show", subscriber],
        &["subscriptions", "list"],
        &["subscriptions", "show", subscription],
        &["registrations", "list"],
        &["offers", "list"],
        &["plugins", "list"],
        &["licenses", "list"],
        &["enrollment-keys", "list"],
        &["invitations", "list"],
    ];
    cmds.iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[test]
fn read_only_commands_on_a_missing_data_directory_fail_naming_it_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("mistyped");
    for args in read_only_commands("GLPI-ABCD", "s1", "s2") {
        let out = run(cli(&missing).args(&args));
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        assert!(err.contains("mistyped"), "{args:?}: {err}");
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
    // a data directory that exists but holds no database: still nothing created
    std::fs::create_dir(&missing).unwrap();
    for args in read_only_commands("GLPI-ABCD", "s1", "s2") {
        let out = run(cli(&missing).args(&args));
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr(&out).contains("glpi-network.db"), "{args:?}");
        assert_eq!(std::fs::read_dir(&missing).unwrap().count(), 0, "{args:?}");
    }
    // writes need the database too: only serve, migrate and restore create one
    let out = run(cli(&missing).args(["keys", "issue", "--subscriber", "A", "--offer", "basic"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("migrate"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&missing).unwrap().count(), 0);
}

#[test]
fn read_only_commands_on_a_real_deployment_change_no_byte_and_no_published_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(run(cli(d).arg("migrate")).status.success());
    let key = ok_json(cli(d).args(["keys", "issue", "--subscriber", "ACME", "--offer", "basic"]));
    let http = reqwest::blocking::Client::new();
    let mut server = common::start(&sqlite_url(d), d);
    wait_ready(&http, &mut server);
    let body = json!({"registration_key": key["key"], "instance_url": "https://glpi.acme.test"});
    let r = http
        .post(format!("{}/v1/registrations", server.base))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let jwks: Value = http
        .get(format!("{}/.well-known/jwks.json", server.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    stop(server);
    let before = snapshot(d);
    assert!(before.contains_key("glpi-network.db") && before.contains_key("master.key"));
    let sub = ok_json(cli(d).args(["subscriptions", "list"]));
    let sub = &sub["items"][0];
    let cmds = read_only_commands(
        key["id"].as_str().unwrap(),
        sub["subscriber_id"].as_str().unwrap(),
        sub["id"].as_str().unwrap(),
    );
    for args in cmds {
        let out = run(cli(d).args(&args));
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(snapshot(d) == before, "{args:?} changed the data directory");
    }
    let mut again = common::start(&sqlite_url(d), d);
    wait_ready(&http, &mut again);
    let after: Value = http
        .get(format!("{}/.well-known/jwks.json", again.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(jwks, after, "the JWKS is the same");
}

/// Two subscribers with two keys each (one of A's revoked); returns the admin ids.
struct Fixture {
    subscriber_a: String,
    subscription_a: String,
    keys_a: Vec<Value>,
    keys_b: Vec<Value>,
}

fn fixture(http: &reqwest::blocking::Client, p: &common::Proc) -> Fixture {
    let mut made = Vec::new();
    for name in ["ACME", "Globex"] {
        let (_, s) = admin(
            http,
            p,
            "POST",
            "/v1/admin/subscribers",
            Some(json!({"name": name})),
        );
        let body = json!({"subscriber_id": s["id"], "offer": "basic"});
        let (_, sub) = admin(http, p, "POST", "/v1/admin/subscriptions", Some(body));
        let keys: Vec<Value> = (0..2)
            .map(|_| {
                let body = json!({"subscription_id": sub["id"]});
                admin(http, p, "POST", "/v1/admin/keys", Some(body)).1
            })
            .collect();
        made.push((s["id"].as_str().unwrap().to_owned(), sub, keys));
    }
    let (_, b_sub, keys_b) = made.pop().unwrap();
    let (subscriber_a, sub_a, keys_a) = made.pop().unwrap();
    let _ = b_sub;
    let path = format!(
        "/v1/admin/keys/{}/revoke",
        keys_a[0]["id"].as_str().unwrap()
    );
    assert_eq!(admin(http, p, "POST", &path, None).0, 200);
    Fixture {
        subscriber_a,
        subscription_a: sub_a["id"].as_str().unwrap().to_owned(),
        keys_a,
        keys_b,
    }
}

fn ids(page: &Value) -> HashSet<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}

fn id_set(keys: &[&Value]) -> HashSet<String> {
    keys.iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn admin_key_lists_filter_exactly_and_refuse_unknown_parameters_and_invalid_values() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::blocking::Client::new();
    let mut p = common::start(&sqlite_url(dir.path()), dir.path());
    wait_ready(&http, &mut p);
    let f = fixture(&http, &p);
    let get = |path: &str| admin(&http, &p, "GET", path, None);
    let a: Vec<&Value> = f.keys_a.iter().collect();
    let (s, page) = get(&format!("/v1/admin/keys?subscriber_id={}", f.subscriber_a));
    assert_eq!((s, ids(&page)), (200, id_set(&a)));
    let (_, page) = get(&format!(
        "/v1/admin/keys?subscription_id={}",
        f.subscription_a
    ));
    assert_eq!(ids(&page), id_set(&a));
    let (_, page) = get("/v1/admin/keys?status=revoked");
    assert_eq!(ids(&page), id_set(&[&f.keys_a[0]]));
    let (_, page) = get(&format!(
        "/v1/admin/keys?status=active&subscriber_id={}",
        f.subscriber_a
    ));
    assert_eq!(ids(&page), id_set(&[&f.keys_a[1]]));
    let prefix = f.keys_b[1]["key_prefix"].as_str().unwrap().to_lowercase();
    let (_, page) = get(&format!("/v1/admin/keys?prefix={prefix}"));
    assert!(ids(&page).contains(f.keys_b[1]["id"].as_str().unwrap()));
    assert!(page["items"].as_array().unwrap().iter().all(|k| {
        k["key_prefix"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .starts_with(&prefix)
    }));
    // unknown parameters, on every admin list: 400 naming them, never the unfiltered list
    for list in [
        "keys",
        "subscribers",
        "subscriptions",
        "registrations",
        "offers",
        "signing-keys",
        "audit",
        "plugins",
        "licenses",
        "enrollment-keys",
        "invitations",
    ] {
        let (s, body) = get(&format!("/v1/admin/{list}?subscribr_id=x"));
        assert_eq!(s, 400, "{list}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request", "{list}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains("subscribr_id"), "{list}: {msg}");
    }
    let (s, body) = get("/v1/admin/subscribers?subscriber_id=x");
    assert_eq!(
        s, 400,
        "a filter another list takes is unknown here: {body}"
    );
    for (query, names) in [
        ("status=nope", "status"),
        ("subscriber_id=nobody", "subscriber_id"),
        ("subscription_id=nothing", "subscription_id"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("prefix=", "prefix"),
    ] {
        let (s, body) = get(&format!("/v1/admin/keys?{query}"));
        assert_eq!(s, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(names), "{query}: {msg}");
    }
    let (s, body) = get("/v1/admin/registrations?key_id=nothing");
    assert_eq!(s, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("key_id")
    );
    let (s, body) = get("/v1/admin/registrations?include_released=maybe");
    assert_eq!(s, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("include_released")
    );
    // the document names each list's parameters
    let doc: Value = http
        .get(format!("{}/openapi.json", p.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let names = |path: &str| -> HashSet<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has no parameters"))
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let keys: HashSet<String> = [
        "limit",
        "cursor",
        "subscription_id",
        "subscriber_id",
        "status",
        "prefix",
    ]
    .map(String::from)
    .into();
    assert_eq!(names("/v1/admin/keys"), keys);
    assert!(names("/v1/admin/registrations").contains("include_released"));
    let (s, body) = get("/v1/admin/subscriptions?status=paused");
    assert_eq!(s, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("status")
    );
}

#[test]
fn cli_key_lists_filter_and_keys_show_finds_a_key_by_id_or_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let http = reqwest::blocking::Client::new();
    let mut p = common::start(&sqlite_url(d), d);
    wait_ready(&http, &mut p);
    let f = fixture(&http, &p);
    let url = "https://glpi.globex.test";
    // bind one of Globex's keys, through a key of its own (regenerate gives its plaintext)
    let path = format!(
        "/v1/admin/keys/{}/regenerate",
        f.keys_b[0]["id"].as_str().unwrap()
    );
    let (s, bound) = admin(&http, &p, "POST", &path, None);
    assert_eq!(s, 201);
    let body = json!({"registration_key": bound["key"], "instance_url": url});
    let r = http
        .post(format!("{}/v1/registrations", p.base))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);

    let list = |args: &[&str]| ids(&ok_json(cli(d).args(["keys", "list"]).args(args)));
    let a: Vec<&Value> = f.keys_a.iter().collect();
    assert_eq!(list(&["--subscriber", &f.subscriber_a]), id_set(&a));
    assert_eq!(list(&["--subscription", &f.subscription_a]), id_set(&a));
    assert!(list(&["--status", "revoked"]).contains(f.keys_a[0]["id"].as_str().unwrap()));
    assert!(!list(&["--status", "active"]).contains(f.keys_a[0]["id"].as_str().unwrap()));
    let out = run(cli(d).args(["keys", "list", "--subscriber-id", "x"]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown flag is a usage error"
    );
    let out = run(cli(d).args(["keys", "list", "--status", "nope"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--status"));
    let out = run(cli(d).args(["keys", "list", "--subscriber", "nobody"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("--subscriber") && err.contains("nobody"),
        "{err}"
    );
    let out = run(cli(d).args(["licenses", "list", "--status", "lost"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--status"), "{}", stderr(&out));

    // registrations and audit events of one key
    let id = bound["id"].as_str().unwrap();
    let regs = ok_json(cli(d).args(["registrations", "list", "--key", id]));
    assert_eq!(regs["items"].as_array().unwrap().len(), 1, "{regs}");
    assert_eq!(regs["items"][0]["instance_url"], url);
    let out = run(cli(d).args(["registrations", "list", "--key", "nothing"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nothing"), "{}", stderr(&out));
    let events = ok_json(cli(d).args(["audit", "list", "--key", id]));
    let events = events["items"].as_array().unwrap();
    assert!(!events.is_empty() && events.iter().all(|e| e["key_id"] == id));
    // keys show: by id, by prefix (any case), ambiguous prefix
    let shown = ok_json(cli(d).args(["keys", "show", id]));
    assert_eq!(shown["key"]["id"], id);
    assert_eq!(shown["registration"]["instance_url"], url);
    assert!(shown["registration"]["bound_at"].is_string());
    assert!(shown["registration"]["last_seen_at"].is_string());
    assert_eq!(shown["subscriber"]["name"], "Globex");
    assert_eq!(shown["subscription"]["id"], bound["subscription_id"]);
    let prefix = bound["key_prefix"].as_str().unwrap().to_lowercase();
    let by_prefix = ok_json(cli(d).args(["keys", "show", &prefix]));
    assert_eq!(by_prefix["key"]["id"], id);
    let unbound = ok_json(cli(d).args(["keys", "show", f.keys_a[1]["id"].as_str().unwrap()]));
    assert!(unbound["registration"].is_null());
    assert_eq!(unbound["subscriber"]["name"], "ACME");
    let out = run(cli(d).args(["keys", "show", "glpi-"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    for k in f.keys_a.iter().chain(&f.keys_b) {
        assert!(
            stderr(&out).contains(k["id"].as_str().unwrap()),
            "{}",
            stderr(&out)
        );
    }
    let out = run(cli(d).args(["keys", "show", "GLPI-NONE-OF-THESE"]));
    assert_eq!(out.status.code(), Some(1));
}

/// Keys issued in bulk before the server starts: id -> plaintext.
fn bulk_keys(d: &Path, n: usize) -> HashMap<String, String> {
    let out = run(cli(d).args([
        "keys",
        "issue",
        "--subscriber",
        "Bulk",
        "--offer",
        "basic",
        "--count",
        &n.to_string(),
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_owned(), f[1].to_owned())
        })
        .collect()
}

/// Registers keys one by one through the server until `stop` is set (or the keys run out);
/// returns (key id, URL, done at) of each.
fn register_until(
    base: String,
    keys: Vec<(String, String)>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(String, String, Instant)> {
    let http = reqwest::blocking::Client::new();
    let mut done = Vec::new();
    for (i, (id, key)) in keys.into_iter().enumerate() {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let url = format!("https://glpi{i}.example.com");
        let body = json!({"registration_key": key, "instance_url": url});
        let r = http
            .post(format!("{base}/v1/registrations"))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
        done.push((id, url, Instant::now()));
    }
    done
}

fn all_registrations(http: &reqwest::blocking::Client, p: &common::Proc) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/v1/admin/registrations?limit=500{cursor}");
        let (s, page) = admin(http, p, "GET", &path, None);
        assert_eq!(s, 200, "{page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return items,
        }
    }
}

#[test]
fn a_backup_taken_while_registrations_are_written_restores_and_validates() {
    let tmp = tempfile::tempdir().unwrap();
    let (d, backup, restored) = (
        tmp.path().join("data"),
        tmp.path().join("bk"),
        tmp.path().join("new"),
    );
    std::fs::create_dir(&d).unwrap();
    assert!(run(cli(&d).arg("migrate")).status.success());
    let keys = bulk_keys(&d, 3000);
    let http = reqwest::blocking::Client::new();
    let mut p = common::start(&sqlite_url(&d), &d);
    wait_ready(&http, &mut p);
    let base = p.base.clone();
    let mut pairs: Vec<(String, String)> = keys.clone().into_iter().collect();
    pairs.sort();
    let enough = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let enough = enough.clone();
        std::thread::spawn(move || register_until(base, pairs, enough))
    };
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let out = ok_json(cli(&d).args(["backup", "--to"]).arg(&backup));
    let ended = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    enough.store(true, std::sync::atomic::Ordering::SeqCst);
    let done = writer.join().unwrap();
    eprintln!(
        "{} registrations, {} before the backup started",
        done.len(),
        done.iter().filter(|(_, _, at)| *at < started).count()
    );
    assert!(
        done.iter().any(|(_, _, at)| *at > ended),
        "the writer kept writing through the backup ({} registrations)",
        done.len()
    );
    assert!(out["files"].to_string().contains("master.key"), "{out}");
    check_modes(&backup);
    stop(p);

    let out = ok_json(cli(&restored).args(["restore", "--from"]).arg(&backup));
    assert_eq!(out["data_dir"], json!(restored));
    let again = run(cli(&restored).args(["restore", "--from"]).arg(&backup));
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing database is not overwritten"
    );
    assert!(stderr(&again).contains("--force"));
    let mut p2 = common::start(&sqlite_url(&restored), &restored);
    wait_ready(&http, &mut p2);
    let included = all_registrations(&http, &p2);
    let before: Vec<_> = done.iter().filter(|(_, _, at)| *at < started).collect();
    assert!(
        !before.is_empty() && included.len() < done.len(),
        "{} of {}",
        included.len(),
        keys.len()
    );
    let in_backup: HashSet<&str> = included
        .iter()
        .map(|r| r["key_id"].as_str().unwrap())
        .collect();
    for (id, _, _) in &before {
        assert!(
            in_backup.contains(id.as_str()),
            "a registration made before the backup is missing"
        );
    }
    for r in &included {
        let key = &keys[r["key_id"].as_str().unwrap()];
        let body = json!({"registration_key": key, "instance_url": r["instance_url"]});
        let v: Value = http
            .post(format!("{}/v1/validations", p2.base))
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(v["valid"], true, "{v}");
    }
    stop(p2);
    // --force replaces the database and keeps the old one beside it
    let forced = run(cli(&restored)
        .args(["restore", "--force", "--from"])
        .arg(&backup));
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert!(restored.join("glpi-network.db.before-restore").is_file());
    // a different master key is not replaced without --force, and kept with it
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("master.key"), "ab".repeat(32)).unwrap();
    let refused = run(cli(&other).args(["restore", "--from"]).arg(&backup));
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("master key"),
        "{}",
        stderr(&refused)
    );
    assert!(!other.join("glpi-network.db").exists(), "nothing restored");
    let forced = run(cli(&other)
        .args(["restore", "--force", "--from"])
        .arg(&backup));
    assert!(forced.status.success(), "{}", stderr(&forced));
    let kept = std::fs::read_to_string(other.join("master.key.before-restore")).unwrap();
    assert_eq!(kept, "ab".repeat(32));
}

fn check_modes(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700);
    for e in std::fs::read_dir(dir).unwrap() {
        let p: PathBuf = e.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}

#[test]
fn on_postgresql_backup_and_restore_carry_the_master_key_and_print_the_dump_commands() {
    let Some((base, url, name)) = common::create_pg_database("ops_bk") else {
        return;
    };
    let _drop = common::PgDb {
        base: base.clone(),
        name,
    };
    let Some((_, url2, name2)) = common::create_pg_database("ops_rs") else {
        return;
    };
    let _drop2 = common::PgDb { base, name: name2 };
    let tmp = tempfile::tempdir().unwrap();
    let (d, bk, d2) = (
        tmp.path().join("a"),
        tmp.path().join("bk"),
        tmp.path().join("b"),
    );
    std::fs::create_dir(&d).unwrap();
    let http = reqwest::blocking::Client::new();
    let mut p = common::start(&url, &d);
    wait_ready(&http, &mut p);
    let f = fixture(&http, &p);
    let path = format!(
        "/v1/admin/keys/{}/regenerate",
        f.keys_a[1]["id"].as_str().unwrap()
    );
    let key = admin(&http, &p, "POST", &path, None).1;
    let body = json!({"registration_key": key["key"], "instance_url": "https://pg.example.com"});
    let r = http
        .post(format!("{}/v1/registrations", p.base))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);

    // read-only commands on PostgreSQL: a database that does not exist is named, a real one read
    let mut missing = url::Url::parse(&url).unwrap();
    missing.set_path("gn_ops_no_such_database");
    let nothing = tmp.path().join("nothing");
    for args in read_only_commands("GLPI-ABCD", "s1", "s2") {
        let out = run(cli(&nothing)
            .args(["--database-url", missing.as_str()])
            .args(&args));
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("gn_ops_no_such_database"), "{args:?}: {err}");
    }
    assert!(!nothing.exists());
    let listed = ok_json(cli(&d).args([
        "--database-url",
        &url,
        "keys",
        "list",
        "--status",
        "revoked",
    ]));
    assert_eq!(ids(&listed), id_set(&[&f.keys_a[0], &f.keys_a[1]]));
    let out = ok_json(
        cli(&d)
            .args(["--database-url", &url, "backup", "--to"])
            .arg(&bk),
    );
    let dump = out["pg_dump"].as_str().unwrap();
    assert!(dump.starts_with("pg_dump "), "{dump}");
    assert!(bk.join("master.key").is_file());
    check_modes(&bk);
    if Command::new("pg_dump").arg("--version").output().is_err() {
        eprintln!("skipping the dump and restore round trip: pg_dump is not installed");
        return;
    }
    let status = Command::new("sh").args(["-c", dump]).status().unwrap();
    assert!(status.success(), "{dump}");
    stop(p);

    let out = ok_json(
        cli(&d2)
            .args(["--database-url", &url2, "restore", "--from"])
            .arg(&bk),
    );
    let restore = out["pg_restore"].as_str().unwrap();
    assert!(restore.starts_with("pg_restore "), "{restore}");
    assert_eq!(
        std::fs::read(d2.join("master.key")).unwrap(),
        std::fs::read(d.join("master.key")).unwrap()
    );
    let status = Command::new("sh").args(["-c", restore]).status().unwrap();
    assert!(status.success(), "{restore}");
    let again = run(cli(&d2)
        .args(["--database-url", &url2, "restore", "--from"])
        .arg(&bk));
    assert_eq!(
        again.status.code(),
        Some(1),
        "a deployment is not replaced without --force"
    );
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let mut p2 = common::start(&url2, &d2);
    wait_ready(&http, &mut p2);
    let v: Value = http
        .post(format!("{}/v1/validations", p2.base))
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["valid"], true, "{v}");
}

#[test]
fn subcommand_help_shows_only_the_flags_the_subcommand_uses() {
    let help = |args: &[&str]| {
        let out = run(cli(Path::new("unused")).args(args).arg("--help"));
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let serve_only = [
        "--bind",
        "--token-ttl",
        "--trusted-proxy",
        "--workers",
        "--key-cache-ttl",
    ];
    for args in [
        &["keys", "list"][..],
        &["backup"],
        &["audit", "verify"],
        &["master-key", "status"],
    ] {
        let text = help(args);
        for flag in serve_only {
            assert!(!text.contains(flag), "{args:?} --help shows {flag}");
        }
        assert!(
            text.contains("--data-dir") && text.contains("--database-url"),
            "{args:?}"
        );
    }
    let serve = help(&["serve"]);
    for flag in serve_only {
        assert!(serve.contains(flag), "serve --help lacks {flag}");
    }
    // flags given after `serve` are taken
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let child = cli(dir.path())
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "1",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut p = common::Proc {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    wait_ready(&reqwest::blocking::Client::new(), &mut p);
}

#[test]
fn completions_and_man_pages_come_from_the_command_line_definitions() {
    let none = Path::new("unused");
    for shell in ["bash", "zsh", "fish"] {
        let out = run(cli(none).args(["completions", shell]));
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("glpi-network-server") && text.contains("signing-keys"),
            "{shell}"
        );
    }
    let out = run(cli(none).arg("man"));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH glpi-network-server 1"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    assert!(
        run(cli(none).args(["man", "--dir"]).arg(dir.path()))
            .status
            .success()
    );
    assert!(dir.path().join("glpi-network-server-keys-show.1").is_file());
    assert!(!none.exists(), "no data directory made");
}

#[test]
fn long_work_on_a_pipe_prints_no_progress() {
    let dir = tempfile::tempdir().unwrap();
    let d = &dir.path().join("data");
    assert!(run(cli(d).arg("migrate")).status.success());
    let out = run(cli(d).args([
        "keys",
        "issue",
        "--subscriber",
        "P",
        "--offer",
        "basic",
        "--count",
        "2500",
    ]));
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let out = run(cli(d).args(["backup", "--to"]).arg(d.join("bk")));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(cli(&d.join("restored"))
        .args(["restore", "--from"])
        .arg(d.join("bk")));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains('['), "{}", stderr(&out));
}

/// On a terminal (a pseudo-terminal made by `script`), long work draws a progress bar.
#[test]
fn long_work_on_a_terminal_shows_progress() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping: `script` (util-linux) is not installed to make a terminal");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    assert!(run(cli(&d).arg("migrate")).status.success());
    let line = format!(
        "{} --data-dir {} keys issue --subscriber T --offer basic --count 20000 >/dev/null",
        env!("CARGO_BIN_EXE_glpi-network-server"),
        d.display()
    );
    let out = run(Command::new("script").args(["-qec", &line, "/dev/null"]));
    assert!(out.status.success());
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(seen.contains("/20000 keys"), "{seen}");
}
