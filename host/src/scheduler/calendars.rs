//! Named calendars (issue 13): kept with the jobs in the store, resolved
//! into the triggers of the jobs that name them in `exclude`.
//!
//! A calendar changed or defined moves the next fire of every job naming
//! it (the fire it had may now be excluded, or an excluded day freed); a
//! calendar some job names cannot be removed. On a shared store a change
//! bumps the jobs revision, and the other hosts take it in their sync
//! (reload.rs).

use super::{Inner, Scheduler, SchedulerError};
use crate::job::exclude;
use crate::store::Write;
use crate::trigger::calendar::{self, Calendar, CalendarSpec, Calendars};
use std::sync::Arc;

/// A calendar and the jobs that name it, as the API shows it: its name,
/// its spec's fields as written ([`CalendarSpec`]) and `jobs`.
///
/// The spec's fields are listed here rather than flattened in: the
/// OpenAPI schema of a flattened spec is an `allOf` with the spec's own
/// schema, which forbids other properties (the spec refuses unknown
/// fields), so no answer could have matched it (schemathesis found it).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CalendarInfo {
    /// Its name.
    pub name: String,
    /// [`CalendarSpec::dates`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<String>,
    /// [`CalendarSpec::days`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    /// [`CalendarSpec::description`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The ids of the jobs whose `exclude` names it, sorted.
    pub jobs: Vec<String>,
}

impl Inner {
    /// The calendars now (a snapshot; changes replace it whole).
    pub(super) fn calendars(&self) -> Arc<Calendars> {
        self.calendars
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_calendars(&self, calendars: Calendars) {
        *self.calendars.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(calendars);
    }

    fn calendar_info(&self, name: &str, calendar: &Calendar) -> CalendarInfo {
        let mut jobs: Vec<String> = self
            .lock()
            .jobs
            .values()
            .filter(|e| exclude::names(&e.job.spec, name))
            .map(|e| e.job.spec.id.clone())
            .collect();
        jobs.sort_unstable();
        let CalendarSpec {
            dates,
            days,
            description,
        } = calendar.spec().clone();
        CalendarInfo {
            name: name.to_owned(),
            dates,
            days,
            description,
            jobs,
        }
    }

    /// Reads the store's calendars into the scheduler; one that no longer
    /// checks is logged and left out (the jobs naming it are then refused
    /// as invalid, and kept untouched in the store). Returns whether any
    /// changed.
    pub(super) async fn load_calendars(&self) -> Result<bool, SchedulerError> {
        let mut loaded = Calendars::new();
        for (name, json) in self.store.calendars().await? {
            let checked = serde_json::from_str::<CalendarSpec>(&json)
                .map_err(|e| e.to_string())
                .and_then(|spec| Calendar::new(&spec).map_err(|e| e.to_string()));
            match checked {
                Ok(c) => {
                    loaded.insert(name, Arc::new(c));
                }
                Err(error) => {
                    tracing::error!(calendar = %name, %error, "stored calendar is no longer valid; leaving it out");
                }
            }
        }
        let changed = *self.calendars() != loaded;
        if changed {
            self.set_calendars(loaded);
        }
        Ok(changed)
    }

    /// Rebuilds the trigger of every job naming one of `names` with the
    /// calendars now, and moves its next fire to what they allow from
    /// now, writing it when it moved.
    pub(super) async fn rebind(&self, names: &[&str]) -> Result<(), SchedulerError> {
        let calendars = self.calendars();
        let now = self.clock.now();
        let mut writes = Vec::new();
        {
            let mut state = self.lock();
            let affected: Vec<_> = state
                .jobs
                .values()
                .filter(|e| names.iter().any(|n| exclude::names(&e.job.spec, n)))
                .map(|e| {
                    (
                        e.job.clone(),
                        e.next_run,
                        e.paused,
                        e.incarnation.to_string(),
                    )
                })
                .collect();
            for (old, next_run, paused, incarnation) in affected {
                let job = match old.spec.validate_with(
                    old.created_at,
                    &self.config.default_limits,
                    &calendars,
                ) {
                    Ok(job) => job,
                    Err(err) => {
                        tracing::error!(job = %old.spec.id, error = %err, "job no longer valid with the calendars now; keeping it as it was");
                        continue;
                    }
                };
                let next = if paused {
                    None
                } else {
                    job.trigger.next_after(now)
                };
                let id = job.spec.id.clone();
                if next.is_none() && !paused && job.trigger.preview_after(now).is_some() {
                    tracing::warn!(job = %id, "every fire of the job for 3,660 days with a fire in a row falls on days its exclude excludes: it has no next fire until a calendar frees a day");
                }
                Self::install_locked(&mut state, job, next, paused, &incarnation, false);
                if next != next_run && !paused {
                    writes.push(Write::NextRun { job_id: id, next });
                }
            }
        }
        self.wake.notify_one();
        if !writes.is_empty() {
            self.store.write(writes).await?;
        }
        Ok(())
    }
}

impl Scheduler {
    /// The calendars now, checked (what jobs' `exclude` resolve against).
    pub fn calendar_set(&self) -> Arc<Calendars> {
        self.inner.calendars()
    }

    /// Every calendar, by name.
    pub fn calendars(&self) -> Vec<CalendarInfo> {
        let inner = &self.inner;
        inner
            .calendars()
            .iter()
            .map(|(name, c)| inner.calendar_info(name, c))
            .collect()
    }

    /// One calendar.
    ///
    /// # Errors
    /// [`SchedulerError::CalendarNotFound`].
    pub fn calendar(&self, name: &str) -> Result<CalendarInfo, SchedulerError> {
        let inner = &self.inner;
        let calendars = inner.calendars();
        let c = calendars
            .get(name)
            .ok_or_else(|| SchedulerError::CalendarNotFound(name.to_owned()))?;
        Ok(inner.calendar_info(name, c))
    }

    /// Defines calendar `name`, or replaces it, and moves the next fire of
    /// the jobs naming it. Returns it and whether it is new.
    ///
    /// # Errors
    /// [`SchedulerError::BadRequest`] for a bad name (field `name`) or
    /// spec (fields `dates[i]`, `days[i]`); the store's errors.
    pub async fn put_calendar(
        &self,
        name: &str,
        spec: CalendarSpec,
    ) -> Result<(CalendarInfo, bool), SchedulerError> {
        let inner = &self.inner;
        inner.check_running()?;
        if name == exclude::INLINE {
            return Err(SchedulerError::BadRequest {
                field: "name".into(),
                problem: format!(
                    "name: '{name}' is reserved (previews name a job's inline dates so); pick \
                     another name"
                ),
            });
        }
        if !calendar::valid_name(name) {
            return Err(SchedulerError::BadRequest {
                field: "name".into(),
                problem: format!(
                    "name: '{name}' is not a calendar name; use 1-64 letters, digits, '-', '_' \
                     or '.', starting with a letter (e.g. 'holidays')"
                ),
            });
        }
        let checked = Calendar::new(&spec).map_err(|e| SchedulerError::BadRequest {
            field: e.field(),
            problem: e.to_string(),
        })?;
        let json = serde_json::to_string(&spec)
            .map_err(|e| SchedulerError::Store(crate::store::StoreError::Backend(e.to_string())))?;
        inner.store.put_calendar(name, Some(&json)).await?;
        let checked = Arc::new(checked);
        let mut calendars = (*inner.calendars()).clone();
        let created = calendars.insert(name.to_owned(), checked.clone()).is_none();
        inner.set_calendars(calendars);
        inner.rebind(&[name]).await?;
        Ok((inner.calendar_info(name, &checked), created))
    }

    /// Removes calendar `name`.
    ///
    /// # Errors
    /// [`SchedulerError::CalendarNotFound`]; [`SchedulerError::CalendarInUse`]
    /// while a job names it (change or remove those jobs first).
    pub async fn delete_calendar(&self, name: &str) -> Result<(), SchedulerError> {
        let inner = &self.inner;
        inner.check_running()?;
        let info = self.calendar(name)?;
        if !info.jobs.is_empty() {
            return Err(SchedulerError::CalendarInUse {
                name: name.to_owned(),
                jobs: info.jobs,
            });
        }
        inner.store.put_calendar(name, None).await?;
        let mut calendars = (*inner.calendars()).clone();
        calendars.remove(name);
        inner.set_calendars(calendars);
        Ok(())
    }
}
