-- Plugins pushed through the API (PUT /plugins/{name}, issue 11): kept by
-- content hash; every host writes the current version into its plugins
-- folder, where the usual checks and compile cache apply. A deleted
-- plugin keeps its row (deleted = true) so hosts remove their copy.
CREATE TABLE plugin_files (
    name        text COLLATE "C" PRIMARY KEY,
    hash        text NOT NULL,                 -- SHA-256 of bytes, hex
    bytes       bytea NOT NULL,
    uploaded_at timestamptz NOT NULL,
    deleted     boolean NOT NULL DEFAULT false
);
