-- Several hosts on one database (issue 11).

-- The leader lease: the host holding it evaluates schedules. `term` is the
-- fencing token, one more for each new leader; `expires_at` is on the
-- database's clock; a released lease has holder '' and expires_at
-- -infinity.
CREATE TABLE leader_lease (
    id          integer PRIMARY KEY CHECK (id = 1),
    term        bigint NOT NULL,
    holder      text NOT NULL DEFAULT '',      -- host id (UUID), '' when free
    holder_name text NOT NULL DEFAULT '',
    expires_at  timestamptz NOT NULL
);
INSERT INTO leader_lease (id, term, expires_at) VALUES (1, 0, '-infinity');

-- The fencing check each recorded fire runs in its own transaction: fails
-- (SQLSTATE WCF01) unless term `t` is the current, unexpired one, and holds
-- the lease row shared until that transaction ends, so a take-over (which
-- updates the row) waits for the fire to commit or roll back.
CREATE FUNCTION wasmcron_fence(t bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM leader_lease
     WHERE id = 1 AND term = t AND expires_at > clock_timestamp()
       FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'leader lease term % is no longer current', t
              USING ERRCODE = 'WCF01';
    END IF;
END
$$;

-- A counter every change of a job's definition or paused state bumps (not
-- its next fire time), so hosts see each other's changes by reading one row.
CREATE TABLE jobs_rev (
    id  integer PRIMARY KEY CHECK (id = 1),
    rev bigint NOT NULL
);
INSERT INTO jobs_rev (id, rev) VALUES (1, 0);

CREATE FUNCTION jobs_rev_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE jobs_rev SET rev = rev + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_rev_bump
    AFTER INSERT OR DELETE OR UPDATE OF spec, paused, incarnation, created_at ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_rev_bump();
