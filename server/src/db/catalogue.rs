//! The plugin catalogue's storage: plugins from admin input or catalogue files, versions with
//! their archives, the record GLPI reads built from rows, and the demo plugins seeded on first
//! start. The shapes and field rules are in `domain::catalogue`.

use super::plugin_terms;
use super::plugins::{self, NewVersion, PluginRow, VersionRow};
use super::{AnyConnection, Error, Result, Touches, Transact, offers};
use crate::domain::archive;
use crate::domain::catalogue::*;
use crate::domain::compat::check_compatibility;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use std::path::Path;

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
    terms: Option<&plugin_terms::Terms>,
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
                    compatibility: v.compatibility.clone(),
                })
                .collect()
        } else {
            Vec::new()
        },
        required_offers: required_offers(row),
        commercial: terms.is_some_and(|t| t.commercial),
        price: terms.and_then(|t| t.price.clone()),
        license_term_days: terms.filter(|t| t.commercial).map(|t| t.term_days()),
    }
}

/// Applies `input` to `row` (a new row for create), validating every field.
pub fn apply(c: &mut AnyConnection, row: &mut PluginRow, input: &PluginInput) -> Result<()> {
    if let Some(name) = &input.name {
        row.name = check_name(name)?.to_owned();
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
        check_note(note)?;
        row.note = note;
    }
    if let Some(a) = &input.authors {
        row.authors = json(a);
    }
    if let Some(d) = &input.descriptions {
        check_descriptions(d)?;
        row.descriptions = json(d);
    }
    if let Some(t) = &input.tags {
        check_tags(t)?;
        row.tags = json(t);
    }
    if let Some(req) = &input.required_offers {
        row.required_offers = match req {
            None => None,
            Some(list) if list.is_empty() => None,
            Some(list) => {
                for o in list {
                    if !offers::exists(c, o)? {
                        return Err(Error::invalid(format!(
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
pub fn new_row(key: &str, now: NaiveDateTime) -> Result<PluginRow> {
    check_plugin_key(key)?;
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
pub fn create(c: &mut impl Transact, input: &PluginInput, now: NaiveDateTime) -> Result<PluginRow> {
    let key = input
        .key
        .as_deref()
        .ok_or_else(|| Error::invalid("key is required"))?;
    if input.name.is_none() {
        return Err(Error::invalid("name is required"));
    }
    c.write(Touches::Anything, |c| {
        let mut row = new_row(key, now)?;
        apply(c, &mut row, input)?;
        plugins::insert(c, &row)?;
        plugin_terms::save(c, &row.key, input)?;
        Ok(row)
    })
}

/// Updates a plugin from admin input (the key cannot change).
pub fn update(
    c: &mut impl Transact,
    key: &str,
    input: &PluginInput,
    now: NaiveDateTime,
) -> Result<PluginRow> {
    if input.key.as_deref().is_some_and(|k| k != key) {
        return Err(Error::invalid("a plugin key cannot change"));
    }
    c.write(Touches::Anything, |c| {
        let (mut row, _) = plugins::get(c, key)?;
        apply(c, &mut row, input)?;
        row.date_updated = now;
        plugins::update(c, &row)?;
        plugin_terms::save(c, key, input)?;
        Ok(row)
    })
}

/// A version to add: its number, stability (`stable` by default) and GLPI compatibility
/// requirement (none by default).
#[derive(Debug, Clone, Copy, Default)]
pub struct VersionSpec<'a> {
    pub num: &'a str,
    pub stability: Option<&'a str>,
    pub compatibility: Option<&'a str>,
}

/// Adds a version: `archive` is an uploaded tarball (checked), or `None` to generate one.
pub fn add_version(
    c: &mut impl Transact,
    key: &str,
    spec: VersionSpec<'_>,
    archive_bytes: Option<Vec<u8>>,
    now: NaiveDateTime,
) -> Result<VersionRow> {
    let num = spec.num;
    let stability = check_version(num, spec.stability)?;
    let compatibility = check_compatibility(spec.compatibility)?.map(str::to_owned);
    // an uploaded archive is unpacked and checked before the write transaction opens, so a
    // large or hostile one never holds the writer
    if let Some(b) = &archive_bytes {
        archive::check(key, b).map_err(|e| Error::invalid(e.to_string()))?;
    }
    c.write(Touches::Anything, |c| {
        let (row, _) = plugins::get(c, key)?;
        let bytes = match archive_bytes {
            Some(b) => b,
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
            compatibility: compatibility.clone(),
        };
        plugins::add_version(c, &new)?;
        Ok(VersionRow {
            plugin_key: key.to_owned(),
            num: num.to_owned(),
            stability: stability.to_owned(),
            archive_sha256: sha,
            created_at: now,
            compatibility,
        })
    })
}

const DEMO_SEEDED: &str = "demo_plugins_seeded";

/// Creates or updates every plugin of a catalogue (one transaction per plugin's fields and
/// versions; a version already present keeps its archive and stability, and takes the
/// catalogue's `compatibility` when it names one). Archive paths are relative to `base`.
pub fn import(
    c: &mut impl Transact,
    plugins_in: &[PluginInput],
    base: Option<&Path>,
    now: NaiveDateTime,
) -> Result<usize> {
    for (i, input) in plugins_in.iter().enumerate() {
        let key = input.key.clone().unwrap_or_default();
        let what = format!("plugins[{i}] ({key})");
        let name_err = |e: Error| e.within(&what);
        if plugins::find(c, &key).map_err(name_err)?.is_some() {
            update(c, &key, input, now).map_err(name_err)?;
        } else {
            create(c, input, now).map_err(name_err)?;
        }
        import_versions(c, &key, &input.versions, base, now).map_err(name_err)?;
    }
    Ok(plugins_in.len())
}

/// Adds a catalogue's versions of `key` that are not there yet; a version already present
/// keeps its archive and stability, and takes `compatibility` when the catalogue names one.
fn import_versions(
    c: &mut impl Transact,
    key: &str,
    versions: &[VersionInput],
    base: Option<&Path>,
    now: NaiveDateTime,
) -> Result<()> {
    let (_, existing) = plugins::get(c, key)?;
    for ver in versions {
        let compatibility = ver.compatibility.as_ref().map(Option::as_deref);
        if existing.iter().any(|e| e.num == ver.num) {
            if let Some(compat) = compatibility {
                let compat = check_compatibility(compat)?;
                c.write(Touches::Anything, |c| {
                    plugins::set_compatibility(c, key, &ver.num, compat)
                })?;
            }
            continue;
        }
        let bytes = match &ver.archive {
            Some(path) => {
                let full = base.map_or_else(|| Path::new(path).to_path_buf(), |dir| dir.join(path));
                Some(
                    std::fs::read(full)
                        .map_err(|e| Error::invalid(format!("cannot read archive {path}: {e}")))?,
                )
            }
            None => None,
        };
        let spec = VersionSpec {
            num: &ver.num,
            stability: ver.stability.as_deref(),
            compatibility: compatibility.flatten(),
        };
        add_version(c, key, spec, bytes, now)?;
    }
    Ok(())
}

/// Reads a catalogue file (`{"plugins": [...]}`, JSON) and imports it; archive paths are
/// relative to the file.
pub fn import_file(
    c: &mut impl Transact,
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
pub fn seed_demo_once(c: &mut impl Transact, now: NaiveDateTime) -> Result<bool> {
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
pub fn restore_demo(c: &mut impl Transact, now: NaiveDateTime) -> Result<()> {
    let demo = demo_catalogue();
    for p in &demo {
        plugins::delete(c, p.key.as_deref().unwrap_or_default())?;
    }
    import(c, &demo, None, now)?;
    Ok(())
}
