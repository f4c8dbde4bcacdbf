//! `master-key rotate [--new-key-file F] [--finish]` and `master-key status` (DESIGN §13).
//!
//! # The order of a rotation, and why a crash at any step leaves a server that starts
//!
//! The invariant: every sealed secret is sealed under a key that a server started now loads,
//! `<data-dir>/master.key` or `<data-dir>/master.key.previous` (a server opens with either, the
//! current key first). Transactions are all-or-nothing and `rename` is atomic, so a crash
//! leaves the state after the last finished step. With O the current key, P a previous key
//! left by an unfinished rotation and N the new key:
//!
//! 1. `reseal-previous`: re-seal under O what is still sealed under P (one transaction; only
//!    when `master.key.previous` exists). Files O, P; every secret under O.
//! 2. `write-previous`: O written to `master.key.previous` (temp file, fsync, rename, mode
//!    0600). Files O, O; secrets under O. P is dropped only now that nothing needs it.
//! 3. `write-temp`: N written to `master.key.new` (fsync), which no server reads. Files O, O.
//! 4. `rename`: `master.key.new` renamed over `master.key` (directory fsynced). Files N, O;
//!    secrets under O, opened with the previous key.
//! 5. `reseal`: every secret re-sealed under N in one transaction. Files N, O; secrets under N.
//!
//! `--finish`: (1) `finish-reseal` re-seals under N what is still sealed under O (a signing key
//! made meanwhile by a process that still had only O), then (2) removes `master.key.previous`.
//! Files N; secrets under N.
//!
//! Processes already running keep signing throughout: a process keeps its active signing key
//! in memory and re-opens a key only when another one becomes active; restarted one by one,
//! each loads both files. Public keys are never re-sealed, so the JWKS and every issued token
//! stay valid.
//!
//! The fault points: with `GLPI_NETWORK_TEST_CRASH_AFTER=<step>` (a step name above, or
//! `reseal-uncommitted`: inside step 5's transaction, before its commit), the command exits
//! with [`CRASH_EXIT`] right after that step. Honoured only by a binary built with debug
//! assertions (tests) run with `--test-mode`; a release build ignores it.

use crate::app::open_pool;
use crate::config::{MasterKeyCmd, Settings};
use crate::db;
use crate::domain::clock::Clock;
use crate::signing::secret::{
    remove_durably, rename_durably, write_new_secret, write_secret_atomic,
};
use crate::signing::{KeyText, MASTER_KEY_FILE, MasterKey, PREVIOUS_KEY_FILE, key_texts, rekey};
use serde_json::json;
use std::path::Path;

/// The variable naming the step after which a test rotation stops.
pub const CRASH_ENV: &str = "GLPI_NETWORK_TEST_CRASH_AFTER";
/// The exit code of a rotation stopped at a fault point.
pub const CRASH_EXIT: i32 = 86;
/// Where the new key is written before it is renamed over `master.key`.
const NEW_KEY_FILE: &str = "master.key.new";

/// `master-key rotate | status`.
pub(super) fn master_key(settings: &Settings, cmd: MasterKeyCmd) -> anyhow::Result<()> {
    match cmd {
        MasterKeyCmd::Status => status(settings),
        MasterKeyCmd::Rotate { finish: true, .. } => finish(settings),
        MasterKeyCmd::Rotate { new_key_file, .. } => rotate(settings, new_key_file.as_deref()),
    }
}

/// Stops the process after `step` when a test asked for it (see the module documentation).
fn fault_point(settings: &Settings, step: &str) {
    if cfg!(debug_assertions)
        && settings.test_mode
        && std::env::var(CRASH_ENV).is_ok_and(|s| s == step)
    {
        eprintln!("test fault point: stopped after step {step}");
        std::process::exit(CRASH_EXIT);
    }
}

/// The master keys in force (current first), read without creating anything.
fn loaded(settings: &Settings) -> anyhow::Result<Vec<KeyText>> {
    if let Some(keys) = key_texts(&settings.master_key, &settings.data_dir, false)? {
        return Ok(keys);
    }
    if !settings.data_dir.is_dir() {
        anyhow::bail!(
            "the data directory {} does not exist",
            settings.data_dir.display()
        );
    }
    anyhow::bail!(
        "there is no master key: {} does not exist (pass --master-key)",
        settings.data_dir.join(MASTER_KEY_FILE).display()
    )
}

/// The new key: read from `--new-key-file` (64 hex characters) or generated.
fn new_key(file: Option<&Path>) -> anyhow::Result<KeyText> {
    let Some(file) = file else {
        return KeyText::generate("a generated key");
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read --new-key-file {}: {e}", file.display()))?;
    let key = KeyText {
        hex: text.trim().to_owned(),
        origin: format!("--new-key-file {}", file.display()),
    };
    MasterKey::from_texts(std::slice::from_ref(&key))
        .map_err(|e| anyhow::anyhow!("{e}; nothing was changed"))?;
    Ok(key)
}

/// Refuses to start a rotation when a secret opens with none of the keys in force.
fn check_all_open(c: &mut db::Conn, keys: &MasterKey) -> anyhow::Result<()> {
    if let Some(s) = rekey::status(c, keys)?
        .into_iter()
        .find(|s| s.sealed_with == rekey::SealedWith::Unknown)
    {
        anyhow::bail!(
            "{} {} cannot be opened with the master key(s) in force; nothing was changed",
            s.kind,
            s.id
        );
    }
    Ok(())
}

/// `master-key rotate`: the five steps of the module documentation, in that order.
fn rotate(settings: &Settings, file: Option<&Path>) -> anyhow::Result<()> {
    let old = loaded(settings)?;
    let new = new_key(file)?;
    if new.same_key(&old[0]) {
        anyhow::bail!("the new key is the current master key; nothing was changed");
    }
    let from = MasterKey::from_texts(&old)?;
    let current = MasterKey::from_texts(&old[..1])?;
    let to = MasterKey::from_texts(std::slice::from_ref(&new))?;
    let dir = &settings.data_dir;
    super::require_database(settings)?;
    let db = open_pool(settings)?;
    let mut c = db.get()?;
    let now = Clock::default().now_naive();
    check_all_open(&mut c, &from)?;
    if old.len() > 1 {
        rekey::reseal(&mut c, &from, &current, now, || {})?;
    }
    fault_point(settings, "reseal-previous");
    write_secret_atomic(&dir.join(PREVIOUS_KEY_FILE), &old[0].hex)?;
    fault_point(settings, "write-previous");
    write_new_secret(&dir.join(NEW_KEY_FILE), &new.hex)?;
    fault_point(settings, "write-temp");
    rename_durably(&dir.join(NEW_KEY_FILE), &dir.join(MASTER_KEY_FILE))?;
    fault_point(settings, "rename");
    let n = rekey::reseal(&mut c, &from, &to, now, || {
        fault_point(settings, "reseal-uncommitted")
    })?;
    fault_point(settings, "reseal");
    warn_if_configured(settings);
    super::print(&json!({
        "resealed": n,
        "master_key": dir.join(MASTER_KEY_FILE),
        "previous": dir.join(PREVIOUS_KEY_FILE),
    }))
}

/// `master-key rotate --finish`: re-seals under the current key what the previous one still
/// seals, then removes `master.key.previous`.
fn finish(settings: &Settings) -> anyhow::Result<()> {
    let keys = loaded(settings)?;
    let from = MasterKey::from_texts(&keys)?;
    let to = MasterKey::from_texts(&keys[..1])?;
    super::require_database(settings)?;
    let db = open_pool(settings)?;
    let mut c = db.get()?;
    check_all_open(&mut c, &from)?;
    let n = rekey::reseal(&mut c, &from, &to, Clock::default().now_naive(), || {})?;
    fault_point(settings, "finish-reseal");
    remove_durably(&settings.data_dir.join(PREVIOUS_KEY_FILE))?;
    remove_durably(&settings.data_dir.join(NEW_KEY_FILE))?;
    warn_if_configured(settings);
    super::print(&json!({ "resealed": n, "removed": settings.data_dir.join(PREVIOUS_KEY_FILE) }))
}

/// Keys given by `--master-key` / `GLPI_NETWORK_MASTER_KEY` win over the files: say so.
fn warn_if_configured(settings: &Settings) {
    if settings.master_key.iter().any(|k| !k.trim().is_empty()) {
        eprintln!(
            "note: the master key is configured (--master-key or GLPI_NETWORK_MASTER_KEY), which \
             servers read before {}: configure the key now in that file first, then the \
             previous one (KEY,KEY) until the rotation is finished",
            settings.data_dir.join(MASTER_KEY_FILE).display()
        );
    }
}

/// `master-key status`: read-only (no migration, nothing created).
fn status(settings: &Settings) -> anyhow::Result<()> {
    let mut c = db::read_only::connect(&settings.database_url())?;
    let keys = MasterKey::from_texts(&loaded(settings)?)?;
    let secrets = rekey::status(&mut c, &keys)?;
    let unknown = secrets
        .iter()
        .any(|s| s.sealed_with == rekey::SealedWith::Unknown);
    super::print(&json!({ "secrets": secrets }))?;
    if unknown {
        anyhow::bail!("some secrets open with neither the current nor the previous master key");
    }
    Ok(())
}
