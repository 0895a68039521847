//! The leader lease on PostgreSQL (see [`crate::store::leader`]).
//!
//! One task per host, on its own connection (so a flood of API reads on
//! the pool cannot delay a renewal), runs a round every third of the TTL
//! while leading and every [`FOLLOWER_POLL`] while following:
//!
//! - leading: renew (`expires_at = now + ttl`, only under its own term and
//!   while unexpired); a renewal that finds the lease gone means another
//!   host took it: step down;
//! - following: take the lease if it has expired or was released (the
//!   term goes up by one), else read who holds it;
//! - resigned (a clean shutdown has begun, [`Resign`]): the lease is
//!   released at once if held and never taken again, but the rounds go
//!   on, so the host keeps heartbeating while its last runs end (the
//!   leader's sweep must not take it for stopped and interrupt them).
//!
//! The times are the database's (`clock_timestamp()`), so hosts' clocks
//! need not agree. A leader also steps down by itself when it has not
//! renewed for `ttl - ttl/5` of its own clock, measured from when it sent
//! its last good renewal: the database counts the TTL from when it ran
//! that renewal, which is later, so the host stops firing before another
//! can take over. Even a leader that cannot tell (paused between a check
//! and a write) cannot fire after that: the writer checks the term in the
//! database with each fire ([`FENCE_SQL`]).

use super::conn::{classify, connect};
use crate::store::StoreError;
use crate::store::leader::{LeaderCell, LeaderInfo, Leadership};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_postgres::{Client, Config, Row};
use tokio_util::sync::CancellationToken;

/// Asks the lease task to resign (see the module docs); the task answers
/// on the `oneshot` once the lease is released (or could not be) and the
/// fence is down.
pub(super) type Resign = mpsc::UnboundedSender<oneshot::Sender<()>>;

/// How often a follower looks at the lease: a released lease is taken
/// within this.
pub const FOLLOWER_POLL: Duration = Duration::from_millis(500);

/// The fencing check every recorded fire runs first, in the fire's own
/// transaction: the lease row is locked (shared) until that transaction
/// ends, so a new leader's take-over waits for it, and is seen only after.
pub(super) const FENCE_SQL: &str = "SELECT wasmcron_fence($1::bigint)";

/// The term the writer fences fires with: 0 while this host does not
/// lead. Only consulted once a lease was started on the store.
#[derive(Debug, Default)]
pub(super) struct Fence {
    /// Whether this store takes part in a lease at all.
    pub(super) enabled: std::sync::atomic::AtomicBool,
    /// The current term, 0 when not leading.
    pub(super) term: AtomicI64,
}

impl Fence {
    /// The term fires must carry; `Err` when fencing is on and this host
    /// does not lead; `Ok(None)` when there is no lease.
    pub(super) fn term(&self) -> Result<Option<i64>, StoreError> {
        if !self.enabled.load(Ordering::Acquire) {
            return Ok(None);
        }
        match self.term.load(Ordering::Acquire) {
            0 => Err(StoreError::Fenced(
                "this host does not hold the leader lease".into(),
            )),
            t => Ok(Some(t)),
        }
    }
}

/// Who this host is and how long its lease lasts.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// The lease's time to live (renewed every third of it).
    pub ttl: Duration,
    /// This host's id (a UUID per start).
    pub host_id: String,
    /// This host's name, for people (`--host-name`).
    pub host_name: String,
    /// Its API address (empty without an API).
    pub address: String,
    /// What it reports at each heartbeat, kept current by the app.
    pub report: std::sync::Arc<std::sync::Mutex<crate::store::HostReport>>,
}

/// Where the lease stands after a round.
enum Round {
    Leading(LeaderInfo),
    Following(Option<LeaderInfo>),
}

const COLUMNS: &str = "term, holder, holder_name, expires_at";

fn info(row: &Row) -> Result<LeaderInfo, StoreError> {
    Ok(LeaderInfo {
        term: row.try_get(0).map_err(classify)?,
        host_id: row.try_get(1).map_err(classify)?,
        name: row.try_get(2).map_err(classify)?,
        expires_at: row.try_get::<_, DateTime<Utc>>(3).map_err(classify)?,
    })
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// One round: renew (when `term` is ours), else take (unless `take` is
/// false: a host that resigned), else read.
async fn round(
    client: &Client,
    s: &LeaseSettings,
    term: i64,
    take: bool,
) -> Result<Round, StoreError> {
    let ttl = ttl_ms(s.ttl);
    if term > 0 {
        let renewed = client
            .query_opt(
                &format!(
                    "UPDATE leader_lease
                        SET expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond'
                      WHERE id = 1 AND term = $1::bigint AND holder = $2::text
                        AND expires_at > clock_timestamp()
                  RETURNING {COLUMNS}"
                ),
                &[&term, &s.host_id, &ttl],
            )
            .await
            .map_err(classify)?;
        if let Some(row) = renewed {
            return Ok(Round::Leading(info(&row)?));
        }
    }
    let taken = if take {
        client
            .query_opt(
                &format!(
                    "UPDATE leader_lease
                    SET term = term + 1, holder = $1::text, holder_name = $2::text,
                        expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond'
                  WHERE id = 1 AND expires_at <= clock_timestamp()
              RETURNING {COLUMNS}"
                ),
                &[&s.host_id, &s.host_name, &ttl],
            )
            .await
            .map_err(classify)?
    } else {
        None
    };
    if let Some(row) = taken {
        return Ok(Round::Leading(info(&row)?));
    }
    let row = client
        .query_one(
            &format!(
                "SELECT {COLUMNS}, expires_at > clock_timestamp() FROM leader_lease WHERE id = 1"
            ),
            &[],
        )
        .await
        .map_err(classify)?;
    let live: bool = row.try_get(4).map_err(classify)?;
    Ok(Round::Following(if live {
        Some(info(&row)?)
    } else {
        None
    }))
}

/// Gives the lease up (a clean shutdown): the next host to look takes it
/// at once.
async fn release(client: &Client, s: &LeaseSettings, term: i64) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE leader_lease SET holder = '', holder_name = '', expires_at = '-infinity'
              WHERE id = 1 AND term = $1::bigint AND holder = $2::text",
            &[&term, &s.host_id],
        )
        .await
        .map_err(classify)?;
    Ok(())
}

/// The lease task: runs rounds until `stop`, then releases the lease if
/// it holds it. Keeps `cell` and `fence` up to date, and `alone` (no other
/// host heartbeats) as of the last round. A request on `resign` releases
/// the lease at once and keeps the task from taking it again, while its
/// rounds (and so this host's heartbeats) go on until `stop`.
pub(super) async fn lease_loop(
    config: Config,
    s: LeaseSettings,
    cell: LeaderCell,
    fence: Arc<Fence>,
    alone: Arc<std::sync::atomic::AtomicBool>,
    mut resign: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    stop: CancellationToken,
) {
    let renew_every = s.ttl / 3;
    let margin = s.ttl / 5;
    // A round that takes longer than this counts as failed.
    let round_timeout = renew_every.max(Duration::from_millis(500));
    // A take-over waiting for the lock of a fire still open gives up on
    // the server too, not only here, and is tried again next round.
    let mut config = config;
    super::conn::with_option(
        &mut config,
        &format!("lock_timeout={}", round_timeout.as_millis()),
    );
    let mut client: Option<Client> = None;
    let mut term: i64 = 0;
    let mut valid_until: Option<Instant> = None;
    let mut last_error: Option<String> = None;
    // Set once a clean shutdown began: never take the lease again.
    let mut resigned = false;
    // The leader's term last logged, so a change is logged once.
    let mut seen_term: i64 = 0;
    let step_down = |term: &mut i64, valid_until: &mut Option<Instant>, why: &str| {
        if *term > 0 {
            tracing::warn!(term = *term, "{why}: this host stops firing and follows");
        }
        *term = 0;
        *valid_until = None;
        fence.term.store(0, Ordering::Release);
        cell.set(Leadership::Follower { leader: None });
    };
    loop {
        if valid_until.is_some_and(|until| Instant::now() >= until) {
            step_down(
                &mut term,
                &mut valid_until,
                "could not renew the leader lease in time",
            );
        }
        let sent = Instant::now();
        let result = tokio::select! {
            r = tokio::time::timeout(round_timeout, async {
                if client.as_ref().is_none_or(Client::is_closed) {
                    client = Some(connect(&config).await?);
                }
                match client.as_ref() {
                    Some(c) => {
                        let others = super::claims::heartbeat(c, &s).await?;
                        alone.store(others == 0, Ordering::Relaxed);
                        round(c, &s, term, !resigned).await
                    }
                    None => Err(StoreError::Unwritable("no connection".into())),
                }
            }) => r.unwrap_or_else(|_| Err(StoreError::Unwritable(format!(
                "no answer from the database within {} ms", round_timeout.as_millis()
            )))),
            () = stop.cancelled() => break,
        };
        if result.is_ok() {
            // The heartbeat went in with this round (see LeaderCell).
            cell.heartbeat_until(sent + s.ttl.saturating_sub(margin));
        }
        match result {
            Ok(Round::Leading(info)) => {
                if info.term != term {
                    tracing::info!(term = info.term, host = %s.host_name, "this host leads: it evaluates the schedules");
                }
                seen_term = info.term;
                term = info.term;
                valid_until = Some(sent + s.ttl.saturating_sub(margin));
                fence.term.store(term, Ordering::Release);
                cell.set(Leadership::Leader { info });
                last_error = None;
            }
            Ok(Round::Following(leader)) => {
                if term > 0 {
                    step_down(
                        &mut term,
                        &mut valid_until,
                        "the leader lease was taken by another host",
                    );
                }
                if let Some(l) = &leader
                    && l.term != seen_term
                {
                    tracing::info!(leader = %l.name, term = l.term, "host {} leads (term {})", l.name, l.term);
                    seen_term = l.term;
                }
                cell.set(Leadership::Follower { leader });
                last_error = None;
            }
            Err(e) => {
                client = None;
                let text = e.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(error = %text, "leader lease: the database did not answer; trying again");
                    last_error = Some(text);
                }
            }
        }
        let wait = if term > 0 {
            let next = sent + renew_every;
            valid_until.map_or(next, |u| next.min(u))
        } else {
            Instant::now() + FOLLOWER_POLL
        };
        tokio::select! {
            () = tokio::time::sleep_until(wait) => {}
            asked = resign.recv(), if !resigned => {
                // Between rounds, so no take of the lease is in flight
                // that this host would not know it won.
                resigned = true;
                fence.term.store(0, Ordering::Release);
                if term > 0 {
                    cell.set(Leadership::Follower { leader: None });
                    release_now(client.as_ref(), &s, term, round_timeout).await;
                    term = 0;
                    valid_until = None;
                }
                if let Some(ack) = asked {
                    let _ = ack.send(());
                }
            }
            () = stop.cancelled() => break,
        }
    }
    fence.term.store(0, Ordering::Release);
    if let Some(c) = client.as_ref()
        && let Err(e) = super::claims::leave(c, &s.host_id).await
    {
        tracing::debug!(error = %e, "could not remove this host's row");
    }
    if term > 0 {
        cell.set(Leadership::Follower { leader: None });
        release_now(client.as_ref(), &s, term, round_timeout).await;
    }
}

/// Releases the lease held under `term` (within `limit`), saying how it
/// went: on failure the lease expires after its TTL.
async fn release_now(client: Option<&Client>, s: &LeaseSettings, term: i64, limit: Duration) {
    let Some(c) = client else {
        tracing::warn!(
            "could not release the leader lease (no connection); it expires after its TTL"
        );
        return;
    };
    match tokio::time::timeout(limit, release(c, s, term)).await {
        Ok(Ok(())) => tracing::info!(term, "leader lease released: another host leads at once"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not release the leader lease; it expires after its TTL");
        }
        Err(_) => {
            tracing::warn!("could not release the leader lease in time; it expires after its TTL");
        }
    }
}
