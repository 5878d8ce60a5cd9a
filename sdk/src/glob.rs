//! Wildcard matching for `mcpServers[].url` and `tools.required` patterns.
//!
//! `*` matches zero or more characters and `?` exactly one; every other character is
//! literal, the match covers the whole string and is case-sensitive (MCP tool names are
//! case-sensitive). Path-oriented glob crates give `/`, `[` and `{` special meanings that
//! would change what a URL pattern such as `http://[::1]:8080/*` matches, so this uses
//! `wildmatch`, which knows only `*` and `?`.

use wildmatch::WildMatch;

/// Whether `pattern` matches the whole of `text`.
pub fn matches(pattern: &str, text: &str) -> bool {
    WildMatch::new(pattern).matches(text)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn star_matches_any_run_including_empty() {
        assert!(matches("list_*", "list_channels"));
        assert!(matches("list_*", "list_"));
        assert!(matches("*", ""));
        assert!(matches(
            "https://*.slack.com/*",
            "https://mcp.slack.com/mcp"
        ));
        assert!(!matches("list_*", "get_list_x"));
    }

    #[test]
    fn question_mark_matches_exactly_one() {
        assert!(matches("get_?", "get_a"));
        assert!(!matches("get_?", "get_"));
        assert!(!matches("get_?", "get_ab"));
    }

    #[test]
    fn everything_else_is_literal_and_anchored() {
        assert!(matches("http://[::1]:80/*", "http://[::1]:80/mcp"));
        assert!(!matches("http://[::1]:80/*", "http://1:80/mcp"));
        assert!(matches("a{b,c}", "a{b,c}"));
        assert!(!matches("read", "read_all"));
        assert!(!matches("Read_*", "read_all"));
    }
}
