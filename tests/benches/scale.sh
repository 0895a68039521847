#!/usr/bin/env bash
# One host, the SQLite store, many jobs (issue 12, "Scale"): for each N,
# N daily cron jobs in Europe/Berlin (`M H * * *` spread over the day's
# 1,440 minutes, ids s0000000.., the hello plugin), measured as a user
# sees them:
#
#   api      POST /jobs N times (CONC keep-alive connections, requests
#            pipelined PIPE deep on each): wall time until the last answer
#   restart  stop that host (SIGTERM) and start it again on the same file:
#            time from exec to the "wasmcron running" log line (start-up
#            done), then to the first 200 of /healthz (asked only then),
#            and the RSS of the whole process 3 s after (RSS / N = bytes
#            per job, and (RSS - RSS of a host with no job) / N)
#   timer    on that host, TIMER_JOBS interval jobs every 1 s (phases
#            spread over the second) beside the N idle daily ones: their
#            lateness (started_at - scheduled_at, from the runs table)
#            p50 / p99 / max over TIMER_SECONDS and the process's CPU
#            (user + sys) per run in that window; the window lies between
#            two whole minutes, so no daily job fires in it. Also measured
#            with no daily job (N = 0) as the floor.
#   config   the same N jobs in a --config jobs file on a fresh database:
#            first start (as restart: start-up, /healthz, RSS), then a
#            second start with the file unchanged (same), and the number of
#            jobs whose next_run_time the second start changed (should be 0)
#
#   tests/benches/scale.sh [api|restart|timer|config ...]   (default: all;
#   restart and timer need api)
#
# Environment (defaults in brackets):
#   BIN           the wasmcron binary [$CARGO_TARGET_DIR or ~/.cache/wasmcron-target, /release/wasmcron]
#   HELLO         hello.wasm [found under the same target dir]
#   NS            job counts ["10000 100000 1000000"]
#   CONFIG_MAX    largest N the config phase runs for [all]; the jobs-file
#                 path before the fix took minutes per start at 1M
#   CONC          API connections [16]
#   PIPE          requests in flight per connection [64]
#   TIMER_JOBS    every-1s jobs of the timer phase [50]
#   TIMER_SECONDS measured seconds of the timer phase [30]
#   LOAD_MAX      wait before each N until the 1-min load average is below
#                 this [1.5] ...
#   LOAD_WAIT     ... for at most this many seconds [300]
#   KEEP          keep the work directory (printed) [unset]
#
# Output: one line per measurement on stderr as it happens, and a table
# at the end on stdout, with the load average at each measurement.
set -euo pipefail

TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/wasmcron-target}
BIN=${BIN:-$TARGET/release/wasmcron}
HELLO=${HELLO:-}
NS=${NS:-10000 100000 1000000}
CONFIG_MAX=${CONFIG_MAX:-}
CONC=${CONC:-16}
PIPE=${PIPE:-64}
TIMER_JOBS=${TIMER_JOBS:-50}
TIMER_SECONDS=${TIMER_SECONDS:-30}
LOAD_MAX=${LOAD_MAX:-1.5}
LOAD_WAIT=${LOAD_WAIT:-300}

WHAT=("$@")
[ ${#WHAT[@]} -eq 0 ] && WHAT=(api restart timer config)
want() { local w; for w in "${WHAT[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

die() { echo "scale.sh: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "no binary at $BIN (cargo build --release -p wasmcron)"
if [ -z "$HELLO" ]; then
    HELLO=$(find "$TARGET" -path '*wasm32-wasip2/release/hello.wasm' -printf '%T@ %p\n' 2>/dev/null |
        sort -rn | head -1 | cut -d' ' -f2-)
fi
[ -f "$HELLO" ] || die "no hello.wasm (cargo xtask plugins DIR; then HELLO=DIR/hello.wasm)"
for tool in curl python3; do command -v $tool >/dev/null || die "$tool is needed"; done
if { want restart || want timer; } && ! want api; then die "restart and timer need api"; fi

WORK=$(mktemp -d /tmp/wasmcron-scale-bench.XXXXXX)
HOST_PID=""
cleanup() {
    set +e
    [ -n "$HOST_PID" ] && kill -9 "$HOST_PID" 2>/dev/null
    if [ -n "${KEEP:-}" ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK/plugins"
cp "$HELLO" "$WORK/plugins/hello.wasm"

now() { date +%s.%N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { python3 -c "
r = open('/proc/$1/stat').read().rsplit(')', 1)[1].split()
print(int(r[11]) + int(r[12]))"; }

wait_load() {
    local waited=0
    while python3 -c "import sys; sys.exit(0 if float('$(cut -d' ' -f1 /proc/loadavg)') >= $LOAD_MAX else 1)"; do
        if [ $waited -ge "$LOAD_WAIT" ]; then
            echo "(load average still $(loadavg) after ${LOAD_WAIT}s; measured anyway)" >&2
            break
        fi
        sleep 5
        waited=$((waited + 5))
    done
}

free_port() { python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }

# start_host DIR [ARGS...]: starts a host on DIR/wasmcron.db; sets
# HOST_PID, URL, HEALTHY (seconds from exec to /healthz 200) and READY
# (seconds from exec to the "wasmcron running" log line: start-up done,
# before the first /healthz, which lists every job to count them).
start_host() {
    local dir=$1
    shift
    mkdir -p "$dir"
    touch "$dir/log"
    local port
    port=$(free_port)
    URL=http://127.0.0.1:$port
    local t0
    t0=$(now)
    "$BIN" --log-format json run --plugins "$WORK/plugins" --db "sqlite://$dir/wasmcron.db" \
        --cache-dir "$WORK/cache" --listen "127.0.0.1:$port" --shutdown-grace 2s "$@" \
        2>>"$dir/log" >/dev/null &
    HOST_PID=$!
    disown "$HOST_PID"
    local code lines
    lines=$(wc -l <"$dir/log")
    READY=""
    while true; do
        if [ -z "$READY" ]; then
            if tail -n +$((lines + 1)) "$dir/log" | grep -q '"wasmcron running"'; then
                READY=$(python3 -c "print(f'{$(now) - $t0:.2f}')")
            fi
        else
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$URL/healthz" || true)
            [ "$code" = 200 ] && break
        fi
        kill -0 "$HOST_PID" 2>/dev/null || { tail -20 "$dir/log" >&2; die "host exited"; }
        sleep 0.02
    done
    HEALTHY=$(python3 -c "print(f'{$(now) - $t0:.2f}')")
}

stop_host() {
    kill -TERM "$HOST_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 1200); do
        [ -d "/proc/$HOST_PID" ] || break
        [ "$(cut -d' ' -f3 "/proc/$HOST_PID/stat" 2>/dev/null)" = Z ] && break
        sleep 0.05
    done
    HOST_PID=""
}

jobs_in() { curl -s "$URL/healthz" | python3 -c 'import json, sys; print(json.load(sys.stdin)["jobs"])'; }

# gen N: $WORK/jobs-N.toml and $WORK/jobs-N.http (POST requests).
gen() {
    python3 - "$1" "$WORK/jobs-$1.toml" "$WORK/jobs-$1.http" <<'EOF'
import json, sys
n, toml_path, http_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(toml_path, "w") as t, open(http_path, "wb") as h:
    t.write("version = 1\n")
    for i in range(n):
        m = i % 1440
        expr = f"{m % 60} {m // 60} * * *"
        t.write(f'\n[[jobs]]\nid = "s{i:07}"\nplugin = "hello"\n'
                f'trigger = {{ type = "cron", expr = "{expr}", tz = "Europe/Berlin" }}\n')
        body = json.dumps({"id": f"s{i:07}", "plugin": "hello",
                           "trigger": {"type": "cron", "expr": expr, "tz": "Europe/Berlin"}}).encode()
        h.write(b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
EOF
}

# post_all URL FILE: sends the requests of FILE over CONC connections,
# PIPE in flight on each (HTTP/1.1 pipelining); prints "seconds ok other".
# Answers are counted by their status lines (a job's JSON never holds
# "HTTP/1.1 "), so the client spends little CPU per request.
post_all() {
    python3 - "$1" "$2" "$CONC" "$PIPE" <<'EOF'
import asyncio, sys, time
url, path, conc, pipe = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
host, port = url.split("//")[1].split(":")
head = b"POST /jobs HTTP/1.1\r\n"
reqs = [head + r for r in open(path, "rb").read().split(head)[1:]]
shares = [reqs[i::conc] for i in range(conc)]
totals = {"ok": 0, "all": 0}
ANY, OK = b"HTTP/1.1 ", b"HTTP/1.1 201"

class Conn(asyncio.Protocol):
    def __init__(self, share, done):
        self.share, self.done = share, done
        self.sent = self.answered = 0
        # One byte shorter than each pattern: a match cut between two reads
        # is counted once, in the read that completes it.
        self.tail_any = self.tail_ok = b""

    def connection_made(self, t):
        self.t = t
        self.fill()

    def fill(self):
        end = min(len(self.share), self.answered + pipe)
        if end > self.sent:
            self.t.write(b"".join(self.share[self.sent:end]))
            self.sent = end

    def data_received(self, data):
        a = self.tail_any + data
        o = self.tail_ok + data
        n = a.count(ANY)
        self.answered += n
        totals["all"] += n
        totals["ok"] += o.count(OK)
        self.tail_any, self.tail_ok = a[-(len(ANY) - 1):], o[-(len(OK) - 1):]
        if self.answered >= len(self.share):
            self.t.close()
        else:
            self.fill()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)

async def main():
    loop = asyncio.get_running_loop()
    waits = []
    for share in shares:
        if share:
            done = loop.create_future()
            await loop.create_connection(lambda s=share, d=done: Conn(s, d), host, int(port))
            waits.append(done)
    await asyncio.gather(*waits)

t0 = time.perf_counter()
asyncio.run(main())
print(f"{time.perf_counter() - t0:.2f} {totals['ok']} {totals['all'] - totals['ok']}")
EOF
}

ROWS=$WORK/rows
: >"$ROWS"
row() { printf '%s\n' "$*" >>"$ROWS"; echo "$*" >&2; }

# The host with no job: RSS floor.
start_host "$WORK/empty"
sleep 3
RSS0=$(rss_kib "$HOST_PID")
stop_host
row "floor: a host with no job: healthy in ${HEALTHY} s, RSS $((RSS0 / 1024)) MiB"

# timer_phase NAME: every-1s jobs on the running host; prints a row.
timer_phase() {
    local n=$1 dir=$2
    python3 - "$URL" "$TIMER_JOBS" <<'EOF'
import json, sys, time, urllib.request
url, k = sys.argv[1], int(sys.argv[2])
base = (int(time.time()) + 2) * 1000
for i in range(k):
    start = base + i * 1000 // k
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start // 1000)) + f".{start % 1000:03d}Z"
    body = json.dumps({"id": f"tick{i:03}", "plugin": "hello",
                       "trigger": {"type": "interval", "every": "1s", "start": iso}}).encode()
    req = urllib.request.Request(url + "/jobs", body, {"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
EOF
    # A window between whole minutes (no daily fire in it), after 5 s of
    # warm-up: from second 5 of a minute, TIMER_SECONDS long (<= 50).
    local secs=$((TIMER_SECONDS > 50 ? 50 : TIMER_SECONDS))
    local t from to
    t=$(date +%s)
    from=$(((t + 5 + 59) / 60 * 60 + 5))
    to=$((from + secs))
    sleep "$(python3 -c "import time; print(max(0, $from - time.time()))")"
    local c0 c1 load
    load=$(loadavg)
    c0=$(cpu_ticks "$HOST_PID")
    sleep "$(python3 -c "import time; print(max(0, $to - time.time()))")"
    c1=$(cpu_ticks "$HOST_PID")
    sleep 2
    python3 - "$dir/wasmcron.db" $((from * 1000)) $((to * 1000)) $((c1 - c0)) "$n" "$load" >>"$ROWS" <<'EOF'
import os, sqlite3, sys
db, lo, hi, ticks, n, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
w = "job_id LIKE 'tick%' AND origin = 'fire' AND scheduled_at >= ? AND scheduled_at < ?"
v = sorted(r[0] for r in c.execute(
    f"SELECT started_at - scheduled_at FROM runs WHERE {w} AND status = 'finished'", (lo, hi)))
others = c.execute("SELECT count(*) FROM runs WHERE job_id NOT LIKE 'tick%' AND scheduled_at >= ? AND scheduled_at < ?", (lo, hi)).fetchone()[0]
statuses = ", ".join(f"{s} {k}" for s, k in c.execute(f"SELECT status, count(*) FROM runs WHERE {w} GROUP BY 1", (lo, hi)))
pct = lambda p: v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))] if v else float("nan")
hz = os.sysconf("SC_CLK_TCK")
cpu_us = ticks / hz / len(v) * 1e6 if v else float("nan")
print(f"timer\t{n:,}\t{len(v):,} runs ({statuses}; other jobs' runs in the window: {others})\t"
      f"{pct(50)} / {pct(99)} / {v[-1] if v else 'nan'} ms\t{cpu_us:.0f} us CPU per run\tload {load}")
EOF
    tail -1 "$ROWS" >&2
}

if want timer; then
    wait_load
    start_host "$WORK/timer0"
    timer_phase 0 "$WORK/timer0"
    stop_host
fi

for n in $NS; do
    gen "$n"
    dir=$WORK/api-$n
    if want api; then
        wait_load
        start_host "$dir"
        load=$(loadavg)
        read -r secs ok other <<<"$(post_all "$URL" "$WORK/jobs-$n.http")"
        have=$(jobs_in)
        row "api	$n	POST /jobs x $n: ${secs} s ($(python3 -c "print(f'{$n / $secs:,.0f}')")/s; 201: $ok, other: $other; jobs: $have)	load $load"
        if want restart; then
            stop_host
            wait_load
            load=$(loadavg)
            start_host "$dir"
            sleep 3
            rss=$(rss_kib "$HOST_PID")
            have=$(jobs_in)
            row "restart	$n	healthy in ${HEALTHY} s (start-up done in ${READY} s); RSS $((rss / 1024)) MiB: $((rss * 1024 / n)) B/job ($(((rss - RSS0) * 1024 / n)) B/job above the empty host); jobs: $have	load $load"
        fi
        if want timer; then
            timer_phase "$n" "$dir"
        fi
        stop_host
        rm -rf "$dir"
    fi
    if want config && { [ -z "$CONFIG_MAX" ] || [ "$n" -le "$CONFIG_MAX" ]; }; then
        dir=$WORK/config-$n
        wait_load
        load=$(loadavg)
        start_host "$dir" --config "$WORK/jobs-$n.toml"
        sleep 3
        rss=$(rss_kib "$HOST_PID")
        have=$(jobs_in)
        first="$HEALTHY s (start-up done in $READY s)"
        stop_host
        python3 -c "
import sqlite3; c = sqlite3.connect('$dir/wasmcron.db')
open('$dir/next-before', 'w').write(repr(c.execute('SELECT id, next_run_time, created_at FROM jobs ORDER BY id').fetchall()))"
        load2=$(loadavg)
        start_host "$dir" --config "$WORK/jobs-$n.toml"
        sleep 3
        rss2=$(rss_kib "$HOST_PID")
        second="$HEALTHY s (start-up done in $READY s)"
        stop_host
        moved=$(python3 -c "
import sqlite3; c = sqlite3.connect('$dir/wasmcron.db')
a = dict((r[0], r[1:]) for r in eval(open('$dir/next-before').read()))
b = dict((r[0], r[1:]) for r in c.execute('SELECT id, next_run_time, created_at FROM jobs'))
# A job that fired in between moved on its own: count only those whose
# next fire was still ahead at the second start and changed.
import time; t = time.time() * 1000
print(sum(1 for k in a if k not in b or (a[k][0] is not None and a[k][0] > t and a[k] != b[k])) + sum(1 for k in b if k not in a))")
        row "config	$n	first start ${first} (RSS $((rss / 1024)) MiB, $((rss * 1024 / n)) B/job; jobs: $have; load $load); unchanged second start ${second} (RSS $((rss2 / 1024)) MiB; load $load2); jobs whose schedule the second start changed: $moved"
        rm -rf "$dir"
    fi
    rm -f "$WORK/jobs-$n.toml" "$WORK/jobs-$n.http"
done

echo
echo "wasmcron scale bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), $($BIN --version 2>/dev/null || echo wasmcron), $(nproc) cores"
cat "$ROWS"
