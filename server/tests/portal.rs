//! The portal and the console over HTTP (DESIGN §10), against the real server (`TestServer`):
//! CSRF, escaping, cookie flags, login limits, `--portal-signup`, roles, the admin API's
//! accounts and sessions.

mod common;

use glpi_network_server::TestServer;
use glpi_network_server::config::PortalSignup;
use glpi_network_server::db::accounts::NewAccount;
use glpi_network_server::domain::account::{Email, Role};
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const PASSWORD: &str = "correct horse battery staple";

/// A browser without JavaScript: a cookie jar, no redirects followed.
struct Browser {
    base: String,
    client: Client,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let at = self.body.find(marker).expect("a form with a csrf_token") + marker.len();
        self.body[at..at + 64].to_owned()
    }
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn set_cookie(&self, name: &str) -> String {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no Set-Cookie for {name}"))
            .to_owned()
    }
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        Browser {
            base: server.url().to_owned(),
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn keep(&mut self, resp: Response) -> Page {
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() || v.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        Page {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.text().unwrap(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn get(&mut self, path: &str) -> Page {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .unwrap();
        self.keep(resp)
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap();
        self.keep(resp)
    }

    /// Signs up through the form; returns the dashboard page (with the key shown once).
    fn signup(&mut self, name: &str, email: &str) -> Page {
        let csrf = self.get("/portal/signup").csrf();
        self.post(
            "/portal/signup",
            &[
                ("name", name),
                ("email", email),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
            ],
        )
    }

    fn login(&mut self, email: &str, password: &str) -> Page {
        let csrf = self.get("/portal/login").csrf();
        self.post(
            "/portal/login",
            &[
                ("email", email),
                ("password", password),
                ("csrf_token", &csrf),
            ],
        )
    }
}

fn key_of(page: &Page) -> String {
    let at = page
        .body
        .find("id=\"new-key\">")
        .expect("the new key is shown")
        + 13;
    let end = page.body[at..].find('<').unwrap();
    page.body[at..at + end].to_owned()
}

fn admin(server: &TestServer) -> (Client, String, String) {
    (
        Client::new(),
        server.url().to_owned(),
        server.admin_token().to_owned(),
    )
}

fn admin_get(server: &TestServer, path: &str) -> Value {
    let (c, base, token) = admin(server);
    let r = c
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().unwrap()
}

fn subscriber_id(server: &TestServer, email: &str) -> String {
    let page = admin_get(server, "/v1/admin/subscribers?limit=500");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == email)
        .expect("the subscriber")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn signing_up_gives_a_running_registered_subscription_and_a_key_shown_once() {
    let server = TestServer::start().unwrap();
    let mut b = Browser::new(&server);
    let page = b.signup("ACME Corp", "Ann@Example.com");
    assert_eq!(page.status, 200, "{}", page.body);
    let key = key_of(&page);
    assert!(key.starts_with("GLPI-"), "{key}");
    assert!(page.body.contains("GLPI Network Registered"));
    assert!(page.body.contains("data-status=\"active\""));
    assert!(page.body.contains(&key[..9]), "the display prefix");
    // once: the dashboard no longer shows it
    let again = b.get("/portal/");
    assert_eq!(again.status, 200);
    assert!(!again.body.contains(&key));
    // the key registers an instance over the instance API
    let r = Client::new()
        .post(format!("{}/v1/registrations", server.url()))
        .json(&json!({"registration_key": key, "instance_url": "https://glpi.acme.test"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(b.get("/portal/").body.contains("https://glpi.acme.test"));
    // the same email in another case is taken; a short password and a bad email are refused
    let mut other = Browser::new(&server);
    let taken = other.signup("Other", "ann@EXAMPLE.com");
    assert_eq!(taken.status, 409);
    assert!(taken.body.contains("already exists"));
    let csrf = other.get("/portal/signup").csrf();
    let short = other.post(
        "/portal/signup",
        &[
            ("name", "X"),
            ("email", "x@example.com"),
            ("password", "short"),
            ("csrf_token", &csrf),
        ],
    );
    assert_eq!(short.status, 400);
    assert!(short.body.contains("at least 12 characters"));
    assert!(
        short.body.contains("value=\"x@example.com\""),
        "the form keeps what was typed"
    );
    // logout ends the session; logging in again works with any case of the email
    let csrf = b.get("/portal/").csrf();
    let out = b.post("/portal/logout", &[("csrf_token", &csrf)]);
    assert_eq!(out.status, 303);
    assert_eq!(b.get("/portal/").location(), "/portal/login");
    let wrong = b.login("ann@example.com", "not the password at all");
    assert_eq!(wrong.status, 401);
    let ok = b.login("ANN@example.com", PASSWORD);
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(b.get("/portal/").status, 200);
}

#[test]
fn a_form_posted_without_a_valid_csrf_token_is_refused_with_403() {
    let server = TestServer::start().unwrap();
    let mut b = Browser::new(&server);
    b.get("/portal/signup");
    let form = [
        ("name", "N"),
        ("email", "n@example.com"),
        ("password", PASSWORD),
    ];
    assert_eq!(b.post("/portal/signup", &form).status, 403);
    let mut forged = form.to_vec();
    forged.push((
        "csrf_token",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ));
    assert_eq!(b.post("/portal/signup", &forged).status, 403);
    // a token from another browser's pre-session is not valid here
    let mut other = Browser::new(&server);
    let foreign = other.get("/portal/signup").csrf();
    let mut with_foreign = form.to_vec();
    with_foreign.push(("csrf_token", &foreign));
    assert_eq!(b.post("/portal/signup", &with_foreign).status, 403);
    assert_eq!(
        b.post(
            "/portal/login",
            &[("email", "n@example.com"), ("password", PASSWORD)]
        )
        .status,
        403
    );
    assert_eq!(
        b.post("/console/login", &[("token", server.admin_token())])
            .status,
        403
    );
    // signed in: actions and logout need the session's token (the pre-session one is not it)
    let pre = b.get("/portal/signup").csrf();
    let page = b.signup("N", "n@example.com");
    assert_eq!(page.status, 200);
    let key_id = subscriber_key_id(&page);
    let path = format!("/portal/keys/{key_id}/regenerate");
    assert_eq!(b.post(&path, &[]).status, 403);
    assert_eq!(b.post(&path, &[("csrf_token", &pre)]).status, 403);
    assert_eq!(b.post("/portal/logout", &[]).status, 403);
    assert_eq!(b.get("/portal/").status, 200, "still signed in");
}

fn subscriber_key_id(page: &Page) -> String {
    let marker = "action=\"/portal/keys/";
    let at = page.body.find(marker).unwrap() + marker.len();
    let end = page.body[at..].find('/').unwrap();
    page.body[at..at + end].to_owned()
}

#[test]
fn a_hostile_name_is_shown_as_text_and_pages_carry_the_security_headers() {
    let server = TestServer::start().unwrap();
    let mut b = Browser::new(&server);
    let hostile = "<script>alert(1)</script>";
    let page = b.signup(hostile, "mallory@example.com");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains(hostile));
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        page.body
    );
    for p in [
        &page,
        &b.get("/portal/login"),
        &b.get("/console/login"),
        &b.get("/static/portal.css"),
    ] {
        let csp = p.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(p.headers["x-frame-options"], "DENY");
        assert_eq!(p.headers["x-content-type-options"], "nosniff");
    }
    // the console lists it escaped too
    let mut vendor = Browser::new(&server);
    let csrf = vendor.get("/console/login").csrf();
    let r = vendor.post(
        "/console/login",
        &[("token", server.admin_token()), ("csrf_token", &csrf)],
    );
    assert_eq!(r.status, 303);
    let list = vendor.get("/console/subscribers?q=script");
    assert_eq!(list.status, 200);
    assert!(!list.body.contains(hostile) && list.body.contains("alert(1)"));
}

#[test]
fn session_cookies_are_http_only_strict_and_secure_behind_https() {
    let server = TestServer::builder()
        .settings(|s| s.public_url = Some("https://portal.example.test".into()))
        .start()
        .unwrap();
    let mut b = Browser::new(&server);
    let first = b.get("/portal/signup");
    let page = b.signup("Secure Ltd", "sec@example.com");
    for (p, name) in [(&first, "gn_pre"), (&page, "gn_portal")] {
        let c = p.set_cookie(name);
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
            assert!(c.contains(flag), "{name}: {c} lacks {flag}");
        }
    }
    let plain = TestServer::start().unwrap();
    let mut b = Browser::new(&plain);
    let c = b
        .signup("Plain", "plain@example.com")
        .set_cookie("gn_portal");
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"),
        "{c}"
    );
    let token = c.split(';').next().unwrap().split_once('=').unwrap().1;
    assert_eq!(token.len(), 64, "256 random bits");
}

#[test]
fn the_eleventh_failed_login_of_an_account_within_an_hour_answers_429() {
    let server = TestServer::builder()
        .settings(|s| s.failed_lookups_per_minute = 1000)
        .start()
        .unwrap();
    Browser::new(&server).signup("Target", "target@example.com");
    let mut b = Browser::new(&server);
    for i in 0..10 {
        assert_eq!(
            b.login("target@example.com", "wrong password guess").status,
            401,
            "attempt {i}"
        );
    }
    let limited = b.login("target@example.com", PASSWORD);
    assert_eq!(limited.status, 429, "even the right password waits");
    assert!(limited.body.contains("Too many failed logins"));
    // audited
    let audit = admin_get(&server, "/v1/admin/audit?limit=500");
    let failures = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "account.login" && e["outcome"] == "wrong_password")
        .count();
    assert_eq!(failures, 10);
    // an hour later the account may try again
    server.clock().advance(3601);
    assert_eq!(b.login("target@example.com", PASSWORD).status, 303);
}

#[test]
fn failed_logins_count_per_address_with_the_failed_look_ups() {
    let server = TestServer::builder()
        .settings(|s| s.failed_lookups_per_minute = 3)
        .start()
        .unwrap();
    let mut b = Browser::new(&server);
    for _ in 0..3 {
        assert_eq!(
            b.login("nobody@example.com", "wrong password guess").status,
            401
        );
    }
    assert_eq!(
        b.login("nobody@example.com", "wrong password guess").status,
        429
    );
    // the console's login shares the allowance
    let csrf = b.get("/console/login").csrf();
    assert_eq!(
        b.post(
            "/console/login",
            &[("token", server.admin_token()), ("csrf_token", &csrf)]
        )
        .status,
        429
    );
}

#[test]
fn portal_signup_off_answers_404_and_invite_refuses_signups_without_an_invitation() {
    let off = TestServer::builder()
        .settings(|s| s.portal_signup = PortalSignup::Off)
        .start()
        .unwrap();
    let mut b = Browser::new(&off);
    assert_eq!(b.get("/portal/signup").status, 404);
    let csrf = b.get("/portal/login").csrf();
    assert_eq!(
        b.post(
            "/portal/signup",
            &[
                ("name", "N"),
                ("email", "n@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &csrf)
            ]
        )
        .status,
        404
    );
    let invite = TestServer::builder()
        .settings(|s| s.portal_signup = PortalSignup::Invite)
        .start()
        .unwrap();
    let mut b = Browser::new(&invite);
    let page = b.get("/portal/signup");
    assert!(page.body.contains("invitation_key"));
    let r = b.signup("N", "n@example.com");
    assert_eq!(r.status, 400);
}

#[test]
fn a_viewer_sees_the_instances_but_cannot_release_them_and_an_owner_can() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("portal.db").display());
    let server = TestServer::builder().database_url(&db_url).start().unwrap();
    let mut owner = Browser::new(&server);
    let page = owner.signup("Team", "owner@example.com");
    let key = key_of(&page);
    let r = Client::new()
        .post(format!("{}/v1/registrations", server.url()))
        .json(&json!({"registration_key": key, "instance_url": "https://glpi.team.test"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    // a viewer joins the organisation (what an accepted invitation will do)
    let sid = subscriber_id(&server, "owner@example.com");
    let db = glpi_network_server::db::Db::open(&db_url, 2).unwrap();
    let hash = glpi_network_server::http::portal::session::hash_password(PASSWORD).unwrap();
    let email = Email::parse("vic@example.com").unwrap();
    let viewer = NewAccount {
        subscriber_id: &sid,
        name: "Vic Viewer",
        email: &email,
        password_hash: &hash,
        role: Role::Viewer,
    };
    glpi_network_server::db::accounts::add_member(
        &mut db.get().unwrap(),
        &viewer,
        chrono::Utc::now().naive_utc(),
        &glpi_network_server::db::audit::Actor::new("test", None),
    )
    .unwrap();
    let mut viewer = Browser::new(&server);
    assert_eq!(viewer.login("vic@example.com", PASSWORD).status, 303);
    let dash = viewer.get("/portal/");
    assert!(dash.body.contains("https://glpi.team.test"));
    assert!(dash.body.contains("Vic Viewer") && dash.body.contains("viewer"));
    assert!(
        !dash.body.contains("/release\""),
        "no release button for a viewer"
    );
    let regs = admin_get(&server, "/v1/admin/registrations");
    let reg_id = regs["items"][0]["id"].as_str().unwrap().to_owned();
    let csrf = dash.csrf();
    let refused = viewer.post(
        &format!("/portal/registrations/{reg_id}/release"),
        &[("csrf_token", &csrf)],
    );
    assert_eq!(refused.status, 403);
    assert_eq!(
        admin_get(&server, "/v1/admin/registrations")["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let key_id = subscriber_key_id(&owner.get("/portal/"));
    assert_eq!(
        viewer
            .post(
                &format!("/portal/keys/{key_id}/regenerate"),
                &[("csrf_token", &csrf)]
            )
            .status,
        403
    );
    // another subscriber's owner cannot release it either
    let mut stranger = Browser::new(&server);
    let s = stranger.signup("Stranger", "stranger@example.com");
    let sc = s.csrf();
    assert_eq!(
        stranger
            .post(
                &format!("/portal/registrations/{reg_id}/release"),
                &[("csrf_token", &sc)]
            )
            .status,
        404
    );
    // the owner can
    let oc = owner.get("/portal/").csrf();
    let done = owner.post(
        &format!("/portal/registrations/{reg_id}/release"),
        &[("csrf_token", &oc)],
    );
    assert_eq!(done.status, 303);
    assert!(
        admin_get(&server, "/v1/admin/registrations")["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let audit = admin_get(&server, "/v1/admin/audit");
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "registration.release"
                && e["actor"].as_str().unwrap().starts_with("portal:"))
    );
}

#[test]
fn the_admin_api_lists_a_subscribers_accounts_and_ends_their_sessions() {
    let server = TestServer::start().unwrap();
    let mut b = Browser::new(&server);
    b.signup("Acc", "acc@example.com");
    let sid = subscriber_id(&server, "acc@example.com");
    let accounts = admin_get(&server, &format!("/v1/admin/subscribers/{sid}/accounts"));
    let item = &accounts["items"][0];
    assert_eq!(item["email"], "acc@example.com");
    assert_eq!(item["role"], "owner");
    assert!(item.get("password_hash").is_none());
    let (c, base, token) = admin(&server);
    let r = c
        .delete(format!("{base}/v1/admin/subscribers/{sid}/sessions"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        b.get("/portal/").location(),
        "/portal/login",
        "signed out by the vendor"
    );
    let r = c
        .get(format!("{base}/v1/admin/subscribers/nope/accounts"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .get(format!("{base}/v1/admin/subscribers/{sid}/accounts"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn the_console_signs_in_with_the_admin_token_and_drives_the_admin_operations() {
    let server = TestServer::start().unwrap();
    let mut sub = Browser::new(&server);
    sub.signup("Client Co", "client@example.com");
    let mut v = Browser::new(&server);
    assert_eq!(v.get("/console/keys").location(), "/console/login");
    let csrf = v.get("/console/login").csrf();
    assert_eq!(
        v.post(
            "/console/login",
            &[("token", "wrong-token-wrong-token"), ("csrf_token", &csrf)]
        )
        .status,
        401
    );
    assert_eq!(
        v.post(
            "/console/login",
            &[("token", server.admin_token()), ("csrf_token", &csrf)]
        )
        .status,
        303
    );
    let subs = v.get("/console/subscriptions?q=client");
    assert_eq!(subs.status, 200);
    let sid = admin_get(&server, "/v1/admin/subscriptions")["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let csrf = subs.csrf();
    let issued = v.post(
        &format!("/console/subscriptions/{sid}/issue-key"),
        &[("csrf_token", &csrf)],
    );
    assert_eq!(issued.status, 200);
    assert!(key_of(&issued).starts_with("GLPI-"));
    assert_eq!(
        v.post(
            &format!("/console/subscriptions/{sid}/suspend"),
            &[("csrf_token", &csrf)]
        )
        .status,
        303
    );
    assert!(
        sub.get("/portal/")
            .body
            .contains("data-status=\"suspended\"")
    );
    assert_eq!(
        v.post(
            &format!("/console/subscriptions/{sid}/resume"),
            &[("csrf_token", &csrf)]
        )
        .status,
        303
    );
    for path in [
        "/console/subscribers",
        "/console/keys?q=GLPI",
        "/console/registrations",
        "/console/offers",
        "/console/signing-keys",
    ] {
        assert_eq!(v.get(path).status, 200, "{path}");
    }
    let audit = v.get("/console/audit");
    assert!(
        audit.body.contains("status-intact"),
        "audit verify answers intact"
    );
    assert!(audit.body.contains("subscription.suspend"));
    assert_eq!(
        v.post("/console/signing-keys/rotate", &[("csrf_token", &csrf)])
            .status,
        303
    );
    assert_eq!(
        v.post("/console/logout", &[("csrf_token", &csrf)]).status,
        303
    );
    assert_eq!(v.get("/console/keys").location(), "/console/login");
}

#[test]
fn the_portal_and_the_console_work_on_postgresql() {
    let Some((base, url, name)) = common::create_pg_database("portal") else {
        return;
    };
    let _db = common::PgDb { base, name };
    let server = TestServer::builder().database_url(&url).start().unwrap();
    let mut owner = Browser::new(&server);
    let page = owner.signup("Élan <b>Postgres</b>", "PG@Example.com");
    assert_eq!(page.status, 200, "{}", page.body);
    let key = key_of(&page);
    let r = Client::new()
        .post(format!("{}/v1/registrations", server.url()))
        .json(&json!({"registration_key": key, "instance_url": "https://GLPI.pg.test/"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        Browser::new(&server).signup("Dup", "pg@example.COM").status,
        409
    );
    // searches are case-insensitive on PostgreSQL too, and escape LIKE's wildcards
    let mut v = Browser::new(&server);
    let csrf = v.get("/console/login").csrf();
    assert_eq!(
        v.post(
            "/console/login",
            &[("token", server.admin_token()), ("csrf_token", &csrf)]
        )
        .status,
        303
    );
    assert!(
        v.get("/console/subscribers?q=POSTGRES")
            .body
            .contains("pg@example.com")
    );
    assert!(
        !v.get("/console/subscribers?q=%25")
            .body
            .contains("pg@example.com")
    );
    assert!(
        v.get("/console/subscriptions?q=pg%40example")
            .body
            .contains("button")
    );
    let prefix = &key[..9];
    assert!(
        v.get(&format!("/console/keys?q={}", prefix.to_lowercase()))
            .body
            .contains("https://glpi.pg.test")
    );
    assert!(
        v.get("/console/registrations?q=PG.TEST")
            .body
            .contains(prefix)
    );
    assert!(v.get("/console/audit").body.contains("status-intact"));
    // the per-account limit is counted in the database
    let mut b = Browser::new(&server);
    for _ in 0..10 {
        assert_eq!(
            b.login("pg@example.com", "wrong password guess").status,
            401
        );
    }
    assert_eq!(b.login("pg@example.com", PASSWORD).status, 429);
    // the owner releases the instance; the vendor ends the sessions
    let oc = owner.get("/portal/").csrf();
    let reg_id = admin_get(&server, "/v1/admin/registrations")["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        owner
            .post(
                &format!("/portal/registrations/{reg_id}/release"),
                &[("csrf_token", &oc)]
            )
            .status,
        303
    );
    let sid = subscriber_id(&server, "pg@example.com");
    let (c, base, token) = admin(&server);
    let r = c
        .delete(format!("{base}/v1/admin/subscribers/{sid}/sessions"))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(owner.get("/portal/").location(), "/portal/login");
}

#[test]
fn the_console_creates_webhooks_shows_their_deliveries_and_retries_them() {
    let server = TestServer::builder()
        .webhooks_allow_private(true)
        .start()
        .unwrap();
    let mut v = Browser::new(&server);
    let csrf = v.get("/console/login").csrf();
    let login = [("token", server.admin_token()), ("csrf_token", &csrf)];
    assert_eq!(v.post("/console/login", &login).status, 303);
    let csrf = v.get("/console/webhooks").csrf();
    // nothing listens there: its deliveries fail and stay pending
    let form = [
        ("url", "http://127.0.0.1:9/<hook>"),
        ("events", "subscription.created, key.issued"),
        ("description", "CRM <sync>"),
        ("csrf_token", &csrf),
    ];
    let created = v.post("/console/webhooks", &form);
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(key_of(&created).starts_with("whsec_"));
    assert!(
        !created.body.contains("CRM <sync>"),
        "values are shown escaped"
    );
    assert!(
        created.body.contains("CRM &#60;sync&#62;") || created.body.contains("CRM &lt;sync&gt;")
    );
    let hook = &admin_get(&server, "/v1/admin/webhooks")["items"][0];
    let id = hook["id"].as_str().unwrap().to_owned();
    assert_eq!(
        hook["events"],
        json!(["subscription.created", "key.issued"])
    );
    let (c, base, token) = admin(&server);
    let s: Value = c
        .post(format!("{base}/v1/admin/subscribers"))
        .bearer_auth(&token)
        .json(&json!({"name": "Hooked"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    c.post(format!("{base}/v1/admin/subscriptions"))
        .bearer_auth(&token)
        .json(&json!({"subscriber_id": s["id"], "offer": "basic"}))
        .send()
        .unwrap();
    let link = format!("/console/webhooks/{id}/deliveries");
    assert!(v.get("/console/webhooks?q=crm").body.contains(&link));
    assert!(!v.get("/console/webhooks?q=billing").body.contains(&link));
    let page = v.get(&format!("/console/webhooks/{id}/deliveries"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("subscription.created"), "{}", page.body);
    let did = admin_get(&server, &format!("/v1/admin/webhooks/{id}/deliveries"))["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let retry = format!("/console/webhooks/{id}/deliveries/{did}/retry");
    assert_eq!(v.post(&retry, &[("csrf_token", &csrf)]).status, 303);
    assert_eq!(v.post(&retry, &[("csrf_token", "forged")]).status, 403);
    let delete = format!("/console/webhooks/{id}/delete");
    assert_eq!(v.post(&delete, &[("csrf_token", &csrf)]).status, 303);
    assert_eq!(admin_get(&server, "/v1/admin/webhooks")["items"], json!([]));
}
