//! `glpi-network`: register this instance, validate it, read its cached state, test the
//! service, release the binding. Exit codes: 0 usable, 1 refused, 2 usage, 3 unreachable with
//! no usable cache.

mod kinds;
mod output;
mod probe;
mod spinner;

use clap::{CommandFactory, Parser, Subcommand, error::ErrorKind};
use glpi_network_client::{
    CachedInstance, Client, Error, InstanceUrl, RegistrationKey, cached_instances,
    default_cache_dir, instance_cache_path,
};
use output::Out;
use spinner::Spinner;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code: usable (`valid`, `cached`, `grace`), or every check passed.
const EXIT_OK: u8 = 0;
/// Exit code: refused, or the service answered wrongly.
const EXIT_REFUSED: u8 = 1;
/// Exit code: usage error.
const EXIT_USAGE: u8 = 2;
/// Exit code: the service cannot be reached and nothing usable is cached.
const EXIT_UNREACHABLE: u8 = 3;

#[derive(Parser)]
#[command(
    name = "glpi-network",
    version,
    about = "GLPI Network licensing client: register, validate and keep working offline",
    after_help = "Exit codes: 0 usable (valid, cached, grace), 1 refused, 2 usage, \
                  3 unreachable with no usable cache."
)]
struct Cli {
    /// The licensing server's base URL (default: the one cached at registration).
    #[arg(long, env = "GLPI_NETWORK_SERVER", global = true, value_name = "URL")]
    server: Option<String>,
    /// The cache file [default: one file per instance under glpi-network/ in the user's cache
    /// directory; with several there, --url picks one].
    #[arg(long, global = true, value_name = "PATH")]
    cache: Option<PathBuf>,
    /// Also trust the certificate authorities of this PEM file (beside the platform's store),
    /// for a server behind a private certificate authority.
    #[arg(long, env = "GLPI_NETWORK_CA_FILE", global = true, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// The registration key, overriding the cached one.
    #[arg(
        long,
        env = "GLPI_NETWORK_KEY",
        hide_env_values = true,
        global = true,
        value_name = "KEY"
    )]
    key: Option<String>,
    /// This instance's URL (required by `register`): picks its cache file, or overrides the
    /// cached URL with --cache.
    #[arg(long, global = true, value_name = "URL")]
    url: Option<String>,
    /// The token issuer to expect [default: the server URL].
    #[arg(long, env = "GLPI_NETWORK_ISSUER", global = true, value_name = "URL")]
    issuer: Option<String>,
    /// Seconds allowed for each request to the server.
    #[arg(long, global = true, default_value_t = 20, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout: u64,
    /// Print exactly one JSON object on stdout instead of human text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Clone, PartialEq, Eq)]
enum Command {
    /// Bind a registration key to this instance (`--url`) and cache the signed token.
    Register {
        /// The registration key, e.g. GLPI-XXXX-XXXX-...
        #[arg(value_name = "KEY", id = "registration_key")]
        registration_key: String,
    },
    /// Ask the server; fall back to the cache (grace) when it cannot be reached.
    Validate,
    /// The state from the cache alone, without contacting the server.
    Status,
    /// Check the service: ping, JWKS, TLS and clock skew, one line per check.
    Test,
    /// Release this instance's binding and delete the cache.
    Release,
    /// A commercial plugin's license (LIC-...): activate it on this instance, validate it,
    /// release it.
    License {
        #[command(subcommand)]
        action: LicenseAction,
    },
    /// Enroll an inventory agent with an enrollment key (ENR-...).
    Enroll {
        /// The enrollment key, e.g. ENR-XXXX-...
        #[arg(value_name = "KEY")]
        enrollment_key: String,
        /// The agent's own stable identifier (the same one again takes no use).
        #[arg(long, value_name = "ID")]
        agent_id: String,
        /// The agent's host name, for the vendor's records.
        #[arg(long, value_name = "NAME")]
        hostname: Option<String>,
    },
    /// Print the shell completion script of `glpi-network`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of `glpi-network`.
    Man,
}

/// What to do with a license.
#[derive(Subcommand, Clone, PartialEq, Eq)]
enum LicenseAction {
    /// Bind the license to this instance (`--url`, or the cached instance) and cache its token.
    Activate {
        /// The license key, e.g. LIC-XXXX-...
        #[arg(value_name = "KEY")]
        license_key: String,
    },
    /// Ask the server; fall back to the cached token (grace) when it cannot be reached.
    Validate {
        /// The license key.
        #[arg(value_name = "KEY")]
        license_key: String,
    },
    /// Release the license from this instance and delete its cached token.
    Release {
        /// The license key.
        #[arg(value_name = "KEY")]
        license_key: String,
    },
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Register { .. } => "register",
            Command::Validate => "validate",
            Command::Status => "status",
            Command::Test => "test",
            Command::Release => "release",
            Command::License {
                action: LicenseAction::Activate { .. },
            } => "license activate",
            Command::License {
                action: LicenseAction::Validate { .. },
            } => "license validate",
            Command::License {
                action: LicenseAction::Release { .. },
            } => "license release",
            Command::Enroll { .. } => "enroll",
            Command::Completions { .. } => "completions",
            Command::Man => "man",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Completions { shell } => {
            return generated(|out| {
                clap_complete::generate(shell, &mut Cli::command(), "glpi-network", out);
                Ok(())
            });
        }
        Command::Man => return generated(|out| clap_mangen::Man::new(Cli::command()).render(out)),
        _ => {}
    }
    init_logging();
    let out = Out::new(cli.json, cli.command.name());
    ExitCode::from(run(&cli, &out))
}

/// Prints what `write` generates (completions, the man page); a closed pipe is not an error.
fn generated(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> ExitCode {
    use std::io::Write;
    let mut text = Vec::new();
    let written = write(&mut text).and_then(|()| std::io::stdout().lock().write_all(&text));
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_REFUSED)
        }
        _ => ExitCode::from(EXIT_OK),
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("GLPI_NETWORK_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .try_init();
}

fn run(cli: &Cli, out: &Out) -> u8 {
    if matches!(cli.command, Command::Register { .. }) && cli.url.is_none() {
        let msg = "register needs the instance URL: --url URL";
        return usage(out, ErrorKind::MissingRequiredArgument, msg);
    }
    let key_text = match &cli.command {
        Command::Register { registration_key } => Some(registration_key),
        Command::License { .. } | Command::Enroll { .. } => None,
        _ => cli.key.as_ref(),
    };
    let key = match key_text.map(|k| RegistrationKey::parse(k)).transpose() {
        Ok(k) => k,
        Err(e) => {
            let msg = format!("invalid registration key: {e}");
            return usage(out, ErrorKind::InvalidValue, &msg);
        }
    };
    let cache = match cache_path(cli) {
        Ok(p) => p,
        Err(Choice::Failed(e)) => return failed(out, &e),
        Err(Choice::Ambiguous(dir, known)) => {
            out.ambiguous(&dir, &known);
            return EXIT_USAGE;
        }
    };
    let client = match build(cli, key.clone(), cache) {
        Ok(c) => c,
        Err(e) => return failed(out, &e),
    };
    let server = client.server_url().unwrap_or_default();
    let waiting = |what: &str| Spinner::start(format!("{what} {server}"));
    match &cli.command {
        Command::Register { .. } => {
            let key = key.expect("register has a positional key");
            let r = {
                let _s = waiting("registering with");
                client.register(&key)
            };
            report(out, &client, r)
        }
        Command::Validate => {
            let r = {
                let _s = waiting("validating with");
                client.validate()
            };
            report(out, &client, r)
        }
        Command::Status => report(out, &client, client.status()),
        Command::Release => {
            let r = {
                let _s = waiting("releasing with");
                client.release()
            };
            match r {
                Ok(()) => {
                    out.released(&client);
                    EXIT_OK
                }
                Err(e) => failed(out, &e),
            }
        }
        Command::Test => probe::run(&client, out),
        Command::License { action } => kinds::license(&client, out, action),
        Command::Enroll {
            enrollment_key,
            agent_id,
            hostname,
        } => kinds::enroll(&client, out, enrollment_key, agent_id, hostname.as_deref()),
        Command::Completions { .. } | Command::Man => unreachable!("answered in main"),
    }
}

/// Why no cache file could be chosen.
enum Choice {
    Failed(Error),
    /// Several instances are cached in this directory and nothing says which.
    Ambiguous(PathBuf, Vec<CachedInstance>),
}

/// The cache file: `--cache`; else, in the default directory, the file of the `--url`
/// instance; else the only one there (several: ambiguous, unless `test` has its `--server`).
fn cache_path(cli: &Cli) -> Result<PathBuf, Choice> {
    if let Some(p) = &cli.cache {
        return Ok(p.clone());
    }
    let dir = default_cache_dir().ok_or_else(|| {
        Choice::Failed(Error::Config(
            "no cache directory on this system: pass --cache PATH".into(),
        ))
    })?;
    let known = cached_instances(&dir);
    if let Some(url) = &cli.url {
        let url = InstanceUrl::parse(url)
            .map_err(|e| Choice::Failed(Error::Config(format!("invalid instance URL: {e}"))))?;
        return Ok(known
            .into_iter()
            .find(|c| c.instance_url == url.as_str())
            .map_or_else(|| instance_cache_path(&dir, &url), |c| c.path));
    }
    match known.as_slice() {
        [only] => Ok(only.path.clone()),
        // Nothing cached: a file that does not exist (the commands then say what is missing).
        [] => Ok(dir.join("state.json")),
        [first, ..]
            if matches!(cli.command, Command::Test | Command::Enroll { .. })
                && cli.server.is_some() =>
        {
            Ok(first.path.clone())
        }
        _ => Err(Choice::Ambiguous(dir, known)),
    }
}

fn build(cli: &Cli, key: Option<RegistrationKey>, cache: PathBuf) -> Result<Client, Error> {
    let mut b = Client::builder()
        .timeout(Duration::from_secs(cli.timeout))
        .cache_path(cache);
    if let Some(s) = &cli.server {
        b = b.server_url(s);
    }
    if let Some(u) = &cli.url {
        b = b.instance_url(u);
    }
    if let Some(k) = key {
        b = b.key(k);
    }
    if let Some(i) = &cli.issuer {
        b = b.issuer(i);
    }
    if let Some(f) = &cli.ca_file {
        b = b.ca_file(f);
    }
    b.build()
}

fn report(out: &Out, client: &Client, r: Result<glpi_network_client::Status, Error>) -> u8 {
    match r {
        Ok(st) => {
            out.status(client, &st);
            if st.is_usable() {
                EXIT_OK
            } else {
                EXIT_REFUSED
            }
        }
        Err(e) => failed(out, &e),
    }
}

/// Prints an error and maps it to its exit code.
fn failed(out: &Out, e: &Error) -> u8 {
    let code = exit_code(e);
    out.error(e, code);
    code
}

fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Config(_) => EXIT_USAGE,
        e if e.is_unavailable() => EXIT_UNREACHABLE,
        _ => EXIT_REFUSED,
    }
}

/// A usage error found after parsing: clap's format on stderr (JSON on stdout with `--json`).
fn usage(out: &Out, kind: ErrorKind, msg: &str) -> u8 {
    if out.json {
        out.error(&Error::Config(msg.to_owned()), EXIT_USAGE);
    } else {
        let _ = Cli::command().error(kind, msg).print();
    }
    EXIT_USAGE
}
