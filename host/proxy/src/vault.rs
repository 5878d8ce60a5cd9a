//! Sealing credentials, the master key, and the random tokens Portcullis hands out.
//!
//! Stored secrets are sealed by envelope encryption ([`envelope`]): a data key per value,
//! wrapped by one master key, taken from `PORTCULLIS_MASTER_KEY` or generated on first
//! start into `<data-dir>/master.key` (mode 0600); each value is bound to its connector
//! and owner. The database keeps a sealed check value, so a start with a different key
//! fails at once with a clear message instead of failing later, one connector at a time;
//! that check also upgrades a database sealed by Portcullis 0.1 ([`Vault::bind`]).
//! [`Vault::rotate`] re-wraps every data key under a new master key (`portcullis vault
//! rotate`). Run tokens and the admin token are 32 bytes from the OS RNG; run tokens
//! are stored only as SHA-256 hashes. Plaintext leaves this module in `Zeroizing`
//! buffers.

pub mod binding;
pub mod envelope;

use std::io::{ErrorKind, Write};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::KeyInit;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use binding::Binding;

use crate::store::{SealedValue, Store};

/// The file in the data directory that holds a generated master key.
pub const MASTER_KEY_FILE: &str = "master.key";

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
         (PORTCULLIS_MASTER_KEY or {MASTER_KEY_FILE} in the data directory; after an \
         interrupted `portcullis vault rotate`, {MASTER_KEY_FILE}.new holds the new one)"
    )]
    WrongKey,
    #[error(
        "a sealed value is damaged, belongs to another connector or was sealed under \
         another master key"
    )]
    Open,
    #[error("sealing failed")]
    Seal,
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("{file} in the data directory: {detail}")]
    File { file: String, detail: String },
    #[error("the vault could not read or write the database: {0}")]
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
    master: Aes256Gcm,
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
            master: Aes256Gcm::new(key.into()),
        }
    }

    /// A vault under a fresh random master key, and that key in base64.
    pub fn generate() -> Result<(Self, Zeroizing<String>), VaultError> {
        let key = random_bytes::<32>()?;
        Ok((Self::from_key(&key), Zeroizing::new(STANDARD.encode(*key))))
    }

    /// The key `PORTCULLIS_MASTER_KEY` gives (base64 of 32 bytes).
    pub fn from_env_key(encoded: &str) -> Result<Self, VaultError> {
        let key = decode_key(encoded).ok_or(VaultError::BadKey)?;
        Ok(Self::from_key(&key))
    }

    /// The key from `env_key` (base64) when given, else from the data directory's key
    /// file, which is created with a fresh key if it does not exist.
    pub fn load(dir: &Dir, env_key: Option<&str>) -> Result<(Self, KeySource), VaultError> {
        if let Some(encoded) = env_key {
            return Ok((Self::from_env_key(encoded)?, KeySource::Environment));
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
    /// A store sealed by Portcullis 0.1 (one key, constant AAD) is upgraded here, in one
    /// transaction: every credential re-sealed under its own data key and bound to its
    /// connector.
    pub async fn bind(&self, store: &dyn Store) -> Result<(), VaultError> {
        let stored = store.key_check().await.map_err(store_error)?;
        let Some(sealed) = stored else {
            let check = self.seal(CHECK_PLAINTEXT, Binding::KeyCheck)?;
            store.set_key_check(&check).await.map_err(store_error)?;
            // Another replica may have recorded its own check at the same moment: verify
            // the one the store kept.
            return Box::pin(self.bind(store)).await;
        };
        if sealed.first() != Some(&envelope::V1) {
            return match self.open(&sealed, Binding::KeyCheck) {
                Ok(text) if text.as_str() == CHECK_PLAINTEXT => Ok(()),
                _ => Err(VaultError::WrongKey),
            };
        }
        match envelope::open_v1(&self.master, &sealed) {
            Ok(text) if text.as_slice() == CHECK_PLAINTEXT.as_bytes() => {}
            _ => return Err(VaultError::WrongKey),
        }
        let upgraded = store
            .reseal_all(&|value: SealedValue<'_>| {
                if value.sealed.first() != Some(&envelope::V1) {
                    return Ok(value.sealed.to_vec());
                }
                let plaintext =
                    envelope::open_v1(&self.master, value.sealed).map_err(|e| e.to_string())?;
                envelope::seal(&self.master, &plaintext, value.binding).map_err(|e| e.to_string())
            })
            .await
            .map_err(store_error)?;
        tracing::info!(
            credentials = upgraded,
            "vault upgraded to envelope encryption"
        );
        Ok(())
    }

    /// Re-wraps every data key of `store` (and its key check) under `new`'s master key,
    /// in one transaction; answers how many credentials there were. The encrypted values
    /// themselves do not change.
    pub async fn rotate(&self, new: &Vault, store: &dyn Store) -> Result<usize, VaultError> {
        self.bind(store).await?;
        store
            .reseal_all(&|value: SealedValue<'_>| {
                envelope::rewrap(&self.master, &new.master, value.sealed, value.binding)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(store_error)
    }

    /// Seals `plaintext` for `binding`: it opens only for the same binding.
    pub fn seal(&self, plaintext: &str, binding: Binding) -> Result<Vec<u8>, VaultError> {
        envelope::seal(&self.master, plaintext.as_bytes(), binding)
    }

    pub fn open(&self, sealed: &[u8], binding: Binding) -> Result<Zeroizing<String>, VaultError> {
        let plaintext = envelope::open(&self.master, sealed, binding)?;
        let text = std::str::from_utf8(&plaintext).map_err(|_| VaultError::Open)?;
        Ok(Zeroizing::new(text.to_owned()))
    }
}

fn store_error(e: crate::store::StoreError) -> VaultError {
    VaultError::Store(e.to_string())
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

pub(crate) fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, VaultError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    getrandom::fill(&mut *bytes).map_err(|e| VaultError::Random(e.to_string()))?;
    Ok(bytes)
}

fn decode_key(encoded: &str) -> Option<[u8; 32]> {
    let bytes = Zeroizing::new(STANDARD.decode(encoded.trim()).ok()?);
    bytes.as_slice().try_into().ok()
}

/// Writes a small secret file of the data directory (mode 0600, synced), replacing any
/// file of that name.
pub fn replace_secret_file(dir: &Dir, name: &str, value: &str) -> Result<(), VaultError> {
    match dir.remove_file(name) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(name, e)),
    }
    create_secret_file(dir, name, value)
}

/// Reads a small secret file of the data directory, or creates it (mode 0600, never
/// overwriting) with `generate`'s value. Answers whether it was created.
pub fn read_or_create_secret_file(
    dir: &Dir,
    name: &str,
    generate: impl FnOnce() -> Result<Zeroizing<String>, VaultError>,
) -> Result<(Zeroizing<String>, bool), VaultError> {
    match dir.read_to_string(name) {
        Ok(text) => return Ok((Zeroizing::new(text.trim().to_owned()), false)),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(name, e)),
    }
    let value = generate()?;
    create_secret_file(dir, name, &value)?;
    Ok((value, true))
}

/// Creates `name` (mode 0600; it must not exist) holding `value` and a newline, synced.
fn create_secret_file(dir: &Dir, name: &str, value: &str) -> Result<(), VaultError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    let mut file = dir
        .open_with(name, &options)
        .map_err(|e| file_error(name, e))?;
    file.write_all(value.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| file_error(name, e))
}

fn file_error(name: &str, detail: std::io::Error) -> VaultError {
    VaultError::File {
        file: name.to_owned(),
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests;
