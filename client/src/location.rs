//! Where caches live by default: one file per instance under `glpi-network/` in the user's
//! cache directory, named from the instance's canonical URL, so that two instances never share
//! (and overwrite) one file. The `glpi-network` CLI uses these; a program may too.

use crate::cache::CacheFile;
use glpi_network_shared::InstanceUrl;
use std::path::{Path, PathBuf};

/// The longest readable part of a cache file name (a digest of the whole URL follows it).
const MAX_SLUG: usize = 80;

/// The directory of the per-instance cache files: `glpi-network/` under the user's cache
/// directory (`$XDG_CACHE_HOME` or `~/.cache` on Linux), or `None` when there is none.
pub fn default_cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("glpi-network"))
}

/// The cache file of `instance` in `dir`: its canonical URL made safe for a file name
/// (`https_glpi.example.com_glpi`), then the first 48 bits of its SHA-256 so that URLs which
/// read alike never share a file, then `.json`.
pub fn instance_cache_path(dir: &Path, instance: &InstanceUrl) -> PathBuf {
    let url = instance.as_str();
    let slug: String = url
        .replacen("://", "_", 1)
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .take(MAX_SLUG)
        .collect();
    let digest = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
    dir.join(format!(
        "{slug}-{}.json",
        hex::encode(&digest.as_ref()[..6])
    ))
}

/// One instance that has a cache file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CachedInstance {
    /// Its canonical URL.
    pub instance_url: String,
    /// The server it was registered with.
    pub server_url: String,
    /// Its cache file.
    pub path: PathBuf,
}

/// The instances cached in `dir`, sorted by URL: one per `*.json` file there whose seal
/// verifies (other files are skipped, not removed). When two files speak of one instance (a
/// file named before caches were per instance, say), the one named by
/// [`instance_cache_path`] wins.
pub fn cached_instances(dir: &Path) -> Vec<CachedInstance> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<CachedInstance> = Vec::new();
    for item in read.flatten() {
        let path = item.path();
        let is_json = path.extension().is_some_and(|x| x == "json");
        if !is_json || !item.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        match CacheFile::new(path.clone()).read() {
            Ok(Some(e)) => found.push(CachedInstance {
                instance_url: e.instance_url,
                server_url: e.server_url,
                path,
            }),
            Ok(None) => {}
            Err(why) => tracing::debug!(path = %path.display(), "not listed as a cache: {why}"),
        }
    }
    let canonical = |c: &CachedInstance| {
        InstanceUrl::parse(&c.instance_url).is_ok_and(|u| instance_cache_path(dir, &u) == c.path)
    };
    found.sort_by(|a, b| {
        (&a.instance_url, !canonical(a), &a.path).cmp(&(&b.instance_url, !canonical(b), &b.path))
    });
    found.dedup_by(|later, first| later.instance_url == first.instance_url);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alias_of_an_instance_names_one_file_and_other_instances_another() {
        let dir = Path::new("/c");
        let path = |u: &str| instance_cache_path(dir, &InstanceUrl::parse(u).unwrap());
        let p = path("https://glpi.example.com/glpi");
        assert_eq!(p, path("https://GLPI.example.com:443/glpi/index.php"));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("https_glpi.example.com_glpi-"), "{name}");
        assert!(name.ends_with(".json"));
        assert_ne!(p, path("http://glpi.example.com/glpi"));
        assert_ne!(p, path("https://glpi.example.com/glpi_"));
        assert_ne!(
            path("https://a.example.com/x_y"),
            path("https://a.example.com/x/y")
        );
        let long = format!("https://glpi.example.com/{}", "a".repeat(1500));
        assert!(path(&long).file_name().unwrap().len() < 100);
    }
}
