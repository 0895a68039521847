-- Why the host paused a job by itself (`pause_after_failures`; NULL when
-- not paused or paused by a person), and when its failures in a row were
-- last reset by a resume (NULL: never). Neither bumps the jobs revision
-- by itself: they are written in the batch of the pause or resume, whose
-- `paused` change does.
ALTER TABLE jobs ADD COLUMN paused_reason text;
ALTER TABLE jobs ADD COLUMN failures_from timestamptz;
