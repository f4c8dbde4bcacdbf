//! Fixtures for the other kinds of keys (DESIGN §11): `licenses`, `enrollment_keys` and
//! `invitations` with fixed plaintext strings, their `subscriber` a fixture `ref`.

use super::fixtures::{Fixtures, Loaded};
use crate::db::audit::Actor;
use crate::db::enrollments::{self, NewEnrollmentKey};
use crate::db::invitations::{self, NewInvitation};
use crate::db::licenses::{self, NewLicense};
use crate::db::{Error, Result, Txn, schema};
use crate::domain::enrollment::check_text;
use crate::domain::invitation::{DEFAULT_MAX_USES, Role};
use crate::domain::key::KeyStatus;
use crate::domain::kind::check_max_uses;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use glpi_network_shared::{KeyKind, PlainKey};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct LicenseFx {
    /// The fixed plaintext.
    pub key: String,
    pub subscriber: String,
    pub plugin: String,
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct EnrollmentKeyFx {
    pub key: String,
    pub subscriber: String,
    pub entity: String,
    pub max_uses: i64,
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct InvitationFx {
    pub key: String,
    pub subscriber: String,
    pub role: String,
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    #[serde(default)]
    pub max_uses: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub status: Option<String>,
}

fn bad(what: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{what}: {msg}"))
}

/// The plaintext, the subscriber's id and the status of one entry.
fn common<'a>(
    what: &str,
    key: &str,
    kind: KeyKind,
    subscriber: &str,
    status: Option<&str>,
    subscribers: &'a BTreeMap<String, String>,
) -> Result<(PlainKey, &'a str, KeyStatus)> {
    let plaintext = PlainKey::parse(key).map_err(|e| bad(what, e))?;
    if !plaintext.may_be(kind) {
        return Err(bad(
            what,
            format!("a generated key of this kind starts with {}", kind.prefix()),
        ));
    }
    let sub = subscribers
        .get(subscriber)
        .ok_or_else(|| bad(what, format!("unknown subscriber ref {subscriber:?}")))?;
    let raw = status.unwrap_or("active");
    let status = KeyStatus::parse(raw).ok_or_else(|| {
        bad(
            what,
            format!("status must be active or revoked, not {raw:?}"),
        )
    })?;
    Ok((plaintext, sub, status))
}

/// Loads licenses (after the plugins they name), enrollment keys and invitations; records each
/// created id by its `ref`, or by `<list>[i]` without one.
pub fn load(
    c: &mut Txn<'_>,
    fx: &Fixtures,
    now: NaiveDateTime,
    actor: &Actor,
    out: &mut Loaded,
) -> Result<()> {
    out.licenses = load_licenses(c, &fx.licenses, &out.subscribers, now, actor)?;
    out.enrollment_keys =
        load_enrollment_keys(c, &fx.enrollment_keys, &out.subscribers, now, actor)?;
    out.invitations = load_invitations(c, &fx.invitations, &out.subscribers, now, actor)?;
    Ok(())
}

type Ids = BTreeMap<String, String>;

fn load_licenses(
    c: &mut Txn<'_>,
    list: &[LicenseFx],
    subscribers: &Ids,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Ids> {
    let mut ids = Ids::new();
    for (i, l) in list.iter().enumerate() {
        let what = format!("licenses[{i}]");
        let (key, sub, status) = common(
            &what,
            &l.key,
            KeyKind::License,
            &l.subscriber,
            l.status.as_deref(),
            subscribers,
        )?;
        let new = NewLicense {
            subscriber_id: sub,
            plugin: &l.plugin,
            expires_at: l.expires_at.map(|t| t.naive_utc()),
            status,
        };
        let row =
            licenses::insert(c, &new, &key, now, actor).map_err(|e| e.within(what.clone()))?;
        ids.insert(l.reference.clone().unwrap_or(what), row.id);
        c.spill_if_large()?;
    }
    Ok(ids)
}

fn load_enrollment_keys(
    c: &mut Txn<'_>,
    list: &[EnrollmentKeyFx],
    subscribers: &Ids,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Ids> {
    let mut ids = Ids::new();
    for (i, e) in list.iter().enumerate() {
        let what = format!("enrollment_keys[{i}]");
        let (key, sub, status) = common(
            &what,
            &e.key,
            KeyKind::Enrollment,
            &e.subscriber,
            e.status.as_deref(),
            subscribers,
        )?;
        let entity = check_text("entity", &e.entity).map_err(|x| bad(&what, x))?;
        let new = NewEnrollmentKey {
            subscriber_id: sub,
            entity: &entity,
            max_uses: check_max_uses(e.max_uses).map_err(|x| bad(&what, x))?,
            expires_at: e.expires_at.map(|t| t.naive_utc()),
            status,
        };
        let row =
            enrollments::insert(c, &new, &key, now, actor).map_err(|x| x.within(what.clone()))?;
        ids.insert(e.reference.clone().unwrap_or(what), row.id);
        c.spill_if_large()?;
    }
    Ok(ids)
}

fn load_invitations(
    c: &mut Txn<'_>,
    list: &[InvitationFx],
    subscribers: &Ids,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Ids> {
    let mut ids = Ids::new();
    for (i, v) in list.iter().enumerate() {
        let what = format!("invitations[{i}]");
        let (key, sub, status) = common(
            &what,
            &v.key,
            KeyKind::Invitation,
            &v.subscriber,
            v.status.as_deref(),
            subscribers,
        )?;
        let role = Role::parse(&v.role)
            .ok_or_else(|| bad(&what, "role must be owner, manager or viewer"))?;
        let max_uses = match v.max_uses {
            Some(m) => check_max_uses(m).map_err(|x| bad(&what, x))?,
            None => DEFAULT_MAX_USES,
        };
        let new = NewInvitation {
            subscriber_id: sub,
            role,
            max_uses,
            expires_at: v.expires_at.map(|t| t.naive_utc()),
            status,
        };
        let row =
            invitations::insert(c, &new, &key, now, actor).map_err(|x| x.within(what.clone()))?;
        ids.insert(v.reference.clone().unwrap_or(what), row.id);
        c.spill_if_large()?;
    }
    Ok(ids)
}

/// Empties the tables of these kinds (before the subscribers they belong to).
pub fn reset(c: &mut Txn<'_>) -> Result<()> {
    use schema::*;
    diesel::delete(enrollments::table).execute(c.conn())?;
    diesel::delete(enrollment_keys::table).execute(c.conn())?;
    diesel::delete(licenses::table).execute(c.conn())?;
    diesel::delete(invitations::table).execute(c.conn())?;
    diesel::delete(accounts::table).execute(c.conn())?;
    Ok(())
}
