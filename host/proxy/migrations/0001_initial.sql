-- The first schema: connectors with their tool snapshots, actors, runs and the audit log.
-- JSON columns hold text written by src/store/codec.rs or serde_json.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE connectors (
    id            TEXT PRIMARY KEY,
    owner         TEXT NOT NULL,
    name          TEXT NOT NULL,
    server_url    TEXT NOT NULL,
    provider      TEXT NOT NULL,
    config        TEXT NOT NULL,
    auth_method   TEXT NOT NULL,
    -- Sealed by the vault; NULL when the connector has no credential.
    sealed_secret BLOB,
    status        TEXT NOT NULL,
    tools         TEXT NOT NULL,
    -- NULL permits every discovered tool.
    allowed_tools TEXT,
    created_at    INTEGER NOT NULL,
    authorized_at INTEGER NOT NULL,
    revision      INTEGER NOT NULL
) STRICT;

CREATE INDEX connectors_by_owner ON connectors (owner, created_at);

CREATE TABLE actors (
    id               TEXT PRIMARY KEY,
    input_schema     TEXT NOT NULL,
    connector_fields TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    actor       TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    input       TEXT NOT NULL,
    status      TEXT NOT NULL,
    -- SHA-256 of the run token; the token itself is never stored.
    token_hash  BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER,
    expires_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    run       TEXT,
    connector TEXT,
    method    TEXT,
    tool      TEXT,
    decision  TEXT NOT NULL,
    reason    TEXT,
    plugins   TEXT NOT NULL
) STRICT;

CREATE INDEX audit_by_run ON audit (run, seq);
CREATE INDEX audit_by_connector ON audit (connector, seq);
