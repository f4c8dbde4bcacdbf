//! `InstanceUrl::parse` on arbitrary input: never panics, and the canonical form it returns is
//! a fixed point (`parse(canonical) == canonical`) with the documented shape.
#![no_main]

use glpi_network_shared::InstanceUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let Ok(once) = InstanceUrl::parse(&raw) else {
        return;
    };
    let c = once.as_str();
    match InstanceUrl::parse(c) {
        Ok(twice) => assert_eq!(twice, once, "not idempotent for {raw:?}"),
        Err(e) => panic!("canonical form {c:?} of {raw:?} is refused: {e}"),
    }
    let rest = c
        .strip_prefix("https://")
        .or_else(|| c.strip_prefix("http://"))
        .expect("http or https");
    let authority = rest.split('/').next().unwrap();
    assert!(!authority.is_empty());
    assert!(!authority.contains('@'), "no userinfo in {c:?}");
    assert_eq!(
        authority,
        authority.to_ascii_lowercase(),
        "host is lower-cased"
    );
    assert!(authority.is_ascii(), "IDN hosts are in punycode");
    if c.starts_with("http://") {
        assert!(!authority.ends_with(":80"), "default port dropped in {c:?}");
    } else {
        assert!(
            !authority.ends_with(":443"),
            "default port dropped in {c:?}"
        );
    }
    assert!(!c.contains('?') && !c.contains('#'));
    let path = &rest[authority.len()..];
    assert!(
        !path.ends_with('/') && !path.ends_with("/index.php"),
        "{c:?}"
    );
});
