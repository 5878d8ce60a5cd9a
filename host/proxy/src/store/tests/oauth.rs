//! The OAuth records (grants, pending authorizations, registrations), on both back ends.

use std::sync::Arc;

use portcullis_model::{ClientAuth, ConnectorStatus, Registration};

use super::on_both_backends;
use crate::store::oauth::AuthServer;
use crate::store::{
    AuthMethod, ConnectorRecord, GrantRecord, OAuthSetup, PendingAuthorization, RegistrationRecord,
    SealedTokens, Store, new_id,
};

on_both_backends!(
    registrations_are_keyed_by_issuer,
    a_state_is_taken_once_and_expired_ones_are_purged,
    grants_rotate_by_compare_and_swap_and_fail_once,
    delete_grant_removes_only_that_grant,
);

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

async fn registrations_are_keyed_by_issuer(store: Arc<dyn Store>) {
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

async fn a_state_is_taken_once_and_expired_ones_are_purged(store: Arc<dyn Store>) {
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

async fn grants_rotate_by_compare_and_swap_and_fail_once(store: Arc<dyn Store>) {
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

async fn delete_grant_removes_only_that_grant(store: Arc<dyn Store>) {
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

/// Stores one sealed value of every kind: the key check, a connector's credential, an
/// OAuth grant, a pending authorization and a registration. Answers the key check, the
/// credential (connector id, owner, sealed bytes) and the grant.
pub async fn sealed_everything(
    store: &dyn Store,
) -> (Vec<u8>, (String, String, Vec<u8>), GrantRecord) {
    let key = vec![42; 5];
    store.set_key_check(&key).await.unwrap();
    let with_secret = super::records::connector("conn_secret", "alice", 1);
    store.insert_connector(&with_secret).await.unwrap();
    let mut c = connector();
    store.insert_connector(&c).await.unwrap();
    c.revision = 2;
    let grant = GrantRecord {
        sealed_client_secret: Some(vec![3; 3]),
        ..grant(&c, 1)
    };
    store.authorize(&c, &grant).await.unwrap();
    store.insert_pending(&pending(&c, 1, 100)).await.unwrap();
    store
        .put_registration(&RegistrationRecord {
            issuer: "https://as.example.com".into(),
            redirect_uri: "https://p/cb".into(),
            client_auth: ClientAuth::ClientSecretPost,
            registration_endpoint: "https://as.example.com/reg".into(),
            client_id: "client".into(),
            sealed_client_secret: Some(vec![4; 3]),
            client_secret_expires_at: None,
            sealed_response: vec![5; 3],
            created_at: 3,
        })
        .await
        .unwrap();
    let secret = (
        with_secret.id.clone(),
        with_secret.owner.clone(),
        with_secret.sealed_secret.clone().unwrap(),
    );
    (key, secret, grant)
}
