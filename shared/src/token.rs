//! Validation tokens: the claims every server signs and the verification rules every client
//! applies. One definition for both sides.
//!
//! A token is a JWT with header `{"alg": "EdDSA", "typ": "JWT", "kid": ...}` signed with
//! Ed25519. Verification is pinned to EdDSA and to a `kid` from the server's JWKS; time
//! checks (`exp`, `nbf`) run against a caller-supplied clock so test clocks and injected
//! clocks work.

use crate::status::ValidationStatus;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The `aud` of every token.
pub const AUDIENCE: &str = "glpi-network";
/// Default token lifetime: a day, as GLPI caches registration info for a day.
pub const DEFAULT_TTL_SECS: i64 = 24 * 3600;
/// Default offline grace after `exp`: seven days.
pub const DEFAULT_GRACE_SECS: i64 = 7 * 24 * 3600;
/// Default clock leeway for `exp` and `nbf`.
pub const DEFAULT_LEEWAY_SECS: i64 = 60;

/// The claims of a validation token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The server's public base URL.
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// The key id (never the key).
    pub sub: String,
    /// Issued at (NumericDate seconds).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// The key's status for this instance.
    pub status: ValidationStatus,
    /// Whether the instance may run (`valid` or `subscription_ended`).
    pub valid: bool,
    /// The canonical instance URL the token speaks of.
    pub instance_url: Option<String>,
    /// The instance UID, when the binding has one.
    #[serde(default)]
    pub instance_uid: Option<String>,
    /// The subscription's offer reference.
    pub offer: String,
    /// The offer's title.
    pub offer_title: String,
    /// What the instance may use now (empty when refused; the free ones when ended).
    pub entitlements: Vec<String>,
    /// `YYYY-MM-DD`.
    pub subscription_begin: Option<String>,
    /// `YYYY-MM-DD`, or null for an open-ended subscription.
    pub subscription_end: Option<String>,
    /// The subscriber's name.
    pub owner: String,
    /// Until when a client may keep using this token offline (NumericDate seconds).
    pub grace_until: i64,
    /// Per-key counter that grows on every change of the key, its subscription or binding.
    pub ver: i64,
    /// The client's nonce, echoed.
    #[serde(default)]
    pub nonce: Option<String>,
}

/// The claims of a token for a key of another kind (license, enrollment, invitation): the
/// registered claims every token carries, and the kind's own claims beside them (DESIGN §11).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindClaims {
    /// The server's public base URL.
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// The key id (never the key).
    pub sub: String,
    /// Issued at (NumericDate seconds).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// Until when a client may keep using this token offline (NumericDate seconds).
    pub grace_until: i64,
    /// Per-key counter that grows on every change of the key.
    pub ver: i64,
    /// The client's nonce, echoed.
    #[serde(default)]
    pub nonce: Option<String>,
    /// The kind's own claims (`plugin`, `agent_id`, `role`...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a JWT, or claims of the wrong shape.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `alg` is not EdDSA.
    #[error("token algorithm is not EdDSA")]
    Algorithm,
    /// The token has no `kid`.
    #[error("token has no kid")]
    MissingKid,
    /// The `kid` is not in the key set.
    #[error("unknown signing key {0}")]
    UnknownKid(String),
    /// A JWK is not an Ed25519 public key of 32 bytes.
    #[error("invalid Ed25519 JWK: {0}")]
    InvalidKey(String),
    /// The signature does not verify.
    #[error("bad token signature")]
    BadSignature,
    /// Past `exp` (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// Before `nbf` (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// Wrong `iss`.
    #[error("wrong token issuer")]
    Issuer,
    /// Wrong `aud`.
    #[error("wrong token audience")]
    Audience,
    /// The token speaks of another instance.
    #[error("token is for another instance")]
    InstanceMismatch,
    /// The nonce is not the one sent.
    #[error("token nonce does not match the request")]
    NonceMismatch,
}

/// Builds a decoding key from a JWK after checking that it is an Ed25519 public key whose `x`
/// is exactly 32 bytes (jsonwebtoken's `rust_crypto` backend panics on shorter keys).
pub fn ed25519_decoding_key(jwk: &Jwk) -> Result<DecodingKey, TokenError> {
    let AlgorithmParameters::OctetKeyPair(p) = &jwk.algorithm else {
        return Err(TokenError::InvalidKey("kty is not OKP".into()));
    };
    if p.curve != EllipticCurve::Ed25519 {
        return Err(TokenError::InvalidKey("crv is not Ed25519".into()));
    }
    let x = URL_SAFE_NO_PAD
        .decode(p.x.trim_end_matches('='))
        .map_err(|_| TokenError::InvalidKey("x is not base64url".into()))?;
    ed25519_decoding_key_from_raw(&x)
}

/// A decoding key from a raw public key, checked to be 32 bytes.
pub fn ed25519_decoding_key_from_raw(public_key: &[u8]) -> Result<DecodingKey, TokenError> {
    if public_key.len() != 32 {
        return Err(TokenError::InvalidKey(format!(
            "public key is {} bytes, not 32",
            public_key.len()
        )));
    }
    Ok(DecodingKey::from_ed_der(public_key))
}

/// The public JWK (`kty: OKP`, `crv: Ed25519`, `alg: EdDSA`, `use: sig`) of a raw public key.
pub fn ed25519_jwk(kid: &str, public_key: &[u8]) -> Result<Jwk, TokenError> {
    let dec = ed25519_decoding_key_from_raw(public_key)?;
    let mut jwk = Jwk::from_decoding_key(&dec, Some(Algorithm::EdDSA))
        .map_err(|e| TokenError::InvalidKey(e.to_string()))?;
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
    Ok(jwk)
}

/// The PKCS#8 v1 document of the Ed25519 private key with this 32-byte seed (RFC 8410).
pub fn ed25519_pkcs8_from_seed(seed: &[u8; 32]) -> Vec<u8> {
    let mut doc = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    doc.extend_from_slice(seed);
    doc
}

/// Signs claims with an Ed25519 key (PKCS#8 DER in `key`), header `alg: EdDSA`, `typ: JWT`,
/// `kid`. Parses the key on every call: a server signing many tokens keeps a [`TokenSigner`].
pub fn sign<C: Serialize>(claims: &C, kid: &str, key: &EncodingKey) -> Result<String, TokenError> {
    jsonwebtoken::encode(&header(kid), claims, key)
        .map_err(|e| TokenError::InvalidKey(e.to_string()))
}

/// Signs tokens with one Ed25519 key parsed once: the key pair and the encoded header are kept,
/// so signing costs a JSON serialisation and one Ed25519 signature. Tokens are byte for byte
/// those of [`sign`] with the same key and `kid` (Ed25519 signatures are deterministic).
///
/// [`TokenSigner::sign`] signs with ring's key pair and may be called from any thread.
/// [`TokenSigner::sign_in`] signs with jsonwebtoken's own `rust_crypto` signer (ed25519-dalek),
/// which is faster on CPUs with AVX2 (docs/PERFORMANCE.md) but is neither `Send` nor `Sync`: it
/// is parsed once into a [`LocalSigners`] that the caller owns on one thread (the server keeps
/// one per actix worker, built with the worker's `App`).
pub struct TokenSigner {
    kid: String,
    pair: ring::signature::Ed25519KeyPair,
    /// The PKCS#8 document, which jsonwebtoken zeroes on drop. A [`LocalSigners`] holds a `Weak`
    /// to it: its parsed signers are told apart by it and dropped once it is gone.
    key: std::sync::Arc<EncodingKey>,
    /// `base64url(JSON header)`, as jsonwebtoken encodes it.
    header_b64: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A signer for the Ed25519 private key in `pkcs8` (a PKCS#8 v1 or v2 document), tokens
    /// carrying `kid`.
    pub fn new(kid: &str, pkcs8: &[u8]) -> Result<Self, TokenError> {
        use ring::signature::KeyPair;
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| TokenError::InvalidKey(format!("not an Ed25519 PKCS#8 document: {e}")))?;
        let key = std::sync::Arc::new(EncodingKey::from_ed_der(pkcs8));
        // the two parsers must read the same key: a probe signed by jsonwebtoken's verifies
        // under ring's public key
        let probe = b"glpi-network: the PKCS#8 document's keys agree";
        let signature = parse_signer(&key)?
            .try_sign(probe)
            .map_err(|e| TokenError::InvalidKey(format!("cannot sign: {e}")))?;
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, pair.public_key())
            .verify(probe, &signature)
            .map_err(|_| {
                TokenError::InvalidKey("the PKCS#8 document's keys do not agree".to_owned())
            })?;
        let header = serde_json::to_vec(&header(kid))
            .map_err(|e| TokenError::InvalidKey(format!("cannot encode the header: {e}")))?;
        Ok(TokenSigner {
            kid: kid.to_owned(),
            pair,
            key,
            header_b64: URL_SAFE_NO_PAD.encode(header),
        })
    }

    /// The `kid` of the tokens this signer makes.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The compact JWS of `claims` (a registration token's [`Claims`], or another kind's
    /// [`KindClaims`]), signed by ring's key pair.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, TokenError> {
        let token = self.signing_input(claims)?;
        let signature = self.pair.sign(token.as_bytes());
        Ok(with_signature(token, signature.as_ref()))
    }

    /// The same token as [`TokenSigner::sign`], signed by this thread's parsed signer in
    /// `local` (parsed now if `local` has none for this key).
    pub fn sign_in<C: Serialize>(
        &self,
        local: &LocalSigners,
        claims: &C,
    ) -> Result<String, TokenError> {
        let token = self.signing_input(claims)?;
        let signature = local.sign(&self.key, token.as_bytes())?;
        Ok(with_signature(token, &signature))
    }

    /// `header.payload`, with room for the signature.
    fn signing_input<C: Serialize>(&self, claims: &C) -> Result<String, TokenError> {
        let payload = serde_json::to_vec(claims)
            .map_err(|e| TokenError::Malformed(format!("cannot encode the claims: {e}")))?;
        let mut token =
            String::with_capacity(self.header_b64.len() + 2 + (payload.len() * 4).div_ceil(3) + 86);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        Ok(token)
    }
}

/// The compact JWS: `header.payload` (from [`TokenSigner::signing_input`]), `.`, and the
/// base64url signature.
fn with_signature(mut token: String, signature: &[u8]) -> String {
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    token
}

/// jsonwebtoken's `rust_crypto` EdDSA signers, each parsed once from a [`TokenSigner`]'s key and
/// kept beside a `Weak` to that key. It is neither `Send` nor `Sync` (the parsed signers are
/// not): one thread owns it, and passes it to [`TokenSigner::sign_in`]. Rarely more than one
/// entry: a key rotation adds the next, and an entry whose key is gone is dropped at the next
/// signature.
#[derive(Default)]
pub struct LocalSigners {
    parsed: std::cell::RefCell<Vec<(std::sync::Weak<EncodingKey>, ParsedSigner)>>,
}

type ParsedSigner = Box<dyn jsonwebtoken::crypto::JwtSigner>;

impl std::fmt::Debug for LocalSigners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSigners")
            .field("parsed", &self.len())
            .finish_non_exhaustive()
    }
}

impl LocalSigners {
    /// How many parsed signers it holds.
    pub fn len(&self) -> usize {
        self.parsed.borrow().len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw 64-byte Ed25519 signature of `msg` by `key`, with the signer parsed for it.
    fn sign(&self, key: &std::sync::Arc<EncodingKey>, msg: &[u8]) -> Result<Vec<u8>, TokenError> {
        let mut parsed = self.parsed.borrow_mut();
        parsed.retain(|(k, _)| k.strong_count() > 0);
        let at = match parsed
            .iter()
            .position(|(k, _)| std::ptr::eq(k.as_ptr(), std::sync::Arc::as_ptr(key)))
        {
            Some(at) => at,
            None => {
                parsed.push((std::sync::Arc::downgrade(key), parse_signer(key)?));
                parsed.len() - 1
            }
        };
        parsed[at]
            .1
            .try_sign(msg)
            .map_err(|e| TokenError::InvalidKey(format!("cannot sign: {e}")))
    }
}

/// jsonwebtoken's `rust_crypto` EdDSA signer for `key`.
fn parse_signer(key: &EncodingKey) -> Result<ParsedSigner, TokenError> {
    (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.signer_factory)(&Algorithm::EdDSA, key)
        .map_err(|e| TokenError::InvalidKey(format!("not an Ed25519 PKCS#8 document: {e}")))
}

/// The header of every token: `alg: EdDSA`, `typ: JWT`, `kid`.
fn header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("JWT".to_owned());
    header.kid = Some(kid.to_owned());
    header
}

/// What the caller expects of a token beyond its signature.
#[derive(Debug, Clone, Default)]
pub struct Expect<'a> {
    /// The canonical instance URL the token must name.
    pub instance_url: Option<&'a str>,
    /// The nonce the caller sent.
    pub nonce: Option<&'a str>,
}

/// Verifies tokens against a key set, pinned to EdDSA, one issuer and [`AUDIENCE`].
pub struct Verifier {
    issuer: String,
    keys: HashMap<String, DecodingKey>,
    leeway: i64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Verifier {
    /// A verifier for `issuer` with the Ed25519 keys of `jwks`. Keys without a `kid`, or that
    /// are not valid 32-byte Ed25519 keys, are refused.
    pub fn new(issuer: &str, jwks: &JwkSet) -> Result<Self, TokenError> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let kid = jwk.common.key_id.clone().ok_or(TokenError::MissingKid)?;
            keys.insert(kid, ed25519_decoding_key(jwk)?);
        }
        Ok(Verifier {
            issuer: issuer.trim_end_matches('/').to_owned(),
            keys,
            leeway: DEFAULT_LEEWAY_SECS,
        })
    }

    /// Sets the leeway (seconds) for `exp` and `nbf`.
    pub fn with_leeway(mut self, secs: i64) -> Self {
        self.leeway = secs.max(0);
        self
    }

    /// Whether the set has this `kid`.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The `kid` of a token, read without verifying anything (to decide on a JWKS refresh).
    pub fn peek_kid(token: &str) -> Result<Option<String>, TokenError> {
        jsonwebtoken::decode_header(token)
            .map(|h| h.kid)
            .map_err(|e| TokenError::Malformed(e.to_string()))
    }

    /// Verifies signature, algorithm, `kid`, `iss`, `aud`, `exp`/`nbf` at `now` (with the
    /// leeway), and what `expect` names. Returns the claims.
    pub fn verify(&self, token: &str, now: i64, expect: &Expect<'_>) -> Result<Claims, TokenError> {
        let c: Claims = self.decode(token)?;
        self.check_times(c.exp, c.nbf, now)?;
        if let Some(url) = expect.instance_url
            && c.instance_url.as_deref() != Some(url)
        {
            return Err(TokenError::InstanceMismatch);
        }
        if let Some(nonce) = expect.nonce
            && c.nonce.as_deref() != Some(nonce)
        {
            return Err(TokenError::NonceMismatch);
        }
        Ok(c)
    }

    /// Verifies a token of another kind of key (a license, an enrollment, an invitation) with
    /// the same rules as [`Verifier::verify`]: signature, algorithm, `kid`, `iss`, `aud`,
    /// `exp`/`nbf` at `now`, and the `nonce` when one is expected.
    pub fn verify_kind(
        &self,
        token: &str,
        now: i64,
        nonce: Option<&str>,
    ) -> Result<KindClaims, TokenError> {
        let c: KindClaims = self.decode(token)?;
        self.check_times(c.exp, c.nbf, now)?;
        if let Some(nonce) = nonce
            && c.nonce.as_deref() != Some(nonce)
        {
            return Err(TokenError::NonceMismatch);
        }
        Ok(c)
    }

    /// `exp` and `nbf` at `now`, with the leeway.
    fn check_times(&self, exp: i64, nbf: i64, now: i64) -> Result<(), TokenError> {
        if now > exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired);
        }
        if now < nbf.saturating_sub(self.leeway) {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }

    /// The claims of a token whose signature, algorithm, `kid`, `iss` and `aud` are right.
    fn decode<C: serde::de::DeserializeOwned>(&self, token: &str) -> Result<C, TokenError> {
        // Read `alg` ourselves first, so `none` or an unknown name is an algorithm refusal
        // rather than a parse error.
        let raw_header = token.split('.').next().unwrap_or_default();
        let header_json: serde_json::Value = URL_SAFE_NO_PAD
            .decode(raw_header)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| TokenError::Malformed("header is not base64url JSON".into()))?;
        if header_json.get("alg").and_then(|a| a.as_str()) != Some("EdDSA") {
            return Err(TokenError::Algorithm);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let kid = header.kid.ok_or(TokenError::MissingKid)?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| TokenError::UnknownKid(kid.clone()))?;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.set_audience(&[AUDIENCE]);
        v.set_issuer(&[&self.issuer]);
        v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<C>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => TokenError::BadSignature,
                K::InvalidIssuer => TokenError::Issuer,
                K::InvalidAudience => TokenError::Audience,
                K::InvalidAlgorithm => TokenError::Algorithm,
                _ => TokenError::Malformed(e.to_string()),
            }
        })?;
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests;
