//! Audit events: every issue, revoke, regenerate, bind, release and refused attempt.

use super::AnyConnection;
use super::models::{AuditRow, NewAuditEvent};
use super::page::{ListQuery, Page, paginate};
use super::schema::audit_events::dsl as a;
use super::{Error, Result, Touches, Transact};
use diesel::prelude::*;

/// Who did something, and from where.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `admin`, `cli`, `instance`, `glpi`, `test`.
    pub name: String,
    /// The client address, when it came over HTTP.
    pub client_addr: Option<String>,
}

impl Actor {
    pub fn new(name: &str, client_addr: Option<String>) -> Self {
        Actor {
            name: name.to_owned(),
            client_addr,
        }
    }

    /// Starts an event by this actor.
    pub fn event(&self, action: &str, outcome: &str, at: chrono::NaiveDateTime) -> NewAuditEvent {
        NewAuditEvent {
            at,
            actor: self.name.clone(),
            action: action.to_owned(),
            outcome: outcome.to_owned(),
            client_addr: self.client_addr.clone(),
            ..Default::default()
        }
    }
}

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Advisory lock id serialising audit appends on PostgreSQL ("glpiaud").
const AUDIT_LOCK: i64 = 0x0067_6c70_6961_7564;

/// SHA-256 (hex) over the previous hash and the event's content, in a fixed JSON layout.
#[allow(clippy::too_many_arguments)]
fn chain_hash(
    prev: &str,
    at: chrono::NaiveDateTime,
    actor: &str,
    action: &str,
    outcome: &str,
    key_id: Option<&str>,
    key_prefix: Option<&str>,
    instance_url: Option<&str>,
    instance_uid: Option<&str>,
    client_addr: Option<&str>,
    detail: Option<&str>,
) -> String {
    let content = serde_json::json!([
        prev,
        at.and_utc().timestamp_micros(),
        actor,
        action,
        outcome,
        key_id,
        key_prefix,
        instance_url,
        instance_uid,
        client_addr,
        detail
    ]);
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        content.to_string().as_bytes(),
    ))
}

fn hash_of_new(prev: &str, e: &NewAuditEvent) -> String {
    chain_hash(
        prev,
        e.at,
        &e.actor,
        &e.action,
        &e.outcome,
        e.key_id.as_deref(),
        e.key_prefix.as_deref(),
        e.instance_url.as_deref(),
        e.instance_uid.as_deref(),
        e.client_addr.as_deref(),
        e.detail.as_deref(),
    )
}

fn hash_of_row(prev: &str, r: &AuditRow) -> String {
    chain_hash(
        prev,
        r.at,
        &r.actor,
        &r.action,
        &r.outcome,
        r.key_id.as_deref(),
        r.key_prefix.as_deref(),
        r.instance_url.as_deref(),
        r.instance_uid.as_deref(),
        r.client_addr.as_deref(),
        r.detail.as_deref(),
    )
}

/// Records one event. In a write transaction it is queued and appended when that transaction
/// commits (so a rolled-back change leaves no event); on a connection, it is appended in a
/// transaction of its own.
pub fn record(c: &mut impl Transact, ev: &NewAuditEvent) -> Result<()> {
    c.write(Touches::AuditOnly, |tx| {
        tx.audit(ev.clone());
        Ok::<_, Error>(())
    })
}

/// The largest audit event id (`None` for an empty trail): a change counter for the whole
/// database, since every change to a key state writes an event and events are appended in
/// commit order (see [`append_chained`]).
pub fn latest_id(conn: &mut AnyConnection) -> Result<Option<i64>> {
    Ok(a::audit_events
        .select(diesel::dsl::max(a::id))
        .first::<Option<i64>>(conn)?)
}

/// Takes the lock that serialises appends to the chain (PostgreSQL; held until the transaction
/// ends, and taken again at no cost). The webhook outbox is written under it too.
pub(crate) fn lock_chain(c: &mut AnyConnection) -> diesel::QueryResult<()> {
    if let AnyConnection::Postgresql(pg) = c {
        use diesel::connection::SimpleConnection;
        pg.batch_execute(&format!("SELECT pg_advisory_xact_lock({AUDIT_LOCK})"))?;
    }
    Ok(())
}

/// Appends events to the chain (called by a write transaction just before it commits). On PostgreSQL
/// an advisory transaction lock serialises appends across processes so the chain never forks;
/// on SQLite the write transaction already does.
pub(crate) fn append_chained(
    c: &mut AnyConnection,
    events: &[NewAuditEvent],
) -> diesel::QueryResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    lock_chain(c)?;
    let last: Option<(String, chrono::NaiveDateTime)> = a::audit_events
        .select((a::hash, a::at))
        .order(a::id.desc())
        .first(c)
        .optional()?;
    let (mut prev, mut latest) = match last {
        Some((hash, at)) => (hash, Some(at)),
        None => (GENESIS.to_owned(), None),
    };
    for ev in events {
        // The event's time is taken as it is appended: never before the event it follows, so
        // the chain's order (the list's order) is time order even under concurrent writers
        // whose requests began in another order.
        let mut ev = ev.clone();
        ev.at = latest.map_or(ev.at, |l| ev.at.max(l));
        let hash = hash_of_new(&prev, &ev);
        diesel::insert_into(a::audit_events)
            .values((&ev, a::prev_hash.eq(&prev), a::hash.eq(&hash)))
            .execute(c)?;
        prev = hash;
        latest = Some(ev.at);
    }
    Ok(())
}

/// The outcome of `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCheck {
    /// Every event links to the previous one and matches its hash.
    Intact { events: u64 },
    /// The first event that does not.
    Broken { id: i64, reason: String },
}

/// Walks the chain in id order, in pages, and names the first broken event.
pub fn verify_chain(conn: &mut AnyConnection) -> Result<ChainCheck> {
    let mut prev = GENESIS.to_owned();
    let mut after = i64::MIN;
    let mut events = 0u64;
    loop {
        let rows: Vec<AuditRow> = a::audit_events
            .filter(a::id.gt(after))
            .order(a::id.asc())
            .limit(1000)
            .select(AuditRow::as_select())
            .load(conn)?;
        if rows.is_empty() {
            return Ok(ChainCheck::Intact { events });
        }
        for r in rows {
            if r.prev_hash != prev {
                return Ok(ChainCheck::Broken {
                    id: r.id,
                    reason: "its prev_hash is not the hash of the event before it (an event was removed or reordered)".into(),
                });
            }
            if hash_of_row(&prev, &r) != r.hash {
                return Ok(ChainCheck::Broken {
                    id: r.id,
                    reason: "its content does not match its hash (the event was edited)".into(),
                });
            }
            prev = r.hash;
            after = r.id;
            events += 1;
        }
    }
}

/// Newest first, paged by id.
pub fn list(conn: &mut AnyConnection, q: &ListQuery) -> Result<Page<AuditRow>> {
    let limit = q.limit();
    let mut query = a::audit_events.select(AuditRow::as_select()).into_boxed();
    if let Some(c) = &q.cursor {
        let before: i64 = c.parse().map_err(|_| Error::invalid("invalid cursor"))?;
        query = query.filter(a::id.lt(before));
    }
    if let Some(k) = &q.key_id {
        query = query.filter(a::key_id.eq(k));
    }
    let rows = query.order(a::id.desc()).limit(limit + 1).load(conn)?;
    Ok(paginate(rows, limit, |r| r.id.to_string(), |r| r))
}

/// One event by id.
pub fn get(conn: &mut AnyConnection, id: i64) -> Result<AuditRow> {
    a::audit_events
        .find(id)
        .select(AuditRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("no audit event {id}")))
}
