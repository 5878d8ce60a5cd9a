//! The random values of one authorization (RFC 7636, RFC 6749 10.12): a PKCE verifier and
//! its S256 challenge, and the `state` that binds the callback to the authorization the
//! owner started.
//!
//! Both are 32 bytes from the operating system's generator, base64url without padding (43
//! characters, inside RFC 7636's 43 to 128). The store keeps the state only as its SHA-256
//! hash, the way it keeps run tokens, and the verifier only sealed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::vault::{VaultError, new_token};

/// A PKCE pair: the verifier stays with Portcullis, the challenge goes to the browser.
pub struct Pkce {
    pub verifier: Zeroizing<String>,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Result<Self, VaultError> {
        let verifier = Zeroizing::new(new_token()?);
        let challenge = challenge(&verifier);
        Ok(Self {
            verifier,
            challenge,
        })
    }
}

/// The S256 challenge of `verifier`: base64url(SHA-256(verifier)).
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh `state`.
pub fn new_state() -> Result<Zeroizing<String>, VaultError> {
    new_token().map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn fresh_values() {
        let a = Pkce::new().unwrap();
        let b = Pkce::new().unwrap();
        assert_ne!(a.verifier.as_str(), b.verifier.as_str());
        assert_eq!(a.verifier.len(), 43);
        assert_eq!(a.challenge, challenge(&a.verifier));
        assert_ne!(new_state().unwrap().as_str(), new_state().unwrap().as_str());
    }
}
