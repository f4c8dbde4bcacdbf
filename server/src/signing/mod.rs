//! Token signing: the master key, the signing-key ring shared through the database, rotation
//! and the JWKS.
//!
//! Private keys are PKCS#8 Ed25519 documents sealed with AES-256-GCM under a 32-byte master
//! key (`--master-key`, or `<data-dir>/master.key`, created with mode 0600 on first start), with
//! the `kid` as associated data. Every process sharing a database signs with the one active
//! key; a process re-reads the ring at most every [`RELOAD_SECS`] seconds, so a rotation made by
//! another process is picked up within that time.

pub mod rekey;
pub mod secret;

use crate::db::audit::{self, Actor};
use crate::db::signing_keys::{self, SigningKeyRow};
use crate::db::{AnyConnection, Error, Result, Touches, Transact};
use chrono::{Duration, NaiveDateTime};
use glpi_network_shared::token::{self, LocalSigners, TokenSigner};
use jsonwebtoken::jwk::JwkSet;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use secret::read_or_create_secret;
use std::path::Path;
use std::sync::RwLock;
use std::time::Instant;

/// How often a process re-reads the signing keys from the database.
pub const RELOAD_SECS: u64 = 5;

/// The file of the current master key in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// The file of the previous master key, kept by `master-key rotate` until `--finish`.
pub const PREVIOUS_KEY_FILE: &str = "master.key.previous";

/// The keys that seal signing keys (and every other sealed secret, see [`rekey`]) at rest: the
/// first seals, every one opens (the current key first, then the previous one), so a server
/// given both keys during a master-key change unseals either.
pub struct MasterKey(Vec<LessSafeKey>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// A master key as written in `master.key`: 64 hex characters, with where it was read from.
pub struct KeyText {
    pub hex: String,
    pub origin: String,
}

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyText({}, <redacted>)", self.origin)
    }
}

impl KeyText {
    /// A new random key (256 bits).
    pub fn generate(origin: &str) -> anyhow::Result<KeyText> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("system random generator failed"))?;
        Ok(KeyText {
            hex: hex::encode(bytes),
            origin: origin.to_owned(),
        })
    }

    /// The AES key, or an error naming where the text came from.
    fn key(&self) -> anyhow::Result<LessSafeKey> {
        let origin = &self.origin;
        let bytes = hex::decode(self.hex.trim())
            .map_err(|_| anyhow::anyhow!("the master key in {origin} is not hex"))?;
        if bytes.len() != 32 {
            anyhow::bail!("the master key in {origin} must be 32 bytes (64 hex characters)");
        }
        Ok(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| anyhow::anyhow!("bad master key"))?,
        ))
    }

    /// Whether two texts name the same key.
    pub fn same_key(&self, other: &KeyText) -> bool {
        self.hex.trim().eq_ignore_ascii_case(other.hex.trim())
    }
}

/// The configured keys (`--master-key`, at most twice: current then previous), or the ones in
/// `<data-dir>/master.key` and, when present, `<data-dir>/master.key.previous`. With `create`, a
/// missing `master.key` is created with 256 random bits (mode 0600); without it, a missing one
/// gives `None`.
pub fn key_texts(
    configured: &[String],
    data_dir: &Path,
    create: bool,
) -> anyhow::Result<Option<Vec<KeyText>>> {
    let configured: Vec<&String> = configured.iter().filter(|k| !k.trim().is_empty()).collect();
    if configured.len() > 2 {
        anyhow::bail!(
            "--master-key is given at most twice (the current key, then the previous one)"
        );
    }
    if !configured.is_empty() {
        let origins = ["--master-key", "the second --master-key"];
        return Ok(Some(
            configured
                .iter()
                .zip(origins)
                .map(|(k, origin)| KeyText {
                    hex: k.trim().to_owned(),
                    origin: origin.to_owned(),
                })
                .collect(),
        ));
    }
    let path = data_dir.join(MASTER_KEY_FILE);
    if !create && !path.exists() {
        return Ok(None);
    }
    let (text, created) = read_or_create_secret(&path, || Ok(KeyText::generate("")?.hex))?;
    if created {
        tracing::info!(path = %path.display(), "generated a new master key");
    }
    let mut texts = vec![KeyText {
        hex: text,
        origin: path.display().to_string(),
    }];
    let previous = data_dir.join(PREVIOUS_KEY_FILE);
    if previous.exists() {
        texts.push(KeyText {
            hex: std::fs::read_to_string(&previous)?.trim().to_owned(),
            origin: previous.display().to_string(),
        });
    }
    Ok(Some(texts))
}

impl MasterKey {
    /// The keys of `texts`, the first sealing.
    pub fn from_texts(texts: &[KeyText]) -> anyhow::Result<Self> {
        if texts.is_empty() {
            anyhow::bail!("no master key");
        }
        Ok(MasterKey(
            texts
                .iter()
                .map(KeyText::key)
                .collect::<anyhow::Result<_>>()?,
        ))
    }

    /// The configured keys, or the ones in the data directory (see [`key_texts`]).
    pub fn load(
        configured: &[String],
        data_dir: &Path,
        create: bool,
    ) -> anyhow::Result<Option<Self>> {
        key_texts(configured, data_dir, create)?
            .map(|t| Self::from_texts(&t))
            .transpose()
    }

    /// Seals `plaintext` under the current key, `kid` (the secret's id) as associated data.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("system random generator failed");
        let mut buf = plaintext.to_vec();
        self.0[0]
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM sealing cannot fail for small inputs");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    /// Opens what [`MasterKey::seal`] sealed for `kid`, with whichever loaded key can.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        self.open_with(kid, sealed).map(|(_, plain)| plain)
    }

    /// Opens `sealed` with the first key that can: its index (0 the current key) and the
    /// plaintext.
    fn open_with(&self, kid: &str, sealed: &[u8]) -> Option<(usize, Vec<u8>)> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.0.iter().enumerate().find_map(|(i, key)| {
            let mut buf = ct.to_vec();
            let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
            let plain = key
                .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
                .ok()?;
            Some((i, plain.to_vec()))
        })
    }
}

/// A new key pair sealed under `master`: random, or derived from `seed` (test mode's
/// `--signing-seed`, so a suite can pin the JWKS).
fn new_key(master: &MasterKey, now: NaiveDateTime, seed: Option<&str>) -> Result<SigningKeyRow> {
    let keygen_failed = || Error::Other(anyhow::anyhow!("keygen failed"));
    let pkcs8: Vec<u8> = match seed {
        Some(s) => {
            let digest = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(digest.as_ref());
            token::ed25519_pkcs8_from_seed(&bytes)
        }
        None => Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| keygen_failed())?
            .as_ref()
            .to_vec(),
    };
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).map_err(|_| keygen_failed())?;
    let public = pair.public_key().as_ref().to_vec();
    let jwk = token::ed25519_jwk("", &public).map_err(|e| Error::Other(e.into()))?;
    let kid = jwk
        .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .map_err(|e| Error::Other(e.into()))?;
    Ok(SigningKeyRow {
        private_key_enc: master.seal(&kid, pkcs8.as_ref()),
        kid,
        public_key: public,
        created_at: now,
        retired_at: None,
        active: true,
        seeded: seed.is_some(),
    })
}

struct Ring {
    /// The active key, parsed once (and kept across reloads while it stays active, so a
    /// process keeps signing after the master key changed under it).
    signer: std::sync::Arc<TokenSigner>,
    jwks: JwkSet,
    loaded_at: Instant,
}

pub use crate::domain::token::Lifetimes;

/// Signs tokens with the active key; publishes the JWKS.
pub struct Signer {
    master: MasterKey,
    lifetimes: Lifetimes,
    ring: RwLock<Ring>,
    /// Whether seeded keys (test mode's `--signing-seed`) may sign and be published.
    test_mode: bool,
    /// Set when another process may have changed the keys (a notification): reload first.
    changed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.active_kid())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Makes sure an active key exists (creating one on a fresh database) and loads the ring.
    /// A master key that cannot open the active key is a start-up error.
    ///
    /// Outside `test_mode`, a key derived from `--signing-seed` (its private half comes from a
    /// public string) is retired and withdrawn from the JWKS at once, with a loud warning, and a
    /// fresh key is made; `seed` is only used in test mode.
    pub fn init(
        c: &mut (impl Transact + ?Sized),
        master: MasterKey,
        lifetimes: Lifetimes,
        now: NaiveDateTime,
        seed: Option<&str>,
        test_mode: bool,
    ) -> anyhow::Result<Self> {
        let seed = seed.filter(|_| test_mode);
        if !test_mode {
            withdraw_seeded_keys(c, now)?;
        }
        if signing_keys::active(c)?.is_none() {
            let row = new_key(&master, now, seed)?;
            match signing_keys::insert(c, &row) {
                Ok(_) => tracing::info!(kid = %row.kid, "created the first signing key"),
                // another process created it first: use theirs
                Err(e) if crate::db::unique_violation(&e).is_some() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let ring = load_ring(c, &master, lifetimes, now, test_mode, None)?;
        Ok(Signer {
            master,
            lifetimes,
            ring: RwLock::new(ring),
            test_mode,
            changed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The master key(s) it was given (webhook secrets are sealed with it too).
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    pub fn lifetimes(&self) -> Lifetimes {
        self.lifetimes
    }

    pub fn active_kid(&self) -> String {
        self.ring
            .read()
            .expect("signing ring lock")
            .signer
            .kid()
            .to_owned()
    }

    /// Whether the ring is older than [`RELOAD_SECS`] (a rotation made by another process may
    /// be waiting).
    pub fn is_stale(&self) -> bool {
        self.changed.load(std::sync::atomic::Ordering::Acquire)
            || self
                .ring
                .read()
                .expect("signing ring lock")
                .loaded_at
                .elapsed()
                .as_secs()
                >= RELOAD_SECS
    }

    /// Another process may have changed the signing keys: reload before the next signature.
    pub fn mark_changed(&self) {
        self.changed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Re-reads the keys when the ring is older than [`RELOAD_SECS`].
    pub fn refresh_if_stale(&self, c: &mut AnyConnection, now: NaiveDateTime) -> Result<()> {
        if self.is_stale() {
            self.reload(c, now)
        } else {
            Ok(())
        }
    }

    /// Re-reads the keys now.
    pub fn reload(&self, c: &mut AnyConnection, now: NaiveDateTime) -> Result<()> {
        self.changed
            .store(false, std::sync::atomic::Ordering::Release);
        let kept = self.ring.read().expect("signing ring lock").signer.clone();
        let ring = load_ring(
            c,
            &self.master,
            self.lifetimes,
            now,
            self.test_mode,
            Some(kept),
        )?;
        *self.ring.write().expect("signing ring lock") = ring;
        Ok(())
    }

    /// Retires the active key and makes a new one active; the retired key stays in the JWKS
    /// until every token it signed is past `grace_until`.
    pub fn rotate(
        &self,
        c: &mut impl Transact,
        now: NaiveDateTime,
        actor: &Actor,
    ) -> Result<SigningKeyRow> {
        let row = new_key(&self.master, now, None)?;
        c.write(Touches::Anything, |c| {
            let retired = signing_keys::active(c)?;
            signing_keys::retire_active(c, now)?;
            signing_keys::insert(c, &row)?;
            let mut ev = actor.event("signing_key.rotate", "ok", now);
            ev.detail = Some(format!(
                "new kid {}; retired {}",
                row.kid,
                retired.map(|r| r.kid).unwrap_or_else(|| "none".into())
            ));
            // as the admin API shows it (`SigningKeyView`): the new active key is published
            let view = serde_json::json!({
                "kid": row.kid, "active": true, "created_at": row.created_at.and_utc(),
                "retired_at": null, "published": true,
            });
            c.emit("signing_key.rotated", &view, now);
            audit::record(c, &ev)
        })?;
        self.reload(c, now)?;
        Ok(row)
    }

    /// Signs claims with the active key: with the calling worker's parsed signers when it has
    /// them (`app.rs` gives each actix worker a [`LocalSigners`]), else with ring's key pair.
    /// Both make the same bytes.
    pub fn sign<C: serde::Serialize>(
        &self,
        local: Option<&LocalSigners>,
        claims: &C,
    ) -> Result<String> {
        let signer = self.ring.read().expect("signing ring lock").signer.clone();
        match local {
            Some(local) => signer.sign_in(local, claims),
            None => signer.sign(claims),
        }
        .map_err(|e| Error::Other(e.into()))
    }

    /// The published keys.
    pub fn jwks(&self) -> JwkSet {
        self.ring.read().expect("signing ring lock").jwks.clone()
    }

    /// Whether this key is in the JWKS: not seeded outside test mode, and still able to verify
    /// a live token.
    pub fn publishes(&self, key: &SigningKeyRow, now: NaiveDateTime) -> bool {
        published(key, self.test_mode, self.lifetimes, now)
    }

    /// Whether a key retired at `retired_at` may still verify a live token.
    pub fn still_published(&self, retired_at: Option<NaiveDateTime>, now: NaiveDateTime) -> bool {
        retired_at.is_none_or(|r| {
            r + Duration::seconds(self.lifetimes.ttl_secs + self.lifetimes.grace_secs) > now
        })
    }
}

/// Whether `key` is in the JWKS of a server with these settings (see [`Signer::publishes`]);
/// read-only commands ask without opening a signer.
pub fn published(
    key: &SigningKeyRow,
    test_mode: bool,
    lifetimes: Lifetimes,
    now: NaiveDateTime,
) -> bool {
    (test_mode || !key.seeded)
        && key
            .retired_at
            .is_none_or(|r| r + Duration::seconds(lifetimes.ttl_secs + lifetimes.grace_secs) > now)
}

/// Outside test mode: retires every key derived from `--signing-seed` (its private half comes
/// from a public string), audits it and warns loudly; the ring never publishes them.
fn withdraw_seeded_keys(c: &mut (impl Transact + ?Sized), now: NaiveDateTime) -> Result<()> {
    let (had_active, kids) = c.write(Touches::Anything, |tx| {
        let had_active = signing_keys::active(tx)?.is_some_and(|k| k.seeded);
        let kids = signing_keys::withdraw_seeded(tx, now)?;
        if had_active {
            let mut ev = Actor::new("server", None).event("signing_key.withdraw", "ok", now);
            ev.detail = Some(format!(
                "seeded key(s) {} withdrawn outside test mode",
                kids.join(", ")
            ));
            tx.audit(ev);
        }
        Ok::<_, Error>((had_active, kids))
    })?;
    if !kids.is_empty() {
        tracing::error!(
            kids = %kids.join(", "),
            was_active = had_active,
            "SIGNING KEY DERIVED FROM --signing-seed FOUND OUTSIDE TEST MODE: its private half \
             comes from a public string, so it never signs and is withdrawn from the JWKS; \
             a fresh key signs instead. Tokens it signed no longer verify."
        );
    }
    Ok(())
}

fn load_ring(
    c: &mut AnyConnection,
    master: &MasterKey,
    lt: Lifetimes,
    now: NaiveDateTime,
    test_mode: bool,
    kept: Option<std::sync::Arc<TokenSigner>>,
) -> anyhow::Result<Ring> {
    let rows: Vec<SigningKeyRow> = signing_keys::all(c)?
        .into_iter()
        .filter(|r| test_mode || !r.seeded)
        .collect();
    let active = rows.iter().find(|r| r.active).ok_or_else(|| {
        anyhow::anyhow!(
            "no active signing key in the database (a seeded key never signs outside test mode)"
        )
    })?;
    let signer = match kept.filter(|s| s.kid() == active.kid) {
        Some(s) => s,
        None => std::sync::Arc::new(open_active(master, active)?),
    };
    let window = Duration::seconds(lt.ttl_secs + lt.grace_secs);
    let mut keys = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.retired_at.is_none_or(|t| t + window > now))
    {
        keys.push(token::ed25519_jwk(&r.kid, &r.public_key)?);
    }
    Ok(Ring {
        signer,
        jwks: JwkSet { keys },
        loaded_at: Instant::now(),
    })
}

/// The active key's private half, opened with the master key.
fn open_active(master: &MasterKey, active: &SigningKeyRow) -> anyhow::Result<TokenSigner> {
    let pkcs8 = master.open(&active.kid, &active.private_key_enc).ok_or_else(|| {
        anyhow::anyhow!(
            "cannot decrypt signing key {}: the master key does not match the one this database was \
             created with (restore <data-dir>/master.key or pass the original --master-key)",
            active.kid
        )
    })?;
    TokenSigner::new(&active.kid, &pkcs8)
        .map_err(|e| anyhow::anyhow!("signing key {} is corrupt: {e}", active.kid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_master_key_and_kid() {
        let dir = tempfile::tempdir().unwrap();
        let m = MasterKey::load(&[], dir.path(), true).unwrap().unwrap();
        let sealed = m.seal("kid-1", b"secret pkcs8");
        assert_eq!(
            m.open("kid-1", &sealed).as_deref(),
            Some(&b"secret pkcs8"[..])
        );
        assert!(
            m.open("kid-2", &sealed).is_none(),
            "the kid is bound as associated data"
        );
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(m.open("kid-1", &flipped).is_none());
        // the same file loads the same key
        let again = MasterKey::load(&[], dir.path(), false).unwrap().unwrap();
        assert!(again.open("kid-1", &sealed).is_some());
        let other = MasterKey::load(&["ab".repeat(32)], dir.path(), false)
            .unwrap()
            .unwrap();
        assert!(other.open("kid-1", &sealed).is_none());
        assert!(MasterKey::load(&["abcd".to_owned()], dir.path(), false).is_err());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            !format!("{m:?}")
                .contains(&std::fs::read_to_string(dir.path().join("master.key")).unwrap())
        );
    }

    #[test]
    fn a_signing_seed_gives_the_same_key_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let m = MasterKey::load(&[], dir.path(), true).unwrap().unwrap();
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc();
        let a = new_key(&m, now, Some("suite-1")).unwrap();
        let b = new_key(&m, now, Some("suite-1")).unwrap();
        let c = new_key(&m, now, Some("suite-2")).unwrap();
        let r = new_key(&m, now, None).unwrap();
        assert_eq!((a.kid.clone(), a.public_key.clone()), (b.kid, b.public_key));
        assert_ne!(a.kid, c.kid);
        assert_ne!(a.kid, r.kid);
        // the sealed v1 PKCS#8 document opens, and jsonwebtoken signs with it
        let pkcs8 = m.open(&a.kid, &a.private_key_enc).unwrap();
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
            &serde_json::json!({"sub": "x"}),
            &jsonwebtoken::EncodingKey::from_ed_der(&pkcs8),
        )
        .unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        use base64::Engine;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap();
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &a.public_key)
            .verify(input.as_bytes(), &sig)
            .unwrap();
    }
}
