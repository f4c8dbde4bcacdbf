//! Signing keys: Ed25519 key pairs whose private half is stored sealed under the master key.

use super::AnyConnection;
use super::Result;
use super::schema::signing_keys::dsl as s;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub private_key_enc: Vec<u8>,
    pub created_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
    pub active: bool,
    /// Derived from test mode's `--signing-seed`: its private half comes from a public string,
    /// so it never signs (nor is published) outside test mode.
    pub seeded: bool,
}

/// Every signing key, oldest first.
pub fn all(c: &mut AnyConnection) -> Result<Vec<SigningKeyRow>> {
    Ok(s::signing_keys
        .select(SigningKeyRow::as_select())
        .order(s::created_at.asc())
        .load(c)?)
}

/// The active key, if any.
pub fn active(c: &mut AnyConnection) -> Result<Option<SigningKeyRow>> {
    Ok(s::signing_keys
        .filter(s::active.eq(true))
        .select(SigningKeyRow::as_select())
        .first(c)
        .optional()?)
}

/// Inserts a key (the unique index allows one active key only).
pub fn insert(c: &mut AnyConnection, row: &SigningKeyRow) -> QueryResult<usize> {
    diesel::insert_into(s::signing_keys).values(row).execute(c)
}

/// Retires the active key; returns how many rows changed.
pub fn retire_active(c: &mut AnyConnection, now: NaiveDateTime) -> Result<usize> {
    Ok(diesel::update(s::signing_keys.filter(s::active.eq(true)))
        .set((s::active.eq(false), s::retired_at.eq(Some(now))))
        .execute(c)?)
}

/// Outside test mode: retires every seeded key that is still active and returns the kids of
/// all seeded keys (none of which may be published).
pub fn withdraw_seeded(c: &mut AnyConnection, now: NaiveDateTime) -> Result<Vec<String>> {
    diesel::update(
        s::signing_keys
            .filter(s::seeded.eq(true))
            .filter(s::active.eq(true)),
    )
    .set((s::active.eq(false), s::retired_at.eq(Some(now))))
    .execute(c)?;
    Ok(s::signing_keys
        .filter(s::seeded.eq(true))
        .select(s::kid)
        .load(c)?)
}
