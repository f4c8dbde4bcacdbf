//! Plugin licenses (DESIGN §11.1). A license binds to one instance on its own row: the first
//! activation is a conditional update (`WHERE instance_url IS NULL AND instance_uid IS NULL`),
//! so two instances racing for one license cannot both win.

use super::audit::{self, Actor};
use super::kinds::{self, event};
use super::models::new_id;
use super::page::{ListQuery, Page, paginate};
use super::schema::licenses::dsl as l;
use super::{
    AnyConnection, Error, Result, Transact, Txn, UniqueHit, plugin_terms, plugins, unique_violation,
};
use crate::domain::key::KeyStatus;
use crate::domain::kind::UseRefusal;
use crate::domain::license::{Activation, License};
use crate::domain::views::LicenseView;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use glpi_network_shared::{KeyKind, PlainKey, ValidationStatus};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::licenses)]
struct Row {
    id: String,
    subscriber_id: String,
    plugin_key: String,
    key_hash: String,
    key_prefix: String,
    status: String,
    expires_at: NaiveDateTime,
    created_at: NaiveDateTime,
    revoked_at: Option<NaiveDateTime>,
    instance_url: Option<String>,
    instance_uid: Option<String>,
    activated_at: Option<NaiveDateTime>,
    ver: i64,
}

impl From<Row> for License {
    fn from(r: Row) -> Self {
        License {
            id: r.id,
            subscriber_id: r.subscriber_id,
            plugin: r.plugin_key,
            key_prefix: r.key_prefix,
            status: KeyStatus::parse(&r.status).unwrap_or(KeyStatus::Revoked),
            expires_at: r.expires_at,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            instance_url: r.instance_url,
            instance_uid: r.instance_uid,
            activated_at: r.activated_at,
            ver: r.ver,
        }
    }
}

/// A new license.
pub struct NewLicense<'a> {
    pub subscriber_id: &'a str,
    pub plugin: &'a str,
    /// `None`: now + the plugin's term.
    pub expires_at: Option<NaiveDateTime>,
    pub status: KeyStatus,
}

/// Inserts a license (inside the caller's transaction) for a commercial catalogue plugin.
pub fn insert(
    c: &mut Txn<'_>,
    new: &NewLicense<'_>,
    plaintext: &PlainKey,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<License> {
    super::subscribers::get(c, new.subscriber_id)?;
    if plugins::find(c, new.plugin)?.is_none() {
        return Err(Error::NotFound(format!("no plugin {}", new.plugin)));
    }
    let terms = plugin_terms::find(c, new.plugin)?
        .filter(|t| t.commercial)
        .ok_or_else(|| {
            Error::invalid(format!(
                "plugin {} is not commercial (set commercial: true in the catalogue)",
                new.plugin
            ))
        })?;
    let expires_at = new
        .expires_at
        .unwrap_or_else(|| now + chrono::Duration::days(i64::from(terms.term_days())));
    let row = Row {
        id: new_id(),
        subscriber_id: new.subscriber_id.to_owned(),
        plugin_key: new.plugin.to_owned(),
        key_hash: plaintext.hash(),
        key_prefix: plaintext.display_prefix(),
        status: new.status.as_str().to_owned(),
        expires_at,
        created_at: now,
        revoked_at: (new.status == KeyStatus::Revoked).then_some(now),
        instance_url: None,
        instance_uid: None,
        activated_at: None,
        ver: 1,
    };
    diesel::insert_into(l::licenses)
        .values(&row)
        .execute(c.conn())
        .map_err(|err| match unique_violation(&err) {
            Some(UniqueHit::KeyHash) => Error::Conflict("this key string already exists".into()),
            _ => err.into(),
        })?;
    issued(c, row, now, actor)
}

/// A license just inserted: its audit event and its webhook event.
fn issued(c: &mut Txn<'_>, row: Row, now: NaiveDateTime, actor: &Actor) -> Result<License> {
    let mut ev = event(
        actor,
        "license.issue",
        "ok",
        now,
        Some(&row.id),
        &row.key_prefix,
    );
    ev.detail = Some(format!(
        "subscriber {}; plugin {}; expires {}",
        row.subscriber_id, row.plugin_key, row.expires_at
    ));
    audit::record(c, &ev)?;
    let license = License::from(row);
    c.emit(
        "license.issued",
        &LicenseView::new(license.clone(), now),
        now,
    );
    Ok(license)
}

/// Issues a license with a new random key; returns it and the plaintext (shown once).
pub fn issue(
    c: &mut impl Transact,
    new: &NewLicense<'_>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<(License, PlainKey)> {
    kinds::check_expiry(new.expires_at, now)?;
    let plaintext = PlainKey::generate_kind(KeyKind::License);
    let row = kinds::txn(c, |c| insert(c, new, &plaintext, now, actor))?;
    Ok((row, plaintext))
}

fn find_by_key(c: &mut AnyConnection, key: &PlainKey) -> Result<Option<License>> {
    Ok(l::licenses
        .filter(l::key_hash.eq(key.hash()))
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(License::from))
}

fn by_key(c: &mut AnyConnection, key: &PlainKey) -> Result<License> {
    find_by_key(c, key)?.ok_or(Error::UnknownKeyOf(KeyKind::License))
}

pub fn get(c: &mut AnyConnection, id: &str) -> Result<License> {
    l::licenses
        .find(id)
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(License::from)
        .ok_or_else(|| Error::NotFound(format!("no license {id}")))
}

/// Licenses by id, filtered by `subscriber_id`, `plugin` and `status`.
pub fn list(c: &mut AnyConnection, q: &ListQuery) -> Result<Page<License>> {
    q.check(c, &super::keys::STATUSES)?;
    let limit = q.limit();
    let mut query = l::licenses.select(Row::as_select()).into_boxed();
    if let Some(cur) = &q.cursor {
        query = query.filter(l::id.gt(cur.clone()));
    }
    if let Some(v) = &q.subscriber_id {
        query = query.filter(l::subscriber_id.eq(v.clone()));
    }
    if let Some(v) = &q.plugin {
        query = query.filter(l::plugin_key.eq(v.clone()));
    }
    if let Some(v) = &q.status {
        query = query.filter(l::status.eq(v.clone()));
    }
    let rows: Vec<Row> = query.order(l::id.asc()).limit(limit + 1).load(c)?;
    Ok(paginate(rows, limit, |r| r.id.clone(), License::from))
}

/// Revokes a license (idempotent); its activation stays, so the instance learns `key_revoked`.
pub fn revoke(
    c: &mut impl Transact,
    id: &str,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<License> {
    kinds::txn(c, |c| {
        let row = get(c, id)?;
        if row.status == KeyStatus::Revoked {
            return Ok(row);
        }
        diesel::update(l::licenses.find(id))
            .set((
                l::status.eq(KeyStatus::Revoked.as_str()),
                l::revoked_at.eq(Some(now)),
                l::ver.eq(l::ver + 1),
            ))
            .execute(c.conn())?;
        audit::record(
            c,
            &event(
                actor,
                "license.revoke",
                "ok",
                now,
                Some(id),
                &row.key_prefix,
            ),
        )?;
        get(c, id)
    })
}

/// Sets a new `expires_at` (a revoked license cannot be renewed).
pub fn renew(
    c: &mut impl Transact,
    id: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<License> {
    kinds::check_expiry(Some(expires_at), now)?;
    kinds::txn(c, |c| {
        let row = get(c, id)?;
        if row.status == KeyStatus::Revoked {
            return Err(Error::Conflict(format!("license {id} is revoked")));
        }
        diesel::update(l::licenses.find(id))
            .set((l::expires_at.eq(expires_at), l::ver.eq(l::ver + 1)))
            .execute(c.conn())?;
        let mut ev = event(actor, "license.renew", "ok", now, Some(id), &row.key_prefix);
        ev.detail = Some(format!("expires {expires_at}"));
        audit::record(c, &ev)?;
        get(c, id)
    })
}

/// An activation, as `POST /v1/licenses/activations` answers it.
#[derive(Debug)]
pub struct Activated {
    pub license: License,
    /// `true` for a new activation (`201`), `false` for the same instance again (`200`).
    pub created: bool,
}

/// Activates a license for an instance (URL, UID or both).
pub fn activate(
    c: &mut impl Transact,
    key: &PlainKey,
    url: Option<&str>,
    uid: Option<&str>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Activated> {
    let result = kinds::txn(c, |c| activate_in(c, key, url, uid, now, actor));
    if let Err(err) = &result {
        let key_id = find_by_key(c, key).ok().flatten().map(|l| l.id);
        kinds::record_refusal(c, actor, "license.activate", key, key_id, err, now, |ev| {
            ev.instance_url = url.map(str::to_owned);
            ev.instance_uid = uid.map(str::to_owned);
        });
    }
    result
}

fn activate_in(
    c: &mut Txn<'_>,
    key: &PlainKey,
    url: Option<&str>,
    uid: Option<&str>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<Activated> {
    // twice at most: a lost race for a free license is seen as bound on the second read
    for _ in 0..2 {
        let lic = by_key(c, key)?;
        let plan = lic.plan_activation(url, uid, now)?;
        let Some(created) = apply(c, &lic.id, plan, url, uid, now)? else {
            continue;
        };
        let license = get(c, &lic.id)?;
        if created || license.ver != lic.ver {
            let mut ev = event(
                actor,
                "license.activate",
                "ok",
                now,
                Some(&lic.id),
                &lic.key_prefix,
            );
            ev.instance_url = license.instance_url.clone();
            ev.instance_uid = license.instance_uid.clone();
            ev.detail = Some(format!("plugin {}", license.plugin));
            audit::record(c, &ev)?;
        }
        if created {
            c.emit(
                "license.activated",
                &LicenseView::new(license.clone(), now),
                now,
            );
        }
        return Ok(Activated { license, created });
    }
    Err(UseRefusal::BoundElsewhere.into())
}

/// Applies an activation plan: `Some(true)` bound now, `Some(false)` the same instance (and
/// what it gained), `None` a race for the free license lost to another instance.
fn apply(
    c: &mut Txn<'_>,
    id: &str,
    plan: Activation,
    url: Option<&str>,
    uid: Option<&str>,
    now: NaiveDateTime,
) -> Result<Option<bool>> {
    let (gain_url, gain_uid) = match plan {
        Activation::New => {
            let won = diesel::update(
                l::licenses
                    .find(id)
                    .filter(l::instance_url.is_null())
                    .filter(l::instance_uid.is_null()),
            )
            .set((
                l::instance_url.eq(url),
                l::instance_uid.eq(uid),
                l::activated_at.eq(Some(now)),
                l::ver.eq(l::ver + 1),
            ))
            .execute(c.conn())?;
            return Ok((won == 1).then_some(true));
        }
        Activation::Same { url, uid } => (url, uid),
    };
    if let Some(u) = &gain_url {
        diesel::update(l::licenses.find(id).filter(l::instance_url.is_null()))
            .set((l::instance_url.eq(Some(u)), l::ver.eq(l::ver + 1)))
            .execute(c.conn())?;
    }
    if let Some(u) = &gain_uid {
        diesel::update(l::licenses.find(id).filter(l::instance_uid.is_null()))
            .set((l::instance_uid.eq(Some(u)), l::ver.eq(l::ver + 1)))
            .execute(c.conn())?;
    }
    Ok(Some(false))
}

/// Releases the license's activation by its own instance (idempotent when not activated).
pub fn release(
    c: &mut impl Transact,
    key: &PlainKey,
    url: Option<&str>,
    uid: Option<&str>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<()> {
    let result = kinds::txn(c, |c| {
        let lic = by_key(c, key)?;
        if !lic.is_bound() {
            return Ok(());
        }
        if lic.bound_elsewhere(url, uid) {
            return Err(UseRefusal::BoundElsewhere.into());
        }
        diesel::update(l::licenses.find(&lic.id))
            .set((
                l::instance_url.eq(None::<String>),
                l::instance_uid.eq(None::<String>),
                l::activated_at.eq(None::<NaiveDateTime>),
                l::ver.eq(l::ver + 1),
            ))
            .execute(c.conn())?;
        let mut ev = event(
            actor,
            "license.release",
            "ok",
            now,
            Some(&lic.id),
            &lic.key_prefix,
        );
        ev.instance_url = lic.instance_url.clone();
        ev.instance_uid = lic.instance_uid.clone();
        audit::record(c, &ev)?;
        Ok(())
    });
    if let Err(err) = &result {
        let key_id = find_by_key(c, key).ok().flatten().map(|l| l.id);
        kinds::record_refusal(c, actor, "license.release", key, key_id, err, now, |ev| {
            ev.instance_url = url.map(str::to_owned);
            ev.instance_uid = uid.map(str::to_owned);
        });
    }
    result
}

/// The license's status for an instance (a refusal is audited).
pub fn validate(
    c: &mut impl Transact,
    key: &PlainKey,
    url: Option<&str>,
    uid: Option<&str>,
    now: NaiveDateTime,
    actor: &Actor,
) -> Result<(License, ValidationStatus)> {
    let lic = match by_key(c, key) {
        Ok(l) => l,
        Err(err) => {
            kinds::record_refusal(c, actor, "license.validation", key, None, &err, now, |ev| {
                ev.instance_url = url.map(str::to_owned);
                ev.instance_uid = uid.map(str::to_owned);
            });
            return Err(err);
        }
    };
    let status = lic.status_for(url, uid, now);
    if status != ValidationStatus::Valid {
        let mut ev = event(
            actor,
            "license.validation",
            status.as_str(),
            now,
            Some(&lic.id),
            &lic.key_prefix,
        );
        ev.instance_url = url.map(str::to_owned);
        ev.instance_uid = uid.map(str::to_owned);
        if let Err(e) = audit::record(c, &ev) {
            tracing::error!(error = %e, "could not record an audit event");
        }
    }
    Ok((lic, status))
}

/// Whether the instance with UID `uid` holds a valid license of `plugin` now.
pub fn unlocked(
    c: &mut AnyConnection,
    plugin: &str,
    uid: &str,
    now: NaiveDateTime,
) -> Result<bool> {
    let rows: Vec<Row> = l::licenses
        .filter(l::plugin_key.eq(plugin))
        .filter(l::instance_uid.eq(uid))
        .select(Row::as_select())
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(License::from)
        .any(|lic| lic.unlocks(plugin, uid, now)))
}
