//! A borrowed view of an upstream message that
//! [`strict_check`](crate::data::jsonrpc::strict_check) accepted: an
//! object's members as their raw JSON text, read without building their values, and the
//! object written back with some members replaced.
//!
//! Why: a `tools/list` answer of a hundred tools is tens of kilobytes; building it as a
//! `serde_json::Value` (a map and a string per key, per tool, per schema) and writing it
//! back was most of the proxy's CPU on that path. Through this view the relay parses
//! each tool's `name` and, for a kept tool, its `annotations`; the tools it keeps go out
//! byte for byte as the upstream wrote them, and the other members in their order.
//!
//! Invariant: only text the strict check accepted is read here, so no object has a key
//! twice and every member read is the one any other parser would read.

use std::borrow::Cow;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::data::jsonrpc::{self, Text};

/// The most members [`RawObject::strict_except`] compares pairwise.
const FEW_MEMBERS: usize = 16;

/// One JSON object, its members in the order written.
pub struct RawObject<'a> {
    members: Vec<(Cow<'a, str>, Member<'a>)>,
}

enum Member<'a> {
    Written(&'a RawValue),
    Replaced(Box<RawValue>),
}

impl<'a> RawObject<'a> {
    /// `text` as an object; `None` when it is not one (or not JSON).
    pub fn parse(text: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(text).ok()
    }

    /// The value `raw` as an object; `None` when it is not one.
    pub fn of(raw: &'a RawValue) -> Option<Self> {
        serde_json::from_str(raw.get()).ok()
    }

    /// The member `key` as the text wrote it (a member replaced since is not read back).
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members.iter().find_map(|(name, member)| match member {
            Member::Written(raw) if name == key => Some(*raw),
            _ => None,
        })
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.members.iter().any(|(name, _)| name == key)
    }

    /// Whether the object as a whole passes the strict check, given that its member
    /// `trusted` does: no key twice, and every other member strict where it stands.
    /// `false`, not known, for an object of more than [`FEW_MEMBERS`] members.
    pub fn strict_except(&self, trusted: &str) -> bool {
        let few = self.members.len() <= FEW_MEMBERS;
        few && self.members.iter().enumerate().all(|(i, (name, member))| {
            let once = self.members[..i].iter().all(|(earlier, _)| earlier != name);
            once && match member {
                Member::Written(raw) => {
                    name == trusted || jsonrpc::strict_check_member(raw.get()).is_ok()
                }
                Member::Replaced(_) => false,
            }
        })
    }

    /// Replaces the member `key`, where it stands, when there is one.
    pub fn replace(&mut self, key: &str, value: Box<RawValue>) {
        if let Some((_, member)) = self.members.iter_mut().find(|(name, _)| name == key) {
            *member = Member::Replaced(value);
        }
    }

    /// The object as JSON text.
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `raw` as a string; `None` when it is not one.
pub fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Text>(raw.get())
        .ok()
        .map(|text| text.0)
}

/// `raw` as a value, for the small parts read whole (an id, annotations, capabilities).
pub fn value(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

/// `value` written as raw JSON text, to replace a member with (`null` for what JSON
/// cannot hold, which no value read from a message is).
pub fn to_raw(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

impl Serialize for RawObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.members.len()))?;
        for (name, member) in &self.members {
            let raw: &RawValue = match member {
                Member::Written(raw) => raw,
                Member::Replaced(raw) => raw,
            };
            map.serialize_entry(name, raw)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = RawObject<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some((Text(name), raw)) = map.next_entry::<Text<'de>, &'de RawValue>()? {
            members.push((name, Member::Written(raw)));
        }
        Ok(RawObject { members })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn members_keep_their_order_and_text_and_replacements_stand_in_place() {
        let text = br#"{"z":1,"id":7,"result":{"b":[1, 2],"a":"x"},"n\u0061me":"y"}"#;
        assert!(crate::data::jsonrpc::strict_check(text).is_ok());
        let mut object = RawObject::parse(text).unwrap();
        assert_eq!(
            object.get("result").unwrap().get(),
            r#"{"b":[1, 2],"a":"x"}"#
        );
        assert_eq!(string(object.get("name").unwrap()).as_deref(), Some("y"));
        assert!(string(object.get("z").unwrap()).is_none());
        object.replace("id", to_raw(&json!("client-id")));
        object.replace("absent", to_raw(&json!(1)));
        assert!(object.get("id").is_none() && object.contains_key("id"));
        assert_eq!(
            String::from_utf8(object.to_vec()).unwrap(),
            r#"{"z":1,"id":"client-id","result":{"b":[1, 2],"a":"x"},"name":"y"}"#
        );
        assert!(RawObject::parse(b"[1]").is_none());
        assert!(RawObject::of(object.get("z").unwrap()).is_none());
    }

    /// The strict check member by member (`strict_except`, then the trusted member where
    /// it stands) agrees with the check of the whole text, the nesting limit included.
    #[test]
    fn the_strict_check_member_by_member_is_the_whole_check() {
        use crate::data::jsonrpc::{strict_check, strict_check_member};
        let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let mut texts: Vec<String> = [
            r#"{"a":1,"b":{"c":2}}"#,
            r#"{"a":1,"a":2,"b":1}"#,
            r#"{"a":1,"b":{"x":1,"x":2}}"#,
            r#"{"a":{"x":1,"\u0078":2},"b":1}"#,
            r#"{"a":"\ud800","b":1}"#,
            r#"{"a":1e999,"b":1}"#,
            r#"{"a":1,"b":1,"b":1}"#,
        ]
        .map(str::to_owned)
        .into();
        for depth in [126, 127, 128] {
            texts.push(format!(r#"{{"a":{},"b":1}}"#, nested(depth)));
            texts.push(format!(r#"{{"a":1,"b":{}}}"#, nested(depth)));
        }
        for text in texts {
            let whole = strict_check(text.as_bytes()).is_ok();
            let by_member = RawObject::parse(text.as_bytes()).is_some_and(|object| {
                object.strict_except("b")
                    && strict_check_member(object.get("b").unwrap().get()).is_ok()
            });
            assert_eq!(by_member, whole, "{text}");
        }
        let many: Vec<String> = (0..=FEW_MEMBERS).map(|i| format!(r#""k{i}":1"#)).collect();
        let many = format!("{{{},\"b\":1}}", many.join(","));
        assert!(strict_check(many.as_bytes()).is_ok());
        assert!(
            !RawObject::parse(many.as_bytes())
                .unwrap()
                .strict_except("b"),
            "past FEW_MEMBERS the answer is `not known`"
        );
    }
}
