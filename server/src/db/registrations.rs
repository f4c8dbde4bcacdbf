//! Registrations (bindings): a key bound to one instance, by URL, UID or both.
//!
//! `register` reads as load -> plan (the domain's [`plan_bind`]) -> apply -> retry on a lost
//! race: the unique indexes over unreleased rows decide races, and a transaction that loses one
//! is retried so the loser reads the winner's row and answers exactly as a later request would
//! (the same instance again, or a refusal), never a failure, never a second row.

use super::audit::Actor;
use super::key_state::{load_state, refresh_last_seen};
use super::models::{NewAuditEvent, RegistrationRow, new_id};
use super::page::{ListQuery, Page, paginate};
use super::schema::registrations::dsl as r;
use super::{
    AnyConnection, Error, Result, Touches, Transact, Txn, UniqueHit, keys, unique_violation,
};
use crate::domain::binding::{
    BindPlan, BindRefusal, Binding, KeyState, Taken, check_holders, plan_bind,
};
use crate::domain::key::Key;
use crate::domain::views::registration_view;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use glpi_network_shared::{InstanceUrl, RegistrationKey, ValidationStatus};

pub use crate::domain::binding::LAST_SEEN_GRANULARITY_SECS;

const RACE_RETRIES: usize = 3;

/// The outcome of a registration.
#[derive(Debug, Clone)]
pub struct Bound {
    pub state: KeyState,
    pub registration: Binding,
    /// `true` for a new binding, `false` for the same one again (or one that gained its URL
    /// or UID).
    pub created: bool,
}

/// Why one attempt at a bind did not bind.
enum Attempt {
    Failed(Error),
    /// A unique index (or a row of this very key) shows a concurrent bind committed first.
    Race(UniqueHit),
}

impl From<diesel::result::Error> for Attempt {
    fn from(e: diesel::result::Error) -> Self {
        match unique_violation(&e) {
            Some(hit) => Attempt::Race(hit),
            None => Attempt::Failed(e.into()),
        }
    }
}

impl From<Error> for Attempt {
    fn from(e: Error) -> Self {
        Attempt::Failed(e)
    }
}

impl From<BindRefusal> for Attempt {
    fn from(e: BindRefusal) -> Self {
        Attempt::Failed(e.into())
    }
}

/// The refusal a race still lost after the retries answers.
fn race_refusal(hit: UniqueHit) -> BindRefusal {
    match hit {
        UniqueHit::RegistrationUrl => BindRefusal::UrlTaken,
        UniqueHit::RegistrationUid => BindRefusal::UidTaken,
        _ => BindRefusal::KeyBound,
    }
}

/// The key id of the unreleased binding that holds this URL or UID.
fn holder(c: &mut AnyConnection, url: Option<&str>, uid: Option<&str>) -> Result<Option<String>> {
    let mut q = r::registrations
        .filter(r::released_at.is_null())
        .select(r::key_id)
        .into_boxed();
    match (url, uid) {
        (Some(u), _) => q = q.filter(r::instance_url.eq(u.to_owned())),
        (None, Some(i)) => q = q.filter(r::instance_uid.eq(i.to_owned())),
        (None, None) => return Ok(None),
    }
    Ok(q.first(c).optional()?)
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
    c: &mut impl Transact,
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

/// The audit outcome of a failed operation: its refusal's code, or `internal`.
fn outcome_of(e: &Error) -> &'static str {
    e.refusal_code()
        .unwrap_or(glpi_network_shared::ErrorCode::Internal)
        .as_str()
}

/// Binds `key` to the instance (URL, UID or both), or confirms the existing binding.
pub fn register(
    c: &mut impl Transact,
    key: &RegistrationKey,
    url: Option<&InstanceUrl>,
    uid: Option<&str>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Bound> {
    let url = url.map(InstanceUrl::as_str);
    // Fast path: the same instance again (GLPI's /info on every page, a client's periodic
    // re-registration) needs no write transaction, so it does not queue behind SQLite's writer.
    if let Ok(mut state) = load_state(c, key)
        && plan_bind(&state, url, uid, now) == Ok(BindPlan::Same)
    {
        refresh_last_seen(c, &mut state, now)?;
        return Ok(bound(state, false));
    }
    let result = bind_with_retries(c, key, url, uid, now, actor);
    if let Err(e) = &result {
        let key_id = keys::find_by_key(c, key).ok().flatten().map(|k| k.id);
        let refusal = Refusal {
            action: "registration.bind",
            key_id: key_id.as_deref(),
            url,
            uid,
            outcome: outcome_of(e),
        };
        record_refusal(c, actor, key, now, refusal);
    }
    result
}

/// Binds in a write transaction, again (up to [`RACE_RETRIES`] times) when a concurrent bind
/// won a race, so this one answers from the winner's row.
fn bind_with_retries(
    c: &mut impl Transact,
    key: &RegistrationKey,
    url: Option<&str>,
    uid: Option<&str>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Bound> {
    let hash = key.hash();
    let mut attempt = 0;
    loop {
        match c.write(Touches::Key(&hash), |tx| {
            bind(tx, key, url, uid, now, actor)
        }) {
            Ok(b) => return Ok(b),
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Race(hit)) if attempt >= RACE_RETRIES => {
                return Err(race_refusal(hit).into());
            }
            Err(Attempt::Race(_)) => attempt += 1,
        }
    }
}

/// One bind inside the caller's write transaction: load, plan, check who holds what the plan
/// takes, apply.
fn bind(
    c: &mut Txn<'_>,
    key: &RegistrationKey,
    url: Option<&str>,
    uid: Option<&str>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Bound, Attempt> {
    let mut state = load_state(c, key)?;
    let plan = plan_bind(&state, url, uid, now)?;
    check_taken(c, plan, &state.key.id, url, uid)?;
    crate::domain::binding::admit(plan, &state).map_err(|r| Attempt::from(Error::from(r)))?;
    let mut ev = event(actor, "registration.bind", "ok", now, key);
    ev.key_id = Some(state.key.id.clone());
    ev.instance_url = url.map(str::to_owned);
    ev.instance_uid = uid.map(str::to_owned);
    match plan {
        BindPlan::Same => {
            refresh_last_seen(c, &mut state, now)?;
            Ok(bound(state, false))
        }
        BindPlan::Attach { url, uid } => {
            ev.action = "registration.attach".into();
            let binding = attach(c, &state, url, uid, now)?;
            let state = apply(c, key, state, binding, &ev)?;
            Ok(bound(state, false))
        }
        BindPlan::New => {
            let binding = Binding {
                id: new_id(),
                key_id: state.key.id.clone(),
                instance_url: url.map(str::to_owned),
                instance_uid: uid.map(str::to_owned),
                bound_at: now,
                last_seen_at: now,
                released_at: None,
            };
            diesel::insert_into(r::registrations)
                .values(&RegistrationRow::from(&binding))
                .execute(c.conn())?;
            let view = registration_view(binding.clone(), state.key.key_prefix.clone());
            c.emit("registration.created", &view, now);
            let state = apply(c, key, state, binding, &ev)?;
            Ok(bound(state, true))
        }
    }
}

/// Checks that no other key holds what the plan takes. Under READ COMMITTED each statement
/// sees the latest commits: a row of this very key found here was committed by a concurrent
/// request after `load_state` ran (a race).
fn check_taken(
    c: &mut AnyConnection,
    plan: BindPlan<'_>,
    key_id: &str,
    url: Option<&str>,
    uid: Option<&str>,
) -> Result<(), Attempt> {
    let (take_url, take_uid) = match plan {
        BindPlan::Same => (None, None),
        BindPlan::Attach { url, uid } => (url, uid),
        BindPlan::New => (url, uid),
    };
    let url_holder = holder(c, take_url, None)?;
    let uid_holder = holder(c, None, take_uid)?;
    match check_holders(plan, key_id, url_holder.as_deref(), uid_holder.as_deref()) {
        Ok(()) => Ok(()),
        Err(Taken::Refused(refusal)) => Err(Error::from(refusal).into()),
        Err(Taken::Race) => Err(Attempt::Race(UniqueHit::RegistrationKey)),
    }
}

fn bound(state: KeyState, created: bool) -> Bound {
    let registration = state
        .registration
        .clone()
        .expect("a bound state has a binding");
    Bound {
        state,
        registration,
        created,
    }
}

/// Gives the binding its URL and/or UID; returns the binding as it now is.
fn attach(
    c: &mut AnyConnection,
    state: &KeyState,
    url: Option<&str>,
    uid: Option<&str>,
    now: NaiveDateTime,
) -> Result<Binding, Attempt> {
    let mut mine = state
        .registration
        .clone()
        .ok_or_else(|| Error::Other(anyhow::anyhow!("binding vanished")))?;
    mine.instance_url = mine.instance_url.or(url.map(str::to_owned));
    mine.instance_uid = mine.instance_uid.or(uid.map(str::to_owned));
    mine.last_seen_at = now;
    diesel::update(r::registrations.find(&mine.id))
        .set((
            r::instance_url.eq(mine.instance_url.as_deref()),
            r::instance_uid.eq(mine.instance_uid.as_deref()),
            r::last_seen_at.eq(now),
        ))
        .execute(c)?;
    Ok(mine)
}

/// After a bind wrote `binding`: bumps the key's `ver`, records the event and returns the state
/// as this transaction leaves it, without reading it again, unless `ver` moved by more than
/// this bump (a concurrent change to the key or its subscription committed meanwhile, possible
/// under PostgreSQL's READ COMMITTED): then it is read again.
fn apply(
    c: &mut Txn<'_>,
    key: &RegistrationKey,
    mut state: KeyState,
    binding: Binding,
    ev: &NewAuditEvent,
) -> Result<KeyState, Attempt> {
    let ver = keys::bump_ver(c, &state.key.id)?;
    c.audit(ev.clone());
    if ver != state.key.ver + 1 {
        return Ok(load_state(c, key)?);
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
pub fn validate<C: Transact>(
    c: &mut C,
    key: &RegistrationKey,
    url: &InstanceUrl,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Validated> {
    let refused = |c: &mut C, key_id: Option<&str>, outcome: &str| {
        let refusal = Refusal {
            action: "validation",
            key_id,
            url: Some(url.as_str()),
            uid: None,
            outcome,
        };
        record_refusal(c, actor, key, now, refusal);
    };
    let mut state = match load_state(c, key) {
        Ok(s) => s,
        Err(e) => {
            refused(c, None, outcome_of(&e));
            return Err(e);
        }
    };
    let status = state.status_for(url.as_str(), now);
    if status.is_valid() {
        refresh_last_seen(c, &mut state, now)?;
    } else {
        refused(c, Some(&state.key.id), status.as_str());
    }
    Ok(Validated { state, status })
}

/// The instance releases its own binding (`DELETE /v1/registrations`).
pub fn release_by_key(
    c: &mut impl Transact,
    key: &RegistrationKey,
    url: &InstanceUrl,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Binding> {
    c.write(Touches::Key(&key.hash()), |c| {
        let state = load_state(c, key)?;
        let reg = state
            .registration
            .filter(|r| r.instance_url.as_deref() == Some(url.as_str()))
            .ok_or_else(|| Error::NotFound("this key is not bound to this instance URL".into()))?;
        release_row(c, &reg, &state.key, now, actor)
    })
}

fn release_row(
    c: &mut Txn<'_>,
    reg: &Binding,
    key: &Key,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Binding> {
    diesel::update(r::registrations.find(&reg.id))
        .set(r::released_at.eq(Some(now)))
        .execute(c.conn())?;
    keys::bump_ver(c, &key.id)?;
    let mut ev = actor.event("registration.release", "ok", now);
    ev.key_id = Some(key.id.clone());
    ev.key_prefix = Some(key.key_prefix.clone());
    ev.instance_url = reg.instance_url.clone();
    ev.instance_uid = reg.instance_uid.clone();
    c.audit(ev);
    let released = get(c, &reg.id)?;
    let view = registration_view(released.clone(), key.key_prefix.clone());
    c.emit("registration.released", &view, now);
    Ok(released)
}

/// An admin releases a registration by id (idempotent).
pub fn release_by_id(
    c: &mut impl Transact,
    id: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Binding> {
    c.write(Touches::Anything, |c| {
        let reg = get(c, id)?;
        if reg.released_at.is_some() {
            return Ok(reg);
        }
        let key = keys::get(c, &reg.key_id)?;
        release_row(c, &reg, &key, now, actor)
    })
}

pub fn get(c: &mut AnyConnection, id: &str) -> Result<Binding> {
    r::registrations
        .find(id)
        .select(RegistrationRow::as_select())
        .first(c)
        .optional()?
        .map(Binding::from)
        .ok_or_else(|| Error::NotFound(format!("no registration {id}")))
}

/// A registration with its key's display prefix.
pub fn with_prefix(c: &mut AnyConnection, row: Binding) -> Result<(Binding, String)> {
    let prefix = keys::get(c, &row.key_id)?.key_prefix;
    Ok((row, prefix))
}

/// Registrations with their key's display prefix, by id (a `key_id` that names no key is
/// refused).
pub fn list(c: &mut AnyConnection, q: &ListQuery) -> Result<Page<(Binding, String)>> {
    use super::schema::registration_keys::dsl as k;
    if let Some(v) = &q.key_id
        && let Err(Error::NotFound(_)) = keys::get(c, v)
    {
        return Err(Error::invalid(format!("key_id: no key {v}")));
    }
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
        |(r, p)| (Binding::from(r), p),
    ))
}
