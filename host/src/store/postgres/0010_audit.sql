-- The audit log (issue 15): one row per state change made through any
-- host's API, the jobs file or a plugin's sidecar; one table for every
-- host of the database, so the cluster has one log. `id` is the paging
-- cursor; `job` the job a change concerns (NULL for plugins and
-- calendars); `detail` JSON.
CREATE TABLE audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    client text,
    action text NOT NULL,
    target text NOT NULL,
    job text,
    detail text NOT NULL
);
CREATE INDEX audit_job ON audit (job, id);
CREATE INDEX audit_at ON audit (at);
