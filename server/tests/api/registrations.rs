//! Binding keys to instances: the lifecycle, conflicts, URL variants, UIDs, statuses.

use crate::helpers::TestApp;
use serde_json::json;

const URL: &str = "https://glpi.example.com/glpi";

async fn a_key_binds_to_one_instance_through_its_whole_lifecycle(app: TestApp) {
    let (key_id, key) = app.new_key().await;
    let (_, other_key) = app.new_key().await;

    // issue -> register
    let body = app
        .register(&key, "https://GLPI.example.com:443/glpi/")
        .await
        .expect(201);
    assert_eq!(body["registration"]["instance_url"], URL);
    assert_eq!(body["registration"]["key_id"], key_id.as_str());
    assert_eq!(body["status"], "valid");
    assert_eq!(body["valid"], true);
    assert!(
        !body.to_string().contains(&key),
        "the plaintext key is never echoed"
    );
    let reg_id = body["registration"]["id"].as_str().unwrap().to_owned();

    // idempotent re-register: 200, same registration
    let again = app.register(&key, URL).await.expect(200);
    assert_eq!(again["registration"]["id"], reg_id.as_str());

    // same key, other URL
    app.register(&key, "https://other.example.com")
        .await
        .expect_error(409, "key_already_bound");
    // other key, same URL and URL variants of it
    for variant in [
        URL,
        "https://glpi.EXAMPLE.com/glpi/",
        "https://glpi.example.com:443/glpi/index.php",
    ] {
        app.register(&other_key, variant)
            .await
            .expect_error(409, "url_already_registered");
    }
    // exactly one active registration
    let regs = app.admin_get("/v1/admin/registrations").await.expect(200);
    assert_eq!(regs["items"].as_array().unwrap().len(), 1);

    // validation
    let v = app
        .validate(&key, "https://glpi.example.com/glpi/index.php")
        .await
        .expect(200);
    assert_eq!(
        (v["valid"].clone(), v["status"].clone()),
        (json!(true), json!("valid"))
    );
    let v = app
        .validate(&key, "https://other.example.com")
        .await
        .expect(200);
    assert_eq!(
        (v["valid"].clone(), v["status"].clone()),
        (json!(false), json!("key_already_bound"))
    );

    // release -> re-register elsewhere
    app.release(&key, "https://other.example.com")
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        app.release(&key, URL).await.expect(204),
        serde_json::Value::Null
    );
    let v = app.validate(&key, URL).await.expect(200);
    assert_eq!(v["status"], "not_registered");
    app.register(&key, "https://elsewhere.example.com")
        .await
        .expect(201);
    // the URL it left is free for another key
    app.register(&other_key, URL).await.expect(201);

    // revoke -> refused
    let revoked = app
        .admin_post(&format!("/v1/admin/keys/{key_id}/revoke"), json!({}))
        .await
        .expect(200);
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked["revoked_at"].is_string());
    app.register(&key, "https://elsewhere.example.com")
        .await
        .expect_error(403, "key_revoked");
    let v = app
        .validate(&key, "https://elsewhere.example.com")
        .await
        .expect(200);
    assert_eq!(
        (v["valid"].clone(), v["status"].clone()),
        (json!(false), json!("key_revoked"))
    );

    // the audit trail saw it all, with prefixes and never the key
    let audit = app.admin_get("/v1/admin/audit?limit=500").await.expect(200);
    let text = audit.to_string();
    assert!(!text.contains(&key) && !text.contains(&other_key));
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
    for want in [
        ("registration.bind", "ok"),
        ("registration.bind", "key_already_bound"),
        ("registration.bind", "url_already_registered"),
        ("registration.release", "ok"),
        ("key.revoke", "ok"),
        ("registration.bind", "key_revoked"),
        ("validation", "key_revoked"),
    ] {
        assert!(
            actions.contains(&(want.0.into(), want.1.into())),
            "missing audit {want:?} in {actions:?}"
        );
    }
}

async fn expiry_and_trial_end_follow_the_clock(app: TestApp) {
    let sub = app.subscription("standard", json!({})).await;
    let expires = (app.clock.now() + chrono::Duration::days(1)).to_rfc3339();
    let k = app
        .admin_post(
            "/v1/admin/keys",
            json!({"subscription_id": sub, "expires_at": expires}),
        )
        .await
        .expect(201);
    let key = k["key"].as_str().unwrap().to_owned();
    app.register(&key, URL).await.expect(201);
    assert_eq!(app.validate(&key, URL).await.expect(200)["status"], "valid");
    app.clock.advance(2 * 86_400);
    let v = app.validate(&key, URL).await.expect(200);
    assert_eq!(
        (v["valid"].clone(), v["status"].clone()),
        (json!(false), json!("key_expired"))
    );
    app.register(&key, URL)
        .await
        .expect_error(403, "key_expired");
    let shown = app
        .admin_get(&format!("/v1/admin/keys/{}", k["id"].as_str().unwrap()))
        .await
        .expect(200);
    assert_eq!(shown["expired"], true);

    // a 14-day trial: valid on day 14, ended (free entitlements kept, so still valid) on day 15
    app.clock.reset();
    let trial = app
        .subscription("advanced", json!({"trial_days": 14}))
        .await;
    let shown = app
        .admin_get(&format!("/v1/admin/subscriptions/{trial}"))
        .await
        .expect(200);
    assert_eq!(shown["trial"], true);
    let begin =
        chrono::NaiveDate::parse_from_str(shown["begin_date"].as_str().unwrap(), "%Y-%m-%d")
            .unwrap();
    assert_eq!(
        shown["end_date"],
        (begin + chrono::Duration::days(14)).to_string()
    );
    let (_, tkey) = app.issue_key(&trial).await;
    let turl = "https://trial.example.com";
    app.register(&tkey, turl).await.expect(201);
    app.clock.advance(14 * 86_400);
    assert_eq!(
        app.validate(&tkey, turl).await.expect(200)["status"],
        "valid"
    );
    app.clock.advance(86_400);
    let v = app.validate(&tkey, turl).await.expect(200);
    assert_eq!(
        (v["valid"].clone(), v["status"].clone()),
        (json!(true), json!("subscription_ended"))
    );
    let shown = app
        .admin_get(&format!("/v1/admin/subscriptions/{trial}"))
        .await
        .expect(200);
    assert_eq!(shown["running"], false);
}

async fn suspension_resume_and_cancellation_change_the_status(app: TestApp) {
    let sub = app.subscription("basic", json!({})).await;
    let (key_id, key) = app.issue_key(&sub).await;
    app.register(&key, URL).await.expect(201);
    let v0 = app.key_ver(&key_id).await;

    let s = app
        .admin_post(&format!("/v1/admin/subscriptions/{sub}/suspend"), json!({}))
        .await
        .expect(200);
    assert_eq!(s["status"], "suspended");
    let v = app.validate(&key, URL).await.expect(200);
    assert_eq!(
        (v["valid"].clone(), v["status"].clone()),
        (json!(false), json!("subscription_suspended"))
    );
    let v1 = app.key_ver(&key_id).await;
    assert!(v1 > v0, "suspend bumps ver");
    // suspending again is idempotent and does not bump ver
    app.admin_post(&format!("/v1/admin/subscriptions/{sub}/suspend"), json!({}))
        .await
        .expect(200);
    assert_eq!(app.key_ver(&key_id).await, v1);

    let s = app
        .admin_post(&format!("/v1/admin/subscriptions/{sub}/resume"), json!({}))
        .await
        .expect(200);
    assert_eq!(s["status"], "active");
    assert_eq!(app.validate(&key, URL).await.expect(200)["status"], "valid");
    let v2 = app.key_ver(&key_id).await;
    assert!(v2 > v1, "resume bumps ver");

    let s = app
        .admin_post(&format!("/v1/admin/subscriptions/{sub}/cancel"), json!({}))
        .await
        .expect(200);
    assert_eq!(s["status"], "cancelled");
    let v = app.validate(&key, URL).await.expect(200);
    assert_eq!(
        (v["valid"].clone(), v["status"].clone()),
        (json!(true), json!("subscription_ended"))
    );
    app.admin_post(&format!("/v1/admin/subscriptions/{sub}/resume"), json!({}))
        .await
        .expect_error(409, "conflict");
    app.admin_post("/v1/admin/subscriptions/nope/suspend", json!({}))
        .await
        .expect_error(404, "not_found");
}

async fn regenerating_a_key_revokes_it_and_frees_its_instance(app: TestApp) {
    let (old_id, old_key) = app.new_key().await;
    app.register(&old_key, URL).await.expect(201);
    let v0 = app.key_ver(&old_id).await;

    let new = app
        .admin_post(&format!("/v1/admin/keys/{old_id}/regenerate"), json!({}))
        .await
        .expect(201);
    let new_key = new["key"].as_str().unwrap().to_owned();
    assert_ne!(new["id"].as_str().unwrap(), old_id);
    assert_ne!(new_key, old_key);
    let old = app
        .admin_get(&format!("/v1/admin/keys/{old_id}"))
        .await
        .expect(200);
    assert_eq!(old["status"], "revoked");
    assert_eq!(old["replaced_by"], new["id"]);
    assert!(old.get("key").is_none(), "the plaintext is shown only once");
    assert!(old["ver"].as_i64().unwrap() > v0);

    // the old binding is released, so the new key takes the same instance
    assert_eq!(
        app.validate(&old_key, URL).await.expect(200)["status"],
        "key_revoked"
    );
    app.register(&new_key, URL).await.expect(201);
    app.admin_post(&format!("/v1/admin/keys/{old_id}/regenerate"), json!({}))
        .await
        .expect_error(409, "conflict");
}

async fn uid_bindings_are_exclusive_and_merge_with_urls(app: TestApp) {
    let (key_id, key) = app.new_key().await;
    let (_, other) = app.new_key().await;
    let uid = "a".repeat(40);
    let body = app
        .post(
            "/v1/registrations",
            json!({"registration_key": key, "instance_url": URL, "instance_uid": uid}),
        )
        .await
        .expect(201);
    assert_eq!(body["registration"]["instance_uid"], uid.as_str());
    app.post(
        "/v1/registrations",
        json!({"registration_key": other, "instance_url": "https://x.example.com", "instance_uid": uid}),
    )
    .await
    .expect_error(409, "uid_already_registered");
    // same key, same URL, another UID: bound elsewhere
    app.post(
        "/v1/registrations",
        json!({"registration_key": key, "instance_url": URL, "instance_uid": "b".repeat(40)}),
    )
    .await
    .expect_error(409, "key_already_bound");
    // the same key re-registered without the UID keeps it
    let again = app.register(&key, URL).await.expect(200);
    assert_eq!(again["registration"]["instance_uid"], uid.as_str());
    // a bad UID is refused before any look-up
    app.post(
        "/v1/registrations",
        json!({"registration_key": key, "instance_url": URL, "instance_uid": "x y"}),
    )
    .await
    .expect_error(400, "invalid_request");

    // a URL-only binding gains the UID on a later registration: same registration, 200, ver bumped
    let (k3_id, k3) = app.new_key().await;
    let u3 = "https://three.example.com";
    let first = app.register(&k3, u3).await.expect(201);
    let v = app.key_ver(&k3_id).await;
    let merged = app
        .post(
            "/v1/registrations",
            json!({"registration_key": k3, "instance_url": u3, "instance_uid": "c".repeat(40)}),
        )
        .await
        .expect(200);
    assert_eq!(merged["registration"]["id"], first["registration"]["id"]);
    assert_eq!(merged["registration"]["instance_uid"], "c".repeat(40));
    assert!(app.key_ver(&k3_id).await > v);
    let _ = key_id;
}

async fn ver_grows_on_every_change_of_key_subscription_or_binding(app: TestApp) {
    let sub = app.subscription("basic", json!({})).await;
    let (key_id, key) = app.issue_key(&sub).await;
    let mut last = app.key_ver(&key_id).await;
    let mut step = |name: &'static str, v: i64| {
        assert!(v > last, "{name} must bump ver ({v} <= {last})");
        last = v;
    };
    app.register(&key, URL).await.expect(201);
    step("bind", app.key_ver(&key_id).await);
    app.release(&key, URL).await.expect(204);
    step("release", app.key_ver(&key_id).await);
    app.register(&key, URL).await.expect(201);
    step("bind again", app.key_ver(&key_id).await);
    app.admin_post(&format!("/v1/admin/subscriptions/{sub}/suspend"), json!({}))
        .await
        .expect(200);
    step("suspend", app.key_ver(&key_id).await);
    app.admin_post(&format!("/v1/admin/subscriptions/{sub}/resume"), json!({}))
        .await
        .expect(200);
    step("resume", app.key_ver(&key_id).await);
    let regs = app
        .admin_get(&format!("/v1/admin/registrations?key_id={key_id}"))
        .await
        .expect(200);
    let reg_id = regs["items"][0]["id"].as_str().unwrap().to_owned();
    app.admin_delete(&format!("/v1/admin/registrations/{reg_id}"))
        .await
        .expect(204);
    step("admin release", app.key_ver(&key_id).await);
    let shown = app
        .admin_get(&format!("/v1/admin/registrations/{reg_id}"))
        .await
        .expect(200);
    assert!(shown["released_at"].is_string());
    app.admin_post(&format!("/v1/admin/keys/{key_id}/revoke"), json!({}))
        .await
        .expect(200);
    step("revoke", app.key_ver(&key_id).await);
}

crate::on_both_backends!(
    a_key_binds_to_one_instance_through_its_whole_lifecycle,
    expiry_and_trial_end_follow_the_clock,
    suspension_resume_and_cancellation_change_the_status,
    regenerating_a_key_revokes_it_and_frees_its_instance,
    uid_bindings_are_exclusive_and_merge_with_urls,
    ver_grows_on_every_change_of_key_subscription_or_binding,
);
