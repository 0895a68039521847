//! Aligned bursts (issue 12): N jobs all due on the same whole second,
//! against the bare wasmtime floor and APScheduler 3, in one run.
//!
//! ```text
//! cargo bench -p wasmcron-tests --bench burst -- [--seconds S] [--jobs 1000,10000]
//!     [--stores memory,sqlite] [--skip-apscheduler] [--runaway] [--log]
//! ```
//!
//! Prints progress on stderr, then a JSON line per scenario and markdown
//! tables.
//!
//! **Aligned scenario.** A `Scheduler` built in-process (as
//! `benches/scheduler.rs` does: `SchedulerParts`, default
//! `SchedulerConfig`, the default `RuntimeConfig`) on the memory store or
//! SQLite (a temp file), with N interval jobs of `plugins/hello`, `every =
//! 1s`, all with the same `start`: a whole second far enough ahead for
//! every job to be added first, and an `end` just after start + (S-1) s,
//! so there are exactly S bursts, k = 0..S-1, due at start + k s. After
//! the last, the bench waits (polling from a second after its instant)
//! until no healthy run is in flight, then stops the scheduler: no burst
//! is cut short. Then, from the store's run history
//! (`JobStore::runs` for every job, as `benches/scheduler.rs` reads it):
//! - lateness per fire: the run's `started_at − scheduled_at` (`started_at`
//!   is when the guest began, after its start was committed); p50 / p99 /
//!   max in ms over the runs of bursts 1..S-1. **Burst 0 is always left
//!   out** of these and reported apart (`first` in the JSON): it pays the
//!   warm-up (cold pool slots, first SQLite pages); a fixed rule rather than
//!   a judgement on the data, so every run drops the same;
//! - burst time: from the instant to the last `started_at` of that burst;
//!   **burst throughput** = runs started in the burst ÷ burst time; both the
//!   median over bursts 1..S-1 (every burst's time in `per_burst_ms`);
//! - due: N × S fires; **lost**: fires due with no row at all (any
//!   status); not run: rows that are not finished (skipped, missed,
//!   pending, interrupted; `skipped` means the job's previous run had not
//!   started or ended by its next fire: a burst longer than a second);
//!   failed: finished but not succeeded.
//!
//! Each job prunes its history every 16 finished runs, so `--seconds 16`
//! or more includes the burst in which all N prune at once (on the memory
//! store each prune scans every job's runs).
//!
//! **Floor**, measured right before each scenario in the same process
//! (while no scheduler runs):
//! bare wasmtime on an engine built from the default `RuntimeConfig`
//! (pooling allocator and all), `hello` with a fresh store + instantiate +
//! call per run, as `benches/runtime.rs` measures it. Five rounds of: one
//! thread doing 3,000 runs (per-run cost = the median µs/run over all
//! rounds), then one thread per core (`available_parallelism`) doing 3,000
//! runs each at once. **Cores factor** = the parallel runs/s ÷ the
//! single-thread runs/s (same loop shape), median over rounds. The ratios
//! use **the run's floor**: every scenario's rounds pooled (a scenario's
//! own, `floor_here` in the JSON, swings with what else the machine runs
//! at that moment: the cores factor measured 1.0 to 1.6 within one run).
//! Floor burst time = N × per-run cost ÷ cores factor (taken as 1 when
//! measured below 1: one thread can always be used); floor throughput =
//! N ÷ that.
//! Each scenario prints p99 ÷ floor burst time (goal: ≤ 1.25) and
//! throughput ÷ floor throughput (goal: ≥ 0.8).
//!
//! **APScheduler 3.10.4**, same alignment, same run:
//! `benches/apscheduler/run.sh --mode aligned` (a venv it makes itself;
//! needs `python3` with `venv`): an `AsyncIOScheduler`, its memory store,
//! a trivial native function (a coroutine, run on the event loop: the
//! fastest way it runs a job; a plain `def` goes through a thread pool and
//! is about 3x later at 10,000 jobs; `bench.py --func sync`),
//! `misfire_grace_time=None`. Lateness as its spread mode measures it:
//! when the `submitted` event is dispatched minus the scheduled time; and,
//! like ours, when the function itself began. The same bursts are counted
//! and the first left out. Its `lost`: fires with no event at all (with
//! its default `coalesce=True`, a fire still due when the next one comes
//! is merged into it silently).
//!
//! **`--runaway`**: each scenario again, with beside the N healthy jobs a
//! `spin` job (every 1 s, fuel 10 G: it burns its whole budget, about a
//! second of CPU here, then the next fire starts another) and two `slow`
//! jobs (`{"millis": 600000}`, every 1 s: each holds a worker until the
//! lanes demote it, then a slow-lane slot until its 30 s timeout), all
//! started a second before the healthy ones (their outcomes are in
//! `runaway_runs`, demotions in `demoted`). Same
//! figures, on the healthy jobs only, and the % change against the plain
//! scenario of the same run (goal: within 10%).
//!
//! **Store floor**, measured after each scenario on a fresh store of the
//! same kind holding N jobs, with no scheduler: the least the store needs
//! to record one burst, the two writes per run it cannot do without (the
//! fire, recorded `running` with its job's compare-and-set, and the end,
//! with the outcome and logs of one of the scenario's own `hello` runs),
//! in batches of 256 (the scheduler's fire chunk), one after another as
//! the scheduler sends them, built before the clock starts. Median over
//! three bursts; `fires_ms` is time the store takes before the burst's
//! last run could start on any scheduler that records a run before
//! starting it, `ends_ms` the rest. The store's writer is one thread: it
//! is a bound of its own, beside the guests' floor.
//!
//! **Idle before each floor**: two seconds of doing nothing, in which
//! the process's CPU time and threads are read from `/proc`
//! (`idle_before` in the JSON; the busiest threads on stderr when past
//! 2 % of a core): what a scenario left running (a runaway guest, a
//! ticker) shows there instead of as a slow floor and a slow scenario.
//! Beside it, from `/proc/stat`, the CPU the rest of the machine used
//! and the time the hypervisor stole: a slow floor with both near zero
//! and this process idle is the machine, not the bench.
//!
//! `--log` installs a log subscriber at `info` writing to nowhere, so the
//! per-run log line the binary formats is paid for (off by default, as in
//! `benches/scheduler.rs`). Lateness on SQLite has millisecond resolution
//! (the column's).

/// The allocator the `wasmcron` binary ships with (host/src/main.rs), so
/// the bench measures what the binary does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use wasmcron::job::JobSpec;
use wasmcron::plugin::{CompileCache, Plugin, PluginRegistry};
use wasmcron::runtime::{OutcomeKind, Runtime, RuntimeConfig};
use wasmcron::scheduler::{Scheduler, SchedulerConfig, SchedulerParts, SystemClock};
use wasmcron::store::sqlite::SqliteJobStore;
use wasmcron::store::{JobRecord, JobStore, MemoryJobStore, RunRecord, RunStatus, Write};
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable, Val};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The runaway `spin` job's fuel: its whole budget, burnt every run.
const SPIN_FUEL: u64 = 10_000_000_000;
/// Runaway `slow` jobs, each sleeping past its (default, 30 s) timeout.
const SLOW_JOBS: usize = 2;
/// Floor runs per thread per round, and rounds.
const FLOOR_RUNS: usize = 3_000;
const FLOOR_ROUNDS: usize = 5;

// ---- the floor (as benches/runtime.rs) ----

struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Bare wasmtime: a default WASI context, the host imports as no-op
/// closures, no capture, no limiter, no timeout wrapper.
struct Floor {
    engine: Engine,
    pre: InstancePre<Bare>,
}

impl Floor {
    fn new(engine: &Engine, path: &str) -> wasmtime::Result<Self> {
        let component = Component::from_file(engine, path)?;
        let mut linker: Linker<Bare> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let mut log = linker.instance("wasmcron:plugin/log@0.2.0")?;
        log.func_new("log", |_, _, _, _| Ok(()))?;
        linker.instance("wasmcron:plugin/types@0.2.0")?;
        let pre = linker.instantiate_pre(&component)?;
        Ok(Self {
            engine: engine.clone(),
            pre,
        })
    }

    async fn run_once(&self) -> wasmtime::Result<()> {
        let mut store = Store::new(
            &self.engine,
            Bare {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        store.set_fuel(u64::MAX)?;
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self.pre.instantiate_async(&mut store).await?;
        let idx = instance
            .get_export_index(&mut store, None, "wasmcron:plugin/runner@0.2.0")
            .and_then(|i| instance.get_export_index(&mut store, Some(&i), "run"))
            .ok_or_else(|| wasmtime::Error::msg("no run export"))?;
        let func = instance
            .get_func(&mut store, idx)
            .ok_or_else(|| wasmtime::Error::msg("run is not a func"))?;
        let ts = || {
            Val::Record(vec![
                ("seconds".into(), Val::S64(0)),
                ("nanoseconds".into(), Val::U32(0)),
            ])
        };
        let ctx = Val::Record(vec![
            ("job-id".into(), Val::String("bench".into())),
            ("run-id".into(), Val::String("bench-run".into())),
            ("scheduled-at".into(), ts()),
            ("fired-at".into(), ts()),
            ("attempt".into(), Val::U32(1)),
            ("args".into(), Val::String("{}".into())),
            // WIT 0.2.0's fields: the example plugins build with the SDK,
            // which targets it.
            ("cause".into(), Val::Enum("schedule".into())),
            ("parent".into(), Val::Option(None)),
        ]);
        let mut results = [Val::Bool(false)];
        func.call_async(&mut store, &[ctx], &mut results).await?;
        Ok(())
    }
}

/// `threads` OS threads (each its own current-thread tokio runtime) doing
/// `runs` floor runs each, started together: (runs/s of all, per-run µs).
fn floor_round(floor: &Arc<Floor>, threads: usize, runs: usize) -> (f64, Vec<f64>) {
    let gate = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (floor, gate) = (floor.clone(), gate.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio");
                rt.block_on(async {
                    for _ in 0..100 {
                        floor.run_once().await.expect("floor warm-up");
                    }
                    gate.wait();
                    let mut each = Vec::with_capacity(runs);
                    for _ in 0..runs {
                        let t = Instant::now();
                        floor.run_once().await.expect("floor run");
                        each.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                    each
                })
            })
        })
        .collect();
    gate.wait();
    let t = Instant::now();
    let each: Vec<f64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("floor thread"))
        .collect();
    ((threads * runs) as f64 / t.elapsed().as_secs_f64(), each)
}

#[derive(Clone, Copy)]
struct FloorFigures {
    us_per_run: f64,
    single_per_s: f64,
    parallel_per_s: f64,
    threads: usize,
    cores_factor: f64,
    /// What the process burnt just before this floor, while nothing should
    /// run (zero on pooled figures).
    idle: Idle,
}

/// CPU the bench process burns while it should be idle, from `/proc`
/// (Linux; zeros elsewhere): a scenario's leftovers (a runaway guest
/// still going, a ticker or writer thread not stopped) show here before
/// the next floor and scenario run beside them.
#[derive(Clone, Copy, Default)]
struct Idle {
    /// CPU time over the window, ms per second of wall time.
    cpu_ms_per_s: f64,
    /// The process's threads at the end of the window.
    threads: usize,
    /// The whole machine's CPU time over the window outside this process
    /// (other processes, the kernel), ms per second.
    others_ms_per_s: f64,
    /// Time the hypervisor gave the machine's CPUs to someone else
    /// (`steal` in `/proc/stat`), ms per second, summed over the CPUs.
    steal_ms_per_s: f64,
}

/// The machine's busy and stolen CPU ticks from `/proc/stat`'s `cpu`
/// line (user, nice, system, irq, softirq; steal).
fn machine_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    (at(0) + at(1) + at(2) + at(5) + at(6), at(7))
}

/// Per-thread CPU ticks (`utime + stime`, field 14 and 15 of
/// `/proc/self/task/*/stat`) by thread name.
fn thread_ticks() -> Vec<(String, u64)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter_map(|stat| {
            let (head, rest) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_owned();
            // After the name: state is field 3, so utime (14) is the 12th.
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some((name, ticks))
        })
        .collect()
}

/// Sleeps `window` and reports what the process burnt meanwhile; names
/// the busiest threads on stderr when it is more than 2 % of a core.
/// Ticks are taken as 10 ms (`CLK_TCK` 100, Linux's usual).
fn idle(window: Duration) -> Idle {
    let before: HashMap<String, u64> =
        thread_ticks()
            .into_iter()
            .fold(HashMap::new(), |mut m, (name, t)| {
                *m.entry(name).or_default() += t;
                m
            });
    let (busy_before, steal_before) = machine_ticks();
    std::thread::sleep(window);
    let (busy_after, steal_after) = machine_ticks();
    let after = thread_ticks();
    let threads = after.len();
    let mut by_name: HashMap<String, u64> = HashMap::new();
    for (name, t) in after {
        *by_name.entry(name).or_default() += t;
    }
    let mut busy: Vec<(String, i64)> = by_name
        .into_iter()
        .map(|(name, t)| {
            let was = before.get(&name).copied().unwrap_or(0);
            (name, t as i64 - was as i64)
        })
        .filter(|(_, d)| *d > 0)
        .collect();
    busy.sort_by_key(|(_, d)| -d);
    let ms: i64 = busy.iter().map(|(_, d)| d * 10).sum();
    let cpu_ms_per_s = ms as f64 / window.as_secs_f64();
    let per_s = |ticks: u64| ticks as f64 * 10.0 / window.as_secs_f64();
    let others_ms_per_s = (per_s(busy_after.saturating_sub(busy_before)) - cpu_ms_per_s).max(0.0);
    let steal_ms_per_s = per_s(steal_after.saturating_sub(steal_before));
    if cpu_ms_per_s > 20.0 {
        eprintln!(
            "  not idle: {cpu_ms_per_s:.0} ms/s of CPU, {threads} threads; busiest: {}",
            busy.iter()
                .take(5)
                .map(|(n, d)| format!("{n} {} ms", d * 10))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Idle {
        cpu_ms_per_s,
        threads,
        others_ms_per_s,
        steal_ms_per_s,
    }
}

impl FloorFigures {
    /// The cores factor the floor counts on: a machine can always run
    /// on one thread, so never below 1 (a busy machine can measure less).
    fn usable_factor(&self) -> f64 {
        self.cores_factor.max(1.0)
    }

    fn burst_ms(&self, n: usize) -> f64 {
        n as f64 * self.us_per_run / self.usable_factor() / 1000.0
    }

    fn per_s(&self) -> f64 {
        self.usable_factor() * 1e6 / self.us_per_run
    }
}

/// Floor rounds' raw figures: one scenario's, or pooled over a run.
#[derive(Default)]
struct FloorSamples {
    /// Single-thread µs per run, every run.
    each: Vec<f64>,
    /// Per round: single-thread runs/s, parallel runs/s, their ratio.
    singles: Vec<f64>,
    parallels: Vec<f64>,
    factors: Vec<f64>,
    threads: usize,
}

impl FloorSamples {
    fn extend(&mut self, other: &FloorSamples) {
        self.each.extend(&other.each);
        self.singles.extend(&other.singles);
        self.parallels.extend(&other.parallels);
        self.factors.extend(&other.factors);
        self.threads = other.threads;
    }

    fn figures(&self) -> FloorFigures {
        FloorFigures {
            us_per_run: median(&mut self.each.clone()),
            single_per_s: median(&mut self.singles.clone()),
            parallel_per_s: median(&mut self.parallels.clone()),
            threads: self.threads,
            cores_factor: median(&mut self.factors.clone()),
            idle: Idle::default(),
        }
    }
}

fn measure_floor(floor: &Arc<Floor>) -> FloorSamples {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut samples = FloorSamples {
        threads,
        ..FloorSamples::default()
    };
    for _ in 0..FLOOR_ROUNDS {
        let (single, each) = floor_round(floor, 1, FLOOR_RUNS);
        let (parallel, _) = floor_round(floor, threads, FLOOR_RUNS);
        samples.each.extend(each);
        samples.singles.push(single);
        samples.parallels.push(parallel);
        samples.factors.push(parallel / single);
    }
    samples
}

// ---- the scheduler scenarios ----

#[derive(Clone, Copy, PartialEq)]
enum StoreKind {
    Memory,
    Sqlite,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite => "sqlite",
        }
    }
}

fn spec(json: Value) -> JobSpec {
    serde_json::from_value(json).unwrap_or_else(|e| panic!("job spec: {e}"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

/// Lateness and burst figures over some bursts.
#[derive(Clone, Copy)]
struct Stats {
    p50: f64,
    p99: f64,
    max: f64,
    burst_ms: f64,
    per_s: f64,
}

/// `bursts`: per burst, its runs' lateness in ms.
fn stats(bursts: &[Vec<f64>]) -> Stats {
    let mut all: Vec<f64> = bursts.iter().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    let last = |b: &Vec<f64>| b.iter().copied().fold(f64::NAN, f64::max);
    let mut burst_ms: Vec<f64> = bursts.iter().filter(|b| !b.is_empty()).map(last).collect();
    let mut per_s: Vec<f64> = bursts
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| b.len() as f64 / (last(b).max(1e-3) / 1000.0))
        .collect();
    Stats {
        p50: pct(&all, 50.0),
        p99: pct(&all, 99.0),
        max: all.last().copied().unwrap_or(f64::NAN),
        burst_ms: median(&mut burst_ms),
        per_s: median(&mut per_s),
    }
}

struct Figures {
    jobs: usize,
    store: StoreKind,
    runaway: bool,
    seconds: u64,
    due: usize,
    finished: usize,
    failed: usize,
    not_run: HashMap<&'static str, usize>,
    lost: usize,
    duplicates: usize,
    measured: Stats,
    first: Stats,
    /// Every burst's time (instant to last start), ms, burst 0 first.
    per_burst_ms: Vec<f64>,
    add_seconds: f64,
    demoted: u64,
    runaway_outcomes: HashMap<String, usize>,
    floor: FloorFigures,
    /// The store's own floor for this burst (ms), when measured.
    store_floor: Option<StoreFloor>,
    /// CPU time the hypervisor stole over the whole scenario, ms per
    /// second summed over the CPUs (see [`Idle::steal_ms_per_s`]).
    steal_ms_per_s: f64,
}

/// The least time (ms, medians over [`STORE_FLOOR_ROUNDS`] bursts) the
/// store takes to record one burst of N runs: their fires and their ends.
#[derive(Clone, Copy)]
struct StoreFloor {
    fires_ms: f64,
    ends_ms: f64,
}

const STORE_FLOOR_ROUNDS: usize = 3;
/// As the scheduler's fire chunk (`CHUNK` in host/src/scheduler/fire.rs).
const STORE_CHUNK: usize = 256;

/// Measures [`StoreFloor`] for `n` runs on a fresh store of `kind`, the
/// ends copying `template`'s outcome, logs, fuel, plugin and host.
async fn store_floor(kind: StoreKind, n: usize, template: &RunRecord) -> StoreFloor {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn JobStore> = match kind {
        StoreKind::Memory => Arc::new(MemoryJobStore::default()),
        StoreKind::Sqlite => {
            Arc::new(SqliteJobStore::open(&dir.path().join("floor.db")).expect("db"))
        }
    };
    let t0 = DateTime::from_timestamp(Utc::now().timestamp() + 86_400, 0).expect("time");
    let mut jobs = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("f{i}");
        let incarnation = wasmcron::store::new_incarnation();
        let record = JobRecord {
            spec: spec(json!({
                "id": id, "plugin": "hello",
                "trigger": {"type": "interval", "every": "1s", "start": at(t0)},
            })),
            created_at: Utc::now(),
            next_run_time: Some(t0),
            paused: false,
            incarnation: incarnation.clone(),
            paused_reason: None,
            failures_from: None,
        };
        store.insert_job(record, false).await.expect("insert job");
        jobs.push((id, incarnation));
    }
    let (mut fires, mut ends) = (Vec::new(), Vec::new());
    for round in 0..STORE_FLOOR_ROUNDS {
        let due = t0 + chrono::Duration::seconds(round as i64);
        let next = due + chrono::Duration::seconds(1);
        let runs: Vec<RunRecord> = jobs
            .iter()
            .map(|(id, incarnation)| {
                let mut r = RunRecord::pending(id, due, due, 1).of(incarnation);
                r.status = RunStatus::Running;
                r.started_at = Some(Utc::now());
                r.plugin_hash.clone_from(&template.plugin_hash);
                r.host.clone_from(&template.host);
                r
            })
            .collect();
        let fire_batches: Vec<Vec<Write>> = runs
            .chunks(STORE_CHUNK)
            .map(|c| {
                c.iter()
                    .map(|r| Write::Fire {
                        job_id: r.job_id.clone(),
                        incarnation: r.incarnation.clone(),
                        from: due,
                        next: Some(next),
                        runs: vec![r.clone()],
                    })
                    .collect()
            })
            .collect();
        let end_batches: Vec<Vec<Write>> = runs
            .chunks(STORE_CHUNK)
            .map(|c| {
                c.iter()
                    .map(|r| {
                        let mut run = r.clone();
                        run.status = RunStatus::Finished;
                        run.ended_at = Some(Utc::now());
                        run.outcome.clone_from(&template.outcome);
                        run.logs.clone_from(&template.logs);
                        run.fuel = template.fuel;
                        Write::End { run, retry: None }
                    })
                    .collect()
            })
            .collect();
        let t = Instant::now();
        for batch in fire_batches {
            let w = store.write(batch).await.expect("fire write");
            assert!(
                w.stale.is_empty() && w.refused.is_empty(),
                "store floor: a fire was not recorded"
            );
        }
        fires.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        for batch in end_batches {
            let w = store.write(batch).await.expect("end write");
            assert!(w.refused.is_empty(), "store floor: an end was not recorded");
        }
        ends.push(t.elapsed().as_secs_f64() * 1e3);
    }
    StoreFloor {
        fires_ms: median(&mut fires),
        ends_ms: median(&mut ends),
    }
}

async fn scheduler(store: Arc<dyn JobStore>, runaway: bool) -> Scheduler {
    let runtime = Runtime::new(RuntimeConfig::default(), store.kv()).expect("runtime");
    let cache = CompileCache::open(&wasmcron_tests::test_cache_dir(), runtime.engine()).ok();
    let plugins = PluginRegistry::default();
    let mut paths = vec![wasmcron_tests::plugins::HELLO];
    if runaway {
        paths.extend([wasmcron_tests::plugins::SPIN, wasmcron_tests::plugins::SLOW]);
    }
    for path in paths {
        let plugin = Plugin::load_file_cached(&runtime, std::path::Path::new(path), cache.as_ref())
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        plugins.insert(plugin);
    }
    Scheduler::start(SchedulerParts {
        store,
        runtime: Arc::new(runtime),
        plugins: Arc::new(plugins),
        clock: Arc::new(SystemClock),
        config: SchedulerConfig::default(),
    })
    .await
    .expect("start")
}

async fn add_all(s: &Scheduler, specs: Vec<JobSpec>) {
    let mut set = tokio::task::JoinSet::new();
    for chunk in specs.chunks(1000) {
        for spec in chunk.iter().cloned() {
            let s = s.clone();
            set.spawn(async move { s.add_job(spec, false).await.map(|_| ()) });
        }
        while let Some(r) = set.join_next().await {
            r.expect("join").expect("add");
        }
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

async fn aligned(
    n: usize,
    kind: StoreKind,
    runaway: bool,
    seconds: u64,
    floor: FloorFigures,
) -> Figures {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn JobStore> = match kind {
        StoreKind::Memory => Arc::new(MemoryJobStore::default()),
        StoreKind::Sqlite => {
            Arc::new(SqliteJobStore::open(&dir.path().join("burst.db")).expect("db"))
        }
    };
    let s = scheduler(store.clone(), runaway).await;
    // A whole second far enough ahead to add every job first (measured:
    // 10,000 jobs take about a second on SQLite).
    let margin = chrono::Duration::milliseconds(2000 + n as i64 * 3 / 10);
    let start = DateTime::from_timestamp((Utc::now() + margin).timestamp() + 1, 0).expect("time");
    let keep_runs = (seconds + 20).max(100);
    // Exactly `seconds` bursts: none after the last one counted, so it is
    // waited for rather than cut off by a stop.
    let last = start + chrono::Duration::seconds(seconds as i64 - 1);
    let end = at(last + chrono::Duration::milliseconds(500));
    let mut specs: Vec<JobSpec> = (0..n)
        .map(|i| {
            spec(json!({
                "id": format!("h{i}"), "plugin": "hello", "keep_runs": keep_runs,
                "trigger": {"type": "interval", "every": "1s", "start": at(start), "end": end},
            }))
        })
        .collect();
    if runaway {
        let early = at(start - chrono::Duration::seconds(1));
        specs.push(spec(json!({
            "id": "spin", "plugin": "spin", "limits": {"fuel": SPIN_FUEL},
            "trigger": {"type": "interval", "every": "1s", "start": early},
        })));
        for i in 0..SLOW_JOBS {
            specs.push(spec(json!({
                "id": format!("slow{i}"), "plugin": "slow", "args": {"millis": 600_000},
                "trigger": {"type": "interval", "every": "1s", "start": early},
            })));
        }
    }
    let t = Instant::now();
    add_all(&s, specs).await;
    let add_seconds = t.elapsed().as_secs_f64();
    let overrun = Utc::now() > start - chrono::Duration::seconds(if runaway { 1 } else { 0 });
    assert!(
        !overrun,
        "adding {n} jobs took {add_seconds:.1} s, past their start: raise the margin"
    );
    // Untouched until a second after the last burst's instant; then, every
    // 20 ms, until no healthy run is left in flight (the runaway jobs keep
    // theirs), at most a minute.
    let quiet = last + chrono::Duration::seconds(1);
    tokio::time::sleep((quiet - Utc::now()).to_std().unwrap_or_default()).await;
    let hostile: Vec<String> = if runaway {
        std::iter::once("spin".to_owned())
            .chain((0..SLOW_JOBS).map(|i| format!("slow{i}")))
            .collect()
    } else {
        Vec::new()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let theirs: usize = hostile
            .iter()
            .filter_map(|id| s.job(id).ok())
            .map(|j| j.in_flight as usize)
            .sum();
        if s.runs_here() <= theirs || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let demoted = s.runs_demoted();
    s.shutdown(Duration::from_secs(5)).await;

    let end = start + chrono::Duration::seconds(seconds as i64);
    let mut bursts: Vec<Vec<f64>> = vec![Vec::with_capacity(n); seconds as usize];
    let (mut finished, mut failed, mut lost, mut duplicates) = (0, 0, 0, 0);
    let mut not_run: HashMap<&'static str, usize> = HashMap::new();
    for i in 0..n {
        let mut seen = vec![0u32; seconds as usize];
        let runs = store.runs(&format!("h{i}"), 10_000, 0).await.expect("runs");
        for r in runs {
            if r.scheduled_at < start || r.scheduled_at >= end {
                continue;
            }
            let since = r.scheduled_at - start;
            let k = since.num_seconds() as usize;
            assert_eq!(since.subsec_nanos(), 0, "a fire off the whole second");
            seen[k] += 1;
            match (r.status, r.started_at) {
                (RunStatus::Finished, Some(st)) => {
                    finished += 1;
                    if r.outcome.as_ref().map(|o| o.kind()) != Some(OutcomeKind::Succeeded) {
                        failed += 1;
                    }
                    let late = (st - r.scheduled_at).num_microseconds().unwrap_or(0);
                    bursts[k].push(late as f64 / 1000.0);
                }
                (status, _) => *not_run.entry(status.as_str()).or_default() += 1,
            }
        }
        lost += seen.iter().filter(|c| **c == 0).count();
        duplicates += seen
            .iter()
            .map(|c| c.saturating_sub(1) as usize)
            .sum::<usize>();
    }
    // A finished run of the scenario's own, for the store floor's ends.
    let template = store
        .runs("h1", 1, 0)
        .await
        .expect("runs")
        .into_iter()
        .find(|r| r.status == RunStatus::Finished);
    let store_floor = match (&template, runaway) {
        (Some(t), false) => Some(store_floor(kind, n, t).await),
        _ => None,
    };
    let mut runaway_outcomes = HashMap::new();
    for id in &hostile {
        for r in store.runs(id, 10_000, 0).await.expect("runs") {
            let what = r.outcome.map_or(r.status.as_str(), |o| o.kind().as_str());
            *runaway_outcomes.entry(format!("{id}:{what}")).or_default() += 1;
        }
    }
    Figures {
        jobs: n,
        store: kind,
        runaway,
        seconds,
        due: n * seconds as usize,
        finished,
        failed,
        not_run,
        lost,
        duplicates,
        measured: stats(&bursts[1..]),
        first: stats(&bursts[..1]),
        per_burst_ms: bursts
            .iter()
            .map(|b| stats(std::slice::from_ref(b)).burst_ms)
            .collect(),
        add_seconds,
        demoted,
        runaway_outcomes,
        floor,
        store_floor,
        steal_ms_per_s: 0.0,
    }
}

fn stats_json(s: &Stats) -> Value {
    json!({"p50_ms": s.p50, "p99_ms": s.p99, "max_ms": s.max,
           "burst_ms": s.burst_ms, "runs_per_second": s.per_s})
}

fn floor_json(floor: &FloorFigures, n: usize) -> Value {
    json!({
        "us_per_run": floor.us_per_run,
        "single_runs_per_second": floor.single_per_s,
        "parallel_runs_per_second": floor.parallel_per_s,
        "threads": floor.threads,
        "cores_factor": floor.cores_factor,
        "burst_ms": floor.burst_ms(n),
        "runs_per_second": floor.per_s(),
    })
}

/// `floor`: the run's (pooled over every scenario); the scenario's own,
/// measured just before it, is `floor_here`.
fn figures_json(f: &Figures, plain: Option<&Figures>, floor: &FloorFigures) -> Value {
    let floor_burst = floor.burst_ms(f.jobs);
    json!({
        "bench": "burst",
        "scenario": "aligned",
        "variant": if f.runaway { "runaway" } else { "plain" },
        "store": f.store.name(),
        "jobs": f.jobs,
        "seconds": f.seconds,
        "bursts_measured": f.seconds - 1,
        "first_burst_dropped": true,
        "due": f.due,
        "finished": f.finished,
        "failed": f.failed,
        "not_run": f.not_run,
        "lost": f.lost,
        "duplicates": f.duplicates,
        "lateness": stats_json(&f.measured),
        "first": stats_json(&f.first),
        "per_burst_ms": f.per_burst_ms,
        "add_seconds": f.add_seconds,
        "demoted": f.demoted,
        "runaway_runs": f.runaway_outcomes,
        "floor": floor_json(floor, f.jobs),
        "floor_here": floor_json(&f.floor, f.jobs),
        "idle_before": json!({
            "cpu_ms_per_s": f.floor.idle.cpu_ms_per_s,
            "threads": f.floor.idle.threads,
            "others_ms_per_s": f.floor.idle.others_ms_per_s,
            "steal_ms_per_s": f.floor.idle.steal_ms_per_s,
        }),
        "steal_ms_per_s": f.steal_ms_per_s,
        "store_floor": f.store_floor.map(|sf| json!({
            "fires_ms": sf.fires_ms,
            "ends_ms": sf.ends_ms,
            "us_per_run": (sf.fires_ms + sf.ends_ms) * 1e3 / f.jobs as f64,
        })),
        "p99_over_floor_burst": f.measured.p99 / floor_burst,
        "throughput_over_floor": f.measured.per_s / floor.per_s(),
        "vs_plain_pct": plain.map(|p| json!({
            "p50": change(p.measured.p50, f.measured.p50),
            "p99": change(p.measured.p99, f.measured.p99),
            "runs_per_second": change(p.measured.per_s, f.measured.per_s),
        })),
    })
}

fn change(before: f64, after: f64) -> f64 {
    (after / before - 1.0) * 100.0
}

// ---- APScheduler ----

fn aps(seconds: u64, jobs: &[usize]) -> Option<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/apscheduler/run.sh");
    let jobs: Vec<String> = jobs.iter().map(ToString::to_string).collect();
    let out = std::process::Command::new("bash")
        .args([
            script,
            "--mode",
            "aligned",
            "--seconds",
            &seconds.to_string(),
        ])
        .args(["--jobs", &jobs.join(",")])
        .stderr(std::process::Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "APScheduler baseline failed ({}); reporting ours only",
            out.status
        );
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

// ---- arguments and output ----

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn num(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        return "n/a".into();
    }
    let text = format!("{v:.decimals$}");
    // Thousands separators on the integer part.
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), ""), |(i, f)| (i, f));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

fn triple(s: &Stats) -> String {
    format!("{} / {} / {}", num(s.p50, 1), num(s.p99, 1), num(s.max, 1))
}

fn aps_triple(v: Option<&Value>) -> String {
    let get = |k: &str| v.and_then(|v| v.get(k)?.as_f64()).unwrap_or(f64::NAN);
    format!(
        "{} / {} / {}",
        num(get("p50_ms"), 1),
        num(get("p99_ms"), 1),
        num(get("max_ms"), 1)
    )
}

fn print_tables(all: &[(Figures, Option<usize>)], aps: Option<&Value>, floor: &FloorFigures) {
    let here: Vec<String> = all
        .iter()
        .map(|(f, _)| format!("{:.1} µs, {:.2}x", f.floor.us_per_run, f.floor.cores_factor))
        .collect();
    println!(
        "\nFloor of this run (bare wasmtime, hello, fresh store + instantiate + call; {} rounds \
         before the scenarios, pooled): {:.1} µs/run on one thread (median), {} runs/s on one \
         thread, {} on {}, cores factor {:.2}x (median over rounds{}). Before each scenario: {}.",
        all.len() * FLOOR_ROUNDS,
        floor.us_per_run,
        num(floor.single_per_s, 0),
        num(floor.parallel_per_s, 0),
        floor.threads,
        floor.cores_factor,
        if floor.cores_factor < 1.0 {
            "; taken as 1.00"
        } else {
            ""
        },
        here.join("; ")
    );
    println!(
        "\n| jobs | store | variant | runs / due | lost | not run | p50 / p99 / max ms | \
         burst ms | runs/s | floor burst ms | p99 ÷ floor burst | runs/s ÷ floor | \
         vs plain p50 / p99 / runs/s |"
    );
    println!("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (f, plain) in all {
        let floor_burst = floor.burst_ms(f.jobs);
        let vs = plain.map_or("-".into(), |p| {
            let p = &all[p].0.measured;
            format!(
                "{:+.0}% / {:+.0}% / {:+.0}%",
                change(p.p50, f.measured.p50),
                change(p.p99, f.measured.p99),
                change(p.per_s, f.measured.per_s)
            )
        });
        println!(
            "| {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {vs} |",
            num(f.jobs as f64, 0),
            f.store.name(),
            if f.runaway { "runaway" } else { "plain" },
            num(f.finished as f64, 0),
            num(f.due as f64, 0),
            f.lost,
            f.not_run.values().sum::<usize>(),
            triple(&f.measured),
            num(f.measured.burst_ms, 1),
            num(f.measured.per_s, 0),
            num(floor_burst, 1),
            f.measured.p99 / floor_burst,
            f.measured.per_s / floor.per_s(),
        );
    }
    println!(
        "\nStore floor (a fresh store of N jobs, no scheduler: one burst's fires recorded \
         running, then its ends, in batches of {STORE_CHUNK}; median of {STORE_FLOOR_ROUNDS}):"
    );
    for (f, _) in all {
        if let Some(sf) = f.store_floor {
            println!(
                "- {} jobs, {}: fires {} ms, ends {} ms, {:.1} µs per run; fires ÷ floor burst {:.2}",
                num(f.jobs as f64, 0),
                f.store.name(),
                num(sf.fires_ms, 1),
                num(sf.ends_ms, 1),
                (sf.fires_ms + sf.ends_ms) * 1e3 / f.jobs as f64,
                sf.fires_ms / floor.burst_ms(f.jobs),
            );
        }
    }
    println!("\nFirst burst (left out above: warm-up), p50 / p99 / max ms and burst ms:");
    for (f, _) in all {
        println!(
            "- {} jobs, {}, {}: {}; {}",
            num(f.jobs as f64, 0),
            f.store.name(),
            if f.runaway { "runaway" } else { "plain" },
            triple(&f.first),
            num(f.first.burst_ms, 1)
        );
    }
    let Some(aps) = aps else { return };
    let func = aps.get("func").and_then(Value::as_str).unwrap_or("?");
    let version = aps
        .get("apscheduler")
        .and_then(Value::as_str)
        .unwrap_or("?");
    println!(
        "\n| jobs | wasmcron memory p50 / p99 / max ms | wasmcron SQLite | \
         APScheduler {version} memory ({func} job), submitted | APScheduler, function started | APScheduler lost |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let empty = Vec::new();
    for a in aps
        .get("aligned")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
    {
        let n = a.get("jobs").and_then(Value::as_u64).unwrap_or(0) as usize;
        let ours = |kind| {
            all.iter()
                .find(|(f, _)| f.jobs == n && f.store == kind && !f.runaway)
                .map_or("n/a".into(), |(f, _)| triple(&f.measured))
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            num(n as f64, 0),
            ours(StoreKind::Memory),
            ours(StoreKind::Sqlite),
            aps_triple(a.get("submitted_ms")),
            aps_triple(a.get("started_ms")),
            a.get("lost").map_or("n/a".into(), ToString::to_string),
        );
    }
}

fn main() {
    if !flag("--bench") {
        println!("burst bench: skipped (run with `cargo bench`)");
        return;
    }
    let seconds: u64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(10);
    assert!(
        seconds >= 2,
        "--seconds must be at least 2 (the first burst is left out)"
    );
    let jobs: Vec<usize> = arg("--jobs")
        .unwrap_or_else(|| "1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("--jobs: numbers, comma-separated"))
        .collect();
    let stores: Vec<StoreKind> = arg("--stores")
        .unwrap_or_else(|| "memory,sqlite".into())
        .split(',')
        .map(|s| match s.trim() {
            "memory" => StoreKind::Memory,
            "sqlite" => StoreKind::Sqlite,
            other => panic!("--stores: memory or sqlite, not {other}"),
        })
        .collect();
    let runaway = flag("--runaway");
    if flag("--log") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_writer(std::io::sink)
            .try_init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let floor_runtime = Runtime::new(
        RuntimeConfig::default(),
        Arc::new(wasmcron::store::MemoryKv::default()),
    )
    .expect("runtime");
    let floor = Arc::new(
        Floor::new(floor_runtime.engine(), wasmcron_tests::plugins::HELLO).expect("floor"),
    );
    eprintln!(
        "aligned bursts: {seconds} s per scenario, jobs {jobs:?}, stores {}, runaway {runaway}",
        stores
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut all: Vec<(Figures, Option<usize>)> = Vec::new();
    let mut run_floor = FloorSamples::default();
    for &n in &jobs {
        for &kind in &stores {
            let mut variants = vec![false];
            if runaway {
                variants.push(true);
            }
            let mut plain = None;
            for hostile in variants {
                let was_idle = idle(Duration::from_secs(2));
                let samples = measure_floor(&floor);
                run_floor.extend(&samples);
                let floor_figures = FloorFigures {
                    idle: was_idle,
                    ..samples.figures()
                };
                eprintln!(
                    "{n} jobs, {}, {}: floor {:.1} µs/run, cores factor {:.2}; before it, \
                     idle: {:.0} ms/s of CPU here, {:.0} elsewhere, {:.0} stolen, {} threads",
                    kind.name(),
                    if hostile { "runaway" } else { "plain" },
                    floor_figures.us_per_run,
                    floor_figures.cores_factor,
                    was_idle.cpu_ms_per_s,
                    was_idle.others_ms_per_s,
                    was_idle.steal_ms_per_s,
                    was_idle.threads
                );
                let (_, steal_before) = machine_ticks();
                let t = Instant::now();
                let mut f = rt.block_on(aligned(n, kind, hostile, seconds, floor_figures));
                f.steal_ms_per_s = (machine_ticks().1.saturating_sub(steal_before)) as f64 * 10.0
                    / t.elapsed().as_secs_f64();
                eprintln!(
                    "  p99 {:.1} ms, {:.0} ms/s stolen meanwhile",
                    f.measured.p99, f.steal_ms_per_s
                );
                let index = all.len();
                all.push((f, plain));
                if !hostile {
                    plain = Some(index);
                }
            }
        }
    }
    let aps = if flag("--skip-apscheduler") {
        None
    } else {
        aps(seconds, &jobs)
    };
    let run_floor = run_floor.figures();
    for (f, plain) in &all {
        let plain = plain.map(|p| &all[p].0);
        println!("{}", figures_json(f, plain, &run_floor));
    }
    if let Some(a) = &aps {
        for scenario in a
            .get("aligned")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut line = scenario.clone();
            if let Some(obj) = line.as_object_mut() {
                obj.insert("bench".into(), "burst".into());
                obj.insert("scenario".into(), "aligned".into());
                obj.insert("variant".into(), "apscheduler".into());
                obj.insert(
                    "apscheduler".into(),
                    a.get("apscheduler").cloned().unwrap_or_default(),
                );
                obj.insert("func".into(), a.get("func").cloned().unwrap_or_default());
            }
            println!("{line}");
        }
    }
    println!(
        "\nAligned bursts, {seconds} s per scenario (bursts 1..{} counted; burst 0 left out as \
         warm-up); lateness = started_at − scheduled_at from the run history",
        seconds - 1
    );
    print_tables(&all, aps.as_ref(), &run_floor);
}
