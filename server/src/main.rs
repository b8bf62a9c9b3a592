//! The `footfall` binary: `footfall serve` starts ingest, storage and SQL in one process.

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use clap::{Parser, Subcommand};
use footfall_engine::storage::StorageLocation;
use footfall_engine::{Engine, EngineConfig, ProjectId};
use footfall_sql::guard::SqlLimits;
use footfall_sql::{QueryConfig, QueryScope, QueryService};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::sync::watch;

use footfall_server::accounts::audit::Actor;
use footfall_server::accounts::spool::{self, UserAddRequest};
use footfall_server::accounts::store::StoreError;
use footfall_server::accounts::users::{check_new_password, normalize_email, PasswordHasher, MAX_PASSWORD_BYTES};
use footfall_server::accounts::{AccountError, Accounts};
use footfall_server::config::{Config, ServeArgs};
use footfall_server::enrich::{EnrichConfig, Enricher};
use footfall_server::http::listener::ConnectionLimits;
use footfall_server::http::AppState;
use footfall_server::metadata::{hash_token, Metadata};
use footfall_server::privacy::{VisitorHasher, VisitorId};
use footfall_server::sessions::{SessionId, SessionTracker};

/// Ingest allocates and frees a dozen short strings per event on one thread and frees many of them
/// on another (the WAL thread); glibc's malloc spent a fifth of the server's CPU on that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "footfall", version, about = "Privacy-first web analytics on your own storage")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the ingest and query server.
    Serve(ServeArgs),
    /// Manage the people who sign in.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user. The password is read from standard input when it is not a terminal, else
    /// prompted for. Works whether or not the server is running.
    Add(UserAddArgs),
}

#[derive(clap::Args)]
struct UserAddArgs {
    /// The user's e-mail address (their sign-in name).
    #[arg(long)]
    email: String,
    /// Make the user an owner of this Footfall: of every project, and able to create projects.
    #[arg(long)]
    owner: bool,
    /// The same settings as `serve` (`--data-dir`, `--config`, `FOOTFALL_*`).
    #[command(flatten)]
    settings: ServeArgs,
}

/// Rust allocations go to mimalloc, but C libraries (zstd, which parquet creates a compression and
/// a decompression context for per column chunk read) still use glibc's malloc. With its default
/// trim and mmap thresholds the ~100 KiB contexts were handed back to the kernel after each query
/// and faulted in again by the next; keeping them costs a few MiB of RSS and cut ≈5% off the hot
/// dashboard queries.
fn tune_c_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}

/// mimalloc asks for transparent huge pages on its arenas, so each first touch of an arena page
/// faults in and zeroes 2 MiB. A fresh server's first dashboard query at 1M events spent 75% of
/// its time in the kernel's `clear_page_erms` and took 135–190 ms instead of ≈ 30 ms; hot queries
/// measured the same either way (geomean 22.4 ms both), so huge pages buy nothing here. The flag is
/// checked at fault time, so setting it before the first query covers the arenas mimalloc already
/// mapped.
fn disable_transparent_huge_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process's memory map.
    if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn main() -> Result<()> {
    let huge_pages = disable_transparent_huge_pages();
    tune_c_allocator();
    let cli = Cli::parse();
    init_logging();
    if let Err(e) = huge_pages {
        tracing::warn!(error = %e, "could not disable transparent huge pages; a fresh server's first queries will be slower");
    }
    match cli.command {
        Command::Serve(args) => {
            let config = Config::resolve(&args)?;
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve(config))
        }
        Command::User(UserCommand::Add(args)) => user_add(args),
    }
}

/// How long `footfall user add` waits for a running server to take its request.
const SPOOL_WAIT: Duration = Duration::from_secs(30);

fn user_add(args: UserAddArgs) -> Result<()> {
    let config = Config::resolve(&args.settings)?;
    let email = normalize_email(&args.email)?;
    let password = read_password()?;
    check_new_password(&password)?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    let path = config.data_dir.join("accounts.redb");
    let user_id = match Accounts::open(&path, config.accounts.clone()) {
        Ok(accounts) => accounts.create_user(&email, &password, args.owner, &Actor::Cli)?.id.to_string(),
        Err(AccountError::Store(StoreError::Locked)) => {
            // The server has the store: hand it the request (with the hash, not the password).
            let hasher = PasswordHasher::new(config.accounts.argon2_memory_kib, config.accounts.argon2_iterations)?;
            let request =
                UserAddRequest { email: email.clone(), password_hash: hasher.hash(&password)?, owner: args.owner };
            spool::submit(&config.data_dir, &request, SPOOL_WAIT)?
        }
        Err(e) => return Err(e).context("opening the accounts store"),
    };
    println!("added user {user_id} <{email}>{}", if args.owner { " as an owner" } else { "" });
    Ok(())
}

/// The password from a prompt without echo, or from standard input (one line) when piped.
fn read_password() -> Result<String> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(first == again, "the passwords differ");
        return Ok(first);
    }
    let mut input = String::new();
    std::io::Read::take(std::io::stdin(), (MAX_PASSWORD_BYTES + 2) as u64).read_to_string(&mut input)?;
    let password = input.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&input);
    Ok(password.to_string())
}

/// Opens the accounts store, waiting briefly if `footfall user add` holds it at this moment.
fn open_accounts(config: &Config) -> Result<Accounts> {
    let path = config.data_dir.join("accounts.redb");
    let mut attempts = 0;
    loop {
        match Accounts::open(&path, config.accounts.clone()) {
            Err(AccountError::Store(StoreError::Locked)) if attempts < 50 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            other => {
                return other.context("opening the accounts store (is another server running on this data directory?)")
            }
        }
    }
}

/// Applies `footfall user add` requests that arrive while the server runs.
async fn user_spool(accounts: Arc<Accounts>, data_dir: std::path::PathBuf, mut stop: watch::Receiver<bool>) {
    loop {
        let (a, d) = (accounts.clone(), data_dir.clone());
        let _ = tokio::task::spawn_blocking(move || spool::process(&a, &d)).await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("FOOTFALL_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The admin token: `FOOTFALL_ADMIN_TOKEN`, else the one saved in the data directory, else a new one
/// saved there (mode 0600) and logged once.
fn admin_token(data_dir: &Path) -> Result<String> {
    if let Ok(token) = std::env::var("FOOTFALL_ADMIN_TOKEN") {
        if !token.trim().is_empty() {
            return Ok(token.trim().to_string());
        }
    }
    let path = data_dir.join("admin-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok(token.trim().to_string());
    }
    let token = format!("ff_admin_{}", hex::encode(rand::random::<[u8; 24]>()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, token.as_bytes())?;
    file.sync_all()?;
    tracing::info!(token = %token, path = %path.display(), "generated the admin token (shown once; also saved in the file)");
    Ok(token)
}

async fn serve(config: Config) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    let metrics = PrometheusBuilder::new().install_recorder().context("installing the metrics recorder")?;
    let admin_token_hash = hash_token(&admin_token(&config.data_dir)?);
    let metadata = Arc::new(Metadata::open(&config.data_dir.join("metadata.redb")).context("opening metadata")?);
    let accounts = Arc::new(open_accounts(&config)?);
    if let Some(token) = accounts.new_setup_token()? {
        // Printed once per start while no user exists; each start replaces the previous link.
        tracing::info!(
            url = %format!("{}/setup?token={token}", config.public_url),
            "no user yet: create the first owner with this one-time setup link (valid 24 h; \
             POST /api/v1/auth/setup with the token), or run `footfall user add --email ... --owner`"
        );
    }

    let location = StorageLocation::parse(&config.storage)?;
    let store = location.open()?;
    let mut engine_config = EngineConfig::new(config.data_dir.join("wal"));
    engine_config.flush_bytes = config.flush_bytes;
    engine_config.flush_age = config.flush_age;
    engine_config.memory_limit = config.memory_limit;
    if let StorageLocation::Local(root) = &location {
        engine_config.local_storage_root = Some(root.clone());
    }
    let engine = Arc::new(Engine::open(engine_config, store).await.context("opening the storage engine")?);
    let queries = QueryService::new(
        engine.clone(),
        QueryConfig {
            timeout: config.query_timeout,
            memory_limit: config.query_memory_limit,
            metadata_cache_limit: config.query_metadata_cache,
            max_rows: config.query_max_rows,
            sql_limits: SqlLimits { max_statement_bytes: config.query_max_sql_bytes, ..SqlLimits::default() },
            max_result_bytes: config.query_max_result_bytes,
            ..Default::default()
        },
    )?;

    let hasher = VisitorHasher::new(metadata.clone());
    hasher.rotate()?;
    let sessions = SessionTracker::default();
    let started = std::time::Instant::now();
    let mut enrich_config = EnrichConfig { geoip_database: config.geoip_database.clone(), ..EnrichConfig::default() };
    if let Some(params) = &config.drop_query_params {
        enrich_config.drop_query_params = params.clone();
    }
    let enricher = Enricher::new(&enrich_config).context("loading enrichment data")?;
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "enrichment rules and IP database loaded");
    restore_sessions(&queries, &sessions).await;

    let state = Arc::new(AppState {
        config: config.clone(),
        engine: engine.clone(),
        queries,
        metadata,
        hasher,
        sessions,
        enricher,
        admin_token_hash,
        metrics,
        accounts: accounts.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let flusher = tokio::spawn(engine.clone().run_flusher(stop_rx.clone()));
    let compactor =
        config.compaction_interval.map(|every| tokio::spawn(engine.clone().run_compactor(every, stop_rx.clone())));
    let spool = tokio::spawn(user_spool(accounts.clone(), config.data_dir.clone(), stop_rx.clone()));
    let housekeeping = tokio::spawn(housekeeping(state.clone(), stop_rx));

    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        storage = %location,
        data_dir = %config.data_dir.display(),
        query_memory_limit = config.query_memory_limit,
        "listening"
    );
    let limits = ConnectionLimits {
        header_timeout: config.header_timeout,
        body_timeout: config.body_timeout,
        write_timeout: config.body_timeout,
        max_connections: connection_cap(config.max_connections),
    };
    footfall_server::http::listener::serve(
        listener,
        footfall_server::http::router(state.clone()),
        limits,
        shutdown_signal(),
        config.query_timeout + Duration::from_secs(5),
    )
    .await?;

    tracing::info!("shutting down: flushing buffered events");
    let _ = stop_tx.send(true);
    let _ = flusher.await;
    if let Some(compactor) = compactor {
        let _ = compactor.await;
    }
    let _ = housekeeping.await;
    let _ = spool.await;
    if let Err(e) = state.metadata.persist_key_usage() {
        tracing::warn!(error = %e, "saving keys' last use");
    }
    let report = engine.shutdown().await.context("final flush")?;
    tracing::info!(files = report.files_written, rows = report.rows_written, "stopped cleanly");
    Ok(())
}

/// The connection cap, within what the process may open: the soft limit on open files is raised
/// to the hard one (often 1,024 → 524,288), and the cap leaves room for data files, the WAL and
/// outgoing connections to object storage.
fn connection_cap(configured: usize) -> usize {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                if limit.rlim_cur < limit.rlim_max {
                    let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                        limit = raised;
                    }
                }
                let room = (limit.rlim_cur as usize).saturating_sub(512).max(64);
                if configured > room {
                    tracing::warn!(configured, room, "max_connections lowered to what the open-file limit allows");
                    return room;
                }
            }
        }
    }
    configured
}

/// Reloads the sessions still open (active in the last 30 minutes) from stored events.
async fn restore_sessions(queries: &QueryService, sessions: &SessionTracker) {
    let sql = "SELECT project_id, visitor_id, session_id, CAST(max(added_iso) AS BIGINT) AS last_ms \
               FROM events WHERE added_iso >= now() - INTERVAL '30 minutes' \
               AND visitor_id IS NOT NULL AND session_id IS NOT NULL GROUP BY 1, 2, 3";
    match queries.run(sql, &QueryScope::AllProjects).await {
        Ok(output) => {
            // Queries return strings as `Utf8View` or `Utf8` depending on the plan; both are read
            // as `Utf8`. (Reading only `Utf8` once restored no session at all, and every restart
            // split every live visit in two.)
            let restore = |batch: &RecordBatch| -> Option<()> {
                let batch_column = |i: usize| batch.column(i);
                let text = |i: usize| arrow::compute::cast(batch_column(i), &DataType::Utf8).ok();
                let (projects, visitors, ids) = (text(0)?, text(1)?, text(2)?);
                let (projects, visitors, ids) =
                    (projects.as_string_opt::<i32>()?, visitors.as_string_opt::<i32>()?, ids.as_string_opt::<i32>()?);
                let last = batch.column(3).as_primitive_opt::<Int64Type>()?;
                for i in 0..batch.num_rows() {
                    // Sessions a sender named itself continue under its own ids, so only the
                    // server's own are restored.
                    let visitor = VisitorId::parse(visitors.value(i));
                    let session = SessionId::parse(ids.value(i));
                    if let (Ok(project), Some(visitor), Some(session)) =
                        (ProjectId::new(projects.value(i)), visitor, session)
                    {
                        sessions.restore(project, visitor, session, last.value(i));
                    }
                }
                Some(())
            };
            for batch in &output.batches {
                if restore(batch).is_none() {
                    tracing::warn!("unexpected column types restoring sessions");
                }
            }
            tracing::info!(sessions = sessions.len(), "restored open sessions");
        }
        Err(e) => tracing::warn!(error = %e, "could not restore open sessions; they will restart"),
    }
}

async fn housekeeping(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = stop.changed() => return,
        }
        state.sessions.expire(footfall_server::ingest::now_ms());
        if let Err(e) = state.hasher.rotate() {
            tracing::error!(error = %e, "rotating visitor salts");
        }
        state.accounts.guard().prune();
        if let Err(e) = state.accounts.prune_sessions() {
            tracing::warn!(error = %e, "removing expired sessions");
        }
        if let Err(e) = state.metadata.persist_key_usage() {
            tracing::warn!(error = %e, "saving keys' last use");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
