//! The plugin catalogue's shapes and rules: admin input, the marketplace record GLPI reads
//! (protocol §5), which keys, versions and fields are acceptable, archive names, and the demo
//! catalogue. Storage is `db::catalogue`.

use super::Invalid;
use serde::{Deserialize, Deserializer, Serialize};

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
    /// The GLPI versions this version is offered to, in Cargo's semver requirement syntax
    /// (`~10.0`, `>=10.0.10, <12`); absent: every GLPI. On an import, a version already present
    /// takes the file's `compatibility` when the file names one (`null` removes it).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, example = ">=10.0.10, <12")]
    pub compatibility: Option<Option<String>>,
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
    /// A commercial plugin's archive needs a license (DESIGN §11.1).
    #[serde(default)]
    pub commercial: Option<bool>,
    /// The term of a new license, in days (default [`DEFAULT_LICENSE_TERM_DAYS`]).
    #[serde(default)]
    pub license_term_days: Option<i32>,
    /// A display price, such as `"99 EUR/year"`.
    #[serde(default)]
    pub price: Option<String>,
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
    /// The GLPI versions this version is offered to (Cargo's semver requirement syntax);
    /// `null`: every GLPI. The marketplace lists only the versions the caller's GLPI meets.
    #[schema(example = "~10.0")]
    pub compatibility: Option<String>,
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
    /// Whether the archive needs a license of this plugin (DESIGN §11.1).
    #[serde(default)]
    pub commercial: bool,
    /// The display price of a commercial plugin.
    #[serde(default)]
    pub price: Option<String>,
    /// The term of a new license, in days (commercial plugins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_term_days: Option<i32>,
}

/// The term of a license when the plugin names none.
pub const DEFAULT_LICENSE_TERM_DAYS: i32 = 365;

/// Checks a license term (1 day to 100 years).
pub fn check_license_term(days: i32) -> Result<i32, crate::domain::Invalid> {
    if (1..=36_500).contains(&days) {
        Ok(days)
    } else {
        Err(crate::domain::Invalid::new(
            "license_term_days must be between 1 and 36500",
        ))
    }
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

/// A URL-like text field: at most 2048 printable characters.
pub fn check_url_field(name: &str, v: &str) -> Result<(), Invalid> {
    if v.len() > 2048 || v.chars().any(char::is_control) {
        return Err(Invalid(format!(
            "{name} must be at most 2048 printable characters"
        )));
    }
    Ok(())
}

/// A plugin name: 1 to 200 characters once trimmed.
pub fn check_name(name: &str) -> Result<&str, Invalid> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Invalid::new("name must be 1 to 200 characters"));
    }
    Ok(name)
}

/// A rating between 0 and 5.
pub fn check_note(note: f64) -> Result<(), Invalid> {
    if !(0.0..=5.0).contains(&note) {
        return Err(Invalid::new("note must be between 0 and 5"));
    }
    Ok(())
}

/// Every description names its language (1 to 16 characters).
pub fn check_descriptions(d: &[Description]) -> Result<(), Invalid> {
    if d.iter().any(|d| d.lang.is_empty() || d.lang.len() > 16) {
        return Err(Invalid::new(
            "every description needs a lang of 1 to 16 characters",
        ));
    }
    Ok(())
}

/// Tag keys are like plugin keys, with a non-empty tag.
pub fn check_tags(t: &[Tag]) -> Result<(), Invalid> {
    if t.iter()
        .any(|t| !valid_plugin_key(&t.key) || t.tag.trim().is_empty())
    {
        return Err(Invalid::new(
            "tag keys are lower-case letters, digits or '_', with a non-empty tag",
        ));
    }
    Ok(())
}

/// A new plugin's key.
pub fn check_plugin_key(key: &str) -> Result<(), Invalid> {
    if !valid_plugin_key(key) {
        return Err(Invalid::new(
            "plugin key must be 1 to 64 of a-z, 0-9 or '_'",
        ));
    }
    Ok(())
}

/// A version's number and stability (`stable` by default); returns the stability.
pub fn check_version<'a>(num: &str, stability: Option<&'a str>) -> Result<&'a str, Invalid> {
    if !valid_version(num) {
        return Err(Invalid::new(
            "num must be 1 to 64 of A-Z, a-z, 0-9, '.', '-' or '_'",
        ));
    }
    let stability = stability.unwrap_or("stable");
    if stability.is_empty()
        || stability.len() > 16
        || !stability.bytes().all(|b| b.is_ascii_lowercase())
    {
        return Err(Invalid::new(
            "stability must be lower-case letters, e.g. stable, beta, rc",
        ));
    }
    Ok(stability)
}

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
        // one version shows compatibility off, and every requirement is valid
        let reqs: Vec<String> = demo
            .iter()
            .flat_map(|p| &p.versions)
            .filter_map(|v| v.compatibility.clone().flatten())
            .collect();
        assert_eq!(reqs, [">=11.0"]);
        assert!(
            reqs.iter()
                .all(|r| crate::domain::compat::check_compatibility(Some(r)).is_ok())
        );
    }
}
