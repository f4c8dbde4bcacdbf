//! The admin API: shapes, validation, filters and cursor pagination.

use crate::helpers::TestApp;
use serde_json::json;

async fn lists_page_with_opaque_cursors(app: TestApp) {
    for i in 0..5 {
        app.admin_post("/v1/admin/subscribers", json!({"name": format!("S{i}")}))
            .await
            .expect(201);
    }
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/admin/subscribers?limit=2&cursor={c}"),
            None => "/v1/admin/subscribers?limit=2".to_owned(),
        };
        let page = app.admin_get(&path).await.expect(200);
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            names.push(item["name"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["S0", "S1", "S2", "S3", "S4"]);
    app.admin_get("/v1/admin/subscribers?limit=abc")
        .await
        .expect_error(400, "invalid_request");
}

async fn offers_are_seeded_with_ranks(app: TestApp) {
    let offers = app.admin_get("/v1/admin/offers").await.expect(200);
    let got: Vec<(String, String, i64)> = offers["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["reference"].as_str().unwrap().into(),
                o["title"].as_str().unwrap().into(),
                o["rank"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("registered".into(), "GLPI Network Registered".into(), 0),
            ("basic".into(), "GLPI Network Basic".into(), 1),
            ("standard".into(), "GLPI Network Standard".into(), 2),
            ("advanced".into(), "GLPI Network Advanced".into(), 3),
        ]
    );
}

async fn creation_validates_its_input(app: TestApp) {
    app.admin_post("/v1/admin/subscribers", json!({"name": ""}))
        .await
        .expect_error(400, "invalid_request");
    app.admin_post(
        "/v1/admin/subscribers",
        json!({"name": "x", "email": "nope"}),
    )
    .await
    .expect_error(400, "invalid_request");
    let s = app
        .admin_post("/v1/admin/subscribers", json!({"name": "ACME"}))
        .await
        .expect(201);
    let sid = s["id"].as_str().unwrap();
    app.admin_get(&format!("/v1/admin/subscribers/{sid}"))
        .await
        .expect(200);
    app.admin_get("/v1/admin/subscribers/unknown")
        .await
        .expect_error(404, "not_found");
    app.admin_post(
        "/v1/admin/subscriptions",
        json!({"subscriber_id": sid, "offer": "platinum"}),
    )
    .await
    .expect_error(400, "invalid_request");
    app.admin_post(
        "/v1/admin/subscriptions",
        json!({"subscriber_id": "ghost", "offer": "basic"}),
    )
    .await
    .expect_error(404, "not_found");
    app.admin_post(
        "/v1/admin/subscriptions",
        json!({"subscriber_id": sid, "offer": "basic", "begin_date": "2026-05-01", "end_date": "2026-04-01"}),
    )
    .await
    .expect_error(400, "invalid_request");
    app.admin_post(
        "/v1/admin/subscriptions",
        json!({"subscriber_id": sid, "offer": "basic", "end_date": "2027-01-01", "trial_days": 3}),
    )
    .await
    .expect_error(400, "invalid_request");
    app.admin_post(
        "/v1/admin/subscriptions",
        json!({"subscriber_id": sid, "offer": "basic", "begin_date": "not-a-date"}),
    )
    .await
    .expect_error(400, "invalid_request");
    let sub = app
        .admin_post(
            "/v1/admin/subscriptions",
            json!({"subscriber_id": sid, "offer": "basic", "begin_date": "2026-01-01", "end_date": "2026-12-31"}),
        )
        .await
        .expect(201);
    assert_eq!(
        (sub["begin_date"].clone(), sub["end_date"].clone()),
        (json!("2026-01-01"), json!("2026-12-31"))
    );
    assert_eq!(sub["trial"], false);
    app.admin_post("/v1/admin/keys", json!({"subscription_id": "ghost"}))
        .await
        .expect_error(404, "not_found");

    // key filters
    let sub_id = sub["id"].as_str().unwrap();
    let (k1, _) = app.issue_key(sub_id).await;
    let (_k2, _) = app.issue_key(sub_id).await;
    app.admin_post(&format!("/v1/admin/keys/{k1}/revoke"), json!({}))
        .await
        .expect(200);
    let revoked = app
        .admin_get(&format!(
            "/v1/admin/keys?subscription_id={sub_id}&status=revoked"
        ))
        .await
        .expect(200);
    let items = revoked["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], k1.as_str());
    assert!(items[0].get("key").is_none());
    let all = app
        .admin_get(&format!("/v1/admin/keys?subscription_id={sub_id}"))
        .await
        .expect(200);
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
}

async fn every_collection_answers_get_by_id(app: TestApp) {
    let offer = app.admin_get("/v1/admin/offers/standard").await.expect(200);
    assert_eq!(
        (offer["reference"].as_str(), offer["rank"].as_i64()),
        (Some("standard"), Some(2))
    );
    app.admin_get("/v1/admin/offers/gold")
        .await
        .expect_error(404, "not_found");
    let (_, _key) = app.new_key().await;
    let audit = app.admin_get("/v1/admin/audit?limit=1").await.expect(200);
    let id = audit["items"][0]["id"].as_i64().unwrap();
    let one = app
        .admin_get(&format!("/v1/admin/audit/{id}"))
        .await
        .expect(200);
    assert_eq!(one, audit["items"][0]);
    app.admin_get("/v1/admin/audit/999999")
        .await
        .expect_error(404, "not_found");
    app.admin_get("/v1/admin/audit/abc")
        .await
        .expect_error(400, "invalid_request");
    let keys = app.admin_get("/v1/admin/signing-keys").await.expect(200);
    let kid = keys["items"][0]["kid"].as_str().unwrap().to_owned();
    let k = app
        .admin_get(&format!("/v1/admin/signing-keys/{kid}"))
        .await
        .expect(200);
    assert_eq!(k["active"], true);
    app.admin_get("/v1/admin/signing-keys/nope")
        .await
        .expect_error(404, "not_found");
}

async fn regenerating_a_revoked_key_still_bumps_ver_when_it_frees_a_binding(app: TestApp) {
    let (id, key) = app.new_key().await;
    app.register(&key, "https://r.example.com")
        .await
        .expect(201);
    app.admin_post(&format!("/v1/admin/keys/{id}/revoke"), json!({}))
        .await
        .expect(200);
    let before = app.key_ver(&id).await;
    app.admin_post(&format!("/v1/admin/keys/{id}/regenerate"), json!({}))
        .await
        .expect(201);
    assert!(app.key_ver(&id).await > before);
    let regs = app
        .admin_get(&format!("/v1/admin/registrations?key_id={id}"))
        .await
        .expect(200);
    assert_eq!(regs["items"], json!([]));
}

async fn an_oversized_archive_gets_the_error_envelope(app: TestApp) {
    app.admin_post("/v1/admin/plugins", json!({"key": "big", "name": "Big"}))
        .await
        .expect(201);
    let resp = app
        .client
        .post(app.url("/v1/admin/plugins/big/versions?num=1.0.0"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/gzip")
        .body(vec![0u8; 21 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    crate::helpers::Answer::from(resp)
        .await
        .expect_error(413, "payload_too_large");
    let shown = app.admin_get("/v1/admin/plugins/big").await.expect(200);
    assert_eq!(shown["versions"], json!([]));
}

async fn keys_are_issued_in_bulk_through_the_admin_api(app: TestApp) {
    let sub = app.subscription("basic", json!({})).await;
    let r = app
        .admin_post(
            "/v1/admin/keys/bulk",
            json!({"subscription_id": sub, "count": 1500}),
        )
        .await
        .expect(201);
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 1500);
    let key = items[1499]["key"].as_str().unwrap();
    app.register(key, "https://bulk.example.com")
        .await
        .expect(201);
    app.admin_post(
        "/v1/admin/keys/bulk",
        json!({"subscription_id": sub, "count": 0}),
    )
    .await
    .expect_error(400, "invalid_request");
    app.admin_post(
        "/v1/admin/keys/bulk",
        json!({"subscription_id": sub, "count": 10001}),
    )
    .await
    .expect_error(400, "invalid_request");
    app.admin_post(
        "/v1/admin/keys/bulk",
        json!({"subscription_id": "ghost", "count": 5}),
    )
    .await
    .expect_error(404, "not_found");
    let listed = app
        .admin_get(&format!("/v1/admin/keys?subscription_id={sub}&limit=500"))
        .await
        .expect(200);
    assert!(listed["next_cursor"].is_string());
    let chain = app.admin_get("/v1/admin/audit/verify").await.expect(200);
    assert_eq!(chain["intact"], true);
}

crate::on_both_backends!(
    keys_are_issued_in_bulk_through_the_admin_api,
    lists_page_with_opaque_cursors,
    offers_are_seeded_with_ranks,
    creation_validates_its_input,
    every_collection_answers_get_by_id,
    regenerating_a_revoked_key_still_bumps_ver_when_it_frees_a_binding,
    an_oversized_archive_gets_the_error_envelope,
);
