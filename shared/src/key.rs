//! Keys of every kind: generation, the checksum rule, hashing and the display prefix.
//!
//! Every kind ([`KeyKind`]: registration `GLPI-`, plugin license `LIC-`, enrollment `ENR-`,
//! invitation `INV-`) follows the same rules with its own prefix. A generated key reads
//! `GLPI-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX`: 28 symbols of the RFC 4648
//! base32 alphabet, of which 26 are random (130 bits from the system CSPRNG) and 2 are a
//! checksum. The first check symbol is a weighted sum with odd weights modulo 32, so *every*
//! single-symbol substitution is caught; the second is 5 bits of SHA-256 over the rest, which
//! catches most other typos (transpositions, double substitutions) with probability 31/32.
//!
//! Strings that do not have the generated shape are accepted as they are (fixtures and imported
//! keys may use their own strings); only a generated-shape string with a wrong checksum is
//! refused before any lookup.

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;

/// The prefix of generated registration keys.
pub const KEY_PREFIX: &str = "GLPI-";

/// The kinds of keys. Each has its own prefix, so a key of one kind is never taken for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// An instance registration key (`GLPI-`).
    Registration,
    /// A commercial plugin license (`LIC-`).
    License,
    /// An agent enrollment key (`ENR-`).
    Enrollment,
    /// An invitation key (`INV-`).
    Invitation,
}

impl KeyKind {
    /// Every kind.
    pub const ALL: [KeyKind; 4] = [
        KeyKind::Registration,
        KeyKind::License,
        KeyKind::Enrollment,
        KeyKind::Invitation,
    ];

    /// The prefix of this kind's generated keys.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Registration => KEY_PREFIX,
            KeyKind::License => "LIC-",
            KeyKind::Enrollment => "ENR-",
            KeyKind::Invitation => "INV-",
        }
    }

    /// What people call a key of this kind (for messages).
    pub fn noun(self) -> &'static str {
        match self {
            KeyKind::Registration => "registration key",
            KeyKind::License => "license key",
            KeyKind::Enrollment => "enrollment key",
            KeyKind::Invitation => "invitation key",
        }
    }

    /// The length of this kind's generated keys: prefix, 7 groups of 4, 6 dashes.
    pub fn generated_len(self) -> usize {
        self.prefix().len() + SYMBOLS + SYMBOLS / GROUP - 1
    }
}
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const RANDOM_SYMBOLS: usize = 26;
const SYMBOLS: usize = RANDOM_SYMBOLS + 2;
const GROUP: usize = 4;
/// Length of a generated key: prefix, 7 groups of 4, 6 dashes.
pub const GENERATED_LEN: usize = KEY_PREFIX.len() + SYMBOLS + SYMBOLS / GROUP - 1;
/// The longest key string accepted at all.
pub const MAX_KEY_LEN: usize = 256;

/// Why a key string was refused before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// Empty after trimming.
    #[error("the key is empty")]
    Empty,
    /// Longer than [`MAX_KEY_LEN`].
    #[error("the key is longer than {MAX_KEY_LEN} characters")]
    TooLong,
    /// Contains a control character.
    #[error("the key contains a control character")]
    ControlCharacter,
    /// Has the generated shape but a wrong checksum: a typo.
    #[error("the key has a wrong checksum (mistyped?)")]
    BadChecksum,
}

/// A key of any kind in plaintext. Its `Debug` shows only the display prefix.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainKey(String);

/// A registration key in plaintext (the first kind; every kind shares [`PlainKey`]'s rules).
pub type RegistrationKey = PlainKey;

impl PlainKey {
    /// Parses a key as received: trims surrounding whitespace, refuses empty, overlong or
    /// control-character strings, and refuses a generated-shape key with a wrong checksum.
    pub fn parse(raw: &str) -> Result<Self, KeyFormatError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(KeyFormatError::Empty);
        }
        if s.len() > MAX_KEY_LEN {
            return Err(KeyFormatError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(KeyFormatError::ControlCharacter);
        }
        if generated_symbols(s).is_some_and(|symbols| !checksum_ok(&symbols)) {
            return Err(KeyFormatError::BadChecksum);
        }
        Ok(PlainKey(s.to_owned()))
    }

    /// Generates a new random registration key from the system CSPRNG.
    pub fn generate() -> Self {
        Self::generate_kind(KeyKind::Registration)
    }

    /// Generates a new random key of `kind` from the system CSPRNG.
    pub fn generate_kind(kind: KeyKind) -> Self {
        let mut bytes = [0u8; RANDOM_SYMBOLS];
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system random generator failed");
        let mut values: Vec<u8> = bytes.iter().map(|b| b & 31).collect();
        let (c1, c2) = check_symbols(&values);
        values.push(c1);
        values.push(c2);
        let mut out = String::with_capacity(kind.generated_len());
        out.push_str(kind.prefix());
        for (i, v) in values.iter().enumerate() {
            if i > 0 && i % GROUP == 0 {
                out.push('-');
            }
            out.push(ALPHABET[*v as usize] as char);
        }
        PlainKey(out)
    }

    /// Whether this key has the generated shape (as opposed to a custom fixture string).
    pub fn is_generated(&self) -> bool {
        generated_symbols(&self.0).is_some()
    }

    /// The kind of a generated-shape key; `None` for a custom string (of any kind).
    pub fn kind(&self) -> Option<KeyKind> {
        generated_kind(&self.0)
    }

    /// Whether this key may be looked up as a key of `kind`: a custom string, or a generated
    /// key of that kind. A generated key of another kind can only be unknown there.
    pub fn may_be(&self, kind: KeyKind) -> bool {
        self.kind().is_none_or(|k| k == kind)
    }

    /// The plaintext. Only for showing it once at issue, or sending it to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash stored at rest and used for look-ups (SHA-256, lower-case hex).
    pub fn hash(&self) -> String {
        hash_key_str(&self.0)
    }

    /// A short prefix safe to log and show: the kind's prefix and the first group (`GLPI-XXXX`,
    /// `LIC-XXXX`) for generated keys, at most a third (and at most 8 characters) of a custom
    /// string.
    pub fn display_prefix(&self) -> String {
        let n = if let Some(kind) = self.kind() {
            kind.prefix().len() + GROUP
        } else {
            (self.0.chars().count() / 3).min(8)
        };
        self.0.chars().take(n).collect()
    }
}

impl Drop for PlainKey {
    /// The plaintext is wiped from memory when the key goes out of scope.
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlainKey({}…)", self.display_prefix())
    }
}

/// SHA-256 hex of a trimmed key string (the at-rest form).
pub fn hash_key_str(s: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, s.as_bytes()))
}

/// The kind whose generated shape `s` has, if any.
fn generated_kind(s: &str) -> Option<KeyKind> {
    KeyKind::ALL
        .into_iter()
        .find(|k| symbols_of(s, *k).is_some())
}

/// The symbol values of a generated-shape key (of any kind), or `None` when the string has
/// another shape.
fn generated_symbols(s: &str) -> Option<Vec<u8>> {
    KeyKind::ALL.into_iter().find_map(|k| symbols_of(s, k))
}

/// The symbol values of `s` when it has `kind`'s generated shape.
fn symbols_of(s: &str, kind: KeyKind) -> Option<Vec<u8>> {
    let rest = s.strip_prefix(kind.prefix())?;
    if s.len() != kind.generated_len() {
        return None;
    }
    let mut values = Vec::with_capacity(SYMBOLS);
    for (i, group) in rest.split('-').enumerate() {
        if i >= SYMBOLS / GROUP || group.len() != GROUP {
            return None;
        }
        for b in group.bytes() {
            values.push(ALPHABET.iter().position(|a| *a == b)? as u8);
        }
    }
    (values.len() == SYMBOLS).then_some(values)
}

fn check_symbols(values: &[u8]) -> (u8, u8) {
    let c1 = values
        .iter()
        .enumerate()
        .fold(0u32, |acc, (i, v)| acc + (2 * i as u32 + 1) * u32::from(*v))
        % 32;
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(values);
    ctx.update(&[c1 as u8]);
    let c2 = ctx.finish().as_ref()[0] & 31;
    (c1 as u8, c2)
}

fn checksum_ok(values: &[u8]) -> bool {
    let (c1, c2) = check_symbols(&values[..RANDOM_SYMBOLS]);
    values[RANDOM_SYMBOLS] == c1 && values[RANDOM_SYMBOLS + 1] == c2
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let k = RegistrationKey::generate();
        let s = k.expose();
        assert_eq!(s.len(), GENERATED_LEN);
        assert!(s.starts_with("GLPI-"));
        assert_eq!(s.split('-').count(), 8);
        assert!(k.is_generated());
        assert_eq!(k.display_prefix().len(), 9);
        assert_ne!(RegistrationKey::generate(), k);
    }

    #[test]
    fn debug_never_shows_the_whole_key() {
        let k = RegistrationKey::generate();
        let dbg = format!("{k:?}");
        assert!(!dbg.contains(k.expose()));
        assert!(dbg.contains(&k.display_prefix()));
    }

    #[test]
    fn custom_strings_are_accepted_as_they_are() {
        let k = RegistrationKey::parse("  my-fixture-key-0001 \n").unwrap();
        assert_eq!(k.expose(), "my-fixture-key-0001");
        assert!(!k.is_generated());
        assert_eq!(k.display_prefix(), "my-fix");
        assert_eq!(RegistrationKey::parse(" \t"), Err(KeyFormatError::Empty));
        assert_eq!(
            RegistrationKey::parse(&"x".repeat(300)),
            Err(KeyFormatError::TooLong)
        );
        assert_eq!(
            RegistrationKey::parse("ab\u{0}cd"),
            Err(KeyFormatError::ControlCharacter)
        );
    }

    #[test]
    fn hash_is_sha256_hex_of_the_trimmed_key() {
        let k = RegistrationKey::parse(" abc ").unwrap();
        assert_eq!(
            k.hash(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn every_kind_has_its_prefix_checksum_and_display_prefix() {
        for kind in KeyKind::ALL {
            let k = PlainKey::generate_kind(kind);
            assert!(k.expose().starts_with(kind.prefix()));
            assert_eq!(k.expose().len(), kind.generated_len());
            assert_eq!(k.kind(), Some(kind));
            assert_eq!(PlainKey::parse(k.expose()).unwrap().kind(), Some(kind));
            assert_eq!(k.display_prefix(), k.expose()[..kind.prefix().len() + 4]);
            for other in KeyKind::ALL {
                assert_eq!(k.may_be(other), other == kind);
            }
            // a typo in the last symbol is a wrong checksum for every kind
            let mut typo = k.expose().to_owned();
            let last = typo.pop().unwrap();
            typo.push(if last == 'A' { 'B' } else { 'A' });
            assert_eq!(PlainKey::parse(&typo), Err(KeyFormatError::BadChecksum));
        }
        let custom = PlainKey::parse("LIC-fixture-0001").unwrap();
        assert_eq!(custom.kind(), None);
        assert!(KeyKind::ALL.iter().all(|k| custom.may_be(*k)));
    }

    proptest! {
        #[test]
        fn generated_keys_round_trip(_seed in 0u8..255) {
            let k = RegistrationKey::generate();
            let again = RegistrationKey::parse(&format!(" {} ", k.expose())).unwrap();
            prop_assert_eq!(&again, &k);
            prop_assert_eq!(again.hash(), k.hash());
        }

        #[test]
        fn any_single_symbol_typo_is_refused(pos in 0usize..SYMBOLS, sym in 0usize..32) {
            let k = RegistrationKey::generate();
            let mut bytes = k.expose().as_bytes().to_vec();
            // index of the pos-th symbol after the prefix, skipping dashes
            let idx = KEY_PREFIX.len() + pos + pos / GROUP;
            prop_assume!(bytes[idx] != ALPHABET[sym]);
            bytes[idx] = ALPHABET[sym];
            let typo = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(RegistrationKey::parse(&typo), Err(KeyFormatError::BadChecksum));
        }

        #[test]
        fn arbitrary_strings_parse_to_their_trimmed_self_or_a_true_reason(
            s in prop_oneof![any::<String>(), "[ \t]{0,2}GLPI(-[A-Z2-7]{4}){7}[ \n]{0,2}"],
        ) {
            match RegistrationKey::parse(&s) {
                Ok(k) => {
                    prop_assert_eq!(k.expose(), s.trim());
                    prop_assert_eq!(RegistrationKey::parse(k.expose()), Ok(k.clone()));
                    prop_assert!(k.display_prefix().len() < k.expose().len());
                }
                Err(KeyFormatError::Empty) => prop_assert!(s.trim().is_empty()),
                Err(KeyFormatError::TooLong) => prop_assert!(s.trim().len() > MAX_KEY_LEN),
                Err(KeyFormatError::ControlCharacter) => {
                    prop_assert!(s.trim().chars().any(char::is_control))
                }
                Err(KeyFormatError::BadChecksum) => {
                    prop_assert!(generated_symbols(s.trim()).is_some())
                }
            }
        }

        #[test]
        fn any_other_single_character_typo_changes_the_key(pos in 0usize..GENERATED_LEN, c in proptest::char::any()) {
            let k = RegistrationKey::generate();
            let mut chars: Vec<char> = k.expose().chars().collect();
            prop_assume!(chars[pos] != c);
            chars[pos] = c;
            let typo: String = chars.into_iter().collect();
            // Either refused outright, or a different string that can only miss in a look-up.
            match RegistrationKey::parse(&typo) {
                Err(_) => {}
                Ok(other) => {
                    prop_assert_ne!(other.hash(), k.hash());
                    prop_assert!(!other.is_generated());
                }
            }
        }
    }
}
