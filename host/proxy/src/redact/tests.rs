//! Every form of the secret is masked, by example and as a property over arbitrary
//! encodings and surrounding text.

use base64::Engine;
use proptest::prelude::*;

use super::*;

const SECRET: &str = "sk-live/4f+9a c\"d\\e";

/// A redactor holds the secret's forms; printing it for a log shows none of them.
#[test]
fn a_redactor_never_prints_what_it_masks() {
    let secret = "sk-debug-print-0123456789";
    let printed = format!("{:?}", Redactor::new([secret]));
    let base64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret);
    assert!(printed.starts_with("Redactor"), "{printed}");
    assert!(
        !printed.contains("sk-debug") && !printed.contains(&base64[..12]),
        "{printed}"
    );
    assert!(!printed.contains("115, 107"), "{printed}");
}

fn masked(text: &str) -> String {
    let redactor = Redactor::new([SECRET]);
    String::from_utf8(redactor.redact(text.as_bytes()).into_owned()).unwrap()
}

#[test]
fn masks_every_occurrence() {
    let out = redact(b"token s3cr3t and again s3cr3t.", Some("s3cr3t"));
    assert_eq!(&*out, b"token [REDACTED] and again [REDACTED].");
}

#[test]
fn borrows_when_clean() {
    assert!(matches!(
        redact(b"nothing here", Some("s3cr3t")),
        Cow::Borrowed(_)
    ));
    assert!(matches!(redact(b"nothing here", None), Cow::Borrowed(_)));
    assert!(matches!(
        redact(b"nothing here", Some("")),
        Cow::Borrowed(_)
    ));
}

/// Issue 10, defect 11: the forms an upstream echoes a credential in.
#[test]
fn masks_encoded_forms() {
    let json = serde_json::to_string(SECRET).unwrap();
    let slash_escaped = json.replace('/', "\\/");
    let unicode: String = SECRET
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let url: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    let percent_all: String = SECRET.bytes().map(|b| format!("%{b:02X}")).collect();
    let mixed = "sk-live\\/4f%2B9a+c\\\"d\\\\\\u0065";
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("user:{SECRET}"));
    let url_safe = base64::engine::general_purpose::URL_SAFE.encode(format!("xy{SECRET}z"));
    for form in [
        json.as_str(),
        &slash_escaped,
        &unicode,
        &url,
        &percent_all,
        mixed,
        &basic,
        &url_safe,
    ] {
        let text = format!("before {form} after");
        let out = masked(&text);
        assert!(out.contains(MASK), "{form} was not masked: {out}");
        assert!(
            out.starts_with("before ") && out.ends_with(" after"),
            "{out}"
        );
    }
}

/// Found by `no_form_of_the_secret_survives`: a backslash of the secret written as an
/// escape, then a byte written as `\uXXXX`.
#[test]
fn an_escaped_backslash_before_a_unicode_escape() {
    let redactor = Redactor::new([" 0AA0\\00"]);
    let out = redactor.redact_text(" 0AA0\\\\\\u00300".to_owned());
    assert_eq!(out, MASK);
}

#[test]
fn extra_values_are_masked_and_short_ones_left_alone() {
    let redactor = Redactor::new(["a-long-team-secret-value", "t1"]);
    let out = redactor.redact_text("x a-long-team-secret-value t1 y".to_owned());
    assert_eq!(out, "x [REDACTED] [REDACTED] y");
}

#[test]
fn a_stream_is_masked_across_chunk_boundaries() {
    let text = format!(
        "{0}..{1}..{0}",
        SECRET,
        serde_json::to_string(SECRET).unwrap()
    );
    for size in [1, 2, 3, 7, 64] {
        let mut stream = StreamRedactor::new(Redactor::new([SECRET]));
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(size) {
            out.extend(stream.push(chunk));
        }
        out.extend(stream.finish());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            masked(&text),
            "chunks of {size}"
        );
    }
}

/// One way of writing a byte of the secret. A backslash is never written raw: a raw `\`
/// followed by an escape (`\` then `\u0030`) reads as the escape `\\`, a text no
/// encoder writes (the regression case below).
fn encode_byte(b: u8, how: u8) -> String {
    match how % 5 {
        0 if b == b'\\' => "\\\\".to_owned(),
        0 => (b as char).to_string(),
        1 => format!("%{b:02x}"),
        2 => format!("%{b:02X}"),
        3 => format!("\\u{:04X}", b),
        _ => match b {
            b'/' => "\\/".to_owned(),
            b'"' => "\\\"".to_owned(),
            b'\\' => "\\\\".to_owned(),
            b' ' => "+".to_owned(),
            _ => (b as char).to_string(),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the surrounding text and however each byte is written, no form of the
    /// secret survives, in one piece or streamed in chunks.
    #[test]
    fn no_form_of_the_secret_survives(
        secret in "[ -~]{8,24}",
        hows in proptest::collection::vec(any::<u8>(), 24),
        before in "[ -~]{0,40}",
        after in "[ -~]{0,40}",
        chunk in 1usize..16,
    ) {
        let form: String = secret.bytes().zip(hows.iter().cycle()).map(|(b, h)| encode_byte(b, *h)).collect();
        let text = format!("{before}{form}{after}");
        let redactor = Redactor::new([secret.as_str()]);
        let out = redactor.redact(text.as_bytes()).into_owned();
        let out = String::from_utf8_lossy(&out).into_owned();
        prop_assert!(out.contains(MASK), "{} in {} gave {}", secret, text, out);
        prop_assert!(!out.contains(&secret), "{}", out);
        let mut stream = StreamRedactor::new(redactor.clone());
        let mut streamed = Vec::new();
        for piece in text.as_bytes().chunks(chunk) {
            streamed.extend(stream.push(piece));
        }
        streamed.extend(stream.finish());
        prop_assert!(!String::from_utf8_lossy(&streamed).contains(&secret));
        prop_assert!(String::from_utf8_lossy(&streamed).contains(MASK));
    }

    /// Arbitrary bytes (with the secret planted at random) never panic the redactor and
    /// never keep the secret.
    #[test]
    fn arbitrary_text_is_safe(
        text in proptest::collection::vec(any::<u8>(), 0..256),
        at in any::<prop::sample::Index>(),
    ) {
        let mut text = text;
        let index = at.index(text.len() + 1);
        text.splice(index..index, b"Zsecret-value-1".iter().copied());
        let redactor = Redactor::new(["Zsecret-value-1"]);
        let out = redactor.redact(&text);
        prop_assert!(memchr::memmem::find(&out, b"Zsecret-value-1").is_none());
    }
}

/// A value's own `%` or `\` followed by text that reads as an escape is still the value
/// (found by the property test: `…aa%` followed by `00`).
#[test]
fn a_raw_percent_or_backslash_before_escape_like_text_is_still_found() {
    for (secret, text) in [
        ("aA Aa0aaa0aAAAa  a aa%", "x aA Aa0aaa0aAAAa  a aa%00 y"),
        ("key-%41-end", "key-%41-end"),
        ("key-\\u0041", "{\"k\": \"key-\\u0041\"}"),
    ] {
        let redactor = Redactor::new([secret]);
        let out = String::from_utf8(redactor.redact(text.as_bytes()).into_owned()).unwrap();
        assert!(out.contains(MASK), "{secret:?} in {text:?} gave {out:?}");
        assert!(!out.contains(secret), "{out:?}");
    }
}
