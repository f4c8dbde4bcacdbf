//! Bad input gets a precise error code in the envelope, and loses nothing.

use crate::helpers::{Answer, TestApp};
use serde_json::json;

const URL: &str = "https://glpi.example.com";

async fn malformed_keys_urls_and_bodies_get_precise_codes(app: TestApp) {
    let (_, key) = app.new_key().await;
    // a generated-shape key with one symbol changed: refused before any look-up
    let mut typo: Vec<char> = key.chars().collect();
    typo[6] = if typo[6] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    app.register(&typo, URL)
        .await
        .expect_error(400, "invalid_key_format");
    app.validate(&typo, URL)
        .await
        .expect_error(400, "invalid_key_format");
    // any other string is looked up as it is
    app.register("some-imported-key", URL)
        .await
        .expect_error(404, "key_not_found");
    app.validate("some-imported-key", URL)
        .await
        .expect_error(404, "key_not_found");
    app.register("   ", URL)
        .await
        .expect_error(400, "invalid_key_format");
    // surrounding whitespace is trimmed
    app.register(&format!("  {key}\n"), URL).await.expect(201);
    // case matters
    app.validate(&key.to_lowercase(), URL)
        .await
        .expect_error(404, "key_not_found");

    for bad in [
        "glpi.example.com",
        "ftp://glpi.example.com",
        "https://u:p@h.example",
        "https://h.example/?a=1",
        "https://h.example/#x",
        "",
    ] {
        app.register(&key, bad)
            .await
            .expect_error(400, "invalid_url");
    }
    // wrong types and missing fields
    app.post(
        "/v1/registrations",
        json!({"registration_key": 5, "instance_url": URL}),
    )
    .await
    .expect_error(400, "invalid_request");
    app.post("/v1/registrations", json!({"instance_url": URL}))
        .await
        .expect_error(400, "invalid_request");
    app.post("/v1/validations", json!([1, 2]))
        .await
        .expect_error(400, "invalid_request");
    // not JSON at all
    let resp = app
        .client
        .post(app.url("/v1/validations"))
        .header("content-type", "application/json")
        .body("{\"registration_key\": ")
        .send()
        .await
        .unwrap();
    Answer::from(resp)
        .await
        .expect_error(400, "invalid_request");
    // unknown fields are tolerated
    let v = app
        .post(
            "/v1/validations",
            json!({"registration_key": key, "instance_url": URL, "future_field": {"x": 1}}),
        )
        .await
        .expect(200);
    assert_eq!(v["status"], "valid");
    // oversized body
    let big = json!({"registration_key": key, "instance_url": URL, "pad": "x".repeat(70 * 1024)});
    app.post("/v1/validations", big)
        .await
        .expect_error(413, "payload_too_large");
    // an overlong nonce
    app.post(
        "/v1/validations",
        json!({"registration_key": key, "instance_url": URL, "nonce": "n".repeat(200)}),
    )
    .await
    .expect_error(400, "invalid_request");

    // nothing half-written: still exactly one registration
    let regs = app.admin_get("/v1/admin/registrations").await.expect(200);
    assert_eq!(regs["items"].as_array().unwrap().len(), 1);
}

async fn routes_and_methods_answer_in_the_envelope(app: TestApp) {
    let a = Answer::from(app.client.get(app.url("/nope")).send().await.unwrap()).await;
    a.expect_error(404, "not_found");
    let resp = app
        .client
        .put(app.url("/v1/validations"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    Answer::from(resp)
        .await
        .expect_error(405, "method_not_allowed");
    let h = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let r = Answer::from(app.client.get(app.url("/readyz")).send().await.unwrap())
        .await
        .expect(200);
    assert_eq!(r["status"], "ready");
}

async fn the_admin_api_needs_the_bearer_token(app: TestApp) {
    let resp = app
        .client
        .get(app.url("/v1/admin/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    Answer::from(resp).await.expect_error(401, "unauthorized");
    for auth in [
        "Bearer wrong",
        "Basic abc",
        "Bearer",
        &format!("Bearer {}x", app.admin_token),
    ] {
        let resp = app
            .client
            .get(app.url("/v1/admin/keys"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        Answer::from(resp).await.expect_error(401, "unauthorized");
    }
    let resp = app
        .client
        .get(app.url("/v1/admin/keys"))
        .header("authorization", format!("bearer {}", app.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn failed_admin_logins_are_audited_and_count_against_the_address(app: TestApp) {
    for _ in 0..3 {
        let r = app
            .client
            .get(app.url("/v1/admin/keys"))
            .bearer_auth("wrong-token-xxxxxxxx")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    // the audit write happens off the request path: wait for it, boundedly
    let mut found = 0;
    for _ in 0..100 {
        let audit = app.admin_get("/v1/admin/audit?limit=50").await.expect(200);
        found = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "admin.login" && e["outcome"] == "unauthorized")
            .count();
        if found == 3 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(found, 3);
    let audit = app.admin_get("/v1/admin/audit?limit=50").await.expect(200);
    assert!(
        !audit.to_string().contains("wrong-token-xxxxxxxx"),
        "the presented token is never recorded"
    );
}

crate::on_both_backends!(
    failed_admin_logins_are_audited_and_count_against_the_address,
    malformed_keys_urls_and_bodies_get_precise_codes,
    routes_and_methods_answer_in_the_envelope,
    the_admin_api_needs_the_bearer_token,
);
