//! [`OAuthStore`] on the embedded SQLite database (tables of migration 0003).
//!
//! A state is taken with `DELETE … RETURNING`, so two callbacks with the same state cannot
//! both get it; the writes that race (token rotation, marking a grant failed) are single
//! statements conditioned on the generation their writer read.

use portcullis_model::ClientAuth;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::codec::{backend, corrupt, decode};
use super::oauth::{
    GrantRecord, OAuthSetup, OAuthStore, PendingAuthorization, RegistrationRecord, SealedTokens,
};
use super::sqlite::{SqliteStore, update_connector_in};
use super::{ConnectorRecord, StoreError};

fn setup_json(setup: &OAuthSetup) -> String {
    serde_json::to_string(setup).expect("an OAuth setup serializes")
}

fn client_auth(text: &str) -> Result<ClientAuth, StoreError> {
    ClientAuth::parse(text).ok_or_else(|| corrupt("client authentication method", text))
}

fn grant_from_row(row: &SqliteRow) -> Result<GrantRecord, StoreError> {
    let setup: String = row.try_get("setup").map_err(backend)?;
    Ok(GrantRecord {
        connector_id: row.try_get("connector_id").map_err(backend)?,
        setup: decode(&setup, "OAuth setup")?,
        sealed_client_secret: row.try_get("sealed_client_secret").map_err(backend)?,
        tokens: SealedTokens {
            access_token: row.try_get("sealed_access_token").map_err(backend)?,
            refresh_token: row.try_get("sealed_refresh_token").map_err(backend)?,
            expires_at: row.try_get("expires_at").map_err(backend)?,
            scope: row.try_get("granted_scope").map_err(backend)?,
        },
        generation: row.try_get("generation").map_err(backend)?,
        failed_reason: row.try_get("failed_reason").map_err(backend)?,
        updated_at: row.try_get("updated_at").map_err(backend)?,
    })
}

fn pending_from_row(row: &SqliteRow) -> Result<PendingAuthorization, StoreError> {
    let setup: String = row.try_get("setup").map_err(backend)?;
    let hash: Vec<u8> = row.try_get("state_hash").map_err(backend)?;
    Ok(PendingAuthorization {
        state_hash: hash
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("state hash", "not 32 bytes"))?,
        connector_id: row.try_get("connector_id").map_err(backend)?,
        setup: decode(&setup, "OAuth setup")?,
        sealed_client_secret: row.try_get("sealed_client_secret").map_err(backend)?,
        sealed_verifier: row.try_get("sealed_verifier").map_err(backend)?,
        reauthorization: row.try_get("reauthorization").map_err(backend)?,
        created_at: row.try_get("created_at").map_err(backend)?,
        expires_at: row.try_get("expires_at").map_err(backend)?,
    })
}

fn registration_from_row(row: &SqliteRow) -> Result<RegistrationRecord, StoreError> {
    let auth: String = row.try_get("auth_method").map_err(backend)?;
    Ok(RegistrationRecord {
        issuer: row.try_get("issuer").map_err(backend)?,
        redirect_uri: row.try_get("redirect_uri").map_err(backend)?,
        client_auth: client_auth(&auth)?,
        registration_endpoint: row.try_get("registration_endpoint").map_err(backend)?,
        client_id: row.try_get("client_id").map_err(backend)?,
        sealed_client_secret: row.try_get("sealed_client_secret").map_err(backend)?,
        client_secret_expires_at: row.try_get("client_secret_expires_at").map_err(backend)?,
        sealed_response: row.try_get("sealed_response").map_err(backend)?,
        created_at: row.try_get("created_at").map_err(backend)?,
    })
}

#[async_trait::async_trait]
impl OAuthStore for SqliteStore {
    async fn registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
        client_auth: ClientAuth,
    ) -> Result<Option<RegistrationRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT issuer, redirect_uri, auth_method, registration_endpoint, client_id, \
             sealed_client_secret, client_secret_expires_at, sealed_response, created_at \
             FROM oauth_registrations WHERE issuer = ? AND redirect_uri = ? AND auth_method = ?",
        )
        .bind(issuer)
        .bind(redirect_uri)
        .bind(client_auth.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(registration_from_row).transpose()
    }

    async fn put_registration(&self, r: &RegistrationRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO oauth_registrations (issuer, redirect_uri, auth_method, \
             registration_endpoint, client_id, sealed_client_secret, client_secret_expires_at, \
             sealed_response, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.issuer)
        .bind(&r.redirect_uri)
        .bind(r.client_auth.as_str())
        .bind(&r.registration_endpoint)
        .bind(&r.client_id)
        .bind(r.sealed_client_secret.as_deref())
        .bind(r.client_secret_expires_at)
        .bind(&r.sealed_response)
        .bind(r.created_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn insert_pending(&self, p: &PendingAuthorization) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_pending (state_hash, connector_id, setup, sealed_client_secret, \
             sealed_verifier, reauthorization, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.state_hash[..])
        .bind(&p.connector_id)
        .bind(setup_json(&p.setup))
        .bind(p.sealed_client_secret.as_deref())
        .bind(&p.sealed_verifier)
        .bind(p.reauthorization)
        .bind(p.created_at)
        .bind(p.expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn take_pending(
        &self,
        state_hash: &[u8; 32],
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM oauth_pending WHERE state_hash = ? RETURNING state_hash, connector_id, \
             setup, sealed_client_secret, sealed_verifier, reauthorization, created_at, expires_at",
        )
        .bind(&state_hash[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(pending_from_row).transpose()
    }

    async fn purge_pending(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM oauth_pending WHERE expires_at < ?")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn grant(&self, connector_id: &str) -> Result<Option<GrantRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT connector_id, setup, sealed_client_secret, sealed_access_token, \
             sealed_refresh_token, expires_at, granted_scope, generation, failed_reason, \
             updated_at FROM oauth_grants WHERE connector_id = ?",
        )
        .bind(connector_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(grant_from_row).transpose()
    }

    async fn authorize(
        &self,
        connector: &ConnectorRecord,
        grant: &GrantRecord,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        update_connector_in(&mut tx, connector).await?;
        let generation: i64 = sqlx::query_scalar(
            "INSERT INTO oauth_grants (connector_id, setup, sealed_client_secret, \
             sealed_access_token, sealed_refresh_token, expires_at, granted_scope, generation, \
             failed_reason, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, NULL, ?) \
             ON CONFLICT (connector_id) DO UPDATE SET setup = excluded.setup, \
             sealed_client_secret = excluded.sealed_client_secret, \
             sealed_access_token = excluded.sealed_access_token, \
             sealed_refresh_token = excluded.sealed_refresh_token, \
             expires_at = excluded.expires_at, granted_scope = excluded.granted_scope, \
             generation = oauth_grants.generation + 1, failed_reason = NULL, \
             updated_at = excluded.updated_at RETURNING generation",
        )
        .bind(&grant.connector_id)
        .bind(setup_json(&grant.setup))
        .bind(grant.sealed_client_secret.as_deref())
        .bind(&grant.tokens.access_token)
        .bind(grant.tokens.refresh_token.as_deref())
        .bind(grant.tokens.expires_at)
        .bind(grant.tokens.scope.as_deref())
        .bind(grant.updated_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(generation)
    }

    async fn rotate_tokens(
        &self,
        connector_id: &str,
        generation: i64,
        tokens: &SealedTokens,
        at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE oauth_grants SET sealed_access_token = ?, sealed_refresh_token = ?, \
             expires_at = ?, granted_scope = ?, generation = generation + 1, updated_at = ? \
             WHERE connector_id = ? AND generation = ? AND failed_reason IS NULL",
        )
        .bind(&tokens.access_token)
        .bind(tokens.refresh_token.as_deref())
        .bind(tokens.expires_at)
        .bind(tokens.scope.as_deref())
        .bind(at)
        .bind(connector_id)
        .bind(generation)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn fail_grant(
        &self,
        connector_id: &str,
        generation: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE oauth_grants SET failed_reason = ? \
             WHERE connector_id = ? AND generation = ? AND failed_reason IS NULL",
        )
        .bind(reason)
        .bind(connector_id)
        .bind(generation)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE connectors SET status = 'needs_reauthorization', revision = revision + 1 \
             WHERE id = ? AND auth_method = 'oauth'",
        )
        .bind(connector_id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn delete_grant(&self, connector_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM oauth_grants WHERE connector_id = ?")
            .bind(connector_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
