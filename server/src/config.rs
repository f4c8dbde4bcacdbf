//! Settings and the command line. Every flag has an environment variable:
//!
//! | flag | env | default |
//! |---|---|---|
//! | `--bind` | `GLPI_NETWORK_BIND` | `127.0.0.1:8080` |
//! | `--database-url` | `DATABASE_URL` | `sqlite://<data-dir>/glpi-network.db` |
//! | `--data-dir` | `GLPI_NETWORK_DATA_DIR` | `./data` |
//! | `--admin-token` | `GLPI_NETWORK_ADMIN_TOKEN` | generated into `<data-dir>/admin-token` |
//! | `--public-url` | `GLPI_NETWORK_PUBLIC_URL` | `http://<bind address>` |
//! | `--master-key` (at most twice) | `GLPI_NETWORK_MASTER_KEY` (`KEY[,KEY]`) | `<data-dir>/master.key` and `master.key.previous` (64 hex chars, created on first start) |
//! | `--token-ttl` | `GLPI_NETWORK_TOKEN_TTL` | `86400` seconds |
//! | `--grace-period` | `GLPI_NETWORK_GRACE_PERIOD` | `604800` seconds (7 days after `exp`) |
//! | `--catalogue` | `GLPI_NETWORK_CATALOGUE` | none (a JSON plugin catalogue imported at start) |
//! | `--test-mode` | `GLPI_NETWORK_TEST_MODE` | off |
//! | `--fixtures` | `GLPI_NETWORK_FIXTURES` | none (test mode only) |
//! | `--signing-seed` | `GLPI_NETWORK_SIGNING_SEED` | none (test mode only) |
//! | `--failed-lookups-per-minute` | `GLPI_NETWORK_FAILED_LOOKUPS_PER_MINUTE` | `30` |
//! | `--registrations-per-key-per-minute` | `GLPI_NETWORK_REGISTRATIONS_PER_KEY_PER_MINUTE` | `30` |
//! | `--trusted-proxy` | `GLPI_NETWORK_TRUSTED_PROXIES` | none |
//! | `--workers` | `GLPI_NETWORK_WORKERS` | number of cores (+ 1 on an SQLite file) |
//! | `--log-format` | `GLPI_NETWORK_LOG_FORMAT` | `text` (or `json`) |
//! | `--portal-signup` | `GLPI_NETWORK_PORTAL_SIGNUP` | `open` (or `invite`, `off`) |
//! | `--webhooks-allow-private` | `GLPI_NETWORK_WEBHOOKS_ALLOW_PRIVATE` | off (webhook targets must be public addresses) |

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

// Every numeric flag has its range checked when the command line is parsed: a value out of it
// is a start-up error that names the flag (exit 2), never an overflow or a panic later.

/// The most failed look-ups or registrations per minute a limit may allow.
pub const MAX_PER_MINUTE: u32 = 1_000_000_000;
/// The largest `--key-cache-size`.
pub const MAX_KEY_CACHE_SIZE: usize = 10_000_000;
/// The longest `--key-cache-ttl`, in seconds (a day).
pub const MAX_KEY_CACHE_TTL_SECS: u64 = 86_400;
/// The most `--workers`.
pub const MAX_WORKERS: usize = 1024;
/// The longest `--trial-days` (about 100 years).
pub const MAX_TRIAL_DAYS: u32 = 36_500;
/// The most keys `keys issue --count` makes at once.
pub const MAX_ISSUE_COUNT: usize = 1_000_000;

#[derive(Parser)]
#[command(
    name = "glpi-network-server",
    version,
    about = "GLPI Network licensing server"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Server settings. The flags that say where the data is (`--data-dir`, `--database-url`,
/// `--master-key`, `--admin-token`, `--log-format`) are global: every subcommand takes them.
/// The others only change how the server serves: they are flags of the command itself (no
/// subcommand serves) and of `serve` ([`ServeFlags`]), and subcommands' help leaves them out;
/// their environment variables are read by every command.
#[derive(Args, Clone)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "GLPI_NETWORK_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// `sqlite://PATH`, `sqlite::memory:` or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Where the SQLite database, the admin token and the master key live.
    #[arg(
        long,
        env = "GLPI_NETWORK_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// The admin bearer token (default: generated into `<data-dir>/admin-token`).
    #[arg(
        long,
        env = "GLPI_NETWORK_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub admin_token: Option<String>,
    /// The public base URL (token `iss`, archive URLs). Default `http://<bind>`.
    #[arg(long, env = "GLPI_NETWORK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The master key sealing signing keys at rest, 64 hex characters (default: read from, or
    /// created in, `<data-dir>/master.key`, with `<data-dir>/master.key.previous` when a
    /// master-key change is under way). Given twice (or `KEY,KEY` in the environment): the
    /// current key, then the previous one; either unseals.
    #[arg(
        long,
        env = "GLPI_NETWORK_MASTER_KEY",
        hide_env_values = true,
        value_delimiter = ',',
        global = true
    )]
    pub master_key: Vec<String>,
    /// Token lifetime in seconds (`exp - iat`).
    #[arg(long, env = "GLPI_NETWORK_TOKEN_TTL", default_value_t = glpi_network_shared::token::DEFAULT_TTL_SECS,
          value_parser = clap::value_parser!(i64).range(60..=31_536_000))]
    pub token_ttl: i64,
    /// Offline grace in seconds after `exp` (`grace_until - exp`).
    #[arg(long, env = "GLPI_NETWORK_GRACE_PERIOD", default_value_t = glpi_network_shared::token::DEFAULT_GRACE_SECS,
          value_parser = clap::value_parser!(i64).range(0..=31_536_000))]
    pub grace_period: i64,
    /// A JSON plugin catalogue (`{"plugins": [...]}`) imported at start.
    #[arg(long, env = "GLPI_NETWORK_CATALOGUE")]
    pub catalogue: Option<PathBuf>,
    /// Test mode: exposes the `/_test` routes (clock, fixtures, faults, journal). Never in
    /// production.
    #[arg(long, env = "GLPI_NETWORK_TEST_MODE")]
    pub test_mode: bool,
    /// Test mode: fixtures (JSON, or TOML by the `.toml` extension) loaded at start.
    #[arg(long, env = "GLPI_NETWORK_FIXTURES", requires = "test_mode")]
    pub fixtures: Option<PathBuf>,
    /// Test mode: derive the first signing key from this string, so the JWKS is known in
    /// advance.
    #[arg(long, env = "GLPI_NETWORK_SIGNING_SEED", requires = "test_mode")]
    pub signing_seed: Option<String>,
    /// Failed key look-ups (unknown or malformed keys) allowed per client address per minute;
    /// beyond, every key look-up from that address is refused until the minute ends.
    #[arg(
        long,
        env = "GLPI_NETWORK_FAILED_LOOKUPS_PER_MINUTE",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PER_MINUTE))
    )]
    pub failed_lookups_per_minute: u32,
    /// Registration attempts allowed per key per minute.
    #[arg(
        long,
        env = "GLPI_NETWORK_REGISTRATIONS_PER_KEY_PER_MINUTE",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PER_MINUTE))
    )]
    pub registrations_per_key_per_minute: u32,
    /// Reverse proxies whose `X-Forwarded-For` gives the client address: IP addresses or CIDR
    /// ranges, IPv4 or IPv6 (repeat, or comma-separated in the environment).
    #[arg(
        long = "trusted-proxy",
        env = "GLPI_NETWORK_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<crate::http::limits::IpNet>,
    /// Key states kept in memory so `/api/registration/info` and `/v1/validations` of known
    /// instances answer without a database read (0 turns the cache off).
    #[arg(
        long,
        env = "GLPI_NETWORK_KEY_CACHE_SIZE",
        default_value_t = DEFAULT_KEY_CACHE_SIZE,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=MAX_KEY_CACHE_SIZE as u64)
    )]
    pub key_cache_size: usize,
    /// Seconds a cached key state is trusted. Changes made through this process are seen at
    /// once; changes made by another process on the same database within this delay (0 turns
    /// the cache off).
    #[arg(
        long,
        env = "GLPI_NETWORK_KEY_CACHE_TTL",
        default_value_t = DEFAULT_KEY_CACHE_TTL_SECS,
        value_parser = clap::value_parser!(u64).range(0..=MAX_KEY_CACHE_TTL_SECS)
    )]
    pub key_cache_ttl: u64,
    /// HTTP worker threads (default: one per core, plus one on an SQLite file).
    #[arg(
        long,
        env = "GLPI_NETWORK_WORKERS",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_WORKERS as u64)
    )]
    pub workers: Option<usize>,
    /// Log format.
    #[arg(
        long,
        env = "GLPI_NETWORK_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    /// Who may sign up on the portal: `open`, `invite` (only with an invitation key) or `off`
    /// (`/portal/signup` answers 404).
    #[arg(
        long,
        env = "GLPI_NETWORK_PORTAL_SIGNUP",
        value_enum,
        default_value = "open"
    )]
    pub portal_signup: PortalSignup,
    /// Lets webhooks target loopback, private, link-local and other non-public addresses
    /// (refused by default, at creation and at each delivery).
    #[arg(long, env = "GLPI_NETWORK_WEBHOOKS_ALLOW_PRIVATE", global = true)]
    pub webhooks_allow_private: bool,
}

/// The flags of `serve` (the same as the command's own, which no subcommand shows): given
/// after `serve`, each overrides the value given before it, or by its environment variable.
#[derive(Args, Clone, Default)]
pub struct ServeFlags {
    /// Address to listen on [env: GLPI_NETWORK_BIND] [default: 127.0.0.1:8080].
    #[arg(long)]
    pub bind: Option<String>,
    /// The public base URL (token `iss`, archive URLs) [env: GLPI_NETWORK_PUBLIC_URL].
    #[arg(long)]
    pub public_url: Option<String>,
    /// Token lifetime in seconds [env: GLPI_NETWORK_TOKEN_TTL] [default: 86400].
    #[arg(long, value_parser = clap::value_parser!(i64).range(60..=31_536_000))]
    pub token_ttl: Option<i64>,
    /// Offline grace in seconds after `exp` [env: GLPI_NETWORK_GRACE_PERIOD] [default: 604800].
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..=31_536_000))]
    pub grace_period: Option<i64>,
    /// A JSON plugin catalogue imported at start [env: GLPI_NETWORK_CATALOGUE].
    #[arg(long)]
    pub catalogue: Option<PathBuf>,
    /// Test mode: the `/_test` routes. Never in production [env: GLPI_NETWORK_TEST_MODE].
    #[arg(long)]
    pub test_mode: bool,
    /// Test mode: fixtures loaded at start [env: GLPI_NETWORK_FIXTURES].
    #[arg(long)]
    pub fixtures: Option<PathBuf>,
    /// Test mode: derive the first signing key from this string [env:
    /// GLPI_NETWORK_SIGNING_SEED].
    #[arg(long)]
    pub signing_seed: Option<String>,
    /// Failed key look-ups allowed per client address per minute [env:
    /// GLPI_NETWORK_FAILED_LOOKUPS_PER_MINUTE] [default: 30].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PER_MINUTE)))]
    pub failed_lookups_per_minute: Option<u32>,
    /// Registration attempts allowed per key per minute [env:
    /// GLPI_NETWORK_REGISTRATIONS_PER_KEY_PER_MINUTE] [default: 30].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PER_MINUTE)))]
    pub registrations_per_key_per_minute: Option<u32>,
    /// Reverse proxies whose `X-Forwarded-For` gives the client address (IP or CIDR,
    /// repeatable) [env: GLPI_NETWORK_TRUSTED_PROXIES].
    #[arg(long = "trusted-proxy")]
    pub trusted_proxies: Vec<crate::http::limits::IpNet>,
    /// Key states kept in memory (0 turns the cache off) [env: GLPI_NETWORK_KEY_CACHE_SIZE]
    /// [default: 20000].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=MAX_KEY_CACHE_SIZE as u64))]
    pub key_cache_size: Option<usize>,
    /// Seconds a cached key state is trusted (0 turns the cache off) [env:
    /// GLPI_NETWORK_KEY_CACHE_TTL] [default: 5].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=MAX_KEY_CACHE_TTL_SECS))]
    pub key_cache_ttl: Option<u64>,
    /// HTTP worker threads [env: GLPI_NETWORK_WORKERS] [default: one per core].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_WORKERS as u64))]
    pub workers: Option<usize>,
    /// Who may sign up on the portal [env: GLPI_NETWORK_PORTAL_SIGNUP] [default: open].
    #[arg(long, value_enum)]
    pub portal_signup: Option<PortalSignup>,
}

impl ServeFlags {
    /// `settings` with these flags over them.
    pub fn apply(self, settings: &mut Settings) -> anyhow::Result<()> {
        fn set<T>(to: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *to = v;
            }
        }
        set(&mut settings.bind, self.bind);
        settings.public_url = self.public_url.or(settings.public_url.take());
        set(&mut settings.token_ttl, self.token_ttl);
        set(&mut settings.grace_period, self.grace_period);
        settings.catalogue = self.catalogue.or(settings.catalogue.take());
        settings.test_mode |= self.test_mode;
        settings.fixtures = self.fixtures.or(settings.fixtures.take());
        settings.signing_seed = self.signing_seed.or(settings.signing_seed.take());
        set(
            &mut settings.failed_lookups_per_minute,
            self.failed_lookups_per_minute,
        );
        set(
            &mut settings.registrations_per_key_per_minute,
            self.registrations_per_key_per_minute,
        );
        if !self.trusted_proxies.is_empty() {
            settings.trusted_proxies = self.trusted_proxies;
        }
        set(&mut settings.key_cache_size, self.key_cache_size);
        set(&mut settings.key_cache_ttl, self.key_cache_ttl);
        settings.workers = self.workers.or(settings.workers);
        set(&mut settings.portal_signup, self.portal_signup);
        if !settings.test_mode && (settings.fixtures.is_some() || settings.signing_seed.is_some()) {
            anyhow::bail!("--fixtures and --signing-seed need --test-mode");
        }
        Ok(())
    }
}

/// Default of `--key-cache-size` (about 1 KiB of memory each when full).
pub const DEFAULT_KEY_CACHE_SIZE: usize = 20_000;
/// Default of `--key-cache-ttl`, the same delay as signing-key reloads.
pub const DEFAULT_KEY_CACHE_TTL_SECS: u64 = 5;

impl Settings {
    /// Settings for a server on `bind` with its data in `data_dir` (tests, embedding).
    pub fn new(bind: &str, data_dir: PathBuf) -> Self {
        Settings {
            bind: bind.to_owned(),
            database_url: None,
            data_dir,
            admin_token: None,
            public_url: None,
            master_key: Vec::new(),
            catalogue: None,
            test_mode: false,
            failed_lookups_per_minute: 30,
            registrations_per_key_per_minute: 30,
            trusted_proxies: Vec::new(),
            fixtures: None,
            signing_seed: None,
            token_ttl: glpi_network_shared::token::DEFAULT_TTL_SECS,
            grace_period: glpi_network_shared::token::DEFAULT_GRACE_SECS,
            workers: None,
            log_format: LogFormat::Text,
            key_cache_size: DEFAULT_KEY_CACHE_SIZE,
            key_cache_ttl: DEFAULT_KEY_CACHE_TTL_SECS,
            portal_signup: PortalSignup::Open,
            webhooks_allow_private: false,
        }
    }

    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.join("glpi-network.db").display()
            )
        })
    }
}

/// `--portal-signup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PortalSignup {
    Open,
    Invite,
    Off,
}

/// Warns (once per file, at start) when the secrets of `data_dir` (`admin-token`,
/// `master.key`), or the directory itself, can be read by the group or by others: they were
/// created 0600 and 0700, so someone loosened them (or an older version made them).
pub fn warn_if_readable_by_others(data_dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let loose = |p: &std::path::Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
            .filter(|mode| mode & 0o077 != 0)
    };
    for name in ["admin-token", "master.key"] {
        let path = data_dir.join(name);
        if let Some(mode) = loose(&path) {
            tracing::warn!(
                path = %path.display(),
                mode = %format!("{mode:04o}"),
                "this secret can be read by other users: chmod 600 it"
            );
        }
    }
    if let Some(mode) = loose(data_dir) {
        tracing::warn!(
            path = %data_dir.display(),
            mode = %format!("{mode:04o}"),
            "the data directory is open to other users: chmod 700 it"
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve(ServeFlags),
    /// Run pending database migrations and exit.
    Migrate,
    /// Manage subscribers.
    #[command(subcommand)]
    Subscribers(SubscribersCmd),
    /// Manage subscriptions.
    #[command(subcommand)]
    Subscriptions(SubscriptionsCmd),
    /// Issue and manage registration keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// List and release registrations.
    #[command(subcommand)]
    Registrations(RegistrationsCmd),
    /// List the offers.
    #[command(subcommand)]
    Offers(OffersCmd),
    /// Read the audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Manage token signing keys.
    #[command(subcommand)]
    SigningKeys(SigningKeysCmd),
    /// Manage the plugin catalogue.
    #[command(subcommand)]
    Plugins(PluginsCmd),
    /// Issue and manage commercial plugin licenses.
    #[command(subcommand)]
    Licenses(crate::cli::kinds::LicensesCmd),
    /// Issue and manage agent enrollment keys.
    #[command(subcommand)]
    EnrollmentKeys(crate::cli::kinds::EnrollmentKeysCmd),
    /// Issue and manage invitation keys.
    #[command(subcommand)]
    Invitations(crate::cli::kinds::InvitationsCmd),
    /// Manage webhooks and their deliveries.
    #[command(subcommand)]
    Webhooks(WebhooksCmd),
    /// Change the master key that seals the signing keys (and every other sealed secret).
    #[command(subcommand)]
    MasterKey(MasterKeyCmd),
    /// Write a consistent copy of the SQLite database (while the server keeps serving), the
    /// master key and the admin token into DIR (created, mode 0700); on PostgreSQL copy the
    /// master key and admin token and print the `pg_dump` command.
    Backup {
        /// The backup directory (new, or empty).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Restore a backup into `--data-dir` / `--database-url` (stop the servers on it first);
    /// on PostgreSQL restore the master key and admin token and print the `pg_restore` command.
    Restore {
        /// A directory written by `backup`.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Overwrite an existing database, master key and admin token.
        #[arg(long)]
        force: bool,
    },
    /// Print the shell completion script of `glpi-network-server`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of `glpi-network-server`, or write one page per subcommand.
    Man {
        /// Write `glpi-network-server.1` and a page per subcommand into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

impl Command {
    /// Whether the command only reads (DESIGN §14): it runs no migration and creates no data
    /// directory, database, master key or signing key; a missing one is an error naming it.
    pub fn is_read_only(&self) -> bool {
        use crate::cli::kinds::{EnrollmentKeysCmd as E, InvitationsCmd as I, LicensesCmd as L};
        matches!(
            self,
            Command::Keys(KeysCmd::List { .. } | KeysCmd::Show { .. })
                | Command::Registrations(RegistrationsCmd::List { .. })
                | Command::Subscribers(SubscribersCmd::List(_) | SubscribersCmd::Show { .. })
                | Command::Subscriptions(SubscriptionsCmd::List(_) | SubscriptionsCmd::Show { .. })
                | Command::Offers(OffersCmd::List)
                | Command::Plugins(PluginsCmd::List)
                | Command::Licenses(L::List { .. } | L::Show { .. })
                | Command::EnrollmentKeys(E::List { .. } | E::Show { .. })
                | Command::Invitations(I::List { .. } | I::Show { .. })
                | Command::Audit(_)
                | Command::SigningKeys(SigningKeysCmd::List)
                | Command::MasterKey(MasterKeyCmd::Status)
        )
    }

    /// Whether the command may create the database (`serve`, `migrate`, `restore`); every
    /// other one needs an existing database.
    pub fn creates_database(&self) -> bool {
        matches!(
            self,
            Command::Serve(_) | Command::Migrate | Command::Restore { .. }
        )
    }
}

#[derive(Subcommand)]
pub enum MasterKeyCmd {
    /// Re-seal every sealed secret under a new master key, written to `<data-dir>/master.key`;
    /// the previous key is kept as `master.key.previous` until `--finish`.
    Rotate {
        /// The new key (64 hex characters, the format of `master.key`); default: generated.
        #[arg(long, conflicts_with = "finish")]
        new_key_file: Option<PathBuf>,
        /// Re-seal under the current key what is still sealed under the previous one, then
        /// remove `master.key.previous` (once every process runs with the new key).
        #[arg(long)]
        finish: bool,
    },
    /// Print which key (current or previous) seals each secret, as JSON; changes nothing.
    Status,
}

#[derive(Subcommand)]
pub enum PluginsCmd {
    /// List the catalogue.
    List,
    /// Import a JSON catalogue file (creates or updates plugins, adds missing versions).
    Import { file: PathBuf },
}

#[derive(Subcommand)]
pub enum SigningKeysCmd {
    /// List signing keys (active, retired, published).
    List,
    /// Retire the active key and make a new one; running servers pick it up within seconds.
    Rotate,
}

#[derive(Subcommand)]
pub enum WebhooksCmd {
    /// List webhooks.
    List(PageArgs),
    /// Create a webhook; prints it with its secret (`whsec_...`), shown only here.
    Create {
        /// Target URL (http or https); its host must resolve to public addresses unless
        /// `--webhooks-allow-private`.
        #[arg(long)]
        url: String,
        /// An event type to send (repeat the flag); default: every type (`*`).
        #[arg(long = "event", default_values_t = vec!["*".to_owned()])]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a webhook and its deliveries.
    Delete { id: String },
    /// List a webhook's deliveries, newest event first.
    Deliveries {
        id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Make a delivery pending and due now.
    Retry { id: String, delivery_id: String },
}

#[derive(Args, Clone, Debug, Default)]
pub struct PageArgs {
    /// Page size (1..=500).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=500))]
    pub limit: Option<i64>,
    /// Cursor from a previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

#[derive(Subcommand)]
pub enum SubscribersCmd {
    /// Create a subscriber.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
    },
    /// List subscribers.
    List(PageArgs),
    /// Show one subscriber.
    Show { id: String },
}

#[derive(Subcommand)]
pub enum SubscriptionsCmd {
    /// Create a subscription.
    Create {
        #[arg(long)]
        subscriber_id: String,
        #[arg(long)]
        offer: String,
        #[arg(long)]
        begin_date: Option<chrono::NaiveDate>,
        #[arg(long)]
        end_date: Option<chrono::NaiveDate>,
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_TRIAL_DAYS)))]
        trial_days: Option<u32>,
    },
    /// List subscriptions.
    List(PageArgs),
    /// Show one subscription.
    Show { id: String },
    /// Suspend a subscription.
    Suspend { id: String },
    /// Resume a suspended subscription.
    Resume { id: String },
    /// Cancel a subscription.
    Cancel { id: String },
}

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Issue a key: for an existing `--subscription`, or for `--subscriber NAME --offer OFFER`
    /// (creating the subscriber and subscription as needed).
    Issue {
        #[arg(long, conflicts_with_all = ["subscriber", "offer"])]
        subscription: Option<String>,
        #[arg(long, requires = "offer")]
        subscriber: Option<String>,
        #[arg(long, requires = "subscriber")]
        offer: Option<String>,
        #[arg(long, requires = "subscriber",
              value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_TRIAL_DAYS)))]
        trial_days: Option<u32>,
        #[arg(long, requires = "subscriber")]
        end_date: Option<chrono::NaiveDate>,
        /// RFC 3339 instant after which the key is refused.
        #[arg(long)]
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        /// Issue this many keys (written in batches of 1000), printed one per line.
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_ISSUE_COUNT as u64))]
        count: Option<usize>,
        /// With `--count`: `csv` (id,key,key_prefix,subscription_id) or `jsonl`.
        #[arg(long, value_enum, default_value = "csv", requires = "count")]
        format: BulkFormat,
    },
    /// List keys, filtered by subscription, subscriber, status and display prefix.
    List {
        #[command(flatten)]
        page: PageArgs,
        /// Only the keys of this subscription (its id).
        #[arg(long, value_name = "ID")]
        subscription: Option<String>,
        /// Only the keys of this subscriber (its id).
        #[arg(long, value_name = "ID")]
        subscriber: Option<String>,
        /// Only the keys with this status.
        #[arg(long, value_parser = ["active", "revoked"])]
        status: Option<String>,
        /// Only the keys whose display prefix starts with this (case-insensitive).
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Show one key with its subscription, subscriber and binding, found by its id or its
    /// display prefix (what the portal, the logs and the audit trail show); a prefix that
    /// matches several keys exits 2 and lists them.
    Show {
        #[arg(value_name = "ID_OR_PREFIX")]
        id: String,
    },
    /// Revoke a key.
    Revoke { id: String },
    /// Replace a key by a new one (revokes it and releases its binding).
    Regenerate { id: String },
}

/// How `keys issue --count` prints keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BulkFormat {
    Csv,
    Jsonl,
}

#[derive(Subcommand)]
pub enum RegistrationsCmd {
    /// List active registrations (with `--include-released`, released ones too).
    List {
        #[command(flatten)]
        page: PageArgs,
        /// Only the registrations of this key (its id).
        #[arg(long, value_name = "ID")]
        key: Option<String>,
        /// Include released registrations.
        #[arg(long)]
        include_released: bool,
    },
    /// Release a registration.
    Release { id: String },
}

#[derive(Subcommand)]
pub enum OffersCmd {
    /// List the offers.
    List,
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// List audit events, newest first.
    List {
        #[command(flatten)]
        page: PageArgs,
        /// Only the events about this key (its id).
        #[arg(long, value_name = "ID")]
        key: Option<String>,
    },
    /// Check the hash chain; names the first broken event and exits 1 if there is one.
    Verify,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("glpi-network-server").chain(args.iter().copied()))
    }

    /// Issue 14 #14: `--key-cache-ttl 18446744073709551615` was accepted and panicked every
    /// worker on its first cached look-up.
    #[test]
    fn every_numeric_flag_out_of_range_is_refused_naming_it() {
        let huge = "18446744073709551615";
        for (flag, bad) in [
            ("--key-cache-ttl", huge),
            ("--key-cache-ttl", "86401"),
            ("--key-cache-size", huge),
            ("--token-ttl", huge),
            ("--token-ttl", "59"),
            ("--grace-period=-1", ""),
            ("--failed-lookups-per-minute", "0"),
            ("--failed-lookups-per-minute", huge),
            ("--registrations-per-key-per-minute", "0"),
            ("--workers", "0"),
            ("--workers", huge),
        ] {
            let args: Vec<&str> = [flag, bad].into_iter().filter(|a| !a.is_empty()).collect();
            let flag = flag.split('=').next().unwrap();
            let err = match parse(&args) {
                Ok(_) => panic!("{flag} {bad} accepted"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(flag), "{flag} {bad}: {err}");
        }
        for args in [
            &["keys", "list", "--limit", "0"][..],
            &["keys", "list", "--limit", "501"],
            &[
                "keys",
                "issue",
                "--subscriber",
                "a",
                "--offer",
                "basic",
                "--count",
                "0",
            ],
            &[
                "keys",
                "issue",
                "--subscriber",
                "a",
                "--offer",
                "basic",
                "--trial-days",
                huge,
            ],
            &[
                "subscriptions",
                "create",
                "--subscriber-id",
                "x",
                "--offer",
                "basic",
                "--trial-days",
                "36501",
            ],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
        let ok = parse(&[
            "--key-cache-ttl",
            "86400",
            "--key-cache-size",
            "0",
            "--workers",
            "1024",
            "--failed-lookups-per-minute",
            "100000000",
        ])
        .unwrap();
        assert_eq!(ok.settings.key_cache_ttl, MAX_KEY_CACHE_TTL_SECS);
        assert_eq!(ok.settings.workers, Some(MAX_WORKERS));
    }

    /// The serving flags are taken before `serve` or after it (after wins), and are not
    /// flags of the other subcommands.
    #[test]
    fn serve_flags_belong_to_the_command_and_to_serve_only() {
        let served = |args: &[&str]| {
            let mut cli = parse(args).unwrap();
            match cli.command.take() {
                Some(Command::Serve(flags)) => flags.apply(&mut cli.settings).unwrap(),
                None => {}
                _ => panic!("not serve"),
            }
            cli.settings
        };
        assert_eq!(served(&["--bind", "127.0.0.1:1"]).bind, "127.0.0.1:1");
        assert_eq!(
            served(&["serve", "--bind", "127.0.0.1:2"]).bind,
            "127.0.0.1:2"
        );
        let both = served(&[
            "--bind",
            "127.0.0.1:1",
            "--workers",
            "3",
            "serve",
            "--bind",
            "127.0.0.1:2",
        ]);
        assert_eq!((both.bind.as_str(), both.workers), ("127.0.0.1:2", Some(3)));
        assert!(served(&["serve", "--test-mode", "--fixtures", "f.json"]).test_mode);
        assert!(parse(&["serve", "--workers", "0"]).is_err());
        assert!(parse(&["keys", "list", "--bind", "x"]).is_err());
        assert!(
            parse(&["keys", "list", "--data-dir", "d"]).is_ok(),
            "data flags are global"
        );
        let mut cli = parse(&["serve", "--fixtures", "f.json"]).unwrap();
        let Some(Command::Serve(flags)) = cli.command.take() else {
            panic!("serve")
        };
        assert!(
            flags.apply(&mut cli.settings).is_err(),
            "fixtures need test mode"
        );
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges_repeated() {
        let cli = parse(&[
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "fd00::/8",
            "--trusted-proxy",
            "192.0.2.1",
        ])
        .unwrap();
        assert_eq!(cli.settings.trusted_proxies.len(), 3);
        let err = parse(&["--trusted-proxy", "10.0.0.0/40"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--trusted-proxy"), "{err}");
    }
}
