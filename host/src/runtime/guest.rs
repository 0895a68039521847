//! Calling into a guest, in the version of the package it targets.
//!
//! The host speaks 0.2.0 (the newest): a run's context and a listener's
//! event are built as 0.2.0 values, and handed to a 0.1.0 component as
//! that version has them: the context without `cause` and `parent`, a
//! recovery as `run-succeeded` and an auto-pause as `run-failed` (their
//! outcome strings, `recovered` and `paused`, say which, as before 0.2.0).

use super::Linked;
use super::bindings::v0_1::wasmcron::plugin::types as t01;
use super::bindings::v0_2::wasmcron::plugin::types as t02;
use super::state::RunState;
use wasmtime::Store;

/// What a sandboxed call does.
pub(super) enum Invocation {
    /// Run a job with this context.
    Job(t02::RunContext),
    /// Deliver this event to a listener.
    Listener(t02::JobEvent),
}

/// Instantiates `linked` in `store` and makes the call: the guest's own
/// result inside, a trap or host error outside. A listener's error is a
/// permanent failure.
pub(super) async fn call(
    store: &mut Store<RunState>,
    linked: &Linked,
    plugin: &str,
    invocation: &Invocation,
) -> wasmtime::Result<Result<String, t02::JobError>> {
    match (invocation, linked) {
        (Invocation::Job(ctx), Linked::JobV0_2(pre)) => {
            let job = pre.instantiate_async(&mut *store).await?;
            job.wasmcron_plugin_runner().call_run(store, ctx).await
        }
        (Invocation::Job(ctx), Linked::JobV0_1(pre)) => {
            let job = pre.instantiate_async(&mut *store).await?;
            let result = job
                .wasmcron_plugin_runner()
                .call_run(store, &context_v0_1(ctx))
                .await?;
            Ok(result.map_err(|e| t02::JobError {
                message: e.message,
                retryable: e.retryable,
            }))
        }
        (Invocation::Listener(event), Linked::ListenerV0_2(pre)) => {
            let listener = pre.instantiate_async(&mut *store).await?;
            let result = listener
                .wasmcron_plugin_handler()
                .call_on_event(store, event)
                .await?;
            Ok(listener_result(result))
        }
        (Invocation::Listener(event), Linked::ListenerV0_1(pre)) => {
            let listener = pre.instantiate_async(&mut *store).await?;
            let result = listener
                .wasmcron_plugin_handler()
                .call_on_event(store, &event_v0_1(event))
                .await?;
            Ok(listener_result(result))
        }
        _ => Err(wasmtime::Error::msg(format!(
            "plugin '{plugin}' implements {}, which cannot serve this call",
            linked.world_name()
        ))),
    }
}

fn listener_result(result: Result<(), String>) -> Result<String, t02::JobError> {
    result
        .map(|()| String::new())
        .map_err(|message| t02::JobError {
            message,
            retryable: false,
        })
}

fn timestamp_v0_1(t: t02::Timestamp) -> t01::Timestamp {
    t01::Timestamp {
        seconds: t.seconds,
        nanoseconds: t.nanoseconds,
    }
}

/// The context as 0.1.0 has it: without `cause` and `parent`.
fn context_v0_1(ctx: &t02::RunContext) -> t01::RunContext {
    t01::RunContext {
        job_id: ctx.job_id.clone(),
        run_id: ctx.run_id.clone(),
        scheduled_at: timestamp_v0_1(ctx.scheduled_at),
        fired_at: timestamp_v0_1(ctx.fired_at),
        attempt: ctx.attempt,
        args: ctx.args.clone(),
    }
}

/// The event kind as 0.1.0 has it: a recovery is a success, an auto-pause
/// a failure (the event's outcome, `recovered` or `paused`, tells them
/// apart).
fn kind_v0_1(kind: t02::EventKind) -> t01::EventKind {
    match kind {
        t02::EventKind::RunSucceeded | t02::EventKind::RunRecovered => t01::EventKind::RunSucceeded,
        t02::EventKind::RunFailed | t02::EventKind::JobPaused => t01::EventKind::RunFailed,
        t02::EventKind::RunMissed => t01::EventKind::RunMissed,
        t02::EventKind::RunSkipped => t01::EventKind::RunSkipped,
        t02::EventKind::RunRetried => t01::EventKind::RunRetried,
    }
}

/// The event as 0.1.0 has it (see [`kind_v0_1`]).
fn event_v0_1(event: &t02::JobEvent) -> t01::JobEvent {
    t01::JobEvent {
        kind: kind_v0_1(event.kind),
        job_id: event.job_id.clone(),
        run_id: event.run_id.clone(),
        scheduled_at: timestamp_v0_1(event.scheduled_at),
        attempt: event.attempt,
        outcome: event.outcome.clone(),
        message: event.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_0_1_listener_hears_recoveries_and_pauses_under_the_old_kinds() {
        for (new, old) in [
            (t02::EventKind::RunRecovered, t01::EventKind::RunSucceeded),
            (t02::EventKind::JobPaused, t01::EventKind::RunFailed),
            (t02::EventKind::RunSucceeded, t01::EventKind::RunSucceeded),
            (t02::EventKind::RunFailed, t01::EventKind::RunFailed),
            (t02::EventKind::RunMissed, t01::EventKind::RunMissed),
        ] {
            assert_eq!(kind_v0_1(new), old);
        }
    }

    #[test]
    fn a_0_1_context_keeps_every_field_it_has() {
        let ctx = t02::RunContext {
            job_id: "j".into(),
            run_id: "r".into(),
            scheduled_at: t02::Timestamp {
                seconds: 5,
                nanoseconds: 7,
            },
            fired_at: t02::Timestamp {
                seconds: 6,
                nanoseconds: 8,
            },
            attempt: 3,
            args: "{}".into(),
            cause: t02::RunCause::Chain,
            parent: None,
        };
        let old = context_v0_1(&ctx);
        assert_eq!(
            (old.job_id.as_str(), old.run_id.as_str(), old.attempt),
            ("j", "r", 3)
        );
        assert_eq!((old.scheduled_at.seconds, old.fired_at.nanoseconds), (5, 8));
        assert_eq!(old.args, "{}");
    }
}
