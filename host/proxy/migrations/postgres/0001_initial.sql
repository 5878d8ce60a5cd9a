-- PostgreSQL twin of ../0001_initial.sql (the SQLite schema). Every migration here has the
-- number of its SQLite twin, so both back ends report one schema version.
-- Same tables, columns and meaning; types mapped:
--   TEXT -> TEXT, BLOB -> BYTEA, INTEGER -> BIGINT (sqlx decodes i64 only from INT8),
--   INTEGER PRIMARY KEY AUTOINCREMENT -> BIGINT GENERATED ALWAYS AS IDENTITY,
--   STRICT -> (nothing: PostgreSQL columns are always strictly typed).
-- JSON stays TEXT: the codec writes and reads it as a string, and JSONB would reorder keys,
-- drop duplicate keys and refuse a plain text bind without a cast.
-- Identifiers compare bytewise, as in SQLite, whatever the database's collation.

CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE connectors (
    id            TEXT COLLATE "C" PRIMARY KEY,
    owner         TEXT COLLATE "C" NOT NULL,
    name          TEXT NOT NULL,
    server_url    TEXT NOT NULL,
    provider      TEXT NOT NULL,
    config        TEXT NOT NULL,
    auth_method   TEXT NOT NULL,
    -- Sealed by the vault; NULL when the connector has no credential.
    sealed_secret BYTEA,
    status        TEXT NOT NULL,
    tools         TEXT NOT NULL,
    -- NULL permits every discovered tool.
    allowed_tools TEXT,
    created_at    BIGINT NOT NULL,
    authorized_at BIGINT NOT NULL,
    revision      BIGINT NOT NULL
);

CREATE INDEX connectors_by_owner ON connectors (owner, created_at);

CREATE TABLE actors (
    id               TEXT COLLATE "C" PRIMARY KEY,
    input_schema     TEXT NOT NULL,
    connector_fields TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE runs (
    id          TEXT COLLATE "C" PRIMARY KEY,
    actor       TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    input       TEXT NOT NULL,
    status      TEXT NOT NULL,
    -- SHA-256 of the run token; the token itself is never stored.
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    finished_at BIGINT,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE audit (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    run       TEXT COLLATE "C",
    connector TEXT COLLATE "C",
    method    TEXT,
    tool      TEXT,
    decision  TEXT NOT NULL,
    reason    TEXT,
    plugins   TEXT NOT NULL
);

CREATE INDEX audit_by_run ON audit (run, seq);
CREATE INDEX audit_by_connector ON audit (connector, seq);
