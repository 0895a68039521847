-- Named calendars (issue 13): days on which the jobs that name them in
-- `exclude` do not fire. `spec` is the calendar as written, JSON;
-- `updated_at` in ms since the epoch.
CREATE TABLE calendars (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
