//! The due-queue: a min-heap of (instant, item), O(log n) per push and pop.
//!
//! Entries are never removed from the middle: a job that is rescheduled,
//! paused or removed bumps its generation, and stale entries are dropped
//! when they reach the top. That keeps every change O(log n) and the timer
//! from scanning jobs.

use crate::store::RunRecord;
use chrono::{DateTime, Utc};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;

/// What comes due.
#[derive(Debug)]
pub(crate) enum Due {
    /// A job's scheduled fire, valid while its generation is current.
    Fire { job_id: Arc<str>, generation: u64 },
    /// A pending run (a retry, or one recovered at start) to start.
    Run(Box<RunRecord>),
}

#[derive(Debug)]
struct Entry {
    at: DateTime<Utc>,
    seq: u64,
    due: Due,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Earliest first; equal instants in insertion order.
#[derive(Debug, Default)]
pub(crate) struct DueQueue {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl DueQueue {
    pub(crate) fn push(&mut self, at: DateTime<Utc>, due: Due) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            due,
        }));
    }

    /// The earliest instant in the queue.
    pub(crate) fn peek_at(&self) -> Option<DateTime<Utc>> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Pops the earliest entry if it is due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, Due)> {
        if self.peek_at()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(e)| (e.at, e.due))
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}
