//! A small hand-written HTTP server that plays the licensing server and can lie: it signs
//! tokens with its own Ed25519 keys and answers whatever the test's handler says, including
//! hanging and streaming an endless body.

use glpi_network_shared::token::{self, AUDIENCE};
use glpi_network_shared::{Claims, ValidationStatus};
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::JwkSet;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

/// A request as the handler sees it.
pub struct Req {
    pub path: String,
    pub body: Value,
}

/// What to answer.
pub enum Reply {
    Json(u16, Value),
    /// A body sent as it is, with `Content-Type: application/json`.
    Body(u16, String),
    /// Accept the request and never answer.
    Hang,
    /// Stream a JSON-looking body without end (50 MB at most), without `Content-Length`.
    Endless,
}

/// An Ed25519 signing key with its kid.
pub struct SigningKey {
    pub kid: String,
    pub public: Vec<u8>,
    pub encoding: EncodingKey,
}

impl SigningKey {
    pub fn generate(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        SigningKey {
            kid: kid.to_owned(),
            public: pair.public_key().as_ref().to_vec(),
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        token::sign(claims, &self.kid, &self.encoding).unwrap()
    }
}

/// The JWKS publishing `keys`.
pub fn jwks_of(keys: &[&SigningKey]) -> Value {
    let set = JwkSet {
        keys: keys
            .iter()
            .map(|k| token::ed25519_jwk(&k.kid, &k.public).unwrap())
            .collect(),
    };
    serde_json::to_value(set).unwrap()
}

/// The forger's keys and defaults: `k1` is published in the JWKS, `k2` is not.
pub struct Forge {
    pub issuer: String,
    pub k1: SigningKey,
    pub k2: SigningKey,
    /// Seconds added to the `Date` header.
    pub date_offset: AtomicI64,
}

impl Forge {
    pub fn jwks(&self) -> Value {
        jwks_of(&[&self.k1])
    }

    /// Honest claims for the request: its instance URL and nonce, valid for a day.
    pub fn claims(&self, req: &Req, ver: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            sub: "key-1".into(),
            iat: now,
            nbf: now,
            exp: now + 86_400,
            jti: format!("jti-{now}-{ver}"),
            status: ValidationStatus::Valid,
            valid: true,
            instance_url: req.body["instance_url"].as_str().map(str::to_owned),
            instance_uid: None,
            offer: "basic".into(),
            offer_title: "GLPI Network Basic".into(),
            entitlements: vec!["support".into()],
            subscription_begin: None,
            subscription_end: None,
            owner: "Hostile Ltd".into(),
            grace_until: now + 8 * 86_400,
            ver,
            nonce: req.body["nonce"].as_str().map(str::to_owned),
        }
    }

    /// The answer of `/v1/registrations` or `/v1/validations` carrying `token`.
    pub fn answer(&self, token: String) -> Reply {
        Reply::Json(
            200,
            json!({
                "valid": true, "status": "valid", "token": token,
                "registration": {
                    "id": "r1", "key_id": "key-1", "key_prefix": "GLPI-TEST",
                    "instance_url": null, "instance_uid": null,
                    "bound_at": "2026-01-01T00:00:00Z", "last_seen_at": "2026-01-01T00:00:00Z",
                    "released_at": null
                }
            }),
        )
    }

    /// The honest answer: JWKS, health, and tokens signed with `k1` at `ver`.
    pub fn honest(&self, req: &Req, ver: i64) -> Reply {
        match req.path.as_str() {
            "/.well-known/jwks.json" => Reply::Json(200, self.jwks()),
            "/healthz" => Reply::Json(200, json!({"status": "ok"})),
            _ => self.answer(self.k1.sign(&self.claims(req, ver))),
        }
    }
}

type Handler = Box<dyn Fn(&Forge, &Req) -> Reply + Send + Sync>;

/// A running hostile server.
pub struct Hostile {
    pub url: String,
    pub forge: Arc<Forge>,
    handler: Arc<Mutex<Arc<Handler>>>,
    /// How many times the JWKS was fetched.
    pub jwks_fetches: Arc<AtomicUsize>,
    /// Bytes written by each endless body, sent when it stops.
    pub endless_done: Mutex<mpsc::Receiver<usize>>,
    stopping: Arc<AtomicBool>,
}

impl Hostile {
    /// Starts a server that answers honestly until told otherwise.
    pub fn start() -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let forge = Arc::new(Forge {
            issuer: url.clone(),
            k1: SigningKey::generate("k1"),
            k2: SigningKey::generate("k2"),
            date_offset: AtomicI64::new(0),
        });
        let honest: Handler = Box::new(|f, r| f.honest(r, 1));
        let handler = Arc::new(Mutex::new(Arc::new(honest)));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let ctx = (
            forge.clone(),
            handler.clone(),
            jwks_fetches.clone(),
            stopping.clone(),
        );
        std::thread::spawn(move || {
            let (forge, handler, fetches, stopping) = ctx;
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (forge, handler, fetches, tx) =
                    (forge.clone(), handler.clone(), fetches.clone(), tx.clone());
                std::thread::spawn(move || serve(stream, &forge, &handler, &fetches, &tx));
            }
        });
        Hostile {
            url,
            forge,
            handler,
            jwks_fetches,
            endless_done: Mutex::new(rx),
            stopping,
        }
    }

    /// Replaces the handler.
    pub fn set(&self, f: impl Fn(&Forge, &Req) -> Reply + Send + Sync + 'static) {
        *self.handler.lock().unwrap() = Arc::new(Box::new(f));
    }

    pub fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn serve(
    stream: TcpStream,
    forge: &Forge,
    handler: &Mutex<Arc<Handler>>,
    fetches: &AtomicUsize,
    done: &mpsc::Sender<usize>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            len = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    if path == "/.well-known/jwks.json" {
        fetches.fetch_add(1, Ordering::SeqCst);
    }
    let req = Req {
        path,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let h = handler.lock().unwrap().clone();
    let date =
        chrono::Utc::now() + chrono::Duration::seconds(forge.date_offset.load(Ordering::SeqCst));
    let date = date.format("%a, %d %b %Y %H:%M:%S GMT");
    let mut out = stream;
    let head = |status: u16, len: Option<usize>| {
        let len = len
            .map(|n| format!("Content-Length: {n}\r\n"))
            .unwrap_or_default();
        format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{len}Date: {date}\r\nConnection: close\r\n\r\n"
        )
    };
    match h(forge, &req) {
        Reply::Json(status, v) => {
            let b = v.to_string();
            let _ = write!(out, "{}{b}", head(status, Some(b.len())));
        }
        Reply::Body(status, b) => {
            let _ = write!(out, "{}{b}", head(status, Some(b.len())));
        }
        Reply::Hang => {
            // Hold the connection until the client gives up and closes it.
            let mut sink = [0u8; 64];
            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
        }
        Reply::Endless => {
            let mut written = 0usize;
            let chunk = vec![b'A'; 64 * 1024];
            let start = head(200, None) + r#"{"valid":true,"status":"valid","token":""#;
            if out.write_all(start.as_bytes()).is_ok() {
                while written < 50 * 1024 * 1024 && out.write_all(&chunk).is_ok() {
                    written += chunk.len();
                }
            }
            let _ = done.send(written);
        }
    }
}
