//! The cache: one JSON file per instance, written atomically (temp file in the same directory,
//! fsync, rename) with mode 0600, and sealed with HMAC-SHA256 under a local secret kept next to
//! it (`<cache file>.key`, mode 0600, created on first use). A file that is missing a seal, is
//! truncated, was edited or was sealed elsewhere is discarded with a warning, never trusted.

use crate::error::Error;
use glpi_network_shared::Claims;
use jsonwebtoken::jwk::JwkSet;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const FORMAT: &str = "glpi-network-client-cache/1";
/// A cache larger than this is not even read.
const MAX_CACHE_BYTES: u64 = 4 * 1024 * 1024;
const SECRET_LEN: usize = 32;

/// What the client remembers about one instance.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The server base URL the token came from.
    pub server_url: String,
    /// The `iss` the token was checked against.
    pub issuer: String,
    /// The canonical instance URL.
    pub instance_url: String,
    /// The registration key, in plaintext (the file is 0600).
    pub key: String,
    /// The latest verified token.
    pub token: String,
    /// Its claims.
    pub claims: Claims,
    /// The server's JWKS as last fetched (it verified the token, unless a later refresh
    /// showed the token's key withdrawn).
    pub jwks: JwkSet,
    /// The local time when `jwks` was fetched (0 in caches written before it was kept, so
    /// that their set is due for a refresh).
    #[serde(default)]
    pub jwks_fetched_at: i64,
    /// The highest `ver` seen for this key.
    pub max_ver: i64,
    /// The latest server time seen (the `iat` of the latest token).
    pub last_server_time: i64,
    /// The local time when the token was fetched.
    pub fetched_at: i64,
    /// Set when the entry is read, never stored: `jwks` no longer has the key that signed
    /// `token`, so the token is not trusted any more (see `Client::load`).
    #[serde(skip)]
    pub withdrawn: bool,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("server_url", &self.server_url)
            .field("instance_url", &self.instance_url)
            .field("key", &"<redacted>")
            .field("status", &self.claims.status)
            .field("max_ver", &self.max_ver)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    format: String,
    payload: String,
    mac: String,
}

/// The cache file and its secret.
#[derive(Debug, Clone)]
pub(crate) struct CacheFile {
    path: PathBuf,
}

/// Why a cache file was discarded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Discard {
    #[error("it cannot be read: {0}")]
    Unreadable(std::io::Error),
    #[error("it is larger than {MAX_CACHE_BYTES} bytes")]
    TooLarge,
    #[error("it is not a sealed cache (corrupt or truncated)")]
    NotSealed,
    #[error("its seal does not match (edited, or written on another machine)")]
    BadSeal,
    #[error("its content is invalid: {0}")]
    BadContent(String),
}

impl CacheFile {
    pub fn new(path: PathBuf) -> Self {
        CacheFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn secret_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".key");
        self.path.with_file_name(name)
    }

    /// Reads and unseals the entry: `Ok(None)` when there is no file; `Err` with the reason
    /// when there is one that cannot be trusted.
    pub fn read(&self) -> Result<Option<Entry>, Discard> {
        self.read_as()
    }

    /// [`CacheFile::read`] for any sealed payload (a license's entry, say).
    pub fn read_as<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>, Discard> {
        let meta = match fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Discard::Unreadable(e)),
        };
        if meta.len() > MAX_CACHE_BYTES {
            return Err(Discard::TooLarge);
        }
        let bytes = fs::read(&self.path).map_err(Discard::Unreadable)?;
        let sealed: Sealed = serde_json::from_slice(&bytes).map_err(|_| Discard::NotSealed)?;
        if sealed.format != FORMAT {
            return Err(Discard::NotSealed);
        }
        let mac = hex::decode(&sealed.mac).map_err(|_| Discard::BadSeal)?;
        let secret = match self.read_secret() {
            Some(s) => s,
            None => return Err(Discard::BadSeal),
        };
        hmac::verify(&hmac_key(&secret), sealed.payload.as_bytes(), &mac)
            .map_err(|_| Discard::BadSeal)?;
        serde_json::from_str(&sealed.payload)
            .map(Some)
            .map_err(|e| Discard::BadContent(e.to_string()))
    }

    /// Removes a file that cannot be trusted (a later write replaces it anyway).
    pub fn discard(&self) {
        let _ = fs::remove_file(&self.path);
    }

    /// Seals and writes the entry atomically with mode 0600.
    pub fn write(&self, entry: &Entry) -> Result<(), Error> {
        self.write_as(entry)
    }

    /// [`CacheFile::write`] for any sealed payload.
    pub fn write_as<T: Serialize>(&self, entry: &T) -> Result<(), Error> {
        let io = |source| Error::Cache {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.dir() {
            create_private_dir(dir).map_err(io)?;
        }
        let secret = self.secret_or_create().map_err(io)?;
        let payload = serde_json::to_string(entry).expect("the cache entry serialises");
        let mac = hmac::sign(&hmac_key(&secret), payload.as_bytes());
        let sealed = Sealed {
            format: FORMAT.to_owned(),
            payload,
            mac: hex::encode(mac.as_ref()),
        };
        let bytes = serde_json::to_vec_pretty(&sealed).expect("the sealed cache serialises");
        write_atomically(&self.path, &bytes).map_err(io)
    }

    /// Deletes the cache file (its secret stays for the next registration).
    pub fn remove(&self) -> Result<(), Error> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Cache {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn dir(&self) -> Option<&Path> {
        self.path.parent().filter(|d| !d.as_os_str().is_empty())
    }

    fn read_secret(&self) -> Option<Vec<u8>> {
        let text = fs::read_to_string(self.secret_path()).ok()?;
        hex::decode(text.trim())
            .ok()
            .filter(|s| s.len() == SECRET_LEN)
    }

    /// The secret, created on first use. Creation writes a temp file and links it into place,
    /// so two processes starting together agree on one secret and never read a partial one.
    fn secret_or_create(&self) -> std::io::Result<Vec<u8>> {
        if let Some(s) = self.read_secret() {
            return Ok(s);
        }
        let mut secret = vec![0u8; SECRET_LEN];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| std::io::Error::other("the system random generator failed"))?;
        let path = self.secret_path();
        let tmp = temp_path(&path);
        write_private(&tmp, hex::encode(&secret).as_bytes())?;
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(secret),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match self.read_secret() {
                Some(s) => Ok(s),
                // A damaged secret: replace it (whatever it sealed is lost anyway).
                None => {
                    write_atomically(&path, hex::encode(&secret).as_bytes())?;
                    Ok(secret)
                }
            },
            Err(e) => Err(e),
        }
    }
}

fn hmac_key(secret: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

fn temp_path(path: &Path) -> PathBuf {
    let mut rnd = [0u8; 6];
    let _ = SystemRandom::new().fill(&mut rnd);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        hex::encode(rnd)
    ))
}

/// Creates `path` (which must not exist) with mode 0600, writes `bytes` and fsyncs.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Temp file in the same directory, fsync, rename over `path`, fsync the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_path(path);
    if let Err(e) = write_private(&tmp, bytes).and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

#[cfg(test)]
pub(crate) mod tests;
