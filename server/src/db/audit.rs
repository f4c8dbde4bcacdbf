//! Audit events: every issue, revoke, regenerate, bind, release and refused attempt.

use super::AnyConnection;
use super::models::{AuditRow, NewAuditEvent};
use super::schema::audit_events::dsl as a;
use crate::error::ApiError;
use crate::views::{AuditView, ListQuery, Page, paginate};
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

/// Appends one event.
pub fn record(conn: &mut AnyConnection, ev: &NewAuditEvent) -> Result<(), ApiError> {
    diesel::insert_into(a::audit_events)
        .values(ev)
        .execute(conn)?;
    Ok(())
}

/// Newest first, paged by id.
pub fn list(conn: &mut AnyConnection, q: &ListQuery) -> Result<Page<AuditView>, ApiError> {
    let limit = q.limit();
    let mut query = a::audit_events.select(AuditRow::as_select()).into_boxed();
    if let Some(c) = &q.cursor {
        let before: i64 = c
            .parse()
            .map_err(|_| ApiError::bad_request("invalid cursor"))?;
        query = query.filter(a::id.lt(before));
    }
    if let Some(k) = &q.key_id {
        query = query.filter(a::key_id.eq(k));
    }
    let rows = query.order(a::id.desc()).limit(limit + 1).load(conn)?;
    Ok(paginate(rows, limit, |r| r.id.to_string(), AuditView::from))
}

/// One event by id.
pub fn get(conn: &mut AnyConnection, id: i64) -> Result<AuditView, ApiError> {
    a::audit_events
        .find(id)
        .select(AuditRow::as_select())
        .first(conn)
        .optional()?
        .map(AuditView::from)
        .ok_or_else(|| ApiError::not_found(format!("no audit event {id}")))
}
