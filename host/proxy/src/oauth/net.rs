//! Every request Portcullis sends to an authorization server or a metadata URL.
//!
//! The URLs come from an upstream (its `WWW-Authenticate` header and metadata documents) or
//! from a connector's owner, so each one is checked before use: `https` only (plain `http`
//! only when `upstream.allow_private` is on, for local development and tests, spec 8.8), and
//! the egress client's SSRF rules (SEC-3), which also refuse redirects. Answers are read up to
//! a bound and within a deadline, so a hostile server can hold neither memory nor a request.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::HeaderMap;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::egress::{Egress, error_chain};

/// The longest an OAuth request may take, answer included.
const DEADLINE: Duration = Duration::from_secs(15);
/// The largest answer read from an authorization server or a metadata URL.
const MAX_ANSWER_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{what} `{url}` is not usable: {detail}")]
    Url {
        what: &'static str,
        url: String,
        detail: String,
    },
    #[error("{what} could not be reached: {detail}")]
    Unreachable { what: &'static str, detail: String },
    #[error("{what} answered with more than {MAX_ANSWER_BYTES} bytes")]
    TooLarge { what: &'static str },
}

/// One answer, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The OAuth client's view of the network: the egress client and the URL rule.
#[derive(Clone, Copy)]
pub struct Net<'a> {
    egress: &'a Egress,
    allow_http: bool,
}

impl<'a> Net<'a> {
    /// `allow_http` is `upstream.allow_private`: development and tests on loopback.
    pub fn new(egress: &'a Egress, allow_http: bool) -> Self {
        Self { egress, allow_http }
    }

    /// Parses `url` and applies the URL rules; `what` names it in the error.
    pub fn check_url(&self, what: &'static str, url: &str) -> Result<Url, NetError> {
        let refuse = |detail: String| NetError::Url {
            what,
            url: url.chars().take(512).collect(),
            detail,
        };
        let parsed = Url::parse(url).map_err(|e| refuse(e.to_string()))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(refuse(
                    "OAuth endpoints must use https (plain http is accepted only with \
                     PORTCULLIS_ALLOW_PRIVATE_UPSTREAMS=1, for local development)"
                        .to_owned(),
                ));
            }
            other => return Err(refuse(format!("the scheme {other:?} is not https"))),
        }
        if parsed.host_str().is_none() {
            return Err(refuse("it has no host".to_owned()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(refuse("it carries credentials".to_owned()));
        }
        if parsed.fragment().is_some() {
            return Err(refuse("it has a fragment".to_owned()));
        }
        self.egress
            .client_for(&parsed)
            .map_err(|e| refuse(e.to_string()))?;
        Ok(parsed)
    }

    /// GET `url` asking for JSON.
    pub async fn get(&self, what: &'static str, url: &Url) -> Result<Reply, NetError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        self.send(what, Method::GET, url, headers, None).await
    }

    /// POST `body` of `content_type` to `url`, asking for JSON.
    pub async fn post(
        &self,
        what: &'static str,
        url: &Url,
        content_type: &'static str,
        mut headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<Reply, NetError> {
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        self.send(what, Method::POST, url, headers, Some(body))
            .await
    }

    /// Sends one request through the egress client and reads the answer within bounds.
    pub async fn send(
        &self,
        what: &'static str,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, NetError> {
        let unreachable = |detail: String| NetError::Unreachable { what, detail };
        let client = self.egress.client_for(url).map_err(|e| NetError::Url {
            what,
            url: url.as_str().chars().take(512).collect(),
            detail: e.to_string(),
        })?;
        let mut request = client
            .request(method, url.clone())
            .headers(headers)
            .timeout(DEADLINE);
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut stream = response.bytes_stream();
        let mut body = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| unreachable(error_chain(&e)))?;
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(NetError::TooLarge { what });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            headers,
            body: body.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::EgressConfig;

    #[test]
    fn url_rules() {
        let strict = Egress::new(&EgressConfig::default()).unwrap();
        let net = Net::new(&strict, false);
        assert!(net.check_url("x", "https://as.example.com/token").is_ok());
        for bad in [
            "http://as.example.com/token",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://user:pw@as.example.com/token",
            "https://as.example.com/token#frag",
            "https://127.0.0.1/token",
            "https://169.254.169.254/latest",
            "not a url",
        ] {
            assert!(net.check_url("x", bad).is_err(), "{bad} should be refused");
        }
        let dev = Egress::new(&EgressConfig {
            allow_private: true,
            ..EgressConfig::default()
        })
        .unwrap();
        let net = Net::new(&dev, true);
        assert!(net.check_url("x", "http://127.0.0.1:9/token").is_ok());
        assert!(net.check_url("x", "ftp://127.0.0.1:9/token").is_err());
    }
}
