//! A follower cut off from the database (a partition) while its guests
//! run: the kill -9 scenario of
//! `a_follower_killed_mid_run_has_its_runs_interrupted_and_retried_elsewhere`,
//! except that the host lives on behind a frozen network.
//!
//! The leader sweeps the silent host's runs (`interrupted`) and another
//! host runs their retries. The cut-off host must not go on running the
//! same fires meanwhile: it stops its guests once it has had no good
//! heartbeat for most of the TTL, and after the thaw its own end of those
//! runs is not recorded over the sweep's, nor is its retry. It then rejoins
//! and claims runs again.

use super::{BIN, LEASE, TTL, slow_jobs};
use serde_json::Value;
use std::time::{Duration, Instant};
use wasmcron_tests::cluster::{Cluster, doubles, show, ts};

/// How long each guest sleeps: well past the TTL, so a guest the cut-off
/// host did not stop would still be running when the sweep retries it.
const MILLIS: u64 = 10_000;

/// A run is cut only while it has most of its sleep ahead: started at
/// most this long before the freeze (so a guest not stopped would run on
/// for over 6 s after the freeze, past TTL − TTL/5 and past the sweep).
const FRESH_MS: i64 = 3_000;

/// Interrupted runs get one more attempt, 1 s later.
const RETRY: &str = "retry = { max_attempts = 2, delay = \"1s\", retry_on = [\"interrupted\"] }";

/// What the cut-off host says when it stops its guests (log WARN, and each
/// stopped run's end).
const LOST: &str = "lost contact with the database";

/// What it says when its end of a run is refused (the sweep's came first).
const NOT_RECORDED: &str = "not recorded: another host already recorded";

/// Host `i`'s log lines containing `needle`, parsed (lines that are not
/// JSON are left out), with the raw line.
fn log_json(c: &Cluster, i: usize, needle: &str) -> Vec<(Value, String)> {
    c.log_lines(i, needle)
        .into_iter()
        .filter_map(|l| serde_json::from_str(&l).ok().map(|v| (v, l)))
        .collect()
}

/// Host `i`'s `run finished` lines for `run_id`.
fn run_finished(c: &Cluster, i: usize, run_id: &str) -> Vec<(Value, String)> {
    log_json(c, i, run_id)
        .into_iter()
        .filter(|(v, line)| v["fields"]["run"] == run_id && line.contains("\"run finished\""))
        .collect()
}

/// Host `i`'s WARN lines containing `needle`.
fn warnings(c: &Cluster, i: usize, needle: &str) -> Vec<String> {
    log_json(c, i, needle)
        .into_iter()
        .filter(|(v, _)| v["level"] == "WARN")
        .map(|(_, l)| l)
        .collect()
}

/// Whether host `via`'s `GET /cluster` lists the host `name` alive.
fn listed_alive(c: &Cluster, via: usize, name: &str) -> bool {
    c.get(via, "/cluster").is_ok_and(|(status, v)| {
        status == 200
            && v["hosts"]
                .as_array()
                .is_some_and(|hs| hs.iter().any(|h| h["name"] == name && h["alive"] == true))
    })
}

#[test]
fn a_follower_cut_off_mid_run_stops_its_guests_and_only_the_sweeps_retry_is_recorded() {
    // One worker per host and as many jobs as hosts: the leader, which
    // records the fires, cannot claim them all, so every host runs one (the
    // cut-off host too, before the cut and after the thaw).
    let jobs = 3;
    let mut c = Cluster::new(
        BIN,
        &slow_jobs("cut", jobs, MILLIS, RETRY),
        &["--lease", LEASE, "--workers", "1"],
    );
    let first = c.add_host();
    let (leader, _) = c.leader();
    assert_eq!(leader, first, "the only host leads\n{}", c.report());
    c.add_host();
    let (victim, _) = c.add_host_via_proxy();
    let (leader, _) = c.leader();
    assert_ne!(
        leader,
        victim,
        "the host behind the proxy joined last, yet leads\n{}",
        c.report()
    );
    let victim_name = c.name(victim);

    // The victim's running runs: run id, attempt, age in ms (database
    // clock).
    let running_on_victim = |c: &Cluster| {
        c.db().rows(&format!(
            "SELECT run_id, attempt::text,
                    (extract(epoch FROM clock_timestamp() - started_at) * 1000)::bigint::text
               FROM runs WHERE status = 'running' AND host = '{victim_name}'
              ORDER BY run_id"
        ))
    };
    let age = |row: &[String]| row[2].parse::<i64>().unwrap_or(i64::MAX);
    // Cut it off when it has first attempts in flight, every one of them
    // with most of its sleep ahead.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = running_on_victim(&c);
        if !rows.is_empty()
            && rows
                .iter()
                .all(|r| r[1] == "1" && age(r) >= 0 && age(r) < FRESH_MS - 1_000)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "within 120 s, {victim_name} never had first attempts in flight all started under \
             {} ms before (last: run | attempt | age ms: {})\n{}",
            FRESH_MS - 1_000,
            show(&rows),
            c.report()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.proxy(0).freeze();
    let frozen = Instant::now();
    // What the database holds as running on the victim is what the sweep
    // will interrupt (a claim whose answer the freeze held included).
    std::thread::sleep(Duration::from_millis(300));
    let cut_rows = running_on_victim(&c);
    assert!(
        !cut_rows.is_empty() && cut_rows.iter().all(|r| r[1] == "1" && age(r) < FRESH_MS),
        "right after the freeze, {victim_name}'s running runs are not the fresh first attempts \
         just seen (run | attempt | age ms): {}\n{}",
        show(&cut_rows),
        c.report()
    );
    let cut: Vec<String> = cut_rows.iter().map(|r| r[0].clone()).collect();
    let quoted = cut
        .iter()
        .map(|r| format!("'{r}'"))
        .collect::<Vec<_>>()
        .join(", ");
    // Every row of the cut runs' fires.
    let fire_rows = |c: &Cluster| {
        c.db().rows(&format!(
            "SELECT run_id, job_id, scheduled_at::text, attempt::text, status,
                    coalesce(outcome_kind, '-'), coalesce(host, '-'), coalesce(note, ''), origin
               FROM runs
              WHERE (job_id, scheduled_at) IN (SELECT job_id, scheduled_at FROM runs
                                                WHERE run_id IN ({quoted}))
              ORDER BY job_id, scheduled_at, attempt, run_id"
        ))
    };
    let n = i64::try_from(cut.len()).unwrap_or(i64::MAX);
    eprintln!(
        "froze {victim_name} with {} run(s) in flight (run | attempt | age ms): {}",
        cut.len(),
        show(&cut_rows)
    );

    c.wait_for(
        "the leader's sweep to record the cut-off host's runs interrupted (TTL + 5 s)",
        TTL + Duration::from_secs(5),
        || {
            c.db().count(&format!(
                "SELECT count(*) FROM runs WHERE run_id IN ({quoted}) AND status = 'interrupted'"
            )) == n
        },
    );
    eprintln!("swept {:?} after the freeze", frozen.elapsed());
    c.wait_for(
        "the retries of the cut-off host's runs to succeed on another host",
        Duration::from_secs(60),
        || {
            c.db().count(&format!(
                "SELECT count(*) FROM runs r JOIN runs k
                     ON k.job_id = r.job_id AND k.scheduled_at = r.scheduled_at
                  WHERE k.run_id IN ({quoted}) AND r.attempt = 2 AND r.status = 'finished'
                    AND r.outcome_kind = 'succeeded' AND r.host <> '{victim_name}'"
            )) == n
        },
    );
    eprintln!("retried {:?} after the freeze", frozen.elapsed());
    // Frozen until every cut guest, had it not been stopped, would have
    // slept its whole sleep and returned (each started under FRESH_MS
    // before the freeze).
    let natural_end = frozen + Duration::from_millis(MILLIS) + Duration::from_secs(3);
    if let Some(rest) = natural_end.checked_duration_since(Instant::now()) {
        std::thread::sleep(rest);
    }
    // The host stops its guests on its own clock, without the database:
    // it has said so by now, while still cut off.
    let lost_warnings = warnings(&c, victim, LOST);
    assert!(
        !lost_warnings.is_empty(),
        "{victim_name} has been cut off from the database for {:?} (lease {TTL:?}), yet its log \
         has no WARN saying {LOST:?}: it did not stop its guests\nrows of the cut runs' fires \
         (run | job | scheduled_at | attempt | status | outcome | host | note | origin): {}\n{}",
        frozen.elapsed(),
        show(&fire_rows(&c)),
        c.report()
    );

    c.proxy(0).thaw();
    let thawed_at = chrono::Utc::now();
    eprintln!("thawed {:?} after the freeze", frozen.elapsed());
    // The cut-off host gets its answers and writes what it held.
    c.wait_for(
        "the cut-off host to log the end of each of its cut runs after the thaw",
        Duration::from_secs(20),
        || cut.iter().all(|r| !run_finished(&c, victim, r).is_empty()),
    );
    std::thread::sleep(Duration::from_secs(3));

    // The database: per cut fire, the sweep's interruption and the other
    // host's successful retry, and nothing else.
    let rows = fire_rows(&c);
    let all_rows = show(&rows);
    let context = |c: &Cluster| {
        format!(
            "rows of the cut runs' fires (run | job | scheduled_at | attempt | status | outcome \
             | host | note | origin): {all_rows}\n{}",
            c.report()
        )
    };
    let swept_note = format!("its host ({victim_name}) stopped");
    for run in &cut {
        let Some(mine) = rows.iter().find(|r| r[0] == *run) else {
            panic!("the cut run {run} has no row\n{}", context(&c));
        };
        let fire: Vec<&Vec<String>> = rows
            .iter()
            .filter(|r| r[1] == mine[1] && r[2] == mine[2])
            .collect();
        let first: Vec<_> = fire.iter().filter(|r| r[3] == "1").collect();
        let second: Vec<_> = fire.iter().filter(|r| r[3] == "2").collect();
        assert!(
            fire.len() == 2 && first.len() == 1 && second.len() == 1,
            "the fire of {} at {} (cut run {run}) must have exactly two rows, attempt 1 (swept) \
             and attempt 2 (its retry), and has {}\n{}",
            mine[1],
            mine[2],
            fire.len(),
            context(&c)
        );
        let (first, second) = (first[0], second[0]);
        assert!(
            first[0] == *run
                && first[4] == "interrupted"
                && first[6] == victim_name
                && first[7].starts_with(&swept_note),
            "attempt 1 of {} at {} must be the cut run {run}, recorded interrupted by the sweep \
             (note starting {swept_note:?}) and nothing written over it by {victim_name}; it is: \
             {}\n{}",
            mine[1],
            mine[2],
            first.join(" | "),
            context(&c)
        );
        assert!(
            second[4] == "finished" && second[5] == "succeeded" && second[6] != victim_name,
            "attempt 2 of {} at {} must be the sweep's retry, finished and succeeded on a host \
             other than {victim_name}; it is: {}\n{}",
            mine[1],
            mine[2],
            second.join(" | "),
            context(&c)
        );
    }
    let doubled = doubles(c.db());
    assert!(
        doubled.is_empty(),
        "fires recorded more than once (job | scheduled_at | attempt | rows | host:status): {}\n{}",
        show(&doubled),
        context(&c)
    );

    // The cut-off host's log: each cut run ended interrupted, its guest
    // stopped before it could finish its sleep, because it lost contact;
    // never succeeded.
    for run in &cut {
        let ends = run_finished(&c, victim, run);
        let lines: Vec<&str> = ends.iter().map(|(_, l)| l.as_str()).collect();
        assert!(
            ends.iter()
                .all(|(v, _)| v["fields"]["outcome"] == "interrupted"),
            "{victim_name} logged the cut run {run} as ended otherwise than interrupted (its \
             guest ran on while the sweep retried the fire elsewhere): {lines:#?}\n{}",
            context(&c)
        );
        assert!(
            ends.iter().all(|(_, l)| l.contains(LOST)),
            "{victim_name}'s end of the cut run {run} does not say {LOST:?}: {lines:#?}\n{}",
            context(&c)
        );
        let ran = ends
            .iter()
            .filter_map(|(v, _)| v["fields"]["duration_ms"].as_i64())
            .max();
        assert!(
            ran.is_some_and(|ms| ms < i64::try_from(MILLIS).unwrap_or(i64::MAX)),
            "{victim_name}'s guest of the cut run {run} was not stopped before the end of its \
             {MILLIS} ms sleep (duration_ms {ran:?}): {lines:#?}\n{}",
            context(&c)
        );
    }
    // Its ends came after the sweep's: refused, and said so.
    let refused = warnings(&c, victim, NOT_RECORDED);
    assert!(
        !refused.is_empty(),
        "after the thaw, {victim_name}'s ends of the swept runs {cut:?} were not recorded (the \
         rows say so), yet its log has no WARN saying {NOT_RECORDED:?}\n{}",
        context(&c)
    );
    eprintln!(
        "{victim_name} said: {}\nand: {}",
        lost_warnings.join("\n"),
        refused.join("\n")
    );

    // It rejoins: alive for the leader and for itself, following the
    // leader, and claiming runs again.
    c.wait_for(
        "the leader and the cut-off host itself to list it alive in GET /cluster",
        Duration::from_secs(15),
        || listed_alive(&c, leader, &victim_name) && listed_alive(&c, victim, &victim_name),
    );
    let (after, _) = c.leader();
    assert_eq!(
        after,
        leader,
        "the leader changed though only a follower was cut off\n{}",
        context(&c)
    );
    c.wait_for(
        "the cut-off host to claim and finish a run after the thaw",
        Duration::from_secs(90),
        || {
            c.db().count(&format!(
                "SELECT count(*) FROM runs
                  WHERE host = '{victim_name}' AND started_at > {}
                    AND status = 'finished' AND outcome_kind = 'succeeded'",
                ts(thawed_at)
            )) > 0
        },
    );
    let doubled = doubles(c.db());
    assert!(
        doubled.is_empty(),
        "fires recorded more than once (job | scheduled_at | attempt | rows | host:status): {}\n{}",
        show(&doubled),
        c.report()
    );
}
