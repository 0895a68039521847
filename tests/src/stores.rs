//! The job store backends the suites run against, behind one handle per
//! test: memory, a SQLite file in a temporary folder, or a fresh
//! PostgreSQL database ([`crate::pg::TestDb`]).
//!
//! [`backends!`](crate::backends) turns one test body taking a
//! [`TestStore`] into one `#[tokio::test]` per backend, named after it
//! (`the_test::sqlite`, `the_test::postgres`), so a filter picks a
//! backend.

use crate::pg::TestDb;
use std::path::PathBuf;
use std::sync::Arc;
use wasmcron::store::postgres::PostgresJobStore;
use wasmcron::store::sqlite::SqliteJobStore;
use wasmcron::store::{JobStore, MemoryJobStore};

/// Which store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// [`MemoryJobStore`]: reopening gives the same store.
    Memory,
    /// [`SqliteJobStore`] on a file in a temporary folder.
    Sqlite,
    /// [`PostgresJobStore`] on a fresh database.
    Postgres,
}

/// One test's store: where its data lives, opened as often as the test
/// restarts a host.
#[derive(Debug)]
pub struct TestStore {
    backend: Backend,
    dir: tempfile::TempDir,
    pg: Option<TestDb>,
    memory: Arc<MemoryJobStore>,
}

impl TestStore {
    /// A new, empty store of `backend`.
    ///
    /// # Panics
    /// When the folder or database cannot be created.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            dir: tempfile::tempdir().expect("tempdir"),
            pg: (backend == Backend::Postgres).then(TestDb::create),
            memory: Arc::default(),
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite file (also for other backends, unused there).
    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("wasmcron.db")
    }

    /// The PostgreSQL database, for the PostgreSQL backend.
    pub fn pg(&self) -> Option<&TestDb> {
        self.pg.as_ref()
    }

    /// What `wasmcron run --db` takes for this store.
    pub fn db_arg(&self) -> String {
        match (&self.pg, self.backend) {
            (Some(pg), _) => pg.url().to_owned(),
            (None, Backend::Memory) => "memory".to_owned(),
            (None, _) => format!("sqlite://{}", self.sqlite_path().display()),
        }
    }

    /// A handle on the store: a new one on the same data each call (a
    /// restart), the same store for memory.
    ///
    /// # Panics
    /// When it cannot be opened.
    pub async fn open(&self) -> Arc<dyn JobStore> {
        match (&self.pg, self.backend) {
            (Some(pg), _) => Arc::new(
                PostgresJobStore::connect(pg.url())
                    .await
                    .unwrap_or_else(|e| panic!("opening {}: {e}", pg.url())),
            ),
            (None, Backend::Memory) => self.memory.clone(),
            (None, _) => Arc::new(SqliteJobStore::open(&self.sqlite_path()).expect("SQLite store")),
        }
    }

    /// Runs `sql` (valid on both SQLite and PostgreSQL) in the database.
    ///
    /// # Panics
    /// When it fails, or on the memory backend.
    pub fn execute(&self, sql: &str) {
        match &self.pg {
            Some(pg) => pg.execute(sql),
            None => {
                assert_ne!(self.backend, Backend::Memory, "no SQL on memory");
                rusqlite::Connection::open(self.sqlite_path())
                    .and_then(|c| c.execute_batch(sql))
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }
    }

    /// The single integer `sql` returns (0 for NULL, no row, or a table
    /// the host has not created yet).
    ///
    /// # Panics
    /// When it fails otherwise, or on the memory backend.
    pub fn count(&self, sql: &str) -> i64 {
        match &self.pg {
            Some(pg) => pg.count(sql),
            None => {
                assert_ne!(self.backend, Backend::Memory, "no SQL on memory");
                use rusqlite::OptionalExtension as _;
                if !self.sqlite_path().exists() {
                    return 0;
                }
                match rusqlite::Connection::open(self.sqlite_path()).and_then(|c| {
                    c.busy_timeout(std::time::Duration::from_secs(5))?;
                    c.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                        .optional()
                }) {
                    Ok(n) => n.flatten().unwrap_or(0),
                    // The host creates its tables at start (PostgreSQL's
                    // helper reads a table not there yet the same way).
                    Err(e) if e.to_string().contains("no such table") => 0,
                    Err(e) => panic!("{sql}: {e}"),
                }
            }
        }
    }

    /// Every row of `sql` (valid on both SQLite and PostgreSQL), each
    /// column as text (NULL as an empty string); none on a SQLite file not
    /// there yet.
    ///
    /// # Panics
    /// When the query fails, or on the memory backend.
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        if let Some(pg) = &self.pg {
            return pg.rows(sql);
        }
        assert_ne!(self.backend, Backend::Memory, "no SQL on memory");
        if !self.sqlite_path().exists() {
            return Vec::new();
        }
        let conn = rusqlite::Connection::open(self.sqlite_path()).expect("SQLite file");
        let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
        let mut stmt = match conn.prepare(sql) {
            Ok(stmt) => stmt,
            Err(e) if e.to_string().contains("no such table") => return Vec::new(),
            Err(e) => panic!("{sql}: {e}"),
        };
        let columns = stmt.column_count();
        stmt.query_map([], |r| {
            (0..columns)
                .map(|i| {
                    use rusqlite::types::ValueRef;
                    Ok(match r.get_ref(i)? {
                        ValueRef::Null => String::new(),
                        ValueRef::Integer(n) => n.to_string(),
                        ValueRef::Real(f) => f.to_string(),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                    })
                })
                .collect()
        })
        .and_then(Iterator::collect)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `column`, a time, as integer unix milliseconds in this backend's
    /// SQL (SQLite stores them so; PostgreSQL as `timestamptz`).
    pub fn ms(&self, column: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("(extract(epoch from {column}) * 1000)::bigint"),
            _ => column.to_owned(),
        }
    }
}

/// One `#[tokio::test(flavor = "multi_thread")]` per listed backend
/// (`memory`, `sqlite`, `postgres`) for an `async fn NAME(db: TestStore)`
/// in scope: `backends!(NAME: sqlite, postgres);` makes
/// `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! backends {
    ($test:ident: $($backend:ident),+ $(,)?) => {
        mod $test {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $backend() {
                    super::$test($crate::stores::TestStore::new(
                        $crate::stores::Backend::named(stringify!($backend)),
                    ))
                    .await;
                }
            )+
        }
    };
}

impl Backend {
    /// The backend a [`backends!`](crate::backends) list names.
    ///
    /// # Panics
    /// On another name: the macro's lists are written by hand.
    pub fn named(name: &str) -> Self {
        match name {
            "memory" => Self::Memory,
            "sqlite" => Self::Sqlite,
            "postgres" => Self::Postgres,
            other => panic!("unknown backend {other}: memory, sqlite or postgres"),
        }
    }
}
