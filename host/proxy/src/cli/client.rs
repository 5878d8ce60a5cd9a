//! The admin API's HTTP client, shared by every admin command: the URL and token
//! arguments, one request with its error answer turned into a message, and printing.

use std::io::Write;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

#[derive(Args)]
pub struct ApiArgs {
    /// The proxy's base URL.
    #[arg(
        long,
        env = "PORTCULLIS_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// The admin token.
    #[arg(
        long,
        env = "PORTCULLIS_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub admin_token: Option<String>,
}

pub fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// Writes `text` and a newline to standard output. A closed pipe (`| head`) is the
/// reader's choice, not a failure.
pub fn print(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// What a request sends.
pub enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

/// Calls the admin API; answers the JSON answer (`null` for an empty one).
pub async fn request(
    api: &ApiArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Body>,
) -> anyhow::Result<Value> {
    let Some(token) = &api.admin_token else {
        bail!(
            "no admin token: pass --admin-token or set PORTCULLIS_ADMIN_TOKEN (a generated token is in the data directory's admin.token file)"
        );
    };
    let url = format!("{}/admin/v1{path}", api.url.trim_end_matches('/'));
    let mut request = reqwest::Client::new()
        .request(method, &url)
        .bearer_auth(token);
    match body {
        Some(Body::Json(body)) => request = request.json(&body),
        Some(Body::Bytes(bytes)) => request = request.body(bytes),
        None => {}
    }
    let response = request.send().await.with_context(|| {
        format!(
            "cannot reach the proxy at {}; is `portcullis serve` running?",
            api.url
        )
    })?;
    let status = response.status();
    let text = response
        .text()
        .await
        .context("the answer could not be read")?;
    let value: Option<Value> = serde_json::from_str(&text).ok();
    if !status.is_success() {
        let error = value.as_ref().and_then(|v| v.get("error"));
        let message = error
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or(&text);
        match error.and_then(|e| e.get("reason")).and_then(Value::as_str) {
            Some(reason) => bail!("{status} ({reason}): {message}"),
            None => bail!("{status}: {message}"),
        }
    }
    Ok(match value {
        Some(value) => value,
        None if text.is_empty() => Value::Null,
        None => Value::String(text),
    })
}
