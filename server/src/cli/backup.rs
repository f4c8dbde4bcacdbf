//! `backup --to DIR` and `restore --from DIR [--force]` (DESIGN §14).
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
use crate::signing::secret::{
    remove_durably, rename_durably, write_new_secret, write_secret_atomic,
};
use crate::signing::{MASTER_KEY_FILE, PREVIOUS_KEY_FILE, key_texts};
use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};

/// What a backup directory holds.
pub const MANIFEST: &str = "backup.json";
/// The SQLite copy in a backup directory.
pub const DB_FILE: &str = "glpi-network.db";
/// Where the printed `pg_dump` command writes the PostgreSQL dump.
pub const PG_DUMP_FILE: &str = "glpi-network.pgdump";
/// The admin token file of a data directory (and of a backup).
const ADMIN_TOKEN_FILE: &str = "admin-token";

/// `backup.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    /// `sqlite` or `postgres`.
    backend: String,
    created_at: DateTime<Utc>,
    /// The server version that took it.
    version: String,
    /// The files of the directory (the database copy, the secrets).
    files: Vec<String>,
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
fn private_dir(dir: &Path) -> anyhow::Result<()> {
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
    let mut conn = db::read_only::connect_to(&Backend::Sqlite(path.to_owned()))?;
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
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// A shell word.
fn sh(text: &str) -> String {
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

fn backend_name(b: &Backend) -> &'static str {
    match b {
        Backend::Sqlite(_) => "sqlite",
        Backend::Postgres(_) => "postgres",
    }
}

fn read_manifest(from: &Path) -> anyhow::Result<Manifest> {
    let path = from.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a backup ({}: {e})",
            from.display(),
            path.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Refuses to replace a secret of the data directory by a different one without `--force`
/// (the one there may seal or open another database).
fn check_secrets(dir: &Path, secrets: &[(&str, String)], force: bool) -> anyhow::Result<()> {
    for (name, value) in secrets {
        let path = dir.join(name);
        if let Ok(there) = std::fs::read_to_string(&path)
            && there.trim() != value.trim()
            && !force
        {
            anyhow::bail!(
                "{} holds another {}: pass --force to replace it (keep a copy first)",
                path.display(),
                if *name == ADMIN_TOKEN_FILE {
                    "admin token"
                } else {
                    "master key"
                }
            );
        }
    }
    Ok(())
}

/// Keeps what `restore --force` replaces: the database `dest` becomes `<dest>.before-restore`
/// (with its `-wal` as `<dest>.before-restore-wal`, so it can be put back as it was); its
/// `-shm` and `-journal` are removed.
fn set_aside(dest: &Path) -> anyhow::Result<()> {
    let with = |suffix: &str| PathBuf::from(format!("{}{suffix}", dest.display()));
    for (from, to) in [("", ".before-restore"), ("-wal", ".before-restore-wal")] {
        if with(from).exists() {
            rename_durably(&with(from), &with(to))?;
        } else {
            remove_durably(&with(to))?;
        }
    }
    for suffix in ["-shm", "-journal"] {
        remove_durably(&with(suffix))?;
    }
    Ok(())
}

/// Copies `src` over the database `dest` through a temporary file, removing the old
/// database's `-wal` and `-shm` (which belong to it, not to the copy).
fn restore_sqlite(src: &Path, dest: &str) -> anyhow::Result<u64> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let dest = PathBuf::from(dest);
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir)?;
    }
    let tmp = dest.with_extension(format!("restore-{}", std::process::id()));
    let mut input = std::fs::File::open(src)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", src.display()))?;
    let len = input.metadata()?.len();
    let mut output = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", tmp.display()))?;
    let bar = progress::bytes(len, "restoring the database");
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        output.write_all(&buf[..n])?;
        bar.inc(n as u64);
    }
    output.sync_all()?;
    bar.finish_and_clear();
    set_aside(&dest)?;
    rename_durably(&tmp, &dest)?;
    Ok(len)
}

/// Whether a PostgreSQL database already has this server's tables (read-only look).
fn holds_a_deployment(backend: &Backend) -> anyhow::Result<bool> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = db::read_only::connect_to(backend)?;
    let found: Found = diesel::sql_query(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'registration_keys'",
    )
    .get_result(&mut c)?;
    Ok(found.n > 0)
}

/// `restore --from DIR [--force]`.
pub(super) fn restore(settings: &Settings, from: &Path, force: bool) -> anyhow::Result<()> {
    let manifest = read_manifest(from)?;
    let url = settings.database_url();
    let backend = Backend::from_url(&url)?;
    if manifest.backend != backend_name(&backend) {
        anyhow::bail!(
            "{} is a backup of a {} database; --database-url names a {} one",
            from.display(),
            manifest.backend,
            backend_name(&backend)
        );
    }
    let mut secrets = Vec::new();
    for name in [MASTER_KEY_FILE, PREVIOUS_KEY_FILE, ADMIN_TOKEN_FILE] {
        if manifest.files.iter().any(|f| f == name) {
            secrets.push((name, std::fs::read_to_string(from.join(name))?));
        }
    }
    if let Backend::Sqlite(path) = &backend
        && Path::new(path).exists()
        && !force
    {
        anyhow::bail!("the database {path} exists: pass --force to overwrite it");
    }
    if let Backend::Postgres(_) = &backend
        && !force
        && holds_a_deployment(&backend)?
    {
        anyhow::bail!(
            "the database of --database-url already holds a deployment: pass --force \
             (the printed pg_restore --clean then replaces it)"
        );
    }
    check_secrets(&settings.data_dir, &secrets, force)?;
    private_dir(&settings.data_dir)?;
    let mut out = json!({ "from": from, "data_dir": settings.data_dir });
    if let Backend::Sqlite(path) = &backend {
        let bytes = restore_sqlite(&from.join(DB_FILE), path)?;
        out["database"] = json!({ "file": path, "bytes": bytes });
    }
    write_secrets(&settings.data_dir, &secrets)?;
    if let Backend::Sqlite(_) = &backend {
        // opens it as a server would, bringing an older copy's schema up to date
        db::open(&url, 1)?;
    }
    if let Backend::Postgres(url) = &backend {
        let cmd = format!(
            "pg_restore --clean --if-exists --no-owner --dbname {} {}",
            sh(&without_password(url)),
            sh(&from.join(PG_DUMP_FILE).display().to_string())
        );
        eprintln!(
            "now restore the database (the master key and admin token are restored):\n  {cmd}"
        );
        out["pg_restore"] = json!(cmd);
    }
    if settings.master_key.iter().any(|k| !k.trim().is_empty()) {
        eprintln!(
            "note: --master-key / GLPI_NETWORK_MASTER_KEY is set and wins over the restored master.key"
        );
    }
    super::print(&out)
}

/// Writes the restored secrets (0600); one that differs from the file it replaces (with
/// `--force`) keeps that file as `<name>.before-restore`. A `master.key.previous` the backup
/// does not hold is removed (it belonged to the key being replaced).
fn write_secrets(dir: &Path, secrets: &[(&str, String)]) -> anyhow::Result<()> {
    for (name, value) in secrets {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|there| there.trim() != value.trim()) {
            rename_durably(&path, &dir.join(format!("{name}.before-restore")))?;
        }
        write_secret_atomic(&path, value)?;
    }
    if secrets.iter().any(|(n, _)| *n == MASTER_KEY_FILE)
        && !secrets.iter().any(|(n, _)| *n == PREVIOUS_KEY_FILE)
    {
        remove_durably(&dir.join(PREVIOUS_KEY_FILE))?;
    }
    Ok(())
}
