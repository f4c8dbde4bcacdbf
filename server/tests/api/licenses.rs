//! Plugin licenses (DESIGN §11.1): commercial catalogue plugins, the admin API, activation,
//! validation and release, and the marketplace that serves a commercial plugin's archive only
//! to an instance whose UID holds a valid license.

use crate::helpers::{Answer, TestApp};
use serde_json::{Value, json};

const UID: &str = "6e1ab4de-4c1b-4b3e-9b39-2f4a3b0f1c11";
const OTHER_UID: &str = "0b9f3a52-8c4e-4a55-8a0e-6d1f0f0e2a22";

pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A commercial plugin `payroll` with version 1.0.0 (a generated archive).
pub async fn commercial_plugin(app: &TestApp) -> Value {
    let p = app
        .admin_post(
            "/v1/admin/plugins",
            json!({"key": "payroll", "name": "Payroll", "commercial": true,
                   "license_term_days": 30, "price": "99 EUR/year"}),
        )
        .await
        .expect(201);
    app.admin_post(
        "/v1/admin/plugins/payroll/versions",
        json!({"num": "1.0.0", "stability": "stable"}),
    )
    .await
    .expect(201);
    p
}

async fn subscriber(app: &TestApp) -> String {
    app.admin_post("/v1/admin/subscribers", json!({"name": "Buyer"}))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn archive(app: &TestApp, key: &str, uid: &str) -> Answer {
    let req = app
        .client
        .get(app.url("/api/marketplace/archives/payroll-1.0.0.tar.gz"))
        .header("accept", "application/json, */*")
        .header("user-agent", "GLPI/11.0.1 (installation-mode:TARBALL)")
        .header("x-registration-key", key)
        .header("x-glpi-network-uid", uid);
    let resp = req.send().await.unwrap();
    let status = resp.status();
    if status == 200 {
        let bytes = resp.bytes().await.unwrap();
        glpi_network_server::domain::archive::check("payroll", &bytes).unwrap();
        return Answer {
            status,
            body: Value::Null,
        };
    }
    Answer::from(resp).await
}

async fn licenses_are_issued_activated_validated_renewed_and_revoked(app: TestApp) {
    let p = commercial_plugin(&app).await;
    assert_eq!(p["commercial"], true);
    assert_eq!(p["price"], "99 EUR/year");
    assert_eq!(p["license_term_days"], 30);
    let sub = subscriber(&app).await;
    let lic = app
        .admin_post(
            "/v1/admin/licenses",
            json!({"subscriber_id": sub, "plugin": "payroll"}),
        )
        .await
        .expect(201);
    let key = lic["key"].as_str().unwrap().to_owned();
    let id = lic["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("LIC-"), "{lic}");
    assert_eq!(lic["key_prefix"], key[..8]);
    // expires_at defaults to now + the plugin's term
    let expires: chrono::DateTime<chrono::Utc> =
        lic["expires_at"].as_str().unwrap().parse().unwrap();
    let days = (expires - app.clock.now()).num_days();
    assert!((29..=30).contains(&days), "{lic}");
    // a free plugin has no licenses
    app.admin_post(
        "/v1/admin/licenses",
        json!({"subscriber_id": sub, "plugin": "hello"}),
    )
    .await
    .expect_error(400, "invalid_request");
    app.admin_post(
        "/v1/admin/licenses",
        json!({"subscriber_id": sub, "plugin": "nope"}),
    )
    .await
    .expect_error(404, "not_found");

    let body = |url: Option<&str>, uid: Option<&str>| json!({"license_key": key, "instance_url": url, "instance_uid": uid, "nonce": "n"});
    let v = app
        .post(
            "/v1/licenses/validations",
            body(Some("https://a.example/glpi"), None),
        )
        .await
        .expect(200);
    assert_eq!(v["status"], "not_registered");
    let first = app
        .post(
            "/v1/licenses/activations",
            body(Some("https://A.example/glpi/"), None),
        )
        .await
        .expect(201);
    assert_eq!(
        first["activation"]["instance_url"],
        "https://a.example/glpi"
    );
    let c = claims(first["token"].as_str().unwrap());
    assert_eq!(c["sub"], id.as_str());
    assert_eq!(c["plugin"], "payroll");
    assert_eq!(c["valid"], true);
    assert_eq!(c["status"], "valid");
    assert_eq!(c["license_expires_at"], json!(expires.timestamp()));
    assert_eq!(c["nonce"], "n");
    // the same instance again, gaining its UID: 200
    let again = app
        .post(
            "/v1/licenses/activations",
            body(Some("https://a.example/glpi"), Some(UID)),
        )
        .await
        .expect(200);
    assert_eq!(again["activation"]["instance_uid"], UID);
    app.post(
        "/v1/licenses/activations",
        body(Some("https://b.example"), None),
    )
    .await
    .expect_error(409, "key_already_bound");
    app.post("/v1/licenses/activations", json!({"license_key": key}))
        .await
        .expect_error(400, "invalid_request");
    let v = app
        .post("/v1/licenses/validations", body(None, Some(UID)))
        .await
        .expect(200);
    assert_eq!(
        (v["valid"].clone(), v["status"].clone()),
        (json!(true), json!("valid"))
    );
    let v = app
        .post("/v1/licenses/validations", body(None, Some(OTHER_UID)))
        .await
        .expect(200);
    assert_eq!(v["status"], "key_already_bound");
    assert_eq!(claims(v["token"].as_str().unwrap())["valid"], false);

    // list filters
    let listed = app
        .admin_get(&format!(
            "/v1/admin/licenses?subscriber_id={sub}&plugin=payroll&status=active"
        ))
        .await
        .expect(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(listed["items"][0].get("key").is_none());
    let none = app
        .admin_get("/v1/admin/licenses?plugin=hello")
        .await
        .expect(200);
    assert_eq!(none["items"], json!([]));

    // expiry, then renewal
    app.clock.advance(31 * 86_400);
    let v = app
        .post("/v1/licenses/validations", body(None, Some(UID)))
        .await
        .expect(200);
    assert_eq!(v["status"], "license_expired");
    app.post("/v1/licenses/activations", body(None, Some(UID)))
        .await
        .expect_error(403, "license_expired");
    let until = (app.clock.now() + chrono::Duration::days(365)).to_rfc3339();
    let renewed = app
        .admin_post(
            &format!("/v1/admin/licenses/{id}/renew"),
            json!({"expires_at": until}),
        )
        .await
        .expect(200);
    assert_eq!(renewed["expired"], false);
    let v = app
        .post("/v1/licenses/validations", body(None, Some(UID)))
        .await
        .expect(200);
    assert_eq!(v["status"], "valid");

    // release (by its own instance), then another instance may activate it
    let resp = app
        .client
        .delete(app.url("/v1/licenses/activations"))
        .json(&body(None, Some(OTHER_UID)))
        .send()
        .await
        .unwrap();
    Answer::from(resp)
        .await
        .expect_error(409, "key_already_bound");
    let resp = app
        .client
        .delete(app.url("/v1/licenses/activations"))
        .json(&body(None, Some(UID)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    app.post("/v1/licenses/activations", body(None, Some(OTHER_UID)))
        .await
        .expect(201);

    // revoked
    app.admin_post(&format!("/v1/admin/licenses/{id}/revoke"), json!({}))
        .await
        .expect(200);
    app.post("/v1/licenses/activations", body(None, Some(OTHER_UID)))
        .await
        .expect_error(403, "key_revoked");
    let v = app
        .post("/v1/licenses/validations", body(None, Some(OTHER_UID)))
        .await
        .expect(200);
    assert_eq!(v["status"], "key_revoked");
    app.admin_post(
        &format!("/v1/admin/licenses/{id}/renew"),
        json!({"expires_at": until}),
    )
    .await
    .expect_error(409, "conflict");

    let audit = app.admin_get("/v1/admin/audit?limit=500").await.expect(200);
    let text = audit.to_string();
    for action in [
        "license.issue",
        "license.activate",
        "license.renew",
        "license.release",
        "license.revoke",
        "license.validation",
    ] {
        assert!(text.contains(action), "{action} not audited");
    }
    assert!(!text.contains(&key), "the audit trail never holds the key");
    assert_eq!(
        app.admin_get("/v1/admin/audit/verify").await.expect(200)["intact"],
        true
    );
}

async fn glpi_downloads_a_commercial_plugin_only_after_its_license_is_activated(app: TestApp) {
    commercial_plugin(&app).await;
    let (_, reg_key) = app.new_key().await;
    // GLPI registers with its UID first (the /info call binds it)
    let info = app
        .client
        .get(app.url("/api/registration/info"))
        .header("x-registration-key", &reg_key)
        .header("x-glpi-network-uid", UID)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    // the catalogue record shows it is commercial and its price
    let list = app
        .client
        .get(app.url("/api/marketplace/plugins"))
        .header("x-registration-key", &reg_key)
        .header("x-glpi-network-uid", UID)
        .send()
        .await
        .unwrap();
    let list: Value = list.json().await.unwrap();
    let rec = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "payroll")
        .unwrap()
        .clone();
    assert_eq!(rec["commercial"], true);
    assert_eq!(rec["price"], "99 EUR/year");

    archive(&app, &reg_key, UID)
        .await
        .expect_error(403, "license_required");
    let sub = subscriber(&app).await;
    let lic = app
        .admin_post(
            "/v1/admin/licenses",
            json!({"subscriber_id": sub, "plugin": "payroll"}),
        )
        .await
        .expect(201);
    let key = lic["key"].as_str().unwrap();
    // issued but not activated: still refused
    archive(&app, &reg_key, UID)
        .await
        .expect_error(403, "license_required");
    app.post(
        "/v1/licenses/activations",
        json!({"license_key": key, "instance_uid": UID}),
    )
    .await
    .expect(201);
    assert_eq!(archive(&app, &reg_key, UID).await.status, 200);
    // without a valid registration key: 401 as for any plugin
    archive(&app, "nope", UID)
        .await
        .expect_error(401, "unauthorized");
    // an expired license falls back to no license
    app.clock.advance(400 * 86_400);
    archive(&app, &reg_key, UID)
        .await
        .expect_error(403, "license_required");
}

crate::on_both_backends!(
    licenses_are_issued_activated_validated_renewed_and_revoked,
    glpi_downloads_a_commercial_plugin_only_after_its_license_is_activated,
);
