-- One run per fire (issue 11): a run row says what made it (`origin`:
-- 'fire' for the schedule and its retries, 'manual' for run-now and
-- replays) and which host ran it; among fire rows, (job, scheduled time,
-- attempt) is unique, so the database itself refuses a second row for a
-- fire.
ALTER TABLE runs ADD COLUMN origin TEXT NOT NULL DEFAULT 'fire';
ALTER TABLE runs ADD COLUMN host TEXT;
-- Replays are the only older rows known to be manual (their note says so);
-- a run-now row of before this version cannot be told from a fire.
UPDATE runs SET origin = 'manual' WHERE note LIKE 'replay of run %';
-- Rows an older version recorded twice for one fire keep the first as the
-- fire; the later ones are kept too, as manual, so no history is lost.
UPDATE runs SET origin = 'manual'
 WHERE origin = 'fire'
   AND run_id NOT IN (SELECT min(run_id) FROM runs WHERE origin = 'fire'
                      GROUP BY job_id, scheduled_at, attempt);
CREATE UNIQUE INDEX runs_fire_key ON runs (job_id, scheduled_at, attempt) WHERE origin = 'fire';
