//! The parser and classifier, by example and as properties over arbitrary input.

use proptest::prelude::*;
use serde_json::json;

use super::*;

const LENGTHS: Lengths = Lengths {
    method: 256,
    tool: 256,
    id: 256,
};

fn parse(body: &[u8]) -> Result<(Message, Value), Malformed> {
    super::parse(body, LENGTHS)
}

fn invalid(body: &[u8]) -> (String, Option<Value>) {
    match parse(body) {
        Err(Malformed::Invalid { why, id }) => (why, id),
        other => panic!("{other:?}"),
    }
}

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
    assert!(matches!(
        parse(b"[]").unwrap_err(),
        Malformed::Invalid { .. }
    ));
    assert!(matches!(
        parse(br#"{"id":1,"method":"x"}"#).unwrap_err(),
        Malformed::Invalid { .. }
    ));
    assert!(matches!(
        parse(br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#).unwrap_err(),
        Malformed::Invalid { .. }
    ));
    assert!(matches!(
        parse(br#"{"jsonrpc":"2.0","id":1}"#).unwrap_err(),
        Malformed::Invalid { .. }
    ));
}

/// Issue 10, defect 10: a first-wins parser upstream would run another tool than the one
/// decided on, so a repeated key anywhere refuses the message.
#[test]
fn duplicate_keys_anywhere_refuse_the_message() {
    for body in [
        &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_all","name":"echo"}}"#[..],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping"}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":1,"a":2}}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","n\u0061me":"x"}}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[{"k":1,"k":1}]}"#,
    ] {
        let (why, _) = invalid(body);
        assert!(why.contains("duplicate key"), "{why}");
    }
}

#[test]
fn encoding_tricks_are_refused() {
    for body in [
        &b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"to\xffls/call\"}"[..],
        br#"{"jsonrpc":"2.0","id":1,"method":"\ud800"}"#,
        br#"{"jsonrpc":"2.0","id":1e999,"method":"ping"}"#,
        b"\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
        br#"{"jsonrpc":"2.0","id":1,"method":"ping"} {"again":1}"#,
    ] {
        assert_eq!(
            parse(body).unwrap_err(),
            Malformed::Parse,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    assert_eq!(parse(deep.as_bytes()).unwrap_err(), Malformed::Parse);
}

#[test]
fn lengths_are_bounded_and_the_id_is_kept_when_known() {
    let long = "m".repeat(257);
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": long}).to_string();
    let (why, id) = invalid(body.as_bytes());
    assert!(why.contains("method is longer than 256"), "{why}");
    assert_eq!(id, Some(json!(7)));
    let body =
        json!({"jsonrpc": "2.0", "id": "x", "method": "tools/call", "params": {"name": long}})
            .to_string();
    let (why, id) = invalid(body.as_bytes());
    assert!(why.contains("tool name"), "{why}");
    assert_eq!(id, Some(json!("x")));
    let body = json!({"jsonrpc": "2.0", "id": long, "method": "ping"}).to_string();
    let (why, id) = invalid(body.as_bytes());
    assert!(why.contains("id is longer"), "{why}");
    assert_eq!(id, None, "an id over the limit is not echoed");
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": 5}});
    assert_eq!(invalid(body.to_string().as_bytes()).1, Some(json!(3)));
}

#[test]
fn ids_compare_as_json_rpc_ids() {
    let n = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    for (a, b) in [
        ("2", "2.0"),
        ("2", "2E+0"),
        ("1", "1e0"),
        ("5", "0.5e1"),
        ("0", "-0"),
        ("0", "-0.0"),
        ("30", "3.00e1"),
        ("-4", "-4.0"),
        ("18446744073709551615", "18446744073709551615"),
        ("\"a\"", "\"a\""),
    ] {
        assert!(same_id(&n(a), &n(b)), "{a} = {b}");
        assert!(same_id(&n(b), &n(a)), "{b} = {a}");
    }
    for (a, b) in [
        ("2", "\"2\""),
        ("2", "2.5"),
        ("9007199254740993", "9007199254740992.0"),
        ("-1", "18446744073709551615"),
        ("\"a\"", "\"A\""),
        ("1", "true"),
    ] {
        assert!(!same_id(&n(a), &n(b)), "{a} != {b}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the bytes, parsing answers without panicking, and what it accepts is an
    /// object whose classification agrees with its keys.
    #[test]
    fn parsing_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok((message, value)) = parse(&body) {
            prop_assert!(value.is_object());
            prop_assert_eq!(message.method().is_empty(), value.get("method").is_none());
        }
    }

    /// Messages built from JSON-ish pieces: the classifier agrees with the value, a
    /// method or tool over the limit is never accepted, and a reparse of what was
    /// accepted gives the same message.
    #[test]
    fn accepted_messages_are_unambiguous(
        method in "[a-z/]{0,12}|tools/call",
        name in proptest::option::of("[a-z_]{0,300}"),
        id in proptest::option::of(prop_oneof![any::<i64>().prop_map(|i| json!(i)), "[a-z0-9]{0,8}".prop_map(|s| json!(s)), any::<f64>().prop_map(|f| json!(f))]),
        duplicate in any::<bool>(),
    ) {
        let mut text = format!(r#"{{"jsonrpc":"2.0","method":{}"#, json!(method));
        if let Some(id) = &id {
            text.push_str(&format!(r#","id":{id}"#));
        }
        if let Some(name) = &name {
            text.push_str(&format!(r#","params":{{"name":{}}}"#, json!(name)));
        }
        if duplicate {
            text.push_str(r#","method":"ping""#);
        }
        text.push('}');
        match parse(text.as_bytes()) {
            Ok((message, value)) => {
                prop_assert!(!duplicate);
                prop_assert!(message.method().len() <= LENGTHS.method);
                prop_assert!(message.tool().is_none_or(|t| t.len() <= LENGTHS.tool));
                let again = parse(value.to_string().as_bytes()).unwrap();
                prop_assert_eq!(again.0.method(), message.method());
                prop_assert_eq!(again.0.tool(), message.tool());
            }
            Err(Malformed::Parse) => prop_assert!(false, "{}", text),
            Err(Malformed::Invalid { why, .. }) => prop_assert!(
                duplicate || why.contains("longer") || why.contains("id"),
                "{}", why
            ),
        }
    }

    /// Numeric ids: an integer equals its float spellings.
    #[test]
    fn integer_ids_equal_their_float_spellings(i in -1_000_000i64..1_000_000) {
        let float: Value = serde_json::from_str(&format!("{i}.0")).unwrap();
        let exp: Value = serde_json::from_str(&format!("{i}e0")).unwrap();
        prop_assert!(same_id(&json!(i), &float));
        prop_assert!(same_id(&json!(i), &exp));
        prop_assert!(!same_id(&json!(i), &json!(i.to_string())));
    }
}
