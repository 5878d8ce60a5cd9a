//! Sealing credentials, the master key, and the random tokens Portcullis hands out.
//!
//! Stored secrets are sealed with AES-256-GCM under one master key, taken from
//! `PORTCULLIS_MASTER_KEY` or generated on first start into `<data-dir>/master.key`
//! (mode 0600). The database keeps a sealed check value, so a start with a different key
//! fails at once with a clear message instead of failing later, one connector at a time.
//! Run tokens and the admin token are 32 bytes from the OS RNG; run tokens are stored
//! only as SHA-256 hashes. Plaintext leaves this module in `Zeroizing` buffers.

use std::io::{ErrorKind, Write};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::store::Store;

/// The file in the data directory that holds a generated master key.
pub const MASTER_KEY_FILE: &str = "master.key";

/// Sealed values start with this byte, so a later format can live beside this one.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
/// Binds every sealed value to this purpose: bytes sealed by another program with the
/// same key do not open here.
const AAD: &[u8] = b"portcullis-vault-v1";
/// What the check value in the database opens to under the right key.
const CHECK_PLAINTEXT: &str = "portcullis master key check";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "PORTCULLIS_MASTER_KEY is not a base64 encoding of 32 bytes; generate one with \
         `head -c 32 /dev/urandom | base64`"
    )]
    BadKey,
    #[error(
        "{MASTER_KEY_FILE} in the data directory is not a base64 encoding of 32 bytes; \
         restore the original file or set PORTCULLIS_MASTER_KEY"
    )]
    BadKeyFile,
    #[error(
        "the master key does not match the one this data directory was created with, so its \
         stored credentials cannot be opened; start with the original key \
         (PORTCULLIS_MASTER_KEY or {MASTER_KEY_FILE} in the data directory)"
    )]
    WrongKey,
    #[error("a sealed value is damaged or was sealed under another master key")]
    Open,
    #[error("sealing failed")]
    Seal,
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("{file} in the data directory: {detail}")]
    File { file: String, detail: String },
    #[error("the vault check value could not be read or written: {0}")]
    Store(String),
    #[error(
        "the admin token from {origin} is too weak: it must be at least {MIN_ADMIN_TOKEN_LEN} \
         printable ASCII characters without spaces; generate one with \
         `head -c 32 /dev/urandom | base64`, or remove it to have one generated"
    )]
    WeakAdminToken { origin: &'static str },
}

/// The shortest admin token accepted at start; a generated one has 43 characters.
pub const MIN_ADMIN_TOKEN_LEN: usize = 24;

/// Refuses an operator-chosen admin token that is short, or that no `Authorization`
/// header could carry exactly (spaces, control or non-ASCII characters).
pub fn check_admin_token(token: &str, origin: &'static str) -> Result<(), VaultError> {
    let printable = token.bytes().all(|b| b.is_ascii_graphic());
    if token.len() < MIN_ADMIN_TOKEN_LEN || !printable {
        return Err(VaultError::WeakAdminToken { origin });
    }
    Ok(())
}

pub struct Vault {
    cipher: Aes256Gcm,
}

/// Where the master key came from, for the start-up log line (never the key itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File,
    Generated,
}

impl Vault {
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// The key from `env_key` (base64) when given, else from the data directory's key
    /// file, which is created with a fresh key if it does not exist.
    pub fn load(dir: &Dir, env_key: Option<&str>) -> Result<(Self, KeySource), VaultError> {
        if let Some(encoded) = env_key {
            let key = decode_key(encoded).ok_or(VaultError::BadKey)?;
            return Ok((Self::from_key(&key), KeySource::Environment));
        }
        let (encoded, created) = read_or_create_secret_file(dir, MASTER_KEY_FILE, || {
            Ok(Zeroizing::new(STANDARD.encode(*random_bytes::<32>()?)))
        })?;
        let key = decode_key(&encoded).ok_or(VaultError::BadKeyFile)?;
        let source = if created {
            KeySource::Generated
        } else {
            KeySource::File
        };
        Ok((Self::from_key(&key), source))
    }

    /// Verifies the key against the store's check value, or records one on a new store.
    pub async fn bind(&self, store: &dyn Store) -> Result<(), VaultError> {
        let stored = store
            .key_check()
            .await
            .map_err(|e| VaultError::Store(e.to_string()))?;
        match stored {
            Some(sealed) => match self.open(&sealed) {
                Ok(text) if text.as_str() == CHECK_PLAINTEXT => Ok(()),
                _ => Err(VaultError::WrongKey),
            },
            None => store
                .set_key_check(&self.seal(CHECK_PLAINTEXT)?)
                .await
                .map_err(|e| VaultError::Store(e.to_string())),
        }
    }

    pub fn seal(&self, plaintext: &str) -> Result<Vec<u8>, VaultError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let nonce = Nonce::from(*nonce_bytes);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: AAD,
                },
            )
            .map_err(|_| VaultError::Seal)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&*nonce_bytes);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Zeroizing<String>, VaultError> {
        let [FORMAT_V1, rest @ ..] = sealed else {
            return Err(VaultError::Open);
        };
        if rest.len() < NONCE_LEN {
            return Err(VaultError::Open);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Open)?;
        let plaintext = Zeroizing::new(
            self.cipher
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: body,
                        aad: AAD,
                    },
                )
                .map_err(|_| VaultError::Open)?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| VaultError::Open)?;
        Ok(Zeroizing::new(text.to_owned()))
    }
}

/// SHA-256 of a token: what the store keeps instead of the token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A fresh run token: 32 bytes from the OS RNG, base64url without padding.
pub fn new_run_token() -> String {
    new_token().expect("the operating system's random number generator is available")
}

/// A fresh 256-bit token, reporting an RNG failure instead of panicking.
pub fn new_token() -> Result<String, VaultError> {
    Ok(URL_SAFE_NO_PAD.encode(*random_bytes::<32>()?))
}

fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, VaultError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    getrandom::fill(&mut *bytes).map_err(|e| VaultError::Random(e.to_string()))?;
    Ok(bytes)
}

fn decode_key(encoded: &str) -> Option<[u8; 32]> {
    let bytes = Zeroizing::new(STANDARD.decode(encoded.trim()).ok()?);
    bytes.as_slice().try_into().ok()
}

/// Reads a small secret file of the data directory, or creates it (mode 0600, never
/// overwriting) with `generate`'s value. Answers whether it was created.
pub fn read_or_create_secret_file(
    dir: &Dir,
    name: &str,
    generate: impl FnOnce() -> Result<Zeroizing<String>, VaultError>,
) -> Result<(Zeroizing<String>, bool), VaultError> {
    let file_error = |detail: std::io::Error| VaultError::File {
        file: name.to_owned(),
        detail: detail.to_string(),
    };
    match dir.read_to_string(name) {
        Ok(text) => return Ok((Zeroizing::new(text.trim().to_owned()), false)),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(e)),
    }
    let value = generate()?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    let mut file = dir.open_with(name, &options).map_err(file_error)?;
    file.write_all(value.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(file_error)?;
    Ok((value, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_with_fresh_nonces() {
        let vault = Vault::from_key(&[7; 32]);
        let a = vault.seal("ghp_secret").unwrap();
        let b = vault.seal("ghp_secret").unwrap();
        assert_ne!(a, b, "every seal uses a fresh nonce");
        assert_eq!(vault.open(&a).unwrap().as_str(), "ghp_secret");
        assert!(!a.windows(10).any(|w| w == b"ghp_secret"));
    }

    #[test]
    fn another_key_or_damaged_bytes_do_not_open() {
        let sealed = Vault::from_key(&[1; 32]).seal("x").unwrap();
        assert!(matches!(
            Vault::from_key(&[2; 32]).open(&sealed),
            Err(VaultError::Open)
        ));
        let mut damaged = sealed.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(Vault::from_key(&[1; 32]).open(&damaged).is_err());
        assert!(Vault::from_key(&[1; 32]).open(&[]).is_err());
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
        let sealed = first.seal("v").unwrap();
        assert_eq!(second.open(&sealed).unwrap().as_str(), "v");
        assert!(matches!(
            Vault::load(&dir, Some("too-short")),
            Err(VaultError::BadKey)
        ));
    }
}
