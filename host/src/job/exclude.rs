//! A job's `exclude` (issue 13): the calendars it names and the dates it
//! gives inline, resolved into the [`Exclusions`] its trigger applies.

use super::{JobError, JobSpec};
use crate::trigger::calendar::{self, Calendar, Calendars, Exclusions};
use std::sync::Arc;

/// What a job's inline dates are called where a preview names what
/// skipped a fire.
pub const INLINE: &str = "exclude";

/// Resolves `spec.exclude` against `calendars`: `None` when it is empty.
/// The dates are read in `spec`'s trigger zone.
///
/// # Errors
/// [`JobError::Exclude`] naming the entry: a name that is no calendar
/// here, an entry listed twice, a date that does not parse.
pub(super) fn resolve(
    spec: &JobSpec,
    calendars: &Calendars,
) -> Result<Option<Arc<Exclusions>>, JobError> {
    resolve_entries(&spec.exclude, spec.trigger.zone(), calendars)
}

/// Resolves a job's `exclude` entries, with dates read in `zone`, against
/// `calendars`: `None` when there are none.
///
/// # Errors
/// [`JobError::Exclude`] naming the entry: a name that is no calendar
/// here, an entry listed twice, a date that does not parse.
pub fn resolve_entries(
    exclude: &[String],
    zone: chrono_tz::Tz,
    calendars: &Calendars,
) -> Result<Option<Arc<Exclusions>>, JobError> {
    if exclude.is_empty() {
        return Ok(None);
    }
    let bad = |index: usize, problem: String| JobError::Exclude { index, problem };
    let mut named = Vec::new();
    let mut dates = Vec::new();
    let mut places = Vec::new();
    for (index, entry) in exclude.iter().enumerate() {
        if exclude[..index].contains(entry) {
            return Err(bad(index, format!("'{entry}' is listed twice")));
        }
        if calendar::looks_like_date(entry) {
            dates.push(entry.clone());
            places.push(index);
            continue;
        }
        if !calendar::valid_name(entry) {
            return Err(bad(
                index,
                format!(
                    "'{entry}' is neither a date (YYYY-MM-DD, or YYYY-MM-DD..YYYY-MM-DD for a \
                     range) nor a calendar name (letters, digits, '-', '_', '.', starting with \
                     a letter)"
                ),
            ));
        }
        let Some(found) = calendars.get(entry) else {
            // A few names, not a list of hundreds in one message.
            let mut known: Vec<&str> = calendars.keys().take(10).map(String::as_str).collect();
            if calendars.len() > known.len() {
                known.push("…");
            }
            return Err(bad(
                index,
                format!(
                    "no calendar named '{entry}' (defined: {}); define it first with PUT \
                     /calendars/{entry} or [calendars.{entry}] in the jobs file",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        named.push((entry.clone(), found.clone()));
    }
    if !dates.is_empty() {
        // The calendar's own message, at the entry's place in `exclude`.
        let inline = Calendar::from_dates(&dates).map_err(|e| {
            let index = e.index().and_then(|i| places.get(i)).copied().unwrap_or(0);
            bad(index, e.problem())
        })?;
        named.push((INLINE.to_owned(), Arc::new(inline)));
    }
    Ok(Some(Arc::new(Exclusions {
        zone,
        calendars: named,
    })))
}

/// Whether `spec` names the calendar `name` in its `exclude`.
pub fn names(spec: &JobSpec, name: &str) -> bool {
    spec.exclude.iter().any(|e| e == name)
}
