#!/usr/bin/env python3
"""Generates cron_known_answers.json: next fire times from Python's croniter.

Run from the repository root:

    python3 -m venv /tmp/croniter-venv
    /tmp/croniter-venv/bin/pip install croniter==7.0.0
    /tmp/croniter-venv/bin/python tests/data/gen_cron_known_answers.py > tests/data/cron_known_answers.json

croniter is a reference, not the rule: it reads `5-5` as the whole field,
ORs `*`-led day fields unless implement_cron_bug=True (set below, which gives
Vixie's AND), and differs from cronie around DST. So the table keeps to
expressions and zones where the rules of issue 3 and croniter agree: no
`a-a` ranges, and zones without DST (UTC, Asia/Shanghai, Asia/Kolkata) or
windows away from DST changes. The DST behaviour is tested by hand-derived
cases in host/src/trigger/cron/tests.rs.
"""

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from croniter import croniter

EXPRESSIONS = [
    "* * * * *",
    "*/15 * * * *",
    "0 * * * *",
    "30 9 * * *",
    "0 9 * * mon-fri",
    "0 9 * * MON,wed,Fri",
    "10-50/20 * * * *",
    "0 0 1 * *",
    "0 0 1 1 *",
    "0 12 1,15 * *",
    "0 0 13 * 5",
    "0 0 */2 * 1",
    "0 0 1-7 * 1",
    "0 0 * * 0",
    "0 0 * * 7",
    "0 0 * * 5-7",
    "5 4 * * sun",
    "0 22 * * 1-5",
    "23 0-20/2 * * *",
    "0 0,12 1 */2 *",
    "0 4 8-14 * *",
    "0 0 29 2 *",
    "0 0 29 2 1",
    "0 0 31 * *",
    "15 14 1 * *",
    "0 9-17 * jan-mar,oct-dec mon",
    "*/7 */5 * * *",
    "59 23 31 12 *",
    "0 0 * feb sat",
    "0 6 1,10,20 * tue",
]

STARTS = [
    ("UTC", "2026-01-01T00:00:00+00:00"),
    ("UTC", "2026-02-27T23:59:30+00:00"),
    ("UTC", "2027-12-31T23:00:00+00:00"),
    ("Asia/Shanghai", "2026-11-25T10:00:00+08:00"),
    ("Asia/Kolkata", "2026-06-15T08:45:00+05:30"),
]

COUNT = 8


def main() -> None:
    cases = []
    for expr in EXPRESSIONS:
        for zone, start in STARTS:
            tz = ZoneInfo(zone)
            base = datetime.fromisoformat(start).astimezone(tz)
            it = croniter(expr, base, implement_cron_bug=True)
            nexts = [it.get_next(datetime).astimezone(tz).isoformat() for _ in range(COUNT)]
            cases.append({"expr": expr, "tz": zone, "after": start, "next": nexts})
    json.dump(
        {
            "generator": "tests/data/gen_cron_known_answers.py with croniter 7.0.0",
            "generated_at": datetime.now(timezone.utc).date().isoformat(),
            "cases": cases,
        },
        fp=__import__("sys").stdout,
        indent=1,
    )
    print()


if __name__ == "__main__":
    main()
