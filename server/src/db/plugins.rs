//! The plugin catalogue: plugins, their versions (with the archive bytes) and the `meta` table.

use super::AnyConnection;
use super::schema::meta::dsl as m;
use super::schema::plugin_versions::dsl as v;
use super::schema::plugins::dsl as p;
use super::{Error, Result};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = super::schema::plugins, treat_none_as_null = true)]
pub struct PluginRow {
    pub key: String,
    pub name: String,
    pub logo_url: String,
    pub homepage_url: String,
    pub issues_url: String,
    pub readme_url: String,
    pub changelog_url: String,
    pub license: String,
    pub note: f64,
    pub download_count: i64,
    pub authors: String,
    pub descriptions: String,
    pub tags: String,
    pub required_offers: Option<String>,
    pub date_added: NaiveDateTime,
    pub date_updated: NaiveDateTime,
}

/// A version without its archive bytes.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::plugin_versions)]
pub struct VersionRow {
    pub plugin_key: String,
    pub num: String,
    pub stability: String,
    pub archive_sha256: String,
    pub created_at: NaiveDateTime,
    /// A requirement on the GLPI version (`domain::compat`); `None`: every GLPI.
    pub compatibility: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = super::schema::plugin_versions)]
pub struct NewVersion {
    pub plugin_key: String,
    pub num: String,
    pub stability: String,
    pub archive: Vec<u8>,
    pub archive_sha256: String,
    pub created_at: NaiveDateTime,
    pub compatibility: Option<String>,
}

/// All plugins ordered by key, with their versions.
pub fn all(c: &mut AnyConnection) -> Result<Vec<(PluginRow, Vec<VersionRow>)>> {
    let plugins = p::plugins
        .select(PluginRow::as_select())
        .order(p::key.asc())
        .load(c)?;
    let versions = v::plugin_versions
        .select(VersionRow::as_select())
        .order((v::plugin_key.asc(), v::created_at.asc()))
        .load(c)?;
    Ok(group(plugins, versions))
}

fn group(plugins: Vec<PluginRow>, versions: Vec<VersionRow>) -> Vec<(PluginRow, Vec<VersionRow>)> {
    let mut by_key: std::collections::HashMap<String, Vec<VersionRow>> =
        std::collections::HashMap::new();
    for ver in versions {
        by_key.entry(ver.plugin_key.clone()).or_default().push(ver);
    }
    plugins
        .into_iter()
        .map(|pl| {
            let vs = by_key.remove(&pl.key).unwrap_or_default();
            (pl, vs)
        })
        .collect()
}

pub fn find(c: &mut AnyConnection, key: &str) -> Result<Option<PluginRow>> {
    Ok(p::plugins
        .find(key)
        .select(PluginRow::as_select())
        .first(c)
        .optional()?)
}

pub fn get(c: &mut AnyConnection, key: &str) -> Result<(PluginRow, Vec<VersionRow>)> {
    let row = find(c, key)?.ok_or_else(|| Error::NotFound(format!("no plugin {key}")))?;
    let versions = v::plugin_versions
        .filter(v::plugin_key.eq(key))
        .select(VersionRow::as_select())
        .order(v::created_at.asc())
        .load(c)?;
    Ok((row, versions))
}

pub fn insert(c: &mut AnyConnection, row: &PluginRow) -> Result<()> {
    diesel::insert_into(p::plugins)
        .values(row)
        .execute(c)
        .map_err(|e| {
            if matches!(
                e,
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _
                )
            ) {
                Error::Conflict(format!("plugin {} already exists", row.key))
            } else {
                e.into()
            }
        })?;
    Ok(())
}

pub fn update(c: &mut AnyConnection, row: &PluginRow) -> Result<()> {
    diesel::update(p::plugins.find(&row.key))
        .set(row)
        .execute(c)?;
    Ok(())
}

/// Deletes a plugin and its versions; `false` when there was none.
pub fn delete(c: &mut AnyConnection, key: &str) -> Result<bool> {
    diesel::delete(v::plugin_versions.filter(v::plugin_key.eq(key))).execute(c)?;
    Ok(diesel::delete(p::plugins.find(key)).execute(c)? > 0)
}

/// Adds a version (`409 conflict` when the number exists) and touches `date_updated`.
pub fn add_version(c: &mut AnyConnection, new: &NewVersion) -> Result<()> {
    diesel::insert_into(v::plugin_versions)
        .values(new)
        .execute(c)
        .map_err(|e| {
            if matches!(
                e,
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _
                )
            ) {
                Error::Conflict(format!(
                    "version {} of {} already exists",
                    new.num, new.plugin_key
                ))
            } else {
                e.into()
            }
        })?;
    diesel::update(p::plugins.find(&new.plugin_key))
        .set(p::date_updated.eq(new.created_at))
        .execute(c)?;
    Ok(())
}

/// Sets (or with `None` removes) a version's GLPI compatibility requirement; `false` when the
/// version does not exist.
pub fn set_compatibility(
    c: &mut AnyConnection,
    key: &str,
    num: &str,
    compatibility: Option<&str>,
) -> Result<bool> {
    Ok(diesel::update(
        v::plugin_versions
            .filter(v::plugin_key.eq(key))
            .filter(v::num.eq(num)),
    )
    .set(v::compatibility.eq(compatibility))
    .execute(c)?
        > 0)
}

/// The archive bytes of one version.
pub fn archive(c: &mut AnyConnection, key: &str, num: &str) -> Result<Option<Vec<u8>>> {
    Ok(v::plugin_versions
        .filter(v::plugin_key.eq(key))
        .filter(v::num.eq(num))
        .select(v::archive)
        .first(c)
        .optional()?)
}

/// Counts one download; `false` when the plugin is unknown.
pub fn count_download(c: &mut AnyConnection, key: &str) -> Result<bool> {
    Ok(diesel::update(p::plugins.find(key))
        .set(p::download_count.eq(p::download_count + 1))
        .execute(c)?
        > 0)
}

pub fn meta_get(c: &mut AnyConnection, name: &str) -> Result<Option<String>> {
    Ok(m::meta.find(name).select(m::value).first(c).optional()?)
}

/// Inserts `name` unless it exists; `false` when another caller got there first (the row is
/// a once-only claim that holds across processes).
pub fn meta_claim(c: &mut AnyConnection, name: &str, value: &str) -> Result<bool> {
    match diesel::insert_into(m::meta)
        .values((m::name.eq(name), m::value.eq(value)))
        .execute(c)
    {
        Ok(_) => Ok(true),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub fn meta_delete(c: &mut AnyConnection, name: &str) -> Result<()> {
    diesel::delete(m::meta.find(name)).execute(c)?;
    Ok(())
}
