-- One row the writer rewrites, once a second, while the store cannot be
-- written (disk full, read-only file system): the first write that
-- succeeds ends the outage, and the host resumes firing by itself.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
);
