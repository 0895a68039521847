//! Calendars and exclusion dates (issue 13, item 4), on a manual clock:
//! excluded fires do not happen, dates are read in the job's zone across a
//! daylight-saving change, a calendar changed moves the next fire, and a
//! backfill passes over excluded days.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use wasmcron::event::Event;
use wasmcron::job::JobError;
use wasmcron::scheduler::{BackfillRange, ManualClock, Scheduler, SchedulerError};
use wasmcron::store::JobStore;
use wasmcron::trigger::calendar::CalendarSpec;
use wasmcron_tests::backends;
use wasmcron_tests::sched::{parts, spec, start, wait_for};
use wasmcron_tests::stores::TestStore;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

fn calendar(dates: &[&str], days: &[&str]) -> CalendarSpec {
    CalendarSpec {
        dates: dates.iter().map(|s| (*s).to_owned()).collect(),
        days: days.iter().map(|s| (*s).to_owned()).collect(),
        description: None,
    }
}

/// Moves the clock to `job`'s next fire and waits for its run to succeed;
/// returns the fire time.
async fn next_run(
    s: &Scheduler,
    clock: &ManualClock,
    rx: &mut wasmcron::event::EventReceiver,
    job: &'static str,
) -> DateTime<Utc> {
    let next = s.job(job).expect("job").next_run_time.expect("a next fire");
    clock.advance(next - clock_now(clock));
    wait_for(
        rx,
        move |e| matches!(e, Event::RunSucceeded(r) if r.job_id == job && r.scheduled_at == next),
    )
    .await;
    next
}

fn clock_now(clock: &ManualClock) -> DateTime<Utc> {
    use wasmcron::scheduler::Clock;
    clock.now()
}

async fn excluded_days_do_not_fire_and_a_changed_calendar_moves_the_next_fire(db: TestStore) {
    // Thursday 26 March 2026, noon UTC. Berlin changes to summer time on
    // Sunday the 29th at 02:00.
    let clock = Arc::new(ManualClock::new(at("2026-03-26T12:00:00Z")));
    let store: Arc<dyn JobStore> = db.open().await;
    let s = start(store.clone(), clock.clone()).await;
    let mut rx = s.subscribe();

    // A job naming a calendar that does not exist is refused, naming the
    // entry, and nothing is added.
    let bad = s
        .add_job(
            spec(
                r#"{"id":"daily","plugin":"hello","exclude":["weekends"],
                    "trigger":{"type":"cron","expr":"30 0 * * *","tz":"Europe/Berlin"}}"#,
            ),
            false,
        )
        .await;
    match bad {
        Err(SchedulerError::Invalid(e @ JobError::Exclude { .. })) => {
            assert_eq!(e.field(), "exclude[0]");
            assert!(
                e.to_string().contains("no calendar named 'weekends'"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(s.job("daily").is_err());

    let (_, created) = s
        .put_calendar("weekends", calendar(&[], &["* * sat,sun"]))
        .await
        .expect("calendar");
    assert!(created);
    s.put_calendar("holidays", calendar(&["2026-04-02"], &[]))
        .await
        .expect("calendar");
    // 00:30 in Berlin is 23:30 UTC the day before in winter, 22:30 in
    // summer: the dates are Berlin's.
    s.add_job(
        spec(
            r#"{"id":"daily","plugin":"hello","exclude":["weekends","2026-03-31"],
                "trigger":{"type":"cron","expr":"30 0 * * *","tz":"Europe/Berlin"}}"#,
        ),
        false,
    )
    .await
    .expect("add");
    let mut fired = Vec::new();
    for _ in 0..3 {
        fired.push(next_run(&s, &clock, &mut rx, "daily").await);
    }
    assert_eq!(
        fired,
        [
            // Friday the 27th, CET.
            at("2026-03-27T00:30:00+01:00"),
            // Saturday and Sunday excluded; Monday the 30th, CEST.
            at("2026-03-30T00:30:00+02:00"),
            // Tuesday the 31st excluded inline; Wednesday 1 April.
            at("2026-04-01T00:30:00+02:00"),
        ]
    );
    // Excluded fires simply do not happen: no row of any kind for them.
    let runs = store.runs("daily", 100, 0).await.expect("runs");
    let mut recorded: Vec<_> = runs.iter().map(|r| r.scheduled_at).collect();
    recorded.sort();
    assert_eq!(recorded, fired);

    // Naming `holidays` now: Thursday 2 April is skipped.
    s.modify_job(spec(
        r#"{"id":"daily","plugin":"hello","exclude":["weekends","2026-03-31","holidays"],
            "trigger":{"type":"cron","expr":"30 0 * * *","tz":"Europe/Berlin"}}"#,
    ))
    .await
    .expect("modify");
    assert_eq!(
        s.job("daily").expect("job").next_run_time,
        Some(at("2026-04-03T00:30:00+02:00"))
    );
    // The calendar changed: the job's next fire moves at once, and the
    // store has it.
    s.put_calendar("holidays", calendar(&["2026-04-03..2026-04-06"], &[]))
        .await
        .expect("calendar");
    let moved = at("2026-04-02T00:30:00+02:00");
    assert_eq!(s.job("daily").expect("job").next_run_time, Some(moved));
    assert_eq!(
        store
            .job("daily")
            .await
            .expect("read")
            .expect("stored")
            .next_run_time,
        Some(moved)
    );
    let listed = s.calendar("holidays").expect("calendar");
    assert_eq!(listed.jobs, ["daily"]);
    // A calendar a job names cannot be removed; one no job names can.
    match s.delete_calendar("holidays").await {
        Err(e @ SchedulerError::CalendarInUse { .. }) => {
            assert!(e.to_string().contains("daily"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    s.put_calendar("spare", calendar(&["2027-01-01"], &[]))
        .await
        .expect("calendar");
    s.delete_calendar("spare").await.expect("delete");
    assert!(matches!(
        s.calendar("spare"),
        Err(SchedulerError::CalendarNotFound(_))
    ));
    // Bad calendars name the entry.
    for (name, spec, field) in [
        ("Bad Name", calendar(&[], &[]), "name"),
        ("x", calendar(&["2026-13-01"], &[]), "dates[0]"),
        ("x", calendar(&["2026-12-31..2026-12-01"], &[]), "dates[0]"),
        ("x", calendar(&[], &["* * *", "sat"]), "days[1]"),
    ] {
        match s.put_calendar(name, spec).await {
            Err(SchedulerError::BadRequest { field: f, problem }) => {
                assert_eq!(f, field, "{problem}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    // A restart reads the calendars back before the jobs.
    s.shutdown(std::time::Duration::from_secs(5)).await;
    let s = Scheduler::start(parts(store.clone(), clock.clone()))
        .await
        .expect("restart");
    let names: Vec<String> = s.calendars().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["holidays", "weekends"]);
    let mut rx = s.subscribe();
    assert_eq!(next_run(&s, &clock, &mut rx, "daily").await, moved);
    // Friday 3 to Monday 6 April are holidays (and a weekend): Tuesday.
    assert_eq!(
        s.job("daily").expect("job").next_run_time,
        Some(at("2026-04-07T00:30:00+02:00"))
    );

    // Fewer days excluded: the fires freed before the planned one happen
    // (the clock is at 22:30 UTC on 1 April).
    let hourly = |exclude: &str| {
        spec(&format!(
            r#"{{"id":"hourly","plugin":"hello","exclude":{exclude},
                "trigger":{{"type":"cron","expr":"0 * * * *"}}}}"#
        ))
    };
    s.add_job(hourly(r#"["2026-04-01"]"#), false)
        .await
        .expect("add");
    assert_eq!(
        s.job("hourly").expect("job").next_run_time,
        Some(at("2026-04-02T00:00:00Z"))
    );
    s.modify_job(hourly("[]")).await.expect("modify");
    assert_eq!(
        s.job("hourly").expect("job").next_run_time,
        Some(at("2026-04-01T23:00:00Z"))
    );

    // A backfill passes over excluded days: Friday 27 March to Wednesday
    // 1 April holds three fires that happen.
    let started = s
        .backfill(
            "daily",
            BackfillRange {
                from: at("2026-03-26T12:00:00Z"),
                to: at("2026-04-01T12:00:00Z"),
                overlap: wasmcron::job::Overlap::BufferAll,
            },
        )
        .await
        .expect("backfill");
    assert_eq!(started.fires, 3, "{started:?}");
    assert_eq!(started.first, Some(at("2026-03-27T00:30:00+01:00")));
    assert_eq!(started.last, Some(at("2026-04-01T00:30:00+02:00")));
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(excluded_days_do_not_fire_and_a_changed_calendar_moves_the_next_fire: memory, sqlite, postgres);
