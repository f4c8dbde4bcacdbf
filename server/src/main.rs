//! `glpi-network-server`: parse the command line, set up logging, then serve or run an admin
//! subcommand.

use clap::Parser;
use glpi_network_server::config::{Cli, Command, LogFormat};
use glpi_network_server::{Application, cli};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // colours only for a terminal: a log file or a journal gets plain text (and the escape
        // codes cost 2.5% of a cache-off request's CPU)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// What the process sets before anything else runs: its umask, OpenSSL, SQLite's threading mode
/// and glibc's malloc arenas.
fn configure_process() {
    // Before anything is created: the data directory 0700 and every file the server (or
    // SQLite, for the database and its -wal and -shm) creates 0600, wherever its path points.
    // SAFETY: umask(2) only sets the process's file mode creation mask; it cannot fail.
    unsafe { libc::umask(0o077) };
    // OpenSSL (compiled in for libpq) started without its exit-time clean-up, so a pool thread
    // still inside OpenSSL when the process exits cannot crash it (seen about once in 150
    // admin commands on sslmode=require).
    openssl_sys::init();
    // SQLite's multi-thread mode (no mutex around every call on a connection): each connection
    // is used by one thread at a time (diesel's connections are `Send` but not `Sync`, the pool
    // lends each to one task, a worker's own reader never leaves its thread), which is the
    // condition of that mode. Set before any connection exists. Memory statistics off too: they
    // take a global mutex on every allocation SQLite makes.
    // SAFETY: sqlite3_config runs before SQLite is initialised and before any other thread
    // exists; it only sets the library's threading mode and its memory statistics.
    unsafe {
        libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MULTITHREAD);
        libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, 0);
    }
    // At most two malloc arenas (unless MALLOC_ARENA_MAX says otherwise): the hot reads run on
    // the HTTP workers and rarely on the blocking pool, so more arenas only hold freed memory. A
    // fleet of 100,000 keys measured 58.8 MiB of RSS with two, 63.1 MiB without, at the same
    // CPU per request (when every read went through the blocking pool, two arenas cost 20%).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; no allocation is in flight here
        // that it could invalidate, and no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn main() -> anyhow::Result<()> {
    configure_process();
    let mut args = Cli::parse();
    init_logging(args.settings.log_format);
    glpi_network_server::config::warn_if_readable_by_others(&args.settings.data_dir);
    let serve = match args.command.take() {
        None => Ok(None),
        Some(Command::Serve(flags)) => flags.apply(&mut args.settings).map(|()| None),
        Some(cmd) => Ok(Some(cmd)),
    };
    let serve = serve.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    });
    match serve {
        None => actix_web::rt::System::new().block_on(async {
            let app = Application::build(&args.settings)?;
            tracing::info!(port = app.port(), public_url = %app.state().public_url, "glpi-network-server listening");
            app.run_until_stopped().await?;
            Ok(())
        }),
        Some(cmd) => {
            if let Err(e) = cli::run(&args.settings, cmd) {
                eprintln!("error: {e:#}");
                let usage = e.downcast_ref::<cli::UsageError>().is_some();
                std::process::exit(if usage { 2 } else { 1 });
            }
            Ok(())
        }
    }
}
