//! Normalization of the connector URL before `mcpServers[].url` patterns are matched.
//!
//! The decision adopted in `design.md`: patterns match the connector URL with the scheme and
//! host lower-cased, the query string and fragment removed and no trailing slash, so that
//! `https://mcp.supabase.com/mcp` matches a connector stored as
//! `https://MCP.supabase.com/mcp/?project_ref=abc`. A pattern gets the same treatment of its
//! trailing slash and of the case of its scheme and host.
//!
//! After normalization a trailing slash carries no meaning, so [`matches()`] also accepts a
//! pattern that spells one out: `https://api.githubcopilot.com/mcp/*` matches GitHub's
//! canonical `https://api.githubcopilot.com/mcp/`, as it would literally.
//!
//! This is a few lines of string work rather than a full URL parser on purpose: it runs
//! inside every policy component, and a WHATWG parser with IDNA tables would multiply the
//! size of each one. The host has already parsed and validated every stored URL.

use crate::glob;

/// Whether the `mcpServers[].url` pattern matches the connector's stored URL.
pub fn matches(pattern: &str, server_url: &str) -> bool {
    let pattern = normalize_pattern(pattern);
    let target = normalize(server_url);
    glob::matches(&pattern, &target) || glob::matches(&pattern, &format!("{target}/"))
}

/// The connector URL as patterns see it.
pub fn normalize(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    strip_trailing_slashes(lowercase_authority(&url[..end]))
}

/// A pattern with its scheme and host lower-cased and any trailing slash removed. The
/// query and fragment are kept: in a pattern `?` is a wildcard, not a query separator.
pub fn normalize_pattern(pattern: &str) -> String {
    strip_trailing_slashes(lowercase_authority(pattern))
}

/// `scheme://host[:port]` lower-cased, the rest as it was. Only `/` ends the authority:
/// the caller has already cut a URL's query and fragment, and in a pattern `?` is a
/// wildcard that may stand inside the host (`https://mcp?.example.com/mcp`).
fn lowercase_authority(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find('/')
        .map_or(url.len(), |i| authority_start + i);
    let (authority, path) = url.split_at(authority_end);
    authority.to_ascii_lowercase() + path
}

fn strip_trailing_slashes(mut url: String) -> String {
    while url.len() > 1 && url.ends_with('/') && !url.ends_with("://") {
        url.pop();
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_scheme_and_host_only() {
        assert_eq!(
            normalize("HTTPS://MCP.Slack.com/MCP"),
            "https://mcp.slack.com/MCP"
        );
    }

    #[test]
    fn strips_query_fragment_and_trailing_slash() {
        assert_eq!(
            normalize("https://mcp.supabase.com/mcp/?project_ref=abc#x"),
            "https://mcp.supabase.com/mcp"
        );
        assert_eq!(
            normalize("https://api.githubcopilot.com/mcp/"),
            "https://api.githubcopilot.com/mcp"
        );
        assert_eq!(normalize("https://example.com/"), "https://example.com");
        assert_eq!(normalize("https://example.com"), "https://example.com");
    }

    #[test]
    fn keeps_ports_and_ipv6_hosts() {
        assert_eq!(normalize("http://[::1]:8080/mcp/"), "http://[::1]:8080/mcp");
        assert_eq!(normalize("http://LOCALHOST:8080"), "http://localhost:8080");
    }

    #[test]
    fn pattern_keeps_wildcards() {
        assert_eq!(
            normalize_pattern("https://*.Slack.com/*"),
            "https://*.slack.com/*"
        );
        assert_eq!(
            normalize_pattern("https://mcp.example.com/mc?/"),
            "https://mcp.example.com/mc?"
        );
        assert_eq!(
            normalize_pattern("https://MCP?.Example.com/MCP"),
            "https://mcp?.example.com/MCP"
        );
        assert_eq!(normalize_pattern("*"), "*");
        assert_eq!(normalize_pattern("/"), "/");
    }

    #[test]
    fn trailing_slash_is_insignificant_on_either_side() {
        let github = "https://api.githubcopilot.com/mcp/";
        assert!(matches("https://api.githubcopilot.com/mcp/*", github));
        assert!(matches("https://api.githubcopilot.com/mcp", github));
        assert!(matches("https://api.githubcopilot.com/mcp/", github));
        assert!(matches("https://example.com/*", "https://example.com"));
        assert!(!matches(
            "https://api.githubcopilot.com/mcp/*",
            "https://api.githubcopilot.com/mcpx"
        ));
    }
}
