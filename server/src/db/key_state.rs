//! A key's state (the key, its subscription, its owner and its binding) read in one statement,
//! and the refresh of a due `last_seen_at` a read of it records.

use super::models::{KeyRow, RegistrationRow, SubscriptionRow};
use super::schema::{
    registration_keys::dsl as k, registrations::dsl as r, subscribers::dsl as o,
    subscriptions::dsl as s,
};
use super::{AnyConnection, Error, Result, Transact};
use crate::domain::binding::KeyState;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use glpi_network_shared::RegistrationKey;

/// The row [`load_state`] reads.
type StateRow = (KeyRow, SubscriptionRow, String, Option<RegistrationRow>);

/// Loads a key by plaintext with its subscription, owner and binding (one statement);
/// [`Error::UnknownKey`] if unknown.
///
/// The statement runs on the backend's own connection rather than through [`AnyConnection`]:
/// there its type identifies it, so the prepared statement is found in the connection's cache
/// without building its SQL text again (through the multi-backend wrapper the SQL, about 150
/// quoted identifiers, was built on every call: a third of a cache-off request).
pub fn load_state(c: &mut AnyConnection, key: &RegistrationKey) -> Result<KeyState> {
    load_state_by_hash(c, &key.hash())
}

/// The key-state statement: `registration_keys` joined to its subscription, its owner's name
/// and its live binding, filtered by `$by_hash`.
macro_rules! state_query {
    ($by_hash:expr) => {{
        k::registration_keys
            .inner_join(s::subscriptions.inner_join(o::subscribers))
            .left_join(r::registrations.on(r::key_id.eq(k::id).and(r::released_at.is_null())))
            .filter($by_hash)
            .select((
                KeyRow::as_select(),
                SubscriptionRow::as_select(),
                o::name,
                Option::<RegistrationRow>::as_select(),
            ))
    }};
}

/// [`load_state`] by the key's hash (`RegistrationKey::hash`), for a caller that has it already.
pub fn load_state_by_hash(c: &mut AnyConnection, hash: &str) -> Result<KeyState> {
    let row = match c {
        AnyConnection::Sqlite(c) => state_query!(ByHashPrefix(hash)).first::<StateRow>(c),
        AnyConnection::Postgresql(c) => state_query!(k::key_hash.eq(hash)).first::<StateRow>(c),
    };
    row.optional()?.map(state_of).ok_or(Error::UnknownKey)
}

/// The states of the keys whose hashes are `hashes`, in one statement on PostgreSQL
/// (`key_hash = ANY($1)`, prepared once per connection); a hash no key has is left out.
pub fn load_states_by_hashes(
    c: &mut diesel::PgConnection,
    hashes: &[&str],
) -> QueryResult<Vec<KeyState>> {
    let rows = state_query!(k::key_hash.eq_any(hashes)).load::<StateRow>(c)?;
    Ok(rows.into_iter().map(state_of).collect())
}

fn state_of((key_row, subscription, owner, registration): StateRow) -> KeyState {
    KeyState {
        key: key_row.into(),
        subscription: subscription.into(),
        owner,
        registration: registration.map(Into::into),
    }
}

/// The first 16 hex digits of a key hash: what SQLite's `registration_keys_hash_prefix` indexes.
const PREFIX_LEN: usize = 16;

/// `substr(key_hash, 1, 16) = $prefix AND +key_hash = $hash` on `registration_keys` (SQLite):
/// the key is found through the small `registration_keys_hash_prefix` index (migration
/// `2026-12-07-000001_key_hash_prefix`) and its whole hash compared on the row. The unary `+`
/// keeps SQLite from choosing the UNIQUE index on the whole hash, which at 1,000,000 keys is
/// four levels deep and too large for a connection's page cache. The expression is written
/// as the index's, and the fragment has a static query id, so the statement is still prepared
/// once per connection.
#[derive(Debug, Clone, Copy)]
struct ByHashPrefix<'a>(&'a str);

impl diesel::Expression for ByHashPrefix<'_> {
    type SqlType = diesel::sql_types::Bool;
}

impl<QS> diesel::AppearsOnTable<QS> for ByHashPrefix<'_> where
    super::schema::registration_keys::key_hash: diesel::AppearsOnTable<QS>
{
}

impl<GB> diesel::expression::ValidGrouping<GB> for ByHashPrefix<'_> {
    type IsAggregate = diesel::expression::is_aggregate::No;
}

impl diesel::query_builder::QueryId for ByHashPrefix<'_> {
    type QueryId = ByHashPrefix<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for ByHashPrefix<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        let prefix = self.0.get(..PREFIX_LEN).unwrap_or(self.0);
        out.push_sql("substr(\"registration_keys\".\"key_hash\", 1, 16) = ");
        out.push_bind_param::<diesel::sql_types::Text, _>(prefix)?;
        out.push_sql(" AND +\"registration_keys\".\"key_hash\" = ");
        out.push_bind_param::<diesel::sql_types::Text, _>(self.0)?;
        Ok(())
    }
}

/// Refreshes the binding's `last_seen_at` when it is due (at most once a minute per binding),
/// in `state` and through `c`: in the row inside a write transaction, else recorded and written
/// out in a batch (no write on a read, see [`super::last_seen`]).
pub(crate) fn refresh_last_seen(
    c: &mut impl Transact,
    state: &mut KeyState,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if let Some(reg) = state.registration.as_mut()
        && reg.last_seen_due(now)
    {
        c.saw(&reg.id, now)?;
        reg.last_seen_at = now;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::db::schema::registration_keys::dsl as k;

    /// SQLite finds a key through the hash-prefix index, not through the UNIQUE index on the
    /// whole hash: the fragment is written as the index's expression, and the `+` holds.
    #[test]
    fn sqlite_reads_a_key_through_the_hash_prefix_index() {
        let db = Db::open("sqlite::memory:", 1).unwrap();
        let mut conn = db.get().unwrap();
        let AnyConnection::Sqlite(c) = &mut *conn else {
            panic!("an SQLite connection")
        };
        let hash = RegistrationKey::parse("GN-PREFIX-PLAN-KEY").unwrap().hash();
        let query = k::registration_keys
            .filter(ByHashPrefix(&hash))
            .select(k::id);
        let (sql, plan) = crate::db::sqlite_plan(c, &query, &[&hash[..PREFIX_LEN], &hash]);
        assert!(
            sql.contains("substr(\"registration_keys\".\"key_hash\", 1, 16) = ?"),
            "{sql}"
        );
        assert!(
            plan.iter()
                .any(|d| d.contains("USING INDEX registration_keys_hash_prefix")),
            "{plan:?}"
        );
    }

    /// Keys whose hashes share their first 16 digits are still told apart by the whole hash.
    #[test]
    fn a_shared_prefix_finds_only_the_key_with_the_whole_hash() {
        use diesel::connection::SimpleConnection;
        let db = Db::open("sqlite::memory:", 1).unwrap();
        let mut conn = db.get().unwrap();
        let AnyConnection::Sqlite(c) = &mut *conn else {
            panic!("an SQLite connection")
        };
        let prefix = "0123456789abcdef";
        let (a, b) = (
            format!("{prefix}{}", "a".repeat(48)),
            format!("{prefix}{}", "b".repeat(48)),
        );
        c.batch_execute(&format!(
            "INSERT INTO subscribers (id, name, created_at) VALUES ('o', 'O', '2026-01-01 00:00:00');
             INSERT INTO subscriptions (id, subscriber_id, offer, begin_date, status, trial, created_at, updated_at)
                 VALUES ('s', 'o', 'basic', '2026-01-01', 'active', 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00');
             INSERT INTO registration_keys (id, subscription_id, key_hash, key_prefix, status, created_at)
                 VALUES ('ka', 's', '{a}', 'GN-A', 'active', '2026-01-01 00:00:00'),
                        ('kb', 's', '{b}', 'GN-B', 'active', '2026-01-01 00:00:00');"
        ))
        .unwrap();
        let mut found = |h: &str| {
            k::registration_keys
                .filter(ByHashPrefix(h))
                .select(k::id)
                .load::<String>(c)
                .unwrap()
        };
        assert_eq!(found(&a), vec!["ka".to_owned()]);
        assert_eq!(found(&b), vec!["kb".to_owned()]);
        assert!(found(&format!("{prefix}{}", "c".repeat(48))).is_empty());
        let state = load_state_by_hash(&mut conn, &b).unwrap();
        assert_eq!(state.key.id, "kb");
        assert!(matches!(
            load_state_by_hash(&mut conn, prefix),
            Err(Error::UnknownKey)
        ));
    }
}
