//! Two lanes for runs, so runaway guests cannot make healthy jobs late.
//!
//! ```text
//! fire ──worker permit──▶ fast lane (the scheduler's runtime)
//!                           │ > DEMOTE_AFTER_SLICES epoch slices of guest CPU,
//!                           │ or running for > DEMOTE_AFTER
//!                           ▼ worker permit released, slow permit taken
//!                         slow lane (own runtime, threads at SCHED_IDLE / nice 19)
//! ```
//!
//! Every run starts in the fast lane, under one of the `workers` permits.
//! A run that keeps the CPU (a guest computing for more than a few 10 ms
//! epoch slices) or keeps its worker (a guest waiting for seconds) is
//! *demoted*: its future, still running, is handed to the slow lane and
//! polled there from the point it had reached, and its worker permit goes
//! to the next fire. The slow lane is a tokio runtime of its own whose
//! threads run at the lowest OS priority (Linux's `SCHED_IDLE` policy,
//! else nice 19), so the kernel gives the fast
//! lane's threads the CPU whenever they want it, and runaway guests share
//! what is left. It has its own bound (as many runs as `workers`); a run
//! due for demotion while it is full stays where it is and tries again at
//! its next slice.
//!
//! Every guarantee holds in both lanes: fuel, memory and the epoch
//! deadline live in the run's `Store`, which moves with the future; the
//! timeout's timer stays with the runtime that created it; `max_instances`
//! counts runs, not lanes; shutdown cancels a demoted run the same way.
//!
//! A job whose last run left the fast lane (or, started in the slow lane,
//! would have: as hot or as long) starts its next run in the slow lane,
//! when it has a free place: a runaway job fired at the instant of a
//! burst would otherwise take a fast-lane worker and up to
//! [`DEMOTE_AFTER_SLICES`] slices of the fast lane's CPU at every fire,
//! right when the healthy runs need them (docs/BENCHMARKS.md, "A runaway
//! guest beside the bursts"). A slow-started run that finishes as a
//! healthy one would (neither hot nor long) sends the job's next run back
//! to the fast lane.
//!
//! Listener plugin deliveries run in the slow lane from the start, under
//! a bound of their own ([`MAX_LISTENER_RUNS`]): they are notifications,
//! and one that hangs for its whole timeout must not take CPU or workers
//! from runs.
//!
//! Measured with `cargo bench -p wasmcron-tests --bench contention`
//! (docs/BENCHMARKS.md): 1,000 healthy one-second jobs beside 10 spinning
//! and 3 sleeping guests.

use crate::runtime::lane::count_slices;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Epoch slices (10 ms ticks that found the guest computing) after which
/// a run leaves the fast lane. A `hello` run computes for microseconds and
/// almost never sees a tick; three slices are 20 to 30 ms of CPU.
pub(crate) const DEMOTE_AFTER_SLICES: u32 = 3;
/// Wall-clock age after which a run leaves the fast lane even when it
/// computes nothing (a guest sleeping or waiting on the network): it would
/// otherwise hold a worker the healthy jobs need.
pub(crate) const DEMOTE_AFTER: Duration = Duration::from_secs(1);
/// How often a run due for demotion retries while the slow lane is full
/// and the run is not computing (a computing one retries every slice).
const RETRY_FULL: Duration = Duration::from_millis(100);
/// The slow lane's threads' nice value: the lowest priority.
#[cfg(target_os = "linux")]
const SLOW_NICE: i32 = 19;
/// Listener plugin deliveries at once, all in the slow lane.
pub(crate) const MAX_LISTENER_RUNS: usize = 8;

/// Sandboxes a scheduler with `workers` may have live at once: `workers`
/// in the fast lane, as many demoted ones in the slow lane, and the
/// listener deliveries. The engine's instance pool must have this many
/// slots (`EngineOptions::max_concurrent_runs`).
pub fn max_live_runs(workers: usize) -> usize {
    workers.max(1).saturating_mul(2) + MAX_LISTENER_RUNS
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How a run given to [`Lanes::run`] ended.
#[derive(Debug)]
pub(crate) enum Ended<T> {
    /// It completed, in whichever lane.
    Finished(T),
    /// Shutdown stopped it.
    Stopped,
    /// The task running it panicked; says how.
    Failed(String),
}

/// The slow lane: a runtime of its own and its bound.
struct SlowLane {
    /// Taken at drop, to shut down without blocking (it may be dropped
    /// inside the scheduler's runtime).
    runtime: Option<tokio::runtime::Runtime>,
    handle: Handle,
    permits: Arc<Semaphore>,
}

impl Drop for SlowLane {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The fast and slow lanes of one scheduler.
pub(crate) struct Lanes {
    /// `None` when its runtime could not be started: everything then runs
    /// in the fast lane, as before lanes existed.
    slow: Option<SlowLane>,
    listener_permits: Arc<Semaphore>,
    demoted: AtomicU64,
    started_slow: AtomicU64,
}

/// A run's end from [`Lanes::run`], and whether its job's next run should
/// start in the slow lane.
#[derive(Debug)]
pub(crate) struct Ran<T> {
    /// How it ended.
    pub(crate) ended: Ended<T>,
    /// It was demoted, or it started in the slow lane and ran hot or long
    /// enough that it would have been.
    pub(crate) runaway: bool,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("slow", &self.slow.is_some())
            .field("demoted", &self.demoted.load(Ordering::Relaxed))
            .field("started_slow", &self.started_slow.load(Ordering::Relaxed))
            .finish()
    }
}

impl Lanes {
    /// Starts the slow lane, bounded to `workers` runs, on as many threads
    /// as there are cores (they only get CPU the fast lane leaves).
    pub(crate) fn new(workers: usize) -> Self {
        let threads = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("wasmcron-slow")
            .on_thread_start(lower_priority)
            .enable_all()
            .build();
        let slow = match built {
            Ok(runtime) => Some(SlowLane {
                handle: runtime.handle().clone(),
                runtime: Some(runtime),
                permits: Arc::new(Semaphore::new(workers.max(1))),
            }),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the slow lane; long and CPU-heavy runs will share the scheduler's threads");
                None
            }
        };
        Self {
            slow,
            listener_permits: Arc::new(Semaphore::new(MAX_LISTENER_RUNS)),
            demoted: AtomicU64::new(0),
            started_slow: AtomicU64::new(0),
        }
    }

    /// Runs demoted to the slow lane since start.
    pub(crate) fn demoted(&self) -> u64 {
        self.demoted.load(Ordering::Relaxed)
    }

    /// Runs started in the slow lane since start (their job's last run was
    /// a runaway).
    pub(crate) fn started_slow(&self) -> u64 {
        self.started_slow.load(Ordering::Relaxed)
    }

    /// Where a listener delivery runs (the slow lane; the caller's runtime
    /// when there is none), with the permit that bounds deliveries,
    /// waited for. `None` only if the bound was closed, which it never is.
    pub(crate) async fn listener_slot(&self) -> Option<(Handle, OwnedSemaphorePermit)> {
        let handle = self
            .slow
            .as_ref()
            .map_or_else(Handle::current, |slow| slow.handle.clone());
        let permit = self.listener_permits.clone().acquire_owned().await.ok()?;
        Some((handle, permit))
    }

    /// Runs `future` (one run's guest call), starting in the fast lane
    /// under `permit` and demoting it when it runs long or hot; `stop`
    /// cancelled stops it in either lane. `job` and `run` name it in the
    /// log. With `start_slow` (its job's last run was a runaway) it starts
    /// in the slow lane instead, releasing `permit` at once, when the slow
    /// lane has a free place; else in the fast lane as any run.
    ///
    /// Not an `async fn`: `future` (a guest call's future, about 2.5 KB) is
    /// boxed here, at the call, so the future this returns holds only the
    /// box. Taken by value into an `async fn`, it was part of that
    /// function's state, and so of every run task's, which is allocated
    /// and copied whole when the task is spawned (docs/BENCHMARKS.md,
    /// eighth round).
    pub(crate) fn run<'a, T: Send + 'static>(
        &'a self,
        names: (&'a str, &'a str),
        permit: OwnedSemaphorePermit,
        stop: &'a CancellationToken,
        start_slow: bool,
        future: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Ran<T>> + Send + 'a {
        let slices = Arc::new(AtomicU32::new(0));
        let future: BoxFuture<T> = Box::pin(count_slices(slices.clone(), future));
        self.run_boxed(names, permit, stop, start_slow, slices, future)
    }

    /// [`Lanes::run`], with the future boxed and its slice counter.
    async fn run_boxed<T: Send + 'static>(
        &self,
        (job, run): (&str, &str),
        permit: OwnedSemaphorePermit,
        stop: &CancellationToken,
        start_slow: bool,
        slices: Arc<AtomicU32>,
        future: BoxFuture<T>,
    ) -> Ran<T> {
        let healthy = |ended| Ran {
            ended,
            runaway: false,
        };
        let Some(slow) = &self.slow else {
            return healthy(tokio::select! {
                v = future => Ended::Finished(v),
                () = stop.cancelled() => Ended::Stopped,
            });
        };
        if start_slow && let Ok(slow_permit) = slow.permits.clone().try_acquire_owned() {
            drop(permit);
            self.started_slow.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                job,
                run,
                "run started in the slow lane: its job's last run was a runaway"
            );
            let started = tokio::time::Instant::now();
            let ended = Self::in_slow(slow, future, slow_permit, stop).await;
            // As the fast lane would have judged it.
            let runaway = slices.load(Ordering::Relaxed) >= DEMOTE_AFTER_SLICES
                || started.elapsed() >= DEMOTE_AFTER;
            return Ran { ended, runaway };
        }
        let step = tokio::select! {
            step = UntilDemoted::new(future, &slices, &slow.permits) => step,
            () = stop.cancelled() => return healthy(Ended::Stopped),
        };
        // The worker is free once the guest is done or gone to the slow
        // lane; recording the result need not hold it.
        drop(permit);
        let (future, slow_permit, reason) = match step {
            Step::Done(v) => return healthy(Ended::Finished(v)),
            Step::Demote {
                future,
                permit,
                reason,
            } => (future, permit, reason),
        };
        self.demoted.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            job,
            run,
            reason,
            slices = slices.load(Ordering::Relaxed),
            "run demoted to the slow lane"
        );
        Ran {
            ended: Self::in_slow(slow, future, slow_permit, stop).await,
            runaway: true,
        }
    }

    /// Polls `future` to its end on the slow lane, holding `slow_permit`
    /// until then; `stop` cancelled stops it there.
    async fn in_slow<T: Send + 'static>(
        slow: &SlowLane,
        future: BoxFuture<T>,
        slow_permit: OwnedSemaphorePermit,
        stop: &CancellationToken,
    ) -> Ended<T> {
        let task = slow.handle.spawn(async move {
            let v = future.await;
            drop(slow_permit);
            v
        });
        let abort = task.abort_handle();
        tokio::select! {
            r = task => match r {
                Ok(v) => Ended::Finished(v),
                Err(e) if e.is_cancelled() => Ended::Stopped,
                Err(e) => Ended::Failed(e.to_string()),
            },
            () = stop.cancelled() => {
                // The guest's future is dropped on the slow lane at its
                // next poll (a computing guest yields every 10 ms).
                abort.abort();
                Ended::Stopped
            }
        }
    }
}

/// What [`UntilDemoted`] resolves to.
enum Step<T> {
    Done(T),
    Demote {
        future: BoxFuture<T>,
        permit: OwnedSemaphorePermit,
        reason: &'static str,
    },
}

/// Polls a run's future in the fast lane until it completes, or until it
/// is due for demotion and a slow-lane permit is free: then it returns
/// the future, still pending, to be polled on from the slow lane. Every
/// poll that returns `Pending` is a point where the guest is suspended
/// (in a host call or at an epoch yield), so handing it over is safe.
struct UntilDemoted<'a, T> {
    future: Option<BoxFuture<T>>,
    slices: &'a AtomicU32,
    permits: &'a Arc<Semaphore>,
    /// Fires at [`DEMOTE_AFTER`] (then every [`RETRY_FULL`] while the slow
    /// lane is full), waking the run when its guest is idle.
    age: Pin<Box<tokio::time::Sleep>>,
    old: bool,
}

impl<'a, T> UntilDemoted<'a, T> {
    fn new(future: BoxFuture<T>, slices: &'a AtomicU32, permits: &'a Arc<Semaphore>) -> Self {
        Self {
            future: Some(future),
            slices,
            permits,
            age: Box::pin(tokio::time::sleep(DEMOTE_AFTER)),
            old: false,
        }
    }
}

impl<T> Future for UntilDemoted<'_, T> {
    type Output = Step<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Step<T>> {
        let this = self.get_mut();
        let Some(future) = this.future.as_mut() else {
            // Already handed over; never polled again by `Lanes::run`.
            return Poll::Pending;
        };
        if let Poll::Ready(v) = future.as_mut().poll(cx) {
            return Poll::Ready(Step::Done(v));
        }
        if !this.old && this.age.as_mut().poll(cx).is_ready() {
            this.old = true;
        }
        let hot = this.slices.load(Ordering::Relaxed) >= DEMOTE_AFTER_SLICES;
        if !hot && !this.old {
            return Poll::Pending;
        }
        match this.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let reason = if hot { "cpu" } else { "long" };
                match this.future.take() {
                    Some(future) => Poll::Ready(Step::Demote {
                        future,
                        permit,
                        reason,
                    }),
                    None => Poll::Pending,
                }
            }
            Err(_) => {
                if this.old {
                    // Full: look again shortly (a computing guest also
                    // wakes us at its next slice).
                    this.old = false;
                    let at = tokio::time::Instant::now() + RETRY_FULL;
                    this.age.as_mut().reset(at);
                    if this.age.as_mut().poll(cx).is_ready() {
                        cx.waker().wake_by_ref();
                    }
                }
                Poll::Pending
            }
        }
    }
}

/// Lowers the calling thread's scheduling priority to nice 19. On Linux
/// the nice value is per thread (`setpriority(PRIO_PROCESS, tid)`); other
/// systems would apply it to the whole process, so there it is left alone.
///
/// On Linux the thread also takes the `SCHED_IDLE` policy: a nice-19
/// thread still gets a weighted share of a core that nice-0 threads want
/// (and runs a slice before a waking one preempts it), an idle-policy one
/// only what nothing else wants. Measured with the runaway bursts
/// (docs/BENCHMARKS.md, "A runaway guest beside the bursts: leftovers,
/// and a slow start"). The nice value stays as the fallback where the
/// policy cannot be set.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        if let Err(e) =
            rustix::process::setpriority_process(Some(rustix::thread::gettid()), SLOW_NICE)
        {
            tracing::warn!(error = %e, "cannot lower the slow lane's thread priority");
        }
        if let Err(e) = idle_policy() {
            tracing::warn!(error = %e, "cannot give the slow lane's thread the SCHED_IDLE policy");
        }
    }
}

/// Gives the calling thread the `SCHED_IDLE` policy (Linux: a pid of 0 is
/// the calling thread). No privilege is needed to lower a policy.
#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "sched_setscheduler through libc (rustix has no binding); its contract is met as noted"
)]
fn idle_policy() -> std::io::Result<()> {
    // SCHED_IDLE takes priority 0.
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param, read only; pid 0 is this
    // thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &raw const param) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permit(n: usize) -> OwnedSemaphorePermit {
        Arc::new(Semaphore::new(n))
            .try_acquire_owned()
            .expect("a permit")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_run_finishes_in_the_fast_lane() {
        let lanes = Lanes::new(2);
        let stop = CancellationToken::new();
        let ran = lanes
            .run(("j", "r"), permit(1), &stop, false, async { 7 })
            .await;
        assert!(matches!(ran.ended, Ended::Finished(7)));
        assert!(!ran.runaway);
        assert_eq!(lanes.demoted(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_run_is_demoted_releases_its_worker_and_finishes() {
        let lanes = Lanes::new(2);
        let stop = CancellationToken::new();
        let workers = Arc::new(Semaphore::new(1));
        let worker = workers.clone().try_acquire_owned().expect("worker");
        let ended = tokio::spawn(async move {
            let ran = lanes
                .run(("j", "r"), worker, &stop, false, async {
                    tokio::time::sleep(DEMOTE_AFTER + Duration::from_millis(500)).await;
                    std::thread::current().name().map(str::to_owned)
                })
                .await;
            assert!(ran.runaway, "a demoted run sends its job's next run slow");
            (ran.ended, lanes.demoted())
        });
        // The worker comes back once the run is demoted, before it ends.
        let again = tokio::time::timeout(DEMOTE_AFTER * 10, workers.acquire())
            .await
            .expect("the worker is released at demotion");
        drop(again);
        let (ended, demoted) = ended.await.expect("join");
        let Ended::Finished(thread) = ended else {
            panic!("{ended:?}")
        };
        assert_eq!(thread.as_deref(), Some("wasmcron-slow"));
        assert_eq!(demoted, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_ends_a_demoted_run() {
        let lanes = Lanes::new(2);
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(DEMOTE_AFTER * 2).await;
            stopper.cancel();
        });
        let ended = lanes
            .run(
                ("j", "r"),
                permit(1),
                &stop,
                false,
                std::future::pending::<()>(),
            )
            .await
            .ended;
        assert!(matches!(ended, Ended::Stopped));
        assert_eq!(lanes.demoted(), 1);
    }

    /// The slow lane's threads run under `SCHED_IDLE` (policy 5, field 41
    /// of `/proc/thread-self/stat`), the fast lane's under the default.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_slow_lanes_threads_run_at_the_idle_policy() {
        fn policy() -> Option<u32> {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
            // After the name: state is field 3, so policy (41) is the 39th.
            stat.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(38)?
                .parse()
                .ok()
        }
        let lanes = Lanes::new(1);
        let stop = CancellationToken::new();
        let ran = lanes
            .run(("j", "r"), permit(1), &stop, true, async {
                (thread_name().await, policy())
            })
            .await;
        let Ended::Finished((thread, slow)) = ran.ended else {
            panic!("{:?}", ran.ended)
        };
        assert_eq!(thread.as_deref(), Some("wasmcron-slow"));
        assert_eq!(slow, Some(libc::SCHED_IDLE as u32));
        assert_eq!(policy(), Some(libc::SCHED_OTHER as u32));
    }

    /// The thread a future's first poll ran on.
    async fn thread_name() -> Option<String> {
        std::thread::current().name().map(str::to_owned)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_started_slow_frees_its_worker_at_once_and_a_healthy_one_comes_back() {
        let lanes = Arc::new(Lanes::new(2));
        let stop = CancellationToken::new();
        let workers = Arc::new(Semaphore::new(1));
        let worker = workers.clone().try_acquire_owned().expect("worker");
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let run = {
            let (lanes, stop) = (lanes.clone(), stop.clone());
            tokio::spawn(async move {
                lanes
                    .run(("j", "r"), worker, &stop, true, async move {
                        let _ = released.await;
                        thread_name().await
                    })
                    .await
            })
        };
        // The worker is free while the run still waits: it never held it.
        let again = tokio::time::timeout(Duration::from_secs(30), workers.acquire())
            .await
            .expect("the worker is released at a slow start");
        drop(again);
        let _ = release.send(());
        let ran = run.await.expect("join");
        let Ended::Finished(thread) = ran.ended else {
            panic!("{:?}", ran.ended)
        };
        assert_eq!(thread.as_deref(), Some("wasmcron-slow"));
        assert!(
            !ran.runaway,
            "quick and cold: its job's next run starts fast"
        );
        assert_eq!((lanes.started_slow(), lanes.demoted()), (1, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_started_slow_that_runs_long_stays_a_runaway() {
        let lanes = Lanes::new(2);
        let stop = CancellationToken::new();
        let ran = lanes
            .run(("j", "r"), permit(1), &stop, true, async {
                tokio::time::sleep(DEMOTE_AFTER + Duration::from_millis(100)).await;
            })
            .await;
        assert!(matches!(ran.ended, Ended::Finished(())));
        assert!(ran.runaway);
        assert_eq!((lanes.started_slow(), lanes.demoted()), (1, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_start_with_the_slow_lane_full_starts_in_the_fast_lane() {
        let lanes = Lanes::new(1);
        let stop = CancellationToken::new();
        let full = lanes
            .slow
            .as_ref()
            .expect("a slow lane")
            .permits
            .clone()
            .try_acquire_owned()
            .expect("its one place");
        let ran = lanes
            .run(("j", "r"), permit(1), &stop, true, thread_name())
            .await;
        drop(full);
        let Ended::Finished(thread) = ran.ended else {
            panic!("{:?}", ran.ended)
        };
        assert_ne!(thread.as_deref(), Some("wasmcron-slow"));
        assert!(!ran.runaway);
        assert_eq!(lanes.started_slow(), 0);
    }
}
