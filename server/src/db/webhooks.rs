//! Webhook endpoints, the outbox of events and their deliveries (DESIGN §12).
//!
//! An event is queued on the write transaction of its change ([`super::Txn::emit`]) and written
//! here just before that transaction commits, with one delivery per webhook that takes its type:
//! it exists if and only if the change committed. A delivery worker claims due deliveries
//! ([`claim`]): per webhook only the oldest pending one (event order), each leased to one process
//! (on PostgreSQL under `FOR UPDATE SKIP LOCKED`; SQLite has one writer), then [`settle`]s it.

use super::audit::Actor;
use super::models::{NewAuditEvent, new_id};
use super::page::{ListQuery, Page, paginate};
use super::schema::webhook_deliveries::dsl as d;
use super::schema::webhook_events::dsl as e;
use super::schema::webhooks::dsl as w;
use super::{AnyConnection, Error, Result, Touches, Transact};
use crate::domain::webhook::{EventFilter, retry_delay};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// A webhook as stored (its secret sealed).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::webhooks)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub events: String,
    pub description: Option<String>,
    pub secret_enc: Vec<u8>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl WebhookRow {
    /// The event types it takes (`["*"]` for all).
    pub fn event_list(&self) -> Vec<String> {
        serde_json::from_str(&self.events).unwrap_or_default()
    }
}

/// What a webhook's creation or replacement sets.
#[derive(Debug, Clone)]
pub struct WebhookInput {
    pub url: String,
    pub events: EventFilter,
    pub description: Option<String>,
}

/// A delivery as listed: the delivery with its event's id and type.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub webhook_id: String,
    pub event_seq: i64,
    pub event_id: String,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub next_attempt_at: Option<NaiveDateTime>,
}

/// An event queued by a write transaction, written when it commits.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub kind: &'static str,
    pub data: serde_json::Value,
    pub at: NaiveDateTime,
}

/// Creates a webhook with its sealed secret.
pub fn create(
    c: &mut impl Transact,
    id: &str,
    input: &WebhookInput,
    secret_enc: Vec<u8>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<WebhookRow> {
    let row = WebhookRow {
        id: id.to_owned(),
        url: input.url.clone(),
        events: serde_json::to_string(input.events.as_slice()).map_err(anyhow::Error::from)?,
        description: input.description.clone(),
        secret_enc,
        created_at: now,
        updated_at: now,
    };
    c.write(Touches::Webhooks, |tx| {
        diesel::insert_into(w::webhooks)
            .values(&row)
            .execute(tx.conn())?;
        tx.audit(event(actor, "webhook.create", now, id, &row.url));
        Ok::<_, Error>(())
    })?;
    Ok(row)
}

/// The audit event of a change to webhook `id`.
fn event(actor: &Actor, action: &str, now: NaiveDateTime, id: &str, url: &str) -> NewAuditEvent {
    let mut ev = actor.event(action, "ok", now);
    ev.detail = Some(format!("webhook {id}; url {url}"));
    ev
}

/// A fresh webhook id.
pub fn new_webhook_id() -> String {
    new_id()
}

pub fn get(c: &mut AnyConnection, id: &str) -> Result<WebhookRow> {
    w::webhooks
        .find(id)
        .select(WebhookRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("no webhook {id}")))
}

/// Oldest first, paged by id.
pub fn list(c: &mut AnyConnection, q: &ListQuery) -> Result<Page<WebhookRow>> {
    let limit = q.limit();
    let mut query = w::webhooks.select(WebhookRow::as_select()).into_boxed();
    if let Some(after) = &q.cursor {
        query = query.filter(w::id.gt(after.clone()));
    }
    let rows = query.order(w::id.asc()).limit(limit + 1).load(c)?;
    Ok(paginate(rows, limit, |r| r.id.clone(), |r| r))
}

/// Replaces `url`, `events` and `description` (the secret stays).
pub fn update(
    c: &mut impl Transact,
    id: &str,
    input: &WebhookInput,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<WebhookRow> {
    let events = serde_json::to_string(input.events.as_slice()).map_err(anyhow::Error::from)?;
    c.write(Touches::Webhooks, |tx| {
        super::audit::lock_chain(tx.conn())?; // before the row: see `delete`
        let n = diesel::update(w::webhooks.find(id))
            .set((
                w::url.eq(&input.url),
                w::events.eq(&events),
                w::description.eq(&input.description),
                w::updated_at.eq(now),
            ))
            .execute(tx.conn())?;
        if n == 0 {
            return Err(Error::NotFound(format!("no webhook {id}")));
        }
        tx.audit(event(actor, "webhook.update", now, id, &input.url));
        get(tx.conn(), id)
    })
}

/// Deletes a webhook and its deliveries.
pub fn delete(c: &mut impl Transact, id: &str, now: NaiveDateTime, actor: &Actor) -> Result<()> {
    c.write(Touches::Webhooks, |tx| {
        // first, as every change to a webhook or its deliveries that audits takes it before
        // their rows: a transaction writing events for this webhook holds it (see
        // `write_outbox`), so waiting for it in the other order could deadlock
        super::audit::lock_chain(tx.conn())?;
        let url = get(tx.conn(), id)?.url;
        diesel::delete(d::webhook_deliveries.filter(d::webhook_id.eq(id))).execute(tx.conn())?;
        diesel::delete(w::webhooks.find(id)).execute(tx.conn())?;
        tx.audit(event(actor, "webhook.delete", now, id, &url));
        Ok(())
    })
}

/// Every webhook's sealed secret (for a master-key change): `(id, sealed)`.
pub fn all_sealed(c: &mut AnyConnection) -> Result<Vec<(String, Vec<u8>)>> {
    Ok(w::webhooks
        .select((w::id, w::secret_enc))
        .order(w::id.asc())
        .load(c)?)
}

/// Stores a webhook's secret re-sealed.
pub fn set_sealed(c: &mut AnyConnection, id: &str, sealed: &[u8]) -> Result<usize> {
    Ok(diesel::update(w::webhooks.find(id))
        .set(w::secret_enc.eq(sealed))
        .execute(c)?)
}

/// Every webhook's id and event filter (`None`: a stored list that no longer parses, which takes
/// nothing): a handful of short rows, read only by transactions that emit events.
fn filters(c: &mut AnyConnection) -> diesel::QueryResult<Vec<(String, Option<EventFilter>)>> {
    Ok(w::webhooks
        .select((w::id, w::events))
        .load::<(String, String)>(c)?
        .into_iter()
        .map(|(id, events)| {
            let list: Vec<String> = serde_json::from_str(&events).unwrap_or_default();
            (id, EventFilter::parse(&list).ok())
        })
        .collect())
}

/// Writes the queued events, each with a delivery per webhook that takes its type (called by a
/// write transaction just before it commits). An event no webhook takes is not stored.
pub(crate) fn write_outbox(
    c: &mut AnyConnection,
    events: &[PendingEvent],
) -> diesel::QueryResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    // Under the audit chain's lock (PostgreSQL): events take their order (`seq`) in commit
    // order, and the webhooks read here cannot be deleted before this commits (a deletion
    // takes the lock first).
    super::audit::lock_chain(c)?;
    let hooks = filters(c)?;
    if hooks.is_empty() {
        return Ok(());
    }
    for ev in events {
        let takers: Vec<&String> = hooks
            .iter()
            .filter(|(_, f)| f.as_ref().is_some_and(|f| f.takes(ev.kind)))
            .map(|(id, _)| id)
            .collect();
        if takers.is_empty() {
            continue;
        }
        let event_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let body = serde_json::json!({
            "id": event_id,
            "type": ev.kind,
            "created_at": ev.at.and_utc(),
            "data": ev.data,
        })
        .to_string();
        let seq: i64 = diesel::insert_into(e::webhook_events)
            .values((
                e::id.eq(&event_id),
                e::kind.eq(ev.kind),
                e::created_at.eq(ev.at),
                e::body.eq(&body),
            ))
            .returning(e::seq)
            .get_result(c)?;
        for hook_id in takers {
            diesel::insert_into(d::webhook_deliveries)
                .values((
                    d::id.eq(new_id()),
                    d::webhook_id.eq(hook_id),
                    d::event_seq.eq(seq),
                    d::status.eq("pending"),
                    d::attempts.eq(0),
                    d::next_attempt_at.eq(Some(ev.at)),
                    d::updated_at.eq(ev.at),
                ))
                .execute(c)?;
        }
    }
    Ok(())
}

type DeliveryTuple = (
    String,
    String,
    i64,
    String,
    String,
    String,
    i32,
    Option<i32>,
    Option<NaiveDateTime>,
);

fn delivery(t: DeliveryTuple) -> Delivery {
    Delivery {
        id: t.0,
        webhook_id: t.1,
        event_seq: t.2,
        event_id: t.3,
        kind: t.4,
        status: t.5,
        attempts: t.6,
        last_status: t.7,
        next_attempt_at: t.8,
    }
}

macro_rules! delivery_columns {
    () => {
        (
            d::id,
            d::webhook_id,
            d::event_seq,
            e::id,
            e::kind,
            d::status,
            d::attempts,
            d::last_status,
            d::next_attempt_at,
        )
    };
}

/// A webhook's deliveries, newest event first, paged by event order.
pub fn deliveries(
    c: &mut AnyConnection,
    webhook_id: &str,
    q: &ListQuery,
) -> Result<Page<Delivery>> {
    get(c, webhook_id)?;
    let limit = q.limit();
    let mut query = d::webhook_deliveries
        .inner_join(e::webhook_events)
        .filter(d::webhook_id.eq(webhook_id))
        .select(delivery_columns!())
        .into_boxed();
    if let Some(cur) = &q.cursor {
        let before: i64 = cur.parse().map_err(|_| Error::invalid("invalid cursor"))?;
        query = query.filter(d::event_seq.lt(before));
    }
    if let Some(s) = &q.status {
        if !matches!(s.as_str(), "pending" | "delivered" | "failed") {
            return Err(Error::invalid(
                "status must be pending, delivered or failed",
            ));
        }
        query = query.filter(d::status.eq(s.clone()));
    }
    let rows: Vec<DeliveryTuple> = query.order(d::event_seq.desc()).limit(limit + 1).load(c)?;
    Ok(paginate(rows, limit, |r| r.2.to_string(), delivery))
}

/// One delivery of a webhook.
pub fn get_delivery(c: &mut AnyConnection, webhook_id: &str, id: &str) -> Result<Delivery> {
    d::webhook_deliveries
        .inner_join(e::webhook_events)
        .filter(d::webhook_id.eq(webhook_id))
        .filter(d::id.eq(id))
        .select(delivery_columns!())
        .first::<DeliveryTuple>(c)
        .optional()?
        .map(delivery)
        .ok_or_else(|| Error::NotFound(format!("no delivery {id} for webhook {webhook_id}")))
}

/// Makes a delivery pending and due now (its attempts so far stay counted).
pub fn retry(
    c: &mut impl Transact,
    webhook_id: &str,
    id: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Delivery> {
    c.write(Touches::Webhooks, |tx| {
        super::audit::lock_chain(tx.conn())?; // before the row: see `delete`
        let d = get_delivery(tx.conn(), webhook_id, id)?;
        let mut ev = actor.event("webhook.delivery_retry", "ok", now);
        ev.detail = Some(format!(
            "webhook {webhook_id}; delivery {id}; event {}",
            d.event_id
        ));
        tx.audit(ev);
        diesel::update(d::webhook_deliveries.find(id))
            .set((
                d::status.eq("pending"),
                d::next_attempt_at.eq(Some(now)),
                d::updated_at.eq(now),
            ))
            .execute(tx.conn())?;
        get_delivery(tx.conn(), webhook_id, id)
    })
}

/// How many deliveries are pending (the outbox depth).
pub fn depth(c: &mut AnyConnection) -> Result<i64> {
    Ok(d::webhook_deliveries
        .filter(d::status.eq("pending"))
        .count()
        .get_result(c)?)
}

/// A delivery leased to this process for one attempt.
#[derive(Debug, Clone, Queryable)]
pub struct Claimed {
    pub id: String,
    pub webhook_id: String,
    pub url: String,
    pub secret_enc: Vec<u8>,
    pub event_id: String,
    pub body: String,
    pub attempts: i32,
}

/// Leases up to `max` due deliveries, at most one per webhook and always its oldest pending
/// one, until `lease_until` (real time). `now` is the server's clock (the schedule's), `real`
/// the real clock (the leases').
pub fn claim(
    c: &mut impl Transact,
    now: NaiveDateTime,
    real: NaiveDateTime,
    lease_until: NaiveDateTime,
    max: i64,
) -> Result<Vec<Claimed>> {
    if !any_due(c, now, real)? {
        return Ok(Vec::new()); // the usual case: no write transaction
    }
    c.write(Touches::Webhooks, |tx| {
        let ids = due(tx.conn(), now, real, max)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(d::webhook_deliveries.filter(d::id.eq_any(&ids)))
            .set(d::lease_until.eq(Some(lease_until)))
            .execute(tx.conn())?;
        Ok(d::webhook_deliveries
            .inner_join(e::webhook_events)
            .inner_join(w::webhooks)
            .filter(d::id.eq_any(&ids))
            .order(d::event_seq.asc())
            .select((
                d::id,
                d::webhook_id,
                w::url,
                w::secret_enc,
                e::id,
                e::body,
                d::attempts,
            ))
            .load::<Claimed>(tx.conn())?)
    })
}

/// Whether some delivery is due and not leased (a read, before taking the write lock).
fn any_due(c: &mut AnyConnection, now: NaiveDateTime, real: NaiveDateTime) -> Result<bool> {
    let one: Option<String> = d::webhook_deliveries
        .filter(d::status.eq("pending"))
        .filter(d::next_attempt_at.le(now))
        .filter(d::lease_until.is_null().or(d::lease_until.lt(real)))
        .select(d::id)
        .first(c)
        .optional()?;
    Ok(one.is_some())
}

/// The due heads of line: pending, due, not leased, and no older pending delivery for the same
/// webhook. On PostgreSQL the rows are locked (`SKIP LOCKED`), so concurrent claimers never
/// take the same one.
fn due(
    c: &mut AnyConnection,
    now: NaiveDateTime,
    real: NaiveDateTime,
    max: i64,
) -> diesel::QueryResult<Vec<String>> {
    let older = diesel::alias!(super::schema::webhook_deliveries as older);
    macro_rules! query {
        () => {
            d::webhook_deliveries
                .filter(d::status.eq("pending"))
                .filter(d::next_attempt_at.le(now))
                .filter(d::lease_until.is_null().or(d::lease_until.lt(real)))
                .filter(diesel::dsl::not(diesel::dsl::exists(
                    older
                        .filter(older.field(d::webhook_id).eq(d::webhook_id))
                        .filter(older.field(d::status).eq("pending"))
                        .filter(older.field(d::event_seq).lt(d::event_seq)),
                )))
                .order(d::event_seq.asc())
                .limit(max)
                .select(d::id)
        };
    }
    match c {
        AnyConnection::Postgresql(pg) => query!().for_update().skip_locked().load(pg),
        AnyConnection::Sqlite(s) => query!().load(s),
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered(i32),
    /// Another answer (its status), or none (refused target, connection error, timeout).
    Failed(Option<i32>),
}

/// Records an attempt: delivered, or due again after the schedule's next delay, or `failed`
/// once the schedule is over. Returns the delivery's new status.
pub fn settle(
    c: &mut impl Transact,
    id: &str,
    attempts_before: i32,
    outcome: Outcome,
    now: NaiveDateTime,
) -> Result<&'static str> {
    let attempts = attempts_before + 1;
    let (status, last, next) = match outcome {
        Outcome::Delivered(s) => ("delivered", Some(s), None),
        Outcome::Failed(s) => match retry_delay(attempts) {
            Some(delay) => ("pending", s, Some(now + chrono::Duration::seconds(delay))),
            None => ("failed", s, None),
        },
    };
    c.write(Touches::Webhooks, |tx| {
        diesel::update(d::webhook_deliveries.find(id))
            .set((
                d::status.eq(status),
                d::attempts.eq(attempts),
                d::last_status.eq(last),
                d::next_attempt_at.eq(next),
                d::lease_until.eq(None::<NaiveDateTime>),
                d::updated_at.eq(now),
            ))
            .execute(tx.conn())?;
        Ok::<_, Error>(())
    })?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn setup() -> (tempfile::TempDir, Db, NaiveDateTime) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db.sqlite").display().to_string(), 4).unwrap();
        let now = chrono::Utc::now().naive_utc();
        let input = WebhookInput {
            url: "http://127.0.0.1:9/h".into(),
            events: EventFilter::parse(&["key.issued".into()]).unwrap(),
            description: None,
        };
        let actor = Actor::new("test", None);
        create(
            &mut db.get().unwrap(),
            "w1",
            &input,
            vec![1, 2, 3],
            now,
            &actor,
        )
        .unwrap();
        (dir, db, now)
    }

    fn emit(db: &Db, kind: &'static str, n: i64, now: NaiveDateTime, commit: bool) {
        let r = db.get().unwrap().write(Touches::Webhooks, |tx| {
            tx.emit(kind, &serde_json::json!({ "n": n }), now);
            if commit {
                Ok(())
            } else {
                Err(Error::invalid("rolled back"))
            }
        });
        assert_eq!(r.is_ok(), commit);
    }

    #[test]
    fn an_event_exists_only_if_its_transaction_committed_and_a_webhook_takes_it() {
        let (_dir, db, now) = setup();
        emit(&db, "key.issued", 1, now, false);
        emit(&db, "key.revoked", 2, now, true); // not taken by the webhook: not stored
        emit(&db, "key.issued", 3, now, true);
        let c = &mut *db.get().unwrap();
        let bodies: Vec<String> = e::webhook_events.select(e::body).load(c).unwrap();
        assert_eq!(bodies.len(), 1, "{bodies:?}");
        assert!(bodies[0].contains(r#""n":3"#));
        assert_eq!(depth(c).unwrap(), 1);
    }

    #[test]
    fn claims_take_the_oldest_pending_delivery_of_a_webhook_once_until_it_is_settled() {
        let (_dir, db, now) = setup();
        for n in 1..=2 {
            emit(&db, "key.issued", n, now, true);
        }
        let mut c = db.get().unwrap();
        let real = chrono::Utc::now().naive_utc();
        let lease = real + chrono::Duration::seconds(30);
        let first = claim(&mut c, now, real, lease, 10).unwrap();
        assert_eq!(first.len(), 1, "one at a time per webhook");
        assert!(first[0].body.contains(r#""n":1"#));
        assert!(
            claim(&mut c, now, real, lease, 10).unwrap().is_empty(),
            "leased"
        );
        // a failed attempt: due again after 5 s, and the next event still waits behind it
        settle(&mut c, &first[0].id, 0, Outcome::Failed(Some(500)), now).unwrap();
        assert!(claim(&mut c, now, real, lease, 10).unwrap().is_empty());
        let later = now + chrono::Duration::seconds(6);
        let again = claim(&mut c, later, real, lease, 10).unwrap();
        assert_eq!(again[0].id, first[0].id);
        assert_eq!(again[0].attempts, 1);
        settle(&mut c, &first[0].id, 1, Outcome::Delivered(204), later).unwrap();
        let next = claim(&mut c, later, real, lease, 10).unwrap();
        assert!(next[0].body.contains(r#""n":2"#));
        // a lease that ran out (its process died) is claimed again
        let after = lease + chrono::Duration::seconds(1);
        assert_eq!(
            claim(&mut c, later, after, after, 10).unwrap()[0].id,
            next[0].id
        );
    }
}
