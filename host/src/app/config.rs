//! The jobs file and the store URL of `wasmcron run`.

use crate::job::JobSpec;
use crate::store::sqlite::SqliteJobStore;
use crate::store::{JobStore, MemoryJobStore};
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
}

fn one() -> u32 {
    1
}

/// Reads and checks a jobs file.
///
/// # Errors
/// Unreadable file, bad TOML (with line and column), unknown version.
pub fn read_config(path: &Path) -> anyhow::Result<ConfigFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: ConfigFile =
        toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
    anyhow::ensure!(
        config.version == 1,
        "{}: version {} is not supported (this wasmcron reads version 1)",
        path.display(),
        config.version
    );
    Ok(config)
}

/// Opens the store named by `db`.
///
/// # Errors
/// When the database cannot be opened.
pub fn open_store(db: &str) -> anyhow::Result<Arc<dyn JobStore>> {
    if db == "memory" {
        return Ok(Arc::new(MemoryJobStore::default()));
    }
    let path = db.strip_prefix("sqlite://").unwrap_or(db);
    anyhow::ensure!(
        !path.contains("://"),
        "--db {db}: unsupported; use `memory`, `sqlite://PATH` or a file path"
    );
    let store = SqliteJobStore::open(Path::new(path))
        .with_context(|| format!("opening the job store {path}"))?;
    Ok(Arc::new(store))
}
