//! The two endpoints of an authorization server that take client credentials: the token
//! endpoint (RFC 6749: the code exchange and refresh) and RFC 7009 revocation.
//!
//! Client authentication is the registered method exactly (`none`, `client_secret_post`,
//! or `client_secret_basic` with both halves form-encoded first, RFC 6749 2.3.1): a server
//! may refuse any other. Answers are read as providers really send them: an OAuth error
//! object with 400 or 401, but also with 200 (GitHub's `{"error":…}`, Slack's
//! `{"ok":false,…}`), and the access token where the provider plugin's JSON pointer says,
//! with the refresh token and lifetime beside it. Nothing this module returns or logs
//! holds a secret: error text from the server is cut, and redacted of what was sent.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderValue};
use portcullis_model::ClientAuth;
use reqwest::Url;
use serde_json::Value;
use zeroize::Zeroizing;

use super::net::{Net, NetError};
use crate::redact::redact_text;

const FORM: &str = "application/x-www-form-urlencoded";
/// The longest piece of a server's error description that is kept.
const MAX_DESCRIPTION: usize = 300;

/// The client, as the token and revocation endpoints see it.
#[derive(Clone, Copy)]
pub struct Client<'a> {
    pub id: &'a str,
    pub secret: Option<&'a str>,
    pub auth: ClientAuth,
}

/// A successful token response.
pub struct TokenResponse {
    pub access_token: Zeroizing<String>,
    pub refresh_token: Option<Zeroizing<String>>,
    /// Seconds, when the server said.
    pub expires_in: Option<i64>,
    pub scope: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("the authorization server refused the request (HTTP {status}, {error}{description})")]
    Refused {
        status: u16,
        /// The OAuth error code, reduced to `[A-Za-z0-9_.-]`.
        error: String,
        /// `": <text>"`, or empty.
        description: String,
    },
    #[error("the authorization server failed (HTTP {0}); try again later")]
    Failed(u16),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("the token response is unusable: {0}")]
    Malformed(String),
    #[error("the client needs a secret for {0}, and none is stored")]
    MissingSecret(&'static str),
}

impl EndpointError {
    /// The OAuth error code of a refusal: the grant or the client was not accepted, which
    /// trying again will not change.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            EndpointError::Refused { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A form with the client's authentication, and the secrets to redact from any answer.
struct Signed {
    headers: HeaderMap,
    form: Vec<(String, String)>,
}

fn sign(client: Client<'_>, form: &[(&str, &str)]) -> Result<Signed, EndpointError> {
    let mut headers = HeaderMap::new();
    let mut fields: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match client.auth {
        ClientAuth::None => fields.push(("client_id".to_owned(), client.id.to_owned())),
        ClientAuth::ClientSecretPost => {
            let secret = client
                .secret
                .ok_or(EndpointError::MissingSecret("client_secret_post"))?;
            fields.push(("client_id".to_owned(), client.id.to_owned()));
            fields.push(("client_secret".to_owned(), secret.to_owned()));
        }
        ClientAuth::ClientSecretBasic => {
            let secret = client
                .secret
                .ok_or(EndpointError::MissingSecret("client_secret_basic"))?;
            let encode = |s: &str| -> String {
                url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
            };
            let pair = Zeroizing::new(format!("{}:{}", encode(client.id), encode(secret)));
            let mut value =
                HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(pair.as_bytes())))
                    .map_err(|_| {
                        EndpointError::Malformed(
                            "the client credentials are not header-safe".to_owned(),
                        )
                    })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
    }
    Ok(Signed {
        headers,
        form: fields,
    })
}

fn encode_form(fields: &[(String, String)]) -> Zeroizing<Vec<u8>> {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        serializer.append_pair(name, value);
    }
    Zeroizing::new(serializer.finish().into_bytes())
}

/// Where a successful token answer holds the access token.
#[derive(Clone, Copy, Debug)]
pub struct TokenAt<'a> {
    /// The provider plugin's JSON pointer; `/access_token` when `None`.
    pub pointer: Option<&'a str>,
    /// The answer is to a refresh. A refresh renews one token, and a provider may then put
    /// it at the top level although its code exchange nested it: Slack answers the refresh
    /// of a user token with `access_token` and `token_type: "user"` at the top level. So a
    /// refresh answer that has nothing at the pointer is read at `/access_token`.
    pub refresh: bool,
}

/// One token request: `form` (the grant's own fields), then the provider's `extra`
/// parameters, then the client's authentication. `at` says where the access token is.
pub async fn token(
    net: Net<'_>,
    endpoint: &Url,
    client: Client<'_>,
    form: &[(&str, &str)],
    extra: &[(String, String)],
    at: TokenAt<'_>,
) -> Result<TokenResponse, EndpointError> {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    fields.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let signed = sign(client, &fields)?;
    let body = encode_form(&signed.form);
    let reply = net
        .post(
            "the token endpoint",
            endpoint,
            FORM,
            signed.headers,
            body.to_vec(),
        )
        .await?;
    let sent: Vec<&str> = signed
        .form
        .iter()
        .map(|(_, v)| v.as_str())
        .chain(client.secret)
        .collect();
    let value = reply.json();
    if !reply.status.is_success() {
        return Err(refusal(reply.status.as_u16(), value.as_ref(), &sent));
    }
    let value = value.ok_or_else(|| {
        EndpointError::Malformed(
            "it is not JSON (the server must answer application/json)".to_owned(),
        )
    })?;
    parse_token_response(&value, at).map_err(|e| match e {
        // A 200 that carries an OAuth error instead of a token is a refusal.
        EndpointError::Malformed(_) if error_code(&value).is_some() => {
            refusal(200, Some(&value), &sent)
        }
        other => other,
    })
}

/// RFC 7009: revokes `token` (`hint` is `refresh_token` or `access_token`).
pub async fn revoke(
    net: Net<'_>,
    endpoint: &Url,
    client: Client<'_>,
    token: &str,
    hint: &str,
) -> Result<(), EndpointError> {
    let signed = sign(client, &[("token", token), ("token_type_hint", hint)])?;
    let body = encode_form(&signed.form);
    let reply = net
        .post(
            "the revocation endpoint",
            endpoint,
            FORM,
            signed.headers,
            body.to_vec(),
        )
        .await?;
    if reply.status.is_success() {
        return Ok(());
    }
    let sent = [token, client.secret.unwrap_or("")];
    Err(refusal(reply.status.as_u16(), reply.json().as_ref(), &sent))
}

/// The error of a non-successful answer: a refusal for 4xx other than 429, a failure of
/// the server otherwise.
fn refusal(status: u16, body: Option<&Value>, sent: &[&str]) -> EndpointError {
    if status >= 500 || status == 429 {
        return EndpointError::Failed(status);
    }
    let error = body
        .and_then(error_code)
        .unwrap_or_else(|| format!("http_{status}"));
    let description = body
        .and_then(|b| b.get("error_description"))
        .and_then(Value::as_str)
        .map(|text| {
            let mut text: String = text
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_DESCRIPTION)
                .collect();
            for secret in sent.iter().filter(|s| s.len() >= 8) {
                text = redact_text(text, Some(secret));
            }
            format!(": {text}")
        })
        .unwrap_or_default();
    EndpointError::Refused {
        status,
        error,
        description,
    }
}

/// The OAuth `error` of an answer (Slack's `{"ok":false,"error":…}` too), reduced to a
/// short code safe to log and to answer.
fn error_code(body: &Value) -> Option<String> {
    let error = body.get("error").and_then(Value::as_str)?;
    let code: String = error
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect();
    Some(if code.is_empty() {
        "invalid_response".to_owned()
    } else {
        code
    })
}

/// The tokens of a successful answer. The refresh token, lifetime and scope are read next
/// to the access token (its parent object), then at the top level.
fn parse_token_response(value: &Value, at: TokenAt<'_>) -> Result<TokenResponse, EndpointError> {
    if value.get("ok").and_then(Value::as_bool) == Some(false) {
        return Err(EndpointError::Malformed("it says ok: false".to_owned()));
    }
    const TOP_LEVEL: &str = "/access_token";
    let named = at.pointer.unwrap_or(TOP_LEVEL);
    let pointer = match at.refresh && value.pointer(named).is_none() {
        true => TOP_LEVEL,
        false => named,
    };
    let access_token = value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .ok_or_else(|| {
            EndpointError::Malformed(format!("it has no usable access token at {named}"))
        })?;
    let parent = pointer
        .rsplit_once('/')
        .map(|(parent, _)| parent)
        .and_then(|parent| value.pointer(parent))
        .unwrap_or(value);
    let field = |key: &str| parent.get(key).or_else(|| value.get(key));
    let refresh_token = field("refresh_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| Zeroizing::new(t.to_owned()));
    let expires_in = field("expires_in").and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    });
    Ok(TokenResponse {
        access_token: Zeroizing::new(access_token.to_owned()),
        refresh_token,
        expires_in: expires_in.filter(|s| *s > 0),
        scope: field("scope").and_then(Value::as_str).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn standard_and_nested_token_responses() {
        let standard = json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
                              "refresh_token": "rt-1", "scope": "a b"});
        let t = parse_token_response(&standard, code(None)).unwrap();
        assert_eq!(t.access_token.as_str(), "at-1");
        assert_eq!(t.refresh_token.as_deref().map(String::as_str), Some("rt-1"));
        assert_eq!(t.expires_in, Some(3600));
        assert_eq!(t.scope.as_deref(), Some("a b"));

        let slack = json!({"ok": true, "authed_user": {"access_token": "xoxp-1",
                           "refresh_token": "xoxe-1", "expires_in": "43200"}});
        let t = parse_token_response(&slack, code(Some("/authed_user/access_token"))).unwrap();
        assert_eq!(t.access_token.as_str(), "xoxp-1");
        assert_eq!(
            t.refresh_token.as_deref().map(String::as_str),
            Some("xoxe-1")
        );
        assert_eq!(t.expires_in, Some(43200));

        for bad in [
            json!({}),
            json!({"access_token": ""}),
            json!({"access_token": "a b"}),
            json!({"ok": false, "access_token": "x"}),
            json!({"access_token": 7}),
        ] {
            assert!(parse_token_response(&bad, code(None)).is_err(), "{bad}");
        }
    }

    fn code(pointer: Option<&str>) -> TokenAt<'_> {
        TokenAt {
            pointer,
            refresh: false,
        }
    }

    #[test]
    fn a_refresh_answer_may_carry_the_token_at_the_top_level() {
        let nested = Some("/authed_user/access_token");
        let refreshed = json!({"ok": true, "token_type": "user", "access_token": "xoxe.xoxp-2",
                               "refresh_token": "xoxe-2", "expires_in": 43200});
        let refresh = TokenAt {
            pointer: nested,
            refresh: true,
        };
        let t = parse_token_response(&refreshed, refresh).unwrap();
        assert_eq!(t.access_token.as_str(), "xoxe.xoxp-2");
        assert_eq!(
            t.refresh_token.as_deref().map(String::as_str),
            Some("xoxe-2")
        );
        assert_eq!(t.expires_in, Some(43200));
        // A code exchange keeps to the pointer: a top-level token there is another kind
        // (Slack's bot token beside the user's).
        assert!(parse_token_response(&refreshed, code(nested)).is_err());
        // Something unusable at the pointer is refused, not skipped.
        let unusable = json!({"authed_user": {"access_token": ""}, "access_token": "bot"});
        assert!(parse_token_response(&unusable, refresh).is_err());
        // The nested token still wins when both are there.
        let both = json!({"authed_user": {"access_token": "user-1"}, "access_token": "bot-1"});
        let t = parse_token_response(&both, refresh).unwrap();
        assert_eq!(t.access_token.as_str(), "user-1");
    }

    #[test]
    fn refusals_carry_a_clean_code_and_no_secret() {
        let body = json!({"error": "invalid_grant\r\nX: y", "error_description": "grant rt-secret-value is gone\n"});
        let e = refusal(400, Some(&body), &["rt-secret-value"]);
        assert_eq!(e.refusal(), Some("invalid_grantXy"));
        let text = e.to_string();
        assert!(!text.contains("rt-secret-value"), "{text}");
        assert!(!text.contains('\n'), "{text}");
        assert!(matches!(
            refusal(503, None, &[]),
            EndpointError::Failed(503)
        ));
        assert!(matches!(
            refusal(429, None, &[]),
            EndpointError::Failed(429)
        ));
        assert_eq!(refusal(404, None, &[]).refusal(), Some("http_404"));
        assert_eq!(
            error_code(&json!({"ok": false, "error": "invalid_refresh_token"})).as_deref(),
            Some("invalid_refresh_token")
        );
    }

    #[test]
    fn client_authentication() {
        let basic = sign(
            Client {
                id: "id:1",
                secret: Some("s&cr=t"),
                auth: ClientAuth::ClientSecretBasic,
            },
            &[("grant_type", "refresh_token")],
        )
        .unwrap();
        let header = basic.headers[AUTHORIZATION].to_str().unwrap().to_owned();
        assert_eq!(
            header,
            format!("Basic {}", STANDARD.encode("id%3A1:s%26cr%3Dt"))
        );
        assert!(basic.headers[AUTHORIZATION].is_sensitive());
        assert!(
            !basic
                .form
                .iter()
                .any(|(k, _)| k == "client_id" || k == "client_secret")
        );

        let post = sign(
            Client {
                id: "c",
                secret: Some("s"),
                auth: ClientAuth::ClientSecretPost,
            },
            &[],
        )
        .unwrap();
        assert_eq!(
            post.form,
            [
                ("client_id".into(), "c".into()),
                ("client_secret".into(), "s".into())
            ]
        );
        assert!(post.headers.is_empty());

        let public = sign(
            Client {
                id: "c",
                secret: None,
                auth: ClientAuth::None,
            },
            &[],
        )
        .unwrap();
        assert_eq!(public.form, [("client_id".into(), "c".into())]);
        assert!(
            sign(
                Client {
                    id: "c",
                    secret: None,
                    auth: ClientAuth::ClientSecretPost
                },
                &[]
            )
            .is_err()
        );
    }
}
