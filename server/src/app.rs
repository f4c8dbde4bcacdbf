//! `Application`: the one start-up path shared by `main` and the tests.

use crate::config::Settings;
use crate::db::keycache::KeyCache;
use crate::db::{self, Db};
use crate::domain::clock::Clock;
use crate::domain::offer::OfferCatalog;
use crate::http;
use crate::http::auth::{AdminSecret, load_or_create_admin_token};
use crate::http::error;
use crate::http::limits::{Limiter, Limits};
use crate::http::telemetry::Metrics;
use crate::signing::{Lifetimes, MasterKey, Signer};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// Largest JSON body accepted.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Clock,
    pub admin: AdminSecret,
    pub public_url: Arc<str>,
    pub signer: Arc<Signer>,
    pub offers: Arc<OfferCatalog>,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<Limits>,
    /// Key states of the hot read paths (see [`crate::db::keycache`]).
    pub keys: Arc<KeyCache>,
    /// `--webhooks-allow-private`.
    pub webhooks_allow_private: bool,
    /// `--portal-signup`.
    pub portal_signup: crate::config::PortalSignup,
    /// Present only with `--test-mode`.
    pub test_mode: Option<Arc<crate::testmode::TestMode>>,
}

/// A built server, bound to its port, not yet running.
pub struct Application {
    server: Server,
    port: u16,
    state: AppState,
    admin_token: String,
}

/// Checks the database for changes made by other processes, for the key-state cache (see
/// [`crate::db::keycache`]), every half TTL for as long as the server's system runs.
fn spawn_change_checks(db: Db, keys: Arc<KeyCache>) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(keys.check_interval());
        let mut failing = false;
        loop {
            tick.tick().await;
            match http::run(&db, |c| Ok(crate::db::notify::latest_change(c)?)).await {
                Ok(latest) => {
                    keys.note_latest_event(latest);
                    failing = false;
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "key cache: cannot check the database for changes; answering from the database until it can");
                }
                Err(_) => {}
            }
        }
    });
}

/// Writes the `last_seen_at` refreshes reads recorded, every
/// [`crate::db::last_seen::FLUSH_EVERY_SECS`] for as long as the server's system runs (and once
/// more at shutdown, in [`Application::run_until_stopped`]).
fn spawn_last_seen_flush(db: Db) {
    actix_web::rt::spawn(async move {
        let period = Duration::from_secs(crate::db::last_seen::FLUSH_EVERY_SECS);
        let mut tick = actix_web::rt::time::interval(period);
        loop {
            tick.tick().await;
            let db2 = db.clone();
            match actix_web::rt::task::spawn_blocking(move || db2.flush_last_seen()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not write last_seen_at; kept for the next flush")
                }
                Err(e) => tracing::warn!(error = %e, "last_seen_at flush task failed"),
            }
        }
    });
}

/// How often the heap's free pages go back to the system ([`release_freed_memory`]).
const RELEASE_MEMORY_EVERY: Duration = Duration::from_secs(10);

/// Hands the heap's free pages back to the system every [`RELEASE_MEMORY_EVERY`]. A fleet
/// walking its keys replaces the key cache's entries all the time; glibc reuses the freed
/// chunks but keeps the pages between them, and the RSS crept to the bench's high-water mark
/// (~8 MiB more than what is in use at 100,000 keys). One trim took 0.2 to 1 ms there; it runs
/// on a blocking thread.
fn spawn_memory_release() {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(RELEASE_MEMORY_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            let took = actix_web::rt::task::spawn_blocking(|| {
                let t0 = std::time::Instant::now();
                release_freed_memory();
                t0.elapsed()
            })
            .await;
            if let Ok(took) = took {
                tracing::debug!(
                    micros = took.as_micros() as u64,
                    "freed heap pages released"
                );
            }
        }
    });
}

/// On PostgreSQL, listens for the changes other processes make (see [`crate::db::notify`]) and
/// drops what they make stale: the changed key's cached state (or every state), and the signing
/// ring on a change that may be a rotation. Ends when the server's state is dropped.
fn spawn_change_listener(
    url: String,
    origin: String,
    keys: &Arc<crate::db::keycache::KeyCache>,
    signer: &Arc<Signer>,
) {
    let (k, s) = (Arc::downgrade(keys), Arc::downgrade(signer));
    let alive = {
        let k = k.clone();
        move || k.strong_count() > 0
    };
    let spawned = crate::db::notify::spawn_listener(url, origin, alive, move |change| {
        use crate::db::notify::Change;
        let (Some(keys), Some(signer)) = (k.upgrade(), s.upgrade()) else {
            return;
        };
        match change {
            Change::Key(h) => keys.changed(Some(&h)),
            Change::All => {
                keys.changed(None);
                signer.mark_changed();
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the change listener; changes made elsewhere are seen by the periodic check");
    }
}

/// Removes the rate-limit counters of ended windows, every minute.
fn spawn_limit_sweeps(db: Db, clock: Clock) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            let now = clock.now().timestamp();
            if let Err(e) = http::run(&db, move |c| Ok(db::limits::sweep(c, now)?)).await {
                tracing::warn!(error = %e, "could not sweep old rate-limit windows");
            }
        }
    });
}

/// Opens the database (running migrations) and makes sure the data directory exists.
pub fn open_pool(settings: &Settings) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&settings.data_dir)?;
    Db::open(&settings.database_url(), 16)
}

/// Loads the master key and the signing keys (creating both on a fresh deployment). A master
/// key that is missing while the database already holds signing keys, or that cannot open
/// them, is a start-up error, never a silent new key.
pub fn open_signer(settings: &Settings, db: &Db, clock: &Clock) -> anyhow::Result<Signer> {
    let mut conn = db.get()?;
    let has_keys = db::signing_keys::active(&mut conn)?.is_some();
    let master = match MasterKey::load(&settings.master_key, &settings.data_dir, !has_keys)? {
        Some(m) => m,
        None => anyhow::bail!(
            "the database already holds signing keys but there is no master key: restore {} or pass --master-key",
            settings.data_dir.join("master.key").display()
        ),
    };
    let lifetimes = Lifetimes {
        ttl_secs: settings.token_ttl,
        grace_secs: settings.grace_period,
    };
    let seed = settings
        .test_mode
        .then_some(settings.signing_seed.as_deref())
        .flatten();
    Signer::init(
        &mut conn,
        master,
        lifetimes,
        clock.now_naive(),
        seed,
        settings.test_mode,
    )
}

fn load_offers(db: &Db) -> anyhow::Result<OfferCatalog> {
    let offers = db::offers::list(&mut *db.get()?)?;
    Ok(offers
        .into_iter()
        .map(|o| (o.reference.clone(), o))
        .collect())
}

/// Loads or creates the admin token (see [`load_or_create_admin_token`]), saying so when it
/// made a new one.
fn admin_token(settings: &Settings) -> anyhow::Result<String> {
    let (admin_token, generated) =
        load_or_create_admin_token(settings.admin_token.as_deref(), &settings.data_dir)?;
    if generated {
        tracing::info!(
            path = %settings.data_dir.join("admin-token").display(),
            "generated a new admin token"
        );
    }
    Ok(admin_token)
}

/// Binds the listener; returns it with the public URL (`--public-url`, or the bound address).
fn bind(settings: &Settings) -> anyhow::Result<(TcpListener, String)> {
    let listener = TcpListener::bind(&settings.bind)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
    let addr = listener.local_addr()?;
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    Ok((listener, public_url))
}

/// Seeds the demo plugins once per database and imports `--catalogue` if given.
fn seed_catalogue(settings: &Settings, db: &Db, clock: &Clock) -> anyhow::Result<()> {
    let mut c = db.get()?;
    if crate::db::catalogue::seed_demo_once(&mut c, clock.now_naive())? {
        tracing::info!("seeded the demo plugins");
    }
    if let Some(file) = &settings.catalogue {
        let n = crate::db::catalogue::import_file(&mut c, file, clock.now_naive())?;
        tracing::info!(plugins = n, file = %file.display(), "imported the plugin catalogue");
    }
    Ok(())
}

/// The request limiters, from the settings.
fn limits(settings: &Settings) -> Limits {
    Limits {
        failed_lookups: Limiter::new(settings.failed_lookups_per_minute, 60),
        registrations: Limiter::new(settings.registrations_per_key_per_minute, 60),
        trusted_proxies: settings.trusted_proxies.clone(),
    }
}

/// Opens everything a handler reaches: the signer, the offers, the catalogue, the caches.
fn build_state(
    settings: &Settings,
    db: Db,
    admin_token: &str,
    public_url: String,
) -> anyhow::Result<AppState> {
    let clock = Clock::default();
    let signer = open_signer(settings, &db, &clock)?;
    let offers = load_offers(&db)?;
    seed_catalogue(settings, &db, &clock)?;
    let generations = db.generations();
    Ok(AppState {
        db,
        clock,
        admin: AdminSecret::new(admin_token),
        public_url: public_url.into(),
        signer: Arc::new(signer),
        offers: Arc::new(offers),
        portal_signup: settings.portal_signup,
        webhooks_allow_private: settings.webhooks_allow_private,
        test_mode: settings
            .test_mode
            .then(|| Arc::new(crate::testmode::TestMode::default())),
        metrics: Arc::new(Metrics::new()),
        keys: Arc::new(KeyCache::new(
            settings.key_cache_size,
            Duration::from_secs(settings.key_cache_ttl),
            generations,
        )),
        limits: Arc::new(limits(settings)),
    })
}

/// With `--test-mode`: warns loudly, and loads `--fixtures` if given.
fn start_test_mode(settings: &Settings, state: &AppState) -> anyhow::Result<()> {
    if !settings.test_mode {
        return Ok(());
    }
    tracing::warn!(
        "TEST MODE IS ON: /_test routes (clock, fixtures, faults, journal, reset) are exposed \
         without authentication; never run a production server like this"
    );
    let Some(file) = &settings.fixtures else {
        return Ok(());
    };
    let fx = crate::testmode::fixtures::read_file(file)?;
    let actor = crate::db::audit::Actor::new("test", None);
    let base = file.parent().unwrap_or_else(|| std::path::Path::new("."));
    let loaded = crate::testmode::fixtures::load_file(
        &mut state.db.get()?,
        &fx,
        base,
        state.clock.now_naive(),
        &actor,
    )
    .map_err(|e| anyhow::anyhow!("fixtures {}: {e}", file.display()))?;
    tracing::info!(file = %file.display(), keys = loaded.keys.len(), "loaded the fixtures");
    drop((fx, loaded));
    release_freed_memory();
    Ok(())
}

/// Hands the heap's free memory back to the system. A big fixture file is parsed whole and
/// loaded in one transaction (its rows, its audit events and its refs held until the commit);
/// once that is freed glibc keeps the pages, so the server's RSS would stay at the load's peak
/// (about 1 GB for a million keys) for its whole life.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// HTTP workers: `--workers`, else one per core, plus one when the key reads run on the workers
/// (a SQLite file). A cache miss of `/info` or a validation reads SQLite on its worker
/// (`db::reader`), so a worker is sometimes busy with a read while its connections wait; one
/// worker more than the cores keeps them busy. On two cores, with the key cache off, 3 workers
/// gave `/info` 1.18x and validations 1.12x of the naive baseline where 2 gave 0.96x and 1.08x
/// (the machine then stood 16% idle). On PostgreSQL the reads go through the pool's threads, and
/// the extra worker only competed with them and with PostgreSQL for the cores: cache off, 32
/// connections, the p99 of `/info` and validations was 8.7 to 10.9 ms with 3 workers and 6.6 to
/// 8.0 ms with 2.
fn worker_count(configured: Option<usize>, reads_on_workers: bool) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    configured
        .unwrap_or(cores + usize::from(reads_on_workers))
        .max(1)
}

/// The batched key reads of a PostgreSQL database at `url` (`db::batch`), one thread per two
/// cores (at least one); `None` on SQLite, whose workers read on connections of their own. On
/// two cores, cache off, 32 connections, one thread gave `/info` 40k req/s with p99 1.6 ms at
/// 50,000 keys where two gave 25k to 30k with p99 3.7 to 4.2 ms (the batches grow instead,
/// with fewer threads and backends on the cores).
fn batched_reads(state: &AppState, url: &str) -> anyhow::Result<Option<db::batch::BatchReads>> {
    let db::Backend::Postgres(url) = db::Backend::from_url(url)? else {
        return Ok(None);
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
    let batches = state.metrics.key_read_batches.clone();
    let reads = db::batch::BatchReads::start(&url, threads, move || batches.inc())?;
    Ok(Some(reads))
}

/// A worker's key reader: its own SQLite connection, or on PostgreSQL a handle on `batch`.
fn worker_reader(
    db: &db::Db,
    url: &str,
    batch: Option<&db::batch::BatchReads>,
) -> db::reader::Reader {
    match batch {
        Some(b) => db::reader::Reader::batched(db, b.clone()),
        None => db::reader::Reader::new(db, url),
    }
}

/// The actix server on `listener`: extractor limits and error envelopes, security headers,
/// test-mode and telemetry middleware, the route table, and the connection timeouts.
fn http_server(
    settings: &Settings,
    state: &AppState,
    listener: TcpListener,
) -> anyhow::Result<Server> {
    let test_mode = settings.test_mode;
    // Blocking work is database work, and each task holds a pooled connection: more threads
    // per worker than connections would only wait on the pool (and each idle thread keeps
    // its stack and malloc arena, which grew the RSS under mixed load).
    let blocking_threads = state.db.pool().max_size() as usize;
    let data = web::Data::new(state.clone());
    let url = settings.database_url();
    let reads_on_workers = db::reader::reads_on_workers(&url);
    let batch = batched_reads(state, &url)?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            // each worker's own read connection (built once per worker, see `db::reader`), or
            // on PostgreSQL its handle on the batched reads (`db::batch`)
            .app_data(worker_reader(&data.db, &url, batch.as_ref()))
            // each worker's own parsed signers (neither `Send` nor `Sync`: see `LocalSigners`)
            .app_data(glpi_network_shared::token::LocalSigners::default())
            .app_data(
                web::JsonConfig::default()
                    .limit(MAX_JSON_BODY)
                    .error_handler(error::json_error),
            )
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .app_data(web::PayloadConfig::new(MAX_JSON_BODY))
            .wrap(
                middleware::DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Cache-Control", "no-store"))
                    .add(("X-Frame-Options", "DENY"))
                    .add(("Referrer-Policy", "no-referrer")),
            )
            .wrap(middleware::Condition::new(
                test_mode,
                middleware::from_fn(crate::testmode::middleware),
            ))
            .wrap(middleware::from_fn(crate::http::telemetry::middleware))
            .configure(|cfg| {
                if test_mode {
                    http::configure_test_mode(cfg);
                }
                http::configure(cfg);
            })
    })
    .listen(listener)?
    // slow clients: the request head must arrive within 5 s; idle keep-alive ends at 30 s
    .client_request_timeout(Duration::from_secs(5))
    .client_disconnect_timeout(Duration::from_secs(2))
    .keep_alive(Duration::from_secs(30))
    .worker_max_blocking_threads(blocking_threads)
    .shutdown_timeout(5);
    Ok(server
        .workers(worker_count(settings.workers, reads_on_workers))
        .run())
}

impl Application {
    /// Opens the database, loads or creates the admin token, binds the listener, builds the
    /// state every handler reaches, and starts (without running it yet) the HTTP server.
    pub fn build(settings: &Settings) -> anyhow::Result<Self> {
        let db = open_pool(settings)?;
        let admin_token = admin_token(settings)?;
        let (listener, public_url) = bind(settings)?;
        let port = listener.local_addr()?.port();
        let state = build_state(settings, db, &admin_token, public_url)?;
        start_test_mode(settings, &state)?;
        spawn_limit_sweeps(state.db.clone(), state.clock.clone());
        if let db::Backend::Postgres(url) = db::Backend::from_url(&settings.database_url())? {
            spawn_change_listener(
                url,
                state.db.origin().to_owned(),
                &state.keys,
                &state.signer,
            );
        }
        if state.keys.enabled() {
            spawn_change_checks(state.db.clone(), state.keys.clone());
        }
        spawn_last_seen_flush(state.db.clone());
        spawn_memory_release();
        http::delivery::spawn_worker(state.clone());
        let server = http_server(settings, &state, listener)?;
        Ok(Application {
            server,
            port,
            state,
            admin_token,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The admin token in force (for tests and embedding).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Runs until stopped, then writes out the `last_seen_at` refreshes still recorded.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let db = self.state.db.clone();
        match actix_web::rt::task::spawn_blocking(move || db.flush_last_seen()).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(written = n, "wrote last_seen_at at shutdown"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "could not write last_seen_at at shutdown"),
            Err(e) => tracing::error!(error = %e, "last_seen_at flush at shutdown failed"),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::worker_count;

    #[test]
    fn one_worker_more_than_the_cores_only_where_the_workers_read() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(worker_count(None, true), cores + 1);
        assert_eq!(worker_count(None, false), cores);
        assert_eq!(worker_count(Some(5), true), 5, "--workers wins");
        assert_eq!(worker_count(Some(5), false), 5);
        assert_eq!(worker_count(Some(0), false), 1);
    }
}
