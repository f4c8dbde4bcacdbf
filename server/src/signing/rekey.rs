//! A master-key change (`master-key rotate`, DESIGN §13): which key seals each secret, and
//! re-sealing every sealed secret (every [`crate::db::sealed::SealedKind`]) under another key in one transaction.

use super::MasterKey;
use crate::db::audit::Actor;
use crate::db::sealed;
use crate::db::{AnyConnection, Error, Result, Touches, Transact};
use chrono::NaiveDateTime;
use serde::Serialize;

/// Which of the loaded master keys opens a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SealedWith {
    Current,
    Previous,
    /// Neither key opens it (a key is missing or wrong).
    Unknown,
}

/// One line of `master-key status`.
#[derive(Debug, Clone, Serialize)]
pub struct SecretStatus {
    pub kind: &'static str,
    pub id: String,
    pub sealed_with: SealedWith,
}

/// Which key seals each sealed secret: `keys` is the current key, then the previous one.
pub fn status(c: &mut AnyConnection, keys: &MasterKey) -> Result<Vec<SecretStatus>> {
    Ok(sealed::all(c)?
        .into_iter()
        .map(|s| SecretStatus {
            kind: s.kind.name(),
            sealed_with: match keys.open_with(&s.id, &s.sealed) {
                Some((0, _)) => SealedWith::Current,
                Some(_) => SealedWith::Previous,
                None => SealedWith::Unknown,
            },
            id: s.id,
        })
        .collect())
}

/// Re-seals under `to`'s current key, in one transaction, every sealed secret `to` cannot
/// already open with it, opening each with `from` (any of its keys). A secret neither opens is
/// an error that rolls everything back. `before_commit` runs inside the transaction, after the
/// last write (a test's fault point). Returns how many secrets were re-sealed.
pub fn reseal(
    c: &mut impl Transact,
    from: &MasterKey,
    to: &MasterKey,
    now: NaiveDateTime,
    before_commit: impl FnOnce(),
) -> Result<usize> {
    c.write(Touches::Anything, |tx| {
        // the audit chain's lock before the rows it re-seals, as every change to a webhook
        // takes it (see `db::webhooks::delete`)
        crate::db::audit::lock_chain(tx.conn())?;
        let mut n = 0;
        for s in sealed::all(tx)? {
            if matches!(to.open_with(&s.id, &s.sealed), Some((0, _))) {
                continue;
            }
            let plain = from.open(&s.id, &s.sealed).ok_or_else(|| {
                Error::Other(anyhow::anyhow!(
                    "{} {} cannot be opened with the master key(s) given; nothing was changed",
                    s.kind.name(),
                    s.id
                ))
            })?;
            s.kind.store(tx, &s.id, &to.seal(&s.id, &plain))?;
            n += 1;
        }
        if n > 0 {
            let mut ev = Actor::new("cli", None).event("master_key.reseal", "ok", now);
            ev.detail = Some(format!(
                "{n} sealed secret(s) re-sealed under the new master key"
            ));
            tx.audit(ev);
        }
        before_commit();
        Ok(n)
    })
}
