-- Each run records the args it was given, so a replay can use the same.
ALTER TABLE runs ADD COLUMN args TEXT;
