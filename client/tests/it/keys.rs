//! The server's signing keys as the client trusts them: a key withdrawn from the JWKS stops
//! verifying once the cached set is refreshed (on a schedule, or for an unknown `kid`), and
//! pinned keys are the only ones that verify, so that a cache forged with the local seal
//! secret cannot bring its own.

use crate::helpers::{CacheDir, INSTANCE, TestClock, builder, spawn_server};
use crate::hostile_server::{Forge, Hostile, Reply, Req, SigningKey, jwks_of};
use glpi_network_client::{Client, ClientBuilder, Error, Reason, RegistrationKey, State};
use glpi_network_shared::{Claims, TokenError};
use jsonwebtoken::jwk::JwkSet;
use ring::hmac;
use serde_json::{Value, json};
use std::time::Duration;

const HOUR: i64 = 3600;

fn key() -> RegistrationKey {
    RegistrationKey::parse("HOSTILE-TEST-KEY").unwrap()
}

/// A client of the hostile server `h` whose JWKS is refreshed every hour.
fn client(h: &Hostile, cache: &CacheDir, clock: &TestClock) -> ClientBuilder {
    Client::builder()
        .server_url(&h.url)
        .instance_url("https://glpi.example.com")
        .key(key())
        .cache_path(cache.path())
        .clock(clock.as_fn())
        .jwks_refresh_interval(Duration::from_secs(HOUR as u64))
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
}

/// The server has withdrawn `k1` (it publishes `k2` only), but whoever holds `k1` still
/// signs with it.
fn withdraw_k1_but_sign_with_it(f: &Forge, r: &Req) -> Reply {
    match r.path.as_str() {
        "/.well-known/jwks.json" => Reply::Json(200, jwks_of(&[&f.k2])),
        _ => f.answer(f.k1.sign(&f.claims(r, 1))),
    }
}

fn unavailable(_: &Forge, _: &Req) -> Reply {
    Reply::Json(
        503,
        json!({"error": {"code": "internal", "message": "down"}}),
    )
}

#[test]
fn a_withdrawn_key_stops_verifying_once_the_cached_set_is_due_and_refreshed() {
    let h = Hostile::start();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let c = client(&h, &cache, &clock).build().unwrap();
    assert_eq!(c.register(&key()).unwrap().state, State::Valid);
    assert_eq!(h.fetches(), 1);

    h.set(withdraw_k1_but_sign_with_it);
    assert_eq!(
        c.validate().unwrap().state,
        State::Valid,
        "within the interval the cached set is used as it is"
    );
    assert_eq!(h.fetches(), 1);

    clock.advance(HOUR + 1);
    let e = c.validate().unwrap_err();
    assert!(
        matches!(e, Error::Token(TokenError::UnknownKid(ref kid)) if kid == "k1"),
        "{e}"
    );
    assert!(
        !e.is_unavailable(),
        "a withdrawn key is a refusal, never grace"
    );
    assert_eq!(h.fetches(), 2, "the due set was fetched once");
    // The cached token was signed by k1 too: it is not trusted any more, offline either.
    let st = c.status().unwrap();
    assert_eq!(st.state, State::Refused(Reason::KeyWithdrawn));
    assert!(st.claims.is_none() && st.entitlements().is_empty());
    h.set(unavailable);
    assert_eq!(
        c.validate().unwrap().state,
        State::Refused(Reason::KeyWithdrawn)
    );

    // The server signs with its new key again: fresh tokens are valid and cached.
    h.set(|f, r| match r.path.as_str() {
        "/.well-known/jwks.json" => Reply::Json(200, jwks_of(&[&f.k2])),
        _ => f.answer(f.k2.sign(&f.claims(r, 2))),
    });
    assert_eq!(c.validate().unwrap().state, State::Valid);
    assert_eq!(c.status().unwrap().state, State::Cached);
}

#[test]
fn an_unknown_kid_refreshes_the_set_and_a_key_gone_from_it_verifies_nothing_more() {
    let h = Hostile::start();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let c = client(&h, &cache, &clock).build().unwrap();
    c.register(&key()).unwrap();
    // Rotation with withdrawal: k2 signs and is the only key published.
    h.set(|f, r| match r.path.as_str() {
        "/.well-known/jwks.json" => Reply::Json(200, jwks_of(&[&f.k2])),
        _ => f.answer(f.k2.sign(&f.claims(r, 2))),
    });
    assert_eq!(c.validate().unwrap().state, State::Valid);
    assert_eq!(h.fetches(), 2, "the unknown kid k2 fetched the set once");
    h.set(withdraw_k1_but_sign_with_it);
    assert!(matches!(
        c.validate(),
        Err(Error::Token(TokenError::UnknownKid(_)))
    ));
    assert_eq!(
        c.status().unwrap().state,
        State::Cached,
        "the k2 token stays"
    );
}

#[test]
fn check_asks_the_server_once_the_cached_set_is_due() {
    let h = Hostile::start();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let c = client(&h, &cache, &clock).build().unwrap();
    c.register(&key()).unwrap();
    clock.advance(HOUR / 2);
    assert_eq!(c.check().unwrap().state, State::Cached);
    clock.advance(HOUR);
    // The token is not due (half of its day), but the set is.
    assert_eq!(c.check().unwrap().state, State::Valid);
    assert_eq!(h.fetches(), 2);
    assert_eq!(c.check().unwrap().state, State::Cached, "both fresh again");
}

#[test]
fn offline_a_set_past_its_interval_keeps_verifying_the_cached_token_through_grace() {
    let h = Hostile::start();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let c = client(&h, &cache, &clock).build().unwrap();
    c.register(&key()).unwrap();
    h.set(unavailable);
    clock.advance(3 * HOUR);
    assert_eq!(c.validate().unwrap().state, State::Grace);
    assert_eq!(c.check().unwrap().state, State::Grace);
    assert_eq!(c.status().unwrap().state, State::Cached);
}

/// The JWKS of the given keys, as a program would pin it.
fn pins(keys: &[&SigningKey]) -> JwkSet {
    serde_json::from_value(jwks_of(keys)).unwrap()
}

#[test]
fn with_pins_a_published_key_that_is_not_pinned_verifies_nothing() {
    let h = Hostile::start();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let pinned = pins(&[&h.forge.k1]);
    let c = client(&h, &cache, &clock)
        .pinned_keys(pinned)
        .build()
        .unwrap();
    h.set(|f, r| match r.path.as_str() {
        "/.well-known/jwks.json" => Reply::Json(200, jwks_of(&[&f.k1, &f.k2])),
        _ => f.answer(f.k2.sign(&f.claims(r, 1))),
    });
    let e = c.register(&key()).unwrap_err();
    assert!(
        matches!(e, Error::Token(TokenError::UnknownKid(ref kid)) if kid == "k2"),
        "{e}"
    );
    assert!(!cache.path().exists(), "nothing cached");
    h.set(|f, r| f.honest(r, 1));
    assert_eq!(c.register(&key()).unwrap().state, State::Valid);
    assert_eq!(c.status().unwrap().state, State::Cached);
}

#[test]
fn pins_must_be_usable_keys() {
    let b = || Client::builder().cache_path("/nonexistent/state.json");
    let e = b()
        .pinned_keys(JwkSet { keys: vec![] })
        .build()
        .unwrap_err();
    assert!(
        matches!(e, Error::Config(ref m) if m.contains("empty")),
        "{e}"
    );
    let mut short = jwks_of(&[&SigningKey::generate("k")]);
    short["keys"][0]["x"] = "AAAA".into();
    let e = b()
        .pinned_keys(serde_json::from_value(short).unwrap())
        .build()
        .unwrap_err();
    assert!(
        matches!(e, Error::Config(ref m) if m.contains("pinned")),
        "{e}"
    );
}

/// What a local user who can read the seal secret can do: rewrite the cache with a token
/// of their own (an `advanced` offer for years), signed by their own key under `kid`, with a
/// JWKS that publishes that key, and seal it again.
fn forge_cache(cache: &CacheDir, kid: &str) {
    let path = cache.path();
    let mut sealed: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut payload: Value = serde_json::from_str(sealed["payload"].as_str().unwrap()).unwrap();
    let mut claims: Claims = serde_json::from_value(payload["claims"].clone()).unwrap();
    claims.offer = "advanced".into();
    claims.exp += 3 * 365 * 86_400;
    claims.grace_until += 3 * 365 * 86_400;
    let evil = SigningKey::generate(kid);
    payload["token"] = evil.sign(&claims).into();
    payload["claims"] = serde_json::to_value(&claims).unwrap();
    payload["jwks"] = jwks_of(&[&evil]);
    let payload = payload.to_string();
    let secret_path = path.with_file_name("state.json.key");
    let secret = hex::decode(std::fs::read_to_string(secret_path).unwrap().trim()).unwrap();
    let mac = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &secret),
        payload.as_bytes(),
    );
    sealed["payload"] = payload.into();
    sealed["mac"] = hex::encode(mac.as_ref()).into();
    std::fs::write(&path, sealed.to_string()).unwrap();
}

#[test]
fn a_cache_forged_with_the_seal_secret_passes_without_pins_and_never_with_them() {
    for kid in ["k1", "evil"] {
        let h = Hostile::start();
        let (cache, clock) = (CacheDir::new(), TestClock::default());
        let pinned = || {
            client(&h, &cache, &clock)
                .pinned_keys(pins(&[&h.forge.k1]))
                .build()
                .unwrap()
        };
        pinned().register(&key()).unwrap();

        // Without pins the forgery is indistinguishable from the server's own token: the
        // limit docs/SECURITY.md states.
        forge_cache(&cache, kid);
        let open = client(&h, &cache, &clock).build().unwrap();
        let st = open.status().unwrap();
        assert_eq!(st.state, State::Cached, "kid {kid}");
        assert_eq!(st.claims.unwrap().offer, "advanced");

        // With pins it is never `cached` nor `grace`: discarded, and offline nothing is left.
        let c = pinned();
        assert!(
            matches!(c.status(), Err(Error::NotRegistered)),
            "kid {kid}: {:?}",
            c.status()
        );
        assert!(
            !cache.path().exists(),
            "kid {kid}: the forged cache is discarded"
        );
        forge_cache_after_register(&h, &cache, &clock, kid);
        h.set(unavailable);
        let r = c.validate();
        assert!(
            r.as_ref().is_err_and(Error::is_unavailable),
            "kid {kid}: {r:?}"
        );
        assert_eq!(c.check().map(|s| s.state).ok(), None, "kid {kid}");
    }
}

/// Registers again (honestly, with pins) and forges the new cache.
fn forge_cache_after_register(h: &Hostile, cache: &CacheDir, clock: &TestClock, kid: &str) {
    h.set(|f, r| f.honest(r, 1));
    client(h, cache, clock)
        .pinned_keys(pins(&[&h.forge.k1]))
        .build()
        .unwrap()
        .register(&key())
        .unwrap();
    forge_cache(cache, kid);
}

#[test]
fn pins_taken_from_the_real_servers_jwks_verify_and_a_rotation_to_an_unpinned_key_is_refused() {
    let server = spawn_server();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let pinned = builder(&server.url, &cache, &clock)
        .build()
        .unwrap()
        .fetch_jwks()
        .unwrap();
    let c = builder(&server.url, &cache, &clock)
        .pinned_keys(pinned)
        .build()
        .unwrap();
    let (_, _, key) = server.new_key("basic");
    assert_eq!(c.register(&key).unwrap().state, State::Valid);
    server.rotate_signing_key();
    let e = c.validate().unwrap_err();
    assert!(
        matches!(e, Error::Token(TokenError::UnknownKid(_))),
        "the program must ship the new key first: {e}"
    );
    assert_eq!(c.status().unwrap().state, State::Cached);
    let st = c.status().unwrap();
    assert_eq!(st.claims.unwrap().instance_url.as_deref(), Some(INSTANCE));
}
