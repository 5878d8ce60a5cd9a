//! Reading `Authorization: Bearer <token>`, the one scheme both planes accept: the admin
//! API for the admin token, the data plane for run tokens.
//!
//! Only the scheme is read here; what the token is worth is each plane's question (a
//! constant-time hash comparison for the admin token, a hash lookup for run tokens).

use axum::http::{HeaderMap, header};

/// The token of a `Bearer` (or `bearer`) `Authorization` header, trimmed; it may be
/// empty. `None` when the header is absent, not text, or another scheme.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn reads_the_bearer_token_only() {
        assert_eq!(bearer(&with("Bearer abc ")), Some("abc"));
        assert_eq!(bearer(&with("bearer abc")), Some("abc"));
        assert_eq!(bearer(&with("Bearer ")), Some(""));
        assert_eq!(bearer(&with("Basic abc")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
