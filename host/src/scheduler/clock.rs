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
        if let Ok(d) = (deadline - Utc::now()).to_std() {
            tokio::time::sleep(d).await;
        }
    }
}

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
