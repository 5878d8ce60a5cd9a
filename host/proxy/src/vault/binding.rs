//! What a sealed value belongs to ([`Binding`]), and the additional authenticated data
//! that binds it.
//!
//! Invariant: two different bindings never give the same AAD: every variable part is
//! length-prefixed and each variant has its own tag. This file imports nothing from the
//! crate, so the store can name a binding without depending on the vault.

/// What a sealed value belongs to; it opens only for the same binding.
#[derive(Clone, Copy, Debug)]
pub enum Binding<'a> {
    /// A connector's credential.
    Connector { id: &'a str, owner: &'a str },
    /// An OAuth client registered dynamically (RFC 7591) at the authorization server
    /// `issuer`: its secret and registration response belong to no connector.
    Registration { issuer: &'a str },
    /// The check value that tells at start whether the master key is the right one.
    KeyCheck,
    /// A proxy session's id (`data::shared_session`): it opens only for the run and
    /// connector it was minted for.
    Session { run: &'a str, connector: &'a str },
}

impl Binding<'_> {
    /// The AAD of one layer: unambiguous, every part length-prefixed.
    pub(super) fn aad(&self, layer: &str) -> Vec<u8> {
        let mut aad = format!("portcullis-vault-v2/{layer}/").into_bytes();
        match self {
            Binding::Connector { id, owner } => {
                aad.extend_from_slice(
                    format!("connector/{}:{id}/{}:{owner}", id.len(), owner.len()).as_bytes(),
                );
            }
            Binding::Registration { issuer } => {
                aad.extend_from_slice(format!("registration/{}:{issuer}", issuer.len()).as_bytes());
            }
            Binding::KeyCheck => aad.extend_from_slice(b"key-check"),
            Binding::Session { run, connector } => {
                aad.extend_from_slice(
                    format!(
                        "session/{}:{run}/{}:{connector}",
                        run.len(),
                        connector.len()
                    )
                    .as_bytes(),
                );
            }
        }
        aad
    }
}
