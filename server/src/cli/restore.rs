//! `restore --from DIR [--force]` (DESIGN §14): a backup directory written by `backup` (see
//! [`super::backup`]) into `--data-dir` / `--database-url`. It never overwrites a database, a
//! master key or an admin token without `--force`, and keeps what `--force` replaces beside it.

use super::backup::{
    ADMIN_TOKEN_FILE, DB_FILE, MANIFEST, Manifest, PG_DUMP_FILE, backend_name, private_dir, sh,
    without_password,
};
use super::progress;
use crate::config::Settings;
use crate::db::{self, Backend};
use crate::signing::secret::{remove_durably, rename_durably, write_secret_atomic};
use crate::signing::{MASTER_KEY_FILE, PREVIOUS_KEY_FILE};
use serde_json::json;
use std::path::{Path, PathBuf};

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

/// Refuses (without `--force`) a target database that exists (SQLite) or already holds a
/// deployment (PostgreSQL).
fn check_no_database(backend: &Backend) -> anyhow::Result<()> {
    match backend {
        Backend::Sqlite(path) if Path::new(path).exists() => {
            anyhow::bail!("the database {path} exists: pass --force to overwrite it")
        }
        Backend::Postgres(_) if holds_a_deployment(backend)? => anyhow::bail!(
            "the database of --database-url already holds a deployment: pass --force \
             (the printed pg_restore --clean then replaces it)"
        ),
        _ => Ok(()),
    }
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
    if !force {
        check_no_database(&backend)?;
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
