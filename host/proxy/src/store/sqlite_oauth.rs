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

#[cfg(test)]
mod tests {
    use portcullis_model::{ConnectorStatus, Registration};

    use super::*;
    use crate::store::oauth::AuthServer;
    use crate::store::{AuthMethod, Store, new_id};

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let tmp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&tmp.path().join("db.sqlite"))
            .await
            .unwrap();
        (tmp, store)
    }

    fn connector() -> ConnectorRecord {
        ConnectorRecord {
            id: new_id("conn"),
            owner: "u1".into(),
            name: "n".into(),
            server_url: "https://mcp.example.com/mcp".into(),
            provider: "bearer".into(),
            config: serde_json::json!({}),
            auth: AuthMethod::OAuth,
            sealed_secret: None,
            status: ConnectorStatus::PendingAuthorization,
            tools: Vec::new(),
            allowed_tools: None,
            created_at: 1,
            authorized_at: 1,
            revision: 1,
        }
    }

    fn setup() -> OAuthSetup {
        OAuthSetup {
            server: AuthServer {
                issuer: Some("https://as.example.com".into()),
                authorization_endpoint: "https://as.example.com/auth".into(),
                token_endpoint: "https://as.example.com/token".into(),
                revocation_endpoint: None,
                iss_parameter_supported: true,
            },
            client_id: "c".into(),
            client_auth: ClientAuth::None,
            registration: Registration::Dynamic,
            resource: "https://mcp.example.com/mcp".into(),
            redirect_uri: "https://proxy.example.com/oauth/callback".into(),
            scopes: vec!["a".into()],
            token_params: Vec::new(),
            access_token_pointer: None,
        }
    }

    fn tokens(tag: u8) -> SealedTokens {
        SealedTokens {
            access_token: vec![tag; 4],
            refresh_token: Some(vec![tag + 100; 4]),
            expires_at: Some(1000 + i64::from(tag)),
            scope: Some("a".into()),
        }
    }

    fn grant(connector: &ConnectorRecord, tag: u8) -> GrantRecord {
        GrantRecord {
            connector_id: connector.id.clone(),
            setup: setup(),
            sealed_client_secret: None,
            tokens: tokens(tag),
            generation: 0,
            failed_reason: None,
            updated_at: 5,
        }
    }

    fn pending(connector: &ConnectorRecord, hash: u8, expires_at: i64) -> PendingAuthorization {
        PendingAuthorization {
            state_hash: [hash; 32],
            connector_id: connector.id.clone(),
            setup: setup(),
            sealed_client_secret: Some(vec![9; 3]),
            sealed_verifier: vec![7; 3],
            reauthorization: false,
            created_at: 1,
            expires_at,
        }
    }

    #[tokio::test]
    async fn registrations_are_keyed_by_issuer() {
        let (_tmp, store) = store().await;
        let record = RegistrationRecord {
            issuer: "https://as.example.com".into(),
            redirect_uri: "https://p/cb".into(),
            client_auth: ClientAuth::None,
            registration_endpoint: "https://as.example.com/reg".into(),
            client_id: "first".into(),
            sealed_client_secret: None,
            client_secret_expires_at: None,
            sealed_response: vec![1, 2],
            created_at: 3,
        };
        store.put_registration(&record).await.unwrap();
        let found = store
            .registration("https://as.example.com", "https://p/cb", ClientAuth::None)
            .await
            .unwrap();
        assert_eq!(found.as_ref(), Some(&record));
        for (issuer, uri, auth) in [
            (
                "https://other.example.com",
                "https://p/cb",
                ClientAuth::None,
            ),
            ("https://as.example.com", "https://q/cb", ClientAuth::None),
            (
                "https://as.example.com",
                "https://p/cb",
                ClientAuth::ClientSecretPost,
            ),
        ] {
            assert!(
                store
                    .registration(issuer, uri, auth)
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        let replaced = RegistrationRecord {
            client_id: "second".into(),
            ..record
        };
        store.put_registration(&replaced).await.unwrap();
        let found = store
            .registration("https://as.example.com", "https://p/cb", ClientAuth::None)
            .await
            .unwrap();
        assert_eq!(found.unwrap().client_id, "second");
    }

    #[tokio::test]
    async fn a_state_is_taken_once_and_expired_ones_are_purged() {
        let (_tmp, store) = store().await;
        let c = connector();
        store.insert_connector(&c).await.unwrap();
        store.insert_pending(&pending(&c, 1, 100)).await.unwrap();
        store.insert_pending(&pending(&c, 2, 50)).await.unwrap();
        assert!(store.insert_pending(&pending(&c, 1, 100)).await.is_err());
        let taken = store.take_pending(&[1; 32]).await.unwrap().unwrap();
        assert_eq!(taken, pending(&c, 1, 100));
        assert!(store.take_pending(&[1; 32]).await.unwrap().is_none());
        assert_eq!(store.purge_pending(60).await.unwrap(), 1);
        assert!(store.take_pending(&[2; 32]).await.unwrap().is_none());

        let dangling = PendingAuthorization {
            connector_id: "conn_missing".into(),
            ..pending(&c, 3, 100)
        };
        assert!(
            store.insert_pending(&dangling).await.is_err(),
            "bound to a connector"
        );
    }

    #[tokio::test]
    async fn grants_rotate_by_compare_and_swap_and_fail_once() {
        let (_tmp, store) = store().await;
        let mut c = connector();
        store.insert_connector(&c).await.unwrap();
        c.status = ConnectorStatus::Authorized;
        c.revision = 2;
        assert_eq!(store.authorize(&c, &grant(&c, 1)).await.unwrap(), 1);
        let stored = store.grant(&c.id).await.unwrap().unwrap();
        assert_eq!((stored.generation, &stored.tokens), (1, &tokens(1)));
        assert_eq!(
            store.connector(&c.id).await.unwrap().unwrap().status,
            ConnectorStatus::Authorized
        );
        // A stale connector revision stores nothing.
        assert!(store.authorize(&c, &grant(&c, 9)).await.is_err());
        assert_eq!(store.grant(&c.id).await.unwrap().unwrap().tokens, tokens(1));

        assert!(store.rotate_tokens(&c.id, 1, &tokens(2), 6).await.unwrap());
        assert!(
            !store.rotate_tokens(&c.id, 1, &tokens(3), 7).await.unwrap(),
            "stale generation"
        );
        let stored = store.grant(&c.id).await.unwrap().unwrap();
        assert_eq!(
            (stored.generation, &stored.tokens, stored.updated_at),
            (2, &tokens(2), 6)
        );

        assert!(
            !store.fail_grant(&c.id, 1, "invalid_grant").await.unwrap(),
            "stale generation"
        );
        assert!(store.fail_grant(&c.id, 2, "invalid_grant").await.unwrap());
        assert!(
            !store.fail_grant(&c.id, 2, "invalid_grant").await.unwrap(),
            "already failed"
        );
        assert!(
            !store.rotate_tokens(&c.id, 2, &tokens(4), 8).await.unwrap(),
            "a failed grant stays failed"
        );
        let failed = store.grant(&c.id).await.unwrap().unwrap();
        assert_eq!(failed.failed_reason.as_deref(), Some("invalid_grant"));
        let connector = store.connector(&c.id).await.unwrap().unwrap();
        assert_eq!(connector.status, ConnectorStatus::NeedsReauthorization);
        assert_eq!(connector.revision, 3);

        // Re-authorization replaces the grant and clears the failure.
        let mut again = connector;
        again.status = ConnectorStatus::Authorized;
        again.revision = 4;
        assert_eq!(store.authorize(&again, &grant(&again, 5)).await.unwrap(), 3);
        let fresh = store.grant(&c.id).await.unwrap().unwrap();
        assert_eq!((fresh.failed_reason, fresh.tokens), (None, tokens(5)));

        store
            .insert_pending(&pending(&again, 8, 100))
            .await
            .unwrap();
        assert!(store.delete_connector(&c.id).await.unwrap());
        assert!(
            store.grant(&c.id).await.unwrap().is_none(),
            "deleted with its connector"
        );
        assert!(store.take_pending(&[8; 32]).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn delete_grant_removes_only_that_grant() {
        let (_tmp, store) = store().await;
        let (mut a, mut b) = (connector(), connector());
        for c in [&mut a, &mut b] {
            store.insert_connector(c).await.unwrap();
            c.revision = 2;
            store.authorize(c, &grant(c, 1)).await.unwrap();
        }
        store.delete_grant(&a.id).await.unwrap();
        assert!(store.grant(&a.id).await.unwrap().is_none());
        assert!(store.grant(&b.id).await.unwrap().is_some());
    }
}
