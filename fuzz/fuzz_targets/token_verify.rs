//! The token verifier on hostile input: arbitrary token strings, arbitrary JWKS documents and
//! mutations of one genuine token. Nothing may panic, and nothing but the genuine token may
//! verify under the genuine key.
//!
//! The first input byte picks a mode (so seed files stay readable):
//! - `T` + token: verified against the genuine key set.
//! - `J` + JWKS JSON: a verifier built from it must not panic; if it accepts the genuine token,
//!   the set must really hold the genuine public key under the genuine `kid`.
//! - `M` + (u16 position, byte) pairs: those bytes of the genuine token are overwritten.
//! - `S` + (u8 position, xor) pairs: bytes of the genuine 64-byte signature are flipped and the
//!   token re-encoded; any real change must be refused as a bad signature.
//! - anything else: JWKS JSON, a 0 byte, then a token; both through `Verifier::new`/`verify`.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use glpi_network_shared::token::{self, AUDIENCE, Expect};
use glpi_network_shared::{Claims, TokenError, ValidationStatus, Verifier};
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use libfuzzer_sys::fuzz_target;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::sync::LazyLock;

const ISS: &str = "https://licensing.example.com";
const KID: &str = "k1";
const NOW: i64 = 1_800_000_000;
const URL: &str = "https://glpi.example.com";

struct Genuine {
    public: Vec<u8>,
    verifier: Verifier,
    token: String,
    claims: Claims,
}

fn claims() -> Claims {
    Claims {
        iss: ISS.into(),
        aud: AUDIENCE.into(),
        sub: "key-id".into(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + token::DEFAULT_TTL_SECS,
        jti: "jti-1".into(),
        status: ValidationStatus::Valid,
        valid: true,
        instance_url: Some(URL.into()),
        instance_uid: None,
        offer: "basic".into(),
        offer_title: "GLPI Network Basic".into(),
        entitlements: vec!["marketplace".into()],
        subscription_begin: Some("2026-01-01".into()),
        subscription_end: None,
        owner: "ACME".into(),
        grace_until: NOW + token::DEFAULT_TTL_SECS + token::DEFAULT_GRACE_SECS,
        ver: 3,
        nonce: Some("n-1".into()),
    }
}

static GENUINE: LazyLock<Genuine> = LazyLock::new(|| {
    let seed = [7u8; 32];
    let kp = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    // PKCS#8 v1 wrapping of the seed, as `EncodingKey::from_ed_der` expects.
    let mut pkcs8 = hex_prefix();
    pkcs8.extend_from_slice(&seed);
    let enc = EncodingKey::from_ed_der(&pkcs8);
    let public = kp.public_key().as_ref().to_vec();
    let jwks = JwkSet {
        keys: vec![token::ed25519_jwk(KID, &public).unwrap()],
    };
    let verifier = Verifier::new(ISS, &jwks).unwrap();
    let claims = claims();
    let token = token::sign(&claims, KID, &enc).unwrap();
    assert_eq!(
        verifier.verify(&token, NOW, &expect()).as_ref(),
        Ok(&claims)
    );
    Genuine {
        public,
        verifier,
        token,
        claims,
    }
});

fn hex_prefix() -> Vec<u8> {
    vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ]
}

fn expect() -> Expect<'static> {
    Expect {
        instance_url: Some(URL),
        nonce: Some("n-1"),
    }
}

/// Only the genuine token may verify under the genuine key set.
fn check_genuine_only(g: &Genuine, token: &str) {
    let _ = Verifier::peek_kid(token);
    for now in [NOW, i64::MIN, i64::MAX] {
        if let Ok(c) = g.verifier.verify(token, now, &Expect::default()) {
            assert_eq!(
                token, g.token,
                "a token other than the genuine one verified"
            );
            assert_eq!(c, g.claims);
        }
    }
}

/// Whether `jwks` (as JSON) really holds the genuine public key under the genuine kid: the
/// last such entry wins, as in `Verifier::new`.
fn holds_genuine_key(g: &Genuine, jwks: &JwkSet) -> bool {
    jwks.keys
        .iter()
        .rev()
        .find(|k| k.common.key_id.as_deref() == Some(KID))
        .is_some_and(|k| match &k.algorithm {
            AlgorithmParameters::OctetKeyPair(p) => {
                URL_SAFE_NO_PAD
                    .decode(p.x.trim_end_matches('='))
                    .ok()
                    .as_deref()
                    == Some(&g.public[..])
            }
            _ => false,
        })
}

fn with_jwks(g: &Genuine, json: &[u8], token: Option<&str>) {
    let Ok(set) = serde_json::from_slice::<JwkSet>(json) else {
        return;
    };
    let Ok(v) = Verifier::new(ISS, &set) else {
        return;
    };
    let v = v.with_leeway(i64::MAX);
    let _ = format!("{v:?}");
    if v.verify(&g.token, NOW, &expect()).is_ok() {
        assert!(
            holds_genuine_key(g, &set),
            "a key set without the genuine key accepted the genuine token"
        );
    }
    if let Some(t) = token {
        let _ = v.verify(t, NOW, &expect());
        let _ = v.verify(t, i64::MIN, &Expect::default());
    }
}

fuzz_target!(|data: &[u8]| {
    let g = &*GENUINE;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        b'T' => check_genuine_only(g, &String::from_utf8_lossy(rest)),
        b'J' => with_jwks(g, rest, None),
        b'M' => {
            let mut bytes = g.token.clone().into_bytes();
            for p in rest.chunks_exact(3) {
                let pos = usize::from(u16::from_le_bytes([p[0], p[1]])) % bytes.len();
                bytes[pos] = p[2];
            }
            check_genuine_only(g, &String::from_utf8_lossy(&bytes));
        }
        b'S' => {
            let (input, sig) = g.token.rsplit_once('.').unwrap();
            let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
            assert_eq!(sig.len(), 64);
            for p in rest.chunks_exact(2) {
                sig[usize::from(p[0]) % 64] ^= p[1];
            }
            let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
            let r = g.verifier.verify(&forged, NOW, &expect());
            if forged == g.token {
                assert!(r.is_ok());
            } else {
                assert_eq!(r, Err(TokenError::BadSignature));
            }
        }
        _ => {
            let (json, token) = match rest.iter().position(|b| *b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            let token = String::from_utf8_lossy(token);
            with_jwks(g, json, Some(&token));
            check_genuine_only(g, &token);
        }
    }
});
