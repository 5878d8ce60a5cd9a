//! The event-stream reader by example, and as properties: chunking never changes the
//! events, the bound always holds, and what is written reads back the same.

use proptest::prelude::*;

use super::*;

fn events(text: &[u8], max: usize) -> Result<Vec<Event>, TooLarge> {
    let mut parser = Parser::new(max);
    let mut out = Vec::new();
    parser.push(text, &mut out)?;
    Ok(out)
}

#[test]
fn reads_fields_line_endings_and_comments() {
    let text =
        b": comment\r\nid: 7\revent: message\ndata: {\"a\":1}\ndata: more\r\nretry: 10\n\nid:8\n\n";
    let got = events(text, 1 << 20).unwrap();
    assert_eq!(
        got,
        [
            Event {
                id: Some("7".into()),
                event: Some("message".into()),
                data: Some("{\"a\":1}\nmore".into()),
                retry: Some(10),
            },
            Event {
                id: Some("8".into()),
                ..Event::default()
            }
        ]
    );
}

/// Issue 10, defect 21: an event without a newline cannot grow the proxy.
#[test]
fn an_endless_event_is_refused_at_the_bound() {
    let mut parser = Parser::new(1024);
    let mut out = Vec::new();
    assert!(parser.push(b"data: ", &mut out).is_ok());
    let chunk = vec![b'x'; 300];
    let mut refused = false;
    for _ in 0..10 {
        if parser.push(&chunk, &mut out).is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused);
    // Many short lines of one event count too.
    let many = "data: x\n".repeat(200);
    assert_eq!(events(many.as_bytes(), 1024), Err(TooLarge));
}

#[test]
fn encoding_keeps_fields_on_their_lines() {
    let event = Event {
        id: Some("a\nevent: injected".into()),
        event: Some("message".into()),
        data: Some("line one\nline two".into()),
        retry: None,
    };
    let text = event.encode();
    let back = events(&text, 1 << 20).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].id.as_deref(), Some("aevent: injected"));
    assert_eq!(back[0].data.as_deref(), Some("line one\nline two"));
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,20}".prop_map(|v| format!("data: {v}")),
        "[a-z0-9]{0,8}".prop_map(|v| format!("id: {v}")),
        Just("event: message".to_owned()),
        "[0-9]{1,4}".prop_map(|v| format!("retry: {v}")),
        "[ -~]{0,10}".prop_map(|v| format!(":{v}")),
        Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// However the bytes are cut, the same events come out.
    #[test]
    fn chunking_never_changes_the_events(
        lines in proptest::collection::vec(field(), 0..30),
        ending in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        cut in 1usize..9,
    ) {
        let text = lines.iter().map(|l| format!("{l}{ending}")).collect::<String>();
        let whole = events(text.as_bytes(), 1 << 20).unwrap();
        let mut parser = Parser::new(1 << 20);
        let mut pieces = Vec::new();
        for chunk in text.as_bytes().chunks(cut) {
            parser.push(chunk, &mut pieces).unwrap();
        }
        prop_assert_eq!(whole, pieces);
    }

    /// Arbitrary bytes never panic the reader, and it never holds more than its bound.
    #[test]
    fn arbitrary_bytes_stay_within_the_bound(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        max in 16usize..512,
    ) {
        let mut parser = Parser::new(max);
        let mut out = Vec::new();
        for chunk in bytes.chunks(64) {
            if parser.push(chunk, &mut out).is_err() {
                break;
            }
            prop_assert!(parser.line.len() + parser.current.bytes <= max);
        }
        for event in &out {
            prop_assert!(event.data.as_ref().map_or(0, String::len) <= max);
        }
    }

    /// What the relay writes reads back as the same event.
    #[test]
    fn written_events_read_back(
        id in proptest::option::of("[a-z0-9]{1,8}"),
        data in proptest::option::of("[ -~]{0,40}(\n[ -~]{0,40}){0,3}"),
        retry in proptest::option::of(0u64..100_000),
    ) {
        let event = Event { id, event: Some("message".into()), data, retry };
        let back = events(&event.encode(), 1 << 20).unwrap();
        prop_assert_eq!(back, vec![event]);
    }
}
