//! Enrollment keys (DESIGN §11.2): issue, enroll, the same agent again, exhaustion, release,
//! revoke and expiry, each audited.

use crate::helpers::TestApp;
use serde_json::{Value, json};

/// A subscriber's id.
pub async fn subscriber(app: &TestApp) -> String {
    app.admin_post("/v1/admin/subscribers", json!({"name": "Agents Inc"}))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn enroll(app: &TestApp, key: &str, agent: &str) -> crate::helpers::Answer {
    app.post(
        "/v1/enrollments",
        json!({"enrollment_key": key, "agent_id": agent, "hostname": "pc-1", "nonce": "n1"}),
    )
    .await
}

fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn agents_enroll_up_to_max_uses_and_a_release_frees_a_use(app: TestApp) {
    let sub = subscriber(&app).await;
    let k = app
        .admin_post(
            "/v1/admin/enrollment-keys",
            json!({"subscriber_id": sub, "entity": "Paris", "max_uses": 2}),
        )
        .await
        .expect(201);
    let key = k["key"].as_str().unwrap().to_owned();
    let id = k["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ENR-"), "{k}");
    assert_eq!(k["key_prefix"], key[..8]);
    assert_eq!(k["uses"], 0);

    let first = enroll(&app, &key, "agent-1").await.expect(201);
    assert_eq!(first["enrollment"]["agent_id"], "agent-1");
    assert_eq!(first["enrollment"]["entity"], "Paris");
    assert!(first["enrollment"]["enrolled_at"].is_string());
    let c = claims(first["token"].as_str().unwrap());
    assert_eq!(c["sub"], id.as_str());
    assert_eq!(c["agent_id"], "agent-1");
    assert_eq!(c["entity"], "Paris");
    assert_eq!(c["enrollment_key_id"], id.as_str());
    assert_eq!(c["nonce"], "n1");
    assert_eq!(c["aud"], "glpi-network");
    assert!(c["grace_until"].as_i64().unwrap() > c["exp"].as_i64().unwrap());

    // the same agent again: 200, the same enrollment, no use taken
    let again = enroll(&app, &key, "agent-1").await.expect(200);
    assert_eq!(again["enrollment"]["id"], first["enrollment"]["id"]);
    enroll(&app, &key, "agent-2").await.expect(201);
    enroll(&app, &key, "agent-3")
        .await
        .expect_error(409, "enrollment_exhausted");
    let shown = app
        .admin_get(&format!("/v1/admin/enrollment-keys/{id}"))
        .await
        .expect(200);
    assert_eq!(shown["uses"], 2);
    assert!(shown.get("key").is_none(), "the plaintext is shown once");

    let listed = app
        .admin_get(&format!("/v1/admin/enrollment-keys/{id}/enrollments"))
        .await
        .expect(200);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let first_id = first["enrollment"]["id"].as_str().unwrap();
    app.admin_delete(&format!("/v1/admin/enrollments/{first_id}"))
        .await
        .expect(204);
    app.admin_delete("/v1/admin/enrollments/nope")
        .await
        .expect_error(404, "not_found");
    // the freed use goes to a new agent; the released agent may come back later, taking a use
    enroll(&app, &key, "agent-3").await.expect(201);
    enroll(&app, &key, "agent-1")
        .await
        .expect_error(409, "enrollment_exhausted");
    let list = app
        .admin_get(&format!("/v1/admin/enrollment-keys?subscriber_id={sub}"))
        .await
        .expect(200);
    assert_eq!(list["items"][0]["uses"], 2);

    // revoked: 403, even for an agent already enrolled
    app.admin_post(&format!("/v1/admin/enrollment-keys/{id}/revoke"), json!({}))
        .await
        .expect(200);
    enroll(&app, &key, "agent-2")
        .await
        .expect_error(403, "key_revoked");

    let audit = app.admin_get("/v1/admin/audit?limit=500").await.expect(200);
    let actions: Vec<(String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("enrollment_key.issue", "ok"),
        ("enrollment.create", "ok"),
        ("enrollment.create", "enrollment_exhausted"),
        ("enrollment.release", "ok"),
        ("enrollment_key.revoke", "ok"),
        ("enrollment.create", "key_revoked"),
    ] {
        assert!(
            actions.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} not in {actions:?}"
        );
    }
    assert!(
        !audit.to_string().contains(&key),
        "the audit trail never holds the key"
    );
    let chain = app.admin_get("/v1/admin/audit/verify").await.expect(200);
    assert_eq!(chain["intact"], true);
}

async fn enrollment_refusals_keep_to_the_contract(app: TestApp) {
    let sub = subscriber(&app).await;
    let k = app
        .admin_post(
            "/v1/admin/enrollment-keys",
            json!({"subscriber_id": sub, "entity": "Lyon", "max_uses": 0,
                   "expires_at": "2099-01-01T00:00:00Z"}),
        )
        .await
        .expect(201);
    let key = k["key"].as_str().unwrap().to_owned();
    for i in 0..5 {
        enroll(&app, &key, &format!("a{i}")).await.expect(201);
    }
    // a typo in a generated key: invalid_key_format; unknown: key_not_found
    let mut typo = key.clone();
    let last = typo.pop().unwrap();
    typo.push(if last == 'A' { 'B' } else { 'A' });
    enroll(&app, &typo, "x")
        .await
        .expect_error(400, "invalid_key_format");
    enroll(&app, "ENR-not-a-real-key", "x")
        .await
        .expect_error(404, "key_not_found");
    app.post(
        "/v1/enrollments",
        json!({"enrollment_key": key, "agent_id": " "}),
    )
    .await
    .expect_error(400, "invalid_request");
    app.admin_post(
        "/v1/admin/enrollment-keys",
        json!({"subscriber_id": sub, "entity": "Lyon", "max_uses": -1}),
    )
    .await
    .expect_error(400, "invalid_request");
    app.admin_post(
        "/v1/admin/enrollment-keys",
        json!({"subscriber_id": "nobody", "entity": "Lyon", "max_uses": 1}),
    )
    .await
    .expect_error(404, "not_found");
    app.admin_get("/v1/admin/enrollment-keys/nope")
        .await
        .expect_error(404, "not_found");
    // expired: 403 key_expired
    app.clock.advance(80 * 365 * 86_400);
    enroll(&app, &key, "late")
        .await
        .expect_error(403, "key_expired");
}

crate::on_both_backends!(
    agents_enroll_up_to_max_uses_and_a_release_frees_a_use,
    enrollment_refusals_keep_to_the_contract,
);
