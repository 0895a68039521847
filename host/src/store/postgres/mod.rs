//! The job store on PostgreSQL (`--db postgres://user@host:port/db`).
//!
//! Same semantics as the SQLite store ([`super::sqlite`]): jobs with
//! incarnations, runs written only under their job's live incarnation,
//! batches committed atomically, grouped commits, run summaries without
//! reading logs, pages cut at [`super::RUN_PAGE_BYTES`] and
//! [`super::LOG_PAGE_BYTES`], and kv quotas counted in bytes against a
//! running per-job total. Times are kept to the millisecond, as SQLite
//! keeps them, so a host behaves the same on either.
//!
//! ## Shape
//! - One writer task on one connection applies every change, grouping
//!   whatever is queued into one pipelined transaction (`writer.rs`).
//! - Reads (API, `load`, kv gets) use a pool of four
//!   connections (deadpool), each read one short statement or one
//!   read-only transaction.
//! - All of it runs on a small tokio runtime the store owns
//!   (`StoreRuntime`), not on the caller's: the synchronous kv calls of
//!   guests block their thread until the answer comes, and an answer that
//!   needed the caller's runtime could deadlock it.
//! - The database being unreachable or unable to write is
//!   [`StoreError::Unwritable`] and the store's [`HealthCell`] says so
//!   until a probe write works again (see `writer.rs`).
//!
//! The driver is tokio-postgres with deadpool-postgres (the README's
//! design notes say why), without TLS for now: `sslmode=require` URLs are
//! refused at connect.

mod audit;
mod claims;
mod conn;
mod kv;
mod lease;
mod notices;
mod runs;
mod schema;
mod sets;
mod token;
mod writer;
mod writes;

pub use conn::{is_postgres_url, mask_password};
pub use kv::PostgresKv;
pub use lease::{FOLLOWER_POLL, LeaseSettings};

use super::{
    HealthCell, JobRecord, JobStore, KvStore, LeaderCell, LogPage, RunCounts, RunFilter, RunList,
    RunRecord, RunSummary, RunsFrom, Snapshot, StoreError, Write, Written,
};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use writes::{Cmd, Prepared, Reply};

/// The store's own tokio runtime (two worker threads named
/// `wasmcron-pg`), shared by the store and its kv handle and shut down
/// (in the background, so it may be dropped anywhere) when both are gone.
#[derive(Debug)]
pub(crate) struct StoreRuntime {
    handle: tokio::runtime::Handle,
    /// Taken at drop, to shut down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl StoreRuntime {
    fn new() -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wasmcron-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("starting the store's runtime: {e}")))?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for StoreRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A job store in a PostgreSQL database.
#[derive(Debug)]
pub struct PostgresJobStore {
    runtime: Arc<StoreRuntime>,
    writer: mpsc::UnboundedSender<Cmd>,
    pool: deadpool_postgres::Pool,
    kv: Arc<PostgresKv>,
    health: HealthCell,
    url: String,
    /// The connection settings (the lease opens its own connection).
    config: tokio_postgres::Config,
    fence: Arc<lease::Fence>,
    leader: LeaderCell,
    /// Stops the lease task, which then releases the lease.
    lease_stop: tokio_util::sync::CancellationToken,
    /// Asks the lease task to give the lease up but keep heartbeating
    /// (with a lease).
    resign: std::sync::OnceLock<lease::Resign>,
    lease_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The lease's TTL, also how long a host may go without a heartbeat
    /// before its runs are recorded interrupted; `None` without a lease.
    lease_ttl: Option<std::time::Duration>,
    /// Woken by NOTIFY on new runs (with a lease).
    notices: Arc<tokio::sync::Notify>,
    /// Events of every host, as their JSON (with a lease).
    events: tokio::sync::broadcast::Sender<String>,
    /// Requests to stop runs (`notices::CANCELS`), from every host's claims.
    cancels: tokio::sync::broadcast::Sender<String>,
    /// This host's events on their way to the others (with a lease).
    relay: std::sync::OnceLock<mpsc::Sender<String>>,
    /// Events dropped because the relay was behind.
    relay_dropped: std::sync::atomic::AtomicU64,
    /// No other host heartbeats (as of the lease's last round): events
    /// are not relayed, since nobody would read them. A host that joins
    /// gets them from the first round that sees it (best effort, as the
    /// relay is).
    alone: Arc<std::sync::atomic::AtomicBool>,
}

impl PostgresJobStore {
    /// Connects to the database at `url` (`postgres://` or
    /// `postgresql://`, or libpq's `key=value` form) and migrates it to
    /// this build's schema. The connection and migration run on the
    /// store's runtime, so this may be awaited from any runtime.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the URL does not parse, the database
    /// is at a newer schema version or a migration fails;
    /// [`StoreError::Unwritable`] when it cannot be reached within 5 s.
    /// Messages name the URL with its password masked.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let runtime = Arc::new(StoreRuntime::new()?);
        let url = url.to_owned();
        let rt = runtime.clone();
        runtime
            .handle()
            .spawn(async move { Self::start(rt, url).await })
            .await
            .map_err(|e| StoreError::Backend(format!("the store's runtime failed: {e}")))?
    }

    /// [`PostgresJobStore::connect`] for synchronous callers: blocks this
    /// thread (up to the 5 s connect timeout and the migrations) while the
    /// store's own runtime does the work. Fine on a tokio worker at
    /// start-up; nothing it waits for needs that worker.
    ///
    /// # Errors
    /// As [`PostgresJobStore::connect`].
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let runtime = Arc::new(StoreRuntime::new()?);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let rt = runtime.clone();
        let url = url.to_owned();
        runtime.handle().spawn(async move {
            let _ = tx.send(Self::start(rt, url).await);
        });
        rx.recv()
            .map_err(|_| StoreError::Backend("the store's runtime stopped".into()))?
    }

    /// On the store's runtime: connect, migrate, start the writer.
    async fn start(runtime: Arc<StoreRuntime>, url: String) -> Result<Self, StoreError> {
        let masked = mask_password(&url);
        let config = conn::config(&url)?;
        let mut client = conn::connect(&config).await.map_err(|e| match e {
            StoreError::Unwritable(reason) | StoreError::Backend(reason) => {
                StoreError::Unwritable(format!("cannot connect to the database {masked}: {reason}"))
            }
            other => other,
        })?;
        tokio::time::timeout(conn::ANSWER_TIMEOUT * 6, schema::migrate(&mut client))
            .await
            .map_err(|_| {
                StoreError::Unwritable(format!("migrating {masked}: no answer within a minute"))
            })?
            .map_err(|e| match e {
                StoreError::Backend(m) => StoreError::Backend(format!("{masked}: {m}")),
                other => other,
            })?;
        drop(client);
        let pool = conn::pool(config.clone())?;
        let health = HealthCell::default();
        let fence = Arc::new(lease::Fence::default());
        let (writer, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer::writer_loop(
            writer::Writer::new(config.clone(), &url, health.clone(), fence.clone()),
            rx,
        ));
        let kv = Arc::new(PostgresKv::new(
            runtime.clone(),
            pool.clone(),
            writer.clone(),
        ));
        Ok(Self {
            runtime,
            writer,
            pool,
            kv,
            health,
            url: masked,
            config,
            fence,
            leader: LeaderCell::default(),
            lease_stop: tokio_util::sync::CancellationToken::new(),
            resign: std::sync::OnceLock::new(),
            lease_task: std::sync::Mutex::new(None),
            lease_ttl: None,
            notices: Arc::new(tokio::sync::Notify::new()),
            events: tokio::sync::broadcast::channel(4096).0,
            cancels: tokio::sync::broadcast::channel(1024).0,
            relay: std::sync::OnceLock::new(),
            relay_dropped: std::sync::atomic::AtomicU64::new(0),
            alone: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// Checks, before this host joins the others of the database, that no
    /// live host has its name (runs are recorded by host name), and, when
    /// it serves an API (`token` is `Some`, holding its token or none),
    /// that it uses the API token the other live hosts use, making it the
    /// cluster's when no other host is alive (see `token.rs`: any host's
    /// API changes jobs and plugins for all, so all must be equally
    /// closed). Blocks this thread while the store's runtime asks, as
    /// [`PostgresJobStore::open`] does.
    ///
    /// # Errors
    /// [`StoreError::Backend`] saying what to change when the name is
    /// taken or the tokens differ; [`StoreError::Unwritable`] when the
    /// database does not answer.
    pub fn agree_token(
        &self,
        token: Option<Option<&str>>,
        settings: &LeaseSettings,
    ) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let config = self.config.clone();
        let token = token.map(|t| t.map(str::to_owned));
        let (id, name, ttl) = (
            settings.host_id.clone(),
            settings.host_name.clone(),
            settings.ttl,
        );
        self.runtime.handle().spawn(async move {
            let result = async {
                let mut client = conn::connect(&config).await?;
                token::unique_name(&client, &id, &name, ttl).await?;
                let Some(token) = token else {
                    return Ok(());
                };
                tokio::time::timeout(
                    conn::ANSWER_TIMEOUT,
                    token::agree(&mut client, token.as_deref(), &id, &name, ttl),
                )
                .await
                .map_err(|_| {
                    StoreError::Unwritable(
                        "no answer from the database while checking the API token".into(),
                    )
                })?
            }
            .await;
            let _ = tx.send(result);
        });
        rx.recv()
            .map_err(|_| StoreError::Backend("the store's runtime stopped".into()))?
    }

    /// Takes part in the leader lease from now on (see
    /// [`crate::store::leader`]): until this host holds the lease, its
    /// [`JobStore::leadership`] says follower and fires it writes are
    /// refused ([`StoreError::Fenced`]). Call once, before the scheduler
    /// starts; [`JobStore::release_lease`] ends it.
    pub fn start_lease(&mut self, settings: LeaseSettings) {
        self.leader = LeaderCell::follower();
        self.lease_ttl = Some(settings.ttl);
        self.runtime.handle().spawn(notices::listen(
            self.config.clone(),
            self.notices.clone(),
            self.events.clone(),
            self.cancels.clone(),
            self.lease_stop.clone(),
        ));
        let (relay, rx) = mpsc::channel(notices::RELAY_QUEUE);
        let _ = self.relay.set(relay);
        self.runtime.handle().spawn(notices::relay(
            self.config.clone(),
            rx,
            self.lease_stop.clone(),
        ));
        self.fence
            .enabled
            .store(true, std::sync::atomic::Ordering::Release);
        let (resign, resigned) = mpsc::unbounded_channel();
        let _ = self.resign.set(resign);
        let task = self.runtime.handle().spawn(lease::lease_loop(
            self.config.clone(),
            settings,
            self.leader.clone(),
            self.fence.clone(),
            self.alone.clone(),
            resigned,
            self.lease_stop.clone(),
        ));
        *self
            .lease_task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
    }

    /// The database's URL, password masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The guests' kv data, as its concrete type.
    pub fn postgres_kv(&self) -> &Arc<PostgresKv> {
        &self.kv
    }

    async fn send(&self, make: impl FnOnce(Reply) -> Cmd) -> Result<Written, StoreError> {
        let (reply, rx) = oneshot::channel();
        let stopped = || StoreError::Backend("the store's writer has stopped".into());
        self.writer.send(make(reply)).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Runs a read on the store's runtime with a connection from the pool,
    /// within [`conn::ANSWER_TIMEOUT`].
    async fn read<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send,
    {
        let pool = self.pool.clone();
        self.runtime
            .handle()
            .spawn(async move {
                tokio::time::timeout(conn::ANSWER_TIMEOUT, async move {
                    let client = pool.get().await.map_err(conn::pool_error)?;
                    f(client).await
                })
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Unwritable(format!(
                        "no answer from the database within {}s",
                        conn::ANSWER_TIMEOUT.as_secs()
                    )))
                })
            })
            .await
            .map_err(|e| StoreError::Backend(format!("a store read failed: {e}")))?
    }
}

#[async_trait::async_trait]
impl JobStore for PostgresJobStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.read(|mut c| async move { runs::load(&mut c).await })
            .await
    }

    async fn insert_job(&self, job: JobRecord, replace: bool) -> Result<(), StoreError> {
        let job = Box::new(job);
        self.send(|r| Cmd::Insert(job, replace, r)).await.map(drop)
    }

    async fn update_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let job = Box::new(job.clone());
        self.send(|r| Cmd::Update(job, r)).await.map(drop)
    }

    async fn delete_job(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.send(|r| Cmd::Delete(id, r)).await.map(drop)
    }

    async fn write(&self, batch: Vec<Write>) -> Result<Written, StoreError> {
        if batch.is_empty() {
            return Ok(Written::default());
        }
        let prepared = batch
            .into_iter()
            .map(Prepared::new)
            .collect::<Result<Vec<_>, _>>()?;
        self.send(|r| Cmd::Batch(prepared, r)).await
    }

    fn leadership(&self) -> LeaderCell {
        self.leader.clone()
    }

    async fn jobs_revision(&self) -> Result<Option<i64>, StoreError> {
        self.read(|c| async move {
            let row = c
                .query_one("SELECT rev FROM jobs_rev WHERE id = 1", &[])
                .await
                .map_err(conn::classify)?;
            Ok(Some(row.try_get(0).map_err(conn::classify)?))
        })
        .await
    }

    fn shared(&self) -> bool {
        self.lease_ttl.is_some()
    }

    async fn claim(
        &self,
        host: &str,
        plugins: &[String],
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let host = host.to_owned();
        let plugins = plugins.to_vec();
        self.read(move |mut c| async move { claims::claim(&mut c, &host, &plugins, limit).await })
            .await
    }

    async fn running_on(&self, host: &str) -> Result<Vec<String>, StoreError> {
        let host = host.to_owned();
        self.read(move |c| async move { claims::running_on(&c, &host).await })
            .await
    }

    async fn give_back(&self, host: &str, run_ids: &[String]) -> Result<u64, StoreError> {
        let host = host.to_owned();
        let ids = run_ids.to_vec();
        self.read(move |c| async move { claims::give_back(&c, &host, &ids).await })
            .await
    }

    async fn sweep_stopped_hosts(&self) -> Result<Vec<RunRecord>, StoreError> {
        let Some(ttl) = self.lease_ttl else {
            return Ok(Vec::new());
        };
        self.read(move |c| async move { claims::sweep(&c, ttl).await })
            .await
    }

    async fn hosts(&self) -> Result<Vec<crate::store::HostRow>, StoreError> {
        let Some(ttl) = self.lease_ttl else {
            return Ok(Vec::new());
        };
        self.read(move |c| async move { claims::hosts(&c, ttl).await })
            .await
    }

    async fn runs_in_flight(&self, job_id: &str) -> Result<Option<u64>, StoreError> {
        if self.lease_ttl.is_none() {
            return Ok(None);
        }
        let job_id = job_id.to_owned();
        self.read(move |c| async move {
            let n: i64 = c
                .query_one(
                    "SELECT count(*) FROM runs
                      WHERE job_id = $1::text AND status IN ('pending', 'running')",
                    &[&job_id],
                )
                .await
                .and_then(|row| row.try_get(0))
                .map_err(conn::classify)?;
            Ok(Some(u64::try_from(n).unwrap_or(0)))
        })
        .await
    }

    async fn next_run_times(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, String, Option<chrono::DateTime<chrono::Utc>>)>, StoreError> {
        if self.lease_ttl.is_none() || ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        self.read(move |c| async move {
            let rows = c
                .query(
                    "SELECT id, incarnation, next_run_time FROM jobs WHERE id = ANY($1::text[])",
                    &[&ids],
                )
                .await
                .map_err(conn::classify)?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get(0).map_err(conn::classify)?,
                        r.try_get(1).map_err(conn::classify)?,
                        r.try_get(2).map_err(conn::classify)?,
                    ))
                })
                .collect()
        })
        .await
    }

    fn share_event(&self, json: String) {
        let Some(relay) = self.relay.get() else {
            return;
        };
        if json.len() > notices::MAX_EVENT {
            return; // callers cut messages to fit; anything larger is dropped
        }
        if self.alone.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if relay.try_send(json).is_err() {
            let n = self
                .relay_dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n + 1,
                    "events not passed to the other hosts: the relay is behind"
                );
            }
        }
    }

    fn shared_events(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.relay.get().map(|_| self.events.subscribe())
    }

    fn cancel_requests(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.relay.get().map(|_| self.cancels.subscribe())
    }

    async fn request_stop(&self, run_id: &str) -> Result<(), StoreError> {
        let payload = format!("{run_id} {}", crate::scheduler::stop_word());
        self.read(move |c| async move {
            c.execute(
                "SELECT pg_notify($1::text, $2::text)",
                &[&notices::CANCELS, &payload],
            )
            .await
            .map(|_| ())
            .map_err(conn::classify)
        })
        .await
    }

    async fn calendars(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|c| async move {
            let rows = c
                .query("SELECT name, spec FROM calendars ORDER BY name", &[])
                .await
                .map_err(conn::classify)?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get(0).map_err(conn::classify)?,
                        r.try_get(1).map_err(conn::classify)?,
                    ))
                })
                .collect()
        })
        .await
    }

    async fn put_calendar(&self, name: &str, spec: Option<&str>) -> Result<(), StoreError> {
        let (name, spec) = (name.to_owned(), spec.map(str::to_owned));
        self.read(move |c| async move {
            match spec {
                Some(spec) => {
                    c.execute(
                        "INSERT INTO calendars (name, spec, updated_at)
                         VALUES ($1::text, $2::text, clock_timestamp())
                         ON CONFLICT (name) DO UPDATE SET spec = excluded.spec,
                             updated_at = excluded.updated_at",
                        &[&name, &spec],
                    )
                    .await
                }
                None => {
                    c.execute("DELETE FROM calendars WHERE name = $1::text", &[&name])
                        .await
                }
            }
            .map_err(conn::classify)?;
            Ok(())
        })
        .await
    }

    async fn record_audit(
        &self,
        records: Vec<crate::store::AuditRecord>,
    ) -> Result<(), StoreError> {
        self.read(move |c| audit::insert(c, records)).await
    }

    async fn audit(
        &self,
        query: &crate::store::AuditQuery,
    ) -> Result<Vec<crate::store::AuditEntry>, StoreError> {
        let query = query.clone();
        self.read(move |c| async move { audit::page(&c, &query).await })
            .await
    }

    async fn prune_audit(&self, cutoff: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError> {
        self.read(move |c| async move { audit::prune(&c, cutoff).await })
            .await
    }

    async fn put_plugin_file(
        &self,
        name: &str,
        hash: &str,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        if self.lease_ttl.is_none() {
            return Ok(false);
        }
        let (name, hash, bytes) = (name.to_owned(), hash.to_owned(), bytes.to_vec());
        self.read(move |c| async move {
            c.execute(
                "INSERT INTO plugin_files (name, hash, bytes, uploaded_at, deleted)
                 VALUES ($1::text, $2::text, $3::bytea, clock_timestamp(), false)
                 ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, bytes = excluded.bytes,
                     uploaded_at = excluded.uploaded_at, deleted = false",
                &[&name, &hash, &bytes],
            )
            .await
            .map_err(conn::classify)?;
            Ok(true)
        })
        .await
    }

    async fn delete_plugin_file(&self, name: &str) -> Result<Option<bool>, StoreError> {
        if self.lease_ttl.is_none() {
            return Ok(None);
        }
        let name = name.to_owned();
        self.read(move |c| async move {
            let n = c
                .execute(
                    "UPDATE plugin_files SET deleted = true, bytes = ''::bytea,
                         uploaded_at = clock_timestamp()
                     WHERE name = $1::text AND NOT deleted",
                    &[&name],
                )
                .await
                .map_err(conn::classify)?;
            Ok(Some(n > 0))
        })
        .await
    }

    async fn plugin_files(&self) -> Result<Vec<(String, String, bool)>, StoreError> {
        if self.lease_ttl.is_none() {
            return Ok(Vec::new());
        }
        self.read(|c| async move {
            let rows = c
                .query(
                    "SELECT name, hash, deleted FROM plugin_files ORDER BY name",
                    &[],
                )
                .await
                .map_err(conn::classify)?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get(0).map_err(conn::classify)?,
                        r.try_get(1).map_err(conn::classify)?,
                        r.try_get(2).map_err(conn::classify)?,
                    ))
                })
                .collect()
        })
        .await
    }

    async fn plugin_file(&self, name: &str, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (name, hash) = (name.to_owned(), hash.to_owned());
        self.read(move |c| async move {
            let row = c
                .query_opt(
                    "SELECT bytes FROM plugin_files
                      WHERE name = $1::text AND hash = $2::text AND NOT deleted",
                    &[&name, &hash],
                )
                .await
                .map_err(conn::classify)?;
            row.map(|r| r.try_get(0).map_err(conn::classify))
                .transpose()
        })
        .await
    }

    fn run_notices(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.lease_ttl.map(|_| self.notices.clone())
    }

    async fn resign_lease(&self) {
        let Some(resign) = self.resign.get() else {
            return;
        };
        let (ack, done) = oneshot::channel();
        if resign.send(ack).is_ok() {
            let _ = done.await;
        }
    }

    async fn release_lease(&self) {
        self.lease_stop.cancel();
        let task = self
            .lease_task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| async move { runs::job(&c, &id).await })
            .await
    }

    async fn runs(
        &self,
        job_id: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let job_id = job_id.to_owned();
        self.read(move |c| async move { runs::runs(&c, &job_id, limit, offset).await })
            .await
    }

    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let run_id = run_id.to_owned();
        self.read(move |c| async move { runs::run(&c, &run_id).await })
            .await
    }

    async fn run_summaries(
        &self,
        job_id: &str,
        limit: usize,
        from: RunsFrom,
    ) -> Result<RunList, StoreError> {
        let job_id = job_id.to_owned();
        self.read(move |mut c| async move { runs::summaries(&mut c, &job_id, limit, &from).await })
            .await
    }

    async fn all_runs(
        &self,
        filter: RunFilter,
        limit: usize,
        from: RunsFrom,
    ) -> Result<RunList, StoreError> {
        self.read(
            move |mut c| async move { runs::all_summaries(&mut c, filter, limit, &from).await },
        )
        .await
    }

    async fn run_counts(
        &self,
        from: chrono::DateTime<chrono::Utc>,
    ) -> Result<RunCounts, StoreError> {
        self.read(move |mut c| async move { runs::counts(&mut c, from).await })
            .await
    }

    async fn run_summary(&self, run_id: &str) -> Result<Option<RunSummary>, StoreError> {
        let run_id = run_id.to_owned();
        self.read(move |c| async move { runs::summary(&c, &run_id).await })
            .await
    }

    async fn run_logs(
        &self,
        run_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<LogPage>, StoreError> {
        let run_id = run_id.to_owned();
        self.read(move |mut c| async move { runs::logs(&mut c, &run_id, offset, limit).await })
            .await
    }

    fn kv(&self) -> Arc<dyn KvStore> {
        self.kv.clone()
    }

    fn health(&self) -> HealthCell {
        self.health.clone()
    }
}
