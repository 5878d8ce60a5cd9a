//! JSON-RPC as the data plane needs it: parsing and classifying one client message.
//!
//! The proxy forwards messages as the bytes it received; it parses them only to learn
//! the method, id and tool name a decision needs. What it answers when a message is not
//! acceptable is the error catalogue's (`catalogue`).

use serde_json::Value;

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

/// Why a body is not one JSON-RPC message (ERR-2).
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Not JSON at all: -32700.
    Parse,
    /// JSON, but a batch or not a JSON-RPC 2.0 message: -32600.
    Invalid(&'static str),
}

pub fn parse(body: &[u8]) -> Result<(Message, Value), Malformed> {
    let value: Value = serde_json::from_slice(body).map_err(|_| Malformed::Parse)?;
    let object = match &value {
        Value::Object(object) => object,
        Value::Array(_) => return Err(Malformed::Invalid("JSON-RPC batches are not supported")),
        _ => return Err(Malformed::Invalid("the body must be one JSON-RPC message")),
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Malformed::Invalid("the message is not JSON-RPC 2.0"));
    }
    let id = object.get("id").cloned();
    if matches!(
        id,
        Some(Value::Null) | Some(Value::Bool(_)) | Some(Value::Array(_)) | Some(Value::Object(_))
    ) {
        return Err(Malformed::Invalid(
            "a JSON-RPC id must be a string or a number",
        ));
    }
    let params = object.get("params").cloned().unwrap_or(Value::Null);
    let message = match (object.get("method"), id) {
        (Some(Value::String(method)), Some(id)) => Message::Request {
            id,
            method: method.clone(),
            params,
        },
        (Some(Value::String(method)), None) => Message::Notification {
            method: method.clone(),
            params,
        },
        (Some(_), _) => return Err(Malformed::Invalid("the method must be a string")),
        (None, Some(id)) if object.contains_key("result") || object.contains_key("error") => {
            Message::Response { id }
        }
        (None, _) => return Err(Malformed::Invalid("the message has no method")),
    };
    Ok((message, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        let (m, _) =
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#)
                .unwrap();
        assert_eq!(m.method(), "tools/call");
        assert_eq!(m.tool(), Some("echo"));
        let (m, _) = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(m, Message::Notification { .. }));
        let (m, _) = parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert!(matches!(m, Message::Response { .. }));
    }

    #[test]
    fn refuses_what_is_not_one_message() {
        assert_eq!(parse(b"{not json").unwrap_err(), Malformed::Parse);
        assert!(matches!(parse(b"[]").unwrap_err(), Malformed::Invalid(_)));
        assert!(matches!(
            parse(br#"{"id":1,"method":"x"}"#).unwrap_err(),
            Malformed::Invalid(_)
        ));
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#).unwrap_err(),
            Malformed::Invalid(_)
        ));
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","id":1}"#).unwrap_err(),
            Malformed::Invalid(_)
        ));
    }
}
