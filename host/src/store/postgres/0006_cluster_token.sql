-- One API token for every host of a shared database (issue 11): any
-- host's API changes jobs and plugins for all, so a host without the
-- token (or with another) would open the whole cluster to whoever reaches
-- it. The row holds the SHA-256 of the token the live hosts use (NULL:
-- they use none); a host whose token differs is refused at start while
-- another host is alive, and sets it when none is.
CREATE TABLE cluster_token (
    id         integer PRIMARY KEY CHECK (id = 1),
    sha256     text,
    set_by     text NOT NULL,
    set_at     timestamptz NOT NULL
);
