use super::*;
use glpi_network_shared::ValidationStatus;

pub(crate) fn sample_entry() -> Entry {
    Entry {
        server_url: "http://127.0.0.1:1".into(),
        issuer: "http://127.0.0.1:1".into(),
        instance_url: "https://glpi.example.com".into(),
        key: "FIXTURE-KEY-SECRET".into(),
        token: "a.b.c".into(),
        claims: Claims {
            iss: "http://127.0.0.1:1".into(),
            aud: "glpi-network".into(),
            sub: "key-id".into(),
            iat: 1_000,
            nbf: 1_000,
            exp: 2_000,
            jti: "j".into(),
            status: ValidationStatus::Valid,
            valid: true,
            instance_url: Some("https://glpi.example.com".into()),
            instance_uid: None,
            offer: "basic".into(),
            offer_title: "GLPI Network Basic".into(),
            entitlements: vec!["support".into()],
            subscription_begin: None,
            subscription_end: None,
            owner: "ACME".into(),
            grace_until: 3_000,
            ver: 4,
            nonce: None,
        },
        jwks: JwkSet { keys: vec![] },
        max_ver: 4,
        last_server_time: 1_000,
        fetched_at: 1_000,
        jwks_fetched_at: 1_000,
        withdrawn: false,
    }
}

fn cache_in(dir: &tempfile::TempDir) -> CacheFile {
    CacheFile::new(dir.path().join("sub").join("state.json"))
}

#[test]
fn a_written_entry_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(&dir);
    assert!(cache.read().unwrap().is_none());
    cache.write(&sample_entry()).unwrap();
    let back = cache.read().unwrap().unwrap();
    assert_eq!(back.claims, sample_entry().claims);
    assert_eq!(back.max_ver, 4);
}

#[cfg(unix)]
#[test]
fn the_cache_and_its_secret_are_private_and_no_temp_file_is_left() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(&dir);
    cache.write(&sample_entry()).unwrap();
    cache.write(&sample_entry()).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(cache.path()), 0o600);
    assert_eq!(mode(&cache.secret_path()), 0o600);
    assert_eq!(mode(cache.path().parent().unwrap()), 0o700);
    let names: Vec<_> = fs::read_dir(cache.path().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "only the cache and its secret: {names:?}");
}

#[test]
fn every_single_byte_edit_of_the_payload_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(&dir);
    cache.write(&sample_entry()).unwrap();
    let original = fs::read(cache.path()).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    let start = text.find("\"payload\"").unwrap() + 12;
    for i in (start..start + 400).step_by(7) {
        let mut bytes = original.clone();
        bytes[i] = if bytes[i] == b'1' { b'2' } else { b'1' };
        fs::write(cache.path(), &bytes).unwrap();
        assert!(
            matches!(cache.read(), Err(Discard::BadSeal | Discard::NotSealed)),
            "edit at byte {i} went unnoticed"
        );
    }
}

#[test]
fn a_truncated_or_garbage_cache_is_refused_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(&dir);
    cache.write(&sample_entry()).unwrap();
    let original = fs::read(cache.path()).unwrap();
    for len in [0, 1, original.len() / 2, original.len() - 2] {
        fs::write(cache.path(), &original[..len]).unwrap();
        assert!(
            matches!(cache.read(), Err(Discard::NotSealed)),
            "length {len}"
        );
    }
    fs::write(cache.path(), [0xff, 0xfe, 0x00, 0x7b]).unwrap();
    assert!(matches!(cache.read(), Err(Discard::NotSealed)));
}

#[test]
fn a_cache_sealed_with_another_secret_is_foreign() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(&dir);
    cache.write(&sample_entry()).unwrap();
    fs::remove_file(cache.secret_path()).unwrap();
    assert!(matches!(cache.read(), Err(Discard::BadSeal)));
    // A new secret is made on the next write, and that cache reads back.
    cache.write(&sample_entry()).unwrap();
    assert!(cache.read().unwrap().is_some());
}

#[test]
fn a_damaged_secret_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(&dir);
    cache.write(&sample_entry()).unwrap();
    fs::write(cache.secret_path(), "not hex").unwrap();
    assert!(matches!(cache.read(), Err(Discard::BadSeal)));
    cache.write(&sample_entry()).unwrap();
    assert!(cache.read().unwrap().is_some());
}

#[test]
fn the_key_never_shows_in_debug_output() {
    let text = format!("{:?}", sample_entry());
    assert!(!text.contains("FIXTURE-KEY-SECRET"), "{text}");
}
