//! JSON-RPC as the data plane needs it: parsing and classifying one client message, and
//! comparing ids.
//!
//! The proxy forwards messages as the bytes it received; it parses them only to learn
//! the method, id and tool name a decision needs. So that no other parser can read the
//! forwarded bytes differently from the message the decision was made on, parsing is
//! strict: a duplicate key at any depth, invalid UTF-8, a lone surrogate, a number out of
//! range or nesting deeper than serde_json's limit (128) refuses the whole message. Method,
//! tool name and id are bounded in length ([`Lengths`]). What the proxy answers when a
//! message is not acceptable is the error catalogue's (`catalogue`).
//!
//! Ids are compared as JSON-RPC ids ([`same_id`]): strings by string, numbers by numeric
//! value, so `2`, `2.0`, `2E+0` and `0.2e1` are one id, as the SDKs that answer `2.0` with
//! `2` read them.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// What one client-to-server message is.
#[derive(Debug)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    /// An answer to a server-to-client request (`result` or `error`).
    Response {
        id: Value,
    },
}

impl Message {
    pub fn method(&self) -> &str {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => method,
            Message::Response { .. } => "",
        }
    }

    pub fn id(&self) -> Option<&Value> {
        match self {
            Message::Request { id, .. } | Message::Response { id } => Some(id),
            Message::Notification { .. } => None,
        }
    }

    pub fn params(&self) -> Option<&Value> {
        match self {
            Message::Request { params, .. } | Message::Notification { params, .. } => Some(params),
            Message::Response { .. } => None,
        }
    }

    /// `params.name` of a `tools/call`.
    pub fn tool(&self) -> Option<&str> {
        (self.method() == "tools/call")
            .then(|| self.params()?.get("name")?.as_str())
            .flatten()
    }
}

/// Why a body is not one acceptable JSON-RPC message (ERR-2).
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Not JSON at all: -32700.
    Parse,
    /// JSON, but a batch, not a JSON-RPC 2.0 message, ambiguous or over a length limit:
    /// -32600, with the id when it is known.
    Invalid { why: String, id: Option<Value> },
}

impl Malformed {
    fn invalid(why: impl Into<String>) -> Self {
        Malformed::Invalid {
            why: why.into(),
            id: None,
        }
    }
}

/// The longest method, tool name and id a message may carry, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Lengths {
    pub method: usize,
    pub tool: usize,
    pub id: usize,
}

/// Parses `body` strictly as one JSON-RPC message.
pub fn parse(body: &[u8], lengths: Lengths) -> Result<(Message, Value), Malformed> {
    let value = strict_value(body).map_err(|error| match error {
        StrictError::Duplicate => {
            Malformed::invalid("the message has a duplicate key; send each key of an object once")
        }
        StrictError::Syntax => Malformed::Parse,
    })?;
    let object = match &value {
        Value::Object(object) => object,
        Value::Array(_) => return Err(Malformed::invalid("JSON-RPC batches are not supported")),
        _ => return Err(Malformed::invalid("the body must be one JSON-RPC message")),
    };
    let id = object.get("id").cloned();
    let with_id = |why: String| Malformed::Invalid {
        why,
        id: id.clone().filter(is_id),
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(with_id("the message is not JSON-RPC 2.0".to_owned()));
    }
    if let Some(id) = &id {
        if !is_id(id) {
            return Err(Malformed::invalid(
                "a JSON-RPC id must be a string or a number",
            ));
        }
        if id_len(id) > lengths.id {
            return Err(Malformed::invalid(format!(
                "the id is longer than {} bytes",
                lengths.id
            )));
        }
    }
    let method = match object.get("method") {
        Some(Value::String(method)) if method.len() > lengths.method => {
            return Err(with_id(format!(
                "the method is longer than {} bytes",
                lengths.method
            )));
        }
        Some(Value::String(method)) => Some(method.clone()),
        Some(_) => return Err(with_id("the method must be a string".to_owned())),
        None => None,
    };
    let params = object.get("params").cloned().unwrap_or(Value::Null);
    if method.as_deref() == Some("tools/call") {
        match params.get("name") {
            Some(Value::String(name)) if name.len() > lengths.tool => {
                return Err(with_id(format!(
                    "the tool name is longer than {} bytes",
                    lengths.tool
                )));
            }
            None | Some(Value::String(_)) => {}
            Some(_) => return Err(with_id("params.name must be a string".to_owned())),
        }
    }
    let message = match (method, id) {
        (Some(method), Some(id)) => Message::Request { id, method, params },
        (Some(method), None) => Message::Notification { method, params },
        (None, Some(id)) if object.contains_key("result") || object.contains_key("error") => {
            Message::Response { id }
        }
        (None, id) => {
            return Err(Malformed::Invalid {
                why: "the message has no method".to_owned(),
                id,
            });
        }
    };
    Ok((message, value))
}

/// Whether `value` can be a JSON-RPC id: a string or a number.
pub fn is_id(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_))
}

fn id_len(id: &Value) -> usize {
    match id {
        Value::String(s) => s.len(),
        other => other.to_string().len(),
    }
}

/// Whether two ids are the same JSON-RPC id: strings by string, numbers by value.
pub fn same_id(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => same_number(a, b),
        _ => false,
    }
}

fn same_number(a: &Number, b: &Number) -> bool {
    match (integer(a), integer(b)) {
        (Some(a), Some(b)) => a == b,
        (Some(i), None) => float_is_integer(b.as_f64(), i),
        (None, Some(i)) => float_is_integer(a.as_f64(), i),
        (None, None) => a.as_f64().is_some_and(|a| Some(a) == b.as_f64()),
    }
}

fn integer(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// Whether the float `f` is exactly the integer `i`.
fn float_is_integer(f: Option<f64>, i: i128) -> bool {
    f.is_some_and(|f| f.fract() == 0.0 && f == i as f64 && f as i128 == i)
}

/// Why [`strict_value`] refused a text.
#[derive(Debug, PartialEq, Eq)]
pub enum StrictError {
    /// Not JSON: syntax, encoding, a number out of range, nesting too deep.
    Syntax,
    /// An object has the same key twice (after unescaping).
    Duplicate,
}

/// `text` as a JSON value, refused when any object in it repeats a key.
pub fn strict_value(text: &[u8]) -> Result<Value, StrictError> {
    strict_check(text)?;
    serde_json::from_slice(text).map_err(|_| StrictError::Syntax)
}

/// Whether `text` is one JSON value in which no object repeats a key, read without
/// building it: a reader that only needs parts of a large message (the relay's
/// `tools/list` filter) checks the whole of it here, then reads the parts it needs
/// borrowed from `text`.
pub fn strict_check(text: &[u8]) -> Result<(), StrictError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    Checked::deserialize(&mut de)
        .and_then(|Checked| de.end())
        .map_err(|error| {
            if error.is_data() && error.to_string().starts_with(DUPLICATE) {
                StrictError::Duplicate
            } else {
                StrictError::Syntax
            }
        })
}

/// [`strict_check`] of `text` read where it stands in a message, as a member of an
/// object: one level down, so that the nesting limit counts as for the whole message.
pub fn strict_check_member(text: &str) -> Result<(), StrictError> {
    let mut nested = Vec::with_capacity(text.len() + 2);
    nested.push(b'[');
    nested.extend_from_slice(text.as_bytes());
    nested.push(b']');
    strict_check(&nested)
}

const DUPLICATE: &str = "duplicate key";

/// An object with more keys than this checks them for repeats in a hash set rather than
/// by comparing each with those before it, so a huge object costs linear time.
const LINEAR_KEYS: usize = 16;

/// A JSON value that was read through, every object's keys checked for repeats.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckVisitor)
    }
}

struct CheckVisitor;

impl<'de> Visitor<'de> for CheckVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Checked, E> {
        if v.is_finite() {
            Ok(Checked)
        } else {
            Err(E::custom("number out of range"))
        }
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_none<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while let Some(Checked) = seq.next_element()? {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut keys: Vec<Text<'de>> = Vec::new();
        let mut many: HashSet<Text<'de>> = HashSet::new();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let repeated = if many.is_empty() {
                let repeated = keys.contains(&key);
                keys.push(key);
                if keys.len() > LINEAR_KEYS {
                    many.extend(keys.drain(..));
                }
                repeated
            } else {
                !many.insert(key)
            };
            if repeated {
                return Err(de::Error::custom(DUPLICATE));
            }
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

/// A JSON string (an object key, or a value read as a string), borrowed from the text
/// unless it was written with escapes.
#[derive(PartialEq, Eq, Hash)]
pub struct Text<'de>(pub Cow<'de, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'a>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Text<'a>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Text<'a>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

#[cfg(test)]
mod tests;
