//! The jobs file and the store URL of `wasmcron run`, and applying the
//! jobs file at start.

use crate::job::JobSpec;
use crate::scheduler::Scheduler;
use crate::store::sqlite::SqliteJobStore;
use crate::store::{JobStore, MemoryJobStore};
use crate::trigger::calendar::CalendarSpec;
use anyhow::Context as _;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;

/// The jobs file: `version = 1` and `[[jobs]]` tables, each a job spec.
///
/// ```toml
/// version = 1
///
/// [[jobs]]
/// id = "greet"
/// plugin = "hello"
/// args = { name = "world" }
/// trigger = { type = "interval", every = "10s" }
///
/// [calendars.holidays]            # named calendars, for jobs' `exclude`
/// dates = ["2026-12-25", "2026-12-31..2027-01-01"]
/// days = ["* * sat,sun"]
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The file format's version; only 1 exists.
    #[serde(default = "one")]
    pub version: u32,
    /// Jobs to upsert at start.
    #[serde(default)]
    pub jobs: Vec<JobSpec>,
    /// Calendars to define (or replace) at start, before the jobs, by
    /// name. One the file no longer lists stays defined (remove it with
    /// `DELETE /calendars/{name}`).
    #[serde(default)]
    pub calendars: std::collections::BTreeMap<String, CalendarSpec>,
}

fn one() -> u32 {
    1
}

impl ConfigFile {
    /// Parses and checks the text of a jobs file (what [`read_config`]
    /// does after reading the file; separate so that text from anywhere,
    /// such as a fuzzer, goes through the very same checks).
    ///
    /// # Errors
    /// Bad TOML (with line and column), an unknown key, an unknown version,
    /// an id listed twice (as `PUT /jobs` and `wasmcron jobs apply` refuse
    /// it: which of two specs was meant cannot be guessed).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text)?;
        anyhow::ensure!(
            config.version == 1,
            "version {} is not supported (this wasmcron reads version 1)",
            config.version
        );
        let mut seen = std::collections::HashMap::with_capacity(config.jobs.len());
        for (i, spec) in config.jobs.iter().enumerate() {
            if let Some(first) = seen.insert(spec.id.as_str(), i) {
                anyhow::bail!(
                    "job {} has the id '{}' of job {}: each id may appear once",
                    i + 1,
                    spec.id,
                    first + 1
                );
            }
        }
        Ok(config)
    }
}

/// A jobs file as read, not yet parsed: a start whose file is the very
/// one applied at an earlier start (and whose jobs nobody changed since)
/// does not parse it again (folder.rs, `config_unchanged`).
pub(crate) struct JobsFile {
    /// Where it was read from.
    pub(super) path: std::path::PathBuf,
    /// Its text.
    pub(super) text: String,
    /// SHA-256 of this wasmcron's version and the text, in hex: another
    /// version may read the same text differently.
    pub(super) digest: String,
}

impl JobsFile {
    /// Reads the file (it is parsed later, when needed).
    ///
    /// # Errors
    /// An unreadable file.
    pub(super) fn read(path: &Path) -> anyhow::Result<Self> {
        use sha2::{Digest as _, Sha256};
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut hash = Sha256::new();
        hash.update(env!("CARGO_PKG_VERSION").as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
        let digest = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            path: path.to_path_buf(),
            text,
            digest,
        })
    }

    /// Parses and checks the text.
    ///
    /// # Errors
    /// Bad TOML (with line and column), unknown version.
    pub(super) fn parse(&self) -> anyhow::Result<ConfigFile> {
        ConfigFile::parse(&self.text).with_context(|| format!("in {}", self.path.display()))
    }
}

/// Reads and checks a jobs file.
///
/// # Errors
/// Unreadable file, bad TOML (with line and column), unknown version.
pub fn read_config(path: &Path) -> anyhow::Result<ConfigFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    ConfigFile::parse(&text).with_context(|| format!("in {}", path.display()))
}

/// Opens the store named by `db`: `memory`, `sqlite://PATH` or a file
/// path, or a PostgreSQL URL (`postgres://USER@HOST:PORT/DB`, also
/// `postgresql://`), which is connected to and migrated before this
/// returns (blocking this thread up to its 5 s connect timeout).
///
/// # Errors
/// When the database cannot be opened; for PostgreSQL, when it cannot be
/// reached, naming the URL with its password masked.
pub fn open_store(db: &str) -> anyhow::Result<Arc<dyn JobStore>> {
    open_store_for(db, None, None)
}

/// As [`open_store`]; on PostgreSQL with `lease`, the host takes part in
/// the leader lease (see [`crate::store::leader`]), after checking that
/// its API token agrees with the other live hosts' (`api`: `Some(token)`
/// when this host serves the API, with or without a token; `None` when it
/// serves none, which opens nothing).
///
/// # Errors
/// As [`open_store`]; and when this host's API token differs from the
/// live hosts' (the message says what to change).
pub fn open_store_for(
    db: &str,
    lease: Option<crate::store::postgres::LeaseSettings>,
    api: Option<Option<&str>>,
) -> anyhow::Result<Arc<dyn JobStore>> {
    use crate::store::postgres::{PostgresJobStore, is_postgres_url, mask_password};
    if db == "memory" {
        return Ok(Arc::new(MemoryJobStore::default()));
    }
    if is_postgres_url(db) {
        let mut store = PostgresJobStore::open(db).context("opening the PostgreSQL job store")?;
        if let Some(lease) = lease {
            store
                .agree_token(api, &lease)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .context("joining the other hosts of the database")?;
            store.start_lease(lease);
        }
        return Ok(Arc::new(store));
    }
    let path = db.strip_prefix("sqlite://").unwrap_or(db);
    anyhow::ensure!(
        !path.contains("://"),
        "--db {}: unsupported; use `memory`, `sqlite://PATH`, a file path or \
         `postgres://USER@HOST:PORT/DB`",
        mask_password(db)
    );
    let store = SqliteJobStore::open(Path::new(path))
        .with_context(|| format!("opening the job store {path}"))?;
    Ok(Arc::new(store))
}

/// Upserts the jobs file's jobs and removes those it declared at an
/// earlier start and no longer does.
pub(super) async fn apply_jobs_file(
    scheduler: &Scheduler,
    sync: &super::folder::FolderSync,
    config: ConfigFile,
) -> anyhow::Result<()> {
    use crate::audit::{Action, Change};
    for (name, spec) in config.calendars {
        let same = scheduler
            .calendar_set()
            .get(&name)
            .is_some_and(|c| *c.spec() == spec);
        if !same {
            // The file is the truth for what it declares: a change made
            // through the API since is replaced, and the log says so.
            tracing::info!(calendar = %name, "calendar defined from the jobs file");
            let detail =
                serde_json::json!({ "spec": serde_json::to_value(&spec).unwrap_or_default() });
            scheduler
                .put_calendar(&name, spec)
                .await
                .map_err(|e| anyhow::Error::new(e).context(format!("config calendars.{name}")))?;
            let change = Change::named(Action::CalendarPut, &name).with_detail(detail);
            crate::audit::record(scheduler.store().as_ref(), &config_actor(), vec![change]).await;
        }
    }
    let ids: Vec<String> = config.jobs.iter().map(|j| j.id.clone()).collect();
    // One audit row per job the file adds or changes (none for the rest).
    let changes: Vec<Change> = config
        .jobs
        .iter()
        .filter(|spec| !scheduler.has_spec(spec))
        .filter_map(|spec| {
            let before = scheduler.job(&spec.id).ok().map(|j| j.spec);
            Change::job_written(before.as_ref(), spec)
        })
        .collect();
    let done = scheduler.upsert_jobs(config.jobs).await.map_err(|e| {
        anyhow::Error::new(e.error).context(format!("config jobs[{}] (id '{}')", e.index, e.id))
    })?;
    crate::audit::record(scheduler.store().as_ref(), &config_actor(), changes).await;
    for info in &done.notes {
        super::folder::report_job(info, scheduler.plugins());
    }
    tracing::info!(
        unchanged = done.unchanged,
        written = done.written,
        "jobs file applied"
    );
    sync.config_declares(ids).await;
    Ok(())
}

/// Who changes made by the jobs file are recorded as.
fn config_actor() -> crate::audit::Actor {
    crate::audit::Actor::internal("config")
}

#[cfg(test)]
mod tests {
    use super::ConfigFile;

    #[test]
    fn a_jobs_file_listing_an_id_twice_is_refused_naming_both() {
        let job = |id: &str| {
            format!(
                "\n[[jobs]]\nid = \"{id}\"\nplugin = \"hello\"\n\
                 trigger = {{ type = \"interval\", every = \"1h\" }}\n"
            )
        };
        let text = format!("version = 1\n{}{}{}", job("a"), job("b"), job("a"));
        let err = ConfigFile::parse(&text).expect_err("duplicate id");
        assert_eq!(
            err.to_string(),
            "job 3 has the id 'a' of job 1: each id may appear once"
        );
        let text = format!("version = 1\n{}{}", job("a"), job("b"));
        assert_eq!(ConfigFile::parse(&text).map(|c| c.jobs.len()).ok(), Some(2));
    }
}
