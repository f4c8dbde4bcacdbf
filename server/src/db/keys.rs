//! Registration keys: issued once in plaintext, stored as a hash and a display prefix.

use super::audit::{self, Actor};
use super::models::{KeyRow, new_id};
use super::schema::registration_keys::dsl as k;
use super::schema::registrations::dsl as r;
use super::{AnyConnection, UniqueHit, subscriptions, unique_violation, write_txn};
use crate::domain::status::{KEY_ACTIVE, KEY_REVOKED};
use crate::http::dto::{KeyView, ListQuery, Page, paginate};
use crate::http::error::ApiError;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use glpi_network_shared::{ErrorCode, RegistrationKey};

/// Inserts a key for a subscription (inside the caller's transaction). `plaintext` is a fresh
/// generated key, or a fixed string from fixtures.
pub fn insert(
    conn: &mut AnyConnection,
    subscription_id: &str,
    plaintext: &RegistrationKey,
    status: &str,
    expires_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<KeyRow, ApiError> {
    subscriptions::get(conn, subscription_id)?;
    let row = KeyRow {
        id: new_id(),
        subscription_id: subscription_id.to_owned(),
        key_hash: plaintext.hash(),
        key_prefix: plaintext.display_prefix(),
        status: status.to_owned(),
        expires_at,
        created_at: now,
        revoked_at: (status == KEY_REVOKED).then_some(now),
        replaced_by: None,
        ver: 1,
    };
    diesel::insert_into(k::registration_keys)
        .values(&row)
        .execute(conn)
        .map_err(|e| match unique_violation(&e) {
            Some(UniqueHit::KeyHash) => {
                ApiError::conflict(ErrorCode::Conflict, "this key string already exists")
            }
            _ => e.into(),
        })?;
    let mut ev = actor.event("key.issue", "ok", now);
    ev.key_id = Some(row.id.clone());
    ev.key_prefix = Some(row.key_prefix.clone());
    ev.detail = Some(format!("subscription {subscription_id}"));
    audit::record(conn, &ev)?;
    Ok(row)
}

/// Issues a new random key; returns the row and the plaintext (shown once).
pub fn issue(
    conn: &mut AnyConnection,
    subscription_id: &str,
    expires_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<(KeyRow, RegistrationKey), ApiError> {
    let plaintext = RegistrationKey::generate();
    let row = write_txn(conn, |c| {
        insert(
            c,
            subscription_id,
            &plaintext,
            KEY_ACTIVE,
            expires_at,
            now,
            actor,
        )
    })?;
    Ok((row, plaintext))
}

/// Looks a key up by its plaintext (through the hash).
pub fn find_by_key(
    conn: &mut AnyConnection,
    key: &RegistrationKey,
) -> Result<Option<KeyRow>, ApiError> {
    Ok(k::registration_keys
        .filter(k::key_hash.eq(key.hash()))
        .select(KeyRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn get(conn: &mut AnyConnection, id: &str) -> Result<KeyRow, ApiError> {
    k::registration_keys
        .find(id)
        .select(KeyRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found(format!("no key {id}")))
}

pub fn list(
    conn: &mut AnyConnection,
    q: &ListQuery,
    now: NaiveDateTime,
) -> Result<Page<KeyView>, ApiError> {
    let limit = q.limit();
    let mut query = k::registration_keys
        .select(KeyRow::as_select())
        .into_boxed();
    if let Some(c) = &q.cursor {
        query = query.filter(k::id.gt(c.clone()));
    }
    if let Some(v) = &q.subscription_id {
        query = query.filter(k::subscription_id.eq(v.clone()));
    }
    if let Some(v) = &q.status {
        query = query.filter(k::status.eq(v.clone()));
    }
    let rows = query.order(k::id.asc()).limit(limit + 1).load(conn)?;
    Ok(paginate(
        rows,
        limit,
        |r| r.id.clone(),
        |r| KeyView::new(r, now),
    ))
}

/// Marks a key revoked (idempotent) and bumps its `ver`. Its binding stays, so the bound
/// instance learns `key_revoked` on its next validation.
fn revoke_inner(
    conn: &mut AnyConnection,
    id: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<KeyRow, ApiError> {
    let row = get(conn, id)?;
    if row.status == KEY_REVOKED {
        return Ok(row);
    }
    diesel::update(k::registration_keys.find(id))
        .set((
            k::status.eq(KEY_REVOKED),
            k::revoked_at.eq(Some(now)),
            k::ver.eq(k::ver + 1),
        ))
        .execute(conn)?;
    let mut ev = actor.event("key.revoke", "ok", now);
    ev.key_id = Some(row.id.clone());
    ev.key_prefix = Some(row.key_prefix.clone());
    audit::record(conn, &ev)?;
    get(conn, id)
}

pub fn revoke(
    conn: &mut AnyConnection,
    id: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<KeyRow, ApiError> {
    write_txn(conn, |c| revoke_inner(c, id, now, actor))
}

/// Creates a new key for the same subscription, revokes the old one (which then shows
/// `replaced_by`) and releases its registration. Returns the new key and its plaintext.
pub fn regenerate(
    conn: &mut AnyConnection,
    id: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<(KeyRow, RegistrationKey), ApiError> {
    let plaintext = RegistrationKey::generate();
    let row = write_txn(conn, |c| {
        let old = get(c, id)?;
        if let Some(next) = &old.replaced_by {
            return Err(ApiError::conflict(
                ErrorCode::Conflict,
                format!("key {id} was already regenerated as {next}"),
            ));
        }
        let new = insert(
            c,
            &old.subscription_id,
            &plaintext,
            KEY_ACTIVE,
            old.expires_at,
            now,
            actor,
        )?;
        revoke_inner(c, id, now, actor)?;
        diesel::update(k::registration_keys.find(id))
            .set(k::replaced_by.eq(Some(&new.id)))
            .execute(c)?;
        let released = diesel::update(
            r::registrations
                .filter(r::key_id.eq(id))
                .filter(r::released_at.is_null()),
        )
        .set(r::released_at.eq(Some(now)))
        .execute(c)?;
        if released > 0 {
            // the binding changed even when the key was already revoked
            bump_ver(c, id)?;
        }
        let mut ev = actor.event("key.regenerate", "ok", now);
        ev.key_id = Some(old.id.clone());
        ev.key_prefix = Some(old.key_prefix.clone());
        ev.detail = Some(format!(
            "replaced by {}; {released} registration(s) released",
            new.id
        ));
        audit::record(c, &ev)?;
        Ok(new)
    })?;
    Ok((row, plaintext))
}

/// Bumps a key's `ver` (every change of the key, its subscription or its binding); returns
/// the new value.
pub fn bump_ver(conn: &mut AnyConnection, id: &str) -> Result<i64, ApiError> {
    Ok(diesel::update(k::registration_keys.find(id))
        .set(k::ver.eq(k::ver + 1))
        .returning(k::ver)
        .get_result(conn)?)
}

/// The largest batch one transaction writes.
pub const BATCH: usize = 1000;

/// Issues `count` (at most [`BATCH`]) keys for one subscription in one transaction: one
/// multi-row insert and one audit event for the batch. Returns rows and plaintexts.
pub fn issue_batch(
    conn: &mut AnyConnection,
    subscription_id: &str,
    count: usize,
    expires_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Vec<(KeyRow, RegistrationKey)>, ApiError> {
    if count == 0 || count > BATCH {
        return Err(ApiError::bad_request(format!(
            "a batch is 1 to {BATCH} keys"
        )));
    }
    let issued: Vec<(KeyRow, RegistrationKey)> = (0..count)
        .map(|_| {
            let plaintext = RegistrationKey::generate();
            let row = KeyRow {
                id: new_id(),
                subscription_id: subscription_id.to_owned(),
                key_hash: plaintext.hash(),
                key_prefix: plaintext.display_prefix(),
                status: KEY_ACTIVE.to_owned(),
                expires_at,
                created_at: now,
                revoked_at: None,
                replaced_by: None,
                ver: 1,
            };
            (row, plaintext)
        })
        .collect();
    write_txn(conn, |c| {
        subscriptions::get(c, subscription_id)?;
        let rows: Vec<&KeyRow> = issued.iter().map(|(r, _)| r).collect();
        // MultiConnection has no multi-row insert: use the backend's own connection (same
        // transaction).
        match c {
            AnyConnection::Sqlite(s) => diesel::insert_into(k::registration_keys)
                .values(rows)
                .execute(s)?,
            AnyConnection::Postgresql(p) => diesel::insert_into(k::registration_keys)
                .values(rows)
                .execute(p)?,
        };
        let mut ev = actor.event("key.issue_batch", "ok", now);
        ev.detail = Some(format!(
            "{count} keys for subscription {subscription_id}: {} .. {}",
            issued[0].0.id,
            issued[count - 1].0.id
        ));
        audit::record(c, &ev)?;
        Ok::<_, ApiError>(())
    })?;
    Ok(issued)
}
