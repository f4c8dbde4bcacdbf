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
