-- OAuth connectors (issue 12): each connector's grant, the authorizations waiting for their
-- callback, and the clients registered dynamically at each authorization server.
-- Every BLOB named sealed_* is sealed by the vault; a state is kept only as its SHA-256.
-- JSON columns hold text written by src/store/sqlite_oauth.rs (OAuthSetup).

CREATE TABLE oauth_registrations (
    issuer                   TEXT NOT NULL,
    redirect_uri             TEXT NOT NULL,
    auth_method              TEXT NOT NULL,
    registration_endpoint    TEXT NOT NULL,
    client_id                TEXT NOT NULL,
    sealed_client_secret     BLOB,
    -- Unix seconds; NULL when the secret does not expire.
    client_secret_expires_at INTEGER,
    -- The whole RFC 7591 response, which may hold a registration_access_token.
    sealed_response          BLOB NOT NULL,
    created_at               INTEGER NOT NULL,
    PRIMARY KEY (issuer, redirect_uri, auth_method)
) STRICT;

CREATE TABLE oauth_grants (
    connector_id         TEXT PRIMARY KEY REFERENCES connectors (id) ON DELETE CASCADE,
    setup                TEXT NOT NULL,
    sealed_client_secret BLOB,
    sealed_access_token  BLOB NOT NULL,
    sealed_refresh_token BLOB,
    -- Unix seconds; NULL when the authorization server did not say.
    expires_at           INTEGER,
    granted_scope        TEXT,
    -- Grows with every new access token; writers compare and swap on it.
    generation           INTEGER NOT NULL,
    -- Set when the grant was refused: the connector needs re-authorization.
    failed_reason        TEXT,
    updated_at           INTEGER NOT NULL
) STRICT;

CREATE TABLE oauth_pending (
    state_hash           BLOB PRIMARY KEY,
    connector_id         TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    setup                TEXT NOT NULL,
    sealed_client_secret BLOB,
    sealed_verifier      BLOB NOT NULL,
    reauthorization      INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    expires_at           INTEGER NOT NULL
) STRICT;

CREATE INDEX oauth_pending_by_connector ON oauth_pending (connector_id);
CREATE INDEX oauth_pending_by_expiry ON oauth_pending (expires_at);
