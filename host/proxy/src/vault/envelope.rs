//! The sealed-value format (SEC-6): envelope encryption, bound to what the value belongs to.
//!
//! Version 2, `[2] [key nonce 12] [wrapped data key 32 + tag 16] [nonce 12] [ciphertext + tag 16]`:
//! every value has its own random 256-bit data key, which encrypts it (AES-256-GCM); the
//! master key wraps the data key (AES-256-GCM). Both layers authenticate the value's
//! [`Binding`] (a connector and its owner, an OAuth client registration and its issuer, or
//! the key check), so a sealed value copied into another connector's row, another
//! owner's, or another issuer's registration, does not open. Rotating the master
//! key re-wraps the data keys only ([`rewrap`]).
//!
//! Version 1 (Portcullis 0.1) sealed the value under the master key with a constant AAD;
//! it is read only to migrate it ([`open_v1`]).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use super::binding::Binding;
use super::{VaultError, random_bytes};

pub const V1: u8 = 1;
pub const V2: u8 = 2;
const NONCE: usize = 12;
const KEY: usize = 32;
const TAG: usize = 16;
/// Where the value's own nonce starts in a version 2 value.
const BODY: usize = 1 + NONCE + KEY + TAG;
const V1_AAD: &[u8] = b"portcullis-vault-v1";

/// Seals `plaintext` for `binding` under a fresh data key wrapped by `master`.
pub fn seal(master: &Aes256Gcm, plaintext: &[u8], binding: Binding) -> Result<Vec<u8>, VaultError> {
    let data_key = random_bytes::<KEY>()?;
    let mut out = vec![V2];
    wrap(master, &data_key, binding, &mut out)?;
    let nonce = random_bytes::<NONCE>()?;
    let body = Aes256Gcm::new((&*data_key).into())
        .encrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad: &binding.aad("value"),
            },
        )
        .map_err(|_| VaultError::Seal)?;
    out.extend_from_slice(&*nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens a version 2 value sealed for `binding` under `master`.
pub fn open(
    master: &Aes256Gcm,
    sealed: &[u8],
    binding: Binding,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let data_key = unwrap(master, sealed, binding)?;
    let (nonce, body) = sealed[BODY..].split_at(NONCE);
    let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| VaultError::Open)?;
    Aes256Gcm::new((&*data_key).into())
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: body,
                aad: &binding.aad("value"),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| VaultError::Open)
}

/// The same value with its data key wrapped by `new` instead of `old`; the encrypted
/// value itself is unchanged.
pub fn rewrap(
    old: &Aes256Gcm,
    new: &Aes256Gcm,
    sealed: &[u8],
    binding: Binding,
) -> Result<Vec<u8>, VaultError> {
    let data_key = unwrap(old, sealed, binding)?;
    let mut out = vec![V2];
    wrap(new, &data_key, binding, &mut out)?;
    out.extend_from_slice(&sealed[BODY..]);
    Ok(out)
}

/// Opens a version 1 value (sealed directly under `master`, constant AAD).
pub fn open_v1(master: &Aes256Gcm, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let [V1, rest @ ..] = sealed else {
        return Err(VaultError::Open);
    };
    if rest.len() < NONCE + TAG {
        return Err(VaultError::Open);
    }
    let (nonce, body) = rest.split_at(NONCE);
    let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| VaultError::Open)?;
    master
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: body,
                aad: V1_AAD,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| VaultError::Open)
}

fn wrap(
    master: &Aes256Gcm,
    data_key: &[u8; KEY],
    binding: Binding,
    out: &mut Vec<u8>,
) -> Result<(), VaultError> {
    let nonce = random_bytes::<NONCE>()?;
    let wrapped = master
        .encrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: data_key,
                aad: &binding.aad("data-key"),
            },
        )
        .map_err(|_| VaultError::Seal)?;
    out.extend_from_slice(&*nonce);
    out.extend_from_slice(&wrapped);
    Ok(())
}

fn unwrap(
    master: &Aes256Gcm,
    sealed: &[u8],
    binding: Binding,
) -> Result<Zeroizing<[u8; KEY]>, VaultError> {
    if sealed.first() != Some(&V2) || sealed.len() < BODY + NONCE + TAG {
        return Err(VaultError::Open);
    }
    let (nonce, wrapped) = sealed[1..BODY].split_at(NONCE);
    let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| VaultError::Open)?;
    let key = Zeroizing::new(
        master
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: wrapped,
                    aad: &binding.aad("data-key"),
                },
            )
            .map_err(|_| VaultError::Open)?,
    );
    let mut out = Zeroizing::new([0u8; KEY]);
    out.copy_from_slice(key.get(..KEY).ok_or(VaultError::Open)?);
    Ok(out)
}
