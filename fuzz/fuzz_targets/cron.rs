//! Any text as a cron expression: parsing either refuses it with an error
//! or gives a schedule whose words can be written and whose fires can be
//! walked, in zones with daylight saving of every shape.

#![no_main]

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use libfuzzer_sys::fuzz_target;
use wasmcron::trigger::cron::CronSchedule;
use wasmcron_fuzz::starts;

/// UTC (where every fire must match its own fields), two zones with an
/// hour's shift on different dates, one with a half-hour shift, and one
/// with a negative-offset hemisphere flip.
const ZONES: [Tz; 5] = [
    Tz::UTC,
    Tz::Europe__Berlin,
    Tz::America__New_York,
    Tz::Australia__Lord_Howe,
    Tz::America__Santiago,
];

/// Fires followed from each start.
const STEPS: usize = 3;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let schedule = match CronSchedule::parse(text, Tz::UTC) {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    // The words, the structured description and the OR warning are
    // written from the same fields; none may panic, and the description's
    // day rule must agree with the fires below.
    let description = schedule.describe();
    assert_eq!(description.words, schedule.explain());
    let _ = schedule.warning();
    for tz in ZONES {
        let Ok(zoned) = CronSchedule::parse(text, tz) else {
            panic!("{text:?} parses in UTC but not in {tz}");
        };
        for from in starts() {
            let mut at: DateTime<Utc> = from;
            for _ in 0..STEPS {
                // A schedule that was accepted always fires again: parsing
                // refuses those that never can, and any that can fires
                // within 28 years.
                let Some(next) = zoned.next_after(at) else {
                    panic!("{text:?} in {tz}: no fire after {at}");
                };
                assert!(next > at, "{text:?} in {tz}: next_after({at}) = {next}");
                if tz == Tz::UTC {
                    // No daylight saving: each fire is a wall time that
                    // matches every field, on a day the description names.
                    let wall = next.naive_utc();
                    assert!(zoned.matches_wall(wall), "{text:?}: {next} does not match");
                    assert!(
                        description.days.includes(wall.date())
                            && description.months & (1 << wall.month()) != 0,
                        "{text:?}: {next} is not on a day the description names"
                    );
                }
                at = next;
            }
        }
    }
});
