//! The webhook delivery worker every server process runs (DESIGN §12): every second it claims
//! the due deliveries (one process at a time attempts each, in event order per webhook; see
//! [`crate::db::webhooks::claim`]), posts each with Standard Webhooks signature headers to an
//! address it checked (no second DNS look-up), and records the outcome.

use crate::app::AppState;
use crate::db::webhooks::{self, Claimed, Outcome};
use crate::domain::webhook::{Target, check_addresses, signed_content};
use crate::signing::MasterKey;
use base64::Engine;
use std::net::SocketAddr;
use std::time::Duration;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// How often the worker looks for due deliveries.
pub const POLL: Duration = Duration::from_secs(1);
/// Connect timeout of an attempt.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Total timeout of an attempt (connect, send, answer).
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery stays leased to its process (longer than an attempt can take):
/// a process that died mid-attempt leaves it to the others after this.
pub const LEASE_SECS: i64 = 30;
/// Most deliveries claimed per round.
const BATCH: i64 = 16;
/// Most bytes of an answer read.
const MAX_ANSWER: u64 = 4 * 1024;

/// What an attempt needs beside the delivery.
#[derive(Clone)]
struct Ctx {
    state: AppState,
}

/// Starts the worker on the server's runtime, for as long as it runs.
pub fn spawn_worker(state: AppState) {
    let ctx = Ctx { state };
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(POLL);
        let mut failing = false;
        loop {
            tick.tick().await;
            // round after round while there is work: a webhook's next event is claimed as soon
            // as the one before it is settled, not a tick later
            loop {
                match round(&ctx).await {
                    Ok(0) => break,
                    Ok(_) => failing = false,
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, "webhooks: cannot claim deliveries; retrying every second");
                        }
                        failing = true;
                        break;
                    }
                }
            }
        }
    });
}

/// One round: claim, attempt them side by side, record each outcome. Returns how many it
/// claimed.
async fn round(ctx: &Ctx) -> anyhow::Result<usize> {
    let st = &ctx.state;
    let now = st.clock.now_naive();
    let real = chrono::Utc::now().naive_utc();
    let lease = real + chrono::Duration::seconds(LEASE_SECS);
    let claimed = super::run(&st.db, move |c| webhooks::claim(c, now, real, lease, BATCH))
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let n = claimed.len();
    let attempts = claimed.into_iter().map(|d| {
        let ctx = ctx.clone();
        async move {
            let master = ctx.state.signer.clone();
            let allow = ctx.state.webhooks_allow_private;
            let d2 = d.clone();
            let outcome =
                actix_web::rt::task::spawn_blocking(move || attempt(&d2, master.master(), allow))
                    .await
                    .unwrap_or(Outcome::Failed(None));
            settle(&ctx, &d, outcome).await;
        }
    });
    futures::future::join_all(attempts).await;
    Ok(n)
}

/// Records an attempt's outcome and counts it.
async fn settle(ctx: &Ctx, d: &Claimed, outcome: Outcome) {
    let st = &ctx.state;
    let now = st.clock.now_naive();
    let (id, before) = (d.id.clone(), d.attempts);
    let result = super::run(&st.db, move |c| {
        webhooks::settle(c, &id, before, outcome, now)
    })
    .await;
    let label = match &result {
        Ok(_) if matches!(outcome, Outcome::Delivered(_)) => "delivered",
        Ok(status) if *status == "failed" => "failed",
        Ok(_) => "retry",
        Err(_) => "unrecorded",
    };
    st.metrics
        .webhook_deliveries
        .with_label_values(&[label])
        .inc();
    if let Err(e) = result {
        tracing::error!(error = ?e, delivery = %d.id, "webhooks: could not record an attempt");
    }
}

/// Resolves to exactly the addresses that were checked: ureq connects to one of these and
/// never looks the name up again.
#[derive(Debug)]
struct Pinned(Vec<SocketAddr>);

impl Resolver for Pinned {
    fn resolve(
        &self,
        _uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut out = self.empty();
        for a in self.0.iter().take(16) {
            out.push(*a);
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

/// The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
pub fn signature(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, signed_content(id, timestamp, body).as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

/// One attempt: resolve and check the target, then post to a checked address. Refused
/// targets, connection errors and timeouts are failures with no status.
fn attempt(d: &Claimed, master: &MasterKey, allow_private: bool) -> Outcome {
    let Some(secret) = master.open(&d.webhook_id, &d.secret_enc) else {
        tracing::error!(webhook = %d.webhook_id, "webhooks: no master key opens this webhook's secret");
        return Outcome::Failed(None);
    };
    let Ok(target) = Target::parse(&d.url) else {
        return Outcome::Failed(None);
    };
    let ips = super::webhooks::resolve(&target);
    if let Err(why) = check_addresses(&ips, allow_private) {
        tracing::warn!(webhook = %d.webhook_id, url = %d.url, %why, "webhooks: target refused");
        return Outcome::Failed(None);
    }
    let addrs: Vec<SocketAddr> = ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, target.port))
        .collect();
    post(d, &secret, addrs)
}

fn post(d: &Claimed, secret: &[u8], addrs: Vec<SocketAddr>) -> Outcome {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(TOTAL_TIMEOUT))
        .user_agent(concat!("glpi-network-webhooks/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent = ureq::Agent::with_parts(config, DefaultConnector::new(), Pinned(addrs));
    // the sending time on the real clock, even in test mode: receivers check it against theirs
    let timestamp = chrono::Utc::now().timestamp();
    let sent = agent
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signature(secret, &d.event_id, timestamp, &d.body),
        )
        .send(d.body.as_bytes());
    match sent {
        Ok(mut answer) => {
            let status = i32::from(answer.status().as_u16());
            let _ = answer
                .body_mut()
                .with_config()
                .limit(MAX_ANSWER)
                .read_to_vec();
            if (200..300).contains(&status) {
                Outcome::Delivered(status)
            } else {
                Outcome::Failed(Some(status))
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, url = %d.url, "webhooks: attempt failed");
            Outcome::Failed(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example.
    #[test]
    fn the_signature_matches_the_specification_example() {
        let secret = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
