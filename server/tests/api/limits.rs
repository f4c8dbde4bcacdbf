//! Rate limits, metrics, request ids and security headers.

use crate::helpers::{Answer, TestApp};
use serde_json::json;

const URL: &str = "https://glpi.example.com";

async fn the_31st_bad_key_in_a_minute_is_refused_and_a_good_key_works_after_the_window(
    app: TestApp,
) {
    let (_, good) = app.new_key().await;
    app.register(&good, URL).await.expect(201);
    // let the window start fresh so the 30 failures fall in one minute
    let now = app.clock.now().timestamp();
    app.clock.advance(60 - now.rem_euclid(60));
    for i in 0..30 {
        let key = if i % 2 == 0 {
            format!("unknown-{i}")
        } else {
            "GLPI-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA".to_owned()
        };
        let a = app.validate(&key, URL).await;
        assert!(a.status == 404 || a.status == 400, "{i}: {}", a.body);
    }
    let resp = app
        .client
        .post(app.url("/v1/validations"))
        .json(&json!({"registration_key": "unknown-31", "instance_url": URL}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let h = resp.headers().clone();
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(h["ratelimit-limit"], "30");
    assert_eq!(h["ratelimit-remaining"], "0");
    assert_eq!(h["ratelimit-reset"], retry.to_string().as_str());
    Answer::from(resp).await.expect_error(429, "rate_limited");
    // while over, every key look-up from this address is refused, good keys too, on every path
    app.validate(&good, URL)
        .await
        .expect_error(429, "rate_limited");
    app.register(&good, URL)
        .await
        .expect_error(429, "rate_limited");
    let info: serde_json::Value = app
        .client
        .get(app.url("/api/registration/info"))
        .header("X-Registration-Key", &good)
        .header("X-Glpi-Network-Uid", "u".repeat(40))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["is_valid"], false);
    assert!(
        info["validation_message"]
            .as_str()
            .unwrap()
            .contains("Too many"),
        "{info}"
    );
    let mp = app
        .client
        .get(app.url("/api/marketplace/plugins"))
        .header("X-Registration-Key", &good)
        .send()
        .await
        .unwrap();
    Answer::from(mp).await.expect_error(429, "rate_limited");
    // an X-Forwarded-For from an untrusted peer does not get around it
    let spoofed = app
        .client
        .post(app.url("/v1/validations"))
        .header("X-Forwarded-For", "203.0.113.77")
        .json(&json!({"registration_key": good, "instance_url": URL}))
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 429);
    // the admin API is not a key look-up
    app.admin_get("/v1/admin/keys").await.expect(200);

    // after the window, the good key works again
    app.clock.advance(retry as i64);
    let v = app.validate(&good, URL).await.expect(200);
    assert_eq!(v["status"], "valid");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("glpi_network_rate_limited_total{limit=\"failed_lookups\"}"),
        "{metrics}"
    );
}

async fn registration_attempts_per_key_are_limited(app: TestApp) {
    let (_, key) = app.new_key().await;
    let now = app.clock.now().timestamp();
    app.clock.advance(60 - now.rem_euclid(60));
    app.register(&key, URL).await.expect(201);
    for _ in 1..30 {
        app.register(&key, URL).await.expect(200);
    }
    app.register(&key, URL)
        .await
        .expect_error(429, "rate_limited");
    // validations of the same key are not registrations
    app.validate(&key, URL).await.expect(200);
    let (_, other) = app.new_key().await;
    app.register(&other, "https://other.example.com")
        .await
        .expect(201);
}

async fn metrics_count_requests_registrations_and_validations(app: TestApp) {
    let (_, key) = app.new_key().await;
    app.register(&key, URL).await.expect(201);
    app.validate(&key, URL).await.expect(200);
    app.validate(&key, URL).await.expect(200);
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    let value = |needle: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no {needle} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(value("glpi_network_registrations_bound_total"), 1.0);
    assert_eq!(
        value("glpi_network_validations_total{status=\"valid\"}"),
        2.0
    );
    assert_eq!(
        value(
            "glpi_network_http_requests_total{method=\"POST\",route=\"/v1/registrations\",status=\"201\"}"
        ),
        1.0
    );
    assert!(value("glpi_network_token_signing_seconds_count") >= 3.0);
    assert!(text.contains("glpi_network_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/validations\""));
    assert!(text.contains("glpi_network_db_pool_connections{state=\"idle\"}"));
    // routes are labelled by pattern, not by id
    app.admin_get("/v1/admin/keys/some-id")
        .await
        .expect_error(404, "not_found");
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("route=\"/v1/admin/keys/{id}\""));
    assert!(!text.contains("some-id"));
}

async fn answers_carry_a_request_id_and_security_headers(app: TestApp) {
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a generated UUID: {id}");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-Id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-42");
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-Id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id with spaces");
    // a request head over 128 KiB is refused before any handler (431, or the connection closed)
    let one_off = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = one_off
        .get(app.url("/healthz"))
        .header("X-Big", "a".repeat(200 * 1024))
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => assert!(!e.is_timeout(), "{e}"),
    }
    // and the server still answers
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

crate::on_both_backends!(
    the_31st_bad_key_in_a_minute_is_refused_and_a_good_key_works_after_the_window,
    registration_attempts_per_key_are_limited,
    metrics_count_requests_registrations_and_validations,
    answers_carry_a_request_id_and_security_headers,
);
