//! Pausing and resuming jobs: by a person (with an optional note) or by
//! the host after failures in a row (autopause.rs calls
//! [`Scheduler::set_paused_with`]).

use super::{Scheduler, SchedulerError};
use crate::event::Event;
use crate::scheduler::JobInfo;
use crate::store::Write;

impl Scheduler {
    /// Pauses a job: it keeps its definition but does not fire.
    ///
    /// # Errors
    /// [`SchedulerError::JobNotFound`] or a store error.
    pub async fn pause_job(&self, id: &str) -> Result<JobInfo, SchedulerError> {
        self.set_paused(id, true).await
    }

    /// [`Self::pause_job`] with a person's note (why, until when), shown
    /// as the job's `paused_reason` until it is resumed, and carried by
    /// its `job-paused` event.
    ///
    /// # Errors
    /// As [`Self::pause_job`].
    pub async fn pause_job_with_note(
        &self,
        id: &str,
        note: Option<String>,
    ) -> Result<JobInfo, SchedulerError> {
        self.set_paused_with(id, true, None, note)
            .await?
            .ok_or_else(|| SchedulerError::JobNotFound(id.to_owned()))
    }

    /// Resumes a paused job; its next fire is computed from now.
    ///
    /// # Errors
    /// [`SchedulerError::JobNotFound`], [`SchedulerError::Invalid`] naming
    /// the capability when the operator's grant policy does not allow the
    /// job's grants (change them first), or a store error.
    pub async fn resume_job(&self, id: &str) -> Result<JobInfo, SchedulerError> {
        // A job the operator's grant policy no longer allows (paused at
        // start for it) stays paused until its capabilities change:
        // resumed as it is, every run would only be refused.
        let job = self.inner.lock().jobs.get(id).map(|e| e.job.clone());
        if let Some(job) = job {
            self.check_policy(&job)?;
        }
        self.set_paused(id, false).await
    }

    async fn set_paused(&self, id: &str, paused: bool) -> Result<JobInfo, SchedulerError> {
        self.set_paused_with(id, paused, None, None)
            .await?
            .ok_or_else(|| SchedulerError::JobNotFound(id.to_owned()))
    }

    /// Pauses or resumes a job; `auto` is the reason and the failed run
    /// of a pause the host makes by itself (autopause.rs), `None` for a
    /// person's, whose `note` (if any) is kept as the reason. A resume
    /// resets the job's failures in a row.
    ///
    /// `Ok(None)`: an auto-pause that found the job paused already in the
    /// store (another host counted the same failures, or a person paused
    /// it meanwhile); nothing was written or announced.
    pub(super) async fn set_paused_with(
        &self,
        id: &str,
        paused: bool,
        auto: Option<(String, String)>,
        note: Option<String>,
    ) -> Result<Option<JobInfo>, SchedulerError> {
        let note = note.filter(|_| paused && auto.is_none());
        let inner = &self.inner;
        inner.check_running()?;
        self.adopt_stored(id).await?;
        let now = inner.clock.now();
        let (job, incarnation) = inner
            .lock()
            .jobs
            .get(id)
            .map(|e| (e.job.clone(), e.incarnation.clone()))
            .ok_or_else(|| SchedulerError::JobNotFound(id.to_owned()))?;
        let next = if paused {
            None
        } else {
            job.trigger.next_after(now)
        };
        let writes = match &auto {
            // One compare-and-set: of two hosts ending the failures at
            // once, one pauses and announces it.
            Some((reason, run_id)) if paused => vec![Write::AutoPause {
                job_id: id.to_owned(),
                incarnation: incarnation.to_string(),
                reason: reason.clone(),
                run_id: run_id.clone(),
            }],
            _ => vec![
                Write::Paused {
                    job_id: id.to_owned(),
                    paused,
                },
                Write::NextRun {
                    job_id: id.to_owned(),
                    next,
                },
                Write::PauseNote {
                    job_id: id.to_owned(),
                    reason: note.clone(),
                    failures_from: (!paused).then_some(now),
                },
            ],
        };
        let written = inner.store.write(writes).await?;
        if let Some((_, run_id)) = &auto
            && written.refused.contains(run_id)
        {
            return Ok(None);
        }
        inner.pause_notes.set(
            id,
            &incarnation.to_string(),
            auto.as_ref()
                .map(|(r, _)| r.clone())
                .or_else(|| note.clone()),
        );
        inner.install(
            (*job).clone(),
            next,
            paused,
            &incarnation.to_string(),
            false,
        );
        let mut event = inner.job_event(id);
        event.reason = note;
        if let Some((reason, run_id)) = auto {
            event.reason = Some(reason);
            event.run_id = Some(run_id);
        }
        inner.events.publish(if paused {
            Event::JobPaused(event)
        } else {
            Event::JobResumed(event)
        });
        self.job(id).map(Some)
    }
}
