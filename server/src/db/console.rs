//! The vendor console's lists: the admin API's collections, paged by id and searchable by a
//! free text `q` (subscriber name or email, key display prefix, instance URL), compared
//! case-insensitively on both backends.

use super::AnyConnection;
use super::Result;
use super::models::{KeyRow, RegistrationRow, SubscriberRow, SubscriptionRow};
use super::schema::registration_keys::dsl as k;
use super::schema::registrations::dsl as r;
use super::schema::subscribers::dsl as sb;
use super::schema::subscriptions::dsl as s;
use crate::domain::subscription::Subscription;
use diesel::prelude::*;

diesel::define_sql_function!(
    /// SQL `lower(text)`, on both backends.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// One page of a console list.
pub struct Found<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A search: free text, the id after which the page starts, and the page size.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: i64,
}

impl Search {
    /// `%text%` lower-cased, with `%`, `_` and `\` escaped (`None` for no text).
    fn pattern(&self) -> Option<String> {
        let q = self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())?;
        let mut p = String::from("%");
        for ch in q.to_lowercase().chars() {
            if matches!(ch, '%' | '_' | '\\') {
                p.push('\\');
            }
            p.push(ch);
        }
        p.push('%');
        Some(p)
    }

    fn page<T>(&self, mut rows: Vec<T>, id: impl Fn(&T) -> String) -> Found<T> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        Found {
            next_cursor: if more { rows.last().map(id) } else { None },
            items: rows,
        }
    }
}

/// Subscribers whose name or email matches.
pub fn subscribers(c: &mut AnyConnection, q: &Search) -> Result<Found<SubscriberRow>> {
    let mut query = sb::subscribers
        .select(SubscriberRow::as_select())
        .into_boxed();
    if let Some(p) = q.pattern() {
        query = query.filter(
            lower(sb::name)
                .like(p.clone())
                .escape('\\')
                .or(lower(sb::email.assume_not_null()).like(p).escape('\\')),
        );
    }
    if let Some(cur) = &q.cursor {
        query = query.filter(sb::id.gt(cur.clone()));
    }
    let rows = query.order(sb::id.asc()).limit(q.limit + 1).load(c)?;
    Ok(q.page(rows, |x| x.id.clone()))
}

/// Subscriptions whose subscriber's name or email matches, with the subscriber.
pub fn subscriptions(
    c: &mut AnyConnection,
    q: &Search,
) -> Result<Found<(Subscription, SubscriberRow)>> {
    let mut query = s::subscriptions
        .inner_join(sb::subscribers)
        .select((SubscriptionRow::as_select(), SubscriberRow::as_select()))
        .into_boxed();
    if let Some(p) = q.pattern() {
        query = query.filter(
            lower(sb::name)
                .like(p.clone())
                .escape('\\')
                .or(lower(sb::email.assume_not_null()).like(p).escape('\\')),
        );
    }
    if let Some(cur) = &q.cursor {
        query = query.filter(s::id.gt(cur.clone()));
    }
    let rows: Vec<(SubscriptionRow, SubscriberRow)> =
        query.order(s::id.asc()).limit(q.limit + 1).load(c)?;
    let rows = rows
        .into_iter()
        .map(|(s, owner)| (Subscription::from(s), owner))
        .collect();
    Ok(q.page(rows, |x: &(Subscription, SubscriberRow)| x.0.id.clone()))
}

/// Keys whose display prefix or bound instance URL matches, with their unreleased binding.
pub fn keys(c: &mut AnyConnection, q: &Search) -> Result<Found<(KeyRow, Option<RegistrationRow>)>> {
    let mut query = k::registration_keys
        .select(KeyRow::as_select())
        .into_boxed();
    if let Some(p) = q.pattern() {
        let bound = r::registrations
            .filter(r::released_at.is_null())
            .filter(
                lower(r::instance_url.assume_not_null())
                    .like(p.clone())
                    .escape('\\'),
            )
            .select(r::key_id);
        query = query.filter(
            lower(k::key_prefix)
                .like(p)
                .escape('\\')
                .or(k::id.eq_any(bound)),
        );
    }
    if let Some(cur) = &q.cursor {
        query = query.filter(k::id.gt(cur.clone()));
    }
    let rows: Vec<KeyRow> = query.order(k::id.asc()).limit(q.limit + 1).load(c)?;
    let ids: Vec<&str> = rows.iter().map(|x| x.id.as_str()).collect();
    let bindings: Vec<RegistrationRow> = r::registrations
        .filter(r::key_id.eq_any(&ids))
        .filter(r::released_at.is_null())
        .select(RegistrationRow::as_select())
        .load(c)?;
    let rows = rows
        .into_iter()
        .map(|key| {
            let b = bindings.iter().find(|b| b.key_id == key.id).cloned();
            (key, b)
        })
        .collect();
    Ok(q.page(rows, |x: &(KeyRow, Option<RegistrationRow>)| x.0.id.clone()))
}

/// Unreleased registrations whose instance URL or key prefix matches, with the key prefix.
pub fn registrations(
    c: &mut AnyConnection,
    q: &Search,
) -> Result<Found<(RegistrationRow, String)>> {
    let mut query = r::registrations
        .inner_join(k::registration_keys)
        .filter(r::released_at.is_null())
        .select((RegistrationRow::as_select(), k::key_prefix))
        .into_boxed();
    if let Some(p) = q.pattern() {
        query = query.filter(
            lower(r::instance_url.assume_not_null())
                .like(p.clone())
                .escape('\\')
                .or(lower(k::key_prefix).like(p).escape('\\')),
        );
    }
    if let Some(cur) = &q.cursor {
        query = query.filter(r::id.gt(cur.clone()));
    }
    let rows = query.order(r::id.asc()).limit(q.limit + 1).load(c)?;
    Ok(q.page(rows, |x| x.0.id.clone()))
}

/// Webhooks whose URL or description matches.
pub fn webhooks(c: &mut AnyConnection, q: &Search) -> Result<Found<super::webhooks::WebhookRow>> {
    use super::schema::webhooks::dsl as w;
    use super::webhooks::WebhookRow;
    let mut query = w::webhooks.select(WebhookRow::as_select()).into_boxed();
    if let Some(p) = q.pattern() {
        query = query.filter(
            lower(w::url)
                .like(p.clone())
                .escape('\\')
                .or(lower(w::description.assume_not_null()).like(p).escape('\\')),
        );
    }
    if let Some(cur) = &q.cursor {
        query = query.filter(w::id.gt(cur.clone()));
    }
    let rows = query.order(w::id.asc()).limit(q.limit + 1).load(c)?;
    Ok(q.page(rows, |x| x.id.clone()))
}
