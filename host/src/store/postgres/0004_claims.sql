-- Every host executes (issue 11): the leader records fires as pending
-- rows, any host claims them (FOR UPDATE SKIP LOCKED), a running run names
-- its host, and a host that stops heartbeating has its runs recorded
-- interrupted by the leader.

-- Live hosts: each upserts its row at every lease round and deletes it at
-- a clean stop.
CREATE TABLE hosts (
    id           text PRIMARY KEY,             -- a UUID per start
    name         text NOT NULL,                -- --host-name; runs.host holds it
    address      text NOT NULL DEFAULT '',     -- its API, when it serves one
    version      text NOT NULL DEFAULT '',     -- wasmcron's version
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,         -- database clock
    plugins      text NOT NULL DEFAULT '[]',   -- JSON: [{"name", "hash"}] loaded there
    in_flight    integer NOT NULL DEFAULT 0    -- runs it is handling
);
CREATE INDEX hosts_by_name ON hosts (name, heartbeat_at DESC);

-- What a claim needs of a job without parsing its spec: the plugin that
-- runs it and how many of its runs may go at once across all hosts.
ALTER TABLE jobs ADD COLUMN plugin text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN max_instances integer NOT NULL DEFAULT 1;
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT id, spec FROM jobs LOOP
        BEGIN
            UPDATE jobs
               SET plugin = coalesce((r.spec::json)->>'plugin', ''),
                   max_instances = coalesce(((r.spec::json)->>'max_instances')::integer, 1)
             WHERE id = r.id;
        EXCEPTION WHEN others THEN
            NULL; -- a spec a newer version wrote: left for that version
        END;
    END LOOP;
END
$$;

CREATE INDEX runs_pending_due ON runs (due_at) WHERE status = 'pending';
CREATE INDEX runs_running_by_job ON runs (job_id) WHERE status = 'running';

-- Hosts waiting for work wake on this rather than polling.
CREATE FUNCTION runs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wasmcron_runs', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER runs_notify AFTER INSERT ON runs
    FOR EACH STATEMENT EXECUTE FUNCTION runs_notify();
