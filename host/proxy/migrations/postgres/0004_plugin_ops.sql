-- PostgreSQL twin of ../0004_plugin_ops.sql (issue 13): installed plugin versions and the
-- chain configuration in the store, and the audit log as a hash chain that also records
-- administrative changes. Types mapped as in 0001. With several replicas there is one
-- chain, ordered by the database: every append takes a transaction-scoped advisory lock
-- first (src/store/postgres_audit.rs), so appends never fork it.

CREATE TABLE plugin_versions (
    name         TEXT COLLATE "C" NOT NULL,
    sha256       TEXT COLLATE "C" NOT NULL,
    component    BYTEA NOT NULL,
    -- The version the component reports about itself.
    version      TEXT NOT NULL,
    -- Unix milliseconds of the first install of these bytes under this name.
    installed_at BIGINT NOT NULL,
    -- The minisign key id that signed it, and the .minisig text, if it came signed.
    signed_by    TEXT,
    signature    TEXT,
    PRIMARY KEY (name, sha256)
);

-- Which version of each name serves (see ../0004_plugin_ops.sql).
CREATE TABLE plugin_heads (
    name       TEXT COLLATE "C" PRIMARY KEY,
    current    TEXT,
    previous   TEXT,
    changed_at BIGINT NOT NULL
);

-- The chain configuration serving (one row), as the JSON of GET /admin/v1/chains.
CREATE TABLE chain_config (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    config     TEXT NOT NULL,
    changed_at BIGINT NOT NULL
);

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
