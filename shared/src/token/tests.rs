use super::*;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

const ISS: &str = "https://licensing.example.com";
const URL: &str = "https://glpi.example.com";
const NOW: i64 = 1_800_000_000;

struct TestKey {
    kid: String,
    enc: EncodingKey,
    public: Vec<u8>,
}

fn key(kid: &str) -> TestKey {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    TestKey {
        kid: kid.to_owned(),
        enc: EncodingKey::from_ed_der(pkcs8.as_ref()),
        public: kp.public_key().as_ref().to_vec(),
    }
}

fn jwks(keys: &[&TestKey]) -> JwkSet {
    JwkSet {
        keys: keys
            .iter()
            .map(|k| ed25519_jwk(&k.kid, &k.public).unwrap())
            .collect(),
    }
}

fn claims() -> Claims {
    Claims {
        iss: ISS.into(),
        aud: AUDIENCE.into(),
        sub: "key-id".into(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + DEFAULT_TTL_SECS,
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
        grace_until: NOW + DEFAULT_TTL_SECS + DEFAULT_GRACE_SECS,
        ver: 3,
        nonce: Some("n-1".into()),
    }
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[test]
fn a_signed_token_verifies_and_round_trips_its_claims() {
    let k = key("k1");
    let token = sign(&claims(), &k.kid, &k.enc).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(
        (header.alg, header.typ.as_deref(), header.kid.as_deref()),
        (Algorithm::EdDSA, Some("JWT"), Some("k1"))
    );
    let v = Verifier::new(ISS, &jwks(&[&k])).unwrap();
    let expect = Expect {
        instance_url: Some(URL),
        nonce: Some("n-1"),
    };
    assert_eq!(v.verify(&token, NOW + 10, &expect).unwrap(), claims());
    // ring verifies jsonwebtoken's signature too: the formats agree
    let (signing_input, sig) = token.rsplit_once('.').unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &k.public)
        .verify(
            signing_input.as_bytes(),
            &URL_SAFE_NO_PAD.decode(sig).unwrap(),
        )
        .unwrap();
}

#[test]
fn a_tampered_payload_is_refused() {
    let k = key("k1");
    let token = sign(&claims(), &k.kid, &k.enc).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut c = serde_json::to_value(claims()).unwrap();
    c["offer"] = "advanced".into();
    let forged = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
    let v = Verifier::new(ISS, &jwks(&[&k])).unwrap();
    assert_eq!(
        v.verify(&forged, NOW, &Expect::default()),
        Err(TokenError::BadSignature)
    );
    // another key's signature under this kid
    let other = key("k1");
    let token = sign(&claims(), "k1", &other.enc).unwrap();
    assert_eq!(
        v.verify(&token, NOW, &Expect::default()),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn alg_none_and_hs256_with_the_public_key_are_refused() {
    let k = key("k1");
    let v = Verifier::new(ISS, &jwks(&[&k])).unwrap();
    let payload = b64(&serde_json::to_value(claims()).unwrap());
    let none = format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": "k1"})),
        payload
    );
    assert_eq!(
        v.verify(&none, NOW, &Expect::default()),
        Err(TokenError::Algorithm)
    );
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(&k.public)).unwrap();
    assert_eq!(
        v.verify(&hs, NOW, &Expect::default()),
        Err(TokenError::Algorithm)
    );
    let jwk_b64 = ed25519_jwk("k1", &k.public).unwrap();
    let AlgorithmParameters::OctetKeyPair(p) = &jwk_b64.algorithm else {
        unreachable!()
    };
    let hs2 =
        jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(p.x.as_bytes())).unwrap();
    assert_eq!(
        v.verify(&hs2, NOW, &Expect::default()),
        Err(TokenError::Algorithm)
    );
}

#[test]
fn unknown_or_missing_kid_is_refused() {
    let k = key("k1");
    let v = Verifier::new(ISS, &jwks(&[&k])).unwrap();
    let token = sign(&claims(), "k2", &k.enc).unwrap();
    assert_eq!(
        v.verify(&token, NOW, &Expect::default()),
        Err(TokenError::UnknownKid("k2".into()))
    );
    assert_eq!(Verifier::peek_kid(&token).unwrap().as_deref(), Some("k2"));
    assert!(!v.knows("k2"));
    let h = Header::new(Algorithm::EdDSA);
    let token = jsonwebtoken::encode(&h, &claims(), &k.enc).unwrap();
    assert_eq!(
        v.verify(&token, NOW, &Expect::default()),
        Err(TokenError::MissingKid)
    );
}

#[test]
fn wrong_audience_issuer_instance_and_nonce_are_refused() {
    let k = key("k1");
    let v = Verifier::new(ISS, &jwks(&[&k])).unwrap();
    let mut c = claims();
    c.aud = "someone-else".into();
    let t = sign(&c, "k1", &k.enc).unwrap();
    assert_eq!(
        v.verify(&t, NOW, &Expect::default()),
        Err(TokenError::Audience)
    );
    let mut c = claims();
    c.iss = "https://evil.example.com".into();
    let t = sign(&c, "k1", &k.enc).unwrap();
    assert_eq!(
        v.verify(&t, NOW, &Expect::default()),
        Err(TokenError::Issuer)
    );
    let t = sign(&claims(), "k1", &k.enc).unwrap();
    let other = Expect {
        instance_url: Some("https://other.example.com"),
        nonce: None,
    };
    assert_eq!(v.verify(&t, NOW, &other), Err(TokenError::InstanceMismatch));
    let replay = Expect {
        instance_url: Some(URL),
        nonce: Some("n-2"),
    };
    assert_eq!(v.verify(&t, NOW, &replay), Err(TokenError::NonceMismatch));
}

#[test]
fn expiry_and_not_before_respect_the_leeway() {
    let k = key("k1");
    let v = Verifier::new(ISS, &jwks(&[&k])).unwrap().with_leeway(30);
    let t = sign(&claims(), "k1", &k.enc).unwrap();
    let exp = claims().exp;
    assert!(v.verify(&t, exp + 30, &Expect::default()).is_ok());
    assert_eq!(
        v.verify(&t, exp + 31, &Expect::default()),
        Err(TokenError::Expired)
    );
    assert!(v.verify(&t, NOW - 30, &Expect::default()).is_ok());
    assert_eq!(
        v.verify(&t, NOW - 31, &Expect::default()),
        Err(TokenError::NotYetValid)
    );
}

#[test]
fn short_or_foreign_keys_are_refused_without_panicking() {
    for x in [vec![7u8; 16], vec![7u8; 31], vec![], vec![7u8; 44]] {
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": "short", "x": URL_SAFE_NO_PAD.encode(&x)
        }))
        .unwrap();
        assert!(
            matches!(ed25519_decoding_key(&jwk), Err(TokenError::InvalidKey(_))),
            "{} bytes",
            x.len()
        );
        assert!(Verifier::new(ISS, &JwkSet { keys: vec![jwk] }).is_err());
    }
    let x25519: Jwk = serde_json::from_value(serde_json::json!({
        "kty": "OKP", "crv": "X25519", "kid": "x", "x": URL_SAFE_NO_PAD.encode([1u8; 32])
    }))
    .unwrap();
    assert!(matches!(
        ed25519_decoding_key(&x25519),
        Err(TokenError::InvalidKey(_))
    ));
    let rsa: Jwk =
        serde_json::from_value(serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"}))
            .unwrap();
    assert!(matches!(
        ed25519_decoding_key(&rsa),
        Err(TokenError::InvalidKey(_))
    ));
    let jwk = ed25519_jwk("k", &[1u8; 32]).unwrap();
    let v = serde_json::to_value(&jwk).unwrap();
    assert_eq!(
        (
            v["kty"].as_str(),
            v["crv"].as_str(),
            v["alg"].as_str(),
            v["kid"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("k"))
    );
}

#[test]
fn garbage_is_malformed() {
    let k = key("k1");
    let v = Verifier::new(ISS, &jwks(&[&k])).unwrap();
    for t in ["", "a.b", "a.b.c", "....", "eyJhbGciOiJFZERTQSJ9.e30.AAAA"] {
        assert!(v.verify(t, NOW, &Expect::default()).is_err(), "{t}");
    }
}

#[test]
fn a_token_signer_signs_exactly_like_sign_and_its_tokens_verify() {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let signer = TokenSigner::new("k1", pkcs8.as_ref()).unwrap();
    assert_eq!(signer.kid(), "k1");
    let enc = EncodingKey::from_ed_der(pkcs8.as_ref());
    let mut c = claims();
    for (i, nonce) in [None, Some("n-1"), Some("é \" \u{1F600}")]
        .into_iter()
        .enumerate()
    {
        c.nonce = nonce.map(str::to_owned);
        c.ver = i as i64;
        let token = signer.sign(&c).unwrap();
        assert_eq!(token, sign(&c, "k1", &enc).unwrap(), "nonce {nonce:?}");
        let k = TestKey {
            kid: "k1".into(),
            enc: EncodingKey::from_ed_der(pkcs8.as_ref()),
            public: public.clone(),
        };
        let v = Verifier::new(ISS, &jwks(&[&k])).unwrap();
        assert_eq!(v.verify(&token, NOW, &Expect::default()).unwrap(), c);
    }
    // the key material stays out of Debug
    let debug = format!("{signer:?}");
    assert!(debug.contains("k1"), "{debug}");
    assert!(!debug.contains(&format!("{:?}", &pkcs8.as_ref()[16..48])));
    assert!(!debug.to_lowercase().contains("pair"), "{debug}");
}

#[test]
fn local_signers_sign_exactly_like_ring_and_drop_the_signers_of_dropped_keys() {
    let docs: Vec<Vec<u8>> = (1u8..=3)
        .map(|i| super::ed25519_pkcs8_from_seed(&[i; 32]))
        .collect();
    let mut signers: Vec<TokenSigner> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| TokenSigner::new(&format!("k{i}"), d).unwrap())
        .collect();
    let local = LocalSigners::default();
    assert!(local.is_empty());
    for round in 0..6 {
        let i = round % signers.len();
        let mut c = claims();
        c.ver = round as i64;
        c.nonce = Some(format!("n{round}"));
        let want = sign(&c, &format!("k{i}"), &EncodingKey::from_ed_der(&docs[i])).unwrap();
        assert_eq!(signers[i].sign(&c).unwrap(), want, "ring, key {i}");
        assert_eq!(
            signers[i].sign_in(&local, &c).unwrap(),
            want,
            "local, key {i}"
        );
    }
    assert_eq!(local.len(), 3, "each key parsed once");
    // a second LocalSigners (another worker) parses its own
    let other = LocalSigners::default();
    signers[0].sign_in(&other, &claims()).unwrap();
    assert_eq!((local.len(), other.len()), (3, 1));
    // a dropped key's parsed signer goes at the next signature
    signers.pop();
    signers[0].sign_in(&local, &claims()).unwrap();
    assert_eq!(local.len(), 2);
    let debug = format!("{local:?}");
    assert_eq!(debug, "LocalSigners { parsed: 2, .. }");
}

#[test]
fn a_token_signer_refuses_a_v2_document_whose_public_key_is_not_the_seeds() {
    // a PKCS#8 v2 document carries the public key too: one that is not the seed's is refused
    // (by ring; the signer's probe signature would refuse it next)
    let mut doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec();
    let other = Ed25519KeyPair::from_pkcs8(
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    let at = doc.len() - 32;
    doc[at..].copy_from_slice(other.public_key().as_ref());
    let err = TokenSigner::new("k", &doc).unwrap_err();
    assert!(matches!(err, TokenError::InvalidKey(_)));
}

#[test]
fn a_token_signer_takes_a_pkcs8_v1_document_from_a_seed() {
    let seed = [42u8; 32];
    let v1 = super::ed25519_pkcs8_from_seed(&seed);
    let public = Ed25519KeyPair::from_seed_unchecked(&seed)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let signer = TokenSigner::new("seeded", &v1).unwrap();
    let token = signer.sign(&claims()).unwrap();
    assert_eq!(
        token,
        sign(&claims(), "seeded", &EncodingKey::from_ed_der(&v1)).unwrap()
    );
    let k = TestKey {
        kid: "seeded".into(),
        enc: EncodingKey::from_ed_der(&v1),
        public,
    };
    let v = Verifier::new(ISS, &jwks(&[&k])).unwrap();
    assert_eq!(v.verify(&token, NOW, &Expect::default()).unwrap(), claims());
}

#[test]
fn a_token_signer_refuses_bad_documents_without_panicking() {
    let v2 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let v2 = v2.as_ref();
    let mut wrong_public = v2.to_vec();
    *wrong_public.last_mut().unwrap() ^= 1;
    let v1 = super::ed25519_pkcs8_from_seed(&[7u8; 32]);
    let p256 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &SystemRandom::new(),
    )
    .unwrap();
    let bad: Vec<Vec<u8>> = vec![
        vec![],
        vec![0u8; 1],
        vec![0u8; 32],
        [7u8; 32].to_vec(),
        b"not a key at all".to_vec(),
        v1[..v1.len() - 1].to_vec(),
        [&v1[..], &[0u8]].concat(),
        v2[..v2.len() / 2].to_vec(),
        wrong_public,
        p256.as_ref().to_vec(),
    ];
    for doc in bad {
        assert!(
            matches!(TokenSigner::new("k", &doc), Err(TokenError::InvalidKey(_))),
            "{doc:?}"
        );
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::sync::LazyLock;

    /// One key, its verifier and one genuine token, shared by every case.
    struct Genuine {
        verifier: Verifier,
        token: String,
        public: Vec<u8>,
    }

    static GENUINE: LazyLock<Genuine> = LazyLock::new(|| {
        let k = key("k1");
        let verifier = Verifier::new(ISS, &jwks(&[&k])).unwrap();
        let token = sign(&claims(), &k.kid, &k.enc).unwrap();
        assert!(verifier.verify(&token, NOW, &Expect::default()).is_ok());
        Genuine {
            verifier,
            token,
            public: k.public,
        }
    });

    fn expect() -> Expect<'static> {
        Expect {
            instance_url: Some(URL),
            nonce: Some("n-1"),
        }
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_verify(s in "\\PC{0,300}", now in any::<i64>()) {
            let g = &*GENUINE;
            let _ = Verifier::peek_kid(&s);
            prop_assert!(g.verifier.verify(&s, now, &Expect::default()).is_err());
        }

        #[test]
        fn arbitrary_jwt_shaped_strings_never_verify(
            h in "[A-Za-z0-9_-]{0,60}",
            p in "[A-Za-z0-9_-]{0,200}",
            s in "[A-Za-z0-9_-]{0,90}",
        ) {
            let g = &*GENUINE;
            let t = format!("{h}.{p}.{s}");
            prop_assert!(g.verifier.verify(&t, NOW, &Expect::default()).is_err());
            // the genuine header and payload with a made-up signature
            let (input, _) = g.token.rsplit_once('.').unwrap();
            let forged = format!("{input}.{s}");
            prop_assert!(g.verifier.verify(&forged, NOW, &Expect::default()).is_err());
        }

        #[test]
        fn a_genuine_token_with_any_character_changed_never_verifies(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..4),
        ) {
            let g = &*GENUINE;
            let mut chars: Vec<char> = g.token.chars().collect();
            for (at, c) in &edits {
                let i = at.index(chars.len());
                chars[i] = *c;
            }
            let t: String = chars.into_iter().collect();
            prop_assume!(t != g.token);
            prop_assert!(g.verifier.verify(&t, NOW, &expect()).is_err(), "{t}");
        }

        #[test]
        fn a_genuine_token_with_any_signature_byte_changed_is_refused(
            at in 0usize..64,
            xor in 1u8..=255,
        ) {
            let g = &*GENUINE;
            let (input, sig) = g.token.rsplit_once('.').unwrap();
            let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
            prop_assert_eq!(sig.len(), 64);
            sig[at] ^= xor;
            let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
            prop_assert_eq!(
                g.verifier.verify(&forged, NOW, &expect()),
                Err(TokenError::BadSignature)
            );
        }

        #[test]
        fn arbitrary_okp_keys_never_panic_and_only_the_real_one_verifies(
            crv in prop::sample::select(vec!["Ed25519", "Ed448", "X25519", "P-256", ""]),
            x in prop::collection::vec(any::<u8>(), 0..80),
            raw_x in proptest::option::of("\\PC{0,60}"),
            real in any::<bool>(),
        ) {
            let g = &*GENUINE;
            let x = if real { g.public.clone() } else { x };
            let x_text = raw_x.unwrap_or_else(|| URL_SAFE_NO_PAD.encode(&x));
            let doc = serde_json::json!({"keys": [
                {"kty": "OKP", "crv": crv, "alg": "EdDSA", "kid": "k1", "x": x_text}
            ]});
            let Ok(set) = serde_json::from_value::<JwkSet>(doc) else {
                return Ok(());
            };
            match Verifier::new(ISS, &set) {
                Ok(v) => {
                    prop_assert_eq!(crv, "Ed25519");
                    let ok = v.verify(&g.token, NOW, &expect()).is_ok();
                    let decoded = URL_SAFE_NO_PAD.decode(x_text.trim_end_matches('=')).unwrap();
                    prop_assert_eq!(decoded.len(), 32);
                    prop_assert_eq!(ok, decoded == g.public);
                }
                Err(e) => prop_assert!(matches!(e, TokenError::InvalidKey(_)), "{e:?}"),
            }
        }
    }
}

#[test]
fn a_token_of_another_kind_verifies_with_its_own_claims() {
    let k = key("k1");
    let mut extra = serde_json::Map::new();
    extra.insert("agent_id".into(), "pc-001".into());
    extra.insert("entity".into(), "Paris".into());
    let c = KindClaims {
        iss: ISS.into(),
        aud: AUDIENCE.into(),
        sub: "enrollment-key-id".into(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + DEFAULT_TTL_SECS,
        jti: "jti-2".into(),
        grace_until: NOW + DEFAULT_TTL_SECS + DEFAULT_GRACE_SECS,
        ver: 1,
        nonce: Some("n-2".into()),
        extra,
    };
    let token = sign(&c, &k.kid, &k.enc).unwrap();
    let v = Verifier::new(ISS, &jwks(&[&k])).unwrap();
    assert_eq!(v.verify_kind(&token, NOW + 10, Some("n-2")).unwrap(), c);
    assert_eq!(
        v.verify_kind(&token, NOW + 10, Some("other")),
        Err(TokenError::NonceMismatch)
    );
    assert_eq!(
        v.verify_kind(&token, NOW + DEFAULT_TTL_SECS + 3600, None),
        Err(TokenError::Expired)
    );
    let other = key("k2");
    let forged = sign(&c, "k1", &other.enc).unwrap();
    assert_eq!(
        v.verify_kind(&forged, NOW, None),
        Err(TokenError::BadSignature)
    );
}
