//! Where the scheduler gets the time, so tests can control it.

use chrono::{DateTime, Utc};
use std::sync::Mutex;
use tokio::sync::Notify;

/// The scheduler's notion of now, and a way to wait for a later now.
#[async_trait::async_trait]
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Waits until this clock reads `deadline` or later. An absolute
    /// deadline, not a duration: time may move between reading the clock
    /// and starting to wait, and a relative sleep would then overshoot.
    async fn sleep_until(&self, deadline: DateTime<Utc>);
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        let Ok(d) = (deadline - Utc::now()).to_std() else {
            return;
        };
        // tokio's timer counts whole milliseconds and fires on the first
        // tick at or after the deadline: measured 1.5-2 ms late on this
        // project's bench machine, for every fire. It sleeps to a little
        // before the deadline, and the last stretch is slept on a blocking
        // thread, whose sleep (the OS's) ends within tens of microseconds.
        if d > COARSE_MARGIN {
            tokio::time::sleep(d - COARSE_MARGIN).await;
        }
        let Ok(rest) = (deadline - Utc::now()).to_std() else {
            return;
        };
        // A sleep dropped early (the timer woken by a change) leaves its
        // thread sleeping out the rest: at most COARSE_MARGIN.
        if tokio::task::spawn_blocking(move || std::thread::sleep(rest))
            .await
            .is_err()
        {
            // The runtime is shutting down; its timer still works.
            tokio::time::sleep(rest).await;
        }
    }
}

/// How much before a deadline [`SystemClock`] hands from tokio's
/// millisecond timer to a precise sleep: more than the timer's lateness.
const COARSE_MARGIN: std::time::Duration = std::time::Duration::from_millis(3);

/// A clock that moves only when told to, for exact tests of firing times.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    moved: Notify,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
            moved: Notify::new(),
        }
    }

    /// Moves the clock forward by `d` and wakes every sleeper.
    pub fn advance(&self, d: chrono::Duration) {
        {
            let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
            *now += d;
        }
        self.moved.notify_waiters();
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        loop {
            let moved = self.moved.notified();
            if self.now() >= deadline {
                return;
            }
            moved.await;
        }
    }
}
