-- wasmcron job store, schema version 1.
CREATE TABLE jobs (
    id            TEXT PRIMARY KEY NOT NULL,
    spec          TEXT NOT NULL,            -- the JobSpec as JSON
    created_at    INTEGER NOT NULL,         -- unix ms
    next_run_time INTEGER,                  -- unix ms; NULL when the schedule is over
    paused        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE runs (
    run_id       TEXT PRIMARY KEY NOT NULL, -- UUID v7, time-ordered
    job_id       TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    scheduled_at INTEGER NOT NULL,          -- unix ms
    due_at       INTEGER NOT NULL,          -- unix ms
    status       TEXT NOT NULL,             -- pending|running|finished|missed|skipped|interrupted
    started_at   INTEGER,
    ended_at     INTEGER,
    outcome_kind TEXT,                      -- succeeded|failed|trapped|out-of-fuel|timed-out|memory-limit
    outcome      TEXT,                      -- the Outcome as JSON
    fuel         INTEGER NOT NULL DEFAULT 0,
    logs         TEXT NOT NULL DEFAULT '[]',
    plugin_hash  TEXT,
    note         TEXT
);
CREATE INDEX runs_by_job ON runs (job_id, scheduled_at DESC);
CREATE INDEX runs_unfinished ON runs (status) WHERE status IN ('pending', 'running');

CREATE TABLE kv (
    job_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  BLOB NOT NULL,
    PRIMARY KEY (job_id, key)
) WITHOUT ROWID;
