//! Registration keys: issued once in plaintext, stored as a hash and a display prefix.

use super::audit::Actor;
use super::models::{KeyRow, new_id};
use super::page::{ListQuery, Page, paginate};
use super::schema::registration_keys::dsl as k;
use super::schema::registrations::dsl as r;
use super::{
    AnyConnection, Error, Result, Touches, Transact, Txn, UniqueHit, subscriptions,
    unique_violation,
};
use crate::domain::key::{Key, KeyStatus};
use crate::domain::views::{KeyView, registration_view};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use glpi_network_shared::RegistrationKey;

/// Inserts a key for a subscription (inside the caller's transaction). `plaintext` is a fresh
/// generated key, or a fixed string from fixtures.
pub fn insert(
    conn: &mut Txn<'_>,
    subscription_id: &str,
    plaintext: &RegistrationKey,
    status: KeyStatus,
    expires_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Key> {
    subscriptions::get(conn, subscription_id)?;
    let row = new_key(subscription_id, plaintext, status, expires_at, now);
    diesel::insert_into(k::registration_keys)
        .values(&KeyRow::from(&row))
        .execute(conn.conn())
        .map_err(|e| match unique_violation(&e) {
            Some(UniqueHit::KeyHash) => Error::Conflict("this key string already exists".into()),
            _ => e.into(),
        })?;
    let mut ev = actor.event("key.issue", "ok", now);
    ev.key_id = Some(row.id.clone());
    ev.key_prefix = Some(row.key_prefix.clone());
    ev.detail = Some(format!("subscription {subscription_id}"));
    conn.audit(ev);
    conn.emit("key.issued", &KeyView::new(row.clone(), now), now);
    Ok(row)
}

fn new_key(
    subscription_id: &str,
    plaintext: &RegistrationKey,
    status: KeyStatus,
    expires_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Key {
    Key {
        id: new_id(),
        subscription_id: subscription_id.to_owned(),
        key_hash: plaintext.hash(),
        key_prefix: plaintext.display_prefix(),
        status,
        expires_at,
        created_at: now,
        revoked_at: (status == KeyStatus::Revoked).then_some(now),
        replaced_by: None,
        ver: 1,
    }
}

/// Issues a new random key; returns the row and the plaintext (shown once).
pub fn issue(
    conn: &mut impl Transact,
    subscription_id: &str,
    expires_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<(Key, RegistrationKey)> {
    let plaintext = RegistrationKey::generate();
    let row = conn.write(Touches::Anything, |c| {
        insert(
            c,
            subscription_id,
            &plaintext,
            KeyStatus::Active,
            expires_at,
            now,
            actor,
        )
    })?;
    Ok((row, plaintext))
}

/// Looks a key up by its plaintext (through the hash).
pub fn find_by_key(conn: &mut AnyConnection, key: &RegistrationKey) -> Result<Option<Key>> {
    Ok(k::registration_keys
        .filter(k::key_hash.eq(key.hash()))
        .select(KeyRow::as_select())
        .first(conn)
        .optional()?
        .map(Key::from))
}

pub fn get(conn: &mut AnyConnection, id: &str) -> Result<Key> {
    k::registration_keys
        .find(id)
        .select(KeyRow::as_select())
        .first(conn)
        .optional()?
        .map(Key::from)
        .ok_or_else(|| Error::NotFound(format!("no key {id}")))
}

/// `prefix` as a `LIKE` pattern: lower-cased, with `%`, `_` and `\` escaped, then `%`.
fn starts_with_pattern(prefix: &str) -> String {
    let mut p = String::new();
    for ch in prefix.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// The longest `prefix` filter (a display prefix is much shorter).
const MAX_PREFIX_FILTER: usize = 64;

/// The key statuses a list filters by.
pub const STATUSES: [&str; 2] = ["active", "revoked"];

/// Refuses a filter of a key list that cannot match as asked (see [`ListQuery::check`]), and
/// an empty or overlong prefix.
fn check_key_filters(conn: &mut AnyConnection, q: &ListQuery) -> Result<()> {
    q.check(conn, &STATUSES)?;
    if let Some(p) = &q.prefix
        && (p.trim().is_empty() || p.len() > MAX_PREFIX_FILTER)
    {
        return Err(Error::invalid(format!(
            "prefix: must be 1 to {MAX_PREFIX_FILTER} characters"
        )));
    }
    Ok(())
}

/// Keys by id, filtered by `subscription_id`, `subscriber_id`, `status` and `prefix` (each
/// checked first: see [`check_key_filters`]).
pub fn list(conn: &mut AnyConnection, q: &ListQuery) -> Result<Page<Key>> {
    use super::console::lower;
    use super::schema::subscriptions::dsl as s;
    check_key_filters(conn, q)?;
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
    if let Some(v) = &q.subscriber_id {
        let theirs = s::subscriptions
            .filter(s::subscriber_id.eq(v.clone()))
            .select(s::id);
        query = query.filter(k::subscription_id.eq_any(theirs));
    }
    if let Some(v) = &q.status {
        query = query.filter(k::status.eq(v.clone()));
    }
    if let Some(p) = &q.prefix {
        let pattern = starts_with_pattern(p.trim());
        query = query.filter(lower(k::key_prefix).like(pattern).escape('\\'));
    }
    let rows: Vec<KeyRow> = query.order(k::id.asc()).limit(limit + 1).load(conn)?;
    Ok(paginate(rows, limit, |r| r.id.clone(), Key::from))
}

/// The keys `text` names: the key with that id, else (at most `max`) keys whose display prefix
/// starts with it, compared case-insensitively.
pub fn find_by_id_or_prefix(conn: &mut AnyConnection, text: &str, max: i64) -> Result<Vec<Key>> {
    let text = text.trim();
    match get(conn, text) {
        Ok(key) => return Ok(vec![key]),
        Err(Error::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let q = ListQuery {
        limit: Some(max),
        prefix: Some(text.to_owned()),
        ..Default::default()
    };
    Ok(list(conn, &q)?.items)
}

/// Marks a key revoked (idempotent) and bumps its `ver`. Its binding stays, so the bound
/// instance learns `key_revoked` on its next validation.
fn revoke_inner(conn: &mut Txn<'_>, id: &str, now: NaiveDateTime, actor: &Actor) -> Result<Key> {
    let row = get(conn, id)?;
    if row.status == KeyStatus::Revoked {
        return Ok(row);
    }
    diesel::update(k::registration_keys.find(id))
        .set((
            k::status.eq(KeyStatus::Revoked.as_str()),
            k::revoked_at.eq(Some(now)),
            k::ver.eq(k::ver + 1),
        ))
        .execute(conn.conn())?;
    let mut ev = actor.event("key.revoke", "ok", now);
    ev.key_id = Some(row.id.clone());
    ev.key_prefix = Some(row.key_prefix.clone());
    conn.audit(ev);
    let row = get(conn, id)?;
    conn.emit("key.revoked", &KeyView::new(row.clone(), now), now);
    Ok(row)
}

pub fn revoke(
    conn: &mut impl Transact,
    id: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Key> {
    conn.write(Touches::Anything, |c| revoke_inner(c, id, now, actor))
}

/// Creates a new key for the same subscription, revokes the old one (which then shows
/// `replaced_by`) and releases its registration. Returns the new key and its plaintext.
pub fn regenerate(
    conn: &mut impl Transact,
    id: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<(Key, RegistrationKey)> {
    let plaintext = RegistrationKey::generate();
    let row = conn.write(Touches::Anything, |c| {
        let old = get(c, id)?;
        if let Some(next) = &old.replaced_by {
            return Err(Error::Conflict(format!(
                "key {id} was already regenerated as {next}"
            )));
        }
        let new = insert(
            c,
            &old.subscription_id,
            &plaintext,
            KeyStatus::Active,
            old.expires_at,
            now,
            actor,
        )?;
        revoke_inner(c, id, now, actor)?;
        diesel::update(k::registration_keys.find(id))
            .set(k::replaced_by.eq(Some(&new.id)))
            .execute(c.conn())?;
        let released = release_bindings(c, &old, now)?;
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
        c.audit(ev);
        c.emit("key.regenerated", &KeyView::new(new.clone(), now), now);
        Ok(new)
    })?;
    Ok((row, plaintext))
}

/// Releases a key's live bindings (its regeneration), each with its webhook event.
fn release_bindings(c: &mut Txn<'_>, key: &Key, now: NaiveDateTime) -> Result<usize> {
    let live: Vec<String> = r::registrations
        .filter(r::key_id.eq(&key.id))
        .filter(r::released_at.is_null())
        .select(r::id)
        .load(c.conn())?;
    diesel::update(r::registrations.filter(r::id.eq_any(&live)))
        .set(r::released_at.eq(Some(now)))
        .execute(c.conn())?;
    for id in &live {
        let b = super::registrations::get(c, id)?;
        let view = registration_view(b, key.key_prefix.clone());
        c.emit("registration.released", &view, now);
    }
    Ok(live.len())
}

/// Bumps a key's `ver` (every change of the key, its subscription or its binding); returns
/// the new value.
pub fn bump_ver(conn: &mut AnyConnection, id: &str) -> Result<i64> {
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
    conn: &mut impl Transact,
    subscription_id: &str,
    count: usize,
    expires_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Vec<(Key, RegistrationKey)>> {
    if count == 0 || count > BATCH {
        return Err(Error::invalid(format!("a batch is 1 to {BATCH} keys")));
    }
    let issued: Vec<(Key, RegistrationKey)> = (0..count)
        .map(|_| {
            let plaintext = RegistrationKey::generate();
            let row = new_key(
                subscription_id,
                &plaintext,
                KeyStatus::Active,
                expires_at,
                now,
            );
            (row, plaintext)
        })
        .collect();
    conn.write(Touches::Anything, |c| {
        subscriptions::get(c, subscription_id)?;
        let rows: Vec<KeyRow> = issued.iter().map(|(r, _)| KeyRow::from(r)).collect();
        // MultiConnection has no multi-row insert: use the backend's own connection (same
        // transaction).
        match c.conn() {
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
        c.audit(ev);
        for (row, _) in &issued {
            c.emit("key.issued", &KeyView::new(row.clone(), now), now);
        }
        Ok::<_, Error>(())
    })?;
    Ok(issued)
}
