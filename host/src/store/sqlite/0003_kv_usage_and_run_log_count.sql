-- Schema version 3: a running kv total per job, and a run's log count.
--
-- kv_usage.bytes is the sum, over the job's kv rows, of the key's and the
-- value's size in BYTES (length(CAST(.. AS BLOB))): length() of TEXT counts
-- characters and stops at a NUL, which let NUL-led keys and 4-byte
-- characters slip past the quota (issue 10, item 4). The triggers keep it
-- in the same transaction as the change, so the quota check reads one row
-- instead of summing all of the job's rows on every set (item 5).
-- Writers must not use INSERT OR REPLACE on kv: REPLACE removes the old row
-- without firing the delete trigger unless recursive_triggers is on (every
-- connection turns it on, and the store upserts, both to be safe).
CREATE TABLE kv_usage (
    job_id TEXT PRIMARY KEY NOT NULL,
    bytes  INTEGER NOT NULL            -- keys plus values, in bytes
) WITHOUT ROWID;

INSERT INTO kv_usage (job_id, bytes)
    SELECT job_id, SUM(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)))
    FROM kv GROUP BY job_id;

CREATE TRIGGER kv_usage_after_insert AFTER INSERT ON kv BEGIN
    INSERT INTO kv_usage (job_id, bytes)
        VALUES (new.job_id, length(CAST(new.key AS BLOB)) + length(CAST(new.value AS BLOB)))
        ON CONFLICT (job_id) DO UPDATE SET bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER kv_usage_after_update AFTER UPDATE ON kv BEGIN
    UPDATE kv_usage
        SET bytes = bytes - (length(CAST(old.key AS BLOB)) + length(CAST(old.value AS BLOB)))
        WHERE job_id = old.job_id;
    INSERT INTO kv_usage (job_id, bytes)
        VALUES (new.job_id, length(CAST(new.key AS BLOB)) + length(CAST(new.value AS BLOB)))
        ON CONFLICT (job_id) DO UPDATE SET bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER kv_usage_after_delete AFTER DELETE ON kv BEGIN
    UPDATE kv_usage
        SET bytes = bytes - (length(CAST(old.key AS BLOB)) + length(CAST(old.value AS BLOB)))
        WHERE job_id = old.job_id;
END;

-- How many log records a run holds, so run lists can say so without
-- reading the logs column (item 8). Rows from before count theirs once.
ALTER TABLE runs ADD COLUMN log_count INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET log_count = json_array_length(logs) WHERE json_valid(logs) AND logs != '[]';
