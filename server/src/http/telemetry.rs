//! Observability: Prometheus metrics (a registry per server, no globals) and one structured
//! log line per request (request id, route, status, latency, key prefix, client).

use crate::app::AppState;
use crate::db::reader::ReadPath;
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};
use std::time::Instant;

/// The display prefix of the key a request carried, set by handlers for the request log.
#[derive(Debug, Clone)]
pub struct KeyPrefix(pub String);

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub validations: IntCounterVec,
    pub signing: Histogram,
    pub rate_limited: IntCounterVec,
    pub registrations_bound: IntCounter,
    pub pool: IntGaugeVec,
    /// Key-state cache look-ups of the hot read paths answered from memory.
    pub key_cache_hits: IntCounter,
    /// ... and those that went to the database (absent, stale, or not answerable from memory).
    pub key_cache_misses: IntCounter,
    /// Key states read from the database by `/info` and validations on the worker's own
    /// connection (`db::reader`), in a batch on PostgreSQL (`db::batch`), and through the pool
    /// (the complete path).
    pub key_reads_worker: IntCounter,
    pub key_reads_batch: IntCounter,
    pub key_reads_pool: IntCounter,
    /// The statements of the batched reads (`key_reads_batch` over it is the mean batch).
    pub key_read_batches: IntCounter,
    /// Webhook delivery attempts by outcome: `delivered`, `retry` (failed, due again),
    /// `failed` (the schedule is over), `unrecorded`.
    pub webhook_deliveries: IntCounterVec,
    /// Pending webhook deliveries (the outbox depth), read when `/metrics` is scraped.
    pub webhook_outbox_depth: prometheus::IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// The counters of webhook delivery attempts, by outcome.
fn delivery_outcomes(r: &Registry) -> IntCounterVec {
    let help = "Webhook delivery attempts by outcome";
    counters(r, "webhook_deliveries_total", help, &["outcome"])
}

/// The gauge of pending webhook deliveries.
fn outbox_depth(r: &Registry) -> prometheus::IntGauge {
    register(
        r,
        prometheus::IntGauge::new(
            "webhook_outbox_depth",
            "Webhook deliveries pending (not yet delivered nor failed)",
        ),
    )
}

/// The counters of key-cache look-ups: `(hit, miss)`.
fn key_cache_lookups(r: &Registry) -> (IntCounter, IntCounter) {
    let help = "Key states looked up by /info and validations: hit (answered from memory) or miss";
    let lookups = counters(r, "key_cache_lookups_total", help, &["result"]);
    (
        lookups.with_label_values(&["hit"]),
        lookups.with_label_values(&["miss"]),
    )
}

/// The counters of key-state reads by path: `(worker, batch, pool)`.
fn key_state_reads(r: &Registry) -> (IntCounter, IntCounter, IntCounter) {
    let help = "Key states read from the database by /info and validations, by path: worker \
                (the worker's own SQLite connection), batch (PostgreSQL reads gathered into one \
                statement) or pool";
    let reads = counters(r, "key_state_reads_total", help, &["path"]);
    (
        reads.with_label_values(&["worker"]),
        reads.with_label_values(&["batch"]),
        reads.with_label_values(&["pool"]),
    )
}

/// The counter of the statements that read a batch of key states (`db::batch`).
fn key_state_batches(r: &Registry) -> IntCounter {
    let help = "Statements that read a batch of key states on PostgreSQL";
    register(r, IntCounter::new("key_state_batches_total", help))
}

/// Request latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("glpi_network".into()), None).expect("valid prefix");
        let r = &registry;
        let signing_buckets = vec![0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.005];
        let (key_cache_hits, key_cache_misses) = key_cache_lookups(r);
        let latency_opts = HistogramOpts::new(
            "http_request_duration_seconds",
            "HTTP request latency by route",
        )
        .buckets(LATENCY_BUCKETS.to_vec());
        let (key_reads_worker, key_reads_batch, key_reads_pool) = key_state_reads(r);
        let signing_opts = HistogramOpts::new("token_signing_seconds", "Time to sign one token")
            .buckets(signing_buckets);
        Metrics {
            requests: counters(
                r,
                "http_requests_total",
                "HTTP requests by route, method and status",
                &["route", "method", "status"],
            ),
            latency: register(r, HistogramVec::new(latency_opts, &["route", "method"])),
            validations: counters(
                r,
                "validations_total",
                "Validations by resulting status",
                &["status"],
            ),
            signing: register(r, Histogram::with_opts(signing_opts)),
            rate_limited: counters(
                r,
                "rate_limited_total",
                "Requests refused by a rate limit",
                &["limit"],
            ),
            registrations_bound: register(
                r,
                IntCounter::new(
                    "registrations_bound_total",
                    "New bindings of a key to an instance",
                ),
            ),
            pool: register(
                r,
                IntGaugeVec::new(
                    Opts::new("db_pool_connections", "Database pool connections by state"),
                    &["state"],
                ),
            ),
            webhook_deliveries: delivery_outcomes(r),
            webhook_outbox_depth: outbox_depth(r),
            key_reads_worker,
            key_reads_batch,
            key_reads_pool,
            key_read_batches: key_state_batches(r),
            key_cache_hits,
            key_cache_misses,
            registry,
        }
    }

    /// Counts one key-cache look-up (nothing when the cache is off).
    pub fn key_cache(&self, enabled: bool, hit: bool) {
        match (enabled, hit) {
            (false, _) => {}
            (true, true) => self.key_cache_hits.inc(),
            (true, false) => self.key_cache_misses.inc(),
        }
    }

    /// Counts one key-state read from the database by the path that answered it.
    pub fn key_read(&self, path: ReadPath) {
        match path {
            ReadPath::Worker => self.key_reads_worker.inc(),
            ReadPath::Batch => self.key_reads_batch.inc(),
            ReadPath::Pool => self.key_reads_pool.inc(),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The `method` label: a standard method, or `other` (a label value never comes from request
/// data unbounded: 301 invented methods grew `/metrics` from 44 KB to 19.7 MB).
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .into_iter()
        .find(|m| *m == method.as_str())
        .unwrap_or("other")
}

fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The path as the log shows it: an invitation key in `/portal/invite/<key>` only as its
/// display prefix (DESIGN §11), so the log never holds a usable key.
pub fn loggable_path(path: &str) -> String {
    const INVITE: &str = "/portal/invite/";
    match path.strip_prefix(INVITE) {
        Some(rest) => {
            let key = rest.split('/').next().unwrap_or_default();
            let shown = glpi_network_shared::PlainKey::parse(key)
                .map(|k| format!("{}…", k.display_prefix()))
                .unwrap_or_else(|_| "<redacted>".into());
            format!("{INVITE}{shown}")
        }
        None => path.to_owned(),
    }
}

/// Counts and logs every request; answers carry `X-Request-Id`.
pub async fn middleware<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    let started = Instant::now();
    let id = request_id(&req);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = method_label(req.method());
    // the log shows the method as received (cut short), the metrics only its label
    let raw_method: String = req.method().as_str().chars().take(32).collect();
    let path = loggable_path(req.path());
    let client = crate::http::client_addr(req.request()).unwrap_or_default();
    let mut res = next.call(req).await?;
    let elapsed = started.elapsed();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    let key_prefix = res
        .request()
        .extensions()
        .get::<KeyPrefix>()
        .map(|k| k.0.clone())
        .unwrap_or_default();
    if let Some(state) = state {
        // every label from a fixed set: route pattern or `unmatched`, method label, status
        let m = &state.metrics;
        m.requests
            .with_label_values(&[route.as_str(), method, &status.to_string()])
            .inc();
        m.latency
            .with_label_values(&[route.as_str(), method])
            .observe(elapsed.as_secs_f64());
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), v);
    }
    tracing::info!(
        target: "glpi_network_server::http",
        request_id = %id,
        method = %raw_method,
        route = %route,
        path = %path,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        key_prefix = %key_prefix,
        client = %client,
        "request"
    );
    Ok(res)
}

/// A registered counter family.
fn counters(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels))
}

/// Registers a metric made with constant, valid options (a failure is a programming error).
fn register<C>(registry: &Registry, made: prometheus::Result<C>) -> C
where
    C: prometheus::core::Collector + Clone + 'static,
{
    let metric = made.expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("metrics are registered once");
    metric
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::Method;

    #[test]
    fn methods_outside_the_standard_set_are_labelled_other() {
        for m in [
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
        ] {
            assert_eq!(method_label(&Method::from_bytes(m.as_bytes()).unwrap()), m);
        }
        for m in ["BREW", "get", "PROPFIND", "X1MMMMMMMMMMMMMMMMMMMMMMMMMM"] {
            assert_eq!(
                method_label(&Method::from_bytes(m.as_bytes()).unwrap()),
                "other"
            );
        }
    }
}
