//! Subscriptions: an offer for a subscriber between two dates, active, suspended or cancelled.
//! The rules (dates, transitions, running) are in `domain::subscription`.

use super::audit::Actor;
use super::models::{SubscriptionRow, new_id};
use super::page::{ListQuery, Page, paginate};
use super::schema::registration_keys::dsl as k;
use super::schema::subscriptions::dsl as s;
use super::{AnyConnection, Error, Result, Touches, Transact, offers, subscribers};
use crate::domain::subscription::{
    self, Action, NewSubscription, Subscription, SubscriptionStatus,
};
use crate::domain::views::SubscriptionView;
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub use crate::domain::subscription::MAX_TRIAL_DAYS;

/// Validates and inserts a subscription.
pub fn create(
    conn: &mut impl Transact,
    req: &NewSubscription,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Subscription> {
    conn.write(Touches::Anything, |conn| {
        subscribers::get(conn, &req.subscriber_id)?;
        if !offers::exists(conn, &req.offer)? {
            return Err(Error::invalid(format!(
                "unknown offer {:?} (see GET /v1/admin/offers)",
                req.offer
            )));
        }
        let (begin, end) =
            subscription::dates(req.begin_date, req.end_date, req.trial_days, now.date())?;
        let row = Subscription {
            id: new_id(),
            subscriber_id: req.subscriber_id.clone(),
            offer: req.offer.clone(),
            begin_date: begin,
            end_date: end,
            status: SubscriptionStatus::Active,
            trial: req.trial_days.is_some(),
            created_at: now,
            updated_at: now,
        };
        diesel::insert_into(s::subscriptions)
            .values(&SubscriptionRow::from(&row))
            .execute(conn.conn())?;
        let mut ev = actor.event("subscription.create", "ok", now);
        ev.detail = Some(format!("subscription {} offer {}", row.id, row.offer));
        conn.audit(ev);
        let view = SubscriptionView::new(row.clone(), now.date());
        conn.emit("subscription.created", &view, now);
        Ok(row)
    })
}

pub fn find(conn: &mut AnyConnection, id: &str) -> Result<Option<Subscription>> {
    Ok(s::subscriptions
        .find(id)
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()?
        .map(Subscription::from))
}

pub fn get(conn: &mut AnyConnection, id: &str) -> Result<Subscription> {
    find(conn, id)?.ok_or_else(|| Error::NotFound(format!("no subscription {id}")))
}

pub fn list(conn: &mut AnyConnection, q: &ListQuery) -> Result<Page<Subscription>> {
    q.check(conn, &["active", "suspended", "cancelled"])?;
    let limit = q.limit();
    let mut query = s::subscriptions
        .select(SubscriptionRow::as_select())
        .into_boxed();
    if let Some(c) = &q.cursor {
        query = query.filter(s::id.gt(c.clone()));
    }
    if let Some(v) = &q.subscriber_id {
        query = query.filter(s::subscriber_id.eq(v.clone()));
    }
    if let Some(v) = &q.status {
        query = query.filter(s::status.eq(v.clone()));
    }
    let rows: Vec<SubscriptionRow> = query.order(s::id.asc()).limit(limit + 1).load(conn)?;
    Ok(paginate(rows, limit, |r| r.id.clone(), Subscription::from))
}

/// Sets a subscription's status (fixtures load suspended and cancelled ones).
pub fn set_status(
    conn: &mut AnyConnection,
    id: &str,
    status: SubscriptionStatus,
    now: NaiveDateTime,
) -> Result<()> {
    diesel::update(s::subscriptions.find(id))
        .set((s::status.eq(status.as_str()), s::updated_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

/// Suspends, resumes or cancels a subscription; bumps `ver` of every key of it.
/// Idempotent; a cancelled subscription cannot be suspended or resumed.
pub fn transition(
    conn: &mut impl Transact,
    id: &str,
    action: Action,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Subscription> {
    conn.write(Touches::Anything, |conn| {
        let row = get(conn, id)?;
        let Some(target) = subscription::transition(row.status, action)? else {
            return Ok(row);
        };
        set_status(conn, id, target, now)?;
        diesel::update(k::registration_keys.filter(k::subscription_id.eq(id)))
            .set(k::ver.eq(k::ver + 1))
            .execute(conn.conn())?;
        let mut ev = actor.event(action.event(), "ok", now);
        ev.detail = Some(format!("subscription {id}"));
        conn.audit(ev);
        let row = get(conn, id)?;
        let view = SubscriptionView::new(row.clone(), now.date());
        conn.emit(action.webhook_event(), &view, now);
        Ok(row)
    })
}
