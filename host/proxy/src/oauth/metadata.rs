//! Where a protected MCP server says its authorization server is, and what that server
//! supports (spec 8.2): the `Bearer` challenge of a 401 (`resource_metadata`, `scope`),
//! RFC 9728 protected resource metadata, and RFC 8414 / OpenID Connect discovery of the
//! authorization server in the MCP order.
//!
//! Everything here is read from the network and untrusted: a document counts only when it is
//! JSON of the right shape, names this server as its resource (same origin, a path prefix),
//! and, for an authorization server, states the issuer it was looked up for. Endpoints go
//! through the URL rules of `net` before anyone uses them.

use http::HeaderMap;
use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde_json::Value;

use super::net::{Net, NetError};

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("{0}")]
    Unusable(String),
}

/// The parameters of a `WWW-Authenticate: Bearer` challenge that discovery uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Challenge {
    pub error: Option<String>,
    pub scope: Option<String>,
    pub resource_metadata: Option<String>,
}

impl Challenge {
    /// The `Bearer` challenge among `headers`' `WWW-Authenticate` values, if any.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(parse_challenges)
            .find(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, params)| {
                let get = |name: &str| {
                    params
                        .iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(name))
                        .map(|(_, value)| value.clone())
                };
                Challenge {
                    error: get("error"),
                    scope: get("scope"),
                    resource_metadata: get("resource_metadata"),
                }
            })
    }

    /// The challenge's scopes, in order.
    pub fn scopes(&self) -> Vec<String> {
        split_scopes(self.scope.as_deref().unwrap_or(""))
    }
}

/// Splits a space-separated scope string.
pub fn split_scopes(text: &str) -> Vec<String> {
    text.split_ascii_whitespace().map(str::to_owned).collect()
}

/// The challenges of one `WWW-Authenticate` value (RFC 9110 11.6.1): schemes, each with
/// its `name=value` parameters, values unquoted. Token68 credentials are skipped.
fn parse_challenges(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    let bytes = value.as_bytes();
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut at = 0;
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let skip = |at: &mut usize, set: &[u8]| {
        while *at < bytes.len() && set.contains(&bytes[*at]) {
            *at += 1;
        }
    };
    while at < bytes.len() {
        skip(&mut at, b" \t,");
        let start = at;
        while at < bytes.len() && is_tchar(bytes[at]) {
            at += 1;
        }
        if start == at {
            // Not a token: skip one byte so that garbage cannot stall the loop.
            at += 1;
            continue;
        }
        let token = &value[start..at];
        skip(&mut at, b" \t");
        if at < bytes.len() && bytes[at] == b'=' {
            at += 1;
            skip(&mut at, b" \t");
            let parsed = if at < bytes.len() && bytes[at] == b'"' {
                quoted(value, &mut at)
            } else {
                let start = at;
                while at < bytes.len() && bytes[at] != b',' && bytes[at] != b' ' {
                    at += 1;
                }
                value[start..at].to_owned()
            };
            if let Some((_, params)) = out.last_mut() {
                params.push((token.to_owned(), parsed));
            }
        } else {
            out.push((token.to_owned(), Vec::new()));
        }
    }
    out
}

/// A quoted string starting at `at` (on the opening quote), with its escapes resolved.
fn quoted(value: &str, at: &mut usize) -> String {
    let mut out = String::new();
    let mut chars = value[*at + 1..].char_indices();
    let base = *at + 1;
    *at = value.len();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    out.push(escaped);
                }
            }
            '"' => {
                *at = base + i + 1;
                break;
            }
            c => out.push(c),
        }
    }
    out
}

/// RFC 9728 protected resource metadata, as far as discovery uses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceMetadata {
    /// Where the document was read.
    pub url: String,
    pub resource: String,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
}

/// Finds the protected resource metadata of the server at `server_url`: the challenge's
/// `resource_metadata` URL first, then the path-specific and the root well-known URLs.
/// `None` when no candidate has a document.
pub async fn resource_metadata(
    net: Net<'_>,
    server_url: &Url,
    challenge: Option<&Challenge>,
) -> Result<Option<ResourceMetadata>, MetadataError> {
    let mut candidates = Vec::new();
    if let Some(url) = challenge.and_then(|c| c.resource_metadata.as_deref()) {
        candidates.push(url.to_owned());
    }
    let origin = server_url.origin().ascii_serialization();
    let path = server_url.path().trim_end_matches('/');
    if !path.is_empty() {
        candidates.push(format!(
            "{origin}/.well-known/oauth-protected-resource{path}"
        ));
    }
    candidates.push(format!("{origin}/.well-known/oauth-protected-resource"));
    candidates.dedup();
    let mut problem = None;
    for candidate in candidates {
        match fetch_resource_metadata(net, server_url, &candidate).await {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) => {}
            Err(e) => problem = Some(e),
        }
    }
    match problem {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

async fn fetch_resource_metadata(
    net: Net<'_>,
    server_url: &Url,
    url: &str,
) -> Result<Option<ResourceMetadata>, MetadataError> {
    let what = "the protected resource metadata";
    let parsed = net.check_url(what, url)?;
    let reply = net.get(what, &parsed).await?;
    if reply.status == StatusCode::NOT_FOUND || reply.status == StatusCode::METHOD_NOT_ALLOWED {
        return Ok(None);
    }
    let unusable = |detail: &str| {
        MetadataError::Unusable(format!(
            "the protected resource metadata at {url} is unusable: {detail}"
        ))
    };
    if !reply.status.is_success() {
        return Err(unusable(&format!("HTTP {}", reply.status)));
    }
    let doc = reply.json().ok_or_else(|| unusable("it is not JSON"))?;
    let resource = doc
        .get("resource")
        .and_then(Value::as_str)
        .ok_or_else(|| unusable("it has no `resource`"))?;
    let servers = strings(&doc, "authorization_servers");
    if servers.is_empty() {
        return Err(unusable("it lists no `authorization_servers`"));
    }
    if !resource_covers(resource, server_url) {
        return Err(unusable(&format!(
            "it describes the resource {resource}, not this server ({server_url})"
        )));
    }
    Ok(Some(ResourceMetadata {
        url: url.to_owned(),
        resource: resource.to_owned(),
        authorization_servers: servers,
        scopes_supported: strings(&doc, "scopes_supported"),
    }))
}

/// Whether the resource identifier `resource` names the server at `server_url`: the same
/// origin, and a path that is the server's or a parent of it (as the MCP SDKs check).
pub fn resource_covers(resource: &str, server_url: &Url) -> bool {
    let Ok(resource) = Url::parse(resource) else {
        return false;
    };
    if resource.origin() != server_url.origin() || resource.fragment().is_some() {
        return false;
    }
    let wanted = resource.path().trim_end_matches('/');
    let actual = server_url.path().trim_end_matches('/');
    actual == wanted || actual.starts_with(&format!("{wanted}/"))
}

/// The canonical URI of a server (RFC 8707, spec 8.5): scheme and host lower-case, no
/// fragment; the path and query as given, since providers scope tokens by them.
pub fn canonical_resource(server_url: &Url) -> String {
    let mut url = server_url.clone();
    url.set_fragment(None);
    url.to_string()
}

/// RFC 8414 authorization server metadata, as far as Portcullis uses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub scopes_supported: Vec<String>,
    /// `None` when the document does not list any: PKCE support is unknown, and the MCP
    /// specification forbids dynamic registration with such a server.
    pub code_challenge_methods_supported: Option<Vec<String>>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub authorization_response_iss_parameter_supported: bool,
}

impl AuthServerMetadata {
    /// Whether PKCE with S256 is advertised.
    pub fn supports_s256(&self) -> bool {
        self.code_challenge_methods_supported
            .as_ref()
            .is_some_and(|methods| methods.iter().any(|m| m == "S256"))
    }
}

/// The metadata of the authorization server `issuer`, from the well-known URLs in the
/// order of the MCP specification (RFC 8414 first, then OpenID Connect discovery).
pub async fn auth_server_metadata(
    net: Net<'_>,
    issuer: &str,
) -> Result<AuthServerMetadata, MetadataError> {
    let what = "the authorization server";
    let parsed = net.check_url(what, issuer)?;
    let origin = parsed.origin().ascii_serialization();
    let path = parsed.path().trim_end_matches('/');
    let candidates = if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    };
    let mut tried = Vec::new();
    for candidate in candidates {
        let url = net.check_url(what, &candidate)?;
        let reply = net.get(what, &url).await?;
        if !reply.status.is_success() {
            tried.push(format!("{candidate} (HTTP {})", reply.status.as_u16()));
            continue;
        }
        let doc = reply.json().ok_or_else(|| {
            MetadataError::Unusable(format!(
                "the authorization server metadata at {candidate} is not JSON"
            ))
        })?;
        return parse_auth_server(net, issuer, &candidate, &doc);
    }
    Err(MetadataError::Unusable(format!(
        "the authorization server {issuer} publishes no metadata (tried {})",
        tried.join(", ")
    )))
}

fn parse_auth_server(
    net: Net<'_>,
    issuer: &str,
    url: &str,
    doc: &Value,
) -> Result<AuthServerMetadata, MetadataError> {
    let unusable = |detail: String| {
        MetadataError::Unusable(format!(
            "the authorization server metadata at {url} is unusable: {detail}"
        ))
    };
    let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_owned);
    let stated = text("issuer").ok_or_else(|| unusable("it has no `issuer`".to_owned()))?;
    if !same_issuer(&stated, issuer) {
        return Err(unusable(format!(
            "it states the issuer {stated}, not {issuer} (RFC 8414 section 3.3)"
        )));
    }
    let endpoint = |key: &'static str| -> Result<String, MetadataError> {
        let value = text(key).ok_or_else(|| unusable(format!("it has no `{key}`")))?;
        net.check_url("an authorization server endpoint", &value)
            .map_err(|e| unusable(e.to_string()))?;
        Ok(value)
    };
    let optional = |key: &'static str| {
        text(key).filter(|value| {
            net.check_url("an authorization server endpoint", value)
                .is_ok()
        })
    };
    Ok(AuthServerMetadata {
        issuer: stated,
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
        registration_endpoint: optional("registration_endpoint"),
        revocation_endpoint: optional("revocation_endpoint"),
        scopes_supported: strings(doc, "scopes_supported"),
        code_challenge_methods_supported: doc
            .get("code_challenge_methods_supported")
            .is_some()
            .then(|| strings(doc, "code_challenge_methods_supported")),
        token_endpoint_auth_methods_supported: strings(
            doc,
            "token_endpoint_auth_methods_supported",
        ),
        authorization_response_iss_parameter_supported: doc
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// Whether two issuer identifiers are the same, a path-less one with or without its `/`
/// (RFC 9728 documents often list `https://as.example.com/` for `https://as.example.com`).
pub fn same_issuer(a: &str, b: &str) -> bool {
    let normal = |s: &str| -> String {
        match Url::parse(s) {
            Ok(url) if url.path() == "/" && url.query().is_none() => {
                url.as_str().trim_end_matches('/').to_owned()
            }
            Ok(url) => url.to_string(),
            Err(_) => s.to_owned(),
        }
    };
    normal(a) == normal(b)
}

/// The strings of the array `key` of `doc`; anything else reads as none.
fn strings(doc: &Value, key: &str) -> Vec<String> {
    doc.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(value: &str) -> Option<Challenge> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_str(value).unwrap(),
        );
        Challenge::from_headers(&headers)
    }

    #[test]
    fn bearer_challenges() {
        let c = challenge(
            r#"Bearer error="invalid_token", error_description="Authentication required", resource_metadata="http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp""#,
        )
        .unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(c.scope, None);

        let c = challenge(
            r#"Basic realm="x", Bearer scope="a b", error=insufficient_scope, realm="say \"hi\", ok""#,
        )
        .unwrap();
        assert_eq!(c.scopes(), ["a", "b"]);
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert!(challenge(r#"Basic realm="x""#).is_none());
        assert!(challenge(r#"Bearer"#).unwrap().resource_metadata.is_none());
        // Garbage never panics or loops.
        for junk in [
            "\"",
            "=",
            "Bearer =",
            "Bearer a=\"unterminated",
            ",,,",
            "Bearer a=b=c",
        ] {
            let _ = challenge(junk);
        }
    }

    #[test]
    fn resources_and_issuers() {
        let server = Url::parse("https://mcp.example.com/mcp/org").unwrap();
        assert!(resource_covers("https://mcp.example.com/mcp/org", &server));
        assert!(resource_covers("https://mcp.example.com/mcp", &server));
        assert!(resource_covers("https://mcp.example.com/", &server));
        assert!(!resource_covers("https://mcp.example.com/mc", &server));
        assert!(!resource_covers("https://other.example.com/mcp", &server));
        assert!(!resource_covers("http://mcp.example.com/mcp", &server));
        assert!(same_issuer("http://127.0.0.1:5/", "http://127.0.0.1:5"));
        assert!(!same_issuer(
            "https://as.example.com/a",
            "https://as.example.com/b"
        ));
        assert_eq!(
            canonical_resource(&Url::parse("HTTPS://MCP.Example.com/mcp/?x=1#f").unwrap()),
            "https://mcp.example.com/mcp/?x=1"
        );
    }
}
