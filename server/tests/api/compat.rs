//! Marketplace version compatibility (DESIGN §8, protocol §4.4 and §15): each GLPI is offered,
//! per plugin, only the versions whose `compatibility` its version (from `User-Agent`) meets;
//! every version when the agent names none; a plugin left with none is listed with
//! `versions: []`.

use crate::glpi::info;
use crate::helpers::{Answer, TestApp};
use serde_json::{Value, json};

const UID: &str = "CoMpAtCoMpAtCoMpAtCoMpAtCoMpAtCoMpAt0123";

const GLPI_10: &str = "GLPI/10.0.18 (installation-mode:TARBALL)";
const GLPI_10_EARLY: &str = "GLPI/10.0.2 (installation-mode:TARBALL)";
const GLPI_11: &str = "GLPI/11.0.1 (installation-mode:TARBALL)";
const GLPI_11_RC: &str = "GLPI/11.0.0-rc1 (installation-mode:GIT)";
const GLPI_12: &str = "GLPI/12.0.0 (installation-mode:TARBALL)";

/// GET a marketplace path as GLPI's Guzzle client does, with `agent` as `User-Agent` (`None`:
/// reqwest's own agent, which names no GLPI version).
async fn mp(app: &TestApp, path: &str, key: &str, agent: Option<&str>) -> Value {
    let mut req = app
        .client
        .get(app.url(path))
        .header("accept", "application/json")
        .header("x-registration-key", key)
        .header("x-glpi-network-uid", UID)
        .header("x-range", "0-199");
    if let Some(agent) = agent {
        req = req.header("user-agent", agent);
    }
    Answer::from(req.send().await.unwrap()).await.expect(200)
}

/// `{plugin key: [version nums]}` of a plugin list.
fn nums(list: &Value) -> std::collections::BTreeMap<String, Vec<String>> {
    list.as_array()
        .expect("a plugin list is an array")
        .iter()
        .map(|p| {
            let versions = p["versions"].as_array().expect("versions is an array");
            (
                p["key"].as_str().unwrap().to_owned(),
                versions
                    .iter()
                    .map(|v| v["num"].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

async fn add_version(app: &TestApp, key: &str, body: Value) -> Value {
    app.admin_post(&format!("/v1/admin/plugins/{key}/versions"), body)
        .await
        .expect(201)
}

/// `compat` with five versions (one uploaded with the requirement in the query string) and
/// `legacy`, whose only version needs GLPI 9.5; both tagged `compat`.
async fn catalogue(app: &TestApp) {
    for key in ["compat", "legacy"] {
        app.admin_post(
            "/v1/admin/plugins",
            json!({"key": key, "name": key, "tags": [{"key": "compat", "tag": "compat"}]}),
        )
        .await
        .expect(201);
    }
    let v = add_version(app, "compat", json!({"num": "0.9.0"})).await;
    assert_eq!(v["compatibility"], Value::Null);
    let v = add_version(
        app,
        "compat",
        json!({"num": "1.0.0", "stability": "stable", "compatibility": "~10.0"}),
    )
    .await;
    assert_eq!(v["compatibility"], "~10.0");
    // an uploaded archive: the requirement rides in the query string
    let upload = glpi_network_server::domain::archive::generate("compat", "compat", "1.5.0");
    let resp = app
        .client
        .post(app.url(
            "/v1/admin/plugins/compat/versions?num=1.5.0&compatibility=%3E%3D10.0.10%2C%20%3C12",
        ))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/gzip")
        .body(upload)
        .send()
        .await
        .unwrap();
    let v = Answer::from(resp).await.expect(201);
    assert_eq!(v["compatibility"], ">=10.0.10, <12");
    add_version(
        app,
        "compat",
        json!({"num": "2.0.0", "compatibility": " ~11.0 "}),
    )
    .await;
    add_version(
        app,
        "compat",
        json!({"num": "3.0.0-beta1", "stability": "beta", "compatibility": ">=12"}),
    )
    .await;
    add_version(
        app,
        "legacy",
        json!({"num": "1.0.0", "compatibility": "~9.5"}),
    )
    .await;
}

async fn each_glpi_version_gets_the_plugin_versions_it_is_compatible_with(app: TestApp) {
    catalogue(&app).await;
    let standard = app.subscription("standard", json!({})).await;
    let (_, key) = app.issue_key(&standard).await;
    assert_eq!(info(&app, &key, UID, "en").await["is_valid"], true);

    let all = ["0.9.0", "1.0.0", "1.5.0", "2.0.0", "3.0.0-beta1"];
    let cases: [(Option<&str>, &[&str], &[&str]); 8] = [
        (Some(GLPI_10), &["0.9.0", "1.0.0", "1.5.0"], &[]),
        (Some(GLPI_10_EARLY), &["0.9.0", "1.0.0"], &[]),
        (Some(GLPI_11), &["0.9.0", "1.5.0", "2.0.0"], &[]),
        // a release candidate of 11.0.0 is offered what 11.0.0 is
        (Some(GLPI_11_RC), &["0.9.0", "1.5.0", "2.0.0"], &[]),
        // a two-part version reads as x.y.0
        (Some("GLPI/11.0"), &["0.9.0", "1.5.0", "2.0.0"], &[]),
        (Some(GLPI_12), &["0.9.0", "3.0.0-beta1"], &[]),
        // an agent that names no GLPI version: every version
        (None, &all, &["1.0.0"]),
        (Some("curl/8.5.0"), &all, &["1.0.0"]),
    ];
    for prefix in ["/api/marketplace", "/api/glpi-plugins"] {
        for list in ["plugins", "tags/compat/plugin"] {
            let path = format!("{prefix}/{list}");
            for (agent, compat, legacy) in cases {
                let got = nums(&mp(&app, &path, &key, agent).await);
                let what = format!("{path} as {agent:?}");
                assert_eq!(got["compat"], compat, "{what}");
                // listed even with no compatible version
                assert_eq!(got["legacy"], legacy, "{what}");
            }
        }
    }

    // the records GLPI reads carry each version's requirement
    let list = mp(&app, "/api/marketplace/plugins", &key, Some(GLPI_11)).await;
    let compat = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "compat")
        .unwrap();
    let reqs: Vec<&Value> = compat["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["compatibility"])
        .collect();
    assert_eq!(
        reqs,
        [&Value::Null, &json!(">=10.0.10, <12"), &json!("~11.0")]
    );
    let legacy = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "legacy")
        .unwrap();
    assert_eq!(legacy["versions"], json!([]));

    // the demo plugin's beta needs GLPI 11
    let g10 = nums(&mp(&app, "/api/marketplace/plugins", &key, Some(GLPI_10)).await);
    let g11 = nums(&mp(&app, "/api/marketplace/plugins", &key, Some(GLPI_11)).await);
    assert_eq!(g10["hello"], ["1.0.0"]);
    assert_eq!(g11["hello"], ["1.0.0", "1.1.0-beta1"]);

    // the admin record shows every version with its requirement, whatever the agent
    let shown = app.admin_get("/v1/admin/plugins/compat").await.expect(200);
    let shown: Vec<(&str, &Value)> = shown["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["num"].as_str().unwrap(), &v["compatibility"]))
        .collect();
    assert_eq!(
        shown,
        [
            ("0.9.0", &Value::Null),
            ("1.0.0", &json!("~10.0")),
            ("1.5.0", &json!(">=10.0.10, <12")),
            ("2.0.0", &json!("~11.0")),
            ("3.0.0-beta1", &json!(">=12")),
        ]
    );
}

async fn an_invalid_compatibility_is_refused_and_nothing_is_stored(app: TestApp) {
    app.admin_post(
        "/v1/admin/plugins",
        json!({"key": "strict", "name": "Strict"}),
    )
    .await
    .expect(201);
    for bad in ["banana", ">=10.0 <12", "=>10", "~10.0,"] {
        let a = app
            .admin_post(
                "/v1/admin/plugins/strict/versions",
                json!({"num": "1.0.0", "compatibility": bad}),
            )
            .await;
        let message = a.body["error"]["message"].as_str().unwrap_or("").to_owned();
        a.expect_error(400, "invalid_request");
        assert!(
            message.contains("compatibility") && message.contains(bad),
            "{bad}: {message}"
        );
    }
    let upload = glpi_network_server::domain::archive::generate("strict", "Strict", "1.0.0");
    let resp = app
        .client
        .post(app.url("/v1/admin/plugins/strict/versions?num=1.0.0&compatibility=10.x.y"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/gzip")
        .body(upload)
        .send()
        .await
        .unwrap();
    Answer::from(resp)
        .await
        .expect_error(400, "invalid_request");
    let shown = app.admin_get("/v1/admin/plugins/strict").await.expect(200);
    assert_eq!(shown["versions"], json!([]), "nothing was stored");
    // a blank requirement is no requirement
    let v = add_version(
        &app,
        "strict",
        json!({"num": "1.0.0", "compatibility": " "}),
    )
    .await;
    assert_eq!(v["compatibility"], Value::Null);
}

crate::on_both_backends!(
    each_glpi_version_gets_the_plugin_versions_it_is_compatible_with,
    an_invalid_compatibility_is_refused_and_nothing_is_stored,
);
