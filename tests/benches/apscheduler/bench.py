#!/usr/bin/env python3
"""APScheduler 3.10 baseline for tests/benches/scheduler.rs.

Runs the same scenarios as the Rust bench with trivial native Python jobs and
prints one JSON object. Run by the Rust bench in a venv it creates
(tests/benches/apscheduler/run.sh); not meant to be run by hand, though it can
be: `python bench.py --seconds 10`.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

from apscheduler.events import (
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
)
from apscheduler.schedulers.background import BackgroundScheduler


def noop():
    return None


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))
    return values[k]


def lateness(n_jobs, seconds):
    """n interval jobs every 1 s for `seconds`: lateness of each submission."""
    sched = BackgroundScheduler(timezone=timezone.utc)
    late = []
    counts = {"executed": 0, "missed": 0, "max_instances": 0}
    lock = threading.Lock()

    def on_event(ev):
        now = datetime.now(timezone.utc)
        with lock:
            if ev.code == EVENT_JOB_SUBMITTED:
                for t in ev.scheduled_run_times:
                    late.append((now - t).total_seconds() * 1000.0)
            elif ev.code == EVENT_JOB_EXECUTED:
                counts["executed"] += 1
            elif ev.code == EVENT_JOB_MISSED:
                counts["missed"] += 1
            elif ev.code == EVENT_JOB_MAX_INSTANCES:
                counts["max_instances"] += 1

    sched.add_listener(
        on_event,
        EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES,
    )
    # Job i fires at start + (i + 0.5)/n s + k s: n fires spread evenly over
    # every second, `seconds` fires each before `stop` (as the Rust bench).
    start = datetime.now(timezone.utc) + timedelta(seconds=5)
    for i in range(n_jobs):
        offset = timedelta(microseconds=(2 * i + 1) * 500_000 // n_jobs)
        sched.add_job(noop, "interval", seconds=1, start_date=start + offset, id=f"j{i}")
    sched.start()
    stop = start + timedelta(seconds=seconds)
    time.sleep(max(0.0, (stop - datetime.now(timezone.utc)).total_seconds()))
    sched.shutdown(wait=True)
    expected = n_jobs * seconds
    return {
        "jobs": n_jobs,
        "seconds": seconds,
        "fires": len(late),
        "expected": expected,
        "executed": counts["executed"],
        "missed": counts["missed"],
        "skipped": counts["max_instances"],
        "p50_ms": pct(late, 50),
        "p99_ms": pct(late, 99),
        "max_ms": max(late) if late else None,
    }


def add_many(n):
    sched = BackgroundScheduler(timezone=timezone.utc)
    sched.start(paused=True)
    before = rss_bytes()
    t = time.perf_counter()
    for i in range(n):
        sched.add_job(noop, "interval", seconds=60, id=f"j{i}")
    elapsed = time.perf_counter() - t
    after = rss_bytes()
    sched.shutdown(wait=False)
    return {"jobs": n, "seconds": elapsed, "bytes_per_job": (after - before) / n}


def sqlite_runs_per_second(n_jobs, seconds):
    """Fires per second APScheduler sustains with its SQLite job store."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    d = tempfile.mkdtemp()
    url = f"sqlite:///{d}/jobs.sqlite"
    sched = BackgroundScheduler(timezone=timezone.utc, jobstores={"default": SQLAlchemyJobStore(url=url)})
    executed = [0]
    lock = threading.Lock()

    def on_exec(ev):
        with lock:
            executed[0] += 1

    sched.add_listener(on_exec, EVENT_JOB_EXECUTED)
    sched.start(paused=True)
    start = datetime.now(timezone.utc) + timedelta(seconds=2)
    for i in range(n_jobs):
        sched.add_job(noop, "interval", seconds=1, start_date=start, id=f"j{i}", misfire_grace_time=None, coalesce=True)
    sched.resume()
    time.sleep(2)
    with lock:
        executed[0] = 0
    time.sleep(seconds)
    with lock:
        n = executed[0]
    sched.shutdown(wait=False)
    return {"jobs": n_jobs, "seconds": seconds, "runs_per_second": n / seconds}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--add", type=int, default=100_000)
    args = ap.parse_args()
    out = {
        "apscheduler": __import__("apscheduler").__version__,
        "python": sys.version.split()[0],
        "lateness_1k": lateness(1000, args.seconds),
        "lateness_10k": lateness(10_000, args.seconds),
        "add": add_many(args.add),
        "sqlite": sqlite_runs_per_second(1000, args.seconds),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
