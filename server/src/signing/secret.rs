//! Secret files in the data directory (the master key, the admin token), created once.

use std::io::Write;
use std::path::Path;

/// Reads a secret file, or creates it (mode 0600) with `generate()` when it does not exist.
/// Creation is atomic (temp file, fsync, hard link), so several processes starting together
/// on one data directory agree on one secret. Returns the trimmed contents and whether this
/// call created the file.
pub fn read_or_create_secret(
    path: &Path,
    generate: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<(String, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Ok((std::fs::read_to_string(path)?.trim().to_owned(), false));
    }
    let value = generate()?;
    let tmp = path.with_extension(format!(
        "tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(value.as_bytes())?;
        f.sync_all()?;
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((value, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok((std::fs::read_to_string(path)?.trim().to_owned(), false))
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes `value` to `path` atomically: a temp file beside it (mode 0600) is written and
/// fsynced, renamed over `path`, and the directory is fsynced, so `path` holds either its old
/// contents or `value`, never a torn file, even after a crash.
pub fn write_secret_atomic(path: &Path, value: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    write_new_secret(&tmp, value)?;
    rename_durably(&tmp, path)
}

/// Creates `path` (replacing a stale one) with `value`, mode 0600, and fsyncs it.
pub fn write_new_secret(path: &Path, value: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    f.write_all(value.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Renames `from` over `to` and fsyncs their directory, so the rename survives a crash.
pub fn rename_durably(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::rename(from, to).map_err(|e| {
        anyhow::anyhow!("cannot rename {} to {}: {e}", from.display(), to.display())
    })?;
    sync_dir(to)
}

/// Removes `path` if it exists and fsyncs its directory.
pub fn remove_durably(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::anyhow!("cannot remove {}: {e}", path.display())),
    }
}

fn sync_dir(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
