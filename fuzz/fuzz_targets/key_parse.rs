//! `RegistrationKey::parse` on arbitrary input: never panics, and whatever it accepts is the
//! trimmed input, re-parses to itself, hashes to 64 hex digits and never shows whole in `Debug`.
#![no_main]

use glpi_network_shared::key::{MAX_KEY_LEN, hash_key_str};
use glpi_network_shared::{KeyFormatError, RegistrationKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    match RegistrationKey::parse(&raw) {
        Ok(k) => {
            let s = k.expose();
            assert_eq!(s, raw.trim());
            assert!(!s.is_empty() && s.len() <= MAX_KEY_LEN);
            assert!(!s.chars().any(char::is_control));
            assert_eq!(
                RegistrationKey::parse(s).as_ref(),
                Ok(&k),
                "parse is idempotent"
            );
            let h = k.hash();
            assert_eq!(h.len(), 64);
            assert!(
                h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(h, hash_key_str(s));
            let prefix = k.display_prefix();
            assert!(s.starts_with(&prefix) && prefix.len() < s.len());
            if k.is_generated() {
                assert!(!format!("{k:?}").contains(s));
            }
        }
        Err(KeyFormatError::Empty) => assert!(raw.trim().is_empty()),
        Err(KeyFormatError::TooLong) => assert!(raw.trim().len() > MAX_KEY_LEN),
        Err(KeyFormatError::ControlCharacter) => assert!(raw.chars().any(char::is_control)),
        Err(KeyFormatError::BadChecksum) => assert!(raw.trim().starts_with("GLPI-")),
    }
});
