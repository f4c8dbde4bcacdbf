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
    let args = Cli::parse();
    init_logging(args.settings.log_format);
    match args.command {
        None | Some(Command::Serve) => actix_web::rt::System::new().block_on(async {
            let app = Application::build(&args.settings)?;
            tracing::info!(port = app.port(), public_url = %app.state().public_url, "glpi-network-server listening");
            app.run_until_stopped().await?;
            Ok(())
        }),
        Some(cmd) => {
            if let Err(e) = cli::run(&args.settings, cmd) {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
