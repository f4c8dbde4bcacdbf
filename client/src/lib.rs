//! Client for the GLPI Network licensing server: register an instance, verify and cache the
//! server's signed tokens, and keep working offline for a bounded grace period.
//!
//! ```
//! use glpi_network_client::{Client, RegistrationKey, State};
//! # use std::error::Error;
//! # fn main() -> Result<(), Box<dyn Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let (server_url, key, stop) = demo::start(dir.path())?;
//!
//! let client = Client::builder()
//!     .server_url(&server_url)
//!     .instance_url("https://glpi.example.com/glpi/")
//!     .cache_path(dir.path().join("state.json"))
//!     .build()?;
//!
//! // Once: bind the key to this instance. The signed token is verified and cached.
//! let status = client.register(&RegistrationKey::parse(&key)?)?;
//! assert_eq!(status.state, State::Valid);
//! let claims = status.claims.as_ref().expect("a verified token");
//! assert_eq!(claims.instance_url.as_deref(), Some("https://glpi.example.com/glpi"));
//!
//! // At each start: the cache while it is fresh, the server when it is due.
//! let status = client.check()?;
//! assert!(status.is_usable());
//! println!("{} for {}: {:?}", claims.offer_title, claims.owner, status.entitlements());
//!
//! // The server goes away: the verified cache keeps the instance running until
//! // `grace_until`, after which the answer is `Refused(Expired)`.
//! stop();
//! assert_eq!(client.validate()?.state, State::Grace);
//! assert_eq!(client.status()?.state, State::Cached); // offline, from the cache alone
//! # Ok(())
//! # }
//! # mod demo {
//! #     // Starts the real server in-process and issues a key through its admin API.
//! #     use glpi_network_server::TestServer;
//! #     pub fn start(_dir: &std::path::Path)
//! #         -> Result<(String, String, impl FnOnce()), Box<dyn std::error::Error>> {
//! #         let mut server = TestServer::builder().test_mode(false).workers(1).start()?;
//! #         let (url, token) = (server.url().to_owned(), server.admin_token().to_owned());
//! #         let auth = format!("Bearer {token}");
//! #         let post = |path: &str, body: serde_json::Value| -> Result<serde_json::Value, ureq::Error> {
//! #             ureq::post(&format!("{url}/v1/admin/{path}"))
//! #                 .header("Authorization", &auth).send_json(body)?.body_mut().read_json()
//! #         };
//! #         let sub = post("subscribers", serde_json::json!({"name": "ACME Corp"}))?;
//! #         let subscription = post("subscriptions",
//! #             serde_json::json!({"subscriber_id": sub["id"], "offer": "standard"}))?;
//! #         let key = post("keys", serde_json::json!({"subscription_id": subscription["id"]}))?;
//! #         let stop = move || server.stop();
//! #         Ok((url, key["key"].as_str().unwrap().to_owned(), stop))
//! #     }
//! # }
//! ```
//!
//! # What is checked
//! Every token is verified through [`shared::Verifier`]: pinned to EdDSA and a `kid` of the
//! server's JWKS (an unknown `kid` refreshes the JWKS once, no more, and so does a cached set
//! older than [`ClientBuilder::jwks_refresh_interval`]; a key the server no longer publishes
//! verifies nothing, not even the cached token it signed), `iss` (the server URL
//! unless [`ClientBuilder::issuer`] says otherwise), `aud`, `exp`/`nbf` with a one-minute
//! leeway, the instance URL, and the nonce: every request sends a fresh random one and the
//! token must echo it. A token whose `ver` is lower than one already seen for the key is
//! refused. Answers are read up to [`MAX_RESPONSE_BYTES`] and every call is bounded by the
//! timeouts, so a hostile or broken server can neither flood nor hang the client. With
//! [`ClientBuilder::pinned_keys`], tokens verify only against the keys the program pinned, so
//! that not even a cache forged with the local seal secret can bring its own keys.
//!
//! TLS trusts the platform's certificate store plus any [`ClientBuilder::ca_file`], for a
//! server behind a private certificate authority.
//!
//! # States
//! [`State::Valid`] (fresh from the server), [`State::Cached`] (a verified cached token not yet
//! due for a refresh), [`State::Grace`] (the server is unavailable, or the token is past `exp`,
//! but it is before `grace_until`), then [`State::Refused`] with a [`Reason`]: `expired`,
//! `revoked`, `suspended`, `instance_mismatch`, `clock_rollback` (the wall clock is more than
//! five minutes behind the latest server time seen), `not_registered`, `key_withdrawn` (a JWKS
//! refresh showed the cached token's signing key withdrawn). A signed refusal from the server
//! is cached and sticks, offline too.
//!
//! # The cache
//! One JSON file per instance ([`ClientBuilder::cache_path`], default [`default_cache_path`];
//! the CLI keeps one per instance with [`instance_cache_path`]), written atomically (temp file,
//! fsync, rename) with mode 0600, and sealed with HMAC-SHA256 under a local secret kept next
//! to it (`<file>.key`, mode 0600). It holds the key, the instance and server URLs, the latest
//! token and the server's JWKS (with the time it was fetched), the highest `ver` seen and the
//! latest server time seen.
//! A corrupt, truncated, edited or foreign file is discarded with a `tracing` warning and the
//! next call to the server refetches; it is never trusted and never a panic.

#![warn(missing_docs)]

mod builder;
mod cache;
mod client;
mod clock;
mod error;
mod http;
mod kinds;
mod location;
mod status;
mod verify;

pub use builder::{
    ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_JWKS_REFRESH_INTERVAL,
    DEFAULT_ROLLBACK_TOLERANCE, DEFAULT_TIMEOUT, default_cache_path,
};
pub use client::{Client, Ping};
pub use clock::{Clock, SystemClock};
pub use error::Error;
pub use glpi_network_shared as shared;
pub use glpi_network_shared::token::KindClaims;
pub use glpi_network_shared::{
    Claims, ErrorCode, InstanceUrl, KeyKind, PlainKey, RegistrationKey, ValidationStatus,
};
pub use http::MAX_RESPONSE_BYTES;
pub use kinds::{Enrollment, LicenseStatus, parse_kind_key};
pub use location::{CachedInstance, cached_instances, default_cache_dir, instance_cache_path};
pub use status::{Reason, State, Status};
