//! Signed validation tokens: claims match the database, `ver` grows, nonces are echoed,
//! rotation keeps old tokens verifiable.

use crate::helpers::TestApp;
use serde_json::json;

const URL: &str = "https://glpi.example.com";

async fn every_answer_carries_a_token_whose_claims_match_the_database(app: TestApp) {
    let sub = app
        .subscription(
            "standard",
            json!({"begin_date": "2026-01-01", "end_date": "2030-12-31"}),
        )
        .await;
    let (key_id, key) = app.issue_key(&sub).await;
    let reg = app
        .post(
            "/v1/registrations",
            json!({"registration_key": key, "instance_url": URL, "instance_uid": "u".repeat(40), "nonce": "n-reg"}),
        )
        .await
        .expect(201);
    let c = app.verify(reg["token"].as_str().unwrap()).await.unwrap();
    let db_key = app
        .admin_get(&format!("/v1/admin/keys/{key_id}"))
        .await
        .expect(200);
    assert_eq!(c.sub, key_id);
    assert_eq!(c.iss, app.address);
    assert_eq!(c.aud, "glpi-network");
    assert_eq!(c.ver, db_key["ver"].as_i64().unwrap());
    assert_eq!(c.instance_url.as_deref(), Some(URL));
    assert_eq!(c.instance_uid.as_deref(), Some("u".repeat(40).as_str()));
    assert_eq!((c.status.as_str(), c.valid), ("valid", true));
    assert_eq!(
        (c.offer.as_str(), c.offer_title.as_str()),
        ("standard", "GLPI Network Standard")
    );
    assert_eq!(
        c.entitlements,
        ["marketplace", "support", "exclusive_plugins"]
    );
    assert_eq!(c.subscription_begin.as_deref(), Some("2026-01-01"));
    assert_eq!(c.subscription_end.as_deref(), Some("2030-12-31"));
    assert_eq!(c.owner, "ACME Corp");
    assert_eq!(c.nonce.as_deref(), Some("n-reg"));
    assert_eq!((c.iat, c.nbf), (c.iat, c.iat));
    assert_eq!(c.exp - c.iat, 86_400);
    assert_eq!(c.grace_until - c.exp, 7 * 86_400);
    assert!((c.iat - app.clock.now().timestamp()).abs() < 5);

    let v = app
        .post(
            "/v1/validations",
            json!({"registration_key": key, "instance_url": URL, "nonce": "n-val"}),
        )
        .await
        .expect(200);
    let cv = app.verify(v["token"].as_str().unwrap()).await.unwrap();
    assert_eq!(cv.nonce.as_deref(), Some("n-val"));
    assert_ne!(cv.jti, c.jti);
    assert_eq!(cv.ver, c.ver);
    let header = jsonwebtoken::decode_header(v["token"].as_str().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let jwks = app.jwks().await;
    assert!(jwks.find(header.kid.as_deref().unwrap()).is_some());
    // the token never carries the key
    assert!(!String::from_utf8_lossy(&base64_payload(v["token"].as_str().unwrap())).contains(&key));
}

fn base64_payload(token: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap()
}

async fn refusals_are_signed_and_ver_grows_with_every_change(app: TestApp) {
    let sub = app.subscription("basic", json!({})).await;
    let (key_id, key) = app.issue_key(&sub).await;
    let token_of = |a: crate::helpers::Answer| a.body["token"].as_str().unwrap().to_owned();
    let t = token_of(app.register(&key, URL).await);
    let mut last = app.verify(&t).await.unwrap().ver;
    let mut seen = Vec::new();

    app.admin_post(&format!("/v1/admin/subscriptions/{sub}/suspend"), json!({}))
        .await
        .expect(200);
    let c = app
        .verify(&token_of(app.validate(&key, URL).await))
        .await
        .unwrap();
    assert_eq!(
        (c.status.as_str(), c.valid, c.entitlements.len()),
        ("subscription_suspended", false, 0)
    );
    seen.push(("suspend", c.ver));
    app.admin_post(&format!("/v1/admin/subscriptions/{sub}/resume"), json!({}))
        .await
        .expect(200);
    let c = app
        .verify(&token_of(app.validate(&key, URL).await))
        .await
        .unwrap();
    seen.push(("resume", c.ver));
    app.release(&key, URL).await.expect(204);
    let c = app
        .verify(&token_of(app.validate(&key, URL).await))
        .await
        .unwrap();
    assert_eq!((c.status.as_str(), c.valid), ("not_registered", false));
    seen.push(("release", c.ver));
    app.register(&key, URL).await.expect(201);
    app.admin_post(&format!("/v1/admin/keys/{key_id}/revoke"), json!({}))
        .await
        .expect(200);
    let c = app
        .verify(&token_of(app.validate(&key, URL).await))
        .await
        .unwrap();
    assert_eq!((c.status.as_str(), c.valid), ("key_revoked", false));
    seen.push(("revoke", c.ver));
    for (what, ver) in seen {
        assert!(ver > last, "{what}: ver {ver} did not grow past {last}");
        last = ver;
    }

    // regenerate: the old key's ver grows, the new key starts its own counter
    let (k2_id, k2) = app.issue_key(&sub).await;
    app.register(&k2, "https://two.example.com")
        .await
        .expect(201);
    let before = app
        .verify(&token_of(
            app.validate(&k2, "https://two.example.com").await,
        ))
        .await
        .unwrap()
        .ver;
    app.admin_post(&format!("/v1/admin/keys/{k2_id}/regenerate"), json!({}))
        .await
        .expect(201);
    let after = app
        .verify(&token_of(
            app.validate(&k2, "https://two.example.com").await,
        ))
        .await
        .unwrap();
    assert!(after.ver > before);
    assert_eq!(after.status.as_str(), "key_revoked");

    // a key bound elsewhere gets a signed refusal naming the asking instance
    let (_, k3) = app.new_key().await;
    app.register(&k3, "https://three.example.com")
        .await
        .expect(201);
    let c = app
        .verify(&token_of(
            app.validate(&k3, "https://not-three.example.com").await,
        ))
        .await
        .unwrap();
    assert_eq!(
        (c.status.as_str(), c.instance_url.as_deref()),
        ("key_already_bound", Some("https://not-three.example.com"))
    );
    assert_eq!(c.instance_uid, None);
}

async fn an_ended_subscription_keeps_only_the_free_entitlements(app: TestApp) {
    let sub = app.subscription("advanced", json!({"trial_days": 1})).await;
    let (_, key) = app.issue_key(&sub).await;
    app.register(&key, URL).await.expect(201);
    app.clock.advance(3 * 86_400);
    let v = app.validate(&key, URL).await.expect(200);
    let c = app.verify(v["token"].as_str().unwrap()).await.unwrap();
    assert_eq!((c.status.as_str(), c.valid), ("subscription_ended", true));
    assert_eq!(c.entitlements, ["marketplace"]);
    assert_eq!(c.offer, "advanced");
    // the token's times follow the server's (moved) clock
    assert!((c.iat - app.clock.now().timestamp()).abs() < 5);
}

async fn rotation_keeps_old_tokens_verifiable_and_signs_new_ones_with_the_new_kid(app: TestApp) {
    let (_, key) = app.new_key().await;
    let old = app.register(&key, URL).await.expect(201)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();
    let rotated = app
        .admin_post("/v1/admin/signing-keys/rotate", json!({}))
        .await
        .expect(201);
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(rotated["active"], true);
    let jwks = app.jwks().await;
    assert!(jwks.find(&old_kid).is_some() && jwks.find(&new_kid).is_some());
    app.verify(&old)
        .await
        .expect("a token signed before rotation still verifies");
    let fresh = app.validate(&key, URL).await.expect(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        jsonwebtoken::decode_header(&fresh).unwrap().kid.unwrap(),
        new_kid
    );
    app.verify(&fresh).await.unwrap();
    let list = app.admin_get("/v1/admin/signing-keys").await.expect(200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|k| k["published"] == true));
    assert!(!list.to_string().contains("private"));

    // once every token the old key signed is past grace_until, it leaves the JWKS
    app.clock.advance(86_400 + 7 * 86_400 + 60);
    app.admin_post("/v1/admin/signing-keys/rotate", json!({}))
        .await
        .expect(201);
    let jwks = app.jwks().await;
    assert!(
        jwks.find(&old_kid).is_none(),
        "the first key is past its window"
    );
    assert!(
        jwks.find(&new_kid).is_some(),
        "the second key was just retired"
    );
    assert!(app.verify(&old).await.is_err());
}

crate::on_both_backends!(
    every_answer_carries_a_token_whose_claims_match_the_database,
    refusals_are_signed_and_ver_grows_with_every_change,
    an_ended_subscription_keeps_only_the_free_entitlements,
    rotation_keeps_old_tokens_verifiable_and_signs_new_ones_with_the_new_kid,
);
