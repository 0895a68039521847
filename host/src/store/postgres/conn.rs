//! Connecting: the URL (with its password masked for messages), one
//! connection for the writer, a pool for reads, and which errors are the
//! database's unavailability rather than the data's fault.

use crate::store::StoreError;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

/// How long opening one connection may take (TCP, start-up, auth).
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one group of writes, or one read, may wait for the database
/// before the store calls it unreachable. A frozen network otherwise
/// leaves a write waiting for TCP to give up (minutes).
pub(super) const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Reader connections in the pool (API reads, kv gets, `load`).
pub(super) const READERS: usize = 4;

/// Whether `db` names a PostgreSQL database (`postgres://…` or
/// `postgresql://…`).
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// `url` with any password replaced by `***`, for messages and logs: the
/// `user:password@` part and a `password=` query parameter.
pub fn mask_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority_end, _) = rest
        .char_indices()
        .find(|(_, c)| matches!(c, '/' | '?'))
        .unwrap_or((rest.len(), '/'));
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    if scheme.is_empty() {
        format!("{authority}{tail}")
    } else {
        format!("{scheme}://{authority}{tail}")
    }
}

/// Parses a URL into the driver's configuration, with the store's
/// timeouts and TCP keepalives (so a dead peer is noticed even while
/// idle).
///
/// # Errors
/// [`StoreError::Backend`] naming the masked URL when it does not parse.
pub(super) fn config(url: &str) -> Result<Config, StoreError> {
    let mut config: Config = url.parse().map_err(|e| {
        StoreError::Backend(format!(
            "--db {}: not a PostgreSQL URL: {e}",
            mask_password(url)
        ))
    })?;
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .application_name("wasmcron");
    // A transaction left open by a host that froze or lost its network
    // mid-way (the server still sees the socket) must not hold its locks:
    // a fire holds the lease row shared until it commits, and a new
    // leader's take-over waits for it (issue 11). No transaction of ours
    // idles between statements for more than moments.
    with_option(
        &mut config,
        &format!(
            "idle_in_transaction_session_timeout={}",
            IDLE_IN_TRANSACTION.as_millis()
        ),
    );
    Ok(config)
}

/// Longest a transaction of ours may sit idle between statements on the
/// server before the server ends it (`idle_in_transaction_session_timeout`).
pub(super) const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(2);

/// Adds `-c NAME=VALUE` to the options the connection sends at start-up,
/// after any the URL gave.
pub(super) fn with_option(config: &mut Config, setting: &str) {
    let options = match config.get_options() {
        Some(o) if !o.is_empty() => format!("{o} -c {setting}"),
        _ => format!("-c {setting}"),
    };
    config.options(&options);
}

/// Opens one connection and drives it on the current runtime.
///
/// # Errors
/// [`StoreError::Unwritable`] when the database cannot be reached or
/// refuses the connection.
pub(super) async fn connect(config: &Config) -> Result<Client, StoreError> {
    let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls))
        .await
        .map_err(|_| {
            StoreError::Unwritable(format!(
                "no answer from the database within {}s",
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(classify)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// The pool for reads.
///
/// # Errors
/// [`StoreError::Backend`] when the pool cannot be built.
pub(super) fn pool(config: Config) -> Result<deadpool_postgres::Pool, StoreError> {
    let manager = deadpool_postgres::Manager::from_config(
        config,
        NoTls,
        deadpool_postgres::ManagerConfig {
            // Fast: checks only that the connection is not closed; a
            // connection that died since is replaced on its first error.
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(manager)
        .max_size(READERS)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .create_timeout(Some(CONNECT_TIMEOUT))
        .wait_timeout(Some(ANSWER_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Backend(format!("building the connection pool: {e}")))
}

/// A driver error as a [`StoreError`]. The database being unreachable or
/// unable to take writes (connection lost or refused, server shutting
/// down or starting, disk full, out of memory or connections, a read-only
/// server) is [`StoreError::Unwritable`]: not the data's fault, and the
/// store's health says so until a write works again. Anything else (a
/// constraint, a bad value) is [`StoreError::Backend`].
pub(super) fn classify(e: tokio_postgres::Error) -> StoreError {
    let text = describe(&e);
    if e.code().is_some_and(|c| c.code() == "WCF01") {
        // wasmcron_fence: this host's lease term is not current.
        StoreError::Fenced(text)
    } else if unavailable(&e) {
        StoreError::Unwritable(text)
    } else {
        StoreError::Backend(text)
    }
}

/// The error with the server's message when there is one (the driver's
/// own text is only "db error").
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn unavailable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Classes 08 (connection), 53 (insufficient resources: disk full,
        // memory, too many connections), 57 (operator intervention:
        // shutdown, cannot connect now), 58 (system error: I/O), and a
        // server that is read-only (a standby, or default_transaction_read_only).
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || c.starts_with("53")
                || c.starts_with("57")
                || c.starts_with("58")
                || *code == SqlState::READ_ONLY_SQL_TRANSACTION
        }
        // No SQLSTATE: the socket or the protocol failed (I/O, timeout).
        None => e.as_db_error().is_none(),
    }
}

/// A pool error as a [`StoreError`]: failing to get a connection is the
/// database being unreachable.
pub(super) fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => classify(e),
        other => StoreError::Unwritable(format!("no database connection: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_in_the_userinfo_and_the_query() {
        assert_eq!(
            mask_password("postgres://u:s3cret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(
            mask_password("postgresql://u:p@ss@db/x?sslmode=disable&password=z"),
            "postgresql://u:***@db/x?sslmode=disable&password=***"
        );
        assert_eq!(
            mask_password("postgres://root@127.0.0.1:5432/test"),
            "postgres://root@127.0.0.1:5432/test"
        );
        assert_eq!(mask_password("postgres://h"), "postgres://h");
    }
}
