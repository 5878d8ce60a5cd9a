-- Plugin operations (issue 13): installed plugin versions and the chain configuration move
-- into the store, and the audit log becomes a hash chain that also records administrative
-- changes. Tables a second back end (PostgreSQL) mirrors one to one.

-- Every kept version of every installed plugin: the component bytes with their digest.
-- A version is checked against `sha256` whenever it is loaded.
CREATE TABLE plugin_versions (
    name         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    component    BLOB NOT NULL,
    -- The version the component reports about itself.
    version      TEXT NOT NULL,
    -- Unix milliseconds of the first install of these bytes under this name.
    installed_at INTEGER NOT NULL,
    -- The minisign key id that signed it, and the .minisig text, if it came signed.
    signed_by    TEXT,
    signature    TEXT,
    PRIMARY KEY (name, sha256)
) STRICT;

-- Which version of each name serves. `current` NULL: the name was deleted (a built-in of
-- that name is then not loaded either). No row: the built-in serves, if there is one.
-- `current` may be the digest of the built-in, which has no row in plugin_versions.
CREATE TABLE plugin_heads (
    name       TEXT PRIMARY KEY,
    current    TEXT,
    -- The version that served before `current`: where a rollback without a target goes.
    previous   TEXT,
    changed_at INTEGER NOT NULL
) STRICT;

-- The chain configuration serving (one row), as the JSON of GET /admin/v1/chains.
CREATE TABLE chain_config (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    config     TEXT NOT NULL,
    changed_at INTEGER NOT NULL
) STRICT;

-- The audit log: decisions (`kind` = 'decision') and administrative changes ('admin').
-- `hash` = SHA-256 over `prev_hash` and the record's canonical encoding (see the
-- README's "Operating plugins"); each record holds the hash of the one before it.
ALTER TABLE audit ADD COLUMN kind TEXT NOT NULL DEFAULT 'decision';
ALTER TABLE audit ADD COLUMN actor TEXT;
ALTER TABLE audit ADD COLUMN action TEXT;
ALTER TABLE audit ADD COLUMN target TEXT;
ALTER TABLE audit ADD COLUMN before TEXT;
ALTER TABLE audit ADD COLUMN after TEXT;
ALTER TABLE audit ADD COLUMN prev_hash TEXT;
ALTER TABLE audit ADD COLUMN hash TEXT;

CREATE INDEX audit_by_time ON audit (at_ms);
CREATE INDEX audit_by_method ON audit (method, seq);
