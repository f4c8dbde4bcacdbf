//! The admin subcommands of `glpi-network-server`: the same operations as the admin API,
//! run directly on the configured database. Each prints one JSON document on stdout.
//!
//! One function per subcommand group: `subscriptions.rs` (subscribers and subscriptions),
//! `keys.rs` (keys and registrations), `catalogue.rs` (offers and plugins), `audit.rs`,
//! `signing_keys.rs`, `master_key.rs`, `webhooks.rs`.

mod audit;
pub mod backup;
mod catalogue;
mod keys;
pub mod kinds;
mod master_key;
pub mod progress;
mod restore;
mod signing_keys;
mod subscriptions;
mod webhooks;

use crate::app::open_pool;
use crate::config::{Command, PageArgs, Settings};
use crate::db::page::ListQuery;
use crate::db::{self, audit::Actor};
use crate::domain::clock::Clock;
use serde::Serialize;

fn print<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A refused filter named as the CLI spells it: `subscriber_id: no subscriber x` becomes
/// `--subscriber: no subscriber x` (`flags` pairs the query parameter with its flag).
fn as_flags(e: db::Error, flags: &[(&str, &str)]) -> anyhow::Error {
    match e {
        db::Error::Invalid(crate::domain::Invalid(message)) => {
            let renamed = flags.iter().find_map(|(param, flag)| {
                message
                    .strip_prefix(&format!("{param}:"))
                    .map(|rest| format!("{flag}:{rest}"))
            });
            anyhow::anyhow!(renamed.unwrap_or(message))
        }
        other => other.into(),
    }
}

fn query(p: &PageArgs) -> ListQuery {
    ListQuery {
        limit: p.limit,
        cursor: p.cursor.clone(),
        ..Default::default()
    }
}

/// What every subcommand runs with: one pooled connection, the time it started, the actor `cli`.
struct Ctx<'a> {
    c: &'a mut db::Conn,
    now: chrono::NaiveDateTime,
    actor: Actor,
}

/// `migrate`: applies the pending migrations without opening the migrated pool first.
fn migrate(settings: &Settings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)?;
    let pool = db::open_unmigrated(&settings.database_url(), 1)?;
    let n = db::migrate(&mut *pool.get()?)?;
    eprintln!("database migrated: {n} pending migration(s) applied");
    Ok(())
}

/// `completions SHELL`: the completion script, generated from the clap definitions.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let mut cmd = crate::config::Cli::command();
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut cmd, "glpi-network-server", &mut text);
    to_stdout(&text)
}

/// Writes `bytes` on stdout; a reader that stopped reading (`| head`) is not an error.
fn to_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `man [--dir DIR]`: the man page on stdout, or every page (one per subcommand) into `DIR`.
fn man(dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let cmd = crate::config::Cli::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(cmd, dir)?;
            eprintln!("man pages written to {}", dir.display());
        }
        None => {
            let mut text = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut text)?;
            return to_stdout(&text);
        }
    }
    Ok(())
}

/// A usage error (exit code 2), such as a key prefix that matches several keys.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The database of a command: read-only for the commands that only read; an existing one
/// (migrated to this version) for the others, which never create it (`serve`, `migrate` and
/// `restore` do).
fn open_db(settings: &Settings, command: &Command) -> anyhow::Result<db::Db> {
    let url = settings.database_url();
    if command.is_read_only() {
        return db::read_only::open(&url);
    }
    if !command.creates_database() {
        require_database(settings)?;
    }
    open_pool(settings)
}

/// An SQLite database that must exist already (only `serve`, `migrate` and `restore` create
/// one): the error names it and says how to make it.
pub(super) fn require_database(settings: &Settings) -> anyhow::Result<()> {
    if let db::Backend::Sqlite(path) = db::Backend::from_url(&settings.database_url())? {
        db::read_only::check_sqlite_exists(&path).map_err(|e| {
            anyhow::anyhow!("{e}: create it with `glpi-network-server migrate` (or serve once)")
        })?;
    }
    Ok(())
}

/// Runs one admin subcommand.
pub fn run(settings: &Settings, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Migrate => return migrate(settings),
        Command::MasterKey(cmd) => return master_key::master_key(settings, cmd),
        Command::Backup { to } => return backup::backup(settings, &to),
        Command::Restore { from, force } => return restore::restore(settings, &from, force),
        Command::Completions { shell } => return completions(shell),
        Command::Man { dir } => return man(dir.as_deref()),
        Command::Webhooks(cmd) if webhooks::reads_only(&cmd) => {
            return webhooks::read(settings, cmd);
        }
        _ => {}
    }
    let pool = open_db(settings, &command)?;
    let mut conn = pool.get()?;
    let ctx = Ctx {
        c: &mut conn,
        now: Clock::default().now_naive(),
        actor: Actor::new("cli", None),
    };
    match command {
        Command::Serve(_) => unreachable!("serve is handled by main"),
        Command::Migrate
        | Command::MasterKey(_)
        | Command::Backup { .. }
        | Command::Restore { .. }
        | Command::Completions { .. }
        | Command::Man { .. } => unreachable!("handled above"),
        Command::Subscribers(cmd) => subscriptions::subscribers(ctx, cmd),
        Command::Subscriptions(cmd) => subscriptions::subscriptions(ctx, cmd),
        Command::Keys(cmd) => keys::keys(ctx, cmd),
        Command::Registrations(cmd) => keys::registrations(ctx, cmd),
        Command::Offers(cmd) => catalogue::offers(ctx, cmd),
        Command::Plugins(cmd) => catalogue::plugins(ctx, cmd),
        Command::Licenses(cmd) => kinds::licenses(ctx, cmd),
        Command::EnrollmentKeys(cmd) => kinds::enrollment_keys(ctx, cmd),
        Command::Invitations(cmd) => kinds::invitations(ctx, cmd),
        Command::Audit(cmd) => audit::audit(ctx, cmd),
        Command::SigningKeys(cmd) => signing_keys::signing_keys(settings, &pool, ctx, cmd),
        Command::Webhooks(cmd) => webhooks::webhooks(settings, &pool, ctx, cmd),
    }
}
