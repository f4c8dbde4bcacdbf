//! Subscribers: the owners of subscriptions ("Registered by" in GLPI).

use super::AnyConnection;
use super::models::{SubscriberRow, new_id};
use super::page::{ListQuery, Page, paginate};
use super::schema::subscribers::dsl as s;
use super::{Error, Result};
use crate::domain::subscription;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Validates and inserts a subscriber.
pub fn create(
    conn: &mut AnyConnection,
    name: &str,
    email: Option<&str>,
    now: NaiveDateTime,
) -> Result<SubscriberRow> {
    let (name, email) = subscription::subscriber(name, email)?;
    let row = SubscriberRow {
        id: new_id(),
        name: name.to_owned(),
        email: email.map(str::to_owned),
        created_at: now,
    };
    diesel::insert_into(s::subscribers)
        .values(&row)
        .execute(conn)?;
    Ok(row)
}

pub fn find(conn: &mut AnyConnection, id: &str) -> Result<Option<SubscriberRow>> {
    Ok(s::subscribers
        .find(id)
        .select(SubscriberRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn get(conn: &mut AnyConnection, id: &str) -> Result<SubscriberRow> {
    find(conn, id)?.ok_or_else(|| Error::NotFound(format!("no subscriber {id}")))
}

/// The first subscriber with exactly this name (the CLI's `--subscriber NAME`).
pub fn find_by_name(conn: &mut AnyConnection, name: &str) -> Result<Option<SubscriberRow>> {
    Ok(s::subscribers
        .filter(s::name.eq(name))
        .order(s::id.asc())
        .select(SubscriberRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut AnyConnection, q: &ListQuery) -> Result<Page<SubscriberRow>> {
    let limit = q.limit();
    let mut query = s::subscribers
        .select(SubscriberRow::as_select())
        .into_boxed();
    if let Some(c) = &q.cursor {
        query = query.filter(s::id.gt(c.clone()));
    }
    let rows = query.order(s::id.asc()).limit(limit + 1).load(conn)?;
    Ok(paginate(rows, limit, |r| r.id.clone(), |r| r))
}
