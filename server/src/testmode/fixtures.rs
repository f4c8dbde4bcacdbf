//! Test-mode fixtures: subscribers, subscriptions, keys with fixed plaintext, registrations and
//! plugins, loaded all-or-nothing in one transaction, with errors that name the bad entry.

use crate::db::audit::Actor;
use crate::db::schema;
use crate::db::{
    Error, Result, Touches, Transact, Txn, catalogue, keys, registrations, subscribers,
    subscriptions,
};
use crate::domain::catalogue::PluginInput;
use crate::domain::key::KeyStatus;
use crate::domain::subscription::{NewSubscription, SubscriptionStatus};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use glpi_network_shared::{InstanceUrl, RegistrationKey};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct SubscriberFx {
    #[serde(rename = "ref")]
    pub reference: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct SubscriptionFx {
    #[serde(rename = "ref")]
    pub reference: String,
    pub subscriber: String,
    pub offer: String,
    #[serde(default)]
    pub begin_date: Option<NaiveDate>,
    #[serde(default)]
    pub end_date: Option<NaiveDate>,
    #[serde(default)]
    pub trial_days: Option<u32>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct KeyFx {
    /// The fixed plaintext.
    pub key: String,
    pub subscription: String,
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct RegistrationFx {
    pub key: String,
    #[serde(default)]
    pub instance_url: Option<String>,
    #[serde(default)]
    pub instance_uid: Option<String>,
}

/// The fixture document (`POST /_test/fixtures`, `--fixtures FILE`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct Fixtures {
    #[serde(default)]
    pub subscribers: Vec<SubscriberFx>,
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionFx>,
    #[serde(default)]
    pub keys: Vec<KeyFx>,
    #[serde(default)]
    pub registrations: Vec<RegistrationFx>,
    #[serde(default)]
    pub plugins: Vec<PluginInput>,
    #[serde(default)]
    pub licenses: Vec<super::kinds::LicenseFx>,
    #[serde(default)]
    pub enrollment_keys: Vec<super::kinds::EnrollmentKeyFx>,
    #[serde(default)]
    pub invitations: Vec<super::kinds::InvitationFx>,
}

/// What was created: each `ref` mapped to its id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Loaded {
    pub subscribers: BTreeMap<String, String>,
    pub subscriptions: BTreeMap<String, String>,
    /// Keys by their `ref`, or by `keys[i]` when they have none.
    pub keys: BTreeMap<String, String>,
    pub registrations: Vec<String>,
    pub plugins: Vec<String>,
    /// Licenses by their `ref`, or by `licenses[i]` when they have none.
    #[serde(default)]
    pub licenses: BTreeMap<String, String>,
    /// Enrollment keys by their `ref`, or by `enrollment_keys[i]`.
    #[serde(default)]
    pub enrollment_keys: BTreeMap<String, String>,
    /// Invitations by their `ref`, or by `invitations[i]`.
    #[serde(default)]
    pub invitations: BTreeMap<String, String>,
}

fn bad(what: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{what}: {msg}"))
}

/// Reads a fixture file: TOML when it ends in `.toml`, JSON otherwise.
pub fn read_file(path: &Path) -> anyhow::Result<Fixtures> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read fixtures {}: {e}", path.display()))?;
    let fx = if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("fixtures {} are not valid TOML: {e}", path.display()))?
    } else {
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("fixtures {} are not valid JSON: {e}", path.display()))?
    };
    Ok(fx)
}

/// Loads fixtures in one transaction: all of them, or (on the first bad entry) none. Plugin
/// versions get generated archives: an `archive` path is refused here (over HTTP it would let a
/// caller read the server's files); only a fixture file may name archives, next to it.
pub fn load(
    c: &mut impl Transact,
    fx: &Fixtures,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Loaded> {
    let quiet = ProgressBar::hidden();
    c.write(Touches::Anything, |c| {
        load_inner(c, fx, None, now, actor, &quiet)
    })
}

/// Loads a fixture file's fixtures; `archive` paths are relative to `base` (the file's folder).
pub fn load_file(
    c: &mut impl Transact,
    fx: &Fixtures,
    base: &Path,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Loaded> {
    let total = fx.keys.len() + fx.registrations.len();
    let bar = crate::cli::progress::count(total as u64, "fixture keys and registrations");
    let loaded = c.write(Touches::Anything, |c| {
        load_inner(c, fx, Some(base), now, actor, &bar)
    });
    bar.finish_and_clear();
    loaded
}

fn load_inner(
    c: &mut Txn<'_>,
    fx: &Fixtures,
    base: Option<&Path>,
    now: NaiveDateTime,
    actor: &Actor,
    bar: &ProgressBar,
) -> Result<Loaded> {
    if base.is_none() {
        for (i, p) in fx.plugins.iter().enumerate() {
            if let Some(j) = p.versions.iter().position(|v| v.archive.is_some()) {
                return Err(bad(
                    &format!("plugins[{i}].versions[{j}]"),
                    "archive paths are only read from a fixture file; omit `archive` for a generated archive",
                ));
            }
        }
    }
    let mut out = Loaded::default();
    load_subscribers(c, &fx.subscribers, now, &mut out)?;
    load_subscriptions(c, &fx.subscriptions, now, actor, &mut out)?;
    load_keys(c, &fx.keys, now, actor, &mut out, bar)?;
    load_registrations(c, &fx.registrations, now, actor, &mut out, bar)?;
    if !fx.plugins.is_empty() {
        catalogue::import(c, &fx.plugins, base, now)?;
        out.plugins = fx.plugins.iter().filter_map(|p| p.key.clone()).collect();
    }
    super::kinds::load(c, fx, now, actor, &mut out)?;
    Ok(out)
}

fn load_subscribers(
    c: &mut Txn<'_>,
    list: &[SubscriberFx],
    now: NaiveDateTime,
    out: &mut Loaded,
) -> Result<()> {
    for (i, s) in list.iter().enumerate() {
        let what = format!("subscribers[{i}] (ref {:?})", s.reference);
        if out.subscribers.contains_key(&s.reference) {
            return Err(bad(&what, "duplicate ref"));
        }
        let row =
            subscribers::create(c, &s.name, s.email.as_deref(), now).map_err(|e| e.within(what))?;
        out.subscribers.insert(s.reference.clone(), row.id);
    }
    Ok(())
}

fn load_subscriptions(
    c: &mut Txn<'_>,
    list: &[SubscriptionFx],
    now: NaiveDateTime,
    actor: &Actor,
    out: &mut Loaded,
) -> Result<()> {
    for (i, s) in list.iter().enumerate() {
        let what = format!("subscriptions[{i}] (ref {:?})", s.reference);
        if out.subscriptions.contains_key(&s.reference) {
            return Err(bad(&what, "duplicate ref"));
        }
        let subscriber_id = out
            .subscribers
            .get(&s.subscriber)
            .ok_or_else(|| bad(&what, format!("unknown subscriber ref {:?}", s.subscriber)))?
            .clone();
        let raw = s.status.as_deref().unwrap_or("active");
        let status = SubscriptionStatus::parse(raw).ok_or_else(|| {
            bad(
                &what,
                format!("status must be active, suspended or cancelled, not {raw:?}"),
            )
        })?;
        let req = NewSubscription {
            subscriber_id,
            offer: s.offer.clone(),
            begin_date: s.begin_date,
            end_date: s.end_date,
            trial_days: s.trial_days,
        };
        let row = subscriptions::create(c, &req, now, actor).map_err(|e| e.within(what))?;
        if status != SubscriptionStatus::Active {
            subscriptions::set_status(c, &row.id, status, now)?;
        }
        out.subscriptions.insert(s.reference.clone(), row.id);
    }
    Ok(())
}

fn load_keys(
    c: &mut Txn<'_>,
    list: &[KeyFx],
    now: NaiveDateTime,
    actor: &Actor,
    out: &mut Loaded,
    bar: &ProgressBar,
) -> Result<()> {
    for (i, k) in list.iter().enumerate() {
        let what = format!("keys[{i}]");
        let plaintext = RegistrationKey::parse(&k.key).map_err(|e| bad(&what, e))?;
        let sub_id = out.subscriptions.get(&k.subscription).ok_or_else(|| {
            bad(
                &what,
                format!("unknown subscription ref {:?}", k.subscription),
            )
        })?;
        let raw = k.status.as_deref().unwrap_or("active");
        let status = KeyStatus::parse(raw).ok_or_else(|| {
            bad(
                &what,
                format!("status must be active or revoked, not {raw:?}"),
            )
        })?;
        let expires_at = k.expires_at.map(|t| t.naive_utc());
        let row = keys::insert(c, sub_id, &plaintext, status, expires_at, now, actor)
            .map_err(|e| e.within(what.clone()))?;
        out.keys.insert(k.reference.clone().unwrap_or(what), row.id);
        c.spill_if_large()?;
        bar.inc(1);
    }
    Ok(())
}

fn load_registrations(
    c: &mut Txn<'_>,
    list: &[RegistrationFx],
    now: NaiveDateTime,
    actor: &Actor,
    out: &mut Loaded,
    bar: &ProgressBar,
) -> Result<()> {
    for (i, r) in list.iter().enumerate() {
        let what = format!("registrations[{i}]");
        let key = RegistrationKey::parse(&r.key).map_err(|e| bad(&what, e))?;
        let url = r
            .instance_url
            .as_deref()
            .map(InstanceUrl::parse)
            .transpose()
            .map_err(|e| bad(&what, e))?;
        let uid = r
            .instance_uid
            .as_deref()
            .map(crate::domain::binding::parse_uid)
            .transpose()
            .map_err(|e| Error::from(e).within(what.clone()))?;
        if url.is_none() && uid.is_none() {
            return Err(bad(&what, "give instance_url, instance_uid or both"));
        }
        let bound = registrations::register(c, &key, url.as_ref(), uid.as_deref(), now, actor)
            .map_err(|e| e.within(what))?;
        out.registrations.push(bound.registration.id);
        c.spill_if_large()?;
        bar.inc(1);
    }
    Ok(())
}

/// Empties subscribers, subscriptions, keys, registrations, audit events and plugins, then
/// puts the demo plugins back. Offers and signing keys stay.
pub fn reset(c: &mut impl Transact, now: NaiveDateTime) -> Result<()> {
    use schema::*;
    c.write(Touches::Anything, |c| {
        super::kinds::reset(c)?;
        diesel::delete(registrations::table).execute(c.conn())?;
        diesel::delete(registration_keys::table).execute(c.conn())?;
        diesel::delete(web_sessions::table).execute(c.conn())?;
        diesel::delete(accounts::table).execute(c.conn())?;
        diesel::delete(subscriptions::table).execute(c.conn())?;
        diesel::delete(subscribers::table).execute(c.conn())?;
        diesel::delete(audit_events::table).execute(c.conn())?;
        diesel::delete(plugin_versions::table).execute(c.conn())?;
        diesel::delete(plugins::table).execute(c.conn())?;
        catalogue::restore_demo(c, now)
    })
}
