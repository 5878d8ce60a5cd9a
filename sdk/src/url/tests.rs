//! Each part of a pattern matches its own part of the URL, and nothing else.

use super::*;

#[test]
fn lowercases_scheme_and_host_only() {
    assert_eq!(
        normalize("HTTPS://MCP.Slack.com/MCP"),
        "https://mcp.slack.com/MCP"
    );
}

#[test]
fn strips_query_fragment_default_port_and_trailing_slash() {
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
    assert_eq!(
        normalize("https://example.com:443/x"),
        "https://example.com/x"
    );
    assert_eq!(normalize("http://example.com:80/x"), "http://example.com/x");
    assert_eq!(
        normalize("https://example.com:80/x"),
        "https://example.com:80/x"
    );
}

#[test]
fn keeps_ports_and_ipv6_hosts() {
    assert_eq!(normalize("http://[::1]:8080/mcp/"), "http://[::1]:8080/mcp");
    assert_eq!(normalize("http://[::1]/mcp/"), "http://[::1]/mcp");
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
    assert_eq!(
        normalize_pattern("http://127.0.0.1:*"),
        "http://127.0.0.1:*/*"
    );
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

/// (pattern, connector URL): a `*` or `?` of the host part reaching past the host.
const HOST_ESCAPES: &[(&str, &str)] = &[
    ("https://*.slack.com/*", "https://evil.com/.slack.com/mcp"),
    ("https://*.slack.com/*", "https://evil.com/x.slack.com/"),
    ("https://*.slack.com/*", "https://evil.com?.slack.com/mcp"),
    ("https://*.slack.com/*", "https://evil.com#.slack.com/mcp"),
    ("https://*.slack.com/*", "https://a.slack.com@evil.com/mcp"),
    ("https://*.slack.com/*", "https://x:y@mcp.slack.com/mcp"),
    ("https://*.slack.com/*", "https://evil.com:443/.slack.com/"),
    ("https://*.slack.com/*", "https://mcp.slack.com:8443/mcp"),
    (
        "https://*.slack.com/*",
        "https://mcp.slack.com.evil.com/mcp",
    ),
    ("https://*.slack.com/*", "http://mcp.slack.com/mcp"),
    ("https://mcp.slack.com/*", "https://mcp.slack.com:1/mcp"),
    ("https://mcp?slack.com/*", "https://mcp/slack.com/x"),
    ("https://*/mcp", "https://evil.com/x/mcp"),
    ("https://*/mcp", "https://evil.com:8443/mcp"),
    ("*.slack.com/*", "https://evil.com/.slack.com/"),
    ("*slack.com*", "https://evil.com/slack.com"),
    ("https://[::1]/*", "https://[::1]:8080/mcp"),
    ("https://[*]/*", "https://evil.com/[x]/"),
    ("https://mcp.slack.com*", "https://evil.com/mcp.slack.com"),
    ("http://127.0.0.1:*", "http://127.0.0.2:8080/mcp"),
    ("https://example.com", "https://example.com/mcp"),
];

/// (pattern, connector URL) pairs that match.
const MATCHES: &[(&str, &str)] = &[
    ("https://*.slack.com/*", "https://mcp.slack.com/mcp"),
    ("https://*.slack.com/*", "https://a.b.slack.com/"),
    ("https://*.slack.com/*", "https://mcp.slack.com:443/mcp"),
    ("https://*.slack.com/*", "https://MCP.SLACK.COM/mcp?q=/x"),
    ("https://*.slack.com:443/*", "https://mcp.slack.com/mcp"),
    ("https://*:*/*", "https://mcp.slack.com:8443/mcp"),
    ("http*://*.slack.com/*", "http://mcp.slack.com/mcp"),
    ("*.slack.com/*", "https://mcp.slack.com/x/y"),
    ("*://*/*", "http://a.example/b"),
    ("https://*/mcp", "https://x.example/mcp/"),
    ("http://localhost:*/*", "http://localhost:9000/mcp"),
    ("http://[::1]:8080/*", "http://[::1]:8080/mcp"),
    ("https://[*]/*", "https://[2001:db8::1]/mcp"),
    (
        "https://mcp?.example.com/MCP",
        "https://mcp1.example.com/MCP",
    ),
    ("https://example.com", "https://example.com/"),
    ("https://mcp.slack.com*", "https://mcp.slack.com/mcp"),
    ("http://127.0.0.1:*", "http://127.0.0.1:8080/mcp"),
    ("https://*", "https://x.example/a/b"),
];

#[test]
fn a_host_wildcard_never_leaves_the_host() {
    for (pattern, url) in HOST_ESCAPES {
        assert!(!matches(pattern, url), "{pattern} must not match {url}");
    }
    for (pattern, url) in MATCHES {
        assert!(matches(pattern, url), "{pattern} should match {url}");
    }
}

#[test]
fn the_star_pattern_matches_everything_even_odd_urls() {
    for url in ["https://x:y@h/", "no scheme", "", "https://[::1/"] {
        assert!(matches("*", url), "{url}");
    }
    for url in ["no scheme", "", "https://[::1/", "https://[::1]x/"] {
        assert!(!matches("https://*/*", url), "{url}");
        assert!(!matches("*://*", url), "{url}");
    }
}
