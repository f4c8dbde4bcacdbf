//! GLPI wire compatibility (protocol §4, §5, §6, §13): the exact requests a GLPI 10.0/11
//! instance sends, and every field it reads.

use crate::helpers::{Answer, TestApp};
use serde_json::{Value, json};
use std::io::{Read, Write};

const UID: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";
const UID2: &str = "ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210zyxw";

/// Sends a raw HTTP/1.1 request with header lines exactly as given (GLPI's curl sends some
/// without a space after the colon) and returns (status, body). Runs on the blocking pool so
/// the test's runtime keeps driving the server.
async fn raw(app: &TestApp, path: &str, header_lines: &[&str]) -> (u16, String) {
    let addr = app.address.trim_start_matches("http://").to_owned();
    let path = path.to_owned();
    let lines: Vec<String> = header_lines.iter().map(|l| (*l).to_owned()).collect();
    actix_web::rt::task::spawn_blocking(move || raw_blocking(&addr, &path, &lines))
        .await
        .unwrap()
}

fn raw_blocking(addr: &str, path: &str, header_lines: &[String]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in header_lines {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// GLPI's `/info` call, header lines as in protocol §4.2.
pub(crate) async fn info(app: &TestApp, key: &str, uid: &str, lang: &str) -> Value {
    let lines = [
        "Accept:application/json".to_owned(),
        format!("Accept-Language: {lang}"),
        "Content-Type:application/json".to_owned(),
        "User-Agent:GLPI/10.0.18 (installation-mode:TARBALL)".to_owned(),
        format!("X-Registration-Key:{key}"),
        format!("X-Glpi-Network-Uid:{uid}"),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let (status, body) = raw(app, "/api/registration/info", &refs).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    // the keys GLPI reads without a guard are always there
    assert!(v["is_valid"].is_boolean(), "{v}");
    assert!(
        v.get("owner").is_some() && v.get("subscription").is_some(),
        "{v}"
    );
    assert!(v["validation_message"].is_string());
    v
}

async fn availability_checks_answer_non_empty_bodies_on_both_paths(app: TestApp) {
    for path in ["/api/ping", "/api/registration/", "/api/registration"] {
        let (status, body) = raw(&app, path, &["User-Agent:GLPI/10.0.18"]).await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.is_empty() && body != "0");
        serde_json::from_str::<Value>(&body).unwrap();
    }
    let (status, body) = raw(
        &app,
        "/api/registration/offers",
        &["Accept:application/json", "Accept-Language: en"],
    )
    .await;
    assert_eq!(status, 200);
    let offers: Vec<Value> = serde_json::from_str(&body).unwrap();
    let refs: Vec<(&str, &str)> = offers
        .iter()
        .map(|o| {
            (
                o["offer_reference"].as_str().unwrap(),
                o["title"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(refs.contains(&("basic", "GLPI Network Basic")));
    assert!(refs.contains(&("standard", "GLPI Network Standard")));
    assert!(refs.contains(&("advanced", "GLPI Network Advanced")));
}

async fn info_binds_the_first_uid_and_refuses_another(app: TestApp) {
    let sub = app
        .subscription(
            "basic",
            json!({"begin_date": "2026-01-01", "end_date": "2099-12-31"}),
        )
        .await;
    let (key_id, key) = app.issue_key(&sub).await;
    let v = info(&app, &key, UID, "en").await;
    assert_eq!(v["is_valid"], true);
    assert_eq!(v["validation_message"], "The registration key is valid.");
    assert_eq!(v["owner"], json!({"name": "ACME Corp"}));
    assert_eq!(
        v["subscription"],
        json!({"title": "GLPI Network Basic", "offer_reference": "basic", "is_running": true,
               "begin_date": "2026-01-01", "end_date": "2099-12-31"})
    );
    // the binding exists, by UID only
    let regs = app
        .admin_get(&format!("/v1/admin/registrations?key_id={key_id}"))
        .await
        .expect(200);
    assert_eq!(regs["items"][0]["instance_uid"], UID);
    assert_eq!(regs["items"][0]["instance_url"], Value::Null);
    // the same UID again: still valid, no second row
    assert_eq!(
        info(&app, &key, UID, "fr").await["validation_message"],
        "La clé d'enregistrement est valide."
    );
    // another instance with the same key
    let other = info(&app, &key, UID2, "en").await;
    assert_eq!(other["is_valid"], false);
    assert_eq!(
        other["validation_message"],
        "This registration key is already used by another GLPI instance."
    );
    assert_eq!(
        (other["owner"].clone(), other["subscription"].clone()),
        (Value::Null, Value::Null)
    );
    let fr = info(&app, &key, UID2, "fr").await;
    assert_eq!(
        fr["validation_message"],
        "Cette clé d'enregistrement est déjà utilisée par une autre instance GLPI."
    );
    // another key from the bound instance
    let (_, key2) = app.issue_key(&sub).await;
    let taken = info(&app, &key2, UID, "en").await;
    assert_eq!(
        (
            taken["is_valid"].clone(),
            taken["validation_message"].clone()
        ),
        (
            json!(false),
            json!("This GLPI instance is already registered with another key.")
        )
    );
    // every call left an audit event (bind, refusals)
    let audit = app.admin_get("/v1/admin/audit?limit=500").await.expect(200);
    let glpi: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "glpi")
        .collect();
    assert!(
        glpi.iter()
            .any(|e| e["outcome"] == "ok" && e["instance_uid"] == UID)
    );
    assert!(
        glpi.iter()
            .any(|e| e["outcome"] == "key_already_bound" && e["instance_uid"] == UID2)
    );
    assert!(
        glpi.iter()
            .any(|e| e["outcome"] == "uid_already_registered")
    );
    assert_eq!(
        app.admin_get("/v1/admin/registrations").await.expect(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn info_attaches_the_uid_to_a_url_binding_and_the_url_then_merges(app: TestApp) {
    let (key_id, key) = app.new_key().await;
    app.register(&key, "https://glpi.example.com")
        .await
        .expect(201);
    assert_eq!(info(&app, &key, UID, "en").await["is_valid"], true);
    let regs = app
        .admin_get(&format!("/v1/admin/registrations?key_id={key_id}"))
        .await
        .expect(200);
    let items = regs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (
            items[0]["instance_url"].as_str(),
            items[0]["instance_uid"].as_str()
        ),
        (Some("https://glpi.example.com"), Some(UID))
    );

    // the reverse: a UID-only binding gains the URL on the native API (200, same registration)
    let (k2_id, k2) = app.new_key().await;
    assert_eq!(info(&app, &k2, UID2, "en").await["is_valid"], true);
    let r = app
        .register(&k2, "https://two.example.com")
        .await
        .expect(200);
    assert_eq!(r["registration"]["instance_uid"], UID2);
    let regs = app
        .admin_get(&format!("/v1/admin/registrations?key_id={k2_id}"))
        .await
        .expect(200);
    assert_eq!(regs["items"].as_array().unwrap().len(), 1);
}

async fn refused_keys_answer_as_glpi_expects(app: TestApp) {
    let none = info(&app, "no-such-key", UID, "en").await;
    assert_eq!(
        (none["is_valid"].clone(), none["validation_message"].clone()),
        (json!(false), json!("Invalid registration key."))
    );
    let fr = info(&app, "no-such-key", UID, "fr_FR").await;
    assert_eq!(fr["validation_message"], "Clé d'enregistrement invalide.");
    // a typo in a generated key is refused the same way
    let (_, key) = app.new_key().await;
    let typo = format!(
        "{}{}",
        &key[..key.len() - 1],
        if key.ends_with('A') { 'B' } else { 'A' }
    );
    assert_eq!(
        info(&app, &typo, UID, "en").await["validation_message"],
        "Invalid registration key."
    );
    // no key header at all
    let (status, body) = raw(&app, "/api/registration/info", &["Accept:application/json"]).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["is_valid"],
        false
    );

    // revoked
    let (rid, rkey) = app.new_key().await;
    app.admin_post(&format!("/v1/admin/keys/{rid}/revoke"), json!({}))
        .await
        .expect(200);
    let v = info(&app, &rkey, UID, "en").await;
    assert_eq!(
        (v["is_valid"].clone(), v["validation_message"].clone()),
        (
            json!(false),
            json!("This registration key has been revoked.")
        )
    );
    // expired
    let sub = app.subscription("basic", json!({})).await;
    let exp = (app.clock.now() + chrono::Duration::hours(1)).to_rfc3339();
    let k = app
        .admin_post(
            "/v1/admin/keys",
            json!({"subscription_id": sub, "expires_at": exp}),
        )
        .await
        .expect(201);
    app.clock.advance(7200);
    let v = info(&app, k["key"].as_str().unwrap(), UID2, "en").await;
    assert_eq!(
        (v["is_valid"].clone(), v["validation_message"].clone()),
        (json!(false), json!("This registration key has expired."))
    );
    app.clock.reset();

    // suspended and ended: valid key, subscription not running ("terminated" in GLPI)
    let sus = app.subscription("standard", json!({})).await;
    let (_, skey) = app.issue_key(&sus).await;
    app.admin_post(&format!("/v1/admin/subscriptions/{sus}/suspend"), json!({}))
        .await
        .expect(200);
    let v = info(
        &app,
        &skey,
        "suspended0000000000000000000000000000000",
        "en",
    )
    .await;
    assert_eq!(v["is_valid"], true);
    assert_eq!(v["subscription"]["is_running"], false);
    assert_eq!(
        v["validation_message"],
        "The registration key is valid but its subscription is suspended."
    );
    let ended = app
        .subscription(
            "advanced",
            json!({"begin_date": "2020-01-01", "end_date": "2020-12-31"}),
        )
        .await;
    let (_, ekey) = app.issue_key(&ended).await;
    let v = info(
        &app,
        &ekey,
        "ended000000000000000000000000000000000000",
        "fr",
    )
    .await;
    assert_eq!(v["is_valid"], true);
    assert_eq!(v["subscription"]["is_running"], false);
    assert_eq!(v["subscription"]["end_date"], "2020-12-31");
    assert_eq!(
        v["validation_message"],
        "La clé d'enregistrement est valide mais son abonnement est terminé."
    );
}

/// The marketplace headers GLPI's Guzzle client sends (§3b).
fn mp_headers(key: &str, uid: &str) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("accept", "application/json".parse().unwrap());
    h.insert(
        "user-agent",
        "GLPI/11.0.1 (installation-mode:TARBALL)".parse().unwrap(),
    );
    h.insert("x-registration-key", key.parse().unwrap());
    h.insert("x-glpi-network-uid", uid.parse().unwrap());
    h
}

async fn mp_get(app: &TestApp, path: &str, key: &str, uid: &str, range: Option<&str>) -> Answer {
    let mut req = app.client.get(app.url(path)).headers(mp_headers(key, uid));
    if let Some(r) = range {
        req = req.header("X-Range", r);
    }
    Answer::from(req.send().await.unwrap()).await
}

/// GLPI's pagination loop: pages of `size` until `[]`.
async fn all_pages(app: &TestApp, path: &str, key: &str, uid: &str, size: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for page in 0.. {
        let range = format!("{}-{}", page * size, page * size + size - 1);
        let body = mp_get(app, path, key, uid, Some(&range)).await.expect(200);
        let items = body.as_array().expect("every page is a JSON array").clone();
        if items.is_empty() {
            break;
        }
        assert!(page < 100, "pagination never ended");
        out.extend(items);
    }
    out
}

async fn the_marketplace_pages_with_x_range_and_gates_exclusive_plugins(app: TestApp) {
    let basic = app.subscription("basic", json!({})).await;
    let (_, bkey) = app.issue_key(&basic).await;
    let standard = app.subscription("standard", json!({})).await;
    let (_, skey) = app.issue_key(&standard).await;
    assert_eq!(info(&app, &bkey, UID, "en").await["is_valid"], true);
    assert_eq!(info(&app, &skey, UID2, "en").await["is_valid"], true);

    for prefix in ["/api/marketplace", "/api/glpi-plugins"] {
        let path = format!("{prefix}/plugins");
        let all = all_pages(&app, &path, &skey, UID2, 1).await;
        let keys: Vec<&str> = all.iter().map(|p| p["key"].as_str().unwrap()).collect();
        assert_eq!(
            keys,
            ["hello", "inventorytools", "reports"],
            "demo plugins are seeded"
        );
        for p in &all {
            for f in [
                "key",
                "name",
                "logo_url",
                "homepage_url",
                "issues_url",
                "readme_url",
                "changelog_url",
                "license",
                "date_added",
                "date_updated",
            ] {
                assert!(p[f].is_string(), "{f} must be a string in {p}");
            }
            assert!(
                p["versions"].is_array() && p["descriptions"].is_array() && p["authors"].is_array()
            );
            assert!(p["note"].is_number() && p["download_count"].is_number());
            for v in p["versions"].as_array().unwrap() {
                let url = v["download_url"].as_str().unwrap();
                assert!(url.starts_with(&app.address), "absolute URL: {url}");
                assert!(url.ends_with(&format!(
                    "/{}-{}.tar.gz",
                    p["key"].as_str().unwrap(),
                    v["num"].as_str().unwrap()
                )));
            }
        }
        let hello = &all[0];
        assert_eq!(hello["required_offers"], Value::Null);
        let reports = &all[2];
        assert_eq!(reports["required_offers"], json!(["standard", "advanced"]));
        assert_eq!(
            reports["versions"].as_array().unwrap().len(),
            1,
            "standard unlocks the exclusive plugin"
        );
        // a basic key sees the exclusive plugin without versions
        let basic_view = all_pages(&app, &path, &bkey, UID, 200).await;
        assert_eq!(basic_view.len(), 3);
        assert_eq!(basic_view[2]["versions"], json!([]));
        assert_eq!(basic_view[0]["versions"].as_array().unwrap().len(), 2);
        // past the end
        assert_eq!(
            mp_get(&app, &path, &skey, UID2, Some("200-399"))
                .await
                .expect(200),
            json!([])
        );
        // without X-Range: the first page
        assert_eq!(
            mp_get(&app, &path, &skey, UID2, None)
                .await
                .expect(200)
                .as_array()
                .unwrap()
                .len(),
            3
        );
        mp_get(&app, &path, &skey, UID2, Some("5-2"))
            .await
            .expect_error(400, "invalid_request");

        // tags
        let top = mp_get(&app, &format!("{prefix}/tags/top"), &skey, UID2, None)
            .await
            .expect(200);
        let top_keys: Vec<&str> = top
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap())
            .collect();
        assert_eq!(&top_keys[..2], ["demo", "tools"]);
        assert!(top.as_array().unwrap().iter().all(|t| t["tag"].is_string()));
        let tagged = all_pages(
            &app,
            &format!("{prefix}/tags/tools/plugin"),
            &skey,
            UID2,
            200,
        )
        .await;
        let tagged: Vec<&str> = tagged.iter().map(|p| p["key"].as_str().unwrap()).collect();
        assert_eq!(tagged, ["hello", "inventorytools"]);
        assert_eq!(
            mp_get(
                &app,
                &format!("{prefix}/tags/nothing/plugin"),
                &skey,
                UID2,
                Some("0-199")
            )
            .await
            .expect(200),
            json!([])
        );
    }

    // archives: free for any valid key, exclusive only for a running listed offer
    let resp = app
        .client
        .get(app.url("/api/marketplace/archives/reports-2.0.0.tar.gz"))
        .headers(mp_headers(&skey, UID2))
        .header("accept", "application/json, */*")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/gzip");
    let bytes = resp.bytes().await.unwrap();
    let paths = glpi_network_server::domain::archive::paths(&bytes);
    assert!(paths.contains(&"reports/setup.php".to_owned()), "{paths:?}");
    glpi_network_server::domain::archive::check("reports", &bytes).unwrap();
    mp_get(
        &app,
        "/api/marketplace/archives/reports-2.0.0.tar.gz",
        &bkey,
        UID,
        None,
    )
    .await
    .expect_error(403, "offer_required");
    let r = app
        .client
        .get(app.url("/api/marketplace/archives/hello-1.0.0.tar.gz"))
        .headers(mp_headers(&bkey, UID))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    mp_get(
        &app,
        "/api/marketplace/archives/hello-9.9.9.tar.gz",
        &bkey,
        UID,
        None,
    )
    .await
    .expect_error(404, "not_found");

    // the download counter
    let before =
        all_pages(&app, "/api/marketplace/plugins", &bkey, UID, 200).await[0]["download_count"]
            .as_i64()
            .unwrap();
    mp_get(
        &app,
        "/api/marketplace/plugin/hello/download/1.0.0",
        &bkey,
        UID,
        None,
    )
    .await
    .expect(200);
    let after =
        all_pages(&app, "/api/marketplace/plugins", &bkey, UID, 200).await[0]["download_count"]
            .as_i64()
            .unwrap();
    assert_eq!(after, before + 1);
    mp_get(
        &app,
        "/api/marketplace/plugin/nope/download/1.0.0",
        &bkey,
        UID,
        None,
    )
    .await
    .expect_error(404, "not_found");

    // a suspended subscription loses the exclusive archive
    app.admin_post(
        &format!("/v1/admin/subscriptions/{standard}/suspend"),
        json!({}),
    )
    .await
    .expect(200);
    mp_get(
        &app,
        "/api/marketplace/archives/reports-2.0.0.tar.gz",
        &skey,
        UID2,
        None,
    )
    .await
    .expect_error(403, "offer_required");
}

async fn the_marketplace_refuses_keys_that_info_calls_invalid(app: TestApp) {
    let (kid, key) = app.new_key().await;
    assert_eq!(info(&app, &key, UID, "en").await["is_valid"], true);
    for path in [
        "/api/marketplace/plugins",
        "/api/glpi-plugins/plugins",
        "/api/marketplace/tags/top",
        "/api/marketplace/archives/hello-1.0.0.tar.gz",
    ] {
        mp_get(&app, path, "unknown-key", UID, Some("0-199"))
            .await
            .expect_error(401, "unauthorized");
        mp_get(&app, path, &key, UID2, Some("0-199"))
            .await
            .expect_error(401, "unauthorized");
        let ok = app
            .client
            .get(app.url(path))
            .headers(mp_headers(&key, UID))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{path}");
    }
    let r = app
        .client
        .get(app.url("/api/marketplace/plugins"))
        .send()
        .await
        .unwrap();
    Answer::from(r).await.expect_error(401, "unauthorized");
    app.admin_post(&format!("/v1/admin/keys/{kid}/revoke"), json!({}))
        .await
        .expect(200);
    mp_get(&app, "/api/marketplace/plugins", &key, UID, Some("0-199"))
        .await
        .expect_error(401, "unauthorized");
}

async fn the_plugin_catalogue_is_managed_through_the_admin_api(app: TestApp) {
    let created = app
        .admin_post(
            "/v1/admin/plugins",
            json!({"key": "myplugin", "name": "My Plugin", "required_offers": ["advanced"],
                   "descriptions": [{"lang": "en", "short_description": "Does things", "long_description": "Many"}],
                   "tags": [{"key": "tools", "tag": "Tools"}]}),
        )
        .await
        .expect(201);
    assert_eq!(created["required_offers"], json!(["advanced"]));
    assert_eq!(created["logo_url"], "");
    app.admin_post(
        "/v1/admin/plugins",
        json!({"key": "myplugin", "name": "Again"}),
    )
    .await
    .expect_error(409, "conflict");
    app.admin_post("/v1/admin/plugins", json!({"key": "Bad-Key", "name": "x"}))
        .await
        .expect_error(400, "invalid_request");
    app.admin_post(
        "/v1/admin/plugins",
        json!({"key": "x", "name": "x", "required_offers": ["gold"]}),
    )
    .await
    .expect_error(400, "invalid_request");

    // a generated version (JSON body) and an uploaded one (gzip body)
    let v1 = app
        .admin_post(
            "/v1/admin/plugins/myplugin/versions",
            json!({"num": "1.0.0", "stability": "stable"}),
        )
        .await
        .expect(201);
    assert!(
        v1["download_url"]
            .as_str()
            .unwrap()
            .ends_with("/api/marketplace/archives/myplugin-1.0.0.tar.gz")
    );
    let upload = glpi_network_server::domain::archive::generate("myplugin", "My Plugin", "1.1.0");
    let resp = app
        .client
        .post(app.url("/v1/admin/plugins/myplugin/versions?num=1.1.0&stability=stable"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/gzip")
        .body(upload.clone())
        .send()
        .await
        .unwrap();
    Answer::from(resp).await.expect(201);
    // a bad archive is refused and nothing is written
    let wrong = glpi_network_server::domain::archive::generate("other", "Other", "1.2.0");
    let resp = app
        .client
        .post(app.url("/v1/admin/plugins/myplugin/versions?num=1.2.0"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/gzip")
        .body(wrong)
        .send()
        .await
        .unwrap();
    Answer::from(resp)
        .await
        .expect_error(400, "invalid_request");
    app.admin_post(
        "/v1/admin/plugins/myplugin/versions",
        json!({"num": "1.0.0"}),
    )
    .await
    .expect_error(409, "conflict");
    let shown = app
        .admin_get("/v1/admin/plugins/myplugin")
        .await
        .expect(200);
    let nums: Vec<&str> = shown["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["num"].as_str().unwrap())
        .collect();
    assert_eq!(nums, ["1.0.0", "1.1.0"]);

    // the uploaded bytes are served as they were uploaded, to an advanced key
    let adv = app.subscription("advanced", json!({})).await;
    let (_, akey) = app.issue_key(&adv).await;
    assert_eq!(info(&app, &akey, UID, "en").await["is_valid"], true);
    let served = app
        .client
        .get(app.url("/api/marketplace/archives/myplugin-1.1.0.tar.gz"))
        .headers(mp_headers(&akey, UID))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(served.as_ref(), upload.as_slice());

    // update: make it free again with an explicit null
    let resp = app
        .client
        .put(app.url("/v1/admin/plugins/myplugin"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"required_offers": null, "note": 3.5}))
        .send()
        .await
        .unwrap();
    let updated = Answer::from(resp).await.expect(200);
    assert_eq!(
        (updated["required_offers"].clone(), updated["note"].clone()),
        (Value::Null, json!(3.5))
    );
    assert_eq!(updated["name"], "My Plugin", "fields not sent are kept");

    // delete
    app.admin_delete("/v1/admin/plugins/myplugin")
        .await
        .expect(204);
    app.admin_get("/v1/admin/plugins/myplugin")
        .await
        .expect_error(404, "not_found");
    app.admin_delete("/v1/admin/plugins/myplugin")
        .await
        .expect_error(404, "not_found");
    let list = app.admin_get("/v1/admin/plugins?limit=2").await.expect(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(list["next_cursor"].is_string());
}

crate::on_both_backends!(
    availability_checks_answer_non_empty_bodies_on_both_paths,
    info_binds_the_first_uid_and_refuses_another,
    info_attaches_the_uid_to_a_url_binding_and_the_url_then_merges,
    refused_keys_answer_as_glpi_expects,
    the_marketplace_pages_with_x_range_and_gates_exclusive_plugins,
    the_marketplace_refuses_keys_that_info_calls_invalid,
    the_plugin_catalogue_is_managed_through_the_admin_api,
);

/// Protocol §15, one regression test per key problem on the registration endpoints. GLPI 12's
/// HTTP client throws on every 4xx (and GLPI caches no failed answer), so each problem answers
/// `200` with GLPI's shape: `is_valid: false` with a message for a key GLPI must not use, and
/// `is_valid: true` with `subscription.is_running: false` for a valid key whose subscription is
/// suspended, ended or cancelled (DESIGN §8, Statuses). Every answer is asked by GLPI 10, 11 and
/// 12 user agents, twice (the second may come from the key cache). A failure of the server
/// itself answers a 5xx, which GLPI neither caches nor shows as a key problem.
mod key_problems {
    use super::{UID, UID2, raw};
    use crate::helpers::TestApp;
    use serde_json::{Value, json};

    const AGENTS: [&str; 3] = [
        "GLPI/10.0.18 (installation-mode:TARBALL)",
        "GLPI/11.0.1 (installation-mode:TARBALL)",
        "GLPI/12.0.0-dev (installation-mode:GIT)",
    ];

    /// GLPI's `/info` call from each agent, twice: every answer is `200` and the same JSON.
    async fn ask(app: &TestApp, key: Option<&str>, uid: &str) -> Value {
        let mut first: Option<Value> = None;
        for agent in AGENTS {
            for _ in 0..2 {
                let mut lines = vec![
                    "Accept:application/json".to_owned(),
                    "Accept-Language: en".to_owned(),
                    "Content-Type:application/json".to_owned(),
                    format!("User-Agent:{agent}"),
                    format!("X-Glpi-Network-Uid:{uid}"),
                ];
                if let Some(k) = key {
                    lines.push(format!("X-Registration-Key:{k}"));
                }
                let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
                let (status, body) = raw(app, "/api/registration/info", &refs).await;
                assert_eq!(status, 200, "{agent}: {body}");
                let v: Value = serde_json::from_str(&body).unwrap();
                match &first {
                    None => first = Some(v),
                    Some(f) => assert_eq!(&v, f, "{agent}"),
                }
            }
        }
        // the availability check GLPI makes with the same headers answers 200 too
        let (status, _) = raw(
            app,
            "/api/registration/",
            &[&format!("X-Registration-Key:{}", key.unwrap_or("-"))],
        )
        .await;
        assert_eq!(status, 200);
        first.unwrap()
    }

    /// `200`, `is_valid: false`, this message, and no owner or subscription.
    async fn refused(app: &TestApp, key: Option<&str>, uid: &str, message: &str) {
        let v = ask(app, key, uid).await;
        assert_eq!(v["is_valid"], false, "{v}");
        assert_eq!(v["validation_message"], message, "{v}");
        assert_eq!(
            (&v["owner"], &v["subscription"]),
            (&Value::Null, &Value::Null)
        );
    }

    /// `200`, `is_valid: true`, the subscription shown as not running, with this message.
    async fn not_running(app: &TestApp, key: &str, uid: &str, message: &str) -> Value {
        let v = ask(app, Some(key), uid).await;
        assert_eq!(v["is_valid"], true, "{v}");
        assert_eq!(v["subscription"]["is_running"], false, "{v}");
        assert_eq!(v["validation_message"], message, "{v}");
        assert_eq!(v["owner"], json!({"name": "ACME Corp"}));
        v
    }

    async fn valid(app: &TestApp, key: &str, uid: &str) {
        let v = ask(app, Some(key), uid).await;
        assert_eq!(
            (&v["is_valid"], &v["subscription"]["is_running"]),
            (&json!(true), &json!(true)),
            "{v}"
        );
    }

    async fn a_malformed_key_is_not_valid(app: TestApp) {
        let (_, key) = app.new_key().await;
        // a typo in a generated key fails its checksum before any look-up
        let last = if key.ends_with('A') { 'B' } else { 'A' };
        let typo = format!("{}{last}", &key[..key.len() - 1]);
        refused(&app, Some(&typo), UID, "Invalid registration key.").await;
        // a group too many
        refused(
            &app,
            Some(&format!("{key}-AAAA")),
            UID,
            "Invalid registration key.",
        )
        .await;
        // no key at all
        refused(&app, None, UID, "No registration key was sent.").await;
        // the real key still works from the same address
        valid(&app, &key, UID).await;
    }

    async fn an_unknown_key_is_not_valid(app: TestApp) {
        refused(&app, Some("no-such-key"), UID, "Invalid registration key.").await;
        refused(&app, Some("GLPI-0000"), UID2, "Invalid registration key.").await;
    }

    async fn a_revoked_key_is_not_valid(app: TestApp) {
        let (id, key) = app.new_key().await;
        valid(&app, &key, UID).await;
        app.admin_post(&format!("/v1/admin/keys/{id}/revoke"), json!({}))
            .await
            .expect(200);
        refused(
            &app,
            Some(&key),
            UID,
            "This registration key has been revoked.",
        )
        .await;
        // regenerating revokes the old key too
        let (id2, key2) = app.new_key().await;
        valid(&app, &key2, UID2).await;
        app.admin_post(&format!("/v1/admin/keys/{id2}/regenerate"), json!({}))
            .await
            .expect(201);
        refused(
            &app,
            Some(&key2),
            UID2,
            "This registration key has been revoked.",
        )
        .await;
    }

    async fn an_expired_key_is_not_valid(app: TestApp) {
        let sub = app.subscription("basic", json!({})).await;
        let exp = (app.clock.now() + chrono::Duration::hours(1)).to_rfc3339();
        let k = app
            .admin_post(
                "/v1/admin/keys",
                json!({"subscription_id": sub, "expires_at": exp}),
            )
            .await
            .expect(201);
        let key = k["key"].as_str().unwrap();
        valid(&app, key, UID).await;
        app.clock.advance(7200);
        refused(&app, Some(key), UID, "This registration key has expired.").await;
    }

    async fn a_key_bound_to_another_instance_is_not_valid(app: TestApp) {
        let (_, key) = app.new_key().await;
        valid(&app, &key, UID).await;
        refused(
            &app,
            Some(&key),
            UID2,
            "This registration key is already used by another GLPI instance.",
        )
        .await;
        // and the bound instance cannot use a second key
        let (_, other) = app.new_key().await;
        refused(
            &app,
            Some(&other),
            UID,
            "This GLPI instance is already registered with another key.",
        )
        .await;
        // the binding itself is untouched
        valid(&app, &key, UID).await;
    }

    async fn a_suspended_subscription_shows_as_not_running(app: TestApp) {
        let sub = app.subscription("standard", json!({})).await;
        let (_, key) = app.issue_key(&sub).await;
        valid(&app, &key, UID).await;
        app.admin_post(&format!("/v1/admin/subscriptions/{sub}/suspend"), json!({}))
            .await
            .expect(200);
        not_running(
            &app,
            &key,
            UID,
            "The registration key is valid but its subscription is suspended.",
        )
        .await;
    }

    async fn an_ended_subscription_shows_as_not_running(app: TestApp) {
        let sub = app
            .subscription(
                "advanced",
                json!({"begin_date": "2020-01-01", "end_date": "2020-12-31"}),
            )
            .await;
        let (_, key) = app.issue_key(&sub).await;
        let v = not_running(
            &app,
            &key,
            UID,
            "The registration key is valid but its subscription has ended.",
        )
        .await;
        assert_eq!(v["subscription"]["end_date"], "2020-12-31");
        // a subscription that ends while the instance runs
        let trial = app.subscription("basic", json!({"trial_days": 7})).await;
        let (_, tkey) = app.issue_key(&trial).await;
        valid(&app, &tkey, UID2).await;
        app.clock.advance(8 * 86_400);
        not_running(
            &app,
            &tkey,
            UID2,
            "The registration key is valid but its subscription has ended.",
        )
        .await;
    }

    async fn a_cancelled_subscription_shows_as_ended(app: TestApp) {
        let sub = app.subscription("basic", json!({})).await;
        let (_, key) = app.issue_key(&sub).await;
        valid(&app, &key, UID).await;
        app.admin_post(&format!("/v1/admin/subscriptions/{sub}/cancel"), json!({}))
            .await
            .expect(200);
        not_running(
            &app,
            &key,
            UID,
            "The registration key is valid but its subscription has ended.",
        )
        .await;
    }

    async fn a_rate_limited_address_gets_is_valid_false(app: TestApp) {
        let (_, key) = app.new_key().await;
        valid(&app, &key, UID).await;
        // start a fresh window, use up its 30 failed look-ups, and try a 31st: that one is
        // refused by the limit, and from then on the address is over
        let now = app.clock.now().timestamp();
        app.clock.advance(60 - now.rem_euclid(60));
        for i in 0..31 {
            let v = super::info(&app, &format!("unknown-{i}"), UID2, "en").await;
            assert_eq!(v["is_valid"], false);
        }
        refused(
            &app,
            Some(&key),
            UID,
            "Too many invalid registration keys were tried from your address; try again later.",
        )
        .await;
        app.clock.advance(60);
        valid(&app, &key, UID).await;
    }

    crate::on_both_backends!(
        a_malformed_key_is_not_valid,
        an_unknown_key_is_not_valid,
        a_revoked_key_is_not_valid,
        an_expired_key_is_not_valid,
        a_key_bound_to_another_instance_is_not_valid,
        a_suspended_subscription_shows_as_not_running,
        an_ended_subscription_shows_as_not_running,
        a_cancelled_subscription_shows_as_ended,
        a_rate_limited_address_gets_is_valid_false,
    );

    /// The server's own failure (its database lost a table under it) answers `503` with the
    /// error envelope on `/info`, for every agent, and the next answer after the repair is
    /// `200` again. Runs the in-process `TestServer` on a database this test can reach.
    fn a_server_failure_answers_5xx(db_url: &str, break_sql: &str, repair_sql: &str) {
        use glpi_network_server::TestServer;
        let server = TestServer::builder()
            .database_url(db_url)
            .fixtures_json(json!({
                "subscribers": [{"ref": "acme", "name": "ACME Corp"}],
                "subscriptions": [{"ref": "s", "subscriber": "acme", "offer": "basic"}],
                "keys": [{"key": "TEST-KEY-0001", "subscription": "s"},
                         {"key": "TEST-KEY-0002", "subscription": "s"}]
            }))
            .start()
            .unwrap();
        let client = reqwest::blocking::Client::new();
        let info = |key: &str, agent: &str| {
            let r = client
                .get(format!("{}/api/registration/info", server.url()))
                .header("User-Agent", agent)
                .header("X-Registration-Key", key)
                .header("X-Glpi-Network-Uid", UID)
                .send()
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().unwrap())
        };
        let (status, v) = info("TEST-KEY-0001", AGENTS[0]);
        assert_eq!((status, &v["is_valid"]), (200, &json!(true)), "{v}");
        run_sql(db_url, break_sql);
        for agent in AGENTS {
            // a key the server has not cached, so the answer needs the database
            let (status, v) = info("TEST-KEY-0002", agent);
            assert_eq!(status, 503, "{agent}: {v}");
            assert_eq!(v["error"]["code"], "internal", "{v}");
            assert!(
                v.get("is_valid").is_none(),
                "a failure is not a key problem: {v}"
            );
        }
        run_sql(db_url, repair_sql);
        let (status, v) = info("TEST-KEY-0002", AGENTS[2]);
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["validation_message"],
            "This GLPI instance is already registered with another key."
        );
    }

    fn run_sql(db_url: &str, sql: &str) {
        use diesel::connection::SimpleConnection;
        use diesel::{Connection, PgConnection, SqliteConnection};
        if let Some(path) = db_url.strip_prefix("sqlite://") {
            SqliteConnection::establish(path)
                .unwrap()
                .batch_execute(sql)
                .unwrap();
        } else {
            PgConnection::establish(db_url)
                .unwrap()
                .batch_execute(sql)
                .unwrap();
        }
    }

    const BREAK: &str = "ALTER TABLE registration_keys RENAME TO registration_keys_gone";
    const REPAIR: &str = "ALTER TABLE registration_keys_gone RENAME TO registration_keys";

    #[test]
    fn a_server_failure_answers_5xx_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("gn.db").display());
        a_server_failure_answers_5xx(&url, BREAK, REPAIR);
    }

    #[test]
    fn a_server_failure_answers_5xx_on_postgres() {
        let Some((base, url, name)) = crate::common::create_pg_database("glpifail") else {
            return;
        };
        let _db = crate::common::PgDb { base, name };
        a_server_failure_answers_5xx(&url, BREAK, REPAIR);
    }
}
