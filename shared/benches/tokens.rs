//! Signing one validation token (jsonwebtoken `rust_crypto`, parsing the key every time, and
//! `TokenSigner`, with ring's key pair parsed once and with jsonwebtoken's signer parsed once into
//! a `LocalSigners`, as a server worker signs) and verifying one (EdDSA).
//! Run: `cargo bench -p glpi-network-shared --bench tokens`.

use criterion::{Criterion, criterion_group, criterion_main};
use glpi_network_shared::ValidationStatus;
use glpi_network_shared::token::{
    self, AUDIENCE, Claims, Expect, LocalSigners, TokenSigner, Verifier,
};
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::JwkSet;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::hint::black_box;

fn claims(now: i64) -> Claims {
    Claims {
        iss: "https://licensing.example.com".into(),
        aud: AUDIENCE.into(),
        sub: "01a20b7e-9731-721d-a7cf-55ade9cb3ef5".into(),
        iat: now,
        nbf: now,
        exp: now + 86_400,
        jti: "2c1f8a47-6f55-4d2e-9a43-3c8f2b7d9e10".into(),
        status: ValidationStatus::Valid,
        valid: true,
        instance_url: Some("https://glpi.example.com/glpi".into()),
        instance_uid: Some("a".repeat(40)),
        offer: "standard".into(),
        offer_title: "GLPI Network Standard".into(),
        entitlements: vec![
            "marketplace".into(),
            "support".into(),
            "exclusive_plugins".into(),
        ],
        subscription_begin: Some("2026-01-01".into()),
        subscription_end: Some("2026-12-31".into()),
        owner: "ACME Corp".into(),
        grace_until: now + 8 * 86_400,
        ver: 7,
        nonce: Some("3f9d2c".into()),
    }
}

fn bench(c: &mut Criterion) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let enc = EncodingKey::from_ed_der(pkcs8.as_ref());
    let signer = TokenSigner::new("k1", pkcs8.as_ref()).unwrap();
    let jwks = JwkSet {
        keys: vec![token::ed25519_jwk("k1", pair.public_key().as_ref()).unwrap()],
    };
    let verifier = Verifier::new("https://licensing.example.com", &jwks).unwrap();
    let now = 1_800_000_000;
    let cl = claims(now);
    let signed = token::sign(&cl, "k1", &enc).unwrap();
    assert_eq!(signer.sign(&cl).unwrap(), signed);
    let local = LocalSigners::default();
    assert_eq!(signer.sign_in(&local, &cl).unwrap(), signed);
    let expect = Expect {
        instance_url: Some("https://glpi.example.com/glpi"),
        nonce: Some("3f9d2c"),
    };
    c.bench_function("sign one token", |b| {
        b.iter(|| token::sign(black_box(&cl), "k1", &enc).unwrap())
    });
    c.bench_function("sign one token (parsed key)", |b| {
        b.iter(|| signer.sign(black_box(&cl)).unwrap())
    });
    c.bench_function("sign one token (parsed key, LocalSigners)", |b| {
        b.iter(|| signer.sign_in(&local, black_box(&cl)).unwrap())
    });
    c.bench_function("verify one token", |b| {
        b.iter(|| verifier.verify(black_box(&signed), now, &expect).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
