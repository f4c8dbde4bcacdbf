//! Test mode: armed faults, the request journal, and the middleware that applies both.
//! Nothing here exists unless the server runs with `--test-mode`.

pub mod fixtures;
pub mod kinds;
pub mod routes;
pub mod server;

use crate::app::AppState;
use crate::domain::clock::Clock;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use glpi_network_shared::{ErrorCode, ErrorEnvelope, RegistrationKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// How many requests the journal keeps (oldest dropped first).
pub const JOURNAL_CAPACITY: usize = 10_000;
/// The memory the journal may take, about (oldest entries dropped first): whole headers at
/// [`JOURNAL_CAPACITY`] took about 1 GB.
pub const JOURNAL_MAX_BYTES: usize = 16 * 1024 * 1024;
/// Longest header value (and path) kept in the journal, in bytes; longer ones are cut and end
/// with `…`.
pub const JOURNAL_MAX_VALUE: usize = 512;
/// Headers kept per journal entry (the rest are left out).
pub const JOURNAL_MAX_HEADERS: usize = 64;
/// The longest fault rule path.
pub const MAX_RULE_PATH: usize = 1024;
/// The longest `delay` or `hang` a rule may ask for.
pub const MAX_FAULT_MS: u64 = 120_000;
/// A `hang` without `ms` lasts this long, then answers `504`.
pub const DEFAULT_HANG_MS: u64 = 30_000;

/// What an armed rule does to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Wait `ms`, then serve normally.
    Delay,
    /// Answer `status` with the error envelope, without running the handler.
    Status,
    /// Answer `200` with an empty body.
    EmptyBody,
    /// Answer `200` with a body that is not JSON.
    InvalidJson,
    /// Wait `ms` (default 30 s, at most 120 s), then answer `504`.
    Hang,
    /// Close the connection in the middle of the answer.
    Reset,
    /// Serve normally, but corrupt the signature of the `token` in the answer.
    BadSignature,
    /// Serve normally, but make the `token` name a `kid` the JWKS does not have.
    UnknownKid,
}

/// One rule of `POST /_test/faults`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FaultRule {
    /// The path, `*` matching any run of characters (`/api/marketplace/*`).
    pub path: String,
    #[serde(default)]
    pub method: Option<String>,
    pub kind: FaultKind,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub ms: Option<u64>,
    /// Fire on the next N matching calls only (default: every call).
    #[serde(default)]
    pub times: Option<u64>,
    /// Fire with this probability (0..=1) on each matching call.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Seed of the probability draws, so a run repeats.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl FaultRule {
    fn check(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err("path must start with '/'".into());
        }
        if self.path.len() > MAX_RULE_PATH {
            return Err(format!("path must be at most {MAX_RULE_PATH} bytes"));
        }
        if self.kind == FaultKind::Status && !self.status.is_some_and(|s| (100..=599).contains(&s))
        {
            return Err("kind status needs a status between 100 and 599".into());
        }
        if self.ms.is_some_and(|ms| ms > MAX_FAULT_MS) {
            return Err(format!("ms must be at most {MAX_FAULT_MS}"));
        }
        if self.probability.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
            return Err("probability must be between 0 and 1".into());
        }
        if self.times == Some(0) {
            return Err("times must be at least 1".into());
        }
        Ok(())
    }
}

/// An armed rule and its counters.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ArmedFault {
    pub id: u64,
    #[serde(flatten)]
    pub rule: FaultRule,
    /// How many calls it changed.
    pub fired: u64,
    /// How many more it will change (`null`: no limit).
    pub remaining: Option<u64>,
    #[serde(skip)]
    rng: u64,
}

/// A journal entry: never the plaintext key.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JournalEntry {
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    #[serde(skip)]
    pub uid: Option<String>,
    #[serde(skip)]
    pub key_prefix: Option<String>,
}

impl JournalEntry {
    /// About what the entry takes in memory.
    fn approx_bytes(&self) -> usize {
        // a BTreeMap entry costs about its two Strings plus its share of a node
        const PER_HEADER: usize = 2 * std::mem::size_of::<String>() + 16;
        std::mem::size_of::<Self>()
            + std::mem::size_of::<Arc<Self>>()
            + self.method.len()
            + self.path.len()
            + self.uid.as_ref().map_or(0, String::len)
            + self.key_prefix.as_ref().map_or(0, String::len)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + PER_HEADER)
                .sum::<usize>()
    }
}

/// The journal: entries (shared, so a query copies pointers under the lock, not entries) and
/// their total size.
#[derive(Debug, Default)]
struct Journal {
    entries: VecDeque<(Arc<JournalEntry>, usize)>,
    bytes: usize,
}

/// The state of test mode.
#[derive(Debug, Default)]
pub struct TestMode {
    faults: Mutex<(u64, Vec<ArmedFault>)>,
    journal: Mutex<Journal>,
}

/// A fault chosen for one request.
#[derive(Debug, Clone, Copy)]
struct Fired {
    id: u64,
    kind: FaultKind,
    status: Option<u16>,
    ms: Option<u64>,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    glob_steps(pattern.as_bytes(), text.as_bytes()).0
}

/// The classic two-pointer wildcard match: on a mismatch, only the latest `*` is retried, one
/// character further, so the work is at most `(pattern + 1) * (text + 1)` steps, never
/// exponential (a recursive match took 4.5 s on a 7-star filter). Returns whether `pattern`
/// matches and the number of steps taken. Bytes are compared: the literals of a `&str` pattern
/// are whole characters, so a match always ends on character boundaries.
fn glob_steps(pattern: &[u8], text: &[u8]) -> (bool, u64) {
    let (mut p, mut t) = (0, 0);
    // the position after the latest `*`, and where in `text` it started matching
    let mut star: Option<(usize, usize)> = None;
    let mut steps = 0u64;
    while t < text.len() {
        steps += 1;
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p + 1, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            // let the latest `*` swallow one more character and retry from there
            p = sp;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return (false, steps);
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        steps += 1;
        p += 1;
    }
    (p == pattern.len(), steps)
}

impl TestMode {
    /// Arms rules (all or none); returns them with their ids.
    pub fn arm(&self, rules: Vec<FaultRule>) -> Result<Vec<ArmedFault>, String> {
        for (i, r) in rules.iter().enumerate() {
            r.check().map_err(|e| format!("rules[{i}]: {e}"))?;
        }
        let mut guard = self.faults.lock().expect("faults lock");
        let mut out = Vec::new();
        for rule in rules {
            guard.0 += 1;
            let armed = ArmedFault {
                id: guard.0,
                fired: 0,
                remaining: rule.times,
                rng: rule.seed.unwrap_or(guard.0),
                rule,
            };
            out.push(armed.clone());
            guard.1.push(armed);
        }
        Ok(out)
    }

    pub fn faults(&self) -> Vec<ArmedFault> {
        self.faults.lock().expect("faults lock").1.clone()
    }

    pub fn clear_faults(&self) {
        self.faults.lock().expect("faults lock").1.clear();
    }

    /// The first armed rule that fires for this request, counted. The paths are matched
    /// outside the lock (on a copy of the rules' ids and paths), so no request waits on
    /// another's matching.
    fn take(&self, method: &str, path: &str) -> Option<Fired> {
        let rules: Vec<(u64, String, Option<String>)> = {
            let guard = self.faults.lock().expect("faults lock");
            guard
                .1
                .iter()
                .filter(|f| f.remaining != Some(0))
                .map(|f| (f.id, f.rule.path.clone(), f.rule.method.clone()))
                .collect()
        };
        let matching: Vec<u64> = rules
            .into_iter()
            .filter(|(_, p, m)| {
                glob(p, path) && m.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            })
            .map(|(id, _, _)| id)
            .collect();
        if matching.is_empty() {
            return None;
        }
        let mut guard = self.faults.lock().expect("faults lock");
        for f in guard.1.iter_mut() {
            if f.remaining == Some(0) || !matching.contains(&f.id) {
                continue;
            }
            if let Some(p) = f.rule.probability {
                let draw = (splitmix(&mut f.rng) >> 11) as f64 / (1u64 << 53) as f64;
                if draw >= p {
                    continue;
                }
            }
            f.fired += 1;
            if let Some(r) = f.remaining.as_mut() {
                *r -= 1;
            }
            return Some(Fired {
                id: f.id,
                kind: f.rule.kind,
                status: f.rule.status,
                ms: f.rule.ms,
            });
        }
        None
    }

    /// Appends an entry, dropping the oldest ones while over [`JOURNAL_CAPACITY`] entries or
    /// [`JOURNAL_MAX_BYTES`].
    fn record(&self, entry: JournalEntry) {
        let size = entry.approx_bytes();
        let entry = Arc::new(entry);
        let mut j = self.journal.lock().expect("journal lock");
        while j.entries.len() >= JOURNAL_CAPACITY || j.bytes + size > JOURNAL_MAX_BYTES {
            let Some((_, old)) = j.entries.pop_front() else {
                break;
            };
            j.bytes -= old;
        }
        j.bytes += size;
        j.entries.push_back((entry, size));
    }

    /// Entries and bytes the journal holds now.
    pub fn journal_size(&self) -> (usize, usize) {
        let j = self.journal.lock().expect("journal lock");
        (j.entries.len(), j.bytes)
    }

    /// The latest `limit` entries matching the filters, oldest first.
    pub fn journal(
        &self,
        path: Option<&str>,
        uid: Option<&str>,
        key_prefix: Option<&str>,
        limit: usize,
    ) -> Vec<JournalEntry> {
        // copy the pointers and match outside the lock, so a slow filter never holds up the
        // requests being journaled
        let all: Vec<Arc<JournalEntry>> = {
            let j = self.journal.lock().expect("journal lock");
            j.entries.iter().map(|(e, _)| e.clone()).collect()
        };
        let matching: Vec<&Arc<JournalEntry>> = all
            .iter()
            .filter(|e| path.is_none_or(|p| glob(p, &e.path)))
            .filter(|e| uid.is_none_or(|u| e.uid.as_deref() == Some(u)))
            .filter(|e| {
                key_prefix.is_none_or(|k| {
                    e.key_prefix
                        .as_deref()
                        .is_some_and(|p| p.starts_with(k) || k.starts_with(p))
                })
            })
            .collect();
        let skip = matching.len().saturating_sub(limit);
        matching
            .into_iter()
            .skip(skip)
            .map(|e| JournalEntry::clone(e))
            .collect()
    }

    /// Empties faults and journal (`POST /_test/reset`).
    pub fn reset(&self) {
        self.clear_faults();
        *self.journal.lock().expect("journal lock") = Journal::default();
    }
}

/// `s` cut to at most [`JOURNAL_MAX_VALUE`] bytes (on a character boundary, ending with `…`).
fn bounded(mut s: String) -> String {
    if s.len() > JOURNAL_MAX_VALUE {
        let mut end = JOURNAL_MAX_VALUE - '…'.len_utf8();
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Header names lower-cased; the registration key replaced by its display prefix; credentials
/// redacted; at most [`JOURNAL_MAX_HEADERS`] headers, each name and value cut to
/// [`JOURNAL_MAX_VALUE`] bytes.
fn journal_headers(
    req: &ServiceRequest,
) -> (BTreeMap<String, String>, Option<String>, Option<String>) {
    bounded_headers(
        req.headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    )
}

fn bounded_headers<'a>(
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> (BTreeMap<String, String>, Option<String>, Option<String>) {
    let mut out = BTreeMap::new();
    let mut key_prefix = None;
    let mut uid = None;
    for (name, value) in headers {
        let name = bounded(name.to_ascii_lowercase());
        let value = String::from_utf8_lossy(value).into_owned();
        let shown = match name.as_str() {
            "x-registration-key" => {
                let p = RegistrationKey::parse(&value)
                    .map(|k| k.display_prefix())
                    .unwrap_or_default();
                key_prefix = Some(p.clone());
                format!("{p}…")
            }
            "authorization" | "cookie" | "proxy-authorization" => "<redacted>".to_owned(),
            "x-glpi-network-uid" => {
                uid = Some(bounded(value.trim().to_owned()));
                value
            }
            _ => value,
        };
        if out.len() < JOURNAL_MAX_HEADERS || out.contains_key(&name) {
            out.insert(name, bounded(shown));
        }
    }
    (out, uid, key_prefix)
}

/// A body that fails at once: the connection is closed mid-answer.
struct ResetBody;

impl MessageBody for ResetBody {
    type Error = std::io::Error;
    fn size(&self) -> BodySize {
        BodySize::Stream
    }
    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected reset",
        ))))
    }
}

fn envelope(status: StatusCode, rule: u64) -> HttpResponse {
    let code = if status.is_server_error() {
        ErrorCode::Internal
    } else {
        ErrorCode::InvalidRequest
    };
    HttpResponse::build(status).json(ErrorEnvelope::new(
        code,
        format!("injected fault (rule {rule})"),
    ))
}

/// Rewrites the `token` of a JSON answer: a flipped signature byte, or an unknown `kid`.
fn tamper(body: &[u8], kind: FaultKind) -> Option<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = v.get("token")?.as_str()?.to_owned();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    if parts.len() != 3 {
        return None;
    }
    match kind {
        FaultKind::BadSignature => {
            let mut sig = URL_SAFE_NO_PAD.decode(&parts[2]).ok()?;
            *sig.first_mut()? ^= 0x01;
            parts[2] = URL_SAFE_NO_PAD.encode(sig);
        }
        FaultKind::UnknownKid => {
            let mut h: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[0]).ok()?).ok()?;
            h["kid"] = serde_json::Value::String("unknown-kid-injected-by-test-mode".into());
            parts[0] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&h).ok()?);
        }
        _ => return None,
    }
    v["token"] = serde_json::Value::String(parts.join("."));
    serde_json::to_vec(&v).ok()
}

/// Applies armed faults and writes the journal. `/_test/*` is never faulted nor journaled.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some((tm, clock)) = state.and_then(|s| s.test_mode.clone().map(|t| (t, s.clock.clone())))
    else {
        return next.call(req).await;
    };
    if req.path().starts_with("/_test") {
        return next.call(req).await;
    }
    let method = bounded(req.method().to_string());
    let path = req.path().to_owned();
    let (headers, uid, key_prefix) = journal_headers(&req);
    let fired = tm.take(&method, &path);
    let path = bounded(path);
    let res = run(req, next, fired).await;
    let status = res.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
    tm.record(JournalEntry {
        at: clock_now(&clock),
        method,
        path,
        status,
        headers,
        uid,
        key_prefix,
    });
    res
}

fn clock_now(clock: &Clock) -> DateTime<Utc> {
    clock.now()
}

async fn run(
    req: ServiceRequest,
    next: Next<BoxBody>,
    fired: Option<Fired>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(f) = fired else {
        return next.call(req).await;
    };
    let sleep = |ms: u64| actix_web::rt::time::sleep(Duration::from_millis(ms.min(MAX_FAULT_MS)));
    let respond = |req: ServiceRequest, resp: HttpResponse| Ok(req.into_response(resp));
    match f.kind {
        FaultKind::Delay => {
            sleep(f.ms.unwrap_or(1000)).await;
            next.call(req).await
        }
        FaultKind::Hang => {
            sleep(f.ms.unwrap_or(DEFAULT_HANG_MS)).await;
            respond(req, envelope(StatusCode::GATEWAY_TIMEOUT, f.id))
        }
        FaultKind::Status => {
            let status = StatusCode::from_u16(f.status.unwrap_or(503))
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            respond(req, envelope(status, f.id))
        }
        FaultKind::EmptyBody => respond(
            req,
            HttpResponse::Ok().content_type("application/json").finish(),
        ),
        FaultKind::InvalidJson => respond(
            req,
            HttpResponse::Ok()
                .content_type("application/json")
                .body("{\"is_valid\": tru"),
        ),
        FaultKind::Reset => respond(
            req,
            HttpResponse::Ok()
                .content_type("application/json")
                .body(ResetBody),
        ),
        FaultKind::BadSignature | FaultKind::UnknownKid => {
            let res = next.call(req).await?;
            let (req, res) = res.into_parts();
            let (head, body) = res.into_parts();
            let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
            let new = tamper(&bytes, f.kind).unwrap_or_else(|| bytes.to_vec());
            Ok(ServiceResponse::new(req, head.set_body(BoxBody::new(new))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14 #12: a 7-star journal filter took 4.5 s (recursive backtracking) and held the
    /// journal lock, so `/healthz` waited 4.3 s.
    #[test]
    fn glob_matching_is_polynomial_on_pathological_patterns() {
        let text = "a".repeat(10_000);
        for stars in [7, 20, 100] {
            let pattern = format!("{}b", "*a".repeat(stars));
            let (matched, steps) = glob_steps(pattern.as_bytes(), text.as_bytes());
            assert!(!matched);
            let bound = (pattern.len() as u64 + 1) * (text.len() as u64 + 1);
            assert!(steps <= bound, "{stars} stars: {steps} steps > {bound}");
        }
        // the journal query that used to take seconds
        let tm = TestMode::default();
        for _ in 0..200 {
            tm.record(entry(&format!("/{}", "a".repeat(200)), 0));
        }
        let filter = format!("{}b", "*a".repeat(7));
        assert!(tm.journal(Some(&filter), None, None, 100).is_empty());
        assert_eq!(
            tm.journal(Some("/*a*a*a*a*a*a*a"), None, None, 500).len(),
            200
        );
    }

    #[test]
    fn globs_match_like_shell_stars() {
        assert!(glob("", ""));
        assert!(!glob("", "x"));
        assert!(glob("**", ""));
        assert!(glob("/a*b*c", "/aXbYbZc"));
        assert!(!glob("/a*b*c", "/aXbYbZ"));
        assert!(glob("/é*ü", "/éàü"));
        assert!(glob("*/x", "/x/x"));
        assert!(glob("/v1/validations", "/v1/validations"));
        assert!(!glob("/v1/validations", "/v1/validations/x"));
        assert!(glob("/api/marketplace/*", "/api/marketplace/plugins"));
        assert!(glob("/api/*/plugins", "/api/glpi-plugins/plugins"));
        assert!(glob("*", "/anything"));
        assert!(!glob("/api/*/plugins", "/api/marketplace/tags"));
    }

    fn entry(path: &str, header_bytes: usize) -> JournalEntry {
        JournalEntry {
            at: DateTime::<Utc>::UNIX_EPOCH,
            method: "GET".into(),
            path: path.into(),
            status: 200,
            headers: BTreeMap::from([("x-big".to_owned(), "h".repeat(header_bytes))]),
            uid: None,
            key_prefix: None,
        }
    }

    /// Issue 14 #13: whole headers at 10,000 entries took about 1 GB.
    #[test]
    fn the_journal_is_bounded_in_bytes_dropping_the_oldest_first() {
        // each header value cut to JOURNAL_MAX_VALUE, the number of headers capped
        let huge = "v".repeat(100_000);
        let names: Vec<String> = (0..200).map(|i| format!("X-Header-{i}")).collect();
        let (headers, uid, _) = bounded_headers(
            names
                .iter()
                .map(|n| (n.as_str(), huge.as_bytes()))
                .chain([("x-glpi-network-uid", huge.as_bytes())]),
        );
        assert_eq!(headers.len(), JOURNAL_MAX_HEADERS);
        assert!(
            headers
                .values()
                .all(|v| v.len() <= JOURNAL_MAX_VALUE && v.ends_with('…'))
        );
        assert!(uid.unwrap().len() <= JOURNAL_MAX_VALUE);
        assert_eq!(bounded("é".repeat(600)).len(), JOURNAL_MAX_VALUE - 1);

        // entries of ~100 KB each: the byte budget, not the entry count, decides
        let tm = TestMode::default();
        for i in 0..1_000 {
            tm.record(entry(&format!("/r/{i}"), 100_000));
            assert!(tm.journal_size().1 <= JOURNAL_MAX_BYTES);
        }
        let (n, bytes) = tm.journal_size();
        assert!(n < 200, "{n} entries kept, {bytes} bytes");
        let kept = tm.journal(None, None, None, JOURNAL_CAPACITY);
        assert_eq!(kept.len(), n);
        assert_eq!(kept.last().unwrap().path, "/r/999", "the newest is kept");
        assert_eq!(
            kept[0].path,
            format!("/r/{}", 1_000 - n),
            "the oldest went first"
        );

        // small entries: the entry count still caps
        for i in 0..JOURNAL_CAPACITY + 10 {
            tm.record(entry(&format!("/s/{i}"), 10));
        }
        assert_eq!(tm.journal_size().0, JOURNAL_CAPACITY);
        tm.reset();
        assert_eq!(tm.journal_size(), (0, 0));
    }

    fn rule(kind: FaultKind) -> FaultRule {
        FaultRule {
            path: "/x".into(),
            method: None,
            kind,
            status: Some(503),
            ms: None,
            times: None,
            probability: None,
            seed: None,
        }
    }

    #[test]
    fn times_limits_and_seeded_probabilities_repeat() {
        let tm = TestMode::default();
        tm.arm(vec![FaultRule {
            times: Some(3),
            ..rule(FaultKind::Status)
        }])
        .unwrap();
        let fired: Vec<bool> = (0..5).map(|_| tm.take("GET", "/x").is_some()).collect();
        assert_eq!(fired, [true, true, true, false, false]);
        assert_eq!(tm.faults()[0].fired, 3);
        assert_eq!(tm.faults()[0].remaining, Some(0));

        let draws = |seed| {
            let tm = TestMode::default();
            tm.arm(vec![FaultRule {
                probability: Some(0.5),
                seed: Some(seed),
                ..rule(FaultKind::Status)
            }])
            .unwrap();
            (0..64)
                .map(|_| tm.take("GET", "/x").is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        let n = draws(7).iter().filter(|b| **b).count();
        assert!((16..=48).contains(&n), "{n} of 64 at p=0.5");
    }

    #[test]
    fn bad_rules_are_refused_by_index_and_nothing_is_armed() {
        let tm = TestMode::default();
        let err = tm
            .arm(vec![
                rule(FaultKind::Delay),
                FaultRule {
                    status: Some(42),
                    ..rule(FaultKind::Status)
                },
            ])
            .unwrap_err();
        assert!(err.starts_with("rules[1]"), "{err}");
        assert!(tm.faults().is_empty());
    }

    #[test]
    fn tampering_breaks_the_token_but_keeps_the_json() {
        let body = br#"{"valid":true,"token":"eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.AAECAwQ"}"#;
        let bad: serde_json::Value =
            serde_json::from_slice(&tamper(body, FaultKind::BadSignature).unwrap()).unwrap();
        assert!(bad["token"].as_str().unwrap().ends_with(".AQECAwQ"));
        let kid: serde_json::Value =
            serde_json::from_slice(&tamper(body, FaultKind::UnknownKid).unwrap()).unwrap();
        let header = kid["token"].as_str().unwrap().split('.').next().unwrap();
        let h: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(h["kid"], "unknown-kid-injected-by-test-mode");
        assert!(tamper(b"not json", FaultKind::BadSignature).is_none());
    }
}
