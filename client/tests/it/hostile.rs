//! The client against servers that lie, stall or flood: every bad answer is refused, nothing
//! bad is cached, and the time spent is bounded.

use crate::helpers::{CacheDir, TestClock};
use crate::hostile_server::{Forge, Hostile, Reply, Req};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use glpi_network_client::{Client, Error, RegistrationKey, State};
use glpi_network_shared::TokenError;
use std::time::{Duration, Instant};

const INSTANCE: &str = "https://glpi.example.com";

fn key() -> RegistrationKey {
    RegistrationKey::parse("HOSTILE-TEST-KEY").unwrap()
}

fn client(h: &Hostile, cache: &CacheDir) -> Client {
    Client::builder()
        .server_url(&h.url)
        .instance_url(INSTANCE)
        .key(key())
        .cache_path(cache.path())
        .clock(TestClock::default().as_fn())
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// Registers honestly, then answers validations with `f`.
fn registered_then(
    f: impl Fn(&Forge, &Req) -> Reply + Send + Sync + 'static,
) -> (Hostile, CacheDir, Client) {
    let h = Hostile::start();
    let cache = CacheDir::new();
    let c = client(&h, &cache);
    assert_eq!(c.register(&key()).unwrap().state, State::Valid);
    h.set(move |forge, req| match req.path.as_str() {
        "/v1/validations" => f(forge, req),
        _ => forge.honest(req, 1),
    });
    (h, cache, c)
}

/// A validation refused for a bad token, with the good cached token untouched.
#[track_caller]
fn refused_token(c: &Client) -> TokenError {
    let e = c.validate().unwrap_err();
    assert!(!e.is_unavailable(), "{e}");
    assert_eq!(
        c.status().unwrap().state,
        State::Cached,
        "the cache is intact"
    );
    match e {
        Error::Token(t) => t,
        other => panic!("expected a token error, got {other}"),
    }
}

#[test]
fn a_token_signed_by_another_key_under_a_known_kid_is_refused() {
    let (_h, _d, c) = registered_then(|f, r| {
        // Signed with k2's private key, but claiming to be k1.
        let token = glpi_network_shared::token::sign(&f.claims(r, 2), "k1", &f.k2.encoding);
        f.answer(token.unwrap())
    });
    assert_eq!(refused_token(&c), TokenError::BadSignature);
}

#[test]
fn alg_none_is_refused() {
    let (_h, _d, c) = registered_then(|f, r| {
        let head = B64.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        let body = B64.encode(serde_json::to_vec(&f.claims(r, 2)).unwrap());
        f.answer(format!("{head}.{body}."))
    });
    assert_eq!(refused_token(&c), TokenError::Algorithm);
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    let (_h, _d, c) = registered_then(|f, r| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("k1".into());
        let secret = jsonwebtoken::EncodingKey::from_secret(&f.k1.public);
        f.answer(jsonwebtoken::encode(&header, &f.claims(r, 2), &secret).unwrap())
    });
    assert_eq!(refused_token(&c), TokenError::Algorithm);
}

#[test]
fn an_unknown_kid_refreshes_the_jwks_once_then_is_refused() {
    let (h, _d, c) = registered_then(|f, r| f.answer(f.k2.sign(&f.claims(r, 2))));
    assert_eq!(h.fetches(), 1, "registration fetched the JWKS once");
    assert_eq!(refused_token(&c), TokenError::UnknownKid("k2".into()));
    assert_eq!(h.fetches(), 2, "one refresh, no more");
    assert!(matches!(
        c.validate(),
        Err(Error::Token(TokenError::UnknownKid(_)))
    ));
    assert_eq!(h.fetches(), 3, "one refresh per validation, no loop");
}

#[test]
fn a_known_kid_is_not_fetched_again() {
    let (h, _d, c) = registered_then(|f, r| f.honest(r, 1));
    assert_eq!(c.validate().unwrap().state, State::Valid);
    assert_eq!(c.validate().unwrap().state, State::Valid);
    assert_eq!(h.fetches(), 1);
}

#[test]
fn a_wrong_audience_is_refused() {
    let (_h, _d, c) = registered_then(|f, r| {
        let mut claims = f.claims(r, 2);
        claims.aud = "another-product".into();
        f.answer(f.k1.sign(&claims))
    });
    assert_eq!(refused_token(&c), TokenError::Audience);
}

#[test]
fn a_wrong_issuer_is_refused() {
    let (_h, _d, c) = registered_then(|f, r| {
        let mut claims = f.claims(r, 2);
        claims.iss = "https://evil.example.com".into();
        f.answer(f.k1.sign(&claims))
    });
    assert_eq!(refused_token(&c), TokenError::Issuer);
}

#[test]
fn a_token_for_another_instance_is_refused() {
    let (_h, _d, c) = registered_then(|f, r| {
        let mut claims = f.claims(r, 2);
        claims.instance_url = Some("https://someone-else.example.com".into());
        f.answer(f.k1.sign(&claims))
    });
    assert_eq!(refused_token(&c), TokenError::InstanceMismatch);
}

#[test]
fn a_replayed_token_with_another_nonce_is_refused() {
    let (_h, _d, c) = registered_then(|f, r| {
        let mut claims = f.claims(r, 2);
        claims.nonce = Some("nonce-of-an-earlier-request".into());
        f.answer(f.k1.sign(&claims))
    });
    assert_eq!(refused_token(&c), TokenError::NonceMismatch);
}

#[test]
fn an_expired_fresh_token_is_refused() {
    let (_h, _d, c) = registered_then(|f, r| {
        let mut claims = f.claims(r, 2);
        claims.exp -= 2 * 86_400;
        claims.iat = claims.exp - 86_400;
        claims.nbf = claims.iat;
        f.answer(f.k1.sign(&claims))
    });
    assert_eq!(refused_token(&c), TokenError::Expired);
}

#[test]
fn a_lower_ver_than_one_already_seen_is_refused() {
    let h = Hostile::start();
    let cache = CacheDir::new();
    let c = client(&h, &cache);
    h.set(|f, r| f.honest(r, 5));
    c.register(&key()).unwrap();
    h.set(|f, r| f.honest(r, 3));
    let e = c.validate().unwrap_err();
    assert!(matches!(e, Error::StaleVersion { seen: 5, got: 3 }), "{e}");
    let st = c.status().unwrap();
    assert_eq!(st.claims.unwrap().ver, 5, "the older token was not cached");
    h.set(|f, r| f.honest(r, 5));
    assert_eq!(
        c.validate().unwrap().state,
        State::Valid,
        "the same ver is fine"
    );
}

/// The guard is `ver < highest seen`: exactly one below is refused (an off-by-one in the
/// comparison would let it through), and an equal `ver` is accepted (the same state,
/// signed again).
#[test]
fn a_ver_exactly_one_below_the_highest_seen_is_refused_and_an_equal_one_accepted() {
    let h = Hostile::start();
    let cache = CacheDir::new();
    let c = client(&h, &cache);
    h.set(|f, r| f.honest(r, 7));
    c.register(&key()).unwrap();
    h.set(|f, r| f.honest(r, 6));
    let e = c.validate().unwrap_err();
    assert!(matches!(e, Error::StaleVersion { seen: 7, got: 6 }), "{e}");
    assert!(
        !e.is_unavailable(),
        "a stale token is a refusal, never grace"
    );
    assert_eq!(c.status().unwrap().claims.unwrap().ver, 7);
    h.set(|f, r| f.honest(r, 7));
    let st = c.validate().unwrap();
    assert_eq!(st.state, State::Valid);
    assert_eq!(st.claims.unwrap().ver, 7);
    h.set(|f, r| f.honest(r, 6));
    assert!(
        matches!(c.validate(), Err(Error::StaleVersion { seen: 7, got: 6 })),
        "accepting an equal ver does not lower the highest seen"
    );
}

#[test]
fn a_jwks_with_a_short_key_is_refused_without_panicking() {
    let h = Hostile::start();
    let cache = CacheDir::new();
    let c = client(&h, &cache);
    h.set(|f, r| match r.path.as_str() {
        "/.well-known/jwks.json" => {
            let mut jwks = f.jwks();
            jwks["keys"][0]["x"] = B64.encode([7u8; 16]).into();
            Reply::Json(200, jwks)
        }
        _ => f.honest(r, 1),
    });
    let e = c.register(&key()).unwrap_err();
    assert!(matches!(e, Error::Token(TokenError::InvalidKey(_))), "{e}");
    assert!(!cache.path().exists(), "nothing cached");
}

#[test]
fn truncated_json_is_unusable_and_falls_back_to_the_cache() {
    let h = Hostile::start();
    let cache = CacheDir::new();
    let c = client(&h, &cache);
    h.set(|_, _| Reply::Body(200, r#"{"valid": true, "status": "val"#.into()));
    let e = c.validate().unwrap_err();
    assert!(matches!(e, Error::InvalidResponse(_)), "{e}");

    h.set(|f, r| f.honest(r, 1));
    c.register(&key()).unwrap();
    h.set(|_, _| Reply::Body(200, r#"{"valid": true, "status": "val"#.into()));
    let st = c.validate().unwrap();
    assert_eq!(st.state, State::Grace);
    assert!(st.offline_reason.unwrap().contains("not usable"));
}

#[test]
fn a_server_error_exposes_status_and_code_and_falls_back_to_the_cache() {
    let h = Hostile::start();
    let cache = CacheDir::new();
    let c = client(&h, &cache);
    let down = |_: &Forge, _: &Req| {
        Reply::Json(
            503,
            serde_json::json!({"error": {"code": "internal", "message": "down"}}),
        )
    };
    h.set(down);
    let e = c.validate().unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert_eq!(e.code(), Some(glpi_network_client::ErrorCode::Internal));
    assert!(e.is_unavailable());
    h.set(|f, r| f.honest(r, 1));
    c.register(&key()).unwrap();
    h.set(down);
    assert_eq!(c.validate().unwrap().state, State::Grace);
}

#[test]
fn a_server_that_hangs_costs_no_more_than_the_timeout() {
    let h = Hostile::start();
    let cache = CacheDir::new();
    let c = client(&h, &cache);
    h.set(|_, _| Reply::Hang);
    let start = Instant::now();
    let e = c.validate().unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(e, Error::Unreachable(ref m) if m.contains("timed out")),
        "{e}"
    );
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(
        took < Duration::from_secs(6),
        "bounded by the 2 s timeout: {took:?}"
    );
}

#[test]
fn a_50_mb_body_is_refused_without_being_read_whole() {
    let h = Hostile::start();
    let cache = CacheDir::new();
    let c = Client::builder()
        .server_url(&h.url)
        .instance_url(INSTANCE)
        .key(key())
        .cache_path(cache.path())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    h.set(|_, _| Reply::Endless);
    let e = c.validate().unwrap_err();
    assert!(
        matches!(e, Error::InvalidResponse(ref m) if m.contains("larger")),
        "{e}"
    );
    let written = h
        .endless_done
        .lock()
        .unwrap()
        .recv_timeout(Duration::from_secs(30))
        .expect("the server stops writing once the client hangs up");
    assert!(
        written < 16 * 1024 * 1024,
        "the client stopped reading early, but the server wrote {written} bytes"
    );
}
