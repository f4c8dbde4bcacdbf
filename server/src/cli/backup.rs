//! `backup --to DIR` (DESIGN §14; `restore.rs` reads what it writes).
//!
//! A backup directory (mode 0700, every file 0600) holds `backup.json` (what it holds), the
//! master key (`master.key`, and `master.key.previous` during a change of master key), the
//! admin token, and on SQLite the database `glpi-network.db`: a consistent copy taken with
//! `VACUUM INTO` on a read-only connection, never a copy of the live file, so a server may keep
//! serving (and writing) meanwhile. On PostgreSQL the database is `pg_dump`'s job: the command
//! is printed, and `restore` prints the matching `pg_restore` command.

use super::progress;
use crate::config::Settings;
use crate::db::{self, Backend};
use crate::signing::secret::write_new_secret;
use crate::signing::{MASTER_KEY_FILE, PREVIOUS_KEY_FILE, key_texts};
use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;

/// What a backup directory holds.
pub const MANIFEST: &str = "backup.json";
/// The SQLite copy in a backup directory.
pub const DB_FILE: &str = "glpi-network.db";
/// Where the printed `pg_dump` command writes the PostgreSQL dump.
pub const PG_DUMP_FILE: &str = "glpi-network.pgdump";
/// The admin token file of a data directory (and of a backup).
pub(super) const ADMIN_TOKEN_FILE: &str = "admin-token";

/// `backup.json`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Manifest {
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub created_at: DateTime<Utc>,
    /// The server version that took it.
    pub version: String,
    /// The files of the directory (the database copy, the secrets).
    pub files: Vec<String>,
}

/// The secrets a backup carries, by file name: the master key(s) in force and the admin
/// token, from the configuration or the data directory.
fn secrets_of(settings: &Settings) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut out = Vec::new();
    match key_texts(&settings.master_key, &settings.data_dir, false)? {
        Some(keys) => {
            for (name, key) in [MASTER_KEY_FILE, PREVIOUS_KEY_FILE].into_iter().zip(keys) {
                out.push((name, key.hex));
            }
        }
        None => eprintln!(
            "warning: no master key ({} does not exist): the backup holds none, and signing \
             keys sealed under a lost key cannot be opened",
            settings.data_dir.join(MASTER_KEY_FILE).display()
        ),
    }
    let token_file = settings.data_dir.join(ADMIN_TOKEN_FILE);
    match settings.admin_token.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => out.push((ADMIN_TOKEN_FILE, t.to_owned())),
        _ if token_file.is_file() => {
            let t = std::fs::read_to_string(&token_file)?;
            out.push((ADMIN_TOKEN_FILE, t.trim().to_owned()));
        }
        _ => {}
    }
    Ok(out)
}

/// Creates `dir` (and its missing parents) with mode 0700; an existing directory must not
/// already hold a backup.
pub(super) fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// An SQL string literal.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A consistent copy of the SQLite database at `path` into `dest` (mode 0600), taken by
/// `VACUUM INTO` on a read-only connection while other processes may write, then checked.
fn copy_sqlite(path: &str, dest: &Path) -> anyhow::Result<u64> {
    let mut conn = db::read_only::connect_locked(&Backend::Sqlite(path.to_owned()))?;
    let spinner = progress::spinner(format!("copying the database {path}"));
    let dest_text = dest
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("{} is not valid UTF-8", dest.display()))?;
    conn.batch_execute(&format!("VACUUM INTO {}", quoted(dest_text)))
        .map_err(|e| anyhow::anyhow!("cannot copy the database {path}: {e}"))?;
    spinner.finish_and_clear();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o600))?;
    let mut copy = db::read_only::connect_to(&Backend::Sqlite(dest_text.to_owned()))?;
    copy.batch_execute("PRAGMA quick_check;")
        .map_err(|e| anyhow::anyhow!("the copy {} is damaged: {e}", dest.display()))?;
    Ok(std::fs::metadata(dest)?.len())
}

/// A PostgreSQL URL without its password (commands are printed; libpq reads the password
/// from `PGPASSWORD` or `~/.pgpass`).
pub(super) fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// A shell word.
pub(super) fn sh(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:@=".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `backup --to DIR`.
pub(super) fn backup(settings: &Settings, to: &Path) -> anyhow::Result<()> {
    let backend = Backend::from_url(&settings.database_url())?;
    if let Backend::Sqlite(path) = &backend {
        db::read_only::check_sqlite_exists(path)?;
    }
    if to.join(MANIFEST).exists() {
        anyhow::bail!(
            "{} already holds a backup: give a new directory",
            to.display()
        );
    }
    let secrets = secrets_of(settings)?;
    private_dir(to)?;
    let mut files = Vec::new();
    let mut out = json!({ "to": to });
    if let Backend::Sqlite(path) = &backend {
        let bytes = copy_sqlite(path, &to.join(DB_FILE))?;
        files.push(DB_FILE.to_owned());
        out["database"] = json!({ "file": to.join(DB_FILE), "bytes": bytes });
    }
    for (name, value) in &secrets {
        write_new_secret(&to.join(name), value)?;
        files.push((*name).to_owned());
    }
    let manifest = Manifest {
        backend: backend_name(&backend).to_owned(),
        created_at: Utc::now(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        files: files.clone(),
    };
    write_new_secret(
        &to.join(MANIFEST),
        &serde_json::to_string_pretty(&manifest)?,
    )?;
    out["files"] = json!(files);
    if let Backend::Postgres(url) = &backend {
        let cmd = format!(
            "pg_dump --format=custom --file {} {}",
            sh(&to.join(PG_DUMP_FILE).display().to_string()),
            sh(&without_password(url))
        );
        eprintln!(
            "now dump the database (the master key and admin token are in {}):\n  {cmd}",
            to.display()
        );
        out["pg_dump"] = json!(cmd);
    }
    super::print(&out)
}

pub(super) fn backend_name(b: &Backend) -> &'static str {
    match b {
        Backend::Sqlite(_) => "sqlite",
        Backend::Postgres(_) => "postgres",
    }
}
