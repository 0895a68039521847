-- Why the host paused a job by itself (`pause_after_failures`; NULL when
-- not paused or paused by a person), and when its failures in a row were
-- last reset by a resume (ms since the epoch; NULL: never).
ALTER TABLE jobs ADD COLUMN paused_reason TEXT;
ALTER TABLE jobs ADD COLUMN failures_from INTEGER;
