//! Writing a connector's credential into upstream requests.
//!
//! The provider plugin answers with a plan of templates (`Authorization: Bearer
//! {secret}`); the plan holds no secret, so the data plane may keep it per connector
//! revision and plugin generation. [`render`] fills the placeholders with the credential
//! the vault opened for this one request; the plaintext is zeroized when the request's
//! [`Injection`] is dropped. Header values that carry the credential are marked
//! sensitive so HTTP libraries never print them.

use http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_model::{CredentialKind, InjectionPlan, PlanRequest, Stamp};
use portcullis_runtime::{PlanError, Runtime};
use reqwest::Url;
use zeroize::Zeroizing;

use crate::store::{AuthMethod, ConnectorRecord};
use crate::vault::{Binding, Vault};

#[derive(Debug, thiserror::Error)]
pub enum InjectionError {
    #[error("the connector's provider plugin gave no plan: {0}")]
    Plan(PlanError),
    #[error(
        "the provider plugin's plan needs a credential but the connector has none; \
         re-authorize it with an API key"
    )]
    MissingCredential,
    #[error("the provider plugin's plan has an unusable header {0:?}")]
    Header(String),
    #[error("the stored credential could not be opened: {0}")]
    Vault(String),
}

/// The kind of credential a connector holds.
pub fn credential_kind(connector: &ConnectorRecord) -> CredentialKind {
    match connector.auth {
        AuthMethod::ApiKey => CredentialKind::ApiKey,
        AuthMethod::None => CredentialKind::None,
        AuthMethod::OAuth => CredentialKind::OauthAccessToken,
    }
}

/// Asks the connector's provider plugin for its plan.
pub async fn plan(
    runtime: &Runtime,
    connector: &ConnectorRecord,
) -> Result<(InjectionPlan, Vec<Stamp>), InjectionError> {
    let verdict = runtime
        .injection_plan(PlanRequest {
            connector_id: connector.id.clone(),
            server_url: connector.server_url.clone(),
            provider: connector.provider.clone(),
            config: connector.config.to_string(),
            credential: credential_kind(connector),
        })
        .await;
    let plan = verdict.value.map_err(InjectionError::Plan)?;
    Ok((plan, verdict.plugins))
}

/// The plan with the credential written in, for one request.
pub struct Injection {
    headers: Vec<(HeaderName, HeaderValue)>,
    query: Vec<(String, Zeroizing<String>)>,
    secret: Option<Zeroizing<String>>,
}

/// Fills `plan`'s placeholders with `secret`.
pub fn render(
    plan: &InjectionPlan,
    secret: Option<Zeroizing<String>>,
) -> Result<Injection, InjectionError> {
    let credential = secret.as_ref().map(|s| s.as_str());
    let mut headers = Vec::with_capacity(plan.headers.len());
    for (name, template) in &plan.headers {
        let value = Zeroizing::new(
            template
                .render(credential)
                .ok_or(InjectionError::MissingCredential)?,
        );
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| InjectionError::Header(name.clone()))?;
        let mut value =
            HeaderValue::from_str(&value).map_err(|_| InjectionError::Header(name.to_string()))?;
        value.set_sensitive(template.uses_credential());
        headers.push((name, value));
    }
    let query = plan
        .query
        .iter()
        .map(|(name, template)| {
            let value = template
                .render(credential)
                .ok_or(InjectionError::MissingCredential)?;
            Ok((name.clone(), Zeroizing::new(value)))
        })
        .collect::<Result<_, InjectionError>>()?;
    Ok(Injection {
        headers,
        query,
        secret,
    })
}

/// Plan, open and render in one step, for the control plane's discovery calls.
pub async fn prepare(
    runtime: &Runtime,
    vault: &Vault,
    connector: &ConnectorRecord,
) -> Result<Injection, InjectionError> {
    let secret = open_secret(vault, connector)?;
    let (plan, _) = plan(runtime, connector).await?;
    render(&plan, secret)
}

/// Like [`prepare`] for a connector not stored yet, whose secret is still in hand.
pub async fn prepare_with_secret(
    runtime: &Runtime,
    connector: &ConnectorRecord,
    secret: Option<&str>,
) -> Result<Injection, InjectionError> {
    let (plan, _) = plan(runtime, connector).await?;
    render(&plan, secret.map(|s| Zeroizing::new(s.to_owned())))
}

/// The connector's API key in plaintext, for the length of one request (an OAuth
/// connector's access token comes from `oauth::Tokens`).
pub fn open_secret(
    vault: &Vault,
    connector: &ConnectorRecord,
) -> Result<Option<Zeroizing<String>>, InjectionError> {
    connector
        .sealed_secret
        .as_deref()
        .map(|sealed| {
            let binding = Binding::Connector {
                id: &connector.id,
                owner: &connector.owner,
            };
            vault
                .open(sealed, binding)
                .map_err(|e| InjectionError::Vault(e.to_string()))
        })
        .transpose()
}

impl Injection {
    /// Writes the headers into `headers` and returns `url` with the query appended.
    pub fn apply(&self, url: &Url, headers: &mut HeaderMap) -> Url {
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        if self.query.is_empty() {
            return url.clone();
        }
        let mut url = url.clone();
        url.query_pairs_mut()
            .extend_pairs(self.query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        url
    }

    /// The plaintext credential, so upstream text can be redacted before a client sees it.
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_ref().map(|s| s.as_str())
    }
}

#[cfg(test)]
mod tests {
    use portcullis_model::Template;

    use super::*;

    fn plan() -> InjectionPlan {
        InjectionPlan {
            headers: vec![
                (
                    "authorization".into(),
                    Template::parse("Bearer {secret}").unwrap(),
                ),
                ("x-mcp-toolsets".into(), Template::parse("repos").unwrap()),
            ],
            query: vec![("key".into(), Template::parse("{secret}").unwrap())],
        }
    }

    #[test]
    fn renders_headers_and_query() {
        let injection = render(&plan(), Some(Zeroizing::new("s3cr3t".into()))).unwrap();
        let mut headers = HeaderMap::new();
        let url = injection.apply(
            &Url::parse("https://mcp.example.com/mcp?a=1").unwrap(),
            &mut headers,
        );
        assert_eq!(headers["authorization"], "Bearer s3cr3t");
        assert!(headers["authorization"].is_sensitive());
        assert!(!headers["x-mcp-toolsets"].is_sensitive());
        assert_eq!(url.as_str(), "https://mcp.example.com/mcp?a=1&key=s3cr3t");
        assert_eq!(injection.secret(), Some("s3cr3t"));
    }

    #[test]
    fn a_plan_that_needs_a_credential_fails_without_one() {
        assert!(matches!(
            render(&plan(), None),
            Err(InjectionError::MissingCredential)
        ));
    }
}
