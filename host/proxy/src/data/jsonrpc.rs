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

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

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
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = Strict::deserialize(&mut de)
        .and_then(|strict| de.end().map(|()| strict.0))
        .map_err(|error| {
            if error.is_data() && error.to_string().starts_with(DUPLICATE) {
                StrictError::Duplicate
            } else {
                StrictError::Syntax
            }
        })?;
    Ok(value)
}

const DUPLICATE: &str = "duplicate key";

/// A JSON value read with every object's keys checked for repeats.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests;
