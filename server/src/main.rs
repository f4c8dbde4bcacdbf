//! `glpi-network-server`: parse the command line, set up logging, then serve or run an admin
//! subcommand.

use clap::Parser;
use glpi_network_server::config::{Cli, Command, LogFormat};
use glpi_network_server::{Application, cli};
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> anyhow::Result<()> {
    // Before anything is created: the data directory 0700 and every file the server (or
    // SQLite, for the database and its -wal and -shm) creates 0600, wherever its path points.
    // SAFETY: umask(2) only sets the process's file mode creation mask; it cannot fail.
    unsafe { libc::umask(0o077) };
    // OpenSSL (compiled in for libpq) started without its exit-time clean-up, so a pool thread
    // still inside OpenSSL when the process exits cannot crash it (seen about once in 150
    // admin commands on sslmode=require).
    openssl_sys::init();
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
