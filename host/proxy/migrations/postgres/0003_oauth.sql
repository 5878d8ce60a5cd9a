-- PostgreSQL twin of ../0003_oauth.sql: each OAuth connector's grant, the authorizations
-- waiting for their callback, and the clients registered dynamically at each
-- authorization server. Every BYTEA named sealed_* is sealed by the vault; a state is kept
-- only as its SHA-256. Types mapped as in 0001.

CREATE TABLE oauth_registrations (
    issuer                   TEXT COLLATE "C" NOT NULL,
    redirect_uri             TEXT COLLATE "C" NOT NULL,
    auth_method              TEXT COLLATE "C" NOT NULL,
    registration_endpoint    TEXT NOT NULL,
    client_id                TEXT NOT NULL,
    sealed_client_secret     BYTEA,
    -- Unix seconds; NULL when the secret does not expire.
    client_secret_expires_at BIGINT,
    -- The whole RFC 7591 response, which may hold a registration_access_token.
    sealed_response          BYTEA NOT NULL,
    created_at               BIGINT NOT NULL,
    PRIMARY KEY (issuer, redirect_uri, auth_method)
);

CREATE TABLE oauth_grants (
    connector_id         TEXT COLLATE "C" PRIMARY KEY REFERENCES connectors (id) ON DELETE CASCADE,
    setup                TEXT NOT NULL,
    sealed_client_secret BYTEA,
    sealed_access_token  BYTEA NOT NULL,
    sealed_refresh_token BYTEA,
    -- Unix seconds; NULL when the authorization server did not say.
    expires_at           BIGINT,
    granted_scope        TEXT,
    -- Grows with every new access token; writers compare and swap on it.
    generation           BIGINT NOT NULL,
    -- Set when the grant was refused: the connector needs re-authorization.
    failed_reason        TEXT,
    updated_at           BIGINT NOT NULL
);

CREATE TABLE oauth_pending (
    state_hash           BYTEA PRIMARY KEY,
    connector_id         TEXT COLLATE "C" NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    setup                TEXT NOT NULL,
    sealed_client_secret BYTEA,
    sealed_verifier      BYTEA NOT NULL,
    reauthorization      BOOLEAN NOT NULL,
    created_at           BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL
);

CREATE INDEX oauth_pending_by_connector ON oauth_pending (connector_id);
CREATE INDEX oauth_pending_by_expiry ON oauth_pending (expires_at);
