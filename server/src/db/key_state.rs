//! A key's state (the key, its subscription, its owner and its binding) read in one statement,
//! and the refresh of a due `last_seen_at` a read of it records.

use super::models::{KeyRow, RegistrationRow, SubscriptionRow};
use super::schema::registrations::dsl as r;
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

/// [`load_state`] by the key's hash (`RegistrationKey::hash`), for a caller that has it already.
pub fn load_state_by_hash(c: &mut AnyConnection, hash: &str) -> Result<KeyState> {
    use super::schema::{
        registration_keys::dsl as k, subscribers::dsl as o, subscriptions::dsl as s,
    };
    macro_rules! state_query {
        () => {
            k::registration_keys
                .inner_join(s::subscriptions.inner_join(o::subscribers))
                .left_join(r::registrations.on(r::key_id.eq(k::id).and(r::released_at.is_null())))
                .filter(k::key_hash.eq(hash))
                .select((
                    KeyRow::as_select(),
                    SubscriptionRow::as_select(),
                    o::name,
                    Option::<RegistrationRow>::as_select(),
                ))
        };
    }
    let row = match c {
        AnyConnection::Sqlite(c) => state_query!().first::<StateRow>(c),
        AnyConnection::Postgresql(c) => state_query!().first::<StateRow>(c),
    };
    let (key_row, subscription, owner, registration) = row.optional()?.ok_or(Error::UnknownKey)?;
    Ok(KeyState {
        key: key_row.into(),
        subscription: subscription.into(),
        owner,
        registration: registration.map(Into::into),
    })
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
