//! What the storage of the other kinds of keys shares (DESIGN §11): audit events that name a
//! key by its display prefix, and refusals recorded outside the rolled-back transaction.

use super::audit::{self, Actor};
use super::models::NewAuditEvent;
use super::{Error, Result, Touches, Transact, Txn};
use chrono::NaiveDateTime;
use glpi_network_shared::PlainKey;

/// An event about a key (`key_id` and `key_prefix` set).
pub(crate) fn event(
    actor: &Actor,
    action: &str,
    outcome: &str,
    now: NaiveDateTime,
    key_id: Option<&str>,
    key_prefix: &str,
) -> NewAuditEvent {
    let mut ev = actor.event(action, outcome, now);
    ev.key_id = key_id.map(str::to_owned);
    ev.key_prefix = Some(key_prefix.to_owned());
    ev
}

/// The audit outcome of a failed use: its refusal's code, or `internal`.
pub(crate) fn outcome_of(e: &Error) -> &'static str {
    e.refusal_code()
        .unwrap_or(glpi_network_shared::ErrorCode::Internal)
        .as_str()
}

/// Records a refused use after its transaction rolled back. Best effort: a failure to audit is
/// logged, not answered. `fill` adds the kind's details (an agent, an instance, an email).
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_refusal(
    c: &mut impl Transact,
    actor: &Actor,
    action: &str,
    key: &PlainKey,
    key_id: Option<String>,
    err: &Error,
    now: NaiveDateTime,
    fill: impl FnOnce(&mut NewAuditEvent),
) {
    let mut ev = event(
        actor,
        action,
        outcome_of(err),
        now,
        None,
        &key.display_prefix(),
    );
    ev.key_id = key_id;
    fill(&mut ev);
    if let Err(e) = audit::record(c, &ev) {
        tracing::error!(error = %e, "could not record an audit event");
    }
}

/// Runs `f` in a write transaction. These kinds change no registration key state, so the key
/// cache keeps every entry.
pub(crate) fn txn<T>(
    c: &mut impl Transact,
    f: impl FnOnce(&mut Txn<'_>) -> Result<T>,
) -> Result<T> {
    c.write(Touches::AuditOnly, f)
}

/// Runs `attempt` again (up to three times in all) while it loses a race on a unique index:
/// the next attempt sees the winner's row.
pub(crate) fn retry_races<T>(mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    let mut tries = 0;
    loop {
        match attempt() {
            Err(Error::Diesel(e)) if super::unique_violation(&e).is_some() && tries < 2 => {
                tries += 1;
            }
            other => return other,
        }
    }
}

/// A checked `expires_at` for a new key: in the future.
pub(crate) fn check_expiry(
    expires_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Result<Option<NaiveDateTime>> {
    match expires_at {
        Some(e) if e <= now => Err(Error::invalid("expires_at must be in the future")),
        other => Ok(other),
    }
}
