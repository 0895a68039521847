//! One API token for the hosts of a shared database (issue 11).
//!
//! Any host's API changes jobs and plugins for every host, so the cluster
//! is only as closed as its most open host. Each host records the SHA-256
//! of its `--token` (or that it has none) in `cluster_token` when it
//! starts; while another host is alive (a heartbeat within the lease TTL)
//! a host whose token differs is refused with an error that says what to
//! do. With no other host alive the starting host's choice becomes the
//! cluster's, which is how a token is added or rotated: stop every host,
//! start them again with the new one.
//!
//! The digest is unsalted: API tokens are long random secrets (16+
//! characters, `openssl rand -hex 32`), not passwords, and whoever can
//! read this table can already change every job directly.

use super::conn::classify;
use crate::store::StoreError;
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio_postgres::Client;

/// Refuses a host whose name a live host already uses: runs are recorded
/// by host name, and two live hosts with one name would take each
/// other's runs for their own (give them back, record their ends). A
/// host restarted at once after a crash finds its own previous row still
/// fresh, so this waits up to the TTL (plus a second) for that heartbeat
/// to stop before refusing.
///
/// # Errors
/// [`StoreError::Backend`] naming the other host; as [`classify`] says
/// when the database fails.
pub(super) async fn unique_name(
    client: &Client,
    host_id: &str,
    host_name: &str,
    ttl: Duration,
) -> Result<(), StoreError> {
    let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let deadline = tokio::time::Instant::now() + ttl + Duration::from_secs(1);
    let mut told = false;
    loop {
        let other = tokio::time::timeout(
            super::conn::ANSWER_TIMEOUT,
            client.query_opt(
                "SELECT address, started_at::text FROM hosts
                  WHERE name = $1::text AND id <> $2::text
                    AND heartbeat_at > clock_timestamp() - $3::bigint * interval '1 millisecond'
                  LIMIT 1",
                &[&host_name, &host_id, &ms],
            ),
        )
        .await
        .map_err(|_| StoreError::Unwritable("no answer from the database".into()))?
        .map_err(classify)?;
        let Some(row) = other else {
            return Ok(());
        };
        let address: String = row.try_get(0).map_err(classify)?;
        let started: String = row.try_get(1).map_err(classify)?;
        let address = if address.is_empty() {
            "none".to_owned()
        } else {
            address
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(StoreError::Backend(format!(
                "another live host is named '{host_name}' (address {address}, started at \
                 {started}); give each host its own --host-name (the default, machine:port, \
                 is unique)"
            )));
        }
        if !told {
            tracing::info!(
                host = host_name,
                "a host with this name heartbeats (this host's previous run, if it crashed \
                 moments ago): waiting up to the lease TTL for it to stop"
            );
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The hex SHA-256 of a token.
pub(super) fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks this host's token against the live hosts', or sets it when no
/// other host is alive.
///
/// # Errors
/// [`StoreError::Backend`] naming what to change when the live hosts use
/// another token (or none, or one where this host has none); as
/// [`classify`] says when the database fails.
pub(super) async fn agree(
    client: &mut Client,
    token: Option<&str>,
    host_id: &str,
    host_name: &str,
    ttl: Duration,
) -> Result<(), StoreError> {
    let mine = token.map(digest);
    let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let tx = client.transaction().await.map_err(classify)?;
    // The row is locked so two hosts starting at once decide one after
    // the other.
    tx.execute(
        "INSERT INTO cluster_token (id, sha256, set_by, set_at)
         VALUES (1, $1::text, $2::text, clock_timestamp()) ON CONFLICT (id) DO NOTHING",
        &[&mine, &host_name],
    )
    .await
    .map_err(classify)?;
    let row = tx
        .query_one(
            "SELECT sha256, set_by, set_at::text FROM cluster_token WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(classify)?;
    let stored: Option<String> = row.try_get(0).map_err(classify)?;
    let set_by: String = row.try_get(1).map_err(classify)?;
    let set_at: String = row.try_get(2).map_err(classify)?;
    if stored == mine {
        tx.commit().await.map_err(classify)?;
        return Ok(());
    }
    let alive: Vec<String> = tx
        .query(
            "SELECT name FROM hosts WHERE id <> $1::text
                AND heartbeat_at > clock_timestamp() - $2::bigint * interval '1 millisecond'
              ORDER BY name",
            &[&host_id, &ms],
        )
        .await
        .map_err(classify)?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(classify)?;
    if alive.is_empty() {
        tx.execute(
            "UPDATE cluster_token SET sha256 = $1::text, set_by = $2::text,
                    set_at = clock_timestamp() WHERE id = 1",
            &[&mine, &host_name],
        )
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        tracing::info!(
            token = mine.is_some(),
            "no other host is alive: this host's API token (or its lack of one) is now the cluster's"
        );
        return Ok(());
    }
    let hosts = alive.join(", ");
    let what = match (&stored, &mine) {
        (Some(_), None) => format!(
            "the hosts sharing this database ({hosts}) require an API token, and this host has \
             none: start it with the same --token (or WASMCRON_TOKEN) as they have"
        ),
        (None, Some(_)) => format!(
            "the hosts sharing this database ({hosts}) run without an API token: a token on one \
             host only would protect nothing, since any host's API changes jobs and plugins for \
             all. Start this host without --token, or stop every host and start them all with \
             the same --token"
        ),
        _ => format!(
            "this host's --token differs from the one the hosts sharing this database ({hosts}) \
             use: start it with theirs, or stop every host and start them all with a new one"
        ),
    };
    Err(StoreError::Backend(format!(
        "{what} (the cluster's token was set by {set_by} at {set_at})"
    )))
}
