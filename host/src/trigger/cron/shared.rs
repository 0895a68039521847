//! One parsed schedule per distinct expression and zone, shared by every
//! job that writes it.
//!
//! Real crontabs repeat themselves: a million daily jobs have at most
//! 1,440 distinct `M H * * *` lines, and fleets of `0 * * * *` jobs share
//! one. Parsing each once makes a restart read a stored job without
//! parsing its expression again, and each job holds a pointer (8 bytes)
//! instead of its own copy (about 120 bytes with the expression's text).
//!
//! The table holds weak references: a schedule no job uses any more is
//! freed, and its entry is dropped when the table is next swept (whenever
//! it has doubled since the last sweep), so schedules that come and go
//! through the API do not accumulate.

use super::{CronError, CronSchedule};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

#[derive(Default)]
struct Table {
    by_zone: HashMap<Tz, HashMap<String, Weak<CronSchedule>>>,
    entries: usize,
    sweep_at: usize,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

/// The entries a table may reach before its first sweep.
const FIRST_SWEEP: usize = 1024;

impl CronSchedule {
    /// [`CronSchedule::parse`], sharing the result with every other caller
    /// that asked for the same `expr` (as written) and `tz` while any of
    /// them still holds it.
    ///
    /// # Errors
    /// As [`CronSchedule::parse`] (errors are not remembered).
    pub fn shared(expr: &str, tz: Tz) -> Result<Arc<Self>, CronError> {
        let mut guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        let table = guard.get_or_insert_with(Table::default);
        if let Some(found) = table
            .by_zone
            .get(&tz)
            .and_then(|m| m.get(expr))
            .and_then(Weak::upgrade)
        {
            return Ok(found);
        }
        // Parsing holds the lock: it takes microseconds, and a second
        // caller with the same expression then finds it parsed.
        let schedule = Arc::new(Self::parse(expr, tz)?);
        let replaced = table
            .by_zone
            .entry(tz)
            .or_default()
            .insert(expr.to_owned(), Arc::downgrade(&schedule));
        if replaced.is_none() {
            table.entries += 1;
        }
        if table.entries > table.sweep_at.max(FIRST_SWEEP) {
            table.sweep();
        }
        Ok(schedule)
    }
}

impl Table {
    /// Drops the entries whose schedule no job holds.
    fn sweep(&mut self) {
        self.by_zone.retain(|_, m| {
            m.retain(|_, w| w.strong_count() > 0);
            !m.is_empty()
        });
        self.entries = self.by_zone.values().map(HashMap::len).sum();
        self.sweep_at = self.entries.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_expression_and_zone_share_one_schedule() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap_or(Tz::UTC);
        let a = CronSchedule::shared("17 3 * * *", berlin).expect("valid");
        let b = CronSchedule::shared("17 3 * * *", berlin).expect("valid");
        assert!(Arc::ptr_eq(&a, &b));
        let utc = CronSchedule::shared("17 3 * * *", Tz::UTC).expect("valid");
        assert!(!Arc::ptr_eq(&a, &utc));
        assert_eq!(
            *a,
            CronSchedule::parse("17 3 * * *", berlin).expect("valid")
        );
        assert!(CronSchedule::shared("17 25 * * *", berlin).is_err());
    }

    #[test]
    fn schedules_no_job_holds_are_swept() {
        for i in 0..3 * FIRST_SWEEP {
            let expr = format!("{} {} {} * *", i % 60, (i / 60) % 24, 1 + i / 1440);
            drop(CronSchedule::shared(&expr, Tz::Pacific__Chatham).expect("valid"));
        }
        let guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        let entries = guard.as_ref().map_or(0, |t| t.entries);
        // Each sweep leaves only live entries (other tests' included), so
        // the table never holds more than about twice what is alive.
        assert!(entries <= 2 * FIRST_SWEEP + 64, "{entries}");
    }
}
