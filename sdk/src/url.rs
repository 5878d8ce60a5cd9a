//! Normalization of the connector URL before `mcpServers[].url` patterns are matched.
//!
//! The decision adopted in `design.md`: patterns match the connector URL with the scheme and
//! host lower-cased, the query string and fragment removed and no trailing slash, so that
//! `https://mcp.supabase.com/mcp` matches a connector stored as
//! `https://MCP.supabase.com/mcp/?project_ref=abc`. A pattern gets the same treatment of its
//! trailing slash and of the case of its scheme and host.
//!
//! This is a few lines of string work rather than a full URL parser on purpose: it runs
//! inside every policy component, and a WHATWG parser with IDNA tables would multiply the
//! size of each one. The host has already parsed and validated every stored URL.

/// The connector URL as patterns see it.
pub fn normalize(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    normalize_pattern(&url[..end])
}

/// A pattern with its scheme and host lower-cased and any trailing slash removed. The
/// query and fragment are kept: in a pattern `?` is a wildcard, not a query separator.
pub fn normalize_pattern(pattern: &str) -> String {
    let (scheme_and_host, rest) = split_authority(pattern);
    let mut normalized = scheme_and_host.to_ascii_lowercase();
    normalized.push_str(rest);
    while normalized.len() > 1 && normalized.ends_with('/') && !normalized.ends_with("://") {
        normalized.pop();
    }
    normalized
}

/// Splits `scheme://host[:port]` from the path that follows it.
fn split_authority(url: &str) -> (&str, &str) {
    let Some(scheme_end) = url.find("://") else {
        return ("", url);
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    url.split_at(authority_end)
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
        assert_eq!(normalize_pattern("*"), "*");
        assert_eq!(normalize_pattern("/"), "/");
    }
}
