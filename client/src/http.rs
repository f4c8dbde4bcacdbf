//! The blocking HTTP layer: one ureq agent with bounded timeouts, no redirects, and answers
//! read up to a size limit so a huge body is refused without being read whole.

use crate::error::Error;
use glpi_network_shared::ErrorEnvelope;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// The largest answer body the client reads (1 MiB); a larger one is refused.
pub const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// An answer: status, `Date` header and body (at most [`MAX_RESPONSE_BYTES`]).
pub(crate) struct Reply {
    pub status: u16,
    pub date: Option<String>,
    pub body: Vec<u8>,
}

/// The agent and its limits.
#[derive(Clone)]
pub(crate) struct Http {
    agent: ureq::Agent,
    max_body: u64,
    total: Duration,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl Http {
    /// An agent whose connection phase is bounded by `connect` and whole calls by `total`,
    /// trusting `roots` for TLS.
    pub fn new(connect: Duration, total: Duration, roots: RootCerts) -> Self {
        let agent = ureq::Agent::config_builder()
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .http_status_as_error(false)
            .timeout_connect(Some(connect))
            .timeout_global(Some(total))
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(concat!("glpi-network-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Http {
            agent,
            max_body: MAX_RESPONSE_BYTES,
            total,
        }
    }

    /// `GET base + path`.
    pub fn get(&self, base: &str, path: &str) -> Result<Reply, Error> {
        let res = self.agent.get(&url(base, path)).call();
        self.read(res)
    }

    /// `POST base + path` with a JSON body.
    pub fn post<B: Serialize>(&self, base: &str, path: &str, body: &B) -> Result<Reply, Error> {
        let res = self.agent.post(&url(base, path)).send_json(body);
        self.read(res)
    }

    /// `DELETE base + path` with a JSON body.
    pub fn delete<B: Serialize>(&self, base: &str, path: &str, body: &B) -> Result<Reply, Error> {
        let res = self
            .agent
            .delete(&url(base, path))
            .force_send_body()
            .send_json(body);
        self.read(res)
    }

    fn read(
        &self,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, Error> {
        let err = |e| transport_error(e, self.total);
        let res = res.map_err(err)?;
        let status = res.status().as_u16();
        let date = res
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = res
            .into_body()
            .into_with_config()
            .limit(self.max_body)
            .read_to_vec()
            .map_err(err)?;
        Ok(Reply { status, date, body })
    }
}

/// The roots TLS trusts: the platform's certificate store (on Linux the system bundle, or
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` when set) plus the certificates of `ca_files`. With neither
/// (a system without a store), the Mozilla roots built into the client.
pub(crate) fn root_certs(ca_files: &[PathBuf]) -> Result<RootCerts, Error> {
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for path in ca_files {
        let bad = |why: String| Error::Config(format!("CA file {}: {why}", path.display()));
        let pem = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
        let before = certs.len();
        for item in ureq::tls::parse_pem(&pem) {
            if let PemItem::Certificate(c) = item.map_err(|e| bad(format!("not valid PEM: {e}")))? {
                certs.push(c);
            }
        }
        if certs.len() == before {
            return Err(bad("holds no PEM certificate".into()));
        }
    }
    let platform = rustls_native_certs::load_native_certs();
    for e in &platform.errors {
        tracing::debug!("the platform's certificate store: {e}");
    }
    if platform.certs.is_empty() {
        if certs.is_empty() {
            return Ok(RootCerts::WebPki);
        }
        tracing::warn!("no platform certificate store found: trusting only the CA file");
    }
    certs.extend(
        platform
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned()),
    );
    Ok(RootCerts::Specific(Arc::new(certs)))
}

fn url(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

fn transport_error(e: ureq::Error, total: Duration) -> Error {
    let within = format!("no complete answer within {} s", total.as_secs_f32());
    let timed_out = |t: Option<ureq::Timeout>| match t {
        Some(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
            Error::Unreachable("timed out while connecting".into())
        }
        _ => Error::Unreachable(format!("timed out: {within}")),
    };
    match e {
        ureq::Error::BodyExceedsLimit(n) => {
            Error::InvalidResponse(format!("the answer is larger than {n} bytes"))
        }
        ureq::Error::Timeout(t) => timed_out(Some(t)),
        ureq::Error::Protocol(p) => Error::InvalidResponse(format!("not valid HTTP: {p}")),
        ureq::Error::BadUri(u) => Error::Config(format!("invalid server URL: {u}")),
        ureq::Error::Rustls(e) => Error::Unreachable(format!("TLS failed: {e}")),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => timed_out(None),
        // The handshake's refusals (an untrusted certificate...) arrive wrapped in I/O errors.
        ureq::Error::Io(io) => match io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            Some(tls) => Error::Unreachable(format!("TLS failed: {tls}")),
            None => Error::Unreachable(ureq::Error::Io(io).to_string()),
        },
        other => Error::Unreachable(other.to_string()),
    }
}

impl Reply {
    /// Whether the status is `2xx`.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as `T` for a `2xx`, or the server's error for anything else.
    pub fn json<T: DeserializeOwned>(self) -> Result<T, Error> {
        self.expect_success()?;
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::InvalidResponse(format!("not the expected JSON: {e}")))
    }

    /// `Ok` for a `2xx`; the server's error (from its envelope when it sent one) otherwise.
    pub fn expect_success(&self) -> Result<(), Error> {
        if self.is_success() {
            return Ok(());
        }
        Err(match serde_json::from_slice::<ErrorEnvelope>(&self.body) {
            Ok(env) => Error::Server {
                status: self.status,
                code: Some(env.error.code),
                message: env.error.message,
            },
            Err(_) => Error::Server {
                status: self.status,
                code: None,
                message: snippet(&self.body),
            },
        })
    }
}

/// The start of a body, for messages about answers that are not the error envelope.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.is_empty() {
        "no error body".to_owned()
    } else {
        text
    }
}
