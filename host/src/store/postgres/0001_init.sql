-- wasmcron job store on PostgreSQL, schema version 1: the concepts of the
-- SQLite schema (its migrations 0001 to 0005) in one step.
--
-- Times are timestamptz holding whole milliseconds (the store truncates
-- them, as SQLite's integer milliseconds do), so a host behaves the same on
-- either backend and operators can read them. Identifiers use the "C"
-- collation: byte order, as SQLite compares them.

CREATE TABLE jobs (
    id            text COLLATE "C" PRIMARY KEY,
    spec          text NOT NULL,               -- the JobSpec as JSON (text: a row a newer
                                               -- version wrote is kept even if it is not JSON)
    created_at    timestamptz NOT NULL,
    next_run_time timestamptz,                 -- NULL when the schedule is over
    paused        boolean NOT NULL DEFAULT false,
    incarnation   text NOT NULL DEFAULT ''     -- which life of this id (see JobRecord)
);

-- One row per attempt at a fire, or per fire that did not run. No unique
-- key on (job_id, scheduled_at, attempt) yet: a manual run or a replay may
-- share those with a scheduled fire today. The cluster step adds one for
-- scheduled fires.
CREATE TABLE runs (
    run_id       text COLLATE "C" PRIMARY KEY, -- UUID v7, time-ordered
    job_id       text COLLATE "C" NOT NULL,
    incarnation  text NOT NULL DEFAULT '',
    attempt      bigint NOT NULL,
    scheduled_at timestamptz NOT NULL,
    due_at       timestamptz NOT NULL,
    status       text NOT NULL,                -- pending|running|finished|missed|skipped|interrupted
    started_at   timestamptz,
    ended_at     timestamptz,
    outcome_kind text,                         -- succeeded|failed|trapped|out-of-fuel|timed-out|memory-limit
    outcome      json,                         -- the Outcome
    fuel         bigint NOT NULL DEFAULT 0,
    -- json, not jsonb: jsonb refuses the \u0000 escapes guests' output may
    -- hold, and json keeps the text exactly as written.
    logs         json NOT NULL DEFAULT '[]',
    log_count    bigint NOT NULL DEFAULT 0,    -- so run lists need not read logs
    plugin_hash  text,
    note         text,
    args         text                          -- the args it ran with (JSON text)
);
CREATE INDEX runs_by_job ON runs (job_id, scheduled_at DESC, run_id DESC);
CREATE INDEX runs_unfinished ON runs (status) WHERE status IN ('pending', 'running');

-- Guests' kv data. Keys are bytea: text cannot hold NUL, and keys may.
CREATE TABLE kv (
    job_id text COLLATE "C" NOT NULL,
    key    bytea NOT NULL,
    value  bytea NOT NULL,
    PRIMARY KEY (job_id, key)
);

-- The running total of each job's kv data, in bytes (keys plus values),
-- kept by triggers in the same transaction as the change: a quota check
-- reads one row instead of summing all of the job's.
CREATE TABLE kv_usage (
    job_id text COLLATE "C" PRIMARY KEY,
    bytes  bigint NOT NULL
);

CREATE FUNCTION kv_usage_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE kv_usage SET bytes = bytes - (octet_length(OLD.key) + octet_length(OLD.value))
            WHERE job_id = OLD.job_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO kv_usage (job_id, bytes)
            VALUES (NEW.job_id, octet_length(NEW.key) + octet_length(NEW.value))
            ON CONFLICT (job_id) DO UPDATE SET bytes = kv_usage.bytes + excluded.bytes;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER kv_usage_track AFTER INSERT OR UPDATE OR DELETE ON kv
    FOR EACH ROW EXECUTE FUNCTION kv_usage_track();

-- One row the writer rewrites while the store cannot be written: the first
-- write that succeeds ends the outage.
CREATE TABLE store_probe (
    id integer PRIMARY KEY CHECK (id = 1),
    at timestamptz NOT NULL
);
