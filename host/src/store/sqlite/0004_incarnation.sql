-- Job incarnations: a job gets a new incarnation id when it is created,
-- keeps it across modifications, and a run row carries the incarnation it
-- belongs to. A run of a deleted job that finishes after a new job took
-- the same id is then never recorded under (or listed with) the new job.
ALTER TABLE jobs ADD COLUMN incarnation TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN incarnation TEXT NOT NULL DEFAULT '';
UPDATE jobs SET incarnation = lower(hex(randomblob(16)));
UPDATE runs SET incarnation = coalesce(
    (SELECT jobs.incarnation FROM jobs WHERE jobs.id = runs.job_id), '');
