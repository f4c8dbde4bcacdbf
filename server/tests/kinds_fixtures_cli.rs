//! Licenses, enrollment keys and invitations (DESIGN §11) from test-mode fixtures with fixed
//! plaintext strings, and from the server's `licenses`, `enrollment-keys` and `invitations`
//! subcommands.

use glpi_network_server::testmode::server::TestServer;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use std::process::Command;

const UID: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";

fn post(c: &Client, url: String, body: Value) -> (u16, Value) {
    let r = c.post(url).json(&body).send().unwrap();
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

#[test]
fn fixtures_create_each_kind_with_fixed_keys_and_reset_removes_them() {
    let s = TestServer::builder().start().unwrap();
    let c = Client::new();
    let fx = json!({
        "subscribers": [{"ref": "acme", "name": "ACME Corp"}],
        "plugins": [{"key": "payroll", "name": "Payroll", "commercial": true, "price": "99 EUR/year",
                     "versions": [{"num": "1.0.0"}]}],
        "licenses": [{"ref": "pay", "key": "LIC-FIXTURE-0001", "subscriber": "acme", "plugin": "payroll"}],
        "enrollment_keys": [{"key": "ENR-FIXTURE-0001", "subscriber": "acme", "entity": "Root", "max_uses": 1}],
        "invitations": [{"key": "INV-FIXTURE-0001", "subscriber": "acme", "role": "manager"}]
    });
    // a generated key of another kind is refused, naming the entry
    let mut bad = fx.clone();
    bad["invitations"][0]["key"] = json!("ENR-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA");
    let (st, e) = post(&c, format!("{}/_test/fixtures", s.url()), bad);
    assert_eq!(st, 400, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invitations[0]")
    );

    let (st, loaded) = post(&c, format!("{}/_test/fixtures", s.url()), fx.clone());
    assert_eq!(st, 201, "{loaded}");
    assert!(loaded["licenses"]["pay"].is_string(), "{loaded}");
    assert!(loaded["enrollment_keys"]["enrollment_keys[0]"].is_string());
    assert!(loaded["invitations"]["invitations[0]"].is_string());

    let (st, a) = post(
        &c,
        format!("{}/v1/licenses/activations", s.url()),
        json!({"license_key": "LIC-FIXTURE-0001", "instance_uid": UID}),
    );
    assert_eq!(st, 201, "{a}");
    let (st, _) = post(
        &c,
        format!("{}/v1/enrollments", s.url()),
        json!({"enrollment_key": "ENR-FIXTURE-0001", "agent_id": "a1"}),
    );
    assert_eq!(st, 201);
    let (st, e) = post(
        &c,
        format!("{}/v1/enrollments", s.url()),
        json!({"enrollment_key": "ENR-FIXTURE-0001", "agent_id": "a2"}),
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (409, Some("enrollment_exhausted"))
    );
    let (st, r) = post(
        &c,
        format!("{}/v1/invitations/redemptions", s.url()),
        json!({"invitation_key": "INV-FIXTURE-0001", "email": "m@acme.test", "name": "M"}),
    );
    assert_eq!((st, r["account"]["role"].as_str()), (201, Some("manager")));

    let r = c.post(format!("{}/_test/reset", s.url())).send().unwrap();
    assert_eq!(r.status(), 204);
    let (st, _) = post(
        &c,
        format!("{}/v1/enrollments", s.url()),
        json!({"enrollment_key": "ENR-FIXTURE-0001", "agent_id": "a1"}),
    );
    assert_eq!(st, 404, "reset removed the enrollment key");
    // and the same fixtures (the same email's account included) load again
    let (st, loaded) = post(&c, format!("{}/_test/fixtures", s.url()), fx);
    assert_eq!(st, 201, "{loaded}");
    let (st, _) = post(
        &c,
        format!("{}/v1/invitations/redemptions", s.url()),
        json!({"invitation_key": "INV-FIXTURE-0001", "email": "m@acme.test", "name": "M"}),
    );
    assert_eq!(st, 201);
}

fn server(dir: &std::path::Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_glpi-network-server"))
        .arg("--data-dir")
        .arg(dir)
        .env_remove("DATABASE_URL")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_subcommands_issue_list_show_and_revoke_each_kind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    server(d, &["migrate"]);
    let catalogue = d.join("catalogue.json");
    std::fs::write(
        &catalogue,
        json!({"plugins": [{"key": "payroll", "name": "Payroll", "commercial": true,
                            "license_term_days": 30}]})
        .to_string(),
    )
    .unwrap();
    server(d, &["plugins", "import", catalogue.to_str().unwrap()]);
    let sub = server(d, &["subscribers", "create", "--name", "ACME"]);
    let sub = sub["id"].as_str().unwrap();

    let lic = server(
        d,
        &[
            "licenses",
            "issue",
            "--subscriber",
            sub,
            "--plugin",
            "payroll",
        ],
    );
    assert!(lic["key"].as_str().unwrap().starts_with("LIC-"), "{lic}");
    let enr = server(
        d,
        &[
            "enrollment-keys",
            "issue",
            "--subscriber",
            sub,
            "--entity",
            "Root",
            "--max-uses",
            "5",
        ],
    );
    assert!(enr["key"].as_str().unwrap().starts_with("ENR-"), "{enr}");
    let inv = server(
        d,
        &[
            "invitations",
            "issue",
            "--subscriber",
            sub,
            "--role",
            "viewer",
        ],
    );
    assert!(inv["key"].as_str().unwrap().starts_with("INV-"), "{inv}");

    for (group, obj) in [
        ("licenses", &lic),
        ("enrollment-keys", &enr),
        ("invitations", &inv),
    ] {
        let id = obj["id"].as_str().unwrap();
        let list = server(d, &[group, "list", "--subscriber", sub]);
        assert_eq!(
            list["items"].as_array().unwrap().len(),
            1,
            "{group}: {list}"
        );
        let shown = server(d, &[group, "show", id]);
        assert_eq!(shown["status"], "active");
        assert!(
            shown.get("key").is_none(),
            "{group}: the plaintext is shown once"
        );
        let revoked = server(d, &[group, "revoke", id]);
        assert_eq!(revoked["status"], "revoked", "{group}");
    }
    let audit = server(d, &["audit", "list", "--limit", "100"]);
    let text = audit.to_string();
    for action in ["license.issue", "enrollment_key.revoke", "invitation.issue"] {
        assert!(text.contains(action), "{action}");
    }
}
