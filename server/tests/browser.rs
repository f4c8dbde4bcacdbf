//! The portal and the console in a real browser: Debian's `chromium` driven through
//! `chromedriver` (WebDriver) from Rust. A newcomer signs up, registers an instance with the
//! key the page shows, releases it, regenerates the key and logs out; a vendor issues a key,
//! suspends the subscription (the subscriber sees it) and reads the audit trail's verdict.
//! At 375 px no page scrolls sideways.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (packages `chromium` and
//! `chromium-driver`; `CHROMIUM` and `CHROMEDRIVER` override the paths). Without them the test
//! is skipped with a message, except under `CI`, where it fails. `SAVE_SCREENSHOTS=1` writes
//! `docs/portal-dashboard.png` and `docs/console.png`.

use fantoccini::{Client, ClientBuilder, Locator};
use glpi_network_server::TestServer;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var(env).unwrap_or_else(|_| default.to_owned()));
    p.exists().then_some(p)
}

/// The browser and its driver, or `None` (skip) when they are not installed outside CI.
fn tools() -> Option<(PathBuf, PathBuf)> {
    match (
        tool("CHROMIUM", "/usr/bin/chromium"),
        tool("CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) {
        (Some(b), Some(d)) => Some((b, d)),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "chromium and chromedriver are required in CI (apt-get install chromium chromium-driver)"
            )
        }
        _ => {
            eprintln!(
                "skipping the browser test: /usr/bin/chromium or /usr/bin/chromedriver is missing \
                 (apt-get install chromium chromium-driver)"
            );
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_driver(path: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    driver
}

async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": args}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session")
}

async fn fill(c: &Client, css: &str, text: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

/// Clicks a button that submits a form, and waits until the browser has left the page it was
/// on (the button goes stale), so that the next look-up reads the new page, not the old one.
async fn click(c: &Client, css: &str) {
    let button = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    button.clone().click().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Stale, or any other error while the old document unloads: the browser left the page.
    while button.is_displayed().await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "{css}: the page did not change within 10 s of the click"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Then wait for the new document to be loaded.
    loop {
        let state = c.execute("return document.readyState;", vec![]).await;
        if matches!(&state, Ok(v) if v == "complete") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css}: the next page did not load within 10 s of the click"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_stale(e: &fantoccini::error::CmdError) -> bool {
    matches!(e, fantoccini::error::CmdError::Standard(w)
        if w.error == fantoccini::error::ErrorStatus::StaleElementReference)
}

/// The text of the first element matching `css`, waiting up to 10 s for it to appear; an element
/// that goes stale while it is read (the page changed under it) is looked up again.
async fn text(c: &Client, css: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let el = c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match el.text().await {
            Ok(t) => return t,
            Err(e) if is_stale(&e) && std::time::Instant::now() < deadline => continue,
            Err(e) => panic!("{css}: {e}"),
        }
    }
}

async fn has(c: &Client, css: &str) -> bool {
    !c.find_all(Locator::Css(css)).await.unwrap().is_empty()
}

async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_owned()
}

/// At 375 px wide the page does not scroll sideways; back to desktop width afterwards.
async fn fits_a_phone(c: &Client, what: &str) {
    c.set_window_size(375, 812).await.unwrap();
    let v = c
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    let (scroll, inner) = (v[0].as_i64().unwrap(), v[1].as_i64().unwrap());
    assert_eq!(inner, 375, "the window is phone-wide");
    assert!(
        scroll <= inner,
        "{what} scrolls sideways at 375 px: {scroll} > {inner}"
    );
    c.set_window_size(1280, 900).await.unwrap();
}

async fn screenshot(c: &Client, file: &str) {
    if std::env::var("SAVE_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let png = c.screenshot().await.unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(file);
    std::fs::write(&path, png).unwrap();
    eprintln!("saved {}", path.display());
}

async fn register(server: &TestServer, key: &str, url: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{}/v1/registrations", server.url()))
        .json(&json!({"registration_key": key, "instance_url": url}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_and_a_vendor_do_their_tasks_in_a_real_browser() {
    let Some((chromium, chromedriver)) = tools() else {
        return;
    };
    let server = TestServer::start().unwrap();
    let base = server.url().to_owned();
    let driver = start_driver(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, &chromium, profile.path()).await;

    // A newcomer signs up and reads the key from the page.
    c.goto(&format!("{base}/portal/signup")).await.unwrap();
    fits_a_phone(&c, "the sign-up page").await;
    fill(&c, "#name", "Newcomer & Co <IT>").await;
    fill(&c, "#email", "newcomer@example.com").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "#signup").await;
    let key = text(&c, "#new-key").await;
    assert!(key.starts_with("GLPI-"), "{key}");
    assert_eq!(
        text(&c, "#org").await,
        "Newcomer & Co <IT>",
        "shown as text"
    );
    assert!(text(&c, ".offer").await.contains("GLPI Network Registered"));
    assert!(
        has(&c, "button[data-copy=new-key]:not([hidden])").await,
        "the script shows the copy button"
    );

    // It registers an instance with that key, and the dashboard shows the instance.
    assert_eq!(
        register(&server, &key, "https://glpi.newcomer.test").await,
        201
    );
    c.goto(&format!("{base}/portal/")).await.unwrap();
    assert_eq!(
        text(&c, ".instance-url").await,
        "https://glpi.newcomer.test"
    );
    assert!(!has(&c, "#new-key").await, "the key was shown once");
    screenshot(&c, "portal-dashboard.png").await;
    fits_a_phone(&c, "the dashboard").await;

    // Release it, then regenerate the key: the old one is refused afterwards.
    click(&c, "button.release").await;
    text(&c, ".no-instance").await;
    assert_eq!(path(&c).await, "/portal/");
    click(&c, "button.regenerate").await;
    let new_key = text(&c, "#new-key").await;
    assert_ne!(new_key, key);
    assert_eq!(
        register(&server, &key, "https://glpi.newcomer.test").await,
        403
    );
    assert_eq!(
        register(&server, &new_key, "https://glpi.newcomer.test").await,
        201
    );

    // Log out.
    click(&c, "#logout").await;
    text(&c, "#login").await;
    assert_eq!(path(&c).await, "/portal/login");

    // A vendor logs into the console and issues a key for the newcomer's subscription.
    c.goto(&format!("{base}/console/login")).await.unwrap();
    fits_a_phone(&c, "the console login").await;
    fill(&c, "#token", server.admin_token()).await;
    click(&c, "#login").await;
    text(&c, "h1").await;
    assert_eq!(path(&c).await, "/console/subscribers");
    c.goto(&format!("{base}/console/subscriptions?q=newcomer"))
        .await
        .unwrap();
    click(&c, "button.issue-key").await;
    let issued = text(&c, "#new-key").await;
    assert!(issued.starts_with("GLPI-") && issued != new_key);

    // It suspends the subscription; the subscriber's dashboard shows it.
    c.goto(&format!("{base}/console/subscriptions?q=newcomer"))
        .await
        .unwrap();
    click(&c, "button.suspend").await;
    assert_eq!(text(&c, "td.status").await, "suspended");
    screenshot(&c, "console.png").await;
    fits_a_phone(&c, "the console's subscriptions").await;
    c.goto(&format!("{base}/portal/login")).await.unwrap();
    fill(&c, "#email", "newcomer@example.com").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "#login").await;
    assert_eq!(text(&c, "[data-status]").await, "suspended");

    // The audit trail, with audit verify's answer.
    c.goto(&format!("{base}/console/audit")).await.unwrap();
    assert_eq!(text(&c, ".verify").await, "intact");
    let trail = text(&c, "table").await;
    for action in [
        "account.signup",
        "registration.release",
        "key.regenerate",
        "subscription.suspend",
        "console.login",
    ] {
        assert!(trail.contains(action), "the trail shows {action}");
    }
    fits_a_phone(&c, "the audit trail").await;

    // A colleague accepts an invitation to the newcomer's organisation on its page.
    let http = reqwest::Client::new();
    let subscribers: serde_json::Value = http
        .get(format!("{base}/v1/admin/subscribers?limit=500"))
        .bearer_auth(server.admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org = subscribers["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == "newcomer@example.com")
        .expect("the newcomer's organisation")["id"]
        .clone();
    let inv: serde_json::Value = http
        .post(format!("{base}/v1/admin/invitations"))
        .bearer_auth(server.admin_token())
        .json(&json!({"subscriber_id": org, "role": "viewer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = inv["url"].as_str().expect("the invitation's URL");
    c.goto(url).await.unwrap();
    fits_a_phone(&c, "the invitation page").await;
    fill(&c, "#name", "Colleague").await;
    fill(&c, "#email", "colleague@example.com").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "#accept").await;
    assert!(text(&c, ".notice").await.contains("you joined as viewer"));
    assert_eq!(text(&c, "#org").await, "Newcomer & Co <IT>");

    c.close().await.unwrap();
}
