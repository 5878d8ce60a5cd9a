//! Provenance: whether component bytes are the ones the operator meant to load, and who
//! vouched for them. This is the piece a security reviewer reads to know what
//! `plugins.require_signature` and `trusted_keys` promise; it runs before admission ever
//! compiles a byte, and it knows nothing of WebAssembly.
//!
//! In order, for bytes offered with an optional digest pin and an optional signature:
//!
//! 1. **Pin.** With a pin (hex SHA-256), the bytes' digest must equal it, or the bytes are
//!    refused (`digest_mismatch`). This catches a truncated upload or the wrong file.
//! 2. **Signature.** A signature is a minisign `.minisig` text (the format of the
//!    `minisign` CLI, verified by the `minisign-verify` crate). It must decode, name one of
//!    the trusted keys (`untrusted_key` otherwise) and verify over the bytes with that key,
//!    its trusted comment included (`signature_invalid` otherwise). Only pre-hashed
//!    signatures (minisign's default since 0.8) are accepted. A signature that is offered
//!    is always checked, whether or not signatures are required.
//! 3. **Requirement.** With `require_signature`, bytes without a signature are refused
//!    (`signature_required`).
//!
//! The signer is named by the key id minisign prints (16 upper-case hex digits), so the
//! operator can match it against `minisign -V` output and the `.pub` file's comment.

use base64::Engine as _;
use minisign_verify::{PublicKey, Signature};
use sha2::{Digest, Sha256};

/// Why bytes were refused, as the admin API's `reason` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    DigestMismatch,
    SignatureRequired,
    SignatureInvalid,
    UntrustedKey,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::DigestMismatch => "digest_mismatch",
            RejectReason::SignatureRequired => "signature_required",
            RejectReason::SignatureInvalid => "signature_invalid",
            RejectReason::UntrustedKey => "untrusted_key",
        }
    }
}

/// A refusal: the machine-readable reason and a message saying what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: String,
}

impl Rejection {
    fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// What verification established about accepted bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// The key id of the trusted key whose signature verified, if any.
    pub signed_by: Option<String>,
}

/// A trusted key that could not be read from the configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "plugins.trusted_keys[{index}] is not a minisign public key ({detail}); use the base64 \
     line of a `.pub` file, such as the one `portcullis plugin sign --generate` prints"
)]
pub struct TrustedKeyError {
    pub index: usize,
    pub detail: String,
}

struct TrustedKey {
    id: String,
    key: PublicKey,
}

/// The provenance rules in force: whether a signature is required, and whose.
pub struct TrustPolicy {
    require_signature: bool,
    keys: Vec<TrustedKey>,
}

impl TrustPolicy {
    /// `keys` are minisign public keys, each the base64 line of a `.pub` file or the
    /// whole file.
    pub fn new(require_signature: bool, keys: &[String]) -> Result<Self, TrustedKeyError> {
        let keys = keys
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let invalid = |detail: String| TrustedKeyError { index, detail };
                let line = key_line(text).ok_or_else(|| invalid("no key line".into()))?;
                let key = PublicKey::from_base64(line).map_err(|e| invalid(e.to_string()))?;
                let id = key_id(line).ok_or_else(|| invalid("no key id".into()))?;
                Ok(TrustedKey { id, key })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            require_signature,
            keys,
        })
    }

    /// The policy of the `[plugins]` configuration.
    pub fn from_config(config: &crate::RuntimeConfig) -> Result<Self, TrustedKeyError> {
        Self::new(config.require_signature, &config.trusted_keys)
    }

    pub fn requires_signature(&self) -> bool {
        self.require_signature
    }

    /// The key ids trusted, in configuration order.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    /// Checks `bytes` against an optional digest `pin` and an optional minisign
    /// `signature` (the text of a `.minisig` file).
    pub fn verify(
        &self,
        bytes: &[u8],
        pin: Option<&str>,
        signature: Option<&str>,
    ) -> Result<Provenance, Rejection> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        if let Some(pin) = pin
            && !pin.trim().eq_ignore_ascii_case(&sha256)
        {
            return Err(Rejection::new(
                RejectReason::DigestMismatch,
                format!(
                    "the component's sha256 is {sha256}, not the pinned {}; check that you \
                     sent the file you meant to",
                    pin.trim()
                ),
            ));
        }
        let signed_by = match signature {
            Some(signature) => Some(self.check_signature(bytes, signature)?),
            None if self.require_signature => {
                return Err(Rejection::new(
                    RejectReason::SignatureRequired,
                    "plugins.require_signature is on and the component comes without a \
                     signature; sign it (`portcullis plugin sign` or `minisign -S`) with a \
                     trusted key and send the .minisig file too",
                ));
            }
            None => None,
        };
        Ok(Provenance { sha256, signed_by })
    }

    /// The id of the trusted key whose signature over `bytes` verifies.
    fn check_signature(&self, bytes: &[u8], text: &str) -> Result<String, Rejection> {
        let signature = Signature::decode(text).map_err(|e| {
            Rejection::new(
                RejectReason::SignatureInvalid,
                format!("the signature is not a minisign signature ({e}); send the .minisig file as it was written"),
            )
        })?;
        for trusted in &self.keys {
            match trusted.key.verify(bytes, &signature, false) {
                Ok(()) => return Ok(trusted.id.clone()),
                Err(minisign_verify::Error::UnexpectedKeyId) => continue,
                Err(minisign_verify::Error::UnexpectedAlgorithm) => {
                    return Err(Rejection::new(
                        RejectReason::SignatureInvalid,
                        "the signature is a legacy (not pre-hashed) minisign signature; sign \
                         again with minisign 0.8 or later, or `portcullis plugin sign`",
                    ));
                }
                Err(e) => {
                    return Err(Rejection::new(
                        RejectReason::SignatureInvalid,
                        format!(
                            "the signature by trusted key {} does not verify over these bytes \
                             ({e}); the component or the signature was changed after signing",
                            trusted.id
                        ),
                    ));
                }
            }
        }
        let signer = signature_key_id(text).unwrap_or_else(|| "unknown".to_owned());
        Err(Rejection::new(
            RejectReason::UntrustedKey,
            format!(
                "the component is signed by key {signer}, which is not in plugins.trusted_keys; \
                 add its public key there if you trust it"
            ),
        ))
    }
}

/// The base64 key line of a public key given as that line or as a whole `.pub` file.
fn key_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("untrusted comment:"))
}

/// The key id as minisign prints it: the eight id bytes as a little-endian number in
/// upper-case hex. `line` is base64 of the algorithm (2 bytes), the id (8) and the key.
pub fn key_id(line: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .ok()?;
    let id = bytes.get(2..10)?;
    Some(id.iter().rev().map(|b| format!("{b:02X}")).collect())
}

/// The key id a `.minisig` text names (its second line has the same layout as a key).
pub fn signature_key_id(text: &str) -> Option<String> {
    key_id(key_line(text)?)
}

/// The trusted comment of a `.minisig` text, if it decodes.
pub fn trusted_comment(text: &str) -> Option<String> {
    Signature::decode(text)
        .ok()
        .map(|s| s.trusted_comment().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key pair and a signature made with the minisign CLI (0.11, `minisign -G -W`,
    // `minisign -S -t "portcullis test vector"`) over `MESSAGE`.
    const PUBLIC: &str = include_str!("../tests/vectors/minisign.pub");
    const MESSAGE: &[u8] = include_bytes!("../tests/vectors/message.txt");
    const SIGNATURE: &str = include_str!("../tests/vectors/message.txt.minisig");

    fn policy(require: bool) -> TrustPolicy {
        TrustPolicy::new(require, &[PUBLIC.to_owned()]).unwrap()
    }

    #[test]
    fn a_cli_signature_verifies_and_names_its_key() {
        let provenance = policy(true).verify(MESSAGE, None, Some(SIGNATURE)).unwrap();
        let id = key_id(key_line(PUBLIC).unwrap()).unwrap();
        assert_eq!(provenance.signed_by.as_deref(), Some(id.as_str()));
        assert_eq!(id.len(), 16);
        assert!(PUBLIC.contains(&id), "the .pub comment names the same id");
        assert_eq!(signature_key_id(SIGNATURE), Some(id));
        assert_eq!(
            trusted_comment(SIGNATURE).as_deref(),
            Some("portcullis test vector")
        );
        // The key line alone is accepted too.
        let line = key_line(PUBLIC).unwrap().to_owned();
        let by_line = TrustPolicy::new(true, &[line]).unwrap();
        assert!(by_line.verify(MESSAGE, None, Some(SIGNATURE)).is_ok());
    }

    #[test]
    fn each_refusal_has_its_reason() {
        let reason = |r: Result<Provenance, Rejection>| r.unwrap_err().reason;
        let mut edited = MESSAGE.to_vec();
        edited[0] ^= 1;
        assert_eq!(
            reason(policy(false).verify(&edited, None, Some(SIGNATURE))),
            RejectReason::SignatureInvalid
        );
        assert_eq!(
            reason(policy(true).verify(MESSAGE, None, None)),
            RejectReason::SignatureRequired
        );
        assert_eq!(
            reason(policy(false).verify(MESSAGE, None, Some("not a signature"))),
            RejectReason::SignatureInvalid
        );
        let untrusted = TrustPolicy::new(false, &[]).unwrap();
        let rejection = untrusted
            .verify(MESSAGE, None, Some(SIGNATURE))
            .unwrap_err();
        assert_eq!(rejection.reason, RejectReason::UntrustedKey);
        assert!(
            rejection
                .message
                .contains(&signature_key_id(SIGNATURE).unwrap())
        );
        assert_eq!(
            reason(policy(false).verify(MESSAGE, Some(&"0".repeat(64)), None)),
            RejectReason::DigestMismatch
        );
        // A trusted comment edited after signing fails the global signature.
        let forged = SIGNATURE.replace("portcullis test vector", "portcullis test vectoR");
        assert_eq!(
            reason(policy(false).verify(MESSAGE, None, Some(&forged))),
            RejectReason::SignatureInvalid
        );
    }

    #[test]
    fn without_a_requirement_unsigned_bytes_pass_and_a_pin_is_checked() {
        let digest = hex::encode(Sha256::digest(MESSAGE));
        let provenance = policy(false)
            .verify(MESSAGE, Some(&digest.to_uppercase()), None)
            .unwrap();
        assert_eq!(provenance.sha256, digest);
        assert_eq!(provenance.signed_by, None);
    }

    #[test]
    fn a_bad_trusted_key_is_a_configuration_error() {
        let error = TrustPolicy::new(false, &["nope".into()])
            .err()
            .expect("refused");
        assert_eq!(error.index, 0);
    }
}
