//! A fresh PostgreSQL database per test, dropped afterwards.
//!
//! The server is the one `.ci/postgres` makes sure of: 127.0.0.1:5432,
//! trust auth, user `postgres`, database `test` (override the admin URL
//! with `WASMCRON_TEST_PG`). Tests never skip when it is absent: they fail
//! saying how to start it.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_postgres::NoTls;

/// Where tests connect to create and drop their databases.
pub fn admin_url() -> String {
    std::env::var("WASMCRON_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Runs `f` to completion on a runtime of its own, on a thread of its
/// own, so it works from sync tests and from inside a tokio test alike.
///
/// # Panics
/// When the runtime cannot be built or `f` panics.
pub fn block<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for a PostgreSQL helper")
            .block_on(f)
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A table the host has not created yet (it migrates at start).
fn not_yet(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, conn) = match tokio_postgres::connect(url, NoTls).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {url} ({e}); the tests need it: run .ci/postgres \
             (it starts or installs it) or set WASMCRON_TEST_PG"
        ),
    };
    tokio::spawn(conn);
    client
}

/// A database created for one test; dropped (with its connections) when
/// this is dropped.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    /// Creates `wasmcron_t_<pid>_<n>_<nanos>`.
    ///
    /// # Panics
    /// When PostgreSQL is not reachable or refuses.
    pub fn create() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "wasmcron_t_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin_url = admin_url();
        let create = name.clone();
        let at = admin_url.clone();
        block(async move {
            admin(&at)
                .await
                .batch_execute(&format!("CREATE DATABASE {create}"))
                .await
                .unwrap_or_else(|e| panic!("creating database {create}: {e}"));
        });
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("WASMCRON_TEST_PG must end in /DATABASE: {admin_url}"),
        };
        Self { name, url }
    }

    /// The database's URL, for `--db` or `PostgresJobStore::connect`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs statements in the database.
    ///
    /// # Panics
    /// When they fail.
    pub fn execute(&self, sql: &str) {
        let (url, sql) = (self.url.clone(), sql.to_owned());
        block(async move {
            admin(&url)
                .await
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        });
    }

    /// The single integer the query returns (a `count(*)` or a sum; NULL
    /// reads as 0, and so does a table the host has not created yet, as
    /// with a SQLite file not there yet).
    ///
    /// # Panics
    /// When the query fails otherwise.
    pub fn count(&self, sql: &str) -> i64 {
        let (url, sql) = (self.url.clone(), sql.to_owned());
        block(async move {
            match admin(&url)
                .await
                .query_one(&format!("SELECT ({sql})::bigint"), &[])
                .await
            {
                Ok(row) => row.get::<_, Option<i64>>(0).unwrap_or(0),
                Err(e) if not_yet(&e) => 0,
                Err(e) => panic!("{sql}: {e}"),
            }
        })
    }

    /// The first column of every row, as text.
    ///
    /// # Panics
    /// When the query fails.
    pub fn strings(&self, sql: &str) -> Vec<String> {
        let (url, sql) = (self.url.clone(), sql.to_owned());
        block(async move {
            admin(&url)
                .await
                .query(&sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .iter()
                .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
                .collect()
        })
    }

    /// Every row of `sql`, each column as text (NULL as an empty string).
    ///
    /// # Panics
    /// When the query fails.
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let (url, sql) = (self.url.clone(), sql.to_owned());
        block(async move {
            let rows = match admin(&url).await.simple_query(&sql).await {
                Ok(rows) => rows,
                Err(e) if not_yet(&e) => return Vec::new(),
                Err(e) => panic!("{sql}: {e}"),
            };
            rows.iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or_default().to_owned())
                            .collect(),
                    ),
                    _ => None,
                })
                .collect()
        })
    }

    /// Refuses new connections and ends the store's (an outage, as seen
    /// from the host), or lets them in again.
    ///
    /// # Panics
    /// When PostgreSQL refuses.
    pub fn set_reachable(&self, reachable: bool) {
        let (admin_url, name) = (admin_url(), self.name.clone());
        block(async move {
            let client = admin(&admin_url).await;
            client
                .batch_execute(&format!(
                    "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {reachable}"
                ))
                .await
                .unwrap_or_else(|e| panic!("ALTER DATABASE {name}: {e}"));
            if !reachable {
                client
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE datname = $1 AND pid <> pg_backend_pid()",
                        &[&name],
                    )
                    .await
                    .unwrap_or_else(|e| panic!("ending connections to {name}: {e}"));
            }
        });
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (admin_url(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(&admin_url, NoTls).await.ok()?;
                tokio::spawn(conn);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}
