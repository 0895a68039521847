//! Sandboxed runs: one fresh `wasmtime::Store` per run, limits always on.
//!
//! ```text
//! Linked component (compiled once, InstancePre) ──run(RunRequest)──▶ RunReport { Outcome, fuel, logs }
//! ```
//!
//! Each run gets a new store with a fuel budget, a memory limiter, an epoch
//! deadline and a captured stdout/stderr. The guest yields to tokio at
//! every epoch tick, so a runaway guest never holds a worker thread, and
//! the whole run sits inside a `tokio::time::timeout` as well, because
//! epoch and fuel checks only run inside guest code: a guest blocked in a
//! host call (a WASI sleep, say) is stopped by the outer timeout.

pub mod bindings;
pub mod capture;
pub mod component;
pub mod egress;
pub mod engine;
pub mod grants;
mod guest;
mod host;
pub mod http;
pub mod kv;
pub mod lane;
pub mod limits;
pub mod outcome;
pub mod policy;
mod state;

pub use capture::{LogLevel, LogRecord, LogSource};
pub use component::{Linked, Runnable, WitVersion, World};
pub use engine::{Allocator, EngineOptions, pagemap_scan_available};
pub use host::{MAX_KV_KEY, MAX_KV_VALUE};
pub use limits::Limits;
pub use outcome::{Outcome, OutcomeKind, RunReport};
pub use state::RunState;

// The host speaks the newest version of the package; `guest.rs` hands a
// 0.1.0 component what 0.1.0 has.
use bindings::v0_2::wasmcron::plugin::types::RunContext;
pub use bindings::v0_2::wasmcron::plugin::types::{
    EventKind, JobEvent, ParentRun, RunCause as WitRunCause, Timestamp,
};
pub(crate) use capture::Capture;
use chrono::{DateTime, Utc};
use grants::Grants;
use guest::Invocation;
use kv::KvStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::Linker;
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

/// How often the epoch advances: the granularity of the timeout check and
/// of the guest's yields to the async executor.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Fuel injected into a running guest at a time: the precision of the
/// fuel a run stopped by its timeout reports.
const FUEL_SLICE: u64 = 10_000_000;

/// wasmtime's default bound on the bytes one host call copies out of a
/// guest.
const DEFAULT_HOSTCALL_FUEL: usize = 128 << 20;

/// Outputs longer than this are cut (and the cut marked) before they are
/// reported; the guest's own memory limit bounds what we lift first.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Engine and allocator settings.
    pub engine: EngineOptions,
    /// Per-run budget for captured output, in bytes.
    pub log_budget: usize,
    /// The operator's grant policy, checked again as each run builds its
    /// sandbox (a job stored under a wider policy gets no more).
    pub policy: Arc<policy::GrantPolicy>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            engine: EngineOptions::default(),
            log_budget: capture::DEFAULT_LOG_BUDGET,
            policy: Arc::default(),
        }
    }
}

/// One invocation to perform.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The job the run belongs to; names its kv namespace.
    pub job_id: String,
    /// This run's id.
    pub run_id: String,
    /// When the fire was due.
    pub scheduled_at: DateTime<Utc>,
    /// 1 for a first attempt.
    pub attempt: u32,
    /// The job's arguments, JSON text.
    pub args: String,
    /// Why the run happened (a 0.2.0 guest reads it; 0.1.0 has no field
    /// for it).
    pub cause: WitRunCause,
    /// For a chained run, the run whose end started it (0.2.0 only).
    pub parent: Option<ParentRun>,
    /// Limits for this run.
    pub limits: Limits,
    /// What the run may reach; `Grants::default()` for nothing.
    pub grants: Arc<Grants>,
}

/// Compiles plugins and runs them. One per process; cheap to share by
/// reference across tasks.
pub struct Runtime {
    engine: Engine,
    linker: Linker<RunState>,
    kv: Arc<dyn KvStore>,
    allocator: Allocator,
    log_budget: usize,
    policy: Arc<policy::GrantPolicy>,
    ticker_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("allocator", &self.allocator)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine and the linker with WASI and our host imports, and
    /// starts the epoch ticker.
    ///
    /// # Errors
    /// When the engine cannot be created or the imports cannot be linked.
    pub fn new(config: RuntimeConfig, kv: Arc<dyn KvStore>) -> wasmtime::Result<Self> {
        let (engine, allocator) = engine::build(&config.engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // Linked for every plugin, refused per request: a job without an
        // http grant gets `HTTP-request-denied` for every host.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        // ...and the constructors that make the host hold memory check the
        // grant and charge the run (`runtime::http`).
        http::gate_http(&mut linker)?;
        // Our worlds' imports, in both versions of the package; `log` by
        // hand, so that a guest's fields are read from its memory rather
        // than lifted whole (`host.rs`).
        host::add_to_linker(&mut linker)?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), ticker_stop.clone())?;
        Ok(Self {
            engine,
            linker,
            kv,
            allocator,
            log_budget: config.log_budget,
            policy: config.policy,
            ticker_stop,
        })
    }

    /// The operator's grant policy (`wasmcron run --allow-*`).
    pub fn policy(&self) -> &policy::GrantPolicy {
        &self.policy
    }

    /// The shared engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Which allocator the engine uses.
    pub fn allocator(&self) -> Allocator {
        self.allocator
    }

    pub(crate) fn linker(&self) -> &Linker<RunState> {
        &self.linker
    }

    /// Runs `plugin` once. Never fails: every way a run can end, including
    /// the guest failing to start, is an [`Outcome`].
    pub async fn run(&self, plugin: &(impl Runnable + ?Sized), request: &RunRequest) -> RunReport {
        self.run_capturing(plugin, request, self.new_capture())
            .await
    }

    /// An empty capture buffer with this runtime's log budget, for
    /// [`Runtime::run_capturing`].
    pub(crate) fn new_capture(&self) -> Capture {
        Capture::new(self.log_budget)
    }

    /// [`Runtime::run`] capturing into `capture`, which the caller keeps a
    /// handle on to show the logs while the run goes
    /// ([`Capture::snapshot`]).
    pub(crate) async fn run_capturing(
        &self,
        plugin: &(impl Runnable + ?Sized),
        request: &RunRequest,
        capture: Capture,
    ) -> RunReport {
        let fired_at = Utc::now();
        let ctx = RunContext {
            job_id: request.job_id.clone(),
            run_id: request.run_id.clone(),
            scheduled_at: timestamp(request.scheduled_at),
            fired_at: timestamp(fired_at),
            attempt: request.attempt,
            args: request.args.clone(),
            cause: request.cause,
            parent: request.parent.clone(),
        };
        self.invoke(
            plugin,
            &request.job_id,
            &request.limits,
            &request.grants,
            Invocation::Job(ctx),
            capture,
        )
        .await
    }

    /// Delivers `event` to a listener plugin, in the same sandbox as a job
    /// run. Its kv namespace is `listener/NAME`. A successful delivery's
    /// outcome is `Succeeded` with empty output. A 0.1.0 listener gets the
    /// event as 0.1.0 has it: `run-recovered` as `run-succeeded` and
    /// `job-paused` as `run-failed` (their outcomes, `recovered` and
    /// `paused`, say which).
    pub async fn deliver(
        &self,
        plugin: &(impl Runnable + ?Sized),
        event: JobEvent,
        limits: &Limits,
    ) -> RunReport {
        let namespace = format!("listener/{}", plugin.name());
        let nothing = Arc::new(Grants::default());
        self.invoke(
            plugin,
            &namespace,
            limits,
            &nothing,
            Invocation::Listener(event),
            self.new_capture(),
        )
        .await
    }

    async fn invoke(
        &self,
        plugin: &(impl Runnable + ?Sized),
        kv_namespace: &str,
        limits: &Limits,
        grants: &Arc<Grants>,
        invocation: Invocation,
        capture: Capture,
    ) -> RunReport {
        let started = Instant::now();
        let state = match RunState::new(
            kv_namespace.to_owned(),
            limits.memory_bytes,
            capture.clone(),
            self.kv.clone(),
            grants,
            &self.policy,
        ) {
            Ok(state) => state,
            Err(err) => {
                // The host's side is missing (a directory, a secret); it may
                // be fixed before the next attempt, so retrying is allowed.
                let captured = capture.finish();
                return RunReport {
                    outcome: Outcome::Failed {
                        message: err.to_string(),
                        retryable: true,
                    },
                    fuel_consumed: 0,
                    duration: started.elapsed(),
                    logs: captured.records,
                    logs_dropped_bytes: captured.dropped_bytes,
                    logs_dropped_records: captured.dropped_records,
                };
            }
        };
        if !state.secrets.is_empty() {
            capture.set_secrets(&state.secrets);
        }
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Compiled code keeps its fuel count in a register and stores it only
        // at calls and when its injected fuel runs out, so a tight loop
        // stopped by its deadline would report the fuel of its first
        // instructions. Injecting it in slices makes the stored count exact
        // to within one slice (and adds a yield per slice).
        let _ = store.fuel_async_yield_interval(Some(FUEL_SLICE));
        // Only fails when fuel is disabled in the engine, and it never is.
        let fuel_set = store.set_fuel(limits.fuel).is_ok();
        // What one host call (or the run's result) may copy out of the
        // guest: wasmtime's 128 MiB, or the job's own memory limit if larger,
        // so an output that fits in the guest is lifted and then cut.
        store.set_hostcall_fuel(
            usize::try_from(limits.memory_bytes)
                .unwrap_or(usize::MAX)
                .max(DEFAULT_HOSTCALL_FUEL),
        );
        let deadline = started + limits.timeout;
        store.set_epoch_deadline(1);
        // The scheduler's lanes count the slices a run uses (lane.rs).
        let slices = lane::counter();
        store.epoch_deadline_callback(move |mut ctx| {
            if let Some(slices) = &slices {
                slices.fetch_add(1, Ordering::Relaxed);
            }
            if Instant::now() >= deadline {
                ctx.data_mut().timed_out = true;
                Err(wasmtime::Error::msg("run timed out"))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let result = {
            let call = guest::call(&mut store, plugin.linked(), plugin.name(), &invocation);
            tokio::time::timeout(limits.timeout, call).await
        };

        let fuel_consumed = if fuel_set {
            limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0))
        } else {
            0
        };
        let outcome = match result {
            Err(_elapsed) => Outcome::TimedOut,
            Ok(Ok(Ok(output))) => Outcome::Succeeded {
                output: cut_output(output),
            },
            Ok(Ok(Err(err))) => Outcome::Failed {
                message: cut_output(err.message),
                retryable: err.retryable,
            },
            Ok(Err(err)) => classify(&err, store.data(), &capture),
        };
        let secrets = std::mem::take(&mut store.data_mut().secrets);
        drop(store);
        let mut captured = capture.finish();
        let mut outcome = outcome;
        if !secrets.is_empty() {
            scrub(&mut outcome, &mut captured.records, &secrets);
        }
        RunReport {
            outcome,
            fuel_consumed,
            duration: started.elapsed(),
            logs: captured.records,
            logs_dropped_bytes: captured.dropped_bytes,
            logs_dropped_records: captured.dropped_records,
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// A thread, not a tokio task: the ticker must keep time even when every
/// tokio worker is busy, since the ticks are what make busy guests yield.
fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("wasmcron-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .map(|_| ())
}

/// Maps a trap or host error to the outcome that explains it. The flags
/// set by the limiter and the epoch callback are checked first: they say
/// *why* the guest was stopped, whatever the trap looks like.
fn classify(err: &wasmtime::Error, state: &RunState, capture: &Capture) -> Outcome {
    if state.timed_out {
        return Outcome::TimedOut;
    }
    if state.limiter.hit || err.downcast_ref::<limits::MemoryLimitExceeded>().is_some() {
        return Outcome::MemoryLimit;
    }
    // `exit(code)` (WASI `exit`): the guest asked to end, it did not crash.
    if let Some(wasmtime_wasi::I32Exit(code)) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return if *code == 0 {
            capture.note(
                LogLevel::Info,
                "[wasmcron] the guest called exit(0) instead of returning: the run succeeded \
                 with no output"
                    .to_owned(),
            );
            Outcome::Succeeded {
                output: String::new(),
            }
        } else {
            Outcome::Failed {
                message: format!("the guest called exit with a non-zero status ({code})"),
                retryable: false,
            }
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Outcome::OutOfFuel,
        Some(trap) => {
            let mut message = trap.to_string();
            if let Some(panic) = capture.panic_message() {
                message = format!("{panic} ({message})");
            }
            Outcome::Trapped { message }
        }
        None => Outcome::Trapped {
            message: format!("{err:#}"),
        },
    }
}

/// Replaces secret values wherever a run's report could carry them out:
/// log lines, log fields, output and error messages. A value split across
/// two writes to stdout is still caught, since lines are joined first.
fn scrub(outcome: &mut Outcome, logs: &mut [LogRecord], secrets: &[(String, String)]) {
    for record in logs.iter_mut() {
        grants::redact(&mut record.message, secrets);
        for (_, v) in &mut record.fields {
            grants::redact(v, secrets);
        }
    }
    match outcome {
        Outcome::Succeeded { output: text }
        | Outcome::Failed { message: text, .. }
        | Outcome::Trapped { message: text } => grants::redact(text, secrets),
        _ => {}
    }
}

/// A WIT timestamp.
pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanoseconds: t.timestamp_subsec_nanos(),
    }
}

fn cut_output(mut s: String) -> String {
    if s.len() <= MAX_OUTPUT {
        return s;
    }
    let mut end = MAX_OUTPUT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let cut = s.len() - end;
    s.truncate(end);
    s.push_str(&format!("…[output cut: {cut} more bytes]"));
    s
}
