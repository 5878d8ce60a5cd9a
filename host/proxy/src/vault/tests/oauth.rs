//! Rotating the master key covers the OAuth values too (grant tokens and client secret,
//! a pending authorization's client secret and PKCE verifier, a registration's secret and
//! response), in the same transaction as the connectors' credentials.

use portcullis_model::{ClientAuth, Registration};

use super::*;
use crate::store::{
    AuthServer, GrantRecord, OAuthSetup, OAuthStore, PendingAuthorization, RegistrationRecord,
    SealedTokens,
};

const ISSUER: &str = "https://as.example.com";
const REGISTRATION: Binding = Binding::Registration { issuer: ISSUER };
const STATE: [u8; 32] = [1; 32];

fn setup() -> OAuthSetup {
    OAuthSetup {
        server: AuthServer {
            issuer: Some(ISSUER.to_owned()),
            authorization_endpoint: format!("{ISSUER}/authorize"),
            token_endpoint: format!("{ISSUER}/token"),
            revocation_endpoint: None,
            iss_parameter_supported: true,
        },
        client_id: "client".to_owned(),
        client_auth: ClientAuth::ClientSecretPost,
        registration: Registration::Dynamic,
        resource: "https://mcp.example.com/mcp".to_owned(),
        redirect_uri: "https://proxy.example.com/oauth/callback".to_owned(),
        scopes: Vec::new(),
        token_params: Vec::new(),
        access_token_pointer: None,
    }
}

fn registration(sealed_client_secret: Vec<u8>, sealed_response: Vec<u8>) -> RegistrationRecord {
    RegistrationRecord {
        issuer: ISSUER.to_owned(),
        redirect_uri: "https://proxy.example.com/oauth/callback".to_owned(),
        client_auth: ClientAuth::ClientSecretPost,
        registration_endpoint: format!("{ISSUER}/register"),
        client_id: "client".to_owned(),
        sealed_client_secret: Some(sealed_client_secret),
        client_secret_expires_at: None,
        sealed_response,
        created_at: 0,
    }
}

/// Alice's OAuth connector `conn_a` with a grant and a pending re-authorization, and a
/// registration at [`ISSUER`], every value sealed by `vault`; and Bob's API-key connector.
async fn oauth_store(vault: &Vault) -> (tempfile::TempDir, SqliteStore) {
    let (dir, store) = store().await;
    vault.bind(&store).await.unwrap();
    let seal = |text: &str| vault.seal(text, ALICE).unwrap();
    let mut conn = connector("conn_a", "alice", None);
    conn.auth = AuthMethod::OAuth;
    store.insert_connector(&conn).await.unwrap();
    conn.revision += 1;
    let grant = GrantRecord {
        connector_id: "conn_a".to_owned(),
        setup: setup(),
        sealed_client_secret: Some(seal("grant-client-secret")),
        tokens: SealedTokens {
            access_token: seal("access-token"),
            refresh_token: Some(seal("refresh-token")),
            expires_at: None,
            scope: None,
        },
        generation: 0,
        failed_reason: None,
        updated_at: 0,
    };
    store.authorize(&conn, &grant).await.unwrap();
    let pending = PendingAuthorization {
        state_hash: STATE,
        connector_id: "conn_a".to_owned(),
        setup: setup(),
        sealed_client_secret: Some(seal("pending-client-secret")),
        sealed_verifier: seal("pkce-verifier"),
        reauthorization: true,
        created_at: 0,
        expires_at: i64::MAX,
    };
    store.insert_pending(&pending).await.unwrap();
    let record = registration(
        vault.seal("registered-secret", REGISTRATION).unwrap(),
        vault
            .seal("{\"client_id\":\"client\"}", REGISTRATION)
            .unwrap(),
    );
    store.put_registration(&record).await.unwrap();
    let bob = Binding::Connector {
        id: "conn_b",
        owner: "bob",
    };
    let credential = vault.seal("sk-b", bob).unwrap();
    store
        .insert_connector(&connector("conn_b", "bob", Some(credential)))
        .await
        .unwrap();
    (dir, store)
}

/// Every sealed OAuth value in `store`, opened by `vault`; the pending authorization is
/// taken (a state is used once), so this is the last look at the store.
async fn open_all(vault: &Vault, store: &SqliteStore) -> Result<Vec<String>, VaultError> {
    let grant = store.grant("conn_a").await.unwrap().unwrap();
    let pending = store.take_pending(&STATE).await.unwrap().unwrap();
    let record = store
        .registration(
            ISSUER,
            "https://proxy.example.com/oauth/callback",
            ClientAuth::ClientSecretPost,
        )
        .await
        .unwrap()
        .unwrap();
    let mut opened = Vec::new();
    for sealed in [
        grant.sealed_client_secret.unwrap(),
        grant.tokens.access_token,
        grant.tokens.refresh_token.unwrap(),
        pending.sealed_client_secret.unwrap(),
        pending.sealed_verifier,
    ] {
        opened.push(vault.open(&sealed, ALICE)?.to_string());
    }
    for sealed in [record.sealed_client_secret.unwrap(), record.sealed_response] {
        opened.push(vault.open(&sealed, REGISTRATION)?.to_string());
    }
    Ok(opened)
}

const PLAINTEXTS: [&str; 7] = [
    "grant-client-secret",
    "access-token",
    "refresh-token",
    "pending-client-secret",
    "pkce-verifier",
    "registered-secret",
    "{\"client_id\":\"client\"}",
];

#[tokio::test]
async fn rotation_rewraps_every_oauth_value() {
    let old = Vault::from_key(&[1; 32]);
    let (_dir, store) = oauth_store(&old).await;
    let (new, _) = Vault::generate().unwrap();
    // Bob's credential and the seven OAuth values.
    assert_eq!(old.rotate(&new, &store).await.unwrap(), 8);
    new.bind(&store).await.unwrap();
    let grant = store.grant("conn_a").await.unwrap().unwrap();
    assert!(old.open(&grant.tokens.access_token, ALICE).is_err());
    assert_eq!(open_all(&new, &store).await.unwrap(), PLAINTEXTS);
}

/// A value that does not open (here a registration response moved from another issuer)
/// stops the rotation before anything is written: the key check, the connectors'
/// credentials and the OAuth values all stay under the old key.
#[tokio::test]
async fn a_value_that_does_not_open_stops_the_whole_rotation() {
    let old = Vault::from_key(&[1; 32]);
    let (_dir, store) = oauth_store(&old).await;
    let elsewhere = Binding::Registration {
        issuer: "https://other.example.com",
    };
    let moved = registration(
        old.seal("registered-secret", REGISTRATION).unwrap(),
        old.seal("{\"client_id\":\"client\"}", elsewhere).unwrap(),
    );
    store.put_registration(&moved).await.unwrap();
    let (new, _) = Vault::generate().unwrap();
    assert!(matches!(
        old.rotate(&new, &store).await,
        Err(VaultError::Store(_))
    ));
    old.bind(&store).await.unwrap();
    let bob = store.connector("conn_b").await.unwrap().unwrap();
    let credential = bob.sealed_secret.as_deref().unwrap();
    assert_eq!(
        old.open(credential, bob.binding()).unwrap().as_str(),
        "sk-b"
    );
    let grant = store.grant("conn_a").await.unwrap().unwrap();
    assert_eq!(
        old.open(&grant.tokens.access_token, ALICE)
            .unwrap()
            .as_str(),
        "access-token"
    );
    assert!(new.open(&grant.tokens.access_token, ALICE).is_err());
}
