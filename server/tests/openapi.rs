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
    routed.insert(("/docs".into(), "get".into()));
    assert_eq!(documented, routed);
    assert!(routed.len() > 50);
}

#[test]
fn without_test_mode_the_test_routes_are_neither_served_nor_described() {
    let server = TestServer::builder().test_mode(false).start().unwrap();
    let doc = document(&server);
    let paths = doc["paths"].as_object().unwrap();
    let test_paths: Vec<&String> = paths.keys().filter(|p| p.starts_with("/_test")).collect();
    assert!(test_paths.is_empty(), "{test_paths:?}");
    for r in http::table() {
        let methods = paths[r.path].as_object().unwrap();
        assert!(methods.contains_key(r.method), "{} {}", r.method, r.path);
    }
    let r = reqwest::blocking::get(format!("{}/_test/clock", server.url())).unwrap();
    assert_eq!(r.status(), 404);
}

/// The document is valid where a generated client would trip: every `{name}` of a path is a
/// declared path parameter (and nothing else is), every operation documents its success and
/// the errors every route of its kind answers, and 429 and 401 carry their headers.
#[test]
fn every_path_parameter_is_declared_and_the_error_statuses_are_documented() {
    let server = TestServer::start().unwrap();
    let doc = document(&server);
    for (path, item) in doc["paths"].as_object().unwrap() {
        let names: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')),
            "{path}: not an OpenAPI template"
        );
        for (method, op) in item.as_object().unwrap() {
            let declared: BTreeSet<String> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .inspect(|p| assert_eq!(p["required"], true, "{method} {path}"))
                        .map(|p| p["name"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(declared, names, "{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            if op["tags"][0] == "admin" {
                for status in ["401", "429"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path}: no {status}"
                    );
                }
                assert!(
                    op["responses"]["429"]["headers"]["Retry-After"].is_object(),
                    "{method} {path}"
                );
                assert!(
                    op["responses"]["401"]["headers"]["WWW-Authenticate"].is_object(),
                    "{method} {path}"
                );
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path}: no {status}"
                    );
                }
            }
            if !names.is_empty() {
                assert!(responses.contains_key("400"), "{method} {path}: no 400");
            }
        }
    }
}

#[test]
fn a_405_names_the_methods_of_its_path_in_allow() {
    let server = TestServer::start().unwrap();
    let client = reqwest::blocking::Client::new();
    let mut allowed: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for r in http::table().iter().chain(http::test_table().iter()) {
        allowed
            .entry(r.path)
            .or_default()
            .push(r.method.to_ascii_uppercase());
    }
    for (path, methods) in allowed {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let resp = client
            .request(
                reqwest::Method::from_bytes(b"TRACE").unwrap(),
                format!("{}{concrete}", server.url()),
            )
            .bearer_auth(server.admin_token())
            .send()
            .unwrap();
        assert_eq!(resp.status(), 405, "TRACE {path}");
        let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
        let got: BTreeSet<&str> = allow.split(", ").collect();
        let want: BTreeSet<&str> = methods.iter().map(String::as_str).collect();
        assert_eq!(got, want, "{path}");
        let body: Value = resp.json().unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "{path}");
    }
}

#[test]
fn an_admin_request_without_the_token_is_refused_before_its_body_is_read() {
    let server = TestServer::start().unwrap();
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/v1/admin/keys", server.url()))
        .header("content-type", "application/json")
        .body(r#"{"subscription_id": "#)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let body: Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
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

#[test]
fn every_page_says_what_its_items_are() {
    let server = TestServer::start().unwrap();
    let doc = document(&server);
    let mut pages = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, resp) in op["responses"].as_object().unwrap() {
                let schema = &resp["content"]["application/json"]["schema"];
                if schema["properties"]["next_cursor"].is_object() {
                    pages += 1;
                    let item_ref = schema["properties"]["items"]["items"]["$ref"].as_str();
                    assert!(
                        item_ref.is_some_and(|r| r.starts_with("#/components/schemas/")),
                        "{method} {path} {status}: {schema}"
                    );
                }
                assert_ne!(
                    schema["$ref"], "#/components/schemas/Page",
                    "{method} {path}: an untyped page"
                );
            }
        }
    }
    assert!(pages >= 15, "{pages}");
}
