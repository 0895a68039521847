//! Several `wasmcron run` processes sharing one PostgreSQL database
//! (issue 11): one leader records the fires, every host claims and runs
//! them, every fire is recorded once, a leader
//! that dies, stops or goes silent is replaced within its lease, and no
//! fire is lost or doubled across the change.
//!
//! Black-box: real processes, a real database, `GET /cluster` and the
//! `runs` table. Leases are short (3 s) to keep the tests quick. The
//! harness is `wasmcron_tests::cluster`.

use chrono::{Duration as Span, Utc};
use serde_json::json;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use wasmcron_tests::cluster::{
    Cluster, FreezableProxy, Request, START, coverage_faults, doubles, jobs_file, plugin_path,
    seconds_without_success, show, ts, unexplained_gaps,
};

#[path = "cluster/partition.rs"]
mod partition;

const BIN: &str = env!("CARGO_BIN_EXE_wasmcron");

/// The lease every test's hosts take.
const LEASE: &str = "3s";
const TTL: Duration = Duration::from_secs(3);

/// Lines for jobs that must account for every fire with a row of its own:
/// each missed fire runs late instead of being coalesced away.
const EVERY_FIRE: &str = "coalesce = false\nmisfire_grace = \"1h\"";

fn span(d: Duration) -> Span {
    Span::from_std(d).expect("a short duration")
}

/// No two fire rows for one (job, scheduled_at, attempt).
fn assert_no_doubles(c: &Cluster) {
    let doubles = doubles(c.db());
    assert!(
        doubles.is_empty(),
        "fires recorded more than once (job | scheduled_at | attempt | rows | host:status): {}\n{}",
        show(&doubles),
        c.report()
    );
}

/// Every whole second of each job `prefix-*` from its first fire to its
/// last has exactly one first-attempt fire row.
fn assert_every_fire_once(c: &Cluster, prefix: &str) {
    let faults = coverage_faults(c.db(), prefix);
    assert!(
        faults.is_empty(),
        "seconds of {prefix}-* jobs without exactly one fire row (job | second | rows): {}\n\
         fire rows around them:\n{}\n{}",
        show(&faults),
        rows_around(c, &faults),
        c.report()
    );
}

/// The fire rows of the first faulty job within 3 s of its first fault.
fn rows_around(c: &Cluster, faults: &[Vec<String>]) -> String {
    let Some(first) = faults.first() else {
        return String::new();
    };
    show(&c.db().rows(&format!(
        "SELECT job_id, scheduled_at::text, attempt::text, status, coalesce(host, '-'),
                coalesce(note, '')
           FROM runs WHERE origin = 'fire' AND job_id = '{}'
            AND scheduled_at BETWEEN '{}'::timestamptz - interval '3 s'
                                 AND '{}'::timestamptz + interval '3 s'
          ORDER BY scheduled_at, attempt",
        first[0], first[1], first[1]
    )))
}

/// How many jobs `prefix-*` have at least `n` finished fire runs scheduled
/// at or after `since`.
fn jobs_with_finished(c: &Cluster, prefix: &str, n: i64, since: chrono::DateTime<Utc>) -> i64 {
    c.db().count(&format!(
        "SELECT count(*) FROM (SELECT job_id FROM runs
           WHERE origin = 'fire' AND status = 'finished' AND job_id LIKE '{prefix}-%'
             AND scheduled_at >= {}
           GROUP BY job_id HAVING count(*) >= {n}) j",
        ts(since)
    ))
}

fn long_ago() -> chrono::DateTime<Utc> {
    chrono::DateTime::parse_from_rfc3339(START)
        .expect("START is RFC 3339")
        .to_utc()
}

#[test]
fn the_freezable_proxy_holds_bytes_while_frozen_and_passes_them_on_thaw() {
    let server = TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = server.local_addr().expect("addr").to_string();
    let echo = std::thread::spawn(move || {
        let (mut s, _) = server.accept().expect("accept");
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).expect("read");
        s.write_all(&buf).expect("echo");
    });
    let proxy = FreezableProxy::start(&addr);
    let mut c = TcpStream::connect(("127.0.0.1", proxy.port())).expect("connect");
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    proxy.freeze();
    c.write_all(b"hello").expect("write");
    let mut buf = [0u8; 5];
    assert!(c.read(&mut buf).is_err(), "bytes moved while frozen");
    proxy.thaw();
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    c.read_exact(&mut buf).expect("the held bytes arrive");
    assert_eq!(&buf, b"hello");
    echo.join().expect("echo server");
}

#[test]
fn three_hosts_elect_one_leader_and_every_fire_runs_once_on_one_of_them() {
    const JOBS: i64 = 100;
    let c = Cluster::start(
        BIN,
        3,
        // Room for a run that ends late on a loaded machine: the test is
        // about who fires, not about overlap (a run still going when its
        // next fire comes would skip that fire, recorded, with the default
        // of 1).
        &jobs_file(&[("tick", 100, "max_instances = 5")]),
        &["--lease", LEASE],
    );
    let db = c.db();
    let (leader, lease) = c.leader();
    let leader_name = c.name(leader);
    c.wait_for(
        "a finished fire of every job",
        Duration::from_secs(60),
        || jobs_with_finished(&c, "tick", 1, long_ago()) == JOBS,
    );
    let from = Utc::now() + Span::seconds(2);
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_secs(3));
        let (now, l) = c.leader();
        assert_eq!(
            (now, &l.host_id, l.term),
            (leader, &lease.host_id, lease.term),
            "the leader changed with every host up\n{}",
            c.report()
        );
    }
    let to = Utc::now() - Span::seconds(3);
    c.wait_for(
        "the window's runs to finish",
        Duration::from_secs(60),
        || {
            db.count(&format!(
                "SELECT count(*) FROM runs WHERE origin = 'fire'
                  AND status IN ('pending', 'running') AND scheduled_at <= {}",
                ts(to)
            )) == 0
        },
    );

    eprintln!(
        "runs in the window (count | lateness avg, max | duration avg, max, in seconds): {}",
        show(&db.rows(&format!(
            "SELECT count(*)::text,
                    round(avg(extract(epoch FROM started_at - scheduled_at)), 3)::text,
                    round(max(extract(epoch FROM started_at - scheduled_at)), 3)::text,
                    round(avg(extract(epoch FROM ended_at - started_at)), 3)::text,
                    round(max(extract(epoch FROM ended_at - started_at)), 3)::text
               FROM runs WHERE origin = 'fire' AND scheduled_at BETWEEN {} AND {}",
            ts(from),
            ts(to)
        )))
    );
    assert_no_doubles(&c);
    let missing = seconds_without_success(db, "tick-", from, to);
    assert!(
        missing.is_empty(),
        "seconds from {from} to {to} where a job has no finished, succeeded fire run \
         (job | second): {}\nfire rows that are not finished: {}\n{}",
        show(&missing),
        show(&db.rows(&format!(
            "SELECT job_id, scheduled_at::text, status, coalesce(outcome_kind, '-'),
                    coalesce(host, '-'), coalesce(note, '')
               FROM runs WHERE origin = 'fire' AND status <> 'finished'
                AND scheduled_at BETWEEN {} AND {} ORDER BY 2, 1",
            ts(from),
            ts(to)
        ))),
        c.report()
    );
    // The leader records the fires; every host claims and runs them.
    let names: Vec<String> = c.names().into_iter().map(|(_, n)| n).collect();
    let listed = names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let elsewhere = db.rows(&format!(
        "SELECT job_id, scheduled_at::text, status, coalesce(host, '(null)') FROM runs
          WHERE origin = 'fire'
            AND ((host IS NOT NULL AND host NOT IN ({listed}))
                 OR (host IS NULL AND status IN ('running', 'finished', 'interrupted')))
          ORDER BY 2, 1"
    ));
    assert!(
        elsewhere.is_empty(),
        "fire runs not run by a host of the cluster {names:?} (job | scheduled_at | status | \
         host): {}\n{}",
        show(&elsewhere),
        c.report()
    );
    let per_host = db.rows(&format!(
        "SELECT host, count(*)::text FROM runs WHERE origin = 'fire' AND status = 'finished'
            AND scheduled_at BETWEEN {} AND {} GROUP BY host ORDER BY host",
        ts(from),
        ts(to)
    ));
    eprintln!(
        "finished runs in the window per host (the leader is {leader_name}): {}",
        show(&per_host)
    );
    assert_eq!(
        per_host.len(),
        names.len(),
        "every host runs some of the fires (the leader is {leader_name}): {}\n{}",
        show(&per_host),
        c.report()
    );
}

#[test]
fn a_killed_leader_is_replaced_within_its_lease_and_no_fire_is_lost() {
    let jobs = 20;
    let mut c = Cluster::start(
        BIN,
        3,
        &jobs_file(&[("keep", jobs, EVERY_FIRE)]),
        &["--lease", LEASE],
    );
    let (old, lease) = c.leader();
    c.wait_for(
        "three finished fires of every job",
        Duration::from_secs(60),
        || jobs_with_finished(&c, "keep", 3, long_ago()) == jobs as i64,
    );

    c.kill9(old);
    let killed = Instant::now();
    let killed_at = Utc::now();
    let survivors = c.running();
    let (new, l, took) = c
        .wait_new_leader(&survivors, lease.term, killed, TTL + Duration::from_secs(2))
        .unwrap_or_else(|e| {
            panic!(
                "after kill -9 of the leader (host {old}, term {}): {e}\n{}",
                lease.term,
                c.report()
            )
        });
    eprintln!("host {new} leads (term {}) {took:?} after the kill", l.term);
    assert_eq!(
        l.term,
        lease.term + 1,
        "a new leader's term is the old one's plus one\n{}",
        c.report()
    );
    let (agreed, _) = c.leader();
    assert_eq!(agreed, new, "the survivors agree on the new leader");

    // The new leader fires (catching up the gap), then some more.
    let after = Utc::now() + Span::seconds(2);
    c.wait_for(
        "two finished fires of every job after the take-over",
        Duration::from_secs(60),
        || jobs_with_finished(&c, "keep", 2, after) == jobs as i64,
    );
    assert_no_doubles(&c);
    assert_every_fire_once(&c, "keep-");
    // What the killed leader had in flight has a story too (interrupted,
    // or run by the new leader), not a row left running for ever.
    // (The leader records a host's running runs interrupted once it has
    // been silent for the TTL.)
    let left = || {
        c.db().rows(&format!(
            "SELECT job_id, scheduled_at::text, status, coalesce(host, '-') FROM runs
              WHERE status IN ('pending', 'running') AND scheduled_at < {}
              ORDER BY 2, 1",
            ts(killed_at)
        ))
    };
    let deadline = Instant::now() + TTL + Duration::from_secs(5);
    while !left().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let left = left();
    assert!(
        left.is_empty(),
        "runs from before the kill still pending or running {:?} after it: {}\n{}",
        killed.elapsed(),
        show(&left),
        c.report()
    );
}

#[test]
fn a_leader_stopped_with_sigterm_hands_over_at_once() {
    let jobs = 10;
    let mut c = Cluster::start(
        BIN,
        3,
        &jobs_file(&[("keep", jobs, EVERY_FIRE)]),
        &["--lease", LEASE],
    );
    let (old, lease) = c.leader();
    c.wait_for(
        "three finished fires of every job",
        Duration::from_secs(60),
        || jobs_with_finished(&c, "keep", 3, long_ago()) == jobs as i64,
    );

    let survivors: Vec<usize> = c.running().into_iter().filter(|&i| i != old).collect();
    c.sigterm(old);
    let stopped = Instant::now();
    let taken = c.wait_new_leader(&survivors, lease.term, stopped, Duration::from_secs(2));
    let (new, l, took) = taken.unwrap_or_else(|e| {
        panic!(
            "after SIGTERM to the leader (host {old}, term {}): {e}\n{}",
            lease.term,
            c.report()
        )
    });
    eprintln!("host {new} leads (term {}) {took:?} after SIGTERM", l.term);
    let status = c.wait_exit(old);
    assert!(
        status.success(),
        "the old leader exited {status}\n{}",
        c.report()
    );
    let (agreed, _) = c.leader();
    assert_eq!(agreed, new, "the survivors agree on the new leader");

    let after = Utc::now() + Span::seconds(1);
    c.wait_for(
        "two finished fires of every job after the hand-over",
        Duration::from_secs(60),
        || jobs_with_finished(&c, "keep", 2, after) == jobs as i64,
    );
    assert_no_doubles(&c);
    assert_every_fire_once(&c, "keep-");
}

#[test]
fn a_leader_cut_off_from_the_database_stops_firing_before_its_lease_can_pass() {
    cut_off_the_leader(Cut::Anywhere);
}

#[test]
fn a_leader_cut_off_inside_a_transaction_does_not_hold_up_the_take_over() {
    cut_off_the_leader(Cut::InsideATransaction);
}

/// When the leader's network to the database goes silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Whenever the test gets there.
    Anywhere,
    /// Inside a transaction the leader opened, armed just before a whole
    /// second so that it is the one recording that second's fires: the
    /// server holds the transaction (and what it locked, the fencing
    /// check's share of the lease row included) open for as long as the
    /// network stays silent.
    InsideATransaction,
}

/// Host A leads through a proxy; B and C follow. A's network goes silent
/// (`cut`): B or C must lead within the TTL + 2 s, A must start no run
/// while cut off after its lease could have passed, and after the thaw A
/// follows; no fire is doubled or lost.
fn cut_off_the_leader(cut: Cut) {
    let jobs = 10;
    let mut c = Cluster::new(
        BIN,
        &jobs_file(&[("keep", jobs, EVERY_FIRE)]),
        &["--lease", LEASE],
    );
    let (a, _) = c.add_host_via_proxy();
    let (first, _) = c.leader();
    assert_eq!(first, a, "the only host leads");
    let b = c.add_host();
    let d = c.add_host();
    let (leader, lease) = c.leader();
    assert_eq!(
        leader,
        a,
        "hosts that join follow the leader\n{}",
        c.report()
    );
    let names = c.names();
    let a_name = c.name(a);
    assert_eq!(
        names.iter().filter(|(_, n)| *n == a_name).count(),
        1,
        "hosts share a name: {names:?}"
    );
    c.wait_for(
        "three finished fires of every job",
        Duration::from_secs(60),
        || jobs_with_finished(&c, "keep", 3, long_ago()) == jobs as i64,
    );

    let proxy = c.proxy(0);
    match cut {
        Cut::Anywhere => proxy.freeze(),
        Cut::InsideATransaction => {
            // 40 ms before the next whole second but one.
            let to_next = 1000 - u64::from(Utc::now().timestamp_subsec_millis() % 1000);
            std::thread::sleep(Duration::from_millis(to_next + 960));
            proxy.freeze_in_transaction();
            c.wait_for(
                "the leader to open a transaction",
                Duration::from_secs(10),
                || proxy.is_frozen(),
            );
        }
    }
    let frozen = Instant::now();
    let frozen_at = Utc::now();
    // What the cut-off leader's sessions hold open on the server.
    let ports: Vec<String> = proxy
        .upstream_ports()
        .iter()
        .map(ToString::to_string)
        .collect();
    let held = c.db().rows(&format!(
        "SELECT a.pid::text, a.client_port::text, a.state,
                coalesce((now() - a.xact_start)::text, '-'),
                coalesce(string_agg(DISTINCT l.relation::regclass::text || ':' || l.mode, ', '), '-'),
                left(regexp_replace(a.query, '\\s+', ' ', 'g'), 100)
           FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid AND l.relation IS NOT NULL
          WHERE a.datname = current_database() AND a.client_port IN ({})
            AND a.xact_start IS NOT NULL
          GROUP BY a.pid, a.client_port, a.state, a.xact_start, a.query",
        ports.join(", ")
    ));
    eprintln!(
        "the cut-off leader's open transactions (pid | port | state | open for | locks | query): {}",
        show(&held)
    );
    if cut == Cut::InsideATransaction {
        assert!(
            !held.is_empty(),
            "the proxy froze, yet the cut-off leader has no open transaction: the test did not \
             test what it says\n{}",
            c.report()
        );
    }
    let (new, l, took) = c
        .wait_new_leader(&[b, d], lease.term, frozen, TTL + Duration::from_secs(2))
        .unwrap_or_else(|e| {
            panic!(
                "after the leader's database connections went silent ({cut:?}): {e}\n\
                 the cut-off leader's open transactions then (pid | port | state | open for | \
                 locks | query): {}\n{}",
                show(&held),
                c.report()
            )
        });
    eprintln!(
        "host {new} leads (term {}) {took:?} after the freeze",
        l.term
    );
    // Every host runs fires (claiming them in the database), so the cut-off
    // one could only start a run while cut off if it went on firing on its
    // own: none of its runs may have started from the time its lease could
    // have passed to the thaw (after it, it claims runs again, as every
    // follower does, the backlog included).
    let fenced = frozen_at + span(TTL);
    let late = |c: &Cluster, until: chrono::DateTime<Utc>| {
        c.db().rows(&format!(
            "SELECT job_id, scheduled_at::text, coalesce(started_at::text, '-'), status, run_id
               FROM runs
              WHERE host = '{a_name}' AND started_at >= {} AND started_at < {}
              ORDER BY 2, 1",
            ts(fenced),
            ts(until)
        ))
    };
    // The new leader fires for a while; the old one is still cut off.
    let after = Utc::now() + Span::seconds(1);
    c.wait_for(
        "two finished fires of every job on the new leader",
        Duration::from_secs(30),
        || jobs_with_finished(&c, "keep", 2, after) == jobs as i64,
    );
    let rows = late(&c, Utc::now());
    assert!(
        rows.is_empty(),
        "the cut-off leader {a_name} started runs after its lease could have passed \
         (frozen at {frozen_at}, lease {TTL:?}; job | scheduled_at | started_at | status | \
         run): {}\n{}",
        show(&rows),
        c.report()
    );

    let thawed_at = Utc::now();
    c.proxy(0).thaw();
    let thawed = Instant::now();
    let back = loop {
        let views = (c.view(a), c.view(new));
        if let (Ok(va), Ok(vn)) = &views
            && !va.is_leader
            && va.leader_key().is_some()
            && va.leader_key() == vn.leader_key()
        {
            break thawed.elapsed();
        }
        assert!(
            thawed.elapsed() < Duration::from_secs(10),
            "10 s after the thaw the old leader does not follow the new one: {views:#?}\n{}",
            c.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("the old leader follows {back:?} after the thaw");
    let (agreed, _) = c.leader();
    assert_eq!(agreed, new, "all three agree on the new leader");
    // Whatever the old leader held while cut off has been written by now.
    std::thread::sleep(Duration::from_secs(2));
    let rows = late(&c, thawed_at);
    assert!(
        rows.is_empty(),
        "after the thaw, rows say the old leader {a_name} started runs while cut off, after \
         its lease could have passed (frozen at {frozen_at}, thawed at {thawed_at}, lease \
         {TTL:?}; job | scheduled_at | started_at | status | run): {}\n{}",
        show(&rows),
        c.report()
    );
    assert_no_doubles(&c);
    assert_every_fire_once(&c, "keep-");
}

#[test]
fn jobs_changed_through_a_follower_are_honoured_by_the_leader() {
    let c = Cluster::start(BIN, 3, "version = 1\n", &["--lease", LEASE]);
    let (leader, _) = c.leader();
    let followers: Vec<usize> = c.running().into_iter().filter(|&i| i != leader).collect();
    let (f1, f2) = (followers[0], followers[1]);
    let db = c.db();
    let fires_after = |since: chrono::DateTime<Utc>, finished: bool| {
        db.count(&format!(
            "SELECT count(*) FROM runs WHERE job_id = 'added' AND origin = 'fire'
                AND scheduled_at > {} {}",
            ts(since),
            if finished {
                "AND status = 'finished'"
            } else {
                ""
            }
        ))
    };
    let rows = || {
        show(&db.rows(
            "SELECT scheduled_at::text, status, coalesce(host, '-') FROM runs
              WHERE job_id = 'added' ORDER BY 1",
        ))
    };
    let call = |what: &str, r: Result<(u16, serde_json::Value), String>, want: u16| {
        let (status, body) = r.unwrap_or_else(|e| panic!("{what}: {e}\n{}", c.report()));
        assert_eq!(status, want, "{what}: {body}\n{}", c.report());
    };

    // Added through one follower: the leader runs it.
    call(
        "POST /jobs on a follower",
        c.post(
            f1,
            "/jobs",
            &json!({"id": "added", "plugin": "hello", "keep_runs": 1000,
                    "trigger": {"type": "interval", "every": "1s", "start": START}}),
        ),
        201,
    );
    let added = Utc::now();
    let since = Instant::now();
    c.wait_for(
        "a finished fire of the added job within 3 s",
        Duration::from_secs(3),
        || fires_after(added - Span::seconds(1), true) >= 1,
    );
    eprintln!("the added job ran {:?} after POST /jobs", since.elapsed());
    let names: Vec<String> = c.names().into_iter().map(|(_, n)| n).collect();
    let ran_on =
        db.strings("SELECT DISTINCT host FROM runs WHERE job_id = 'added' AND host IS NOT NULL");
    assert!(
        !ran_on.is_empty() && ran_on.iter().all(|h| names.contains(h)),
        "the added job runs on hosts of the cluster {names:?}: {}",
        rows()
    );

    // Paused through the other follower: no fire a second after.
    call(
        "POST /jobs/added/pause on a follower",
        c.post(f2, "/jobs/added/pause", &json!({})),
        200,
    );
    let paused = Utc::now();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        fires_after(paused + Span::seconds(1), false),
        0,
        "fires of the job more than 1 s after it was paused at {paused}: {}\n{}",
        rows(),
        c.report()
    );

    // Resumed through the first: it runs again.
    call(
        "POST /jobs/added/resume on a follower",
        c.post(f1, "/jobs/added/resume", &json!({})),
        200,
    );
    let resumed = Utc::now();
    c.wait_for(
        "a finished fire of the resumed job within 3 s",
        Duration::from_secs(3),
        || fires_after(resumed, true) >= 1,
    );

    // Deleted through the second: gone on the leader, no more fires.
    call(
        "DELETE /jobs/added on a follower",
        c.delete(f2, "/jobs/added"),
        204,
    );
    let deleted = Utc::now();
    c.wait_for(
        "the leader to forget the deleted job within 2 s",
        Duration::from_secs(2),
        || matches!(c.get(leader, "/jobs/added"), Ok((404, _))),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        fires_after(deleted + Span::seconds(1), false),
        0,
        "fires of the job more than 1 s after it was deleted at {deleted}: {}\n{}",
        rows(),
        c.report()
    );
    assert_no_doubles(&c);
}

/// Calendars (issue 13) hold cluster-wide: one changed through a follower
/// stops the leader's fires on the days it now excludes, and freed again
/// lets them resume.
#[test]
fn a_calendar_changed_through_a_follower_moves_the_leaders_fires() {
    let c = Cluster::start(BIN, 2, "version = 1\n", &["--lease", LEASE]);
    let (leader, _) = c.leader();
    let follower = c
        .running()
        .into_iter()
        .find(|&i| i != leader)
        .unwrap_or_else(|| panic!("a follower\n{}", c.report()));
    let db = c.db();
    let fires_after = |since: chrono::DateTime<Utc>| {
        db.count(&format!(
            "SELECT count(*) FROM runs WHERE job_id = 'cal' AND origin = 'fire'
                AND scheduled_at > {}",
            ts(since)
        ))
    };
    let call = |what: &str, r: Result<(u16, serde_json::Value), String>, want: u16| {
        let (status, body) = r.unwrap_or_else(|e| panic!("{what}: {e}\n{}", c.report()));
        assert_eq!(status, want, "{what}: {body}\n{}", c.report());
        body
    };
    let put = |dates: &serde_json::Value, want: u16| {
        call(
            "PUT /calendars/off on the follower",
            c.request(
                follower,
                "/calendars/off",
                &Request::put_json(&json!({ "dates": dates })),
            ),
            want,
        )
    };
    put(&json!(["2000-01-01"]), 201);
    call(
        "POST /jobs on the follower",
        c.post(
            follower,
            "/jobs",
            &json!({"id": "cal", "plugin": "hello", "exclude": ["off"], "keep_runs": 1000,
                    "trigger": {"type": "interval", "every": "1s", "start": START}}),
        ),
        201,
    );
    let added = Utc::now();
    c.wait_for(
        "a fire of the job within 3 s",
        Duration::from_secs(3),
        || fires_after(added) >= 1,
    );

    // Today and tomorrow (UTC, the zone of an interval) off: the leader
    // takes the change within its sync and fires no more.
    let today = Utc::now().date_naive();
    let range = format!("{today}..{}", today + Span::days(1));
    put(&json!([range]), 200);
    let excluded = Utc::now();
    c.wait_for(
        "the leader to have the changed calendar within 2 s",
        Duration::from_secs(2),
        || {
            c.get(leader, "/calendars/off")
                .is_ok_and(|(_, v)| v["dates"] == json!([range]))
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        fires_after(excluded + Span::seconds(1)),
        0,
        "fires more than 1 s after the calendar excluded today\n{}",
        c.report()
    );
    let job = call(
        "GET /jobs/cal on the leader",
        c.get(leader, "/jobs/cal"),
        200,
    );
    let next = job["next_run_time"].as_str().unwrap_or_default().to_owned();
    assert!(
        next.starts_with(&(today + Span::days(2)).to_string()),
        "the next fire is the day after tomorrow: {job}"
    );

    // Freed again: it fires again.
    put(&json!(["2000-01-01"]), 200);
    let freed = Utc::now();
    c.wait_for(
        "a fire after the calendar freed today, within 3 s",
        Duration::from_secs(3),
        || fires_after(freed) >= 1,
    );
    assert_no_doubles(&c);
}

#[test]
fn a_cluster_stopped_and_started_again_resumes_and_accounts_for_the_stopped_fires() {
    let (keep, merge) = (5, 5);
    let mut c = Cluster::start(
        BIN,
        3,
        &jobs_file(&[("keep", keep, EVERY_FIRE), ("merge", merge, "")]),
        &["--lease", LEASE],
    );
    let (_, lease) = c.leader();
    c.wait_for(
        "three finished fires of every job",
        Duration::from_secs(60),
        || {
            jobs_with_finished(&c, "keep", 3, long_ago()) == keep as i64
                && jobs_with_finished(&c, "merge", 3, long_ago()) == merge as i64
        },
    );

    let stopping = Utc::now();
    for i in c.running() {
        c.sigterm(i);
    }
    for i in 0..c.len() {
        let status = c.wait_exit(i);
        assert!(status.success(), "host {i} exited {status}\n{}", c.report());
    }
    let in_flight = c
        .db()
        .rows("SELECT job_id, scheduled_at::text, status FROM runs WHERE status IN ('pending', 'running')");
    assert!(
        in_flight.is_empty(),
        "a clean stop leaves no run in flight: {}\n{}",
        show(&in_flight),
        c.report()
    );
    std::thread::sleep(Duration::from_secs(5));

    for i in 0..c.len() {
        c.restart(i);
    }
    let restarted = Utc::now();
    let (_, again) = c.leader();
    assert!(
        again.term > lease.term,
        "the leader after the restart has term {} (before: {})",
        again.term,
        lease.term
    );
    let after = restarted + Span::seconds(1);
    c.wait_for(
        "two finished fires of every job after the restart",
        Duration::from_secs(60),
        || {
            jobs_with_finished(&c, "keep", 2, after) == keep as i64
                && jobs_with_finished(&c, "merge", 2, after) == merge as i64
        },
    );

    assert_no_doubles(&c);
    // coalesce = false: every stopped second ran, late.
    assert_every_fire_once(&c, "keep-");
    // coalesce = true: the stopped seconds are one run and one `missed`
    // row counting the rest.
    let gaps = unexplained_gaps(c.db(), "merge-");
    assert!(
        gaps.is_empty(),
        "seconds of merge-* jobs with no fire row and no missed row before them \
         (job | second | row before): {}\n{}",
        show(&gaps),
        c.report()
    );
    let unaccounted = c.db().rows(&format!(
        "SELECT j.id FROM jobs j WHERE j.id LIKE 'merge-%' AND NOT EXISTS
           (SELECT 1 FROM runs r WHERE r.job_id = j.id AND r.origin = 'fire'
               AND r.status = 'missed' AND r.scheduled_at BETWEEN {} AND {})
          ORDER BY 1",
        ts(stopping - Span::seconds(1)),
        ts(restarted)
    ));
    assert!(
        unaccounted.is_empty(),
        "merge-* jobs with no missed row for the fires while stopped ({stopping} to \
         {restarted}): {}\n{}",
        show(&unaccounted),
        c.report()
    );
}

/// `n` jobs `PREFIX-000`… of plugin `slow` sleeping `millis` every second
/// from [`START`], each with the TOML lines `extra`.
fn slow_jobs(prefix: &str, n: usize, millis: u64, extra: &str) -> String {
    let mut file = String::from("version = 1\n");
    for i in 0..n {
        let _ = write!(
            file,
            "\n[[jobs]]\nid = \"{prefix}-{i:03}\"\nplugin = \"slow\"\nargs = {{ millis = {millis} }}\n\
             trigger = {{ type = \"interval\", every = \"1s\", start = \"{START}\" }}\n\
             keep_runs = 1000\n{extra}\n"
        );
    }
    file
}

#[test]
fn max_instances_holds_across_hosts() {
    let jobs = 5;
    let c = Cluster::start(
        BIN,
        3,
        &slow_jobs("long", jobs, 2500, "max_instances = 1"),
        &["--lease", LEASE],
    );
    c.leader();
    c.wait_for(
        "three finished runs of every job",
        Duration::from_secs(90),
        || jobs_with_finished(&c, "long", 3, long_ago()) == jobs as i64,
    );
    let overlaps = c.db().rows(
        "SELECT a.job_id, a.host, a.started_at::text, coalesce(a.ended_at::text, '-'),
                b.host, b.started_at::text, coalesce(b.ended_at::text, '-')
           FROM runs a JOIN runs b ON a.job_id = b.job_id AND a.run_id < b.run_id
          WHERE a.job_id LIKE 'long-%'
            AND a.started_at IS NOT NULL AND b.started_at IS NOT NULL
            AND a.started_at < coalesce(b.ended_at, 'infinity')
            AND b.started_at < coalesce(a.ended_at, 'infinity')
          ORDER BY 1, 3",
    );
    assert!(
        overlaps.is_empty(),
        "runs of a job with max_instances = 1 that overlap (job | host | started | ended | \
         host | started | ended): {}\n{}",
        show(&overlaps),
        c.report()
    );
    let hosts = c
        .db()
        .strings("SELECT DISTINCT host FROM runs WHERE job_id LIKE 'long-%' AND host IS NOT NULL");
    eprintln!("long runs ran on {hosts:?}");
    // A fire while the job's one run goes on is skipped (and recorded),
    // never queued: runs start on time, they do not pile up behind each
    // other.
    let late = c.db().rows(
        "SELECT job_id, scheduled_at::text, status, coalesce(host, '-'),
                coalesce((started_at - scheduled_at)::text, 'not started')
           FROM runs
          WHERE job_id LIKE 'long-%' AND origin = 'fire'
            AND (started_at - scheduled_at > interval '2 s'
                 OR (status = 'pending' AND scheduled_at < now() - interval '2 s'))
          ORDER BY 2, 1",
    );
    assert!(
        late.is_empty(),
        "fires of jobs with max_instances = 1 queued behind the running one instead of being \
         skipped (job | scheduled_at | status | host | started after): {}\n{}",
        show(&late),
        c.report()
    );
    assert_no_doubles(&c);
}

/// Overlap policies (issue 13) on a shared store: the claim that finds a
/// job at its `max_instances` applies the policy, whichever host runs the
/// job's run going; `cancel-other` stops a run on any host (NOTIFY).
#[test]
fn overlap_policies_hold_across_hosts() {
    let mut jobs = slow_jobs("buf", 2, 2500, "overlap = \"buffer-one\"");
    // 60 s guests fired every 3 s: each fire replaces the run before it.
    jobs.push_str(
        &slow_jobs("can", 2, 60_000, "overlap = \"cancel-other\"")
            .replace("version = 1\n", "")
            .replace("every = \"1s\"", "every = \"3s\""),
    );
    let c = Cluster::start(BIN, 2, &jobs, &["--lease", LEASE]);
    c.leader();
    c.wait_for(
        "three finished runs of each buffer-one job and three cancelled runs of each \
         cancel-other job",
        Duration::from_secs(120),
        || {
            jobs_with_finished(&c, "buf", 3, long_ago()) == 2
                && c.db().count(
                    "SELECT count(*) FROM (SELECT job_id FROM runs
                      WHERE job_id LIKE 'can-%' AND status = 'interrupted'
                        AND note LIKE 'cancelled by overlap cancel-other%'
                      GROUP BY job_id HAVING count(*) >= 3) x",
                ) == 2
        },
    );
    // Neither policy lets two runs of a job (max_instances 1) overlap, on
    // whichever hosts they ran.
    let overlaps = c.db().rows(
        "SELECT a.job_id, a.host, a.started_at::text, coalesce(a.ended_at::text, '-'),
                b.host, b.started_at::text, coalesce(b.ended_at::text, '-')
           FROM runs a JOIN runs b ON a.job_id = b.job_id AND a.run_id < b.run_id
          WHERE (a.job_id LIKE 'buf-%' OR a.job_id LIKE 'can-%')
            AND a.started_at IS NOT NULL AND b.started_at IS NOT NULL
            AND a.started_at < coalesce(b.ended_at, 'infinity')
            AND b.started_at < coalesce(a.ended_at, 'infinity')
          ORDER BY 1, 3",
    );
    assert!(
        overlaps.is_empty(),
        "overlapping runs (job | host | started | ended | host | started | ended): {}\n{}",
        show(&overlaps),
        c.report()
    );
    // buffer-one: fires waited (and then ran) instead of being skipped,
    // and those beyond the one waiting were skipped, saying why.
    let buffered_ran = c.db().count(
        "SELECT count(*) FROM runs WHERE job_id LIKE 'buf-%' AND status = 'finished'
            AND note LIKE 'buffered:%overlap buffer-one%'",
    );
    let full = c.db().count(
        "SELECT count(*) FROM runs WHERE job_id LIKE 'buf-%' AND status = 'skipped'
            AND note LIKE '%fire(s) already waiting (overlap buffer-one)%'",
    );
    assert!(
        buffered_ran >= 2 && full >= 1,
        "buffered runs that ran: {buffered_ran}, skipped with the buffer full: {full}\n{}",
        c.report()
    );
    // cancel-other: the cancelled runs were not retried (the fire that
    // replaced each is the next try).
    let retried = c
        .db()
        .count("SELECT count(*) FROM runs WHERE job_id LIKE 'can-%' AND attempt > 1");
    assert_eq!(retried, 0, "{}", c.report());
    assert_no_doubles(&c);
}

#[test]
fn a_follower_killed_mid_run_has_its_runs_interrupted_and_retried_elsewhere() {
    let jobs = 4;
    let mut c = Cluster::start(
        BIN,
        3,
        &slow_jobs(
            "long",
            jobs,
            6000,
            "retry = { max_attempts = 2, delay = \"1s\", retry_on = [\"interrupted\"] }",
        ),
        &["--lease", LEASE],
    );
    let (leader, _) = c.leader();
    let names: Vec<(usize, String)> = c.names();
    let running_on = |c: &Cluster, i: usize| {
        c.db().strings(&format!(
            "SELECT run_id FROM runs WHERE status = 'running' AND attempt = 1 AND host = '{}'",
            names[i].1
        ))
    };
    // A follower with a run in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        if let Some(i) = c
            .running()
            .into_iter()
            .find(|&i| i != leader && !running_on(&c, i).is_empty())
        {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "no follower ran a run within 60 s\n{}",
            c.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let victim_name = names[victim].1.clone();
    c.kill9(victim);
    let killed = Instant::now();
    let cut: Vec<String> = running_on(&c, victim);
    assert!(!cut.is_empty(), "the run ended before the kill; try again");
    let quoted = cut
        .iter()
        .map(|r| format!("'{r}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = |c: &Cluster| {
        show(&c.db().rows(&format!(
            "SELECT r.job_id, r.scheduled_at::text, r.attempt::text, r.status,
                    coalesce(r.host, '-'), coalesce(r.note, '')
               FROM runs r JOIN runs k ON k.job_id = r.job_id AND k.scheduled_at = r.scheduled_at
              WHERE k.run_id IN ({quoted}) ORDER BY 1, 2, 3"
        )))
    };
    c.wait_for(
        "the killed follower's runs to be recorded interrupted within the TTL + 5 s",
        TTL + Duration::from_secs(5),
        || {
            c.db().count(&format!(
                "SELECT count(*) FROM runs WHERE run_id IN ({quoted}) AND status = 'interrupted'"
            )) == i64::try_from(cut.len()).unwrap_or(0)
        },
    );
    eprintln!(
        "{} run(s) of {victim_name} recorded interrupted {:?} after the kill",
        cut.len(),
        killed.elapsed()
    );
    // Each is retried (attempt 2) and finishes on a host still up.
    c.wait_for(
        "the interrupted runs' retries to finish on another host",
        Duration::from_secs(60),
        || {
            c.db().count(&format!(
                "SELECT count(*) FROM runs r JOIN runs k
                     ON k.job_id = r.job_id AND k.scheduled_at = r.scheduled_at
                  WHERE k.run_id IN ({quoted}) AND r.attempt = 2 AND r.origin = 'fire'
                    AND r.status = 'finished' AND r.host <> '{victim_name}'"
            )) == i64::try_from(cut.len()).unwrap_or(0)
        },
    );
    eprintln!("the interrupted runs and their retries: {}", rows(&c));
    assert_no_doubles(&c);
}

// ---- Plugins pushed through the API, divergence, events, cluster status
// (issue 11 step 5): what a user of several hosts sees through any one.

/// A pushed plugin is compiled before `PUT` answers (a debug cranelift on a
/// loaded machine); a host then writes and loads it within a second or two.
const PUSH: Duration = Duration::from_secs(120);

/// The SHA-256 of the built plugin `name`, as the host names versions.
fn hash_of(name: &str) -> String {
    let bytes = std::fs::read(plugin_path(name)).expect("a built plugin");
    wasmcron::plugin::ContentHash::of(&bytes)
        .as_str()
        .to_owned()
}

/// Plugin `name` as host `i`'s `GET /plugins` lists it (`None` when not
/// listed or the host does not answer).
fn listed(c: &Cluster, i: usize, name: &str) -> Option<serde_json::Value> {
    match c.get(i, "/plugins") {
        Ok((200, serde_json::Value::Array(list))) => list.into_iter().find(|p| p["name"] == name),
        _ => None,
    }
}

/// `hosts` of a plugin entry as `(host, hash or "null")`, sorted by host.
fn versions(entry: &serde_json::Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = entry["hosts"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    (
                        h["host"].as_str().unwrap_or("?").to_owned(),
                        h["hash"].as_str().unwrap_or("null").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every entry of host `i`'s folder (hidden ones too), sorted.
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_plugin_pushed_through_one_host_runs_on_every_host_and_a_delete_through_another_removes_it_everywhere()
 {
    let mut c = Cluster::new(BIN, "version = 1\n", &["--lease", LEASE]);
    // Only A has `slow`; B and C have its compiled code cached (so the
    // file, once it arrives, loads without a second and third debug
    // compile: the test is about distribution, A's push compiles it).
    let a = c.add_host_with(
        &[("hello", "hello"), ("slow", "slow")],
        &["hello", "slow"],
        &[],
    );
    let b = c.add_host_with(&[("hello", "hello")], &["hello", "slow"], &[]);
    let d = c.add_host_with(&[("hello", "hello")], &["hello", "slow"], &[]);
    c.leader();
    let (a_name, b_name, d_name) = (c.name(a), c.name(b), c.name(d));
    let slow = hash_of("slow");
    for i in [b, d] {
        assert!(
            !c.plugins_dir(i).join("slow.wasm").exists() && listed(&c, i, "slow").is_none(),
            "host {i} has slow before the push\n{}",
            c.report()
        );
    }
    // Before the push, A's view says B and C lack it.
    c.wait_for(
        "A's GET /plugins to show slow divergent, B and C without it (hash null)",
        Duration::from_secs(15),
        || {
            listed(&c, a, "slow").is_some_and(|p| {
                p["divergent"] == true
                    && versions(&p)
                        == vec![
                            (a_name.clone(), slow.clone()),
                            (b_name.clone(), "null".to_owned()),
                            (d_name.clone(), "null".to_owned()),
                        ]
            })
        },
    );

    // Pushed through A with the CLI.
    let out = c.cli(&[
        "plugins",
        "push",
        plugin_path("slow"),
        "--url",
        c.api(a),
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wasmcron plugins push: {}\n{stdout}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        c.report()
    );
    let pushed: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("plugins push --json printed no JSON ({e}): {stdout}"));
    assert_eq!(
        (
            pushed["name"].as_str(),
            pushed["hash"].as_str(),
            pushed["cluster"].as_bool()
        ),
        (Some("slow"), Some(slow.as_str()), Some(true)),
        "the push's answer: {pushed}"
    );
    let pushed_at = Instant::now();

    // B and C write it into their folders and load it, same version.
    let bytes = std::fs::read(plugin_path("slow")).expect("slow.wasm");
    c.wait_for(
        "slow.wasm in B's and C's folders and loaded there with A's hash",
        PUSH,
        || {
            [b, d].iter().all(|&i| {
                std::fs::read(c.plugins_dir(i).join("slow.wasm")).is_ok_and(|f| f == bytes)
                    && listed(&c, i, "slow").is_some_and(|p| {
                        p["status"] == "loaded" && p["hash"].as_str() == Some(slow.as_str())
                    })
            })
        },
    );
    eprintln!(
        "slow loaded on B and C {:?} after the push",
        pushed_at.elapsed()
    );
    c.wait_for(
        "every host's GET /plugins to show one version of slow on all three",
        Duration::from_secs(15),
        || {
            [a, b, d].iter().all(|&i| {
                listed(&c, i, "slow").is_some_and(|p| {
                    p.get("divergent").is_none()
                        && versions(&p)
                            == vec![
                                (a_name.clone(), slow.clone()),
                                (b_name.clone(), slow.clone()),
                                (d_name.clone(), slow.clone()),
                            ]
                })
            })
        },
    );

    // Jobs of it run on B and C too (added through B).
    for n in 0..6 {
        let (status, body) = c
            .post(
                b,
                "/jobs",
                &json!({"id": format!("pushed-{n}"), "plugin": "slow", "args": {"millis": 300},
                        "keep_runs": 1000, "max_instances": 3,
                        "trigger": {"type": "interval", "every": "1s", "start": START}}),
            )
            .unwrap_or_else(|e| panic!("POST /jobs: {e}\n{}", c.report()));
        assert_eq!(status, 201, "POST /jobs on B: {body}\n{}", c.report());
    }
    let ran = |host: &str| {
        c.db().count(&format!(
            "SELECT count(*) FROM runs WHERE job_id LIKE 'pushed-%' AND host = '{host}'
                AND status = 'finished' AND outcome_kind = 'succeeded'
                AND plugin_hash = '{slow}'"
        ))
    };
    c.wait_for(
        "succeeded runs of the pushed plugin's jobs on B and on C",
        Duration::from_secs(60),
        || ran(&b_name) > 0 && ran(&d_name) > 0,
    );
    eprintln!(
        "runs of the pushed plugin (host | plugin hash | status | runs): {}",
        show(&c.db().rows(
            "SELECT coalesce(host, '-'), coalesce(left(plugin_hash, 12), '-'), status,
                    count(*)::text FROM runs WHERE job_id LIKE 'pushed-%' GROUP BY 1, 2, 3
              ORDER BY 1, 2, 3"
        ))
    );

    // Removed through C with the API: gone from every folder and host.
    let (status, body) = c
        .delete(d, "/plugins/slow")
        .unwrap_or_else(|e| panic!("DELETE /plugins/slow: {e}\n{}", c.report()));
    assert_eq!(
        status,
        204,
        "DELETE /plugins/slow on C: {body}\n{}",
        c.report()
    );
    c.wait_for(
        "slow.wasm to leave every folder and every host's GET /plugins",
        Duration::from_secs(20),
        || {
            [a, b, d].iter().all(|&i| {
                !c.plugins_dir(i).join("slow.wasm").exists()
                    && matches!(c.get(i, "/plugins/slow"), Ok((404, _)))
            })
        },
    );
    let gone = Utc::now();
    for i in [a, b, d] {
        assert_eq!(
            entries(&c.plugins_dir(i)),
            vec!["hello.wasm".to_owned()],
            "host {i}'s folder after the delete\n{}",
            c.report()
        );
    }
    // Its jobs wait for it: no host starts a run of them any more.
    c.wait_for(
        "the pushed plugin's jobs to wait for it",
        Duration::from_secs(10),
        || {
            matches!(c.get(a, "/jobs/pushed-0"),
                     Ok((200, j)) if j["state"] == "waiting-for-plugin")
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    let started = c.db().rows(&format!(
        "SELECT job_id, scheduled_at::text, started_at::text, coalesce(host, '-') FROM runs
          WHERE job_id LIKE 'pushed-%' AND started_at > {} ORDER BY 3",
        ts(gone + Span::seconds(1))
    ));
    assert!(
        started.is_empty(),
        "runs of the deleted plugin started more than 1 s after every host dropped it ({gone}): \
         {}\n{}",
        show(&started),
        c.report()
    );
    assert_no_doubles(&c);
}

#[test]
fn a_plugin_whose_versions_differ_between_hosts_is_flagged_divergent_until_pushed_again() {
    let mut c = Cluster::new(BIN, "version = 1\n", &["--lease", LEASE]);
    // A and B: hello and slow. A also has `extra` (the counter plugin),
    // which B and C lack. C: another plugin's file as hello.wasm, copied by
    // hand (never pushed).
    let a = c.add_host_with(
        &[("hello", "hello"), ("slow", "slow"), ("extra", "counter")],
        &["hello", "slow", "counter"],
        &[],
    );
    let b = c.add_host_with(
        &[("hello", "hello"), ("slow", "slow")],
        &["hello", "slow"],
        &[],
    );
    let d = c.add_host_with(
        &[("hello", "counter"), ("slow", "slow")],
        &["hello", "slow", "counter"],
        &[],
    );
    c.leader();
    let (a_name, b_name, d_name) = (c.name(a), c.name(b), c.name(d));
    let (hello, counter, slow) = (hash_of("hello"), hash_of("counter"), hash_of("slow"));
    let want_hello = vec![
        (a_name.clone(), hello.clone()),
        (b_name.clone(), hello.clone()),
        (d_name.clone(), counter.clone()),
    ];
    c.wait_for(
        "every host's GET /plugins to flag hello divergent with each host's hash",
        Duration::from_secs(15),
        || {
            [a, b, d].iter().all(|&i| {
                listed(&c, i, "hello")
                    .is_some_and(|p| p["divergent"] == true && versions(&p) == want_hello)
            })
        },
    );
    for i in [a, b, d] {
        let p = listed(&c, i, "slow").unwrap_or_default();
        assert!(
            p.get("divergent").is_none()
                && versions(&p)
                    == vec![
                        (a_name.clone(), slow.clone()),
                        (b_name.clone(), slow.clone()),
                        (d_name.clone(), slow.clone()),
                    ],
            "host {i}: slow, the same everywhere, is listed as {p}\n{}",
            c.report()
        );
    }
    let extra = listed(&c, a, "extra").unwrap_or_default();
    assert!(
        extra["divergent"] == true
            && versions(&extra)
                == vec![
                    (a_name.clone(), counter.clone()),
                    (b_name.clone(), "null".to_owned()),
                    (d_name.clone(), "null".to_owned()),
                ],
        "a plugin only A has, on A's GET /plugins (hosts without it: hash null): {extra}\n{}",
        c.report()
    );
    // So does the CLI's list: three hosts have hello, at two versions.
    let out = c.cli(&["plugins", "list", "--url", c.api(b)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text
                .lines()
                .any(|l| l.starts_with("hello ") && l.contains("3 (DIVERGENT)"))
            && text
                .lines()
                .any(|l| l.starts_with("slow ") && !l.contains("DIVERGENT")),
        "wasmcron plugins list on B:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The one-plugin route says the same.
    let one = c.get(b, "/plugins/hello");
    assert!(
        matches!(&one, Ok((200, p)) if p["divergent"] == true && versions(p) == want_hello),
        "GET /plugins/hello on B: {one:?}\n{}",
        c.report()
    );
    // Nothing overwrites a file copied by hand while nothing was pushed.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        std::fs::read(c.plugins_dir(d).join("hello.wasm")).ok(),
        std::fs::read(plugin_path("counter")).ok(),
        "C's hand-copied hello.wasm changed with nothing pushed\n{}",
        c.report()
    );

    // Pushing it again (through B) brings every host to one version.
    let bytes = std::fs::read(plugin_path("hello")).expect("hello.wasm");
    let (status, body) = c
        .request(
            b,
            "/plugins/hello",
            &Request::put_bytes(bytes).timeout(PUSH),
        )
        .unwrap_or_else(|e| panic!("PUT /plugins/hello: {e}\n{}", c.report()));
    assert_eq!(
        status,
        200,
        "PUT /plugins/hello on B: {body}\n{}",
        c.report()
    );
    let same = vec![
        (a_name.clone(), hello.clone()),
        (b_name.clone(), hello.clone()),
        (d_name.clone(), hello.clone()),
    ];
    c.wait_for(
        "hello to be one version on every host after the push",
        Duration::from_secs(30),
        || {
            [a, b, d].iter().all(|&i| {
                listed(&c, i, "hello")
                    .is_some_and(|p| p.get("divergent").is_none() && versions(&p) == same)
            })
        },
    );
}

#[test]
fn events_on_one_host_carry_the_runs_of_every_host() {
    let c = Cluster::start(
        BIN,
        3,
        &jobs_file(&[("tick", 12, "max_instances = 5")]),
        &["--lease", LEASE],
    );
    c.leader();
    c.wait_for(
        "a finished fire of every job",
        Duration::from_secs(60),
        || jobs_with_finished(&c, "tick", 1, long_ago()) == 12,
    );
    let ids: std::collections::BTreeMap<String, String> = c
        .running()
        .into_iter()
        .map(|i| {
            let v = c.view(i).unwrap_or_else(|e| panic!("{e}\n{}", c.report()));
            (v.host.name, v.host.id)
        })
        .collect();
    let watched = 2;
    let events = c
        .events(watched, "/events", Duration::from_secs(6))
        .unwrap_or_else(|e| panic!("GET /events on host {watched}: {e}\n{}", c.report()));
    let succeeded: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e.event == "run-succeeded")
        .map(|e| &e.data)
        .collect();
    let mut by_host: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for e in &succeeded {
        assert!(
            e["event"] == "run-succeeded"
                && e["job_id"].as_str().is_some_and(|j| j.starts_with("tick-"))
                && e["run_id"].is_string(),
            "a run-succeeded event without its event, job_id or run_id: {e}"
        );
        let host = e["host"].as_str().unwrap_or_default();
        assert_eq!(
            ids.get(host),
            e["host_id"].as_str().map(str::to_owned).as_ref(),
            "an event's host and host_id do not name one host of {ids:?}: {e}"
        );
        *by_host.entry(host.to_owned()).or_default() += 1;
    }
    eprintln!(
        "{} events in 6 s on host {watched}, {} run-succeeded by host: {by_host:?}",
        events.len(),
        succeeded.len()
    );
    assert!(
        by_host.len() >= 2,
        "GET /events on host {watched} showed run-succeeded events of {by_host:?} only (every \
         host runs fires; events of all kinds: {:?})\n{}",
        events
            .iter()
            .map(|e| e.event.as_str())
            .collect::<std::collections::BTreeSet<_>>(),
        c.report()
    );
    // Each names the host the runs table says ran it.
    let wrong: Vec<String> = succeeded
        .iter()
        .filter_map(|e| {
            let run = e["run_id"].as_str()?;
            let host = c.db().strings(&format!(
                "SELECT coalesce(host, '-') FROM runs WHERE run_id = '{run}'"
            ));
            (host.first().map(String::as_str) != e["host"].as_str())
                .then(|| format!("{run}: event says {}, runs says {host:?}", e["host"]))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "run-succeeded events naming another host than the run's row: {wrong:#?}\n{}",
        c.report()
    );
}

#[test]
fn cluster_status_lists_the_leader_and_every_host_with_its_plugins() {
    let mut c = Cluster::start(BIN, 3, "version = 1\n", &["--lease", LEASE]);
    let (leader, _) = c.leader();
    let names: Vec<(usize, String)> = c.names();
    let leader_name = c.name(leader);
    let (hello, slow) = (hash_of("hello"), hash_of("slow"));
    let status_json = |c: &Cluster, via: usize| {
        let out = c.cli(&["cluster", "status", "--url", c.api(via), "--json"]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "wasmcron cluster status --json: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str::<serde_json::Value>(&stdout)
            .unwrap_or_else(|e| panic!("cluster status --json printed no JSON ({e}): {stdout}"))
    };
    let all_up = |v: &serde_json::Value| {
        let hosts = v["hosts"].as_array().cloned().unwrap_or_default();
        hosts.len() == 3
            && names.iter().all(|(_, n)| {
                hosts.iter().any(|h| {
                    let plugins: Vec<(String, String)> = h["plugins"]
                        .as_array()
                        .map(|ps| {
                            let mut ps: Vec<(String, String)> = ps
                                .iter()
                                .map(|p| {
                                    (
                                        p["name"].as_str().unwrap_or("?").to_owned(),
                                        p["hash"].as_str().unwrap_or("?").to_owned(),
                                    )
                                })
                                .collect();
                            ps.sort();
                            ps
                        })
                        .unwrap_or_default();
                    h["name"] == n.as_str()
                        && h["alive"] == true
                        && h["last_heartbeat"].as_str().is_some_and(|t| {
                            chrono::DateTime::parse_from_rfc3339(t)
                                .is_ok_and(|t| (Utc::now() - t.to_utc()).abs() < Span::seconds(60))
                        })
                        && plugins
                            == vec![
                                ("hello".to_owned(), hello.clone()),
                                ("slow".to_owned(), slow.clone()),
                            ]
                })
            })
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let view = loop {
        let v = status_json(&c, 1);
        if all_up(&v) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "cluster status --json never listed the 3 hosts alive with hello and slow: {v:#}\n{}",
            c.report()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        view["leader"]["name"],
        leader_name.as_str(),
        "cluster status --json names another leader: {view:#}"
    );

    let table = |c: &Cluster, via: usize| {
        let out = c.cli(&["cluster", "status", "--url", c.api(via)]);
        assert!(out.status.success(), "wasmcron cluster status: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = table(&c, 2);
    assert!(
        text.lines()
            .any(|l| l.starts_with("leader:") && l.contains(&leader_name)),
        "cluster status does not name the leader {leader_name}:\n{text}"
    );
    for (_, n) in &names {
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(n.as_str()))
            .collect();
        assert!(
            rows.len() == 1 && rows[0].contains("alive") && rows[0].contains(&hello[..12]),
            "cluster status has no single row for {n} alive with hello@{}:\n{text}",
            &hello[..12]
        );
        assert_eq!(
            rows[0].contains("leader"),
            *n == leader_name,
            "the leader's row, and only it, says leader:\n{text}"
        );
    }

    // /metrics on any host has the cluster's series.
    let metrics = c.get(1, "/metrics");
    let text = match &metrics {
        Ok((200, serde_json::Value::String(t))) => t.clone(),
        other => panic!("GET /metrics: {other:?}"),
    };
    assert!(
        text.lines()
            .any(|l| l == "wasmcron_cluster_hosts{alive=\"true\"} 3"),
        "/metrics does not count 3 live hosts:\n{text}"
    );
    for (_, n) in &names {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("wasmcron_host_runs_in_flight{{host=\"{n}\"}} "))),
            "/metrics has no series for host {n}:\n{text}"
        );
    }

    // A host killed is listed as stopped once silent for the TTL.
    let victim = names
        .iter()
        .find(|(i, _)| *i != leader)
        .map(|(i, n)| (*i, n.clone()))
        .expect("a follower");
    c.kill9(victim.0);
    let via = c.running()[0];
    c.wait_for(
        "cluster status to list the killed host as not alive",
        TTL + Duration::from_secs(10),
        || {
            status_json(&c, via)["hosts"].as_array().is_some_and(|hs| {
                hs.iter()
                    .any(|h| h["name"] == victim.1.as_str() && h["alive"] == false)
            })
        },
    );
    let text = table(&c, via);
    assert!(
        text.lines().any(|l| {
            l.split_whitespace().next() == Some(victim.1.as_str()) && l.contains("stopped")
        }),
        "cluster status does not show the killed {} as stopped:\n{text}",
        victim.1
    );
}

#[test]
fn bad_pushes_and_deletes_are_refused_and_reach_no_folder() {
    const TOKEN: &str = "cluster-test-token-0123456789abcdef";
    let mut c = Cluster::new(BIN, "version = 1\n", &["--lease", LEASE]);
    let a = c.add_host_with(
        &[("hello", "hello"), ("slow", "slow")],
        &["hello", "slow"],
        &["--token", TOKEN],
    );
    // Every host of a cluster has the one token (see
    // hosts_of_one_database_must_share_one_api_token_and_have_names_of_their_own).
    let b = c.add_host_with(
        &[("hello", "hello"), ("slow", "slow")],
        &["hello", "slow"],
        &["--token", TOKEN],
    );
    let d = c.add_host_with(
        &[("hello", "hello"), ("slow", "slow")],
        &["hello", "slow"],
        &["--token", TOKEN],
    );
    c.leader();
    let all = [a, b, d];
    let snapshot = |c: &Cluster| -> Vec<(Vec<String>, Vec<String>)> {
        all.iter()
            .map(|&i| {
                let top: Vec<String> = entries(c.dir(i))
                    .into_iter()
                    .filter(|n| !n.starts_with("host-"))
                    .collect();
                (entries(&c.plugins_dir(i)), top)
            })
            .collect()
    };
    let before = snapshot(&c);
    let escape = format!("wasmcron-escape-{}", std::process::id());
    let outside = std::env::temp_dir().join(format!("{escape}.wasm"));
    let hello = std::fs::read(plugin_path("hello")).expect("hello.wasm");
    let slow_push = PUSH;
    let call = |i: usize, path: &str, req: Request<'_>| {
        c.request(i, path, &req)
            .unwrap_or_else(|e| panic!("{path} on host {i}: {e}\n{}", c.report()))
    };

    // Files the folder would refuse: 422, whatever the host.
    let bad_files: Vec<(&str, Vec<u8>)> = vec![
        ("not wasm", b"this is not a WebAssembly file".to_vec()),
        ("empty", Vec::new()),
        ("a core module", b"\0asm\x01\0\0\0".to_vec()),
        ("cut short", hello[..hello.len() / 2].to_vec()),
    ];
    for (what, bytes) in bad_files {
        let (status, body) = call(
            b,
            "/plugins/junk",
            Request::put_bytes(bytes).timeout(slow_push).token(TOKEN),
        );
        assert_eq!(
            status,
            422,
            "PUT /plugins/junk with {what}: {body}\n{}",
            c.report()
        );
    }
    // Names that are not plugin names (a good file): 400 or 422.
    let long = "a".repeat(129);
    let bad_names = [
        "..%2Fx".to_owned(),
        format!("..%2F..%2F..%2F{escape}"),
        ".hidden".to_owned(),
        "a%2Fb".to_owned(),
        "x%00y".to_owned(),
        "with%20space".to_owned(),
        "%C3%A9t%C3%A9".to_owned(),
        long,
    ];
    for name in &bad_names {
        let path = format!("/plugins/{name}");
        let (status, body) = call(
            b,
            &path,
            Request::put_bytes(hello.clone())
                .timeout(slow_push)
                .token(TOKEN),
        );
        assert!(
            status == 400 || status == 422,
            "PUT {path}: {status} {body}\n{}",
            c.report()
        );
        let (status, body) = call(b, &path, Request::new(reqwest::Method::DELETE).token(TOKEN));
        assert!(
            status == 400 || status == 422,
            "DELETE {path}: {status} {body}\n{}",
            c.report()
        );
    }
    let (status, body) = call(
        b,
        "/plugins/nothing-here",
        Request::new(reqwest::Method::DELETE).token(TOKEN),
    );
    assert_eq!(status, 404, "DELETE of a plugin that is not there: {body}");

    // The host with a token: no change without it.
    for token in [None, Some("wrong")] {
        let mut put = Request::put_bytes(hello.clone());
        let mut del = Request::new(reqwest::Method::DELETE);
        if let Some(t) = token {
            put = put.token(t);
            del = del.token(t);
        }
        let (status, body) = call(a, "/plugins/hello2", put);
        assert_eq!(
            status,
            401,
            "PUT with token {token:?}: {body}\n{}",
            c.report()
        );
        let (status, body) = call(a, "/plugins/hello", del);
        assert_eq!(
            status,
            401,
            "DELETE with token {token:?}: {body}\n{}",
            c.report()
        );
    }
    let (status, body) = call(
        a,
        "/plugins/nothing-here",
        Request::new(reqwest::Method::DELETE).token(TOKEN),
    );
    assert_eq!(status, 404, "DELETE with the token, of nothing: {body}");

    // Sync rounds come every second: give them a few.
    std::thread::sleep(Duration::from_secs(3));
    let after = snapshot(&c);
    assert_eq!(
        after,
        before,
        "the hosts' folders (plugins | top level) changed after refused pushes and deletes\n{}",
        c.report()
    );
    assert!(
        !outside.exists(),
        "a push wrote {} outside every folder",
        outside.display()
    );
    let kept = c
        .db()
        .rows("SELECT name, hash, deleted::text FROM plugin_files");
    assert!(
        kept.is_empty(),
        "refused pushes and deletes left rows in plugin_files: {}\n{}",
        show(&kept),
        c.report()
    );
    for i in all {
        let health = c.get(i, "/healthz");
        assert!(
            matches!(health, Ok((200, _))),
            "host {i} after the attacks: /healthz {health:?}\n{}",
            c.report()
        );
        for name in ["hello", "slow"] {
            let p = listed(&c, i, name).unwrap_or_default();
            assert!(
                p["status"] == "loaded" && p["hash"].as_str() == Some(hash_of(name).as_str()),
                "host {i} lists {name} as {p}\n{}",
                c.report()
            );
        }
        for name in ["junk", "hello2", "x", "hidden"] {
            assert!(
                listed(&c, i, name).is_none(),
                "host {i} lists a plugin {name} after refused pushes\n{}",
                c.report()
            );
        }
    }
}

/// Starts a host named `name` with `extra` on `c`'s database and asserts
/// it is refused at start, its log saying `expect` and naming `live`.
fn refused_named(c: &Cluster, name: &str, extra: &[&str], expect: &str, live: &str) {
    let dir = wasmcron_tests::host::setup("version = 1\n", &[]);
    let mut args = vec!["--host-name", name, "--lease", LEASE];
    args.extend_from_slice(extra);
    let host = wasmcron_tests::host::Host::start_with_db_url(BIN, dir.path(), c.db().url(), &args);
    let log_path = host.log_path().to_owned();
    let status = host.wait();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        !status.success(),
        "a host with {extra:?} joined a cluster with a token:\n{log}\n{}",
        c.report()
    );
    assert!(log.contains(expect), "{extra:?}: no `{expect}` in:\n{log}");
    assert!(
        log.contains(live),
        "the refusal does not name the live host {live}:\n{log}"
    );
}

#[test]
fn hosts_of_one_database_must_share_one_api_token_and_have_names_of_their_own() {
    const TOKEN: &str = "cluster-test-token-0123456789abcdef";
    let mut c = Cluster::new(BIN, "version = 1\n", &["--lease", LEASE]);
    let first = c.add_host_with(&[("hello", "hello")], &["hello"], &["--token", TOKEN]);
    c.leader();
    // A host that would join with no token, or another one: refused at
    // start, naming what to change; nothing of it stays behind.
    let refused = |c: &Cluster, extra: &[&str], expect: &str, live: &str| {
        refused_named(c, "intruder", extra, expect, live);
    };
    let name = c.name(first);
    refused(&c, &[], "require an API token", &name);
    refused(
        &c,
        &["--token", "another-token-0123456789abcdef"],
        "differs",
        &name,
    );
    // A second live host with the first one's name, and its token: refused
    // too (runs are recorded by host name), after waiting out the TTL in
    // case it was the same host restarting.
    refused_named(
        &c,
        &name,
        &["--token", TOKEN],
        "another live host is named",
        &name,
    );
    let hosts = c
        .db()
        .strings("SELECT name FROM hosts WHERE name = 'intruder'");
    assert!(
        hosts.is_empty(),
        "a refused host left a host row: {hosts:?}"
    );
    // The same token joins.
    let second = c.add_host_with(&[("hello", "hello")], &["hello"], &["--token", TOKEN]);
    assert!(c.is_running(second));
    // With every host stopped, a cluster restarted without a token takes
    // that as its choice; a host bringing a token then is refused.
    for i in [first, second] {
        c.sigterm(i);
        assert!(c.wait_exit(i).success(), "host {i} did not stop cleanly");
    }
    let open = c.add_host();
    c.leader_among(&[open]);
    refused(
        &c,
        &["--token", TOKEN],
        "run without an API token",
        &c.name(open),
    );
}

// ---- What a fresh user found trying the cluster (issue 11 follow-ups).

/// The jobs of `slow_jobs` without its `version = 1` line, to append to
/// another jobs file.
fn more_jobs(file: &str) -> &str {
    file.strip_prefix("version = 1\n").unwrap_or(file)
}

#[test]
fn a_leader_stopped_with_sigterm_mid_run_hands_over_at_once_and_still_records_its_run() {
    // Runs of 8 s: the old leader's one is still going well after the
    // hand-over, which must not wait for it.
    let jobs = 5;
    let mut file = jobs_file(&[("keep", jobs, EVERY_FIRE)]);
    file.push_str(more_jobs(&slow_jobs("long", 6, 8000, "")));
    // Only the first host has the slow plugin, and it leads (it starts
    // alone): so the leader is the one host that can claim the slow runs,
    // rather than the one that loses the race for them to idle followers
    // (claims go to whoever asks first, and the leader is busy firing).
    let mut c = Cluster::new(BIN, &file, &["--lease", LEASE]);
    let first = c.add_host_with(
        &[("hello", "hello"), ("slow", "slow")],
        &["hello", "slow"],
        &[],
    );
    let (old, lease) = c.leader();
    assert_eq!(old, first, "the only host does not lead\n{}", c.report());
    for _ in 0..2 {
        c.add_host_with(&[("hello", "hello")], &["hello"], &[]);
    }
    let old_name = c.name(old);
    // A run the leader started moments ago (so most of its 8 s are left).
    let deadline = Instant::now() + Duration::from_secs(90);
    let in_flight = loop {
        let ids = c.db().strings(&format!(
            "SELECT run_id FROM runs WHERE status = 'running' AND job_id LIKE 'long-%'
                AND host = '{old_name}' AND started_at > now() - interval '1500 ms'"
        ));
        if !ids.is_empty() {
            break ids;
        }
        assert!(
            Instant::now() < deadline,
            "the leader started no slow run within 90 s\n{}",
            c.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let quoted = in_flight
        .iter()
        .map(|r| format!("'{r}'"))
        .collect::<Vec<_>>()
        .join(", ");

    let survivors: Vec<usize> = c.running().into_iter().filter(|&i| i != old).collect();
    c.sigterm(old);
    let stopped = Instant::now();
    let stopped_at = Utc::now();
    let (new, l, took) = c
        .wait_new_leader(&survivors, lease.term, stopped, Duration::from_secs(2))
        .unwrap_or_else(|e| {
            panic!(
                "after SIGTERM to the leader (host {old}, term {}) with a run in flight: {e}\n{}",
                lease.term,
                c.report()
            )
        });
    eprintln!(
        "host {new} leads (term {}) {took:?} after SIGTERM; the old leader's runs: {in_flight:?}",
        l.term
    );
    let still = c.db().count(&format!(
        "SELECT count(*) FROM runs WHERE run_id IN ({quoted}) AND status = 'running'"
    ));
    assert!(
        still > 0,
        "the old leader's runs ended before the hand-over was seen, so this proves nothing\n{}",
        c.report()
    );

    // The old leader's runs end on it and are recorded as they ended:
    // finished, not interrupted by the new leader's sweep (it kept
    // heartbeating), and not retried.
    let status = c.wait_exit(old);
    assert!(
        status.success(),
        "the old leader exited {status}\n{}",
        c.report()
    );
    let ends = c.db().rows(&format!(
        "SELECT run_id, status, coalesce(host, '-'), coalesce(outcome_kind, '-'),
                coalesce(note, '')
           FROM runs WHERE run_id IN ({quoted}) ORDER BY 1"
    ));
    assert!(
        ends.len() == in_flight.len()
            && ends
                .iter()
                .all(|r| r[1] == "finished" && r[2] == old_name && r[3] == "succeeded"),
        "the old leader's runs in flight at SIGTERM (run | status | host | outcome | note): {}\n{}",
        show(&ends),
        c.report()
    );
    let retried = c.db().rows(&format!(
        "SELECT r.job_id, r.scheduled_at::text, r.attempt::text, r.status
           FROM runs r JOIN runs k ON k.job_id = r.job_id AND k.scheduled_at = r.scheduled_at
          WHERE k.run_id IN ({quoted}) AND r.attempt > 1"
    ));
    assert!(
        retried.is_empty(),
        "runs of the stopped leader were retried: {}\n{}",
        show(&retried),
        c.report()
    );

    // Meanwhile the new leader fired on time: every keep job has a fire
    // scheduled after the hand-over that started before the old leader's
    // run ended.
    let ended = c.db().strings(&format!(
        "SELECT max(ended_at)::text FROM runs WHERE run_id IN ({quoted})"
    ));
    let ended = ended.first().cloned().unwrap_or_default();
    let fired_meanwhile = c.db().count(&format!(
        "SELECT count(DISTINCT job_id) FROM runs
          WHERE job_id LIKE 'keep-%' AND origin = 'fire' AND status = 'finished'
            AND scheduled_at >= {} AND started_at < '{ended}'::timestamptz",
        ts(stopped_at + Span::seconds(2))
    ));
    assert_eq!(
        fired_meanwhile,
        jobs as i64,
        "keep jobs fired after the hand-over while the old leader's run (ended {ended}) went on\n{}",
        c.report()
    );
    let after = Utc::now() + Span::seconds(1);
    c.wait_for(
        "two finished fires of every job after the hand-over",
        Duration::from_secs(60),
        || jobs_with_finished(&c, "keep", 2, after) == jobs as i64,
    );
    assert_no_doubles(&c);
    assert_every_fire_once(&c, "keep-");
}

#[test]
fn run_now_through_any_host_is_refused_while_max_instances_runs_are_going() {
    // `long` runs for 20 s at a time; `idle` never fires by itself.
    let mut file = slow_jobs("long", 1, 20_000, "max_instances = 1");
    file.push_str(
        "\n[[jobs]]\nid = \"idle\"\nplugin = \"slow\"\nargs = { millis = 5000 }\n\
         trigger = { type = \"date\", at = \"2099-01-01T00:00:00Z\" }\n",
    );
    let c = Cluster::start(BIN, 3, &file, &["--lease", LEASE]);
    let (leader, _) = c.leader();
    c.wait_for(
        "long-000 to have a run going",
        Duration::from_secs(60),
        || {
            c.db()
                .count("SELECT count(*) FROM runs WHERE job_id = 'long-000' AND status = 'running'")
                == 1
        },
    );
    // The same answer one host gives (scheduler::MaxInstances), from every
    // host, the one running it or not.
    let refused = "job 'long-000' already has 1 run(s) in flight (max_instances)";
    for i in c.running() {
        let answer = c.post(i, "/jobs/long-000/run", &json!({}));
        assert!(
            matches!(&answer, Ok((409, body))
                if body["error"]["code"] == "conflict" && body["error"]["message"] == refused),
            "run-now of long-000 through host {i} while its one run goes on: {answer:?}\n{}",
            c.report()
        );
    }
    // A job with nothing going runs; a second run-now while the first is
    // still waiting or running is refused, through another host too.
    let follower = c
        .running()
        .into_iter()
        .find(|&i| i != leader)
        .expect("a follower");
    let first = c.post(follower, "/jobs/idle/run", &json!({}));
    let run_id = match &first {
        Ok((202, run)) => run["run_id"].as_str().unwrap_or_default().to_owned(),
        other => panic!(
            "run-now of idle through host {follower}: {other:?}\n{}",
            c.report()
        ),
    };
    let second = c.post(leader, "/jobs/idle/run", &json!({}));
    assert!(
        matches!(&second, Ok((409, body)) if body["error"]["code"] == "conflict"),
        "a second run-now of idle (max_instances 1) while the first is in flight: {second:?}\n{}",
        c.report()
    );
    c.wait_for(
        "the accepted run-now to finish",
        Duration::from_secs(60),
        || {
            c.db().count(&format!(
                "SELECT count(*) FROM runs WHERE run_id = '{run_id}' AND status = 'finished'"
            )) == 1
        },
    );
    assert_eq!(
        c.db()
            .count("SELECT count(*) FROM runs WHERE job_id = 'idle' AND origin = 'manual'"),
        1,
        "only the accepted run-now of idle was recorded\n{}",
        c.report()
    );
}

/// `next_run_time` of job `id` on host `i`, from `GET /jobs/{id}` and from
/// its entry in `GET /jobs`.
fn next_runs_on(c: &Cluster, i: usize, id: &str) -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
    let parse = |v: &serde_json::Value, what: &str| {
        v["next_run_time"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.to_utc())
            .unwrap_or_else(|| panic!("{what} on host {i}: no next_run_time in {v}"))
    };
    let one = match c.get(i, &format!("/jobs/{id}")) {
        Ok((200, job)) => parse(&job, "GET /jobs/{id}"),
        other => panic!("GET /jobs/{id} on host {i}: {other:?}\n{}", c.report()),
    };
    let listed = match c.get(i, "/jobs") {
        Ok((200, page)) => page["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["spec"]["id"] == id))
            .map(|j| parse(j, "GET /jobs"))
            .unwrap_or_else(|| panic!("GET /jobs on host {i} lists no {id}: {page}")),
        other => panic!("GET /jobs on host {i}: {other:?}\n{}", c.report()),
    };
    (one, listed)
}

#[test]
fn a_follower_shows_the_next_fire_time_the_leader_moves_and_logs_who_leads() {
    let c = Cluster::start(BIN, 2, &jobs_file(&[("keep", 1, "")]), &["--lease", LEASE]);
    let (leader, l) = c.leader();
    let follower = usize::from(leader == 0);
    c.wait_for(
        "three finished fires of keep-000",
        Duration::from_secs(60),
        || jobs_with_finished(&c, "keep", 3, long_ago()) == 1,
    );
    let asked = Utc::now();
    let (first, listed) = next_runs_on(&c, follower, "keep-000");
    // An every-second job's next fire is within about a second of now (a
    // loaded machine's leader may be a little behind), never the one the
    // follower loaded at its start.
    assert!(
        first > asked - Span::seconds(3) && listed > asked - Span::seconds(3),
        "the follower (host {follower}) shows next_run_time {first} (GET /jobs/keep-000) and \
         {listed} (GET /jobs) at {asked}: stale\n{}",
        c.report()
    );
    std::thread::sleep(Duration::from_secs(3));
    let (later, listed_later) = next_runs_on(&c, follower, "keep-000");
    assert!(
        later >= first + Span::seconds(2) && listed_later >= listed + Span::seconds(2),
        "3 s later the follower's next_run_time moved from {first} to {later} (GET /jobs: \
         {listed} to {listed_later}): it does not follow the leader's fires\n{}",
        c.report()
    );
    // The leader answers from its own schedule, the same way.
    let (on_leader, _) = next_runs_on(&c, leader, "keep-000");
    assert!(
        (on_leader - later).num_seconds().abs() <= 3,
        "leader says {on_leader}, follower {later}\n{}",
        c.report()
    );

    // The follower says in its log who leads (once, with the term), and no
    // host logs PostgreSQL's "already exists, skipping" notice at start.
    let told = c.log_lines(follower, &format!("{} leads (term {})", l.name, l.term));
    assert_eq!(
        told.len(),
        1,
        "the follower's log lines about the leader: {:?}\n{}",
        c.log_lines(follower, "leads (term"),
        c.report()
    );
    for i in c.running() {
        let notices = c.log_lines(i, "already exists, skipping");
        assert!(
            notices.is_empty(),
            "host {i} logged PostgreSQL notices at start: {notices:?}"
        );
    }
}

#[test]
fn a_host_running_another_version_of_a_plugin_warns_once_in_its_log() {
    let mut c = Cluster::new(BIN, "version = 1\n", &["--lease", LEASE]);
    let a = c.add_host_with(
        &[("hello", "hello"), ("slow", "slow")],
        &["hello", "slow"],
        &[],
    );
    // Another plugin's file as hello.wasm, copied by hand.
    let d = c.add_host_with(
        &[("hello", "counter"), ("slow", "slow")],
        &["hello", "slow", "counter"],
        &[],
    );
    c.leader();
    let a_name = c.name(a);
    let warning = "plugin hello differs between hosts";
    c.wait_for(
        "the host with the hand-copied hello to warn about it",
        Duration::from_secs(60),
        || !c.log_lines(d, warning).is_empty(),
    );
    let warned = c.log_lines(d, warning);
    let counter = hash_of("counter");
    let hello = hash_of("hello");
    assert!(
        warned[0].contains("\"level\":\"WARN\"")
            && warned[0].contains(&counter[..12])
            && warned[0].contains(&format!("{a_name} has {}", &hello[..12])),
        "the divergent host's warning: {warned:?}"
    );
    // Once per version, not at every look (a look every 5 s).
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(
        c.log_lines(d, warning).len(),
        1,
        "warnings about one difference of versions: {:?}",
        c.log_lines(d, warning)
    );
    // A plugin that is the same everywhere is not warned about.
    for i in [a, d] {
        assert!(
            c.log_lines(i, "plugin slow differs").is_empty(),
            "host {i} warned about slow, the same on every host"
        );
    }
    // The CLI's list says what to do about it.
    let out = c.cli(&["plugins", "list", "--url", c.api(a)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.contains("(DIVERGENT)")
            && text.contains("push it again to give every host one version"),
        "wasmcron plugins list:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_run_stopped_through_another_host_is_stopped_where_it_runs() {
    let c = Cluster::start(
        BIN,
        2,
        &slow_jobs(
            "sleepy",
            1,
            60_000,
            "retry = { max_attempts = 3, delay = \"1s\" }",
        ),
        &["--lease", LEASE],
    );
    c.leader();
    // The interval fires every second; wait for one run going somewhere.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (run_id, host) = loop {
        let rows = c.db().rows(
            "SELECT run_id, host FROM runs WHERE status = 'running' AND job_id = 'sleepy-000'",
        );
        if let Some(r) = rows.first() {
            break (r[0].clone(), r[1].clone());
        }
        assert!(
            Instant::now() < deadline,
            "no run started within 60 s\n{}",
            c.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (other, _) = c
        .names()
        .into_iter()
        .find(|(_, name)| *name != host)
        .unwrap_or_else(|| panic!("no host but {host}\n{}", c.report()));
    let (status, body) = c
        .post(other, &format!("/runs/{run_id}/stop"), &json!({}))
        .unwrap_or_else(|e| panic!("{e}\n{}", c.report()));
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["stopping"], "elsewhere", "{body}");
    c.wait_for(
        "the run to end on the host running it",
        Duration::from_secs(30),
        || {
            c.db().count(&format!(
                "SELECT count(*) FROM runs WHERE run_id = '{run_id}' AND status = 'interrupted'
                   AND host = '{host}' AND note LIKE 'stopped by request%'"
            )) == 1
        },
    );
    // Not retried.
    let retries = c.db().count(&format!(
        "SELECT count(*) FROM runs r JOIN runs k ON k.job_id = r.job_id
            AND k.scheduled_at = r.scheduled_at
          WHERE k.run_id = '{run_id}' AND r.attempt > 1"
    ));
    assert_eq!(retries, 0, "{}", c.report());
}
