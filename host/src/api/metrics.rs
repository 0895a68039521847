//! `GET /metrics`: Prometheus text format.
//!
//! Counters and histograms are fed by one task reading the event bus, so
//! the scheduler's hot path does no metrics work at all; gauges (jobs,
//! plugins, queue depth) are read when scraped.

use super::ApiState;
use crate::event::Event;
use crate::scheduler::{JobState, Scheduler};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use tokio::sync::broadcast::error::RecvError;

const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
];
const LATENESS_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0, 5.0, 60.0,
];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (bound, count) in self.bounds.iter().zip(&mut self.counts) {
            if v <= *bound {
                *count += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str) {
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

#[derive(Debug)]
struct Counters {
    runs: BTreeMap<String, u64>,
    duration: Histogram,
    lateness: Histogram,
    events_lost: u64,
}

/// Metrics fed from the event bus.
#[derive(Debug)]
pub struct Metrics {
    counters: Mutex<Counters>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            counters: Mutex::new(Counters {
                runs: BTreeMap::new(),
                duration: Histogram::new(DURATION_BUCKETS),
                lateness: Histogram::new(LATENESS_BUCKETS),
                events_lost: 0,
            }),
        }
    }
}

impl Metrics {
    /// Starts the task that counts `scheduler`'s events from now on; it
    /// ends when the bus closes. (A host counts from
    /// [`Scheduler::start_with_events`]'s subscription instead, through
    /// [`Self::spawn_collector_from`], so the start-up's events count.)
    pub fn spawn_collector(self: &std::sync::Arc<Self>, scheduler: &Scheduler) {
        self.spawn_collector_from(scheduler.subscribe());
    }

    /// Starts the task that counts the events `rx` receives; it ends when
    /// the bus closes.
    pub fn spawn_collector_from(self: &std::sync::Arc<Self>, mut rx: crate::event::EventReceiver) {
        let metrics = self.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(event) => metrics.observe(&event),
                    Err(RecvError::Lagged(n)) => metrics.lock().events_lost += n,
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn observe(&self, event: &Event) {
        let seconds = |d: chrono::TimeDelta| d.to_std().unwrap_or_default().as_secs_f64();
        let mut c = self.lock();
        match event {
            Event::RunStarted(e) => {
                if let Some(started) = e.started_at {
                    c.lateness.observe(seconds(started - e.scheduled_at));
                }
            }
            Event::RunSucceeded(e) | Event::RunFailed(e) => {
                // Looked up by reference: a new key String only for an
                // outcome kind not seen before, not one per run.
                let outcome = e.outcome.as_deref().unwrap_or("unknown");
                match c.runs.get_mut(outcome) {
                    Some(n) => *n += 1,
                    None => {
                        c.runs.insert(outcome.to_owned(), 1);
                    }
                }
                if let Some(started) = e.started_at {
                    c.duration.observe(seconds(e.at - started));
                }
            }
            Event::RunMissed(_) => *c.runs.entry("missed".into()).or_default() += 1,
            Event::RunSkipped(_) => *c.runs.entry("skipped".into()).or_default() += 1,
            _ => {}
        }
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self, scheduler: &Scheduler) -> String {
        let mut out = String::new();
        let c = self.lock();
        out.push_str("# HELP wasmcron_runs_total Runs by how they ended (missed and skipped: fires not run).\n");
        out.push_str("# TYPE wasmcron_runs_total counter\n");
        // Every outcome kind (the retry policy's list is the full set of
        // failures), then the fires that did not run.
        let kinds = std::iter::once("succeeded")
            .chain(crate::job::RETRYABLE_KINDS.iter().copied())
            .chain(["missed", "skipped"]);
        for outcome in kinds {
            let n = c.runs.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(out, "wasmcron_runs_total{{outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP wasmcron_run_duration_seconds Guest run time, start to end.\n");
        out.push_str("# TYPE wasmcron_run_duration_seconds histogram\n");
        c.duration.render(&mut out, "wasmcron_run_duration_seconds");
        out.push_str(
            "# HELP wasmcron_fire_lateness_seconds From a fire's due time to its guest starting.\n",
        );
        out.push_str("# TYPE wasmcron_fire_lateness_seconds histogram\n");
        c.lateness
            .render(&mut out, "wasmcron_fire_lateness_seconds");
        out.push_str("# HELP wasmcron_metrics_events_lost_total Events the metrics collector fell behind on.\n");
        out.push_str("# TYPE wasmcron_metrics_events_lost_total counter\n");
        let _ = writeln!(out, "wasmcron_metrics_events_lost_total {}", c.events_lost);
        drop(c);

        // Counted in place: copying every job (as `jobs()` does) took
        // seconds and hundreds of MiB at a million jobs.
        let tally = scheduler.job_tally();
        out.push_str("# HELP wasmcron_jobs Jobs by state.\n# TYPE wasmcron_jobs gauge\n");
        for state in [
            JobState::Scheduled,
            JobState::Paused,
            JobState::WaitingForPlugin,
            JobState::Finished,
        ] {
            let n = tally.in_state(state);
            let _ = writeln!(out, "wasmcron_jobs{{state=\"{}\"}} {n}", state.as_str());
        }
        out.push_str("# HELP wasmcron_runs_in_flight Runs pending or running.\n# TYPE wasmcron_runs_in_flight gauge\n");
        let _ = writeln!(out, "wasmcron_runs_in_flight {}", tally.in_flight);
        let plugins = scheduler.plugins();
        out.push_str("# HELP wasmcron_plugins Plugins by status.\n# TYPE wasmcron_plugins gauge\n");
        let _ = writeln!(
            out,
            "wasmcron_plugins{{status=\"loaded\"}} {}",
            plugins.loaded().len()
        );
        let _ = writeln!(
            out,
            "wasmcron_plugins{{status=\"refused\"}} {}",
            plugins.refused().len()
        );
        out.push_str("# HELP wasmcron_queue_depth Entries in the scheduler's due-queue.\n# TYPE wasmcron_queue_depth gauge\n");
        let _ = writeln!(out, "wasmcron_queue_depth {}", scheduler.queue_len());
        out.push_str("# HELP wasmcron_runs_demoted_total Runs moved to the slow lane for running long or hot.\n# TYPE wasmcron_runs_demoted_total counter\n");
        let _ = writeln!(
            out,
            "wasmcron_runs_demoted_total {}",
            scheduler.runs_demoted()
        );
        out.push_str("# HELP wasmcron_runs_started_slow_total Runs started in the slow lane because their job's last run was a runaway.\n# TYPE wasmcron_runs_started_slow_total counter\n");
        let _ = writeln!(
            out,
            "wasmcron_runs_started_slow_total {}",
            scheduler.runs_started_slow()
        );
        let leadership = scheduler.store().leadership().get();
        out.push_str("# HELP wasmcron_leader 1 while this host evaluates the schedules (always, on a store one host owns).\n# TYPE wasmcron_leader gauge\n");
        let _ = writeln!(out, "wasmcron_leader {}", u8::from(leadership.is_leader()));
        out.push_str("# HELP wasmcron_lease_term The leader lease's term as this host last read it (0 without a lease).\n# TYPE wasmcron_lease_term gauge\n");
        let _ = writeln!(
            out,
            "wasmcron_lease_term {}",
            leadership.leader().map_or(0, |l| l.term)
        );
        out
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)))]
pub(super) async fn render(State(state): State<ApiState>) -> impl IntoResponse {
    let mut out = state.metrics.render(&state.scheduler);
    let store = state.scheduler.store();
    if store.shared() {
        match store.hosts().await {
            Ok(hosts) => cluster_series(&mut out, &hosts),
            Err(e) => tracing::debug!(error = %e, "could not read the hosts for /metrics"),
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

/// The series of the hosts sharing the store (issue 11): how many are
/// alive (heartbeat within the lease TTL) and what each reported.
fn cluster_series(out: &mut String, hosts: &[crate::store::HostRow]) {
    let alive = hosts.iter().filter(|h| h.alive).count();
    out.push_str("# HELP wasmcron_cluster_hosts Hosts sharing the store, by whether their heartbeat is within the lease TTL.\n# TYPE wasmcron_cluster_hosts gauge\n");
    let _ = writeln!(out, "wasmcron_cluster_hosts{{alive=\"true\"}} {alive}");
    let _ = writeln!(
        out,
        "wasmcron_cluster_hosts{{alive=\"false\"}} {}",
        hosts.len() - alive
    );
    out.push_str("# HELP wasmcron_host_runs_in_flight Runs each live host reported handling at its last heartbeat.\n# TYPE wasmcron_host_runs_in_flight gauge\n");
    for h in hosts.iter().filter(|h| h.alive) {
        let _ = writeln!(
            out,
            "wasmcron_host_runs_in_flight{{host=\"{}\"}} {}",
            label(&h.name),
            h.runs_in_flight
        );
    }
}

/// A label value in Prometheus' text format: `\`, `"` and newlines
/// escaped (host names come from `--host-name`).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
