//! The example plugin of the README (Writing a plugin), compiled and tested here so the
//! documentation cannot drift from an SDK that still builds it: the text between the
//! marker lines must appear verbatim in the document.

// ---- example: src/lib.rs ----
//! no-deletes: keeps every `delete_*` tool away from actors, whatever they declared.

use portcullis_sdk::policy::*;

pub struct NoDeletes;

impl Policy for NoDeletes {
    fn describe() -> PolicyInfo {
        info("no-deletes", env!("CARGO_PKG_VERSION"))
    }
    fn request(_ctx: DecisionContext, request: McpRequest) -> Decision {
        match request.tool {
            Some(tool) if tool.starts_with("delete_") => deny(
                DenyCode::ToolNotPermitted,
                "delete_forbidden",
                format!("{tool} deletes"),
            ),
            _ => Decision::Allow,
        }
    }
    fn permitted_tools(ctx: DecisionContext) -> ToolSet {
        let names = ctx.connector.tools.into_iter().map(|tool| tool.name);
        ToolSet::Only(names.filter(|name| !name.starts_with("delete_")).collect())
    }
}

portcullis_sdk::export_policy!(NoDeletes);
// ---- end ----

// ---- example: tests ----
#[cfg(test)]
mod tests {
    use portcullis_sdk::policy::*;
    use portcullis_sdk::testing::*;

    use super::NoDeletes;

    fn ctx() -> DecisionContext {
        context()
            .connector(
                connector("conn_1", "alice", "https://mcp.example.com/mcp")
                    .tool(tool("list_files"))
                    .tool(tool("delete_file")),
            )
            .build()
    }

    #[test]
    fn deletes_are_denied_and_hidden() {
        let decision = NoDeletes::request(ctx(), call("delete_file"));
        assert_denied(&decision, DenyCode::ToolNotPermitted, "delete_forbidden");
        assert_allowed(&NoDeletes::request(ctx(), call("list_files")));
        assert_allowed(&NoDeletes::request(ctx(), request("tools/list")));
        let tools = NoDeletes::permitted_tools(ctx());
        assert_eq!(only_names(&tools), Some(vec!["list_files"]));
    }
}
// ---- end ----

/// The lines after the marker line `start` up to the next end marker.
pub(crate) fn between(text: &str, start: &str) -> String {
    let mut lines = text.lines().skip_while(|line| *line != start).skip(1);
    let block: Vec<&str> = lines
        .by_ref()
        .take_while(|line| *line != "// ---- end ----")
        .collect();
    assert!(!block.is_empty(), "no block after {start:?}");
    block.join("\n") + "\n"
}

#[test]
fn the_documentation_shows_this_exact_code() {
    let doc = include_str!("../../../README.md");
    let source = include_str!("example_plugin.rs");
    for marker in [
        "// ---- example: src/lib.rs ----",
        "// ---- example: tests ----",
    ] {
        let code = between(source, marker);
        assert!(
            doc.contains(&format!("```rust\n{code}```")),
            "README.md lacks the block after {marker:?}:\n{code}"
        );
    }
}

#[test]
fn the_example_stays_under_thirty_lines_of_code() {
    let code = between(
        include_str!("example_plugin.rs"),
        "// ---- example: src/lib.rs ----",
    );
    let lines = code
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with("//"))
        .count();
    assert!(lines < 30, "{lines} lines of code");
}
