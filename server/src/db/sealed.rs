//! Every secret stored sealed under the master key, by kind, so a master-key change re-seals
//! them all in one transaction (see `signing::rekey`). A new kind of sealed secret (webhook
//! secrets, for one) joins by adding a variant to [`SealedKind`] and its two arms below; the
//! secret's id is the associated data it is sealed with.

use super::{AnyConnection, Result, signing_keys};

/// A kind of secret stored sealed under the master key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedKind {
    /// The private half of a token signing key (id: its `kid`).
    SigningKey,
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
    pub const ALL: [SealedKind; 1] = [SealedKind::SigningKey];

    /// The name `master-key status` prints.
    pub fn name(self) -> &'static str {
        match self {
            SealedKind::SigningKey => "signing_key",
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
        })
    }

    /// Stores a secret of this kind re-sealed.
    pub fn store(self, c: &mut AnyConnection, id: &str, sealed: &[u8]) -> Result<()> {
        match self {
            SealedKind::SigningKey => signing_keys::set_sealed(c, id, sealed)?,
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
