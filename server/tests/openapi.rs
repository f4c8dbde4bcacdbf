//! `/openapi.json` lists every route the router has, and Swagger UI is served from the binary.

use glpi_network_server::http;
use glpi_network_server::testmode::server::TestServer;
use serde_json::Value;
use std::collections::BTreeSet;

fn document(server: &TestServer) -> Value {
    reqwest::blocking::get(format!("{}/openapi.json", server.url()))
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn the_document_lists_exactly_the_routes_of_the_router() {
    let server = TestServer::start().unwrap();
    let doc = document(&server);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect();
    let mut routed: BTreeSet<(String, String)> = http::table()
        .iter()
        .chain(http::test_table().iter())
        .map(|r| (r.path.to_owned(), r.method.to_owned()))
        .collect();
    routed.insert(("/openapi.json".into(), "get".into()));
    routed.insert(("/docs/{_:.*}".into(), "get".into()));
    routed.insert(("/docs".into(), "get".into()));
    assert_eq!(documented, routed);
    assert!(routed.len() > 50);
}

#[test]
fn every_documented_route_is_served_and_every_schema_reference_resolves() {
    let server = TestServer::start().unwrap();
    let doc = document(&server);
    let client = reqwest::blocking::Client::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let req = match method.as_str() {
                "get" => client.get(format!("{}{concrete}", server.url())),
                "post" => client.post(format!("{}{concrete}", server.url())),
                "put" => client.put(format!("{}{concrete}", server.url())),
                "delete" => client.delete(format!("{}{concrete}", server.url())),
                other => panic!("unexpected method {other}"),
            };
            let resp = req.send().unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().unwrap_or_default();
            assert!(
                !body.contains("no route for") && status != 405,
                "{method} {path} is documented but not routed ({status} {body})"
            );
        }
    }
    // every $ref points at a component schema
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(
            schemas.contains_key(name),
            "dangling schema reference {name}"
        );
    }
    // every error code is in the document
    let codes = serde_json::to_string(&doc["components"]["schemas"]["ErrorCode"]).unwrap();
    for code in [
        "invalid_key_format",
        "key_already_bound",
        "url_already_registered",
        "rate_limited",
        "offer_required",
    ] {
        assert!(codes.contains(code), "{code} missing from ErrorCode");
    }
}

#[test]
fn swagger_ui_is_served_from_the_binary_without_a_cdn() {
    let server = TestServer::start().unwrap();
    let page = reqwest::blocking::get(format!("{}/docs/", server.url())).unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        let r = reqwest::blocking::get(format!("{}/docs/{asset}", server.url())).unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        let text = r.text().unwrap();
        assert!(
            !text.contains("unpkg.com") && !text.contains("cdn.jsdelivr"),
            "{asset} loads from a CDN"
        );
    }
    let init = reqwest::blocking::get(format!("{}/docs/swagger-initializer.js", server.url()))
        .unwrap()
        .text()
        .unwrap();
    assert!(init.contains("/openapi.json"));
}

#[test]
fn the_version_compatibility_field_and_filtering_are_documented() {
    let server = TestServer::start().unwrap();
    let doc = document(&server);
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "VersionQuery",
        "VersionView",
        "VersionRecord",
        "VersionInput",
    ] {
        let field = &schemas[schema]["properties"]["compatibility"];
        assert!(
            field.is_object(),
            "{schema} has no compatibility: {}",
            schemas[schema]
        );
    }
    let query = schemas["VersionQuery"]["properties"]["compatibility"].to_string();
    assert!(query.contains("semver") && query.contains("400"), "{query}");
    for path in [
        "/api/marketplace/plugins",
        "/api/glpi-plugins/plugins",
        "/api/marketplace/tags/{tag}/plugin",
        "/api/glpi-plugins/tags/{tag}/plugin",
    ] {
        let summary = doc["paths"][path]["get"]["summary"].as_str().unwrap();
        assert!(summary.contains("User-Agent"), "{path}: {summary}");
    }
    let add = doc["paths"]["/v1/admin/plugins/{key}/versions"]["post"]["summary"]
        .as_str()
        .unwrap();
    assert!(add.contains("compatibility"), "{add}");
}
