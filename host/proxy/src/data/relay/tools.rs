//! The rewrites of an answer the relay makes: the `tools/list` filter and the removal of
//! denied capabilities, as pure functions of the message, so that their invariants can be
//! checked on any input (below: no tool outside the permitted set survives the filter,
//! whatever the upstream sends).

use std::collections::HashSet;

use portcullis_model::ToolSet;
use serde_json::Value;

/// Keeps in `result.tools` the tools named in both `snapshot` and `permitted`; false
/// when the message has a result that is not an object with a `tools` array (an error
/// answer has no tools to filter: true).
pub fn filter_tools(value: &mut Value, snapshot: &HashSet<&str>, permitted: &ToolSet) -> bool {
    let Some(result) = value.get_mut("result") else {
        return value.get("error").is_some();
    };
    let Some(result) = result.as_object_mut() else {
        return false;
    };
    let Some(Value::Array(tools)) = result.get_mut("tools") else {
        return false;
    };
    tools.retain(|tool| {
        tool.get("name")
            .and_then(Value::as_str)
            .is_some_and(|name| snapshot.contains(name) && permitted.contains(name))
    });
    // A filtered list is specific to this run: 2026-07-28 clients must not share it.
    if result.contains_key("cacheScope") {
        result.insert("cacheScope".to_owned(), Value::String("private".to_owned()));
    }
    true
}

/// Removes `denied` from `result.capabilities`.
pub fn strip_capabilities(value: &mut Value, denied: &[&str]) {
    if let Some(capabilities) = value
        .get_mut("result")
        .and_then(|r| r.get_mut("capabilities"))
        .and_then(Value::as_object_mut)
    {
        for capability in denied {
            capabilities.remove(*capability);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    const NAMES: [&str; 6] = ["a", "b", "c", "hidden", "smuggled", ""];

    /// Any JSON value, shallow, with strings drawn from the tool names above.
    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            prop::sample::select(NAMES.to_vec()).prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop::sample::select(vec!["name", "tools", "result", "error", "x"]),
                        inner
                    ),
                    0..4
                )
                .prop_map(|pairs| Value::Object(
                    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    /// A tool entry: usually an object with a name, sometimes anything at all.
    fn any_tool() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => prop::sample::select(NAMES.to_vec()).prop_map(|name| json!({"name": name, "inputSchema": {}})),
            1 => any_value(),
        ]
    }

    fn any_message() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop::collection::vec(any_tool(), 0..8)
                .prop_map(|tools| json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools, "cacheScope": "public"}})),
            any_value().prop_map(|result| json!({"jsonrpc": "2.0", "id": 1, "result": result})),
            any_value(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// Issue 10: whatever the upstream sends, what the filter passes on lists no tool
        /// outside the snapshot and the permitted set; when it cannot filter, it says so.
        #[test]
        fn no_tool_outside_the_permitted_set_survives(
            mut message in any_message(),
            permitted_all in any::<bool>(),
        ) {
            let snapshot: HashSet<&str> = ["a", "b", "hidden"].into_iter().collect();
            let permitted = if permitted_all {
                ToolSet::All
            } else {
                ToolSet::Only(["a", "c", "smuggled"].into_iter().map(str::to_owned).collect())
            };
            let before = message.clone();
            let ok = filter_tools(&mut message, &snapshot, &permitted);
            let tools = message.get("result").and_then(|r| r.get("tools"));
            if ok {
                if let Some(tools) = tools {
                    for tool in tools.as_array().into_iter().flatten() {
                        let name = tool.get("name").and_then(Value::as_str);
                        prop_assert!(name.is_some_and(|n| snapshot.contains(n) && permitted.contains(n)), "{tool}");
                    }
                    let scope = &message["result"]["cacheScope"];
                    prop_assert!(scope.is_null() || scope == "private", "{scope}");
                } else {
                    prop_assert!(before.get("result").is_none() && before.get("error").is_some());
                }
            } else {
                prop_assert!(!before["result"]["tools"].is_array());
            }
        }
    }

    #[test]
    fn capabilities_of_denied_methods_are_removed() {
        let mut answer =
            json!({"result": {"capabilities": {"tools": {}, "resources": {}, "logging": {}}}});
        strip_capabilities(&mut answer, &["resources", "prompts"]);
        assert_eq!(
            answer["result"]["capabilities"],
            json!({"tools": {}, "logging": {}})
        );
    }
}
