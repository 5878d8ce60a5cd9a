//! Sealing, bindings, rotation, the 0.1 upgrade, tokens and key files.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use super::*;
use crate::store::{AuthMethod, ConnectorRecord, SqliteStore};

const ALICE: Binding = Binding::Connector {
    id: "conn_a",
    owner: "alice",
};

#[test]
fn seal_and_open_round_trip_with_fresh_keys_and_nonces() {
    let vault = Vault::from_key(&[7; 32]);
    let a = vault.seal("ghp_secret", ALICE).unwrap();
    let b = vault.seal("ghp_secret", ALICE).unwrap();
    assert_ne!(a, b, "every seal uses a fresh data key and nonces");
    assert_ne!(a[1..61], b[1..61], "the wrapped data keys differ");
    assert_eq!(vault.open(&a, ALICE).unwrap().as_str(), "ghp_secret");
    assert!(!a.windows(10).any(|w| w == b"ghp_secret"));
}

#[test]
fn a_value_opens_only_for_its_own_connector_and_owner() {
    let vault = Vault::from_key(&[7; 32]);
    let sealed = vault.seal("ghp_secret", ALICE).unwrap();
    for other in [
        Binding::Connector {
            id: "conn_b",
            owner: "alice",
        },
        Binding::Connector {
            id: "conn_a",
            owner: "mallory",
        },
        // Length prefixes keep the two parts apart.
        Binding::Connector {
            id: "conn_a/5:alice",
            owner: "",
        },
        Binding::KeyCheck,
    ] {
        assert!(
            matches!(vault.open(&sealed, other), Err(VaultError::Open)),
            "{other:?}"
        );
    }
}

#[test]
fn a_registration_opens_only_for_its_own_issuer() {
    let vault = Vault::from_key(&[7; 32]);
    let issuer = Binding::Registration {
        issuer: "https://as.example.com",
    };
    let sealed = vault.seal("client-secret", issuer).unwrap();
    assert_eq!(
        vault.open(&sealed, issuer).unwrap().as_str(),
        "client-secret"
    );
    for other in [
        Binding::Registration {
            issuer: "https://evil.example.com",
        },
        Binding::Registration {
            issuer: "https://as.example.com/",
        },
        Binding::Registration { issuer: "" },
        // A connector whose id spells the registration's AAD opens nothing either.
        Binding::Connector {
            id: "https://as.example.com",
            owner: "",
        },
        Binding::KeyCheck,
    ] {
        assert!(
            matches!(vault.open(&sealed, other), Err(VaultError::Open)),
            "{other:?}"
        );
    }
    let (new, _) = Vault::generate().unwrap();
    let rewrapped = envelope::rewrap(&vault.master, &new.master, &sealed, issuer).unwrap();
    assert_eq!(
        new.open(&rewrapped, issuer).unwrap().as_str(),
        "client-secret"
    );
    assert!(
        envelope::rewrap(
            &vault.master,
            &new.master,
            &sealed,
            Binding::Registration {
                issuer: "https://evil.example.com"
            }
        )
        .is_err()
    );
}

#[test]
fn another_key_or_damaged_bytes_do_not_open() {
    let sealed = Vault::from_key(&[1; 32]).seal("x", ALICE).unwrap();
    assert!(matches!(
        Vault::from_key(&[2; 32]).open(&sealed, ALICE),
        Err(VaultError::Open)
    ));
    for at in [0, 5, 30, 60, 70, sealed.len() - 1] {
        let mut damaged = sealed.clone();
        damaged[at] ^= 1;
        assert!(
            Vault::from_key(&[1; 32]).open(&damaged, ALICE).is_err(),
            "{at}"
        );
    }
    for short in [&[][..], &[2], &sealed[..sealed.len() - 17]] {
        assert!(Vault::from_key(&[1; 32]).open(short, ALICE).is_err());
    }
}

#[test]
fn rewrapping_moves_a_value_to_the_new_key_only() {
    let (old, new) = (Vault::from_key(&[1; 32]), Vault::from_key(&[2; 32]));
    let sealed = old.seal("ghp_secret", ALICE).unwrap();
    let rewrapped = envelope::rewrap(&old.master, &new.master, &sealed, ALICE).unwrap();
    assert_eq!(new.open(&rewrapped, ALICE).unwrap().as_str(), "ghp_secret");
    assert!(old.open(&rewrapped, ALICE).is_err());
    assert_eq!(
        sealed[61..],
        rewrapped[61..],
        "the encrypted value is unchanged"
    );
    let other = Binding::Connector {
        id: "conn_b",
        owner: "alice",
    };
    assert!(envelope::rewrap(&old.master, &new.master, &sealed, other).is_err());
}

/// A value as Portcullis 0.1 sealed it.
fn seal_v1(key: &[u8; 32], plaintext: &str) -> Vec<u8> {
    let nonce = [9u8; 12];
    let body = Aes256Gcm::new(key.into())
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: b"portcullis-vault-v1",
            },
        )
        .unwrap();
    [&[1u8][..], &nonce, &body].concat()
}

fn connector(id: &str, owner: &str, sealed: Option<Vec<u8>>) -> ConnectorRecord {
    ConnectorRecord {
        id: id.to_owned(),
        owner: owner.to_owned(),
        name: id.to_owned(),
        server_url: "https://mcp.example.com/mcp".to_owned(),
        provider: "bearer".to_owned(),
        config: serde_json::json!({}),
        auth: AuthMethod::ApiKey,
        sealed_secret: sealed,
        status: portcullis_model::ConnectorStatus::Authorized,
        tools: Vec::new(),
        allowed_tools: None,
        created_at: 0,
        authorized_at: 0,
        revision: 1,
    }
}

async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_database_sealed_by_0_1_is_upgraded_at_start() {
    let key = [5u8; 32];
    let (_dir, store) = store().await;
    store
        .set_key_check(&seal_v1(&key, CHECK_PLAINTEXT))
        .await
        .unwrap();
    for (id, owner, secret) in [("conn_a", "alice", "sk-a"), ("conn_b", "bob", "sk-b")] {
        let record = connector(id, owner, Some(seal_v1(&key, secret)));
        store.insert_connector(&record).await.unwrap();
    }
    store
        .insert_connector(&connector("conn_none", "carol", None))
        .await
        .unwrap();

    // The wrong key changes nothing.
    let wrong = Vault::from_key(&[6; 32]);
    assert!(matches!(
        wrong.bind(&store).await,
        Err(VaultError::WrongKey)
    ));
    let untouched = store.connector("conn_a").await.unwrap().unwrap();
    assert_eq!(untouched.sealed_secret.unwrap()[0], envelope::V1);

    let vault = Vault::from_key(&key);
    vault.bind(&store).await.unwrap();
    for (id, owner, secret) in [("conn_a", "alice", "sk-a"), ("conn_b", "bob", "sk-b")] {
        let sealed = store
            .connector(id)
            .await
            .unwrap()
            .unwrap()
            .sealed_secret
            .unwrap();
        assert_eq!(sealed[0], envelope::V2);
        let binding = Binding::Connector { id, owner };
        assert_eq!(vault.open(&sealed, binding).unwrap().as_str(), secret);
    }
    assert_eq!(store.key_check().await.unwrap().unwrap()[0], envelope::V2);
    assert!(
        store
            .connector("conn_none")
            .await
            .unwrap()
            .unwrap()
            .sealed_secret
            .is_none()
    );
    // A 0.1 value is never opened once upgraded, and binding again changes nothing.
    assert!(vault.open(&seal_v1(&key, "sk-a"), ALICE).is_err());
    vault.bind(&store).await.unwrap();
}

#[tokio::test]
async fn rotation_rewraps_everything_under_the_new_key() {
    let (_dir, store) = store().await;
    let old = Vault::from_key(&[1; 32]);
    old.bind(&store).await.unwrap();
    let sealed = old.seal("sk-a", ALICE).unwrap();
    store
        .insert_connector(&connector("conn_a", "alice", Some(sealed)))
        .await
        .unwrap();

    let (new, _) = Vault::generate().unwrap();
    assert!(matches!(
        new.rotate(&old, &store).await,
        Err(VaultError::WrongKey)
    ));
    assert_eq!(old.rotate(&new, &store).await.unwrap(), 1);
    assert!(matches!(old.bind(&store).await, Err(VaultError::WrongKey)));
    new.bind(&store).await.unwrap();
    let sealed = store
        .connector("conn_a")
        .await
        .unwrap()
        .unwrap()
        .sealed_secret
        .unwrap();
    assert_eq!(new.open(&sealed, ALICE).unwrap().as_str(), "sk-a");
}

#[test]
fn tokens_are_256_bit_base64url() {
    let token = new_run_token();
    assert_eq!(token.len(), 43);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_ne!(token, new_run_token());
    assert_eq!(token_hash("abc"), token_hash("abc"));
}

#[test]
fn admin_tokens_have_a_minimum_length_and_no_spaces() {
    for weak in [
        "",
        "short",
        &"x".repeat(23),
        "a token with spaces in it",
        "tab\tseparated-token-0123456",
        "ünïcödé-admin-token-0123456",
    ] {
        let err = check_admin_token(weak, "PORTCULLIS_ADMIN_TOKEN").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("at least 24"), "{message}");
        assert!(message.contains("PORTCULLIS_ADMIN_TOKEN"), "{message}");
        assert!(weak.len() < 5 || !message.contains(weak), "{message}");
    }
    assert!(check_admin_token(&"x".repeat(24), "f").is_ok());
    assert!(check_admin_token(&new_token().unwrap(), "f").is_ok());
}

#[test]
fn generated_key_file_is_private_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
    let (first, source) = Vault::load(&dir, None).unwrap();
    assert_eq!(source, KeySource::Generated);
    let mode = std::fs::metadata(tmp.path().join(MASTER_KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (second, source) = Vault::load(&dir, None).unwrap();
    assert_eq!(source, KeySource::File);
    let sealed = first.seal("v", ALICE).unwrap();
    assert_eq!(second.open(&sealed, ALICE).unwrap().as_str(), "v");
    assert!(matches!(
        Vault::load(&dir, Some("too-short")),
        Err(VaultError::BadKey)
    ));
}

mod oauth;
