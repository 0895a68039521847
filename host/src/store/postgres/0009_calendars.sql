-- Named calendars (issue 13): days on which the jobs that name them in
-- `exclude` do not fire. `spec` is the calendar as written, JSON. A change
-- bumps the jobs revision, so the other hosts take it within their next
-- sync (a calendar moves the next fire of the jobs naming it).
CREATE TABLE calendars (
    name text PRIMARY KEY,
    spec text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TRIGGER calendars_rev_bump
    AFTER INSERT OR DELETE OR UPDATE ON calendars
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_rev_bump();
