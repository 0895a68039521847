#!/usr/bin/env bash
# Several `wasmcron run` hosts on one PostgreSQL database (issue 11):
# throughput, lateness and CPU per run with 1, 2 and 3 hosts against one
# host on SQLite; failover time after `kill -9` of the leader; and, in every
# run, no doubled and no silently lost fire.
#
#   tests/benches/cluster.sh [throughput] [failover]     (default: both)
#
# Environment (defaults in brackets):
#   BIN          the wasmcron binary [$CARGO_TARGET_DIR or ~/.cache/wasmcron-target, /release/wasmcron]
#   HELLO        hello.wasm [found under the same target dir]
#   PG           server URL without database [postgres://postgres@127.0.0.1:5432]
#   JOBS         jobs per throughput run, space-separated list ["200"]
#   HOSTS        host counts on PostgreSQL ["1 2 3"]
#   SECONDS_     measured seconds per throughput run [30] (after 5 s of warm-up)
#   LEASES       lease TTLs for failover ["15s 5s"]
#   REPS         kills per lease TTL [5]
#   FAIL_JOBS    jobs running during failover [50]
#   NICE         niceness of the hosts [-5] (ignored when not permitted)
#   LOAD_MAX     wait before each measurement until the 1-min load average
#                is below this [1.5] ...
#   LOAD_WAIT    ... for at most this many seconds [300]
#
# Throughput: N interval jobs of `hello` every 1 s, all with the same
# `start` (every job due on the same whole second: the hard case), given to
# every host as its jobs file. Measured: fires scheduled in the window
# [start + 5 s, start + 5 s + SECONDS_); lateness = started_at -
# scheduled_at of the finished ones; CPU = user + sys ticks of the hosts,
# of the PostgreSQL backends connected to the run's database, and of the
# server's shared background processes (walwriter, checkpointer, ...; shared
# with anything else using the server), between the window's edges.
#
# Failover: 3 hosts with FAIL_JOBS jobs; REPS times: find the leader,
# `kill -9` it, poll the survivors' GET /cluster every 50 ms until one names
# a leader with a higher term, restart the killed host, let things settle.
#
# Checks, on every database: no two fire rows with the same (job,
# scheduled_at, attempt), and every whole second of every job between its
# first and last fire row has a fire row, or lies in a run of fires that a
# `missed` row accounts for (coalesced after downtime).
set -euo pipefail

TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/wasmcron-target}
BIN=${BIN:-$TARGET/release/wasmcron}
HELLO=${HELLO:-}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
JOBS=${JOBS:-200}
HOSTS=${HOSTS:-1 2 3}
SECONDS_=${SECONDS_:-30}
LEASES=${LEASES:-15s 5s}
REPS=${REPS:-5}
FAIL_JOBS=${FAIL_JOBS:-50}
NICE=${NICE:--5}
LOAD_MAX=${LOAD_MAX:-1.5}
LOAD_WAIT=${LOAD_WAIT:-300}
WARMUP=5
export PGOPTIONS='-c client_min_messages=warning'

WHAT=("$@")
[ ${#WHAT[@]} -eq 0 ] && WHAT=(throughput failover)

die() { echo "cluster.sh: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "no binary at $BIN (cargo build --release -p wasmcron)"
if [ -z "$HELLO" ]; then
    HELLO=$(find "$TARGET" -path '*wasm32-wasip2/release/hello.wasm' -printf '%T@ %p\n' 2>/dev/null |
        sort -rn | head -1 | cut -d' ' -f2-)
fi
[ -f "$HELLO" ] || die "no hello.wasm (cargo xtask plugins DIR; then HELLO=DIR/hello.wasm)"
for tool in psql curl python3; do command -v $tool >/dev/null || die "$tool is needed"; done
psql "$PG/postgres" -qAtc 'SELECT 1' >/dev/null || die "cannot reach PostgreSQL at $PG"
if nice -n "$NICE" true 2>/dev/null; then RUNNICE=(nice -n "$NICE"); else RUNNICE=(); NICE=0; fi

WORK=$(mktemp -d /tmp/wasmcron-cluster-bench.XXXXXX)
TAG=cb$$
PIDS=()
DBS=()

cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        [ -n "$pid" ] && gone "$pid"
    done
    for db in "${DBS[@]}"; do
        psql "$PG/postgres" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

loadavg() { cut -d' ' -f1 /proc/loadavg; }

# Waits until the 1-min load average is below LOAD_MAX (LOAD_WAIT s at most);
# prints what it was when the measurement began.
wait_load() {
    local waited=0
    while python3 -c "import sys; sys.exit(0 if float('$(loadavg)') >= $LOAD_MAX else 1)"; do
        if [ $waited -ge "$LOAD_WAIT" ]; then
            echo "(load average still $(loadavg) after ${LOAD_WAIT}s of waiting; measured anyway)" >&2
            break
        fi
        sleep 5
        waited=$((waited + 5))
    done
    LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
}

# new_db NAME: creates a fresh database; sets DB to its name.
new_db() {
    DB=$(tr 'A-Z.' 'a-z_' <<<"${TAG}_$1")
    psql "$PG/postgres" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
    psql "$PG/postgres" -qAtc "CREATE DATABASE $DB" >/dev/null
    DBS+=("$DB")
}

drop_db() {
    psql "$PG/postgres" -qAtc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
}

q() { psql "$PG/$1" -qAtX -F'|' -c "$2"; }

# jobs_file N START PATH
jobs_file() {
    python3 - "$1" "$2" >"$3" <<'EOF'
import sys
n, start = int(sys.argv[1]), sys.argv[2]
print("version = 1")
for i in range(n):
    print(f'\n[[jobs]]\nid = "b{i:05}"\nplugin = "hello"\nkeep_runs = 100000\n'
          f'trigger = {{ type = "interval", every = "1s", start = "{start}" }}')
EOF
}

# start_host NAME DB_URL JOBS_FILE [EXTRA ARGS...]: starts a host in
# $WORK/NAME; sets HOST_PID and HOST_URL (once it listens).
start_host() {
    local name=$1 db=$2 jobs=$3
    shift 3
    local dir=$WORK/$name
    mkdir -p "$dir/plugins"
    cp "$HELLO" "$dir/plugins/hello.wasm"
    [ -f "$dir/log" ] && mv "$dir/log" "$dir/log.$(date +%s%N)"
    "${RUNNICE[@]}" "$BIN" --log-format json run --plugins "$dir/plugins" --db "$db" \
        --config "$jobs" --cache-dir "$WORK/cache" --listen 127.0.0.1:0 \
        --host-name "$name" --shutdown-grace 2s "$@" 2>"$dir/log" >/dev/null &
    HOST_PID=$!
    disown "$HOST_PID" # no "Killed" notices; stop_host polls instead of wait
    PIDS+=("$HOST_PID")
    local i
    for i in $(seq 1 600); do
        HOST_URL=$( (grep -o '"addr":"[^"]*"' "$dir/log" 2>/dev/null || true) | tail -1 | cut -d'"' -f4)
        if [ -n "$HOST_URL" ] && grep -q '"HTTP API listening' "$dir/log"; then
            HOST_URL=http://$HOST_URL
            return 0
        fi
        kill -0 "$HOST_PID" 2>/dev/null || { tail -20 "$dir/log" >&2; die "host $name exited"; }
        sleep 0.1
    done
    tail -20 "$dir/log" >&2
    die "host $name did not listen within 60 s"
}

# gone PID: waits (60 s at most) for the process to be gone.
gone() {
    local i
    for i in $(seq 1 600); do
        [ -d "/proc/$1" ] || return 0
        [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ] && return 0
        sleep 0.1
    done
}

# stop_host PID [SIGNAL]
stop_host() {
    kill "-${2:-TERM}" "$1" 2>/dev/null || true
    gone "$1"
    local i
    for i in "${!PIDS[@]}"; do [ "${PIDS[$i]}" = "$1" ] && PIDS[$i]=""; done
    return 0
}

# cpu_snapshot DB PID...: "pid kind ticks" lines: kind host, pg (backends
# of DB) or pgshared (the server's background processes).
cpu_snapshot() {
    python3 - "$@" <<'EOF'
import os, sys
db, hosts = sys.argv[1], set(sys.argv[2:])
def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # utime, stime
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        if pid in hosts:
            print(pid, "host", ticks(pid)); continue
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() != "postgres":
                continue
        with open(f"/proc/{pid}/cmdline") as f:
            cmd = f.read().replace("\0", " ")
        if not cmd.startswith("postgres: "):
            continue  # the postmaster itself
        words = cmd.split()
        client = any("(" in w or w == "[local]" for w in words)
        if client:
            if f" {db} " in f" {cmd} ":
                print(pid, "pg", ticks(pid))
        else:
            print(pid, "pgshared", ticks(pid))
    except (OSError, IndexError, ValueError):
        pass
EOF
}

# cpu_delta BEFORE AFTER: "host pg pgshared" seconds (a process that
# appeared in between counts whole; one that exited in between is lost).
cpu_delta() {
    python3 - "$1" "$2" <<'EOF'
import os, sys
def load(p):
    d = {}
    for line in open(p):
        pid, kind, t = line.split()
        d[pid] = (kind, int(t))
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
hz = os.sysconf("SC_CLK_TCK")
tot = {"host": 0, "pg": 0, "pgshared": 0}
for pid, (kind, t) in b.items():
    tot[kind] += t - a.get(pid, (kind, 0))[1]
print(" ".join(f"{tot[k] / hz:.2f}" for k in ("host", "pg", "pgshared")))
EOF
}

# stats: reads lateness in ms, one per line; prints "n p50 p99 max".
stats() {
    python3 -c '
import sys
v = sorted(float(x) for x in sys.stdin if x.strip())
def pct(p):
    return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))] if v else float("nan")
mx = v[-1] if v else float("nan")
print(len(v), f"{pct(50):.0f}", f"{pct(99):.0f}", f"{mx:.0f}")'
}

# iso SECONDS -> RFC 3339
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# check_pg DB: prints "doubles gaps unexplained" and any faulty rows.
check_pg() {
    local db=$1 doubles gaps unexplained
    doubles=$(q "$db" "SELECT job_id, scheduled_at, attempt, count(*),
                              string_agg(coalesce(host, '-') || ':' || status, ', ')
                         FROM runs WHERE origin = 'fire'
                        GROUP BY 1, 2, 3 HAVING count(*) > 1 ORDER BY 1, 2, 3")
    gaps=$(q "$db" "WITH span AS (SELECT job_id, min(scheduled_at) lo, max(scheduled_at) hi
                                    FROM runs WHERE origin = 'fire' GROUP BY job_id),
                        secs AS (SELECT job_id, s FROM span, generate_series(lo, hi, interval '1 second') s)
                   SELECT count(*) FROM secs WHERE NOT EXISTS
                          (SELECT 1 FROM runs r WHERE r.job_id = secs.job_id
                              AND r.scheduled_at = secs.s AND r.origin = 'fire')")
    unexplained=$(q "$db" "WITH span AS (SELECT job_id, min(scheduled_at) lo, max(scheduled_at) hi
                                           FROM runs WHERE origin = 'fire' GROUP BY job_id),
                               secs AS (SELECT job_id, s FROM span, generate_series(lo, hi, interval '1 second') s),
                               missing AS (SELECT job_id, s FROM secs WHERE NOT EXISTS
                                   (SELECT 1 FROM runs r WHERE r.job_id = secs.job_id
                                       AND r.scheduled_at = secs.s AND r.origin = 'fire'))
                          SELECT m.job_id, m.s, b.scheduled_at, b.status FROM missing m
                            LEFT JOIN LATERAL (SELECT scheduled_at, status FROM runs r
                                                WHERE r.job_id = m.job_id AND r.origin = 'fire'
                                                  AND r.scheduled_at < m.s
                                                ORDER BY r.scheduled_at DESC LIMIT 1) b ON true
                           WHERE b.status IS DISTINCT FROM 'missed' ORDER BY 1, 2")
    local nd=0 nu=0
    [ -n "$doubles" ] && nd=$(wc -l <<<"$doubles")
    [ -n "$unexplained" ] && nu=$(wc -l <<<"$unexplained")
    CHECK="doubles $nd, seconds without a row $gaps, of which not covered by a missed row $nu"
    if [ "$nd" != 0 ]; then echo "DOUBLED FIRES in $db:" >&2; head -50 <<<"$doubles" >&2; fi
    if [ "$nu" != 0 ]; then echo "LOST FIRES in $db:" >&2; head -50 <<<"$unexplained" >&2; fi
}

check_sqlite() {
    CHECK=$(python3 - "$1" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
d = c.execute("""SELECT count(*) FROM (SELECT 1 FROM runs WHERE origin = 'fire'
                 GROUP BY job_id, scheduled_at, attempt HAVING count(*) > 1)""").fetchone()[0]
rows = {}
for job, at, status in c.execute(
        "SELECT job_id, scheduled_at, status FROM runs WHERE origin = 'fire' ORDER BY 1, 2"):
    rows.setdefault(job, {})[at] = status
gaps = unexplained = 0
for job, fires in rows.items():
    ts = sorted(fires)
    last = None
    for s in range(ts[0], ts[-1] + 1, 1000):
        if s in fires:
            last = fires[s]
        else:
            gaps += 1
            if last != "missed":
                unexplained += 1
print(f"doubles {d}, seconds without a row {gaps}, of which not covered by a missed row {unexplained}")
EOF
)
}

# ---------------------------------------------------------------- throughput

# throughput_run BACKEND(sqlite|pg) HOSTS JOBS: one measured run; prints a
# table row and appends to $WORK/rows.
throughput_run() {
    local backend=$1 nhosts=$2 njobs=$3 db="" url
    local tagn=${backend}${nhosts}_${njobs}
    if [ "$backend" = pg ]; then
        new_db "$tagn"
        db=$DB
        url=$PG/$db
    else
        mkdir -p "$WORK/$tagn"
        url=sqlite://$WORK/$tagn/wasmcron.db
    fi
    wait_load
    local load=$LOAD_AT_START
    local now start jobs pids=() i
    now=$(date +%s)
    start=$((now + 8 + njobs / 200))
    jobs=$WORK/jobs-$tagn.toml
    jobs_file "$njobs" "$(iso $start)" "$jobs"
    for i in $(seq 1 "$nhosts"); do
        start_host "$tagn-h$i" "$url" "$jobs"
        pids+=("$HOST_PID")
    done
    local from=$((start + WARMUP)) to=$((start + WARMUP + SECONDS_))
    sleep "$(python3 -c "import time; print(max(0, $from - time.time()))")"
    cpu_snapshot "${db:-none}" "${pids[@]}" >"$WORK/cpu-a"
    sleep "$(python3 -c "import time; print(max(0, $to - time.time()))")"
    cpu_snapshot "${db:-none}" "${pids[@]}" >"$WORK/cpu-b"
    local load_end
    load_end=$(cut -d' ' -f1-3 /proc/loadavg)
    # Let the window's last fires finish, then stop.
    sleep 3
    for i in "${pids[@]}"; do kill -TERM "$i" 2>/dev/null || true; done
    for i in "${pids[@]}"; do stop_host "$i"; done
    local cpu
    read -r -a cpu <<<"$(cpu_delta "$WORK/cpu-a" "$WORK/cpu-b")"

    local late statuses perhost
    if [ "$backend" = pg ]; then
        local w="origin = 'fire' AND scheduled_at >= '$(iso $from)' AND scheduled_at < '$(iso $to)'"
        late=$(q "$db" "SELECT extract(epoch FROM started_at - scheduled_at) * 1000
                          FROM runs WHERE $w AND status = 'finished'" | stats)
        statuses=$(q "$db" "SELECT status || ' ' || count(*) FROM runs WHERE $w GROUP BY status ORDER BY 1" | paste -sd, - | sed 's/,/, /g')
        perhost=$(q "$db" "SELECT coalesce(host, '-') || ' ' || count(*) FROM runs
                            WHERE $w AND status = 'finished' GROUP BY host ORDER BY 1" |
            sed "s/^$tagn-//" | paste -sd/ -)
        check_pg "$db"
        drop_db "$db"
    else
        local file=$WORK/$tagn/wasmcron.db
        read -r late statuses <<<"$(python3 - "$file" $((from * 1000)) $((to * 1000)) <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); lo, hi = int(sys.argv[2]), int(sys.argv[3])
w = "origin = 'fire' AND scheduled_at >= ? AND scheduled_at < ?"
v = sorted(r[0] for r in c.execute(
    f"SELECT started_at - scheduled_at FROM runs WHERE {w} AND status = 'finished'", (lo, hi)))
pct = lambda p: v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))] if v else float("nan")
st = ", ".join(f"{s} {n}" for s, n in c.execute(
    f"SELECT status, count(*) FROM runs WHERE {w} GROUP BY 1 ORDER BY 1", (lo, hi)))
print(f"{len(v)}:{pct(50):.0f}:{pct(99):.0f}:{(v[-1] if v else float('nan')):.0f}", st.replace(" ", "_"))
EOF
)"
        late=${late//:/ }
        statuses=${statuses//_/ }
        perhost="-"
        check_sqlite "$file"
    fi
    local n p50 p99 max
    read -r n p50 p99 max <<<"$late"
    python3 - "$backend" "$nhosts" "$njobs" "$n" "$SECONDS_" "$p50" "$p99" "$max" \
        "${cpu[0]}" "${cpu[1]}" "${cpu[2]}" "$perhost" "$statuses" "$load" "$load_end" "$CHECK" \
        >>"$WORK/rows" <<'EOF'
import sys
b, h, j, n, s, p50, p99, mx, ch, cp, cs, per, st, load, load_end, check = sys.argv[1:]
n, s, j = int(n), int(s), int(j)
rate = n / s
hc, pc, sc = float(ch), float(cp), float(cs)
us = lambda t: f"{t / n * 1e6:.0f}" if n else "-"
print("\t".join([
    "SQLite" if b == "sqlite" else "PostgreSQL", h, f"{j:,}", f"{rate:.0f}", f"{n:,} / {j * s:,}",
    f"{p50} / {p99} / {mx}", us(hc), us(hc + pc) if b == "pg" else us(hc),
    us(hc + pc + sc) if b == "pg" else us(hc), per, st, load.split()[0] + " / " + load_end.split()[0], check]))
EOF
    tail -1 "$WORK/rows" | tr '\t' '|' >&2
}

throughput() {
    : >"$WORK/rows"
    local njobs h
    for njobs in $JOBS; do
        throughput_run sqlite 1 "$njobs"
        for h in $HOSTS; do throughput_run pg "$h" "$njobs"; done
    done
    echo
    echo "Throughput: $SECONDS_ s measured per row after $WARMUP s of warm-up; CPU µs per finished run."
    echo
    echo "| store | hosts | jobs | runs/s | runs / fires due | lateness p50 / p99 / max, ms | CPU/run hosts | + pg backends | + pg shared | finished per host | rows in window by status | load 1-min start / end | checks |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|"
    python3 -c 'import sys; [print("| " + " | ".join(l.rstrip("\n").split("\t")) + " |") for l in open(sys.argv[1])]' "$WORK/rows"
    echo
    # Ratios against the SQLite row of the same job count.
    python3 - "$WORK/rows" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
base = {r[2]: r for r in rows if r[0] == "SQLite"}
print("| store | hosts | jobs | runs/s vs SQLite | p50 vs SQLite | p99 vs SQLite | CPU/run (all) vs SQLite |")
print("|---|---:|---:|---:|---:|---:|---:|")
def f(x):
    try: return float(x)
    except ValueError: return float("nan")
for r in rows:
    b = base.get(r[2])
    if not b: continue
    lp, bp = r[5].split(" / "), b[5].split(" / ")
    ratio = lambda a, c: f"{f(a) / f(c):.2f}x" if f(c) else "-"
    print(f"| {r[0]} | {r[1]} | {r[2]} | {ratio(r[3], b[3])} | {ratio(lp[0], bp[0])} | "
          f"{ratio(lp[1], bp[1])} | {ratio(r[8], b[8])} |")
EOF
}

# ------------------------------------------------------------------ failover

# cluster_view URL: "self_id leader_id term" (or nothing when it does not answer).
cluster_view() {
    curl -s --max-time 1 "$1/cluster" 2>/dev/null | python3 -c '
import json, sys
try:
    v = json.load(sys.stdin)
except Exception:
    sys.exit(0)
l = v.get("leader") or {}
print(v["host"]["id"], l.get("host_id", "-"), l.get("term", -1))' 2>/dev/null || true
}

failover() {
    local lease
    echo
    echo "Failover: 3 hosts, $FAIL_JOBS jobs every second; time from kill -9 of the leader to a survivor's GET /cluster naming a leader with a higher term."
    echo
    echo "| --lease | kills | median | max | each, s | goal (TTL + 2 s) | load 1-min at start | checks |"
    echo "|---:|---:|---:|---:|---|---|---|---|"
    for lease in $LEASES; do
        local db ttl
        ttl=$(python3 -c "s='$lease'; print(float(s[:-2]) / 1000 if s.endswith('ms') else float(s[:-1]) * {'s':1,'m':60}[s[-1]])")
        new_db "fail_${lease}"
        db=$DB
        wait_load
        local load=$LOAD_AT_START
        local jobs=$WORK/jobs-fail-$lease.toml
        jobs_file "$FAIL_JOBS" "$(iso $(($(date +%s) + 5)))" "$jobs"
        local -a pid url hid
        local i
        for i in 0 1 2; do
            start_host "fail$lease-h$i" "$PG/$db" "$jobs" --lease "$lease"
            pid[$i]=$HOST_PID
            url[$i]=$HOST_URL
        done
        local times=() rep
        for rep in $(seq 1 "$REPS"); do
            # Settle: every host up and agreeing on one leader; then a random
            # wait so the kill falls anywhere in the renewal period.
            local leader="" term=-1 agreed
            for _ in $(seq 1 300); do
                agreed=1
                local views=()
                for i in 0 1 2; do
                    local v
                    v=$(cluster_view "${url[$i]}")
                    [ -z "$v" ] && { agreed=0; break; }
                    views[$i]=$v
                    hid[$i]=${v%% *}
                done
                if [ $agreed = 1 ]; then
                    local keys
                    keys=$(for i in 0 1 2; do echo "${views[$i]#* }"; done | sort -u)
                    if [ "$(wc -l <<<"$keys")" = 1 ] && [ "${keys%% *}" != "-" ]; then
                        leader=${keys%% *}
                        term=${keys##* }
                        break
                    fi
                fi
                sleep 0.1
            done
            if [ -z "$leader" ]; then
                for i in 0 1 2; do echo "host $i: $(cluster_view "${url[$i]}")" >&2; done
                die "the hosts never agreed on a leader"
            fi
            sleep "$(python3 -c "import random; print(2 + random.random() * $ttl / 3)")"
            local victim=-1
            for i in 0 1 2; do [ "${hid[$i]}" = "$leader" ] && victim=$i; done
            [ $victim -ge 0 ] || die "the leader $leader is none of our hosts"
            # Re-read the term just before the kill (a renewal keeps it).
            local t0 t1=""
            t0=$(date +%s.%N)
            kill -9 "${pid[$victim]}"
            while :; do
                for i in 0 1 2; do
                    [ $i = $victim ] && continue
                    local v
                    v=$(cluster_view "${url[$i]}")
                    read -r _ l t <<<"${v:-- - -1}"
                    if [ "$l" != "-" ] && [ "$l" != "$leader" ] && [ "$t" -gt "$term" ]; then
                        t1=$(date +%s.%N)
                        break 2
                    fi
                done
                if python3 -c "import sys; sys.exit(0 if $(date +%s.%N) - $t0 > 10 * $ttl + 30 else 1)"; then
                    die "no new leader $((10 * ${ttl%.*} + 30)) s after the kill"
                fi
                sleep 0.05
            done
            times+=("$(python3 -c "print(f'{$t1 - $t0:.2f}')")")
            echo "lease $lease kill $rep: ${times[-1]} s" >&2
            stop_host "${pid[$victim]}" KILL
            start_host "fail$lease-h$victim" "$PG/$db" "$jobs" --lease "$lease"
            pid[$victim]=$HOST_PID
            url[$victim]=$HOST_URL
        done
        # Let the last catch-up settle, stop everything, check the history.
        sleep 3
        for i in 0 1 2; do kill -TERM "${pid[$i]}" 2>/dev/null || true; done
        for i in 0 1 2; do stop_host "${pid[$i]}"; done
        check_pg "$db"
        drop_db "$db"
        python3 - "$lease" "$ttl" "$load" "$CHECK" "${times[@]}" <<'EOF'
import statistics, sys
lease, ttl, load, check, *t = sys.argv[1:]
t = [float(x) for x in t]
ok = "met" if max(t) <= float(ttl) + 2 else "not met"
print(f"| {lease} | {len(t)} | {statistics.median(t):.2f} s | {max(t):.2f} s | "
      f"{', '.join(f'{x:.2f}' for x in t)} | {ok} | {load.split()[0]} | {check} |")
EOF
    done
}

# ---------------------------------------------------------------------- main

echo "wasmcron cluster bench, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $("$BIN" --version)," \
    "$(psql "$PG/postgres" -qAtc 'SHOW server_version') (synchronous_commit $(psql "$PG/postgres" -qAtc 'SHOW synchronous_commit'))," \
    "hosts at nice $NICE; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# Compile hello once into the shared cache, so every host starts in a second.
mkdir -p "$WORK/cache"
echo 'version = 1' >"$WORK/empty.toml"
start_host warm memory "$WORK/empty.toml"
stop_host "$HOST_PID"

for w in "${WHAT[@]}"; do
    case $w in
    throughput) throughput ;;
    failover) failover ;;
    *) die "unknown part $w (throughput, failover)" ;;
    esac
done
