//! The admin subcommands of `glpi-network-server`: the same operations as the admin API,
//! run directly on the configured database. Each prints one JSON document on stdout.
//!
//! One function per subcommand group: `subscriptions.rs` (subscribers and subscriptions),
//! `keys.rs` (keys and registrations), `catalogue.rs` (offers and plugins), `audit.rs`,
//! `signing_keys.rs`, `master_key.rs`, `webhooks.rs`.

mod audit;
mod catalogue;
mod keys;
pub mod kinds;
mod master_key;
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

/// Runs one admin subcommand.
pub fn run(settings: &Settings, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Migrate => return migrate(settings),
        Command::MasterKey(cmd) => return master_key::master_key(settings, cmd),
        Command::Webhooks(cmd) if webhooks::reads_only(&cmd) => {
            return webhooks::read(settings, cmd);
        }
        _ => {}
    }
    let pool = open_pool(settings)?;
    let mut conn = pool.get()?;
    let ctx = Ctx {
        c: &mut conn,
        now: Clock::default().now_naive(),
        actor: Actor::new("cli", None),
    };
    match command {
        Command::Serve => unreachable!("serve is handled by main"),
        Command::Migrate | Command::MasterKey(_) => unreachable!("handled above"),
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
