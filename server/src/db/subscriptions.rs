//! Subscriptions: an offer for a subscriber between two dates, active, suspended or cancelled.

use super::audit::{self, Actor};
use super::models::{SubscriptionRow, new_id};
use super::schema::registration_keys::dsl as k;
use super::schema::subscriptions::dsl as s;
use super::{AnyConnection, offers, subscribers, write_txn};
use crate::domain::status::{SUB_ACTIVE, SUB_CANCELLED, SUB_SUSPENDED};
use crate::http::dto::{CreateSubscriptionRequest, ListQuery, Page, SubscriptionView, paginate};
use crate::http::error::ApiError;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use glpi_network_shared::ErrorCode;

/// The longest trial accepted.
pub const MAX_TRIAL_DAYS: u32 = 3650;

/// Validates and inserts a subscription.
pub fn create(
    conn: &mut AnyConnection,
    req: &CreateSubscriptionRequest,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<SubscriptionRow, ApiError> {
    write_txn(conn, |conn| {
        subscribers::get(conn, &req.subscriber_id)?;
        if offers::find(conn, &req.offer)?.is_none() {
            return Err(ApiError::bad_request(format!(
                "unknown offer {:?} (see GET /v1/admin/offers)",
                req.offer
            )));
        }
        let begin = req.begin_date.unwrap_or(now.date());
        let end = match (req.end_date, req.trial_days) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "give end_date or trial_days, not both",
                ));
            }
            (Some(e), None) => Some(e),
            (None, Some(d)) if d == 0 || d > MAX_TRIAL_DAYS => {
                return Err(ApiError::bad_request(format!(
                    "trial_days must be between 1 and {MAX_TRIAL_DAYS}"
                )));
            }
            (None, Some(d)) => Some(begin + Duration::days(i64::from(d))),
            (None, None) => None,
        };
        if end.is_some_and(|e| e < begin) {
            return Err(ApiError::bad_request("end_date is before begin_date"));
        }
        let row = SubscriptionRow {
            id: new_id(),
            subscriber_id: req.subscriber_id.clone(),
            offer: req.offer.clone(),
            begin_date: begin,
            end_date: end,
            status: SUB_ACTIVE.to_owned(),
            trial: req.trial_days.is_some(),
            created_at: now,
            updated_at: now,
        };
        diesel::insert_into(s::subscriptions)
            .values(&row)
            .execute(conn)?;
        let mut ev = actor.event("subscription.create", "ok", now);
        ev.detail = Some(format!("subscription {} offer {}", row.id, row.offer));
        audit::record(conn, &ev)?;
        Ok(row)
    })
}

pub fn find(conn: &mut AnyConnection, id: &str) -> Result<Option<SubscriptionRow>, ApiError> {
    Ok(s::subscriptions
        .find(id)
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn get(conn: &mut AnyConnection, id: &str) -> Result<SubscriptionRow, ApiError> {
    find(conn, id)?.ok_or_else(|| ApiError::not_found(format!("no subscription {id}")))
}

pub fn list(
    conn: &mut AnyConnection,
    q: &ListQuery,
    now: NaiveDateTime,
) -> Result<Page<SubscriptionView>, ApiError> {
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
    let rows = query.order(s::id.asc()).limit(limit + 1).load(conn)?;
    let today = now.date();
    Ok(paginate(
        rows,
        limit,
        |r| r.id.clone(),
        |r| SubscriptionView::new(r, today),
    ))
}

/// The actions on a subscription's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Suspend,
    Resume,
    Cancel,
}

/// Suspends, resumes or cancels a subscription; bumps `ver` of every key of it.
/// Idempotent; a cancelled subscription cannot be suspended or resumed (`409 conflict`).
pub fn transition(
    conn: &mut AnyConnection,
    id: &str,
    action: Action,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<SubscriptionRow, ApiError> {
    write_txn(conn, |conn| {
        let row = get(conn, id)?;
        let target = match action {
            Action::Suspend => SUB_SUSPENDED,
            Action::Resume => SUB_ACTIVE,
            Action::Cancel => SUB_CANCELLED,
        };
        if row.status == target {
            return Ok(row);
        }
        if row.status == SUB_CANCELLED {
            return Err(ApiError::conflict(
                ErrorCode::Conflict,
                "the subscription is cancelled; create a new one",
            ));
        }
        if action == Action::Resume && row.status != SUB_SUSPENDED {
            return Ok(row);
        }
        diesel::update(s::subscriptions.find(id))
            .set((s::status.eq(target), s::updated_at.eq(now)))
            .execute(conn)?;
        diesel::update(k::registration_keys.filter(k::subscription_id.eq(id)))
            .set(k::ver.eq(k::ver + 1))
            .execute(conn)?;
        let name = match action {
            Action::Suspend => "subscription.suspend",
            Action::Resume => "subscription.resume",
            Action::Cancel => "subscription.cancel",
        };
        let mut ev = actor.event(name, "ok", now);
        ev.detail = Some(format!("subscription {id}"));
        audit::record(conn, &ev)?;
        get(conn, id)
    })
}
