//! Matching `mcpServers[].url` patterns against a connector's URL, part by part.
//!
//! A pattern and a URL are both split into scheme, host, port and path, and each part of
//! the pattern is matched against the same part of the URL only. So a `*` in a pattern's
//! host never crosses into the path (`https://*.slack.com/*` does not match
//! `https://evil.com/.slack.com/mcp`), the port (`:`) or user information (`@`); in the
//! path, `*` spans `/` as the specification's examples need
//! (`https://api.githubcopilot.com/mcp/*` matches `.../mcp/x/repos`).
//!
//! The decision adopted in `design.md`: patterns match the connector URL with the scheme and
//! host lower-cased, the default port dropped, the query string and fragment removed and no
//! trailing slash, so that `https://mcp.supabase.com/mcp` matches a connector stored as
//! `https://MCP.supabase.com/mcp/?project_ref=abc`. A pattern gets the same treatment of
//! its trailing slash, default port and the case of its scheme and host; in a pattern `?`
//! is a wildcard (exactly one character), never a query separator.
//!
//! * The pattern `*` alone matches every server. Any other pattern names its parts: one
//!   without `scheme://` matches any scheme; one without a port matches the scheme's
//!   default port only (`:*` matches any); one without a path matches only the root path,
//!   unless its authority ends in `*` (`http://127.0.0.1:*`, `https://mcp.slack.com*`):
//!   that `*` then also stands for any path, as it did when patterns were plain globs.
//! * Hosts compare in ASCII: the host stores an internationalized name in punycode
//!   (`xn--bcher-kva.example`), so a pattern must spell it that way too.
//! * A URL that carries user information (`user:pass@host`) matches no pattern but `*`:
//!   the host stores connector URLs without it, so such a URL is not one it wrote.
//! * A trailing slash carries no meaning on either side: `https://api.githubcopilot.com/mcp/*`
//!   matches GitHub's canonical `https://api.githubcopilot.com/mcp/`.
//!
//! This is a little string work rather than a full URL parser on purpose: it runs inside
//! every policy component, and a WHATWG parser with IDNA tables would multiply the size of
//! each one. The host has already parsed, normalized (`url` crate) and checked every
//! stored URL, so the split here agrees with the one the connection uses.

use crate::glob;

/// Whether the `mcpServers[].url` pattern matches the connector's stored URL.
pub fn matches(pattern: &str, server_url: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (Some(pattern), Some(url)) = (Parts::of_pattern(pattern), Parts::of_url(server_url)) else {
        return false;
    };
    glob::matches(&pattern.scheme, &url.scheme)
        && glob::matches(&pattern.host, &url.host)
        && glob::matches(&pattern.port, &url.port)
        && (glob::matches(&pattern.path, &url.path)
            || glob::matches(&pattern.path, &format!("{}/", url.path)))
}

/// The connector URL as patterns see it: `scheme://host[:port]/path`, lower-cased
/// scheme and host, no default port, no query, fragment or trailing slash. A URL that
/// cannot be split is answered as given, its query and fragment removed.
pub fn normalize(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    match Parts::of_url(url) {
        Some(parts) => parts.to_string(),
        None => url[..end].to_owned(),
    }
}

/// A pattern with its scheme and host lower-cased, the default port and any trailing slash
/// removed. The query and fragment are kept: in a pattern `?` is a wildcard.
pub fn normalize_pattern(pattern: &str) -> String {
    match Parts::of_pattern(pattern) {
        Some(parts) if pattern != "*" => parts.to_string(),
        _ => pattern.to_owned(),
    }
}

/// The four parts that are matched separately.
#[derive(Debug, PartialEq)]
struct Parts {
    scheme: String,
    host: String,
    /// Empty for the scheme's default port.
    port: String,
    /// Empty for the root; never ends with `/`.
    path: String,
}

impl Parts {
    /// Splits a stored URL; `None` when it has no `scheme://` or carries user information.
    fn of_url(url: &str) -> Option<Self> {
        let end = url.find(['?', '#']).unwrap_or(url.len());
        let (scheme, rest) = url[..end].split_once("://")?;
        let parts = Self::split(scheme, rest)?;
        (!parts.host.contains('@')).then_some(parts)
    }

    /// Splits a pattern; one without `scheme://` matches any scheme, and one whose
    /// authority ends in `*` with no path after it matches any path.
    fn of_pattern(pattern: &str) -> Option<Self> {
        let (scheme, rest) = pattern.split_once("://").unwrap_or(("*", pattern));
        let mut parts = Self::split(scheme, rest)?;
        if !rest.contains('/') && rest.ends_with('*') {
            parts.path = "/*".to_owned();
        }
        Some(parts)
    }

    /// `rest` is `authority[/path]`: only `/` ends the authority, since a URL's query and
    /// fragment are already cut and a pattern's `?` is a wildcard that may stand inside
    /// the host (`https://mcp?.example.com/mcp`).
    fn split(scheme: &str, rest: &str) -> Option<Self> {
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = if authority.starts_with('[') {
            let close = authority.find(']')?;
            let (host, after) = authority.split_at(close + 1);
            match after {
                "" => (host, ""),
                _ => (host, after.strip_prefix(':')?),
            }
        } else {
            authority.rsplit_once(':').unwrap_or((authority, ""))
        };
        let scheme = scheme.to_ascii_lowercase();
        let port = match (scheme.as_str(), port) {
            ("http", "80") | ("https", "443") => "",
            (_, port) => port,
        };
        Some(Self {
            host: host.to_ascii_lowercase(),
            port: port.to_owned(),
            path: path.trim_end_matches('/').to_owned(),
            scheme,
        })
    }
}

impl std::fmt::Display for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if !self.port.is_empty() {
            write!(f, ":{}", self.port)?;
        }
        f.write_str(&self.path)
    }
}

#[cfg(test)]
mod tests;
