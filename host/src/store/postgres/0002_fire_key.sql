-- One run per fire (issue 11): a run row says what made it (`origin`:
-- 'fire' for the schedule and its retries, 'manual' for run-now and
-- replays) and which host ran it; among fire rows, (job, scheduled time,
-- attempt) is unique, so the database itself refuses a second row for a
-- fire, whichever host tries.
ALTER TABLE runs ADD COLUMN origin text NOT NULL DEFAULT 'fire';
ALTER TABLE runs ADD COLUMN host text;
UPDATE runs SET origin = 'manual' WHERE note LIKE 'replay of run %';
UPDATE runs SET origin = 'manual'
 WHERE origin = 'fire'
   AND run_id NOT IN (SELECT min(run_id) FROM runs WHERE origin = 'fire'
                      GROUP BY job_id, scheduled_at, attempt);
CREATE UNIQUE INDEX runs_fire_key ON runs (job_id, scheduled_at, attempt) WHERE origin = 'fire';

-- The transaction that last moved the job's next fire time by a fire's
-- compare-and-set: the fire's rows are inserted only in that same
-- transaction (they are separate statements, sent pipelined).
ALTER TABLE jobs ADD COLUMN fired_by xid8;
