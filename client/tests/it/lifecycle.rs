//! The client against the real server: register, validate, grace while the server is down,
//! expiry, sticky refusals, clock rollback, a tampered cache, rotation, release.

use crate::helpers::{CacheDir, INSTANCE, TestClock, builder, spawn_server};
use glpi_network_client::{Error, ErrorCode, Reason, RegistrationKey, State, ValidationStatus};

#[test]
fn registering_then_validating_is_valid_and_writes_a_private_cache() {
    let server = spawn_server();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let client = builder(&server.url, &cache, &clock).build().unwrap();
    let (_, _, key) = server.new_key("standard");

    let st = client.register(&key).unwrap();
    assert_eq!(st.state, State::Valid);
    let keyed = builder(&server.url, &cache, &clock)
        .key(key.clone())
        .build()
        .unwrap();
    assert!(
        !format!("{keyed:?}").contains(key.expose()),
        "Debug never shows the key"
    );
    let claims = st.claims.clone().unwrap();
    assert_eq!(claims.instance_url.as_deref(), Some(INSTANCE));
    assert_eq!(claims.offer, "standard");
    assert_eq!(claims.owner, "ACME Corp");
    assert!(!st.entitlements().is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cache.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(cache.path()).unwrap();
    assert!(text.contains("payload") && text.contains("mac"));

    assert_eq!(client.validate().unwrap().state, State::Valid);
    assert_eq!(client.status().unwrap().state, State::Cached);
    // A client built from the cache alone knows the server, the instance and the key.
    let from_cache = glpi_network_client::Client::builder()
        .cache_path(cache.path())
        .clock(clock.as_fn())
        .build()
        .unwrap();
    assert_eq!(from_cache.validate().unwrap().state, State::Valid);
}

#[test]
fn a_stopped_server_leaves_the_instance_in_grace_until_grace_until_then_expired() {
    let mut server = spawn_server();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let client = builder(&server.url, &cache, &clock).build().unwrap();
    let (_, _, key) = server.new_key("basic");
    let claims = client.register(&key).unwrap().claims.unwrap();
    assert_eq!(claims.grace_until - claims.exp, 7 * 24 * 3600);
    server.stop();

    let st = client.validate().unwrap();
    assert_eq!(st.state, State::Grace);
    assert!(st.offline_reason.unwrap().contains("cannot reach"));
    assert_eq!(client.status().unwrap().state, State::Cached);
    // check() does not even try while the token is fresh.
    assert_eq!(client.check().unwrap().state, State::Cached);

    clock.advance(claims.exp - clock.now() + 3600);
    assert_eq!(client.validate().unwrap().state, State::Grace);
    assert_eq!(client.status().unwrap().state, State::Grace);
    assert_eq!(client.check().unwrap().state, State::Grace);

    clock.advance(claims.grace_until - clock.now() + 1);
    let st = client.validate().unwrap();
    assert_eq!(st.state, State::Refused(Reason::Expired));
    assert!(!st.is_usable() && st.entitlements().is_empty());
    assert_eq!(
        client.status().unwrap().state,
        State::Refused(Reason::Expired)
    );
}

#[test]
fn a_revocation_is_refused_and_sticks_offline() {
    let mut server = spawn_server();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let client = builder(&server.url, &cache, &clock).build().unwrap();
    let (_, key_id, key) = server.new_key("basic");
    client.register(&key).unwrap();
    server.revoke(&key_id);

    let st = client.validate().unwrap();
    assert_eq!(st.state, State::Refused(Reason::Revoked));
    assert_eq!(st.claims.unwrap().status, ValidationStatus::KeyRevoked);

    server.stop();
    let st = client.validate().unwrap();
    assert_eq!(st.state, State::Refused(Reason::Revoked));
    assert!(st.offline_reason.is_some());
    clock.advance(3600);
    assert_eq!(
        client.status().unwrap().state,
        State::Refused(Reason::Revoked)
    );
    assert_eq!(
        client.check().unwrap().state,
        State::Refused(Reason::Revoked)
    );
}

#[test]
fn a_suspension_is_refused_and_a_resume_is_valid_again_with_a_higher_ver() {
    let server = spawn_server();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let client = builder(&server.url, &cache, &clock).build().unwrap();
    let (sub, _, key) = server.new_key("basic");
    let v1 = client.register(&key).unwrap().claims.unwrap().ver;
    server.suspend(&sub);
    let st = client.validate().unwrap();
    assert_eq!(st.state, State::Refused(Reason::Suspended));
    assert_eq!(
        client.status().unwrap().state,
        State::Refused(Reason::Suspended)
    );
    server.resume(&sub);
    let st = client.validate().unwrap();
    assert_eq!(st.state, State::Valid);
    assert!(st.claims.unwrap().ver > v1);
}

#[test]
fn winding_the_clock_back_is_a_clock_rollback_online_and_offline() {
    let mut server = spawn_server();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let client = builder(&server.url, &cache, &clock).build().unwrap();
    let (_, _, key) = server.new_key("basic");
    client.register(&key).unwrap();

    clock.advance(-240);
    assert_eq!(
        client.status().unwrap().state,
        State::Cached,
        "within tolerance"
    );
    clock.advance(-86_400);
    assert_eq!(
        client.status().unwrap().state,
        State::Refused(Reason::ClockRollback)
    );
    let st = client.validate().unwrap();
    assert_eq!(st.state, State::Refused(Reason::ClockRollback));
    server.stop();
    assert_eq!(
        client.validate().unwrap().state,
        State::Refused(Reason::ClockRollback)
    );
}

#[test]
fn moving_both_clocks_two_days_on_gives_a_fresh_token() {
    let server = spawn_server();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let client = builder(&server.url, &cache, &clock).build().unwrap();
    let (_, _, key) = server.new_key("basic");
    let first = client.register(&key).unwrap().claims.unwrap();
    server.clock.advance(2 * 86_400);
    clock.advance(2 * 86_400);
    assert_eq!(client.status().unwrap().state, State::Grace);
    let st = client.validate().unwrap();
    assert_eq!(st.state, State::Valid);
    assert!(st.claims.unwrap().exp >= first.exp + 2 * 86_400);
    assert_eq!(client.status().unwrap().state, State::Cached);
}

#[test]
fn an_edited_cache_is_discarded_and_refetched() {
    let server = spawn_server();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let (_, _, key) = server.new_key("basic");
    let client = builder(&server.url, &cache, &clock)
        .key(key.clone())
        .build()
        .unwrap();
    client.register(&key).unwrap();

    let mut bytes = std::fs::read(cache.path()).unwrap();
    let at = bytes.windows(6).position(|w| w == b"basic\\").unwrap();
    bytes[at] = b'B';
    std::fs::write(cache.path(), &bytes).unwrap();

    assert!(matches!(client.status(), Err(Error::NotRegistered)));
    assert!(!cache.path().exists(), "the tampered cache is removed");
    assert_eq!(client.validate().unwrap().state, State::Valid);
    assert_eq!(client.status().unwrap().state, State::Cached);
}

#[test]
fn a_rotated_signing_key_is_fetched_and_verified() {
    let server = spawn_server();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let client = builder(&server.url, &cache, &clock).build().unwrap();
    let (_, _, key) = server.new_key("basic");
    client.register(&key).unwrap();
    server.rotate_signing_key();
    assert_eq!(client.validate().unwrap().state, State::Valid);
    assert_eq!(client.status().unwrap().state, State::Cached);
}

#[test]
fn release_frees_the_binding_and_deletes_the_cache() {
    let server = spawn_server();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let client = builder(&server.url, &cache, &clock).build().unwrap();
    let (_, _, key) = server.new_key("basic");
    client.register(&key).unwrap();
    assert_eq!(server.registrations(), 1);
    client.release().unwrap();
    assert_eq!(server.registrations(), 0);
    assert!(!cache.path().exists());
    assert!(matches!(client.status(), Err(Error::NotRegistered)));
    assert_eq!(client.register(&key).unwrap().state, State::Valid);
}

#[test]
fn server_refusals_expose_the_status_and_the_code() {
    let server = spawn_server();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let client = builder(&server.url, &cache, &clock).build().unwrap();
    let unknown = RegistrationKey::parse("NO-SUCH-KEY-ANYWHERE").unwrap();
    let e = client.register(&unknown).unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    assert_eq!(e.code(), Some(ErrorCode::KeyNotFound));
    assert!(!e.is_unavailable());

    let (_, _, first) = server.new_key("basic");
    let (_, _, second) = server.new_key("basic");
    client.register(&first).unwrap();
    let e = client.register(&second).unwrap_err();
    assert_eq!(e.status(), Some(409));
    assert_eq!(e.code(), Some(ErrorCode::UrlAlreadyRegistered));
    assert_eq!(
        client.status().unwrap().state,
        State::Cached,
        "the cache is intact"
    );
}

#[test]
fn a_url_override_for_another_instance_is_a_mismatch_and_leaves_the_cache_alone() {
    let server = spawn_server();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let client = builder(&server.url, &cache, &clock).build().unwrap();
    let (_, _, key) = server.new_key("basic");
    client.register(&key).unwrap();
    let other = builder(&server.url, &cache, &clock)
        .instance_url("https://other.example.com")
        .build()
        .unwrap();
    let st = other.validate().unwrap();
    assert_eq!(st.state, State::Refused(Reason::InstanceMismatch));
    assert_eq!(
        other.status().unwrap().state,
        State::Refused(Reason::InstanceMismatch)
    );
    assert_eq!(client.status().unwrap().state, State::Cached);
}

#[test]
fn nothing_cached_and_no_server_is_unreachable() {
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let key = RegistrationKey::parse("ANY-KEY").unwrap();
    let client = builder(&format!("http://127.0.0.1:{port}"), &cache, &clock)
        .key(key)
        .build()
        .unwrap();
    let e = client.validate().unwrap_err();
    assert!(matches!(e, Error::Unreachable(_)), "{e}");
    assert!(e.is_unavailable());
    assert!(matches!(client.status(), Err(Error::NotRegistered)));
}

#[test]
fn check_answers_from_the_cache_until_half_the_lifetime_then_asks_the_server() {
    let mut server = spawn_server();
    let (cache, clock) = (CacheDir::new(), TestClock::default());
    let client = builder(&server.url, &cache, &clock).build().unwrap();
    let (_, _, key) = server.new_key("basic");
    let first = client.register(&key).unwrap().claims.unwrap();
    clock.advance(3600);
    assert_eq!(client.check().unwrap().state, State::Cached);
    clock.advance(12 * 3600);
    server.clock.advance(13 * 3600);
    let st = client.check().unwrap();
    assert_eq!(
        st.state,
        State::Valid,
        "due for a refresh: asked the server"
    );
    assert_ne!(st.claims.unwrap().jti, first.jti);
    server.stop();
    assert_eq!(client.check().unwrap().state, State::Cached, "fresh again");
}
