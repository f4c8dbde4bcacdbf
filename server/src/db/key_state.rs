//! A key's state (the key, its subscription, its owner and its binding) read in one statement,
//! and the one write a read of it may make (a due `last_seen_at`).

use super::models::{KeyRow, RegistrationRow, SubscriptionRow};
use super::schema::registrations::dsl as r;
use super::{AnyConnection, Error, Result};
use crate::domain::binding::KeyState;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use glpi_network_shared::RegistrationKey;

/// Loads a key by plaintext with its subscription, owner and binding (one statement);
/// [`Error::UnknownKey`] if unknown.
pub fn load_state(c: &mut AnyConnection, key: &RegistrationKey) -> Result<KeyState> {
    use super::schema::{
        registration_keys::dsl as k, subscribers::dsl as o, subscriptions::dsl as s,
    };
    let (key_row, subscription, owner, registration) = k::registration_keys
        .inner_join(s::subscriptions.inner_join(o::subscribers))
        .left_join(r::registrations.on(r::key_id.eq(k::id).and(r::released_at.is_null())))
        .filter(k::key_hash.eq(key.hash()))
        .select((
            KeyRow::as_select(),
            SubscriptionRow::as_select(),
            o::name,
            Option::<RegistrationRow>::as_select(),
        ))
        .first::<(KeyRow, SubscriptionRow, String, Option<RegistrationRow>)>(c)
        .optional()?
        .ok_or(Error::UnknownKey)?;
    Ok(KeyState {
        key: key_row.into(),
        subscription: subscription.into(),
        owner,
        registration: registration.map(Into::into),
    })
}

/// Refreshes the binding's `last_seen_at` when it is due (at most once a minute per binding),
/// in the row and in `state`.
pub(crate) fn refresh_last_seen(
    c: &mut AnyConnection,
    state: &mut KeyState,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if let Some(reg) = state.registration.as_mut()
        && reg.last_seen_due(now)
    {
        diesel::update(r::registrations.find(&reg.id))
            .filter(r::last_seen_at.lt(now))
            .set(r::last_seen_at.eq(now))
            .execute(c)?;
        reg.last_seen_at = now;
    }
    Ok(())
}
