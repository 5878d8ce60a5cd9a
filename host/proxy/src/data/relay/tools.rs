//! The rewrites of an answer the relay makes: the `tools/list` filter and the removal of
//! denied capabilities, as pure functions of the message, so that their invariants can be
//! checked on any input (below: no tool outside the permitted set survives the filter,
//! whatever the upstream sends).

use std::borrow::Cow;
use std::collections::HashSet;

use portcullis_model::ToolSet;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::raw::{self, RawObject};
use crate::data::jsonrpc::Text;

/// What a `tools/list` answer holds, read for the filter.
pub enum ToolsAnswer<'a> {
    /// A result with a `tools` array, whose entries the filter kept so far.
    Listed(Listing<'a>),
    /// An error answer: nothing to filter.
    Error,
    /// A result that is not an object with a `tools` array, or neither result nor error.
    Malformed,
}

/// The `result` of a listing being filtered.
pub struct Listing<'a> {
    result: RawObject<'a>,
    /// The entries kept, in the upstream's order.
    pub tools: Vec<Listed<'a>>,
}

/// One kept entry of `result.tools`: its name and annotations read, its text as written.
pub struct Listed<'a> {
    pub name: Cow<'a, str>,
    pub annotations: Option<&'a RawValue>,
    entry: &'a RawValue,
}

/// Reads `message`'s `result.tools`, keeping the tools named in both `snapshot` and
/// `permitted` (an entry that is not an object with a string `name` is dropped).
///
/// `result` is `message`'s result read as an object (`None` when it has none, or one that
/// is not an object): the relay has read it already to see whether it lists tools.
pub fn filter_tools<'a>(
    message: &RawObject<'a>,
    result: Option<RawObject<'a>>,
    snapshot: &HashSet<&str>,
    permitted: &ToolSet,
) -> ToolsAnswer<'a> {
    if !message.contains_key("result") {
        return if message.contains_key("error") {
            ToolsAnswer::Error
        } else {
            ToolsAnswer::Malformed
        };
    }
    let Some(result) = result else {
        return ToolsAnswer::Malformed;
    };
    let Some(Ok(entries)) = result
        .get("tools")
        .map(|tools| serde_json::from_str::<Vec<&RawValue>>(tools.get()))
    else {
        return ToolsAnswer::Malformed;
    };
    let tools = entries
        .into_iter()
        .filter_map(|entry| {
            let Entry { name, annotations } = serde_json::from_str(entry.get()).ok()?;
            (snapshot.contains(name.as_ref()) && permitted.contains(name.as_ref())).then_some(
                Listed {
                    name,
                    annotations,
                    entry,
                },
            )
        })
        .collect();
    ToolsAnswer::Listed(Listing { result, tools })
}

/// What the filter reads of a tool entry: its string `name` and its `annotations`, every
/// other member skipped unread. Only an object is an entry (a derived struct would also
/// read the array `["a", null]` as a tool named `a`).
struct Entry<'a> {
    name: Cow<'a, str>,
    annotations: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for Entry<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Entry<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a tool object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry<'de>, A::Error> {
        let (mut name, mut annotations) = (None, None);
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match key.as_ref() {
                "name" => name = Some(map.next_value::<Text<'de>>()?.0),
                "annotations" => annotations = Some(map.next_value::<&'de RawValue>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
        Ok(Entry { name, annotations })
    }
}

impl Listing<'_> {
    /// The result with only the kept tools, to replace the message's `result` with.
    pub fn finish(mut self) -> Box<RawValue> {
        let entries: Vec<&RawValue> = self.tools.iter().map(|tool| tool.entry).collect();
        self.result.replace("tools", raw::to_raw(&entries));
        // A filtered list is specific to this run: 2026-07-28 clients must not share it.
        if self.result.contains_key("cacheScope") {
            self.result.replace("cacheScope", raw::to_raw(&"private"));
        }
        raw::to_raw(&self.result)
    }
}

/// Removes `denied` from `result.capabilities` of `message`.
pub fn strip_capabilities(message: &mut RawObject<'_>, denied: &[&str]) {
    let Some(mut result) = message.get("result").map(raw::value) else {
        return;
    };
    let Some(capabilities) = result
        .get_mut("capabilities")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for capability in denied {
        capabilities.remove(*capability);
    }
    message.replace("result", raw::to_raw(&result));
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
            message in any_message(),
            permitted_all in any::<bool>(),
        ) {
            let snapshot: HashSet<&str> = ["a", "b", "hidden"].into_iter().collect();
            let permitted = if permitted_all {
                ToolSet::All
            } else {
                ToolSet::Only(["a", "c", "smuggled"].into_iter().map(str::to_owned).collect())
            };
            let text = serde_json::to_vec(&message).unwrap();
            let Some(mut object) = RawObject::parse(&text) else {
                prop_assert!(!message.is_object());
                return Ok(());
            };
            let result = object.get("result").and_then(RawObject::of);
            match filter_tools(&object, result, &snapshot, &permitted) {
                ToolsAnswer::Listed(listing) => {
                    let kept = message["result"]["tools"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|tool| {
                            tool.get("name")
                                .and_then(Value::as_str)
                                .is_some_and(|n| snapshot.contains(n) && permitted.contains(n))
                        })
                        .cloned()
                        .collect::<Vec<_>>();
                    object.replace("result", listing.finish());
                    let after: Value = serde_json::from_slice(&object.to_vec()).unwrap();
                    prop_assert_eq!(&after["result"]["tools"], &Value::Array(kept));
                    let scope = &after["result"]["cacheScope"];
                    prop_assert!(scope.is_null() || scope == "private", "{scope}");
                    prop_assert_eq!(&after["id"], &message["id"]);
                }
                ToolsAnswer::Error => {
                    prop_assert!(message.get("result").is_none() && message.get("error").is_some());
                }
                ToolsAnswer::Malformed => prop_assert!(!message["result"]["tools"].is_array()),
            }
        }
    }

    /// Hostile spellings: a name or key written with escapes is read as any client reads
    /// it, an entry shaped like a tool but not an object is dropped, and a kept entry goes
    /// out as the upstream wrote it.
    #[test]
    fn entries_are_read_as_a_client_reads_them() {
        let text = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[
            {"n\u0061me":"a","inputSchema":{"x":[1,2]}},
            {"name":"\u0068idden"},
            ["a",null],
            {"name":["a"]},
            {"name":"b"},
            {"name":"a", "annotations":{"readOnlyHint":true}}
        ],"nextCursor":"c"}}"#;
        assert!(crate::data::jsonrpc::strict_check(text).is_ok());
        let mut message = RawObject::parse(text).unwrap();
        let snapshot: HashSet<&str> = ["a", "hidden"].into_iter().collect();
        let permitted = ToolSet::Only(["a".to_owned()].into_iter().collect());
        let result = message.get("result").and_then(RawObject::of);
        let ToolsAnswer::Listed(listing) = filter_tools(&message, result, &snapshot, &permitted)
        else {
            panic!("a listing");
        };
        let names: Vec<&str> = listing.tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, ["a", "a"]);
        assert!(listing.tools[1].annotations.is_some());
        message.replace("result", listing.finish());
        let out = String::from_utf8(message.to_vec()).unwrap();
        assert!(
            out.contains(r#"{"n\u0061me":"a","inputSchema":{"x":[1,2]}}"#),
            "{out}"
        );
        assert!(out.contains(r#""nextCursor":"c""#), "{out}");
        let duplicate = br#"{"id":1,"result":{"tools":[{"name":"a","name":"hidden"}]}}"#;
        assert!(crate::data::jsonrpc::strict_check(duplicate).is_err());
    }

    #[test]
    fn capabilities_of_denied_methods_are_removed() {
        let text =
            br#"{"id":1,"result":{"capabilities":{"tools":{},"resources":{},"logging":{}}}}"#;
        let mut answer = RawObject::parse(text).unwrap();
        strip_capabilities(&mut answer, &["resources", "prompts"]);
        let answer: Value = serde_json::from_slice(&answer.to_vec()).unwrap();
        assert_eq!(
            answer,
            json!({"id": 1, "result": {"capabilities": {"tools": {}, "logging": {}}}})
        );
    }
}
