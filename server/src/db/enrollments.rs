//! Enrollment keys and the agents they enrolled (DESIGN §11.2). A use is taken by one
//! conditional update (`uses = uses + 1` only while a use is left) in the transaction that
//! inserts the enrollment, so `max_uses` holds whatever the concurrency and however many
//! processes share the database: no count is read first.

use super::audit::Actor;
use super::kinds::{self, event};
use super::models::new_id;
use super::page::{ListQuery, Page, paginate};
use super::schema::enrollment_keys::dsl as k;
use super::schema::enrollments::dsl as e;
use super::{AnyConnection, Error, Result, Transact, Txn, UniqueHit, audit, unique_violation};
use crate::domain::enrollment::{Enrollment, EnrollmentKey};
use crate::domain::key::KeyStatus;
use crate::domain::kind::UseRefusal;
use crate::domain::views::EnrollmentView;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use glpi_network_shared::{KeyKind, PlainKey};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::enrollment_keys)]
struct KeyRow {
    id: String,
    subscriber_id: String,
    entity: String,
    key_hash: String,
    key_prefix: String,
    status: String,
    max_uses: i32,
    uses: i32,
    expires_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    revoked_at: Option<NaiveDateTime>,
    ver: i64,
}

impl From<KeyRow> for EnrollmentKey {
    fn from(r: KeyRow) -> Self {
        EnrollmentKey {
            id: r.id,
            subscriber_id: r.subscriber_id,
            entity: r.entity,
            key_prefix: r.key_prefix,
            status: KeyStatus::parse(&r.status).unwrap_or(KeyStatus::Revoked),
            max_uses: r.max_uses,
            uses: r.uses,
            expires_at: r.expires_at,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            ver: r.ver,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::enrollments)]
struct Row {
    id: String,
    enrollment_key_id: String,
    agent_id: String,
    hostname: Option<String>,
    mac: Option<String>,
    enrolled_at: NaiveDateTime,
    released_at: Option<NaiveDateTime>,
}

impl From<Row> for Enrollment {
    fn from(r: Row) -> Self {
        Enrollment {
            id: r.id,
            enrollment_key_id: r.enrollment_key_id,
            agent_id: r.agent_id,
            hostname: r.hostname,
            mac: r.mac,
            enrolled_at: r.enrolled_at,
            released_at: r.released_at,
        }
    }
}

/// A new enrollment key.
pub struct NewEnrollmentKey<'a> {
    pub subscriber_id: &'a str,
    pub entity: &'a str,
    pub max_uses: i32,
    pub expires_at: Option<NaiveDateTime>,
    pub status: KeyStatus,
}

/// Inserts a key (inside the caller's transaction); `plaintext` is generated or a fixture's.
pub fn insert(
    c: &mut Txn<'_>,
    new: &NewEnrollmentKey<'_>,
    plaintext: &PlainKey,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<EnrollmentKey> {
    super::subscribers::get(c, new.subscriber_id)?;
    let row = KeyRow {
        id: new_id(),
        subscriber_id: new.subscriber_id.to_owned(),
        entity: new.entity.to_owned(),
        key_hash: plaintext.hash(),
        key_prefix: plaintext.display_prefix(),
        status: new.status.as_str().to_owned(),
        max_uses: new.max_uses,
        uses: 0,
        expires_at: new.expires_at,
        created_at: now,
        revoked_at: (new.status == KeyStatus::Revoked).then_some(now),
        ver: 1,
    };
    diesel::insert_into(k::enrollment_keys)
        .values(&row)
        .execute(c.conn())
        .map_err(|err| match unique_violation(&err) {
            Some(UniqueHit::KeyHash) => Error::Conflict("this key string already exists".into()),
            _ => err.into(),
        })?;
    let mut ev = event(
        actor,
        "enrollment_key.issue",
        "ok",
        now,
        Some(&row.id),
        &row.key_prefix,
    );
    ev.detail = Some(format!(
        "subscriber {}; entity {}; max_uses {}",
        row.subscriber_id, row.entity, row.max_uses
    ));
    audit::record(c, &ev)?;
    Ok(row.into())
}

/// Issues a new random key; returns it and the plaintext (shown once).
pub fn issue(
    c: &mut impl Transact,
    new: &NewEnrollmentKey<'_>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<(EnrollmentKey, PlainKey)> {
    kinds::check_expiry(new.expires_at, now)?;
    let plaintext = PlainKey::generate_kind(KeyKind::Enrollment);
    let row = kinds::txn(c, |c| insert(c, new, &plaintext, now, actor))?;
    Ok((row, plaintext))
}

fn find_by_key(c: &mut AnyConnection, key: &PlainKey) -> Result<Option<EnrollmentKey>> {
    Ok(k::enrollment_keys
        .filter(k::key_hash.eq(key.hash()))
        .select(KeyRow::as_select())
        .first(c)
        .optional()?
        .map(EnrollmentKey::from))
}

pub fn get(c: &mut AnyConnection, id: &str) -> Result<EnrollmentKey> {
    k::enrollment_keys
        .find(id)
        .select(KeyRow::as_select())
        .first(c)
        .optional()?
        .map(EnrollmentKey::from)
        .ok_or_else(|| Error::NotFound(format!("no enrollment key {id}")))
}

pub fn list(c: &mut AnyConnection, q: &ListQuery) -> Result<Page<EnrollmentKey>> {
    q.check(c, &super::keys::STATUSES)?;
    let limit = q.limit();
    let mut query = k::enrollment_keys.select(KeyRow::as_select()).into_boxed();
    if let Some(cur) = &q.cursor {
        query = query.filter(k::id.gt(cur.clone()));
    }
    if let Some(v) = &q.subscriber_id {
        query = query.filter(k::subscriber_id.eq(v.clone()));
    }
    if let Some(v) = &q.status {
        query = query.filter(k::status.eq(v.clone()));
    }
    let rows: Vec<KeyRow> = query.order(k::id.asc()).limit(limit + 1).load(c)?;
    Ok(paginate(rows, limit, |r| r.id.clone(), EnrollmentKey::from))
}

/// Revokes a key (idempotent): enrolled agents stay, new ones are refused.
pub fn revoke(
    c: &mut impl Transact,
    id: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<EnrollmentKey> {
    kinds::txn(c, |c| {
        let row = get(c, id)?;
        if row.status == KeyStatus::Revoked {
            return Ok(row);
        }
        diesel::update(k::enrollment_keys.find(id))
            .set((
                k::status.eq(KeyStatus::Revoked.as_str()),
                k::revoked_at.eq(Some(now)),
                k::ver.eq(k::ver + 1),
            ))
            .execute(c.conn())?;
        let ev = event(
            actor,
            "enrollment_key.revoke",
            "ok",
            now,
            Some(id),
            &row.key_prefix,
        );
        audit::record(c, &ev)?;
        get(c, id)
    })
}

/// The live enrollments of a key, oldest first.
pub fn list_enrollments(
    c: &mut AnyConnection,
    key_id: &str,
    q: &ListQuery,
) -> Result<Page<Enrollment>> {
    get(c, key_id)?;
    let limit = q.limit();
    let mut query = e::enrollments
        .filter(e::enrollment_key_id.eq(key_id.to_owned()))
        .filter(e::released_at.is_null())
        .select(Row::as_select())
        .into_boxed();
    if let Some(cur) = &q.cursor {
        query = query.filter(e::id.gt(cur.clone()));
    }
    let rows: Vec<Row> = query.order(e::id.asc()).limit(limit + 1).load(c)?;
    Ok(paginate(rows, limit, |r| r.id.clone(), Enrollment::from))
}

/// Revokes an agent's enrollment and frees its use (idempotent once released).
pub fn release(c: &mut impl Transact, id: &str, now: NaiveDateTime, actor: &Actor) -> Result<()> {
    kinds::txn(c, |c| {
        let row: Row = e::enrollments
            .find(id)
            .select(Row::as_select())
            .first(c.conn())
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("no enrollment {id}")))?;
        let released = diesel::update(e::enrollments.find(id).filter(e::released_at.is_null()))
            .set(e::released_at.eq(Some(now)))
            .execute(c.conn())?;
        if released == 0 {
            return Ok(());
        }
        diesel::update(
            k::enrollment_keys
                .find(&row.enrollment_key_id)
                .filter(k::uses.gt(0)),
        )
        .set((k::uses.eq(k::uses - 1), k::ver.eq(k::ver + 1)))
        .execute(c.conn())?;
        let key = get(c, &row.enrollment_key_id)?;
        let mut ev = event(
            actor,
            "enrollment.release",
            "ok",
            now,
            Some(&key.id),
            &key.key_prefix,
        );
        ev.instance_uid = Some(row.agent_id.clone());
        ev.detail = Some(format!("agent_id {}", row.agent_id));
        audit::record(c, &ev)?;
        Ok(())
    })
}

/// An agent's enrollment, as `POST /v1/enrollments` answers it.
#[derive(Debug)]
pub struct Enrolled {
    pub key: EnrollmentKey,
    pub enrollment: Enrollment,
    /// `true` for a new agent (`201`), `false` for the same agent again (`200`).
    pub created: bool,
}

/// What an agent sends.
#[derive(Debug, Clone)]
pub struct AgentInput {
    pub agent_id: String,
    pub hostname: Option<String>,
    pub mac: Option<String>,
}

/// Enrolls an agent: the same agent again answers its enrollment and takes no use; a new one
/// takes a use with the conditional update, or is refused `enrollment_exhausted`.
pub fn enroll(
    c: &mut impl Transact,
    key: &PlainKey,
    agent: &AgentInput,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Enrolled> {
    let result = kinds::retry_races(|| kinds::txn(c, |c| enroll_once(c, key, agent, now, actor)));
    if let Err(err) = &result {
        let key_id = find_by_key(c, key).ok().flatten().map(|k| k.id);
        kinds::record_refusal(c, actor, "enrollment.create", key, key_id, err, now, |ev| {
            ev.instance_uid = Some(agent.agent_id.clone());
            ev.detail = Some(format!("agent_id {}", agent.agent_id));
        });
    }
    result
}

fn live_enrollment(
    c: &mut AnyConnection,
    key_id: &str,
    agent_id: &str,
) -> Result<Option<Enrollment>> {
    Ok(e::enrollments
        .filter(e::enrollment_key_id.eq(key_id))
        .filter(e::agent_id.eq(agent_id))
        .filter(e::released_at.is_null())
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(Enrollment::from))
}

fn enroll_once(
    c: &mut Txn<'_>,
    key: &PlainKey,
    agent: &AgentInput,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Enrolled> {
    let ek = find_by_key(c, key)?.ok_or(Error::UnknownKeyOf(KeyKind::Enrollment))?;
    ek.usable(now)?;
    if let Some(enrollment) = live_enrollment(c, &ek.id, &agent.agent_id)? {
        return Ok(Enrolled {
            key: ek,
            enrollment,
            created: false,
        });
    }
    // the one decision: a use is taken only while one is left, atomically
    let taken = diesel::update(
        k::enrollment_keys
            .filter(k::id.eq(&ek.id))
            .filter(k::max_uses.eq(0).or(k::uses.lt(k::max_uses))),
    )
    .set(k::uses.eq(k::uses + 1))
    .execute(c.conn())?;
    if taken == 0 {
        return Err(UseRefusal::EnrollmentExhausted.into());
    }
    let row = Row {
        id: new_id(),
        enrollment_key_id: ek.id.clone(),
        agent_id: agent.agent_id.clone(),
        hostname: agent.hostname.clone(),
        mac: agent.mac.clone(),
        enrolled_at: now,
        released_at: None,
    };
    diesel::insert_into(e::enrollments)
        .values(&row)
        .execute(c.conn())?;
    let mut ev = event(
        actor,
        "enrollment.create",
        "ok",
        now,
        Some(&ek.id),
        &ek.key_prefix,
    );
    ev.instance_uid = Some(agent.agent_id.clone());
    ev.detail = Some(format!("agent_id {}; entity {}", agent.agent_id, ek.entity));
    audit::record(c, &ev)?;
    let enrollment: Enrollment = row.into();
    let view = EnrollmentView::new(enrollment.clone(), &ek.entity, true);
    c.emit("enrollment.created", &view, now);
    let key = get(c, &ek.id)?;
    Ok(Enrolled {
        key,
        enrollment,
        created: true,
    })
}
