//! `wasmcron run` as a user runs it, for the binary tests: a temporary
//! folder with `plugins/`, `jobs.toml`, a SQLite file and the host's log.

use crate::plugins;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `wasmcron run`; killed when dropped.
#[derive(Debug)]
pub struct Host {
    child: Child,
    stderr: PathBuf,
}

impl Host {
    /// Starts the binary `bin` (a test's `env!("CARGO_BIN_EXE_wasmcron")`) on `dir` (see [`setup`]) with a compile cache in
    /// `dir/cache`, plus `extra` arguments.
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn start(bin: &str, dir: &Path, extra: &[&str]) -> Self {
        Self::start_with_db(bin, dir, &dir.join("wasmcron.db"), extra)
    }

    /// [`Host::start`] with the SQLite database at `db` instead of
    /// `dir/wasmcron.db` (the log, plugins and cache stay in `dir`).
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn start_with_db(bin: &str, dir: &Path, db: &Path, extra: &[&str]) -> Self {
        Self::start_with_db_url(bin, dir, &format!("sqlite://{}", db.display()), extra)
    }

    /// [`Host::start`] with `--db db`, any store URL (`postgres://…`,
    /// `sqlite://…`, `memory`); see `crate::stores::TestStore::db_arg`.
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn start_with_db_url(bin: &str, dir: &Path, db: &str, extra: &[&str]) -> Self {
        // One log per start: numbered, so hosts started in the same folder
        // (a restart, a second host) never share or truncate a log.
        static STARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stderr = dir.join(format!("host-{n:04}.log"));
        let log = std::fs::File::create(&stderr).expect("log file");
        let child = Command::new(bin)
            .args(["run", "--plugins"])
            .arg(dir.join("plugins"))
            .arg("--db")
            .arg(db)
            .arg("--config")
            .arg(dir.join("jobs.toml"))
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .args(["--rescan", "500ms", "--log-format", "json"])
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start wasmcron");
        Self { child, stderr }
    }

    /// Where the host's log goes.
    pub fn log_path(&self) -> &Path {
        &self.stderr
    }

    /// `kill -9`, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The API's base URL (`http://127.0.0.1:PORT`), once the host has
    /// logged it; waits up to 60 s.
    ///
    /// # Panics
    /// When the host never says where it listens.
    pub fn api_url(&self) -> String {
        self.api_url_within(Duration::from_secs(60))
    }

    /// [`Host::api_url`], waiting up to `limit`: a first start compiles its
    /// plugins with a debug build of cranelift, which can take minutes on a
    /// loaded machine.
    ///
    /// # Panics
    /// When the host never says where it listens.
    pub fn api_url_within(&self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            for line in self.log().lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if let Some(addr) = v["fields"]["addr"].as_str() {
                    return format!("http://{addr}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "the host never said where its API listens:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The host's log so far (JSON lines).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `kill SIG` to the host.
    ///
    /// # Panics
    /// When `kill` fails.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (60 s at most) for the host to exit.
    ///
    /// # Panics
    /// When it does not.
    pub fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "host did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary folder with `jobs.toml` and the named built plugins in
/// `plugins/`.
///
/// # Panics
/// On I/O errors or an unknown plugin name.
pub fn setup(jobs: &str, plugin_names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let pdir = dir.path().join("plugins");
    std::fs::create_dir_all(&pdir).expect("plugins dir");
    for name in plugin_names {
        let (_, path) = plugins::ALL
            .iter()
            .find(|(n, _)| n == name)
            .expect("known plugin");
        std::fs::copy(path, pdir.join(format!("{name}.wasm"))).expect("copy plugin");
    }
    std::fs::write(dir.path().join("jobs.toml"), jobs).expect("jobs file");
    dir
}

/// [`setup`], with the named plugins' compiled code already in `dir/cache`,
/// so the host loads them at start instead of compiling them in the
/// background (minutes with a debug cranelift on a loaded machine): for
/// tests about scheduling, not about compiling.
///
/// # Panics
/// As [`setup`] and [`prewarm`].
pub fn setup_warm(jobs: &str, plugin_names: &[&str]) -> tempfile::TempDir {
    let dir = setup(jobs, plugin_names);
    prewarm(dir.path(), plugin_names);
    dir
}

/// Puts the compiled code of the named test plugins into `dir/cache` (the
/// cache [`Host::start`] gives the host), compiling each once per build
/// through the shared test cache.
///
/// # Panics
/// When a plugin is unknown or does not load, or on I/O errors.
pub fn prewarm(dir: &Path, names: &[&str]) {
    use wasmcron::plugin::{CompileCache, ContentHash, Plugin};
    let runtime = crate::runtime();
    let shared =
        CompileCache::open(&crate::test_cache_dir(), runtime.engine()).expect("shared cache");
    let ours = CompileCache::open(&dir.join("cache"), runtime.engine()).expect("cache");
    for name in names {
        let (_, path) = plugins::ALL
            .iter()
            .find(|(n, _)| n == name)
            .expect("known plugin");
        let bytes = std::fs::read(path).expect("plugin");
        Plugin::load_bytes_cached(&runtime, (*name).to_owned(), &bytes, Some(&shared))
            .expect("a test plugin loads");
        let hash = ContentHash::of(&bytes);
        for entry in std::fs::read_dir(shared.dir()).expect("shared cache dir") {
            let entry = entry.expect("entry").path();
            let file = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if file.starts_with(hash.as_str()) && file.ends_with(".cwasm") {
                std::fs::copy(&entry, ours.dir().join(file)).expect("copy entry");
            }
        }
    }
}

/// Rows of `sql` against the host's database (none while it is absent).
pub fn query<T>(
    dir: &Path,
    sql: &str,
    f: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    let path = dir.join("wasmcron.db");
    let Ok(conn) = rusqlite::Connection::open(&path) else {
        return Vec::new();
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    let Ok(mut stmt) = conn.prepare(sql) else {
        return Vec::new();
    };
    stmt.query_map([], f)
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// The single integer a `SELECT count(*)` query returns (0 when the
/// database is not there yet).
pub fn count(dir: &Path, sql: &str) -> i64 {
    query(dir, sql, |r| r.get::<_, i64>(0))
        .first()
        .copied()
        .unwrap_or(0)
}

/// The first column of every row, as text.
pub fn strings(dir: &Path, sql: &str) -> Vec<String> {
    query(dir, sql, |r| r.get::<_, String>(0))
}

/// Polls until `check` holds, up to 60 s (a safety net, not a timing
/// assertion).
///
/// # Panics
/// When `check` does not hold in time.
pub fn eventually(host: &Host, what: &str, check: impl Fn() -> bool) {
    eventually_within(host, what, Duration::from_secs(60), check);
}

/// As [`eventually`], up to `limit` (for what takes minutes in a debug
/// build, such as compiling a Python component).
///
/// # Panics
/// When `check` does not hold in time.
pub fn eventually_within(host: &Host, what: &str, limit: Duration, check: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; host log:\n{}",
            host.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
