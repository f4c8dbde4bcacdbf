//! Pages of a list: the query (`?limit=&cursor=` and filters) and the page with its cursor.

use serde::{Deserialize, Serialize};

/// `{"items": [...], "next_cursor": ...}`
#[derive(Debug, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `?limit=&cursor=` plus the filters some lists take. Not read from a query string directly:
/// each admin list reads its own parameters (`http::query`, which refuses unknown ones) into
/// this.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    /// 1 to 500 (default 50); another value is refused (`400`) when the query is read.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub subscription_id: Option<String>,
    pub subscriber_id: Option<String>,
    pub status: Option<String>,
    pub key_id: Option<String>,
    /// Keys: the display prefix starts with it (compared case-insensitively).
    pub prefix: Option<String>,
    /// Licenses: the plugin's key.
    pub plugin: Option<String>,
    /// Registrations: include released ones (default false).
    pub include_released: Option<bool>,
}

/// The largest page.
pub const MAX_LIMIT: i64 = 500;

/// A page of a short list held in memory (offers, signing keys), in its given order; the cursor
/// is the id of the last item of the previous page.
pub fn page_in_memory<T>(
    items: Vec<T>,
    q: &ListQuery,
    id_of: impl Fn(&T) -> String,
) -> crate::db::Result<Page<T>> {
    let start = match &q.cursor {
        None => 0,
        Some(c) => {
            items
                .iter()
                .position(|i| &id_of(i) == c)
                .ok_or_else(|| crate::db::Error::invalid("invalid cursor"))?
                + 1
        }
    };
    let rows: Vec<T> = items
        .into_iter()
        .skip(start)
        .take(q.limit() as usize + 1)
        .collect();
    Ok(paginate(rows, q.limit(), &id_of, |t| t))
}

impl ListQuery {
    /// Refuses a filter that cannot match as asked (each named): a `subscriber_id` or
    /// `subscription_id` that names nothing, a `status` not in `statuses`.
    pub fn check(
        &self,
        conn: &mut crate::db::AnyConnection,
        statuses: &[&str],
    ) -> crate::db::Result<()> {
        use crate::db::Error;
        if let Some(v) = &self.subscriber_id
            && crate::db::subscribers::find(conn, v)?.is_none()
        {
            return Err(Error::invalid(format!("subscriber_id: no subscriber {v}")));
        }
        if let Some(v) = &self.subscription_id
            && crate::db::subscriptions::find(conn, v)?.is_none()
        {
            return Err(Error::invalid(format!(
                "subscription_id: no subscription {v}"
            )));
        }
        if let Some(v) = &self.status
            && !statuses.contains(&v.as_str())
        {
            return Err(Error::invalid(format!(
                "status: {v:?} is not one of {}",
                statuses.join(", ")
            )));
        }
        Ok(())
    }

    /// The page size: default 50, clamped to 1..=500.
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(50).clamp(1, 500)
    }
}

/// Cuts a fetched `limit + 1` rows into a page and its next cursor.
pub fn paginate<R, T>(
    mut rows: Vec<R>,
    limit: i64,
    cursor_of: impl Fn(&R) -> String,
    view: impl Fn(R) -> T,
) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(&cursor_of)
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(view).collect(),
        next_cursor,
    }
}

impl<T> Page<T> {
    /// The same page with each item turned into another shape.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}
