//! Every secret stored sealed under the master key, by kind, so a master-key change re-seals
//! them all in one transaction (see `signing::rekey`). A new kind of sealed secret joins by adding a variant to [`SealedKind`] and its two arms below; the
//! secret's id is the associated data it is sealed with.

use super::{AnyConnection, Result, signing_keys, webhooks};

/// A kind of secret stored sealed under the master key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedKind {
    /// The private half of a token signing key (id: its `kid`).
    SigningKey,
    /// A webhook's signing secret (id: the webhook's id).
    WebhookSecret,
}

/// One sealed secret as stored: nonce, ciphertext and tag.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub kind: SealedKind,
    pub id: String,
    pub sealed: Vec<u8>,
}

impl SealedKind {
    /// Every kind, in the order they are listed and re-sealed.
    pub const ALL: [SealedKind; 2] = [SealedKind::SigningKey, SealedKind::WebhookSecret];

    /// The name `master-key status` prints.
    pub fn name(self) -> &'static str {
        match self {
            SealedKind::SigningKey => "signing_key",
            SealedKind::WebhookSecret => "webhook_secret",
        }
    }

    /// Every secret of this kind.
    pub fn load(self, c: &mut AnyConnection) -> Result<Vec<Sealed>> {
        Ok(match self {
            SealedKind::SigningKey => signing_keys::all(c)?
                .into_iter()
                .map(|r| Sealed {
                    kind: self,
                    id: r.kid,
                    sealed: r.private_key_enc,
                })
                .collect(),
            SealedKind::WebhookSecret => webhooks::all_sealed(c)?
                .into_iter()
                .map(|(id, sealed)| Sealed {
                    kind: self,
                    id,
                    sealed,
                })
                .collect(),
        })
    }

    /// Stores a secret of this kind re-sealed.
    pub fn store(self, c: &mut AnyConnection, id: &str, sealed: &[u8]) -> Result<()> {
        match self {
            SealedKind::SigningKey => signing_keys::set_sealed(c, id, sealed)?,
            SealedKind::WebhookSecret => webhooks::set_sealed(c, id, sealed)?,
        };
        Ok(())
    }
}

/// Every sealed secret of every kind.
pub fn all(c: &mut AnyConnection) -> Result<Vec<Sealed>> {
    let mut out = Vec::new();
    for kind in SealedKind::ALL {
        out.extend(kind.load(c)?);
    }
    Ok(out)
}
