-- The run whose end started a chained run (issue 13): its run id, on the
-- child and on the child's retries; NULL for every other run. Runs chained
-- before this column existed keep only their note ("chained: on_success of
-- run ...").
ALTER TABLE runs ADD COLUMN parent_run_id text;
