-- The audit log (issue 15): one row per state change made through the
-- API, the jobs file or a plugin's sidecar. `id` is the paging cursor
-- (AUTOINCREMENT: ids of pruned rows are never given again, so a cursor
-- never points at a newer row); `at` in ms since the epoch; `job` the job
-- a change concerns (NULL for plugins and calendars); `detail` JSON.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    client TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    job TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_job ON audit (job, id);
CREATE INDEX audit_at ON audit (at);
