#!/usr/bin/env python3
"""APScheduler 3.10 baseline for tests/benches/scheduler.rs and burst.rs.

Runs the same scenarios as the Rust bench with trivial native Python jobs and
prints one JSON object. Run by the Rust bench in a venv it creates
(tests/benches/apscheduler/run.sh); not meant to be run by hand, though it can
be: `python bench.py --seconds 10`.

`--mode aligned --jobs 1000,10000` (tests/benches/burst.rs) runs only the
aligned-burst scenario instead: N interval jobs every 1 s, all due on the
same whole second, on an `AsyncIOScheduler` with its memory store.
"""

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

from apscheduler.events import (
    EVENT_JOB_ERROR,
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


async def stamp_async():
    """The aligned jobs' function: returns when it started (epoch seconds)."""
    return time.time()


def stamp_sync():
    """The same as a plain function (`--func sync`)."""
    return time.time()


def aligned(n_jobs, seconds, func="async"):
    """n interval jobs every 1 s, all due on the same whole second.

    `func`: `async` (default) runs a coroutine on the event loop, the
    fastest an `AsyncIOScheduler` runs a job; `sync` a plain function,
    which its executor hands to a thread pool (measured about 3x later at
    10,000 jobs)."""
    return asyncio.run(_aligned(n_jobs, seconds, stamp_async if func == "async" else stamp_sync))


def _burst_stats(bursts):
    """p50/p99/max over every value of `bursts` (burst -> lateness ms
    list), and the median over bursts of n / (ms to the burst's last)."""
    values = [v for b in bursts.values() for v in b]
    rates = sorted(len(b) / (max(b) / 1000.0) for b in bursts.values() if b and max(b) > 0)
    return {
        "p50_ms": pct(values, 50),
        "p99_ms": pct(values, 99),
        "max_ms": max(values) if values else None,
        "burst_ms": statistics.median([max(b) for b in bursts.values() if b]) if values else None,
        "runs_per_second": statistics.median(rates) if rates else None,
        "count": len(values),
    }


async def _aligned(n_jobs, seconds, stamp):
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    sched = AsyncIOScheduler(timezone=timezone.utc, event_loop=asyncio.get_running_loop())
    # A whole second far enough ahead for every job to be added first.
    start_ts = math.ceil(time.time() + 2 + n_jobs * 0.0003)
    start = datetime.fromtimestamp(start_ts, timezone.utc)
    # burst k -> lateness (ms) of each fire due at start + k s: when the
    # scheduler submitted it (as `lateness` measures), and when the
    # function itself began (its return value, reported by the executed
    # event: what the Rust bench's started_at is).
    submitted = {k: [] for k in range(seconds)}
    started = {k: [] for k in range(seconds)}
    seen = set()
    counts = {"executed": 0, "missed": 0, "max_instances": 0, "errors": 0}

    def burst(t):
        k = round(t.timestamp() - start_ts)
        return k if 0 <= k < seconds and abs(t.timestamp() - start_ts - k) < 1e-3 else None

    def on_event(ev):
        now = time.time()
        if ev.code == EVENT_JOB_SUBMITTED:
            for t in ev.scheduled_run_times:
                k = burst(t)
                if k is not None:
                    submitted[k].append((now - t.timestamp()) * 1000.0)
                    seen.add((ev.job_id, k))
        elif ev.code == EVENT_JOB_EXECUTED:
            k = burst(ev.scheduled_run_time)
            if k is not None:
                counts["executed"] += 1
                started[k].append((ev.retval - ev.scheduled_run_time.timestamp()) * 1000.0)
        elif ev.code == EVENT_JOB_ERROR:
            counts["errors"] += 1 if burst(ev.scheduled_run_time) is not None else 0
        elif ev.code == EVENT_JOB_MISSED:
            k = burst(ev.scheduled_run_time)
            if k is not None:
                counts["missed"] += 1
                seen.add((ev.job_id, k))
        elif ev.code == EVENT_JOB_MAX_INSTANCES:
            for t in ev.scheduled_run_times:
                k = burst(t)
                if k is not None:
                    counts["max_instances"] += 1
                    seen.add((ev.job_id, k))

    sched.add_listener(
        on_event,
        EVENT_JOB_SUBMITTED
        | EVENT_JOB_EXECUTED
        | EVENT_JOB_ERROR
        | EVENT_JOB_MISSED
        | EVENT_JOB_MAX_INSTANCES,
    )
    # Exactly `seconds` bursts (end_date just after the last), as the Rust
    # bench; misfire_grace_time=None: however late, as wasmcron's default.
    end = datetime.fromtimestamp(start_ts + seconds - 1 + 0.5, timezone.utc)
    for i in range(n_jobs):
        sched.add_job(
            stamp,
            "interval",
            seconds=1,
            start_date=start,
            end_date=end,
            id=f"j{i}",
            misfire_grace_time=None,
        )
    sched.start()
    late_start = time.time() > start_ts - 0.5
    expected = n_jobs * seconds
    # From a second after the last burst's instant, wait until every fire
    # has ended (or was missed or skipped), at most a minute.
    await asyncio.sleep(max(0.0, start_ts + seconds - time.time()))
    deadline = time.time() + 60
    while time.time() < deadline:
        done = counts["executed"] + counts["errors"] + counts["missed"] + counts["max_instances"]
        if done >= expected:
            break
        await asyncio.sleep(0.02)
    sched.shutdown(wait=False)
    measured = {k: v for k, v in submitted.items() if k > 0}
    measured_started = {k: v for k, v in started.items() if k > 0}
    first = {0: submitted[0]}
    first_started = {0: started[0]}
    return {
        "jobs": n_jobs,
        "seconds": seconds,
        "expected": expected,
        "submitted": sum(len(v) for v in submitted.values()),
        "executed": counts["executed"],
        "missed": counts["missed"],
        "skipped": counts["max_instances"],
        "errors": counts["errors"],
        "lost": expected - len(seen),
        "start_overrun": late_start,
        "bursts_measured": len(measured),
        "submitted_ms": _burst_stats(measured),
        "started_ms": _burst_stats(measured_started),
        "first_burst": {
            "submitted_ms": _burst_stats(first),
            "started_ms": _burst_stats(first_started),
        },
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
    ap.add_argument("--mode", choices=["all", "aligned"], default="all")
    ap.add_argument("--jobs", default="1000,10000", help="aligned mode: job counts")
    ap.add_argument("--func", choices=["async", "sync"], default="async", help="aligned mode: the job")
    args = ap.parse_args()
    if args.mode == "aligned":
        out = {
            "apscheduler": __import__("apscheduler").__version__,
            "python": sys.version.split()[0],
            "func": args.func,
            "aligned": [aligned(int(n), args.seconds, args.func) for n in args.jobs.split(",")],
        }
        print(json.dumps(out))
        return
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
