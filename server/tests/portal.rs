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

/// An invitation of `role` for a new subscriber, through the admin API: (subscriber id, key).
fn invitation(server: &TestServer, role: &str, max_uses: u32) -> (String, String) {
    let (c, base, token) = admin(server);
    let post = |path: &str, body: Value| -> Value {
        let r = c
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 201, "POST {path}");
        r.json().unwrap()
    };
    let sub = post("/v1/admin/subscribers", json!({"name": "Inviting Org"}));
    let id = sub["id"].as_str().unwrap().to_owned();
    let inv = post(
        "/v1/admin/invitations",
        json!({"subscriber_id": id, "role": role, "max_uses": max_uses}),
    );
    assert!(
        inv["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/portal/invite/{}", inv["key"].as_str().unwrap()))
    );
    (id, inv["key"].as_str().unwrap().to_owned())
}

fn accept(b: &mut Browser, key: &str, name: &str, email: &str) -> Page {
    let path = format!("/portal/invite/{key}");
    let form = b.get(&path);
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Accept an invitation"));
    let csrf = form.csrf();
    b.post(
        &path,
        &[
            ("name", name),
            ("email", email),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ],
    )
}

#[test]
fn an_invitation_page_creates_a_signed_in_member_with_the_invitations_role_once() {
    let server = TestServer::builder()
        .settings(|s| s.portal_signup = PortalSignup::Invite)
        .start()
        .unwrap();
    let (sub_id, key) = invitation(&server, "viewer", 1);
    let mut b = Browser::new(&server);
    let page = accept(&mut b, &key, "Vera Viewer", "Vera@Example.com");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("you joined as viewer"), "{}", page.body);
    assert!(page.set_cookie("gn_portal").contains("HttpOnly"));
    assert_eq!(b.get("/portal/").status, 200, "signed in");
    let accounts = admin_get(&server, &format!("/v1/admin/subscribers/{sub_id}/accounts"));
    let items = accounts["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{accounts}");
    assert_eq!(items[0]["email"], "vera@example.com");
    assert_eq!(items[0]["role"], "viewer");
    // She logs in again with her own password.
    let mut again = Browser::new(&server);
    assert_eq!(again.login("vera@example.com", PASSWORD).status, 303);

    // The one use is taken: someone else is refused, and nothing is created.
    let mut other = Browser::new(&server);
    let refused = accept(&mut other, &key, "Otto", "otto@example.com");
    assert_eq!(refused.status, 409, "{}", refused.body);
    // The same email again is not signed in by the page (it has its own password).
    let mut same = Browser::new(&server);
    assert_eq!(
        accept(&mut same, &key, "Vera", "vera@example.com").status,
        409
    );
    // A mistyped key is refused with 400.
    let mut typo = Browser::new(&server);
    // the last symbol changed (to one it is not), so the checksum refuses it
    let last = if key.ends_with('X') { 'Y' } else { 'X' };
    let bad = format!("{}{last}", &key[..key.len() - 1]);
    let csrf = typo.get("/portal/signup").csrf();
    let r = typo.post(
        &format!("/portal/invite/{bad}"),
        &[
            ("name", "T"),
            ("email", "t@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let accounts = admin_get(&server, &format!("/v1/admin/subscribers/{sub_id}/accounts"));
    assert_eq!(accounts["items"].as_array().unwrap().len(), 1);
}

#[test]
fn the_signup_forms_invitation_key_joins_the_inviting_subscriber_instead_of_creating_one() {
    let server = TestServer::builder()
        .settings(|s| s.portal_signup = PortalSignup::Invite)
        .start()
        .unwrap();
    let (sub_id, key) = invitation(&server, "manager", 0);
    let subscribers_before = admin_get(&server, "/v1/admin/subscribers?limit=500")["items"]
        .as_array()
        .unwrap()
        .len();
    let mut b = Browser::new(&server);
    let csrf = b.get("/portal/signup").csrf();
    let page = b.post(
        "/portal/signup",
        &[
            ("name", "Max Manager"),
            ("email", "max@example.com"),
            ("password", PASSWORD),
            ("invitation_key", &key),
            ("csrf_token", &csrf),
        ],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("you joined as manager"));
    assert!(!page.body.contains("id=\"new-key\""), "no key of its own");
    let after = admin_get(&server, "/v1/admin/subscribers?limit=500")["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, subscribers_before, "no subscriber created");
    let accounts = admin_get(&server, &format!("/v1/admin/subscribers/{sub_id}/accounts"));
    assert_eq!(accounts["items"][0]["role"], "manager");
}

#[test]
fn an_api_redemption_with_a_password_can_sign_in_to_the_portal() {
    let server = TestServer::start().unwrap();
    let (_, key) = invitation(&server, "viewer", 2);
    let r = Client::new()
        .post(format!("{}/v1/invitations/redemptions", server.url()))
        .json(
            &json!({"invitation_key": key, "email": "api@example.com", "name": "Api",
                      "password": PASSWORD}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut b = Browser::new(&server);
    assert_eq!(b.login("api@example.com", PASSWORD).status, 303);
    // Without a password the account exists but cannot sign in.
    let r = Client::new()
        .post(format!("{}/v1/invitations/redemptions", server.url()))
        .json(&json!({"invitation_key": key, "email": "nopw@example.com", "name": "No"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut c = Browser::new(&server);
    assert_eq!(c.login("nopw@example.com", PASSWORD).status, 401);
}

#[test]
fn the_console_issues_lists_and_revokes_licenses_enrollment_keys_and_invitations() {
    let server = TestServer::start().unwrap();
    let (c, base, token) = admin(&server);
    let post = |path: &str, body: Value| {
        let r = c
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 201, "POST {path}");
        r.json::<Value>().unwrap()
    };
    post(
        "/v1/admin/plugins",
        json!({"key": "payroll", "name": "Payroll", "commercial": true, "license_term_days": 30}),
    );
    let sub = post("/v1/admin/subscribers", json!({"name": "Kinds Co"}))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut v = Browser::new(&server);
    let csrf = v.get("/console/login").csrf();
    v.post(
        "/console/login",
        &[("token", server.admin_token()), ("csrf_token", &csrf)],
    );

    // A license: issued (the key shown once), listed, revoked.
    let csrf = v.get("/console/licenses").csrf();
    let issued = v.post(
        "/console/licenses",
        &[
            ("subscriber_id", &sub),
            ("plugin", "payroll"),
            ("csrf_token", &csrf),
        ],
    );
    assert_eq!(issued.status, 200, "{}", issued.body);
    assert!(key_of(&issued).starts_with("LIC-"));
    let list = v.get(&format!("/console/licenses?q={sub}"));
    assert!(list.body.contains("payroll") && list.body.contains("active"));
    let id = admin_get(&server, "/v1/admin/licenses")["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Renewed for one term (30 days) from its expiry.
    let before = admin_get(&server, &format!("/v1/admin/licenses/{id}"))["expires_at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    let r = v.post(
        &format!("/console/licenses/{id}/renew"),
        &[("csrf_token", &list.csrf())],
    );
    assert_eq!(r.status, 303);
    let after = admin_get(&server, &format!("/v1/admin/licenses/{id}"))["expires_at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    assert_eq!(after - before, chrono::Duration::days(30));
    let r = v.post(
        &format!("/console/licenses/{id}/revoke"),
        &[("csrf_token", &list.csrf())],
    );
    assert_eq!(r.status, 303);
    assert_eq!(
        admin_get(&server, &format!("/v1/admin/licenses/{id}"))["status"],
        "revoked"
    );
    // A plugin that is not in the catalogue is refused, and nothing is issued.
    let bad = v.post(
        "/console/licenses",
        &[
            ("subscriber_id", &sub),
            ("plugin", "nope"),
            ("csrf_token", &csrf),
        ],
    );
    assert!(bad.status.is_client_error(), "{}", bad.status);
    assert_eq!(
        admin_get(&server, "/v1/admin/licenses")["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // An enrollment key with two uses.
    let csrf = v.get("/console/enrollment-keys").csrf();
    let issued = v.post(
        "/console/enrollment-keys",
        &[
            ("subscriber_id", &sub),
            ("entity", "Lyon"),
            ("max_uses", "2"),
            ("csrf_token", &csrf),
        ],
    );
    let enr_key = key_of(&issued);
    assert!(enr_key.starts_with("ENR-"));
    assert!(v.get("/console/enrollment-keys").body.contains("0 of 2"));
    // An agent enrolls; the console lists it under its key and releases it (its use freed).
    let r = c
        .post(format!("{base}/v1/enrollments"))
        .json(&json!({"enrollment_key": enr_key, "agent_id": "pc-1", "hostname": "pc-1.lan"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let kid = admin_get(&server, "/v1/admin/enrollment-keys")["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let agents_path = format!("/console/enrollment-keys/{kid}/enrollments");
    assert!(
        v.get("/console/enrollment-keys")
            .body
            .contains(&agents_path)
    );
    let agents = v.get(&agents_path);
    assert_eq!(agents.status, 200);
    assert!(agents.body.contains("pc-1.lan"), "{}", agents.body);
    let eid = admin_get(
        &server,
        &format!("/v1/admin/enrollment-keys/{kid}/enrollments"),
    )["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = v.post(
        &format!("/console/enrollments/{eid}/release"),
        &[("csrf_token", &agents.csrf())],
    );
    assert_eq!(r.status, 303);
    assert_eq!(
        admin_get(&server, &format!("/v1/admin/enrollment-keys/{kid}"))["uses"],
        0
    );
    let bad = v.post(
        "/console/enrollment-keys",
        &[
            ("subscriber_id", &sub),
            ("entity", "Lyon"),
            ("max_uses", "-1"),
            ("csrf_token", &csrf),
        ],
    );
    assert_eq!(bad.status, 400);

    // An invitation: its link is shown once and opens the invitation page.
    let csrf = v.get("/console/invitations").csrf();
    let issued = v.post(
        "/console/invitations",
        &[
            ("subscriber_id", &sub),
            ("role", "manager"),
            ("max_uses", "1"),
            ("csrf_token", &csrf),
        ],
    );
    let link = key_of(&issued);
    assert!(
        link.starts_with(&format!("{base}/portal/invite/INV-")),
        "{link}"
    );
    let key = link.rsplit('/').next().unwrap();
    let mut member = Browser::new(&server);
    let dashboard = accept(&mut member, key, "Mia", "mia@example.com");
    assert_eq!(dashboard.status, 200, "{}", dashboard.body);
    // The dashboard lists the organisation's plugin licenses.
    assert!(
        dashboard.body.contains("class=\"licenses\""),
        "{}",
        dashboard.body
    );
    assert!(dashboard.body.contains("payroll") && dashboard.body.contains("revoked"));
    let inv = &admin_get(&server, "/v1/admin/invitations")["items"][0];
    assert_eq!(inv["role"], "manager");
    assert_eq!(inv["max_uses"], 1);
}

/// A `multipart/form-data` body, as a browser sends the console's upload form.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----glpinetworktestboundary7MA4YWxk";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                     Content-Type: application/gzip\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn the_console_uploads_a_plugin_archive_and_refuses_a_bad_one() {
    let server = TestServer::start().unwrap();
    let (c, base, token) = admin(&server);
    let r = c
        .post(format!("{base}/v1/admin/plugins"))
        .bearer_auth(&token)
        .json(&json!({"key": "uploaded", "name": "Uploaded"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut v = Browser::new(&server);
    let csrf = v.get("/console/login").csrf();
    v.post(
        "/console/login",
        &[("token", server.admin_token()), ("csrf_token", &csrf)],
    );
    let page = v.get("/console/plugins");
    assert!(page.body.contains("enctype=\"multipart/form-data\""));
    assert!(page.body.contains("type=\"file\""));
    let csrf = page.csrf();
    let archive = glpi_network_server::domain::archive::generate("uploaded", "Uploaded", "2.0.0");
    let send = |v: &mut Browser, archive: &[u8], csrf: &str| {
        let (ctype, body) = multipart(&[
            ("csrf_token", None, csrf.as_bytes()),
            ("key", None, b"uploaded"),
            ("num", None, b"2.0.0"),
            ("stability", None, b"stable"),
            ("compatibility", None, b""),
            ("archive", Some("uploaded-2.0.0.tar.gz"), archive),
        ]);
        let resp = v
            .client
            .post(format!("{}/console/plugins/versions", v.base))
            .header("cookie", v.cookie_header())
            .header("content-type", ctype)
            .body(body)
            .send()
            .unwrap();
        v.keep(resp)
    };
    // Without the CSRF token: 403, nothing added.
    assert_eq!(send(&mut v, &archive, "").status, 403);
    // A file that is not a plugin archive: refused, nothing added.
    let bad = send(&mut v, b"not a gzip archive at all", &csrf);
    assert_eq!(bad.status, 400, "{}", bad.body);
    let versions = |server: &TestServer| {
        admin_get(server, "/v1/admin/plugins/uploaded")["versions"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or(0)
    };
    assert_eq!(versions(&server), 0);
    // The real archive: added, and served byte for byte to a registered instance.
    assert_eq!(send(&mut v, &archive, &csrf).status, 303);
    assert_eq!(versions(&server), 1);
    let mut owner = Browser::new(&server);
    let key = key_of(&owner.signup("Buyer", "buyer@example.com"));
    let uid = "0f5b8c52-3c39-4d0f-9c6b-5f0d6c1e2a77";
    let r = Client::new()
        .post(format!("{base}/v1/registrations"))
        .json(
            &json!({"registration_key": key, "instance_url": "https://glpi.buyer.test",
                      "instance_uid": uid}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let served = Client::new()
        .get(format!(
            "{base}/api/marketplace/archives/uploaded-2.0.0.tar.gz"
        ))
        .header("accept", "application/json, */*")
        .header("user-agent", "GLPI/11.0.1 (installation-mode:TARBALL)")
        .header("x-registration-key", &key)
        .header("x-glpi-network-uid", uid)
        .send()
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().unwrap().as_ref(), archive.as_slice());
}

/// The invitation link shown once on a dashboard.
fn invite_link(page: &Page) -> String {
    let at = page
        .body
        .find("id=\"new-invite\">")
        .expect("the invitation link is shown")
        + 16;
    let end = page.body[at..].find('<').unwrap();
    page.body[at..at + end].to_owned()
}

#[test]
fn members_invite_the_roles_theirs_allows_and_viewers_cannot_invite() {
    let server = TestServer::start().unwrap();
    let base = server.url().to_owned();
    let mut owner = Browser::new(&server);
    let dash = owner.signup("Team Co", "boss@example.com");
    assert!(dash.body.contains("id=\"invite-role\""));
    let made = owner.post(
        "/portal/invitations",
        &[("role", "manager"), ("csrf_token", &dash.csrf())],
    );
    assert_eq!(made.status, 200, "{}", made.body);
    let link = invite_link(&made);
    let key = link
        .strip_prefix(&format!("{base}/portal/invite/"))
        .expect("a link to the invitation page");
    let mut manager = Browser::new(&server);
    let page = accept(&mut manager, key, "Manny", "manny@example.com");
    assert!(page.body.contains("you joined as manager"));
    // A manager may invite a viewer, not an owner.
    let csrf = page.csrf();
    let no = manager.post(
        "/portal/invitations",
        &[("role", "owner"), ("csrf_token", &csrf)],
    );
    assert_eq!(no.status, 403);
    let ok = manager.post(
        "/portal/invitations",
        &[("role", "viewer"), ("csrf_token", &csrf)],
    );
    assert_eq!(ok.status, 200);
    let viewer_key = invite_link(&ok).rsplit('/').next().unwrap().to_owned();
    let mut viewer = Browser::new(&server);
    let page = accept(&mut viewer, &viewer_key, "Vic", "vic@example.com");
    assert!(page.body.contains("you joined as viewer"));
    assert!(
        !page.body.contains("id=\"invite-role\""),
        "no form for a viewer"
    );
    let csrf = page.csrf();
    let no = viewer.post(
        "/portal/invitations",
        &[("role", "viewer"), ("csrf_token", &csrf)],
    );
    assert_eq!(no.status, 403);
    // Without the CSRF token: 403.
    assert_eq!(
        owner
            .post("/portal/invitations", &[("role", "viewer")])
            .status,
        403
    );
}

#[test]
fn failed_logins_are_counted_in_the_database_so_another_process_sees_them() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let start = || {
        TestServer::builder()
            .database_url(&db_url)
            .settings(|s| {
                s.failed_lookups_per_minute = 3;
                // one master key for both, as processes sharing a database have
                s.master_key = vec!["7".repeat(64)];
            })
            .start()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let mut on_a = Browser::new(&a);
    for _ in 0..3 {
        assert_eq!(
            on_a.login("nobody@example.com", "wrong password guess")
                .status,
            401
        );
    }
    // The other server has not seen this address fail, but the shared count is spent.
    let mut on_b = Browser::new(&b);
    let r = on_b.login("nobody@example.com", "wrong password guess");
    assert_eq!(r.status, 429, "{}", r.body);
    let csrf = on_b.get("/console/login").csrf();
    let r = on_b.post(
        "/console/login",
        &[
            ("token", "not-the-admin-token-at-all"),
            ("csrf_token", &csrf),
        ],
    );
    assert_eq!(r.status, 429);
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
