//! The plugin catalogue: admin input, the marketplace record GLPI reads (protocol §5), demo
//! plugins seeded on first start, and catalogue files.

use crate::db::plugins::{self, NewVersion, PluginRow, VersionRow};
use crate::db::{AnyConnection, offers, write_txn};
use crate::domain::archive;
use crate::http::error::ApiError;
use chrono::NaiveDateTime;
use serde::{Deserialize, Deserializer, Serialize};
use std::path::Path;

/// `{id, name}` of a plugin author.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Author {
    #[serde(default)]
    pub id: i64,
    pub name: String,
}

/// A localised description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Description {
    pub lang: String,
    #[serde(default)]
    pub short_description: String,
    #[serde(default)]
    pub long_description: String,
}

/// A tag: `key` in URLs, `tag` shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tag {
    pub key: String,
    pub tag: String,
}

fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A version in a catalogue file: the archive is a path relative to the file, or generated.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct VersionInput {
    pub num: String,
    #[serde(default)]
    pub stability: Option<String>,
    #[serde(default)]
    pub archive: Option<String>,
}

/// Plugin fields for create (`key` and `name` required) and update (all optional;
/// `"required_offers": null` makes the plugin free again).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct PluginInput {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub logo_url: Option<String>,
    #[serde(default)]
    pub homepage_url: Option<String>,
    #[serde(default)]
    pub issues_url: Option<String>,
    #[serde(default)]
    pub readme_url: Option<String>,
    #[serde(default)]
    pub changelog_url: Option<String>,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub note: Option<f64>,
    #[serde(default)]
    pub authors: Option<Vec<Author>>,
    #[serde(default)]
    pub descriptions: Option<Vec<Description>>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(default, deserialize_with = "double_option")]
    pub required_offers: Option<Option<Vec<String>>>,
    /// Catalogue files only.
    #[serde(default)]
    pub versions: Vec<VersionInput>,
}

/// A version as GLPI reads it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionRecord {
    pub num: String,
    pub stability: String,
    pub download_url: String,
}

/// A plugin record with every field GLPI reads (strings never null, `required_offers` null when
/// free).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginRecord {
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
    pub date_added: String,
    pub date_updated: String,
    pub authors: Vec<Author>,
    pub descriptions: Vec<Description>,
    pub tags: Vec<Tag>,
    pub versions: Vec<VersionRecord>,
    pub required_offers: Option<Vec<String>>,
}

/// Whether a plugin key is acceptable (GLPI plugin folder names: lower-case letters, digits).
pub fn valid_plugin_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether a version number is acceptable in an archive file name.
pub fn valid_version(num: &str) -> bool {
    !num.is_empty()
        && num.len() <= 64
        && num
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        && !num.starts_with('.')
}

/// The archive path of a version, relative to the public URL.
pub fn archive_path(key: &str, num: &str) -> String {
    format!("/api/marketplace/archives/{key}-{num}.tar.gz")
}

/// Splits `<key>-<version>.tar.gz` (plugin keys have no `-`).
pub fn parse_archive_name(file: &str) -> Option<(&str, &str)> {
    let stem = file.strip_suffix(".tar.gz")?;
    let (key, num) = stem.split_once('-')?;
    (valid_plugin_key(key) && valid_version(num)).then_some((key, num))
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

fn parse_list<T: for<'de> Deserialize<'de>>(s: &str) -> Vec<T> {
    serde_json::from_str(s).unwrap_or_default()
}

/// The offers a plugin requires, `None` when free.
pub fn required_offers(row: &PluginRow) -> Option<Vec<String>> {
    row.required_offers
        .as_deref()
        .map(parse_list::<String>)
        .filter(|v| !v.is_empty())
}

/// The record GLPI reads. `show_versions` is false for an exclusive plugin the caller's offer
/// does not unlock: GLPI then shows it as unavailable.
pub fn record(
    row: &PluginRow,
    versions: &[VersionRow],
    public_url: &str,
    show_versions: bool,
) -> PluginRecord {
    let fmt = |t: NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
    PluginRecord {
        key: row.key.clone(),
        name: row.name.clone(),
        logo_url: row.logo_url.clone(),
        homepage_url: row.homepage_url.clone(),
        issues_url: row.issues_url.clone(),
        readme_url: row.readme_url.clone(),
        changelog_url: row.changelog_url.clone(),
        license: row.license.clone(),
        note: row.note,
        download_count: row.download_count,
        date_added: fmt(row.date_added),
        date_updated: fmt(row.date_updated),
        authors: parse_list(&row.authors),
        descriptions: parse_list(&row.descriptions),
        tags: parse_list(&row.tags),
        versions: if show_versions {
            versions
                .iter()
                .map(|v| VersionRecord {
                    num: v.num.clone(),
                    stability: v.stability.clone(),
                    download_url: format!("{public_url}{}", archive_path(&row.key, &v.num)),
                })
                .collect()
        } else {
            Vec::new()
        },
        required_offers: required_offers(row),
    }
}

fn check_url_field(name: &str, v: &str) -> Result<(), ApiError> {
    if v.len() > 2048 || v.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{name} must be at most 2048 printable characters"
        )));
    }
    Ok(())
}

/// Applies `input` to `row` (a new row for create), validating every field.
pub fn apply(
    c: &mut AnyConnection,
    row: &mut PluginRow,
    input: &PluginInput,
) -> Result<(), ApiError> {
    if let Some(name) = &input.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ApiError::bad_request("name must be 1 to 200 characters"));
        }
        row.name = name.to_owned();
    }
    for (field, value, target) in [
        ("logo_url", &input.logo_url, &mut row.logo_url),
        ("homepage_url", &input.homepage_url, &mut row.homepage_url),
        ("issues_url", &input.issues_url, &mut row.issues_url),
        ("readme_url", &input.readme_url, &mut row.readme_url),
        (
            "changelog_url",
            &input.changelog_url,
            &mut row.changelog_url,
        ),
        ("license", &input.license, &mut row.license),
    ] {
        if let Some(v) = value {
            check_url_field(field, v)?;
            *target = v.clone();
        }
    }
    if let Some(note) = input.note {
        if !(0.0..=5.0).contains(&note) {
            return Err(ApiError::bad_request("note must be between 0 and 5"));
        }
        row.note = note;
    }
    if let Some(a) = &input.authors {
        row.authors = json(a);
    }
    if let Some(d) = &input.descriptions {
        if d.iter().any(|d| d.lang.is_empty() || d.lang.len() > 16) {
            return Err(ApiError::bad_request(
                "every description needs a lang of 1 to 16 characters",
            ));
        }
        row.descriptions = json(d);
    }
    if let Some(t) = &input.tags {
        if t.iter()
            .any(|t| !valid_plugin_key(&t.key) || t.tag.trim().is_empty())
        {
            return Err(ApiError::bad_request(
                "tag keys are lower-case letters, digits or '_', with a non-empty tag",
            ));
        }
        row.tags = json(t);
    }
    if let Some(req) = &input.required_offers {
        row.required_offers = match req {
            None => None,
            Some(list) if list.is_empty() => None,
            Some(list) => {
                for o in list {
                    if offers::find(c, o)?.is_none() {
                        return Err(ApiError::bad_request(format!(
                            "unknown offer {o:?} in required_offers"
                        )));
                    }
                }
                Some(json(list))
            }
        };
    }
    Ok(())
}

/// A new row for `key` with defaults.
pub fn new_row(key: &str, now: NaiveDateTime) -> Result<PluginRow, ApiError> {
    if !valid_plugin_key(key) {
        return Err(ApiError::bad_request(
            "plugin key must be 1 to 64 of a-z, 0-9 or '_'",
        ));
    }
    Ok(PluginRow {
        key: key.to_owned(),
        name: String::new(),
        logo_url: String::new(),
        homepage_url: String::new(),
        issues_url: String::new(),
        readme_url: String::new(),
        changelog_url: String::new(),
        license: String::new(),
        note: 0.0,
        download_count: 0,
        authors: "[]".into(),
        descriptions: "[]".into(),
        tags: "[]".into(),
        required_offers: None,
        date_added: now,
        date_updated: now,
    })
}

/// Creates a plugin from admin input.
pub fn create(
    c: &mut AnyConnection,
    input: &PluginInput,
    now: NaiveDateTime,
) -> Result<PluginRow, ApiError> {
    let key = input
        .key
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("key is required"))?;
    if input.name.is_none() {
        return Err(ApiError::bad_request("name is required"));
    }
    write_txn(c, |c| {
        let mut row = new_row(key, now)?;
        apply(c, &mut row, input)?;
        plugins::insert(c, &row)?;
        Ok(row)
    })
}

/// Updates a plugin from admin input (the key cannot change).
pub fn update(
    c: &mut AnyConnection,
    key: &str,
    input: &PluginInput,
    now: NaiveDateTime,
) -> Result<PluginRow, ApiError> {
    if input.key.as_deref().is_some_and(|k| k != key) {
        return Err(ApiError::bad_request("a plugin key cannot change"));
    }
    write_txn(c, |c| {
        let (mut row, _) = plugins::get(c, key)?;
        apply(c, &mut row, input)?;
        row.date_updated = now;
        plugins::update(c, &row)?;
        Ok(row)
    })
}

/// Adds a version: `archive` is an uploaded tarball (checked), or `None` to generate one.
pub fn add_version(
    c: &mut AnyConnection,
    key: &str,
    num: &str,
    stability: Option<&str>,
    archive_bytes: Option<Vec<u8>>,
    now: NaiveDateTime,
) -> Result<VersionRow, ApiError> {
    if !valid_version(num) {
        return Err(ApiError::bad_request(
            "num must be 1 to 64 of A-Z, a-z, 0-9, '.', '-' or '_'",
        ));
    }
    let stability = stability.unwrap_or("stable");
    if stability.is_empty()
        || stability.len() > 16
        || !stability.bytes().all(|b| b.is_ascii_lowercase())
    {
        return Err(ApiError::bad_request(
            "stability must be lower-case letters, e.g. stable, beta, rc",
        ));
    }
    write_txn(c, |c| {
        let (row, _) = plugins::get(c, key)?;
        let bytes = match archive_bytes {
            Some(b) => {
                archive::check(key, &b).map_err(|e| ApiError::bad_request(e.to_string()))?;
                b
            }
            None => archive::generate(key, &row.name, num),
        };
        let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
        let new = NewVersion {
            plugin_key: key.to_owned(),
            num: num.to_owned(),
            stability: stability.to_owned(),
            archive: bytes,
            archive_sha256: sha.clone(),
            created_at: now,
        };
        plugins::add_version(c, &new)?;
        Ok(VersionRow {
            plugin_key: key.to_owned(),
            num: num.to_owned(),
            stability: stability.to_owned(),
            archive_sha256: sha,
            created_at: now,
        })
    })
}

const DEMO_SEEDED: &str = "demo_plugins_seeded";

/// The demo catalogue: two free plugins and one exclusive to `standard` and `advanced`.
pub fn demo_catalogue() -> Vec<PluginInput> {
    let text = include_str!("demo-catalogue.json");
    serde_json::from_str::<CatalogueFile>(text)
        .expect("the embedded demo catalogue parses")
        .plugins
}

/// A catalogue file: `{"plugins": [...]}`.
#[derive(Debug, Deserialize)]
pub struct CatalogueFile {
    pub plugins: Vec<PluginInput>,
}

/// Creates or updates every plugin of a catalogue (one transaction per plugin's fields and
/// versions; versions already present are left alone). Archive paths are relative to `base`.
pub fn import(
    c: &mut AnyConnection,
    plugins_in: &[PluginInput],
    base: Option<&Path>,
    now: NaiveDateTime,
) -> Result<usize, ApiError> {
    for (i, input) in plugins_in.iter().enumerate() {
        let key = input.key.clone().unwrap_or_default();
        let what = format!("plugins[{i}] ({key})");
        let name_err = |e: ApiError| e.context(&what);
        if plugins::find(c, &key).map_err(name_err)?.is_some() {
            update(c, &key, input, now).map_err(name_err)?;
        } else {
            create(c, input, now).map_err(name_err)?;
        }
        let (_, existing) = plugins::get(c, &key)?;
        for ver in &input.versions {
            if existing.iter().any(|e| e.num == ver.num) {
                continue;
            }
            let bytes = match &ver.archive {
                Some(path) => {
                    let full =
                        base.map_or_else(|| Path::new(path).to_path_buf(), |dir| dir.join(path));
                    Some(std::fs::read(full).map_err(|e| {
                        name_err(ApiError::bad_request(format!(
                            "cannot read archive {path}: {e}"
                        )))
                    })?)
                }
                None => None,
            };
            add_version(c, &key, &ver.num, ver.stability.as_deref(), bytes, now)
                .map_err(name_err)?;
        }
    }
    Ok(plugins_in.len())
}

/// Reads a catalogue file (`{"plugins": [...]}`, JSON) and imports it; archive paths are
/// relative to the file.
pub fn import_file(
    c: &mut AnyConnection,
    path: &Path,
    now: NaiveDateTime,
) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read catalogue {}: {e}", path.display()))?;
    let file: CatalogueFile = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("catalogue {} is not valid: {e}", path.display()))?;
    import(c, &file.plugins, path.parent(), now)
        .map_err(|e| anyhow::anyhow!("catalogue {}: {e}", path.display()))
}

/// Seeds the demo plugins once per database (on first start).
/// Several processes starting together on one database agree through a claim row in `meta`:
/// only the one that inserts it seeds.
pub fn seed_demo_once(c: &mut AnyConnection, now: NaiveDateTime) -> Result<bool, ApiError> {
    if plugins::meta_get(c, DEMO_SEEDED)?.is_some()
        || !plugins::meta_claim(c, DEMO_SEEDED, &now.to_string())?
    {
        return Ok(false);
    }
    if let Err(e) = restore_demo(c, now) {
        let _ = plugins::meta_delete(c, DEMO_SEEDED);
        return Err(e);
    }
    Ok(true)
}

/// Puts the demo plugins back as they were first seeded (test-mode reset).
pub fn restore_demo(c: &mut AnyConnection, now: NaiveDateTime) -> Result<(), ApiError> {
    let demo = demo_catalogue();
    for p in &demo {
        plugins::delete(c, p.key.as_deref().unwrap_or_default())?;
    }
    import(c, &demo, None, now)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_split_at_the_first_dash() {
        assert_eq!(
            parse_archive_name("hello-1.0.0.tar.gz"),
            Some(("hello", "1.0.0"))
        );
        assert_eq!(
            parse_archive_name("hello-1.1.0-beta1.tar.gz"),
            Some(("hello", "1.1.0-beta1"))
        );
        assert_eq!(parse_archive_name("hello.tar.gz"), None);
        assert_eq!(parse_archive_name("hello-1.0.zip"), None);
        assert_eq!(parse_archive_name("Hello-1.0.tar.gz"), None);
        assert_eq!(parse_archive_name("hello-../x.tar.gz"), None);
    }

    #[test]
    fn the_demo_catalogue_has_free_and_exclusive_plugins() {
        let demo = demo_catalogue();
        assert!(demo.len() >= 3);
        assert!(
            demo.iter()
                .any(|p| p.required_offers.as_ref().is_some_and(|r| r.is_none()))
        );
        assert!(demo.iter().any(
            |p| matches!(&p.required_offers, Some(Some(r)) if r == &["standard", "advanced"])
        ));
        assert!(
            demo.iter()
                .all(|p| !p.versions.is_empty() && p.key.as_deref().is_some_and(valid_plugin_key))
        );
    }
}
