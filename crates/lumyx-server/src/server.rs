//! Starting and stopping a server: the stores its configuration names, the
//! demo key and admin token a first start makes, the listener, and a
//! graceful shutdown that lets in-flight requests and streams finish.
//!
//! The choice of stores is made here, in [`Server::start`], and nowhere
//! else: in memory, or every piece of state in Redis.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::Utc;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use lumyx_gate::{Following, Gate, KeyTable, Keys, MemoryBackend, RedisBackend};
use lumyx_keys::{ApiKey, KeyRecord, KeyStore, MemoryKeyStore, RedisKeyStore, SqliteKeyStore};
use lumyx_ratelimit::{RedisLimiter, Timestamp};
use lumyx_redis::{RedisConnector, RedisUrl};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admin::TokenDigest;
use crate::conversations::{
    MemoryConversations, RedisConversations, SqliteConversations, StoreError,
};
use crate::durable::{CountSaver, DataDir, DataDirError, OffThread, SAVE_EVERY};
use crate::metrics::{Metrics, PurposeLabels};
use crate::router::router;
use crate::state::{AppState, Measured, Served};
use crate::{AdminToken, ChatModel, Config, DemoModel, Personas, StoreConfig};

/// The owner of the demo key a first start makes.
pub const DEMO_OWNER: &str = "demo";

/// The setting of a data directory that holds the admin token's digest.
const ADMIN_DIGEST_SETTING: &str = "admin_token_sha256";

/// The setting of a data directory that says its demo key was made.
const DEMO_KEY_SETTING: &str = "demo_key_made_at";

/// Where instances sharing a Redis keep the digest of the admin token the
/// first of them made up.
const SHARED_ADMIN_DIGEST: &str = "lumyx:admin:token_sha256";

/// A server to start: its configuration, its chat model and its personas.
///
/// ```no_run
/// use lumyx_server::{Config, Server};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let running = Server::new(Config::from_env()?).start().await?;
/// println!("{}", running.started());
/// running.run_until_signal().await?;
/// # Ok(())
/// # }
/// ```
///
/// A real model is one [`ChatModel`] implementation away:
/// `Server::new(config).with_model(MyModel::new())`.
pub struct Server {
    config: Config,
    model: Arc<dyn ChatModel>,
    personas: Personas,
}

impl Server {
    /// A server of `config`, answering with the [`DemoModel`] as the
    /// [demo personas](Personas::demo).
    pub fn new(config: Config) -> Server {
        Server {
            config,
            model: Arc::new(DemoModel),
            personas: Personas::demo(),
        }
    }

    /// The server with another chat model.
    #[must_use]
    pub fn with_model(mut self, model: impl ChatModel) -> Server {
        self.model = Arc::new(model);
        self
    }

    /// The server with other personas.
    #[must_use]
    pub fn with_personas(mut self, personas: Personas) -> Server {
        self.personas = personas;
        self
    }

    /// Opens the stores, makes the demo key and the admin token when they
    /// are needed, and starts listening. Must be called inside a Tokio
    /// runtime; the server runs until [`RunningServer::shutdown`].
    ///
    /// # Errors
    /// When a store cannot be opened (Redis unreachable at start) or the
    /// address cannot be listened on.
    pub async fn start(self) -> Result<RunningServer, StartError> {
        let Server {
            config,
            model,
            personas,
        } = self;
        // The address first: a start that cannot listen must not have made
        // (and stored) an admin token or a demo key nobody was shown.
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
        let metrics = Arc::new(Metrics::new());
        let served = |admin: &AdminSecret| Served {
            model: Arc::clone(&model),
            personas: personas.clone(),
            admin_token: admin.digest,
            metrics: Arc::clone(&metrics),
            request_timeout: config.request_timeout,
        };
        let (router, keys, admin, following, data) = match &config.store {
            StoreConfig::Sqlite(dir) => {
                let data = DataDir::open(dir).map_err(StartError::DataDir)?;
                let path = data.database_path();
                let store = SqliteKeyStore::open(&path).map_err(StartError::Keys)?;
                let keys = Keys::load(Arc::new(OffThread(Arc::new(store))))
                    .await
                    .map_err(StartError::Keys)?;
                data.restore_counts(keys.table())
                    .map_err(StartError::DataDir)?;
                let gate = Gate::new(
                    Arc::clone(keys.table()),
                    Measured::new(MemoryBackend::new(), None),
                );
                let conversations =
                    SqliteConversations::open(&path).map_err(StartError::Conversations)?;
                let admin = AdminSecret::stored(config.admin_token.clone(), &data)?;
                let state = AppState::new(
                    Arc::new(gate),
                    keys.clone(),
                    Arc::new(conversations),
                    None,
                    served(&admin),
                );
                (router(Arc::new(state)), keys, admin, None, Some(data))
            }
            StoreConfig::Memory => {
                let keys = Keys::load(Arc::new(MemoryKeyStore::new()))
                    .await
                    .map_err(StartError::Keys)?;
                let gate = Gate::new(
                    Arc::clone(keys.table()),
                    Measured::new(MemoryBackend::new(), None),
                );
                let admin = AdminSecret::local(config.admin_token.clone());
                let conversations = Arc::new(MemoryConversations::new());
                let state = AppState::new(
                    Arc::new(gate),
                    keys.clone(),
                    conversations,
                    None,
                    served(&admin),
                );
                (router(Arc::new(state)), keys, admin, None, None)
            }
            StoreConfig::Redis(url) => {
                let store = RedisKeyStore::builder(url.clone())
                    .connect()
                    .await
                    .map_err(StartError::Keys)?;
                let migration = store
                    .migrate_single_slot_layout()
                    .await
                    .map_err(StartError::Keys)?;
                if migration.moved > 0 {
                    tracing::info!(
                        moved = migration.moved,
                        "moved key records from the single-slot Redis layout to their slots"
                    );
                }
                for id in &migration.left_in_place {
                    tracing::error!(
                        key_id = %id,
                        "a key record of the single-slot Redis layout was left in place \
                         (unreadable, or still written by an older instance): \
                         the key is refused until it is moved"
                    );
                }
                let (keys, following) = Keys::load_following(store)
                    .await
                    .map_err(StartError::Keys)?;
                let limiter = RedisLimiter::builder(url.clone())
                    .outage_policy(config.outage_policy)
                    .connect()
                    .await
                    .map_err(StartError::Limiter)?;
                let calls = metrics
                    .redis_calls
                    .get_or_create(&PurposeLabels { purpose: "limits" })
                    .clone();
                let gate = Arc::new(Gate::new(
                    Arc::clone(keys.table()),
                    Measured::new(RedisBackend::new(limiter), Some(calls)),
                ));
                let conversations = RedisConversations::builder(url.clone())
                    .connect()
                    .await
                    .map_err(StartError::Conversations)?;
                let admin = AdminSecret::shared(config.admin_token.clone(), url).await?;
                let degraded_gate = Arc::clone(&gate);
                let degraded: Box<dyn Fn() -> bool + Send + Sync> =
                    Box::new(move || degraded_gate.backend().inner().limiter().is_degraded());
                let state = AppState::new(
                    gate,
                    keys.clone(),
                    Arc::new(conversations),
                    Some(degraded),
                    served(&admin),
                );
                (router(Arc::new(state)), keys, admin, Some(following), None)
            }
        };
        // A durable server makes its demo key on its first start only.
        let first_start = match &data {
            Some(data) => data
                .setting(DEMO_KEY_SETTING)
                .map_err(StartError::DataDir)?
                .is_none(),
            None => true,
        };
        let demo_key = if config.demo_key && first_start && keys.table().is_empty() {
            Some(make_demo_key(&keys).await?)
        } else {
            None
        };
        if let Some(data) = &data {
            data.setting_or_insert(DEMO_KEY_SETTING, &Utc::now().to_rfc3339())
                .map_err(StartError::DataDir)?;
        }
        let durable = data.map(|data| Durable::start(data, Arc::clone(keys.table())));
        let (stop, stopped) = oneshot::channel::<()>();
        let patience = Patience {
            header_read: config.header_read_timeout,
            shutdown: config.shutdown_grace,
        };
        let serving = tokio::spawn(serve(listener, router, patience, stopped));
        tracing::info!(addr = %local_addr, store = config.store.name(), "listening");
        Ok(RunningServer {
            started: Started {
                addr: local_addr,
                store: config.store.name(),
                admin_token: admin.made_up,
                admin_token_source: admin.source,
                demo_key,
            },
            stop: Some(stop),
            serving,
            keys: keys.clone(),
            durable,
            _following: following,
        })
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("personas", &self.personas)
            .finish_non_exhaustive()
    }
}

/// How long connections may take: to send a request's head (slowloris),
/// and to finish once a shutdown has begun.
#[derive(Debug, Clone, Copy)]
struct Patience {
    header_read: Duration,
    shutdown: Duration,
}

/// Serves HTTP/1.1 connections until `stopped` fires, then stops accepting
/// and lets every open request finish, for at most `patience.shutdown`.
async fn serve(
    listener: TcpListener,
    router: Router,
    patience: Patience,
    mut stopped: oneshot::Receiver<()>,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(patience.header_read);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        // Out of file descriptors, or a connection reset
                        // before it was accepted: go on after a breath.
                        tracing::warn!(error = %err, "a connection could not be accepted");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = TowerToHyperService::new(router.clone());
                let connection = http.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!(error = %err, "a connection ended with an error");
                    }
                });
            }
            // A dropped sender stops the server too.
            _ = &mut stopped => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: finishing the requests in flight");
    if tokio::time::timeout(patience.shutdown, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight after {:.1} s were cut off",
            patience.shutdown.as_secs_f64()
        );
    }
    Ok(())
}

/// The admin token of a starting server: its digest, and the token itself
/// when this start made it up (to be shown once).
struct AdminSecret {
    digest: TokenDigest,
    made_up: Option<AdminToken>,
    source: AdminTokenSource,
}

impl AdminSecret {
    /// The configured token, else a new one.
    fn local(configured: Option<AdminToken>) -> AdminSecret {
        match configured {
            Some(token) => AdminSecret {
                digest: token.digest(),
                made_up: None,
                source: AdminTokenSource::Configured,
            },
            None => {
                let token = AdminToken::generate();
                AdminSecret {
                    digest: token.digest(),
                    made_up: Some(token),
                    source: AdminTokenSource::MadeUp,
                }
            }
        }
    }

    /// The configured token, else the one of the data directory: made up
    /// at its first start, when only its digest is stored.
    fn stored(configured: Option<AdminToken>, data: &DataDir) -> Result<AdminSecret, StartError> {
        if let Some(token) = &configured {
            // The configured token replaces the stored one, for good: a
            // leaked token stays revoked once the variable is unset.
            data.set_setting(ADMIN_DIGEST_SETTING, &hex::encode(token.digest().0))
                .map_err(StartError::DataDir)?;
            return Ok(AdminSecret::local(configured));
        }
        let candidate = AdminToken::generate();
        let ours = hex::encode(candidate.digest().0);
        let stored = data
            .setting_or_insert(ADMIN_DIGEST_SETTING, &ours)
            .map_err(StartError::DataDir)?;
        AdminSecret::settled(candidate, &stored, AdminTokenSource::Stored).ok_or_else(|| {
            StartError::DataDir(DataDirError::Database {
                path: data.database_path(),
                problem: format!(
                    "its setting `{ADMIN_DIGEST_SETTING}` is no SHA-256 digest; set \
                     LUMYX_ADMIN_TOKEN to replace it"
                ),
            })
        })
    }

    /// The secret once a store answered `stored` to "keep this digest of
    /// `candidate` unless you hold one": the candidate when it kept ours,
    /// else the digest it holds (made up by an earlier start, `source`);
    /// `None` when what it holds is no digest.
    fn settled(
        candidate: AdminToken,
        stored: &str,
        source: AdminTokenSource,
    ) -> Option<AdminSecret> {
        if stored == hex::encode(candidate.digest().0) {
            return Some(AdminSecret {
                digest: candidate.digest(),
                made_up: Some(candidate),
                source: AdminTokenSource::MadeUp,
            });
        }
        let mut digest = [0u8; 32];
        hex::decode_to_slice(stored, &mut digest).ok()?;
        Some(AdminSecret {
            digest: TokenDigest(digest),
            made_up: None,
            source,
        })
    }

    /// The configured token, else the one every instance sharing the Redis
    /// at `url` uses: the first to start makes it up and stores its digest
    /// (never the token), the others take that digest.
    async fn shared(
        configured: Option<AdminToken>,
        url: &RedisUrl,
    ) -> Result<AdminSecret, StartError> {
        if configured.is_some() {
            return Ok(AdminSecret::local(configured));
        }
        let candidate = AdminToken::generate();
        let mut connection = RedisConnector::new(url.clone())
            .timeout(Duration::from_secs(2))
            .connect_lazy()
            .map_err(StartError::Redis)?;
        let ours = hex::encode(candidate.digest().0);
        let (stored,): (String,) = redis::pipe()
            .cmd("SET")
            .arg(SHARED_ADMIN_DIGEST)
            .arg(&ours)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(SHARED_ADMIN_DIGEST)
            .query_async(&mut connection)
            .await
            .map_err(StartError::Redis)?;
        AdminSecret::settled(candidate, &stored, AdminTokenSource::Shared)
            .ok_or(StartError::SharedAdminToken)
    }
}

/// A key named `demo` of the [`DEMO_OWNER`], with the default limits.
async fn make_demo_key(keys: &Keys) -> Result<ApiKey, StartError> {
    let key = keys.new_key().map_err(StartError::Keys)?;
    let record = KeyRecord::new(key.as_key_ref(), "demo", DEMO_OWNER, Utc::now());
    keys.insert(record).await.map_err(StartError::Keys)?;
    Ok(key)
}

/// Where a server's admin token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminTokenSource {
    /// `LUMYX_ADMIN_TOKEN`.
    Configured,
    /// Made up by this start (and shown once).
    MadeUp,
    /// Made up by the first instance sharing the Redis, which showed it.
    Shared,
    /// Made up at the data directory's first start, which showed it; only
    /// its digest is stored.
    Stored,
}

/// What a start made that the operator needs to see once: the address,
/// the admin token and the demo key. Its `Display` is the banner the
/// example server prints.
pub struct Started {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// Where its state lives: `memory` or `redis`.
    pub store: &'static str,
    /// The admin token, when this start made it up (not when it was
    /// configured or made by another instance sharing the Redis).
    pub admin_token: Option<AdminToken>,
    /// Where the admin token comes from.
    pub admin_token_source: AdminTokenSource,
    /// The demo key, when the key store was empty.
    pub demo_key: Option<ApiKey>,
}

impl Started {
    /// The base URL of the API, for clients (`http://127.0.0.1:8080/v1`);
    /// an unspecified listening address is shown as the loopback one.
    pub fn base_url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        format!("http://{addr}/v1")
    }
}

impl fmt::Display for Started {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = self.base_url();
        writeln!(f, "Lumyx API listening on {base} (state in {})", self.store)?;
        match (&self.admin_token, self.admin_token_source) {
            (Some(token), _) => writeln!(
                f,
                "admin token (for /v1/keys and /metrics; shown once): {}",
                token.expose_secret()
            )?,
            (None, AdminTokenSource::Shared) => writeln!(
                f,
                "admin token: the one the first instance on this Redis printed"
            )?,
            (None, AdminTokenSource::Stored) => writeln!(
                f,
                "admin token: the one printed at this data directory's first start \
                 (LUMYX_ADMIN_TOKEN replaces it)"
            )?,
            (None, _) => writeln!(f, "admin token: LUMYX_ADMIN_TOKEN")?,
        }
        match &self.demo_key {
            Some(key) => {
                writeln!(f, "demo key (shown once): {}", key.expose_secret())?;
                writeln!(f, "try it:")?;
                write!(
                    f,
                    "  curl {base}/chat/completions -H 'Authorization: Bearer {}' \
                     -H 'Content-Type: application/json' \
                     -d '{{\"model\":\"nova_1_1\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello!\"}}]}}'",
                    key.expose_secret()
                )
            }
            None => write!(
                f,
                "keys exist already; make one with:\n  curl {base}/keys -H 'Authorization: Bearer ADMIN_TOKEN' \
                 -H 'Content-Type: application/json' -d '{{\"name\":\"mine\",\"owner\":\"me\"}}'"
            ),
        }
    }
}

impl fmt::Debug for Started {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Started")
            .field("addr", &self.addr)
            .field("store", &self.store)
            .field("admin_token", &self.admin_token)
            .field("demo_key", &self.demo_key.as_ref().map(ApiKey::hint))
            .finish()
    }
}

/// A listening server. Dropping it stops the server at once (and, with a
/// data directory, skips the last save of the gate's counts: up to a
/// second of them is lost, as in a crash); call
/// [`shutdown`](Self::shutdown) to let open requests finish and save.
pub struct RunningServer {
    started: Started,
    stop: Option<oneshot::Sender<()>>,
    serving: JoinHandle<io::Result<()>>,
    keys: Keys,
    durable: Option<Durable>,
    _following: Option<Following>,
}

/// A durable server's data directory, and the task that writes the gate's
/// counts into it every second.
struct Durable {
    _data: DataDir,
    saver: Arc<std::sync::Mutex<CountSaver>>,
    saving: JoinHandle<()>,
}

impl Durable {
    /// Starts writing the counts of `table` behind.
    fn start(data: DataDir, table: Arc<KeyTable>) -> Durable {
        let saver = Arc::new(std::sync::Mutex::new(data.count_saver(table)));
        let saving = tokio::spawn({
            let saver = Arc::clone(&saver);
            async move {
                let mut every = tokio::time::interval(SAVE_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    save_counts(Arc::clone(&saver)).await;
                }
            }
        });
        Durable {
            _data: data,
            saver,
            saving,
        }
    }

    /// Stops the task and writes what changed since its last pass.
    async fn finish(self) {
        self.saving.abort();
        save_counts(Arc::clone(&self.saver)).await;
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        self.saving.abort();
    }
}

/// One pass of a [`CountSaver`], off the async threads; a failure is
/// logged and the next pass tries again.
async fn save_counts(saver: Arc<std::sync::Mutex<CountSaver>>) {
    let saved = tokio::task::spawn_blocking(move || {
        let now =
            Timestamp::from_unix_micros(u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0));
        saver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .save(now)
    })
    .await;
    match saved {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::error!(error = %err, "the gate's counts could not be saved"),
        Err(err) => tracing::error!(error = %err, "the task saving the gate's counts failed"),
    }
}

impl RunningServer {
    /// Where the server listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.started.addr
    }

    /// What the start made: the address, the admin token, the demo key.
    pub fn started(&self) -> &Started {
        &self.started
    }

    /// The server's keys: its store, and the table the gate serves from
    /// (each entry with its limits and usage counts), for a service that
    /// embeds the server, and for tests.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Stops accepting connections, lets the requests and streams in
    /// flight finish (for at most [`Config::shutdown_grace`]), and returns
    /// when they have.
    ///
    /// # Errors
    /// When serving failed.
    pub async fn shutdown(mut self) -> Result<(), StartError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = match (&mut self.serving).await {
            Ok(served) => served.map_err(StartError::Serve),
            Err(join) => Err(StartError::Serve(io::Error::other(join))),
        };
        if let Some(durable) = self.durable.take() {
            durable.finish().await;
        }
        served
    }

    /// Serves until SIGINT (Ctrl-C) or SIGTERM, then shuts down gracefully.
    ///
    /// # Errors
    /// When the signals cannot be listened for, or serving failed.
    pub async fn run_until_signal(self) -> Result<(), StartError> {
        shutdown_signal().await.map_err(StartError::Serve)?;
        tracing::info!("signal received");
        self.shutdown().await
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.serving.abort();
        }
    }
}

impl fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningServer")
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

/// Waits for SIGINT or (on Unix) SIGTERM.
async fn shutdown_signal() -> io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Why a server did not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address cannot be listened on.
    #[error("cannot listen on {addr} (LUMYX_ADDR)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The key store cannot be opened or read.
    #[error("the key store cannot be opened (LUMYX_REDIS_URL)")]
    Keys(#[source] lumyx_keys::Error),
    /// The Redis limiter cannot be set up.
    #[error("the Redis limiter cannot be set up (LUMYX_REDIS_URL)")]
    Limiter(#[source] lumyx_ratelimit::Error),
    /// The data directory or its database cannot be used.
    #[error(transparent)]
    DataDir(DataDirError),
    /// The conversation store cannot be opened.
    #[error("the conversation store cannot be opened (LUMYX_REDIS_URL)")]
    Conversations(#[source] StoreError),
    /// Redis cannot be reached at start.
    #[error("Redis cannot be reached (LUMYX_REDIS_URL)")]
    Redis(#[source] redis::RedisError),
    /// The admin token digest stored in Redis by another instance is not
    /// one.
    #[error(
        "Redis key `{SHARED_ADMIN_DIGEST}` holds no SHA-256 digest: delete it, or set LUMYX_ADMIN_TOKEN"
    )]
    SharedAdminToken,
    /// Serving failed.
    #[error("the server failed")]
    Serve(#[source] io::Error),
}
