//! Invitation keys (DESIGN §11.3): the admin API and redemptions that create accounts.

use crate::helpers::TestApp;
use crate::licenses::claims;
use serde_json::json;

async fn redeem(app: &TestApp, key: &str, email: &str) -> crate::helpers::Answer {
    app.post(
        "/v1/invitations/redemptions",
        json!({"invitation_key": key, "email": email, "name": "Ann <Admin>"}),
    )
    .await
}

async fn invitations_create_accounts_once_per_email_up_to_max_uses(app: TestApp) {
    let sub = crate::enrollments::subscriber(&app).await;
    let inv = app
        .admin_post(
            "/v1/admin/invitations",
            json!({"subscriber_id": sub, "role": "manager", "max_uses": 2}),
        )
        .await
        .expect(201);
    let key = inv["key"].as_str().unwrap().to_owned();
    let id = inv["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("INV-"), "{inv}");
    assert_eq!(inv["url"], format!("{}/portal/invite/{key}", app.address));
    assert_eq!(inv["uses"], 0);
    // expires_at defaults to 7 days
    let expires: chrono::DateTime<chrono::Utc> =
        inv["expires_at"].as_str().unwrap().parse().unwrap();
    let days = (expires - app.clock.now()).num_hours();
    assert!((7 * 24 - 1..=7 * 24).contains(&days), "{inv}");

    let first = redeem(&app, &key, "Ann@Example.com").await.expect(201);
    let account = &first["account"];
    assert_eq!(account["email"], "ann@example.com");
    assert_eq!(account["role"], "manager");
    assert_eq!(account["subscriber_id"], sub.as_str());
    assert_eq!(account["name"], "Ann <Admin>");
    for field in ["id", "created_at"] {
        assert!(account[field].is_string(), "{account}");
    }
    let c = claims(first["token"].as_str().unwrap());
    assert_eq!(c["sub"], id.as_str());
    assert_eq!(c["role"], "manager");
    assert_eq!(c["subscriber_id"], sub.as_str());
    assert_eq!(c["email"], "ann@example.com");
    // the same email again (any case): 200, no use taken
    let again = redeem(&app, &key, "ANN@example.COM").await.expect(200);
    assert_eq!(again["account"]["id"], account["id"]);
    redeem(&app, &key, "bob@example.com").await.expect(201);
    redeem(&app, &key, "carol@example.com")
        .await
        .expect_error(409, "invitation_exhausted");
    let shown = app
        .admin_get(&format!("/v1/admin/invitations/{id}"))
        .await
        .expect(200);
    assert_eq!(shown["uses"], 2);
    assert!(shown.get("key").is_none() && shown.get("url").is_none());

    // an email with an account in another subscriber
    let other_sub = crate::enrollments::subscriber(&app).await;
    let other = app
        .admin_post(
            "/v1/admin/invitations",
            json!({"subscriber_id": other_sub, "role": "viewer", "max_uses": 0}),
        )
        .await
        .expect(201);
    let other_key = other["key"].as_str().unwrap().to_owned();
    redeem(&app, &other_key, "ann@example.com")
        .await
        .expect_error(409, "email_taken");
    redeem(&app, &other_key, "not-an-email")
        .await
        .expect_error(400, "invalid_request");
    for i in 0..3 {
        redeem(&app, &other_key, &format!("v{i}@example.com"))
            .await
            .expect(201);
    }
    let listed = app
        .admin_get(&format!("/v1/admin/invitations?subscriber_id={other_sub}"))
        .await
        .expect(200);
    assert_eq!(listed["items"][0]["uses"], 3);
    assert_eq!(listed["items"][0]["max_uses"], 0);

    app.admin_post(
        &format!(
            "/v1/admin/invitations/{}/revoke",
            other["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await
    .expect(200);
    redeem(&app, &other_key, "late@example.com")
        .await
        .expect_error(403, "key_revoked");
    app.clock.advance(8 * 86_400);
    redeem(&app, &key, "ann@example.com")
        .await
        .expect_error(403, "key_expired");
    app.admin_post(
        "/v1/admin/invitations",
        json!({"subscriber_id": sub, "role": "admin"}),
    )
    .await
    .expect_error(400, "invalid_request");

    let audit = app.admin_get("/v1/admin/audit?limit=500").await.expect(200);
    let text = audit.to_string();
    for needle in [
        "invitation.issue",
        "invitation.redeem",
        "invitation_exhausted",
        "email_taken",
        "invitation.revoke",
    ] {
        assert!(text.contains(needle), "{needle} not audited");
    }
    assert!(!text.contains(&key));
}

async fn each_kinds_key_is_unknown_to_every_other_kinds_endpoint(app: TestApp) {
    crate::licenses::commercial_plugin(&app).await;
    let sub = crate::enrollments::subscriber(&app).await;
    let (_, reg) = app.new_key().await;
    let lic = app
        .admin_post(
            "/v1/admin/licenses",
            json!({"subscriber_id": sub, "plugin": "payroll"}),
        )
        .await
        .expect(201)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let enr = app
        .admin_post(
            "/v1/admin/enrollment-keys",
            json!({"subscriber_id": sub, "entity": "E", "max_uses": 0}),
        )
        .await
        .expect(201)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let inv = app
        .admin_post(
            "/v1/admin/invitations",
            json!({"subscriber_id": sub, "role": "viewer", "max_uses": 0}),
        )
        .await
        .expect(201)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = "https://cross.example/glpi";
    type Body = fn(&str) -> serde_json::Value;
    let endpoints: [(&str, &str, Body); 6] = [
        (
            "registration",
            "/v1/registrations",
            |k| json!({"registration_key": k, "instance_url": "https://cross.example/glpi"}),
        ),
        (
            "registration",
            "/v1/validations",
            |k| json!({"registration_key": k, "instance_url": "https://cross.example/glpi"}),
        ),
        (
            "license",
            "/v1/licenses/activations",
            |k| json!({"license_key": k, "instance_url": "https://cross.example/glpi"}),
        ),
        (
            "license",
            "/v1/licenses/validations",
            |k| json!({"license_key": k, "instance_url": "https://cross.example/glpi"}),
        ),
        (
            "enrollment",
            "/v1/enrollments",
            |k| json!({"enrollment_key": k, "agent_id": "agent"}),
        ),
        (
            "invitation",
            "/v1/invitations/redemptions",
            |k| json!({"invitation_key": k, "email": "x@cross.example", "name": "X"}),
        ),
    ];
    let keys = [
        ("registration", &reg),
        ("license", &lic),
        ("enrollment", &enr),
        ("invitation", &inv),
    ];
    for (kind, path, body) in endpoints {
        for (key_kind, key) in keys {
            if kind == key_kind {
                continue;
            }
            let a = app.post(path, body(key)).await;
            assert_eq!(
                (a.status.as_u16(), a.code()),
                (404, "key_not_found"),
                "a {key_kind} key at {path}: {}",
                a.body
            );
        }
    }
    // the registration key still works where it belongs, and nothing was bound by the others
    app.register(&reg, url).await.expect(201);
    // each of those 18 refusals counted as a failed look-up (30 a minute by default): the
    // address is refused `429` once 30 have failed
    let mut failed = 18;
    loop {
        let a = app
            .post(
                "/v1/enrollments",
                json!({"enrollment_key": lic, "agent_id": "a"}),
            )
            .await;
        if a.status.as_u16() == 429 {
            assert_eq!(a.code(), "rate_limited");
            break;
        }
        assert_eq!(a.code(), "key_not_found");
        failed += 1;
        assert!(
            failed <= 30,
            "still not limited after {failed} failed look-ups"
        );
    }
    assert_eq!(failed, 30);
}

crate::on_both_backends!(
    invitations_create_accounts_once_per_email_up_to_max_uses,
    each_kinds_key_is_unknown_to_every_other_kinds_endpoint,
);
