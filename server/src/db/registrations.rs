//! Registrations (bindings): a key bound to one instance, by URL, UID or both.
//!
//! The unique indexes over unreleased rows decide races; a transaction that loses one is
//! retried so the loser reads the winner's row and answers exactly as a later request would
//! (`200` for the same instance, `409` otherwise), never `500`, never a second row.

use super::audit::{self, Actor};
use super::models::{KeyRow, NewAuditEvent, RegistrationRow, SubscriptionRow, new_id};
use super::schema::registrations::dsl as r;
use super::{
    AnyConnection, Touches, UniqueHit, keys, unique_violation, write_txn, write_txn_touching,
};
use crate::domain::status::{self, KEY_REVOKED};
use crate::http::dto::{ListQuery, Page, paginate, registration_view};
use crate::http::error::ApiError;
use actix_web::http::StatusCode;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use glpi_network_shared::wire::Registration;
use glpi_network_shared::{ErrorCode, InstanceUrl, RegistrationKey, ValidationStatus};

/// How stale `last_seen_at` may get before a validation refreshes it (so validations do not
/// write on every call).
pub const LAST_SEEN_GRANULARITY_SECS: i64 = 60;
const RACE_RETRIES: usize = 3;

/// A key, its subscription and (maybe) its binding: what statuses and tokens are made of.
#[derive(Debug, Clone)]
pub struct KeyState {
    pub key: KeyRow,
    pub subscription: SubscriptionRow,
    /// The subscriber's name.
    pub owner: String,
    pub registration: Option<RegistrationRow>,
}

/// The outcome of a registration.
#[derive(Debug, Clone)]
pub struct Bound {
    pub state: KeyState,
    pub registration: RegistrationRow,
    /// `true` for a new binding (`201`), `false` for the same one again (`200`).
    pub created: bool,
}

/// Checks an instance UID: GLPI sends 40 alphanumerics; accept 1..=128 of `[A-Za-z0-9_-]`.
pub fn parse_uid(raw: &str) -> Result<String, ApiError> {
    let uid = raw.trim();
    if uid.is_empty()
        || uid.len() > 128
        || !uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::bad_request(
            "instance_uid must be 1 to 128 characters of A-Z, a-z, 0-9, '-' or '_'",
        ));
    }
    Ok(uid.to_owned())
}

enum BindError {
    Api(ApiError),
    Race(UniqueHit),
}

impl From<diesel::result::Error> for BindError {
    fn from(e: diesel::result::Error) -> Self {
        match unique_violation(&e) {
            Some(hit) => BindError::Race(hit),
            None => BindError::Api(e.into()),
        }
    }
}

impl From<ApiError> for BindError {
    fn from(e: ApiError) -> Self {
        BindError::Api(e)
    }
}

fn race_error(hit: UniqueHit) -> ApiError {
    match hit {
        UniqueHit::RegistrationUrl => url_taken(),
        UniqueHit::RegistrationUid => uid_taken(),
        _ => key_bound(),
    }
}

fn key_bound() -> ApiError {
    ApiError::conflict(
        ErrorCode::KeyAlreadyBound,
        "this key is already bound to another instance",
    )
}
fn url_taken() -> ApiError {
    ApiError::conflict(
        ErrorCode::UrlAlreadyRegistered,
        "this instance URL is registered with another key",
    )
}
fn uid_taken() -> ApiError {
    ApiError::conflict(
        ErrorCode::UidAlreadyRegistered,
        "this instance UID is registered with another key",
    )
}

fn active_for_url(c: &mut AnyConnection, url: &str) -> QueryResult<Option<RegistrationRow>> {
    r::registrations
        .filter(r::instance_url.eq(url))
        .filter(r::released_at.is_null())
        .select(RegistrationRow::as_select())
        .first(c)
        .optional()
}
fn active_for_uid(c: &mut AnyConnection, uid: &str) -> QueryResult<Option<RegistrationRow>> {
    r::registrations
        .filter(r::instance_uid.eq(uid))
        .filter(r::released_at.is_null())
        .select(RegistrationRow::as_select())
        .first(c)
        .optional()
}

/// Loads a key by plaintext with its subscription, owner and binding (one statement);
/// `404 key_not_found` if unknown.
pub fn load_state(c: &mut AnyConnection, key: &RegistrationKey) -> Result<KeyState, ApiError> {
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
        .ok_or_else(ApiError::key_not_found)?;
    Ok(KeyState {
        key: key_row,
        subscription,
        owner,
        registration,
    })
}

/// Whether the binding's `last_seen_at` is old enough to be refreshed.
pub fn last_seen_due(reg: &RegistrationRow, now: NaiveDateTime) -> bool {
    now - reg.last_seen_at > Duration::seconds(LAST_SEEN_GRANULARITY_SECS)
}

/// Whether `state` is a usable key already bound to this very instance (every identifier
/// given matches the binding): the idempotent case, which needs no write transaction.
pub fn same_instance(
    state: &KeyState,
    url: Option<&InstanceUrl>,
    uid: Option<&str>,
    now: NaiveDateTime,
) -> bool {
    state.registration.as_ref().is_some_and(|mine| {
        state.key.status != KEY_REVOKED
            && !status::key_expired(&state.key, now)
            && url.is_none_or(|u| mine.instance_url.as_deref() == Some(u.as_str()))
            && uid.is_none_or(|i| mine.instance_uid.as_deref() == Some(i))
    })
}

/// Refreshes the binding's `last_seen_at` when it is due (at most once a minute per binding),
/// in the row and in `state`.
fn refresh_last_seen(
    c: &mut AnyConnection,
    state: &mut KeyState,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if let Some(reg) = state.registration.as_mut()
        && last_seen_due(reg, now)
    {
        diesel::update(r::registrations.find(&reg.id))
            .filter(r::last_seen_at.lt(now))
            .set(r::last_seen_at.eq(now))
            .execute(c)?;
        reg.last_seen_at = now;
    }
    Ok(())
}

fn event(
    actor: &Actor,
    action: &str,
    outcome: &str,
    now: NaiveDateTime,
    key: &RegistrationKey,
) -> NewAuditEvent {
    let mut ev = actor.event(action, outcome, now);
    ev.key_prefix = Some(key.display_prefix());
    ev
}

/// What was refused, for the audit trail.
struct Refusal<'a> {
    action: &'a str,
    key_id: Option<&'a str>,
    url: Option<&'a str>,
    uid: Option<&'a str>,
    outcome: &'a str,
}

/// Records a refused attempt outside the (rolled back) transaction. Best effort: a failure
/// to audit is logged, not answered.
fn record_refusal(
    c: &mut AnyConnection,
    actor: &Actor,
    key: &RegistrationKey,
    now: NaiveDateTime,
    r: Refusal<'_>,
) {
    let mut ev = event(actor, r.action, r.outcome, now, key);
    ev.key_id = r.key_id.map(str::to_owned);
    ev.instance_url = r.url.map(str::to_owned);
    ev.instance_uid = r.uid.map(str::to_owned);
    if let Err(e) = super::refusals::record(c, &ev) {
        tracing::error!(error = %e, "could not record an audit event");
    }
}

/// Binds `key` to the instance (URL, UID or both), or confirms the existing binding.
pub fn register(
    c: &mut AnyConnection,
    key: &RegistrationKey,
    url: Option<&InstanceUrl>,
    uid: Option<&str>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Bound, ApiError> {
    // Fast path: the same instance again (GLPI's /info on every page, a client's periodic
    // re-registration) needs no write transaction, so it does not queue behind SQLite's writer.
    if let Ok(mut state) = load_state(c, key)
        && same_instance(&state, url, uid, now)
    {
        refresh_last_seen(c, &mut state, now)?;
        let registration = state
            .registration
            .clone()
            .expect("same_instance has a binding");
        return Ok(Bound {
            state,
            registration,
            created: false,
        });
    }
    let hash = key.hash();
    let mut attempt = 0;
    let result = loop {
        match write_txn_touching(c, Touches::Key(&hash), |c| {
            bind_inner(c, key, url, uid, now, actor)
        }) {
            Ok(b) => break Ok(b),
            Err(BindError::Api(e)) => break Err(e),
            Err(BindError::Race(hit)) if attempt >= RACE_RETRIES => break Err(race_error(hit)),
            Err(BindError::Race(_)) => attempt += 1,
        }
    };
    if let Err(e) = &result {
        let key_id = keys::find_by_key(c, key).ok().flatten().map(|k| k.id);
        let refusal = Refusal {
            action: "registration.bind",
            key_id: key_id.as_deref(),
            url: url.map(InstanceUrl::as_str),
            uid,
            outcome: e.code().as_str(),
        };
        record_refusal(c, actor, key, now, refusal);
    }
    result
}

fn bind_inner(
    c: &mut AnyConnection,
    key: &RegistrationKey,
    url: Option<&InstanceUrl>,
    uid: Option<&str>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Bound, BindError> {
    let state = load_state(c, key)?;
    if state.key.status == KEY_REVOKED {
        return Err(ApiError::forbidden(
            ErrorCode::KeyRevoked,
            "this registration key was revoked",
        )
        .into());
    }
    if status::key_expired(&state.key, now) {
        return Err(ApiError::forbidden(
            ErrorCode::KeyExpired,
            "this registration key has expired",
        )
        .into());
    }
    let url = url.map(InstanceUrl::as_str);
    let mut ev = event(actor, "registration.bind", "ok", now, key);
    ev.key_id = Some(state.key.id.clone());
    ev.instance_url = url.map(str::to_owned);
    ev.instance_uid = uid.map(str::to_owned);

    if let Some(mut mine) = state.registration.clone() {
        if url
            .zip(mine.instance_url.as_deref())
            .is_some_and(|(a, b)| a != b)
            || uid
                .zip(mine.instance_uid.as_deref())
                .is_some_and(|(a, b)| a != b)
        {
            return Err(key_bound().into());
        }
        let attach_url = url.filter(|_| mine.instance_url.is_none());
        let attach_uid = uid.filter(|_| mine.instance_uid.is_none());
        if let Some(u) = attach_url
            && active_for_url(c, u)?.is_some()
        {
            return Err(url_taken().into());
        }
        if let Some(i) = attach_uid
            && active_for_uid(c, i)?.is_some()
        {
            return Err(uid_taken().into());
        }
        let mut state = state;
        if attach_url.is_some() || attach_uid.is_some() {
            mine.instance_url = mine.instance_url.or(attach_url.map(str::to_owned));
            mine.instance_uid = mine.instance_uid.or(attach_uid.map(str::to_owned));
            mine.last_seen_at = now;
            diesel::update(r::registrations.find(&mine.id))
                .set((
                    r::instance_url.eq(mine.instance_url.as_deref()),
                    r::instance_uid.eq(mine.instance_uid.as_deref()),
                    r::last_seen_at.eq(now),
                ))
                .execute(c)?;
            let ver = keys::bump_ver(c, &state.key.id)?;
            ev.action = "registration.attach".into();
            audit::record(c, &ev)?;
            state = with_binding(c, key, state, ver, mine.clone())?;
        } else {
            state.registration = Some(mine);
            refresh_last_seen(c, &mut state, now)?;
        }
        let registration = state
            .registration
            .clone()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("binding vanished")))?;
        return Ok(Bound {
            state,
            registration,
            created: false,
        });
    }

    // Under READ COMMITTED each statement sees the latest commits: a row found here that
    // belongs to this very key was committed by a concurrent request after `load_state` ran.
    // That is a race, retried so this request answers as the idempotent case does.
    let ours = |r: &RegistrationRow| r.key_id == state.key.id;
    if let Some(u) = url
        && let Some(found) = active_for_url(c, u)?
    {
        return Err(if ours(&found) {
            BindError::Race(UniqueHit::RegistrationKey)
        } else {
            url_taken().into()
        });
    }
    if let Some(i) = uid
        && let Some(found) = active_for_uid(c, i)?
    {
        return Err(if ours(&found) {
            BindError::Race(UniqueHit::RegistrationKey)
        } else {
            uid_taken().into()
        });
    }
    let row = RegistrationRow {
        id: new_id(),
        key_id: state.key.id.clone(),
        instance_url: url.map(str::to_owned),
        instance_uid: uid.map(str::to_owned),
        bound_at: now,
        last_seen_at: now,
        released_at: None,
    };
    diesel::insert_into(r::registrations)
        .values(&row)
        .execute(c)?;
    let ver = keys::bump_ver(c, &state.key.id)?;
    audit::record(c, &ev)?;
    let state = with_binding(c, key, state, ver, row.clone())?;
    Ok(Bound {
        state,
        registration: row,
        created: true,
    })
}

/// The state as this transaction leaves it: `state` with its new binding row and `ver`, without
/// reading it again, unless `ver` moved by more than this transaction's bump (a concurrent
/// change to the key or its subscription committed meanwhile, possible under PostgreSQL's READ
/// COMMITTED): then it is read again.
fn with_binding(
    c: &mut AnyConnection,
    key: &RegistrationKey,
    mut state: KeyState,
    ver: i64,
    binding: RegistrationRow,
) -> Result<KeyState, ApiError> {
    if ver != state.key.ver + 1 {
        return load_state(c, key);
    }
    state.key.ver = ver;
    state.registration = Some(binding);
    Ok(state)
}

/// The outcome of a validation.
#[derive(Debug, Clone)]
pub struct Validated {
    pub state: KeyState,
    pub status: ValidationStatus,
}

/// Computes the key's status for `url` (no write unless `last_seen_at` is stale, or the
/// validation is refused and audited).
pub fn validate(
    c: &mut AnyConnection,
    key: &RegistrationKey,
    url: &InstanceUrl,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Validated, ApiError> {
    let mut state = match load_state(c, key) {
        Ok(s) => s,
        Err(e) => {
            let refusal = Refusal {
                action: "validation",
                key_id: None,
                url: Some(url.as_str()),
                uid: None,
                outcome: e.code().as_str(),
            };
            record_refusal(c, actor, key, now, refusal);
            return Err(e);
        }
    };
    let status = status::native_status(
        &state.key,
        &state.subscription,
        state.registration.as_ref(),
        url.as_str(),
        now,
    );
    if status.is_valid() {
        refresh_last_seen(c, &mut state, now)?;
    }
    if !status.is_valid() {
        let refusal = Refusal {
            action: "validation",
            key_id: Some(&state.key.id),
            url: Some(url.as_str()),
            uid: None,
            outcome: status.as_str(),
        };
        record_refusal(c, actor, key, now, refusal);
    }
    Ok(Validated { state, status })
}

/// The instance releases its own binding (`DELETE /v1/registrations`).
pub fn release_by_key(
    c: &mut AnyConnection,
    key: &RegistrationKey,
    url: &InstanceUrl,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<RegistrationRow, ApiError> {
    write_txn_touching(c, Touches::Key(&key.hash()), |c| {
        let state = load_state(c, key)?;
        let reg = state
            .registration
            .filter(|r| r.instance_url.as_deref() == Some(url.as_str()))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    ErrorCode::NotFound,
                    "this key is not bound to this instance URL",
                )
            })?;
        release_row(c, &reg, &state.key, now, actor)
    })
}

fn release_row(
    c: &mut AnyConnection,
    reg: &RegistrationRow,
    key: &KeyRow,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<RegistrationRow, ApiError> {
    diesel::update(r::registrations.find(&reg.id))
        .set(r::released_at.eq(Some(now)))
        .execute(c)?;
    keys::bump_ver(c, &key.id)?;
    let mut ev = actor.event("registration.release", "ok", now);
    ev.key_id = Some(key.id.clone());
    ev.key_prefix = Some(key.key_prefix.clone());
    ev.instance_url = reg.instance_url.clone();
    ev.instance_uid = reg.instance_uid.clone();
    audit::record(c, &ev)?;
    get(c, &reg.id)
}

/// An admin releases a registration by id (idempotent).
pub fn release_by_id(
    c: &mut AnyConnection,
    id: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<RegistrationRow, ApiError> {
    write_txn(c, |c| {
        let reg = get(c, id)?;
        if reg.released_at.is_some() {
            return Ok(reg);
        }
        let key = keys::get(c, &reg.key_id)?;
        release_row(c, &reg, &key, now, actor)
    })
}

pub fn get(c: &mut AnyConnection, id: &str) -> Result<RegistrationRow, ApiError> {
    r::registrations
        .find(id)
        .select(RegistrationRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| ApiError::not_found(format!("no registration {id}")))
}

/// A registration with its key's display prefix, for answers.
pub fn view(c: &mut AnyConnection, row: RegistrationRow) -> Result<Registration, ApiError> {
    let prefix = keys::get(c, &row.key_id)?.key_prefix;
    Ok(registration_view(row, prefix))
}

pub fn list(c: &mut AnyConnection, q: &ListQuery) -> Result<Page<Registration>, ApiError> {
    use super::schema::registration_keys::dsl as k;
    let limit = q.limit();
    let mut query = r::registrations
        .inner_join(k::registration_keys)
        .select((RegistrationRow::as_select(), k::key_prefix))
        .into_boxed();
    if let Some(cur) = &q.cursor {
        query = query.filter(r::id.gt(cur.clone()));
    }
    if let Some(v) = &q.key_id {
        query = query.filter(r::key_id.eq(v.clone()));
    }
    if !q.include_released.unwrap_or(false) {
        query = query.filter(r::released_at.is_null());
    }
    let rows: Vec<(RegistrationRow, String)> = query.order(r::id.asc()).limit(limit + 1).load(c)?;
    Ok(paginate(
        rows,
        limit,
        |(r, _)| r.id.clone(),
        |(r, p)| registration_view(r, p),
    ))
}
