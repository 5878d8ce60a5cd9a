//! Defence in depth (SEC-4): any occurrence of the injected credential in upstream text
//! is replaced before anyone else sees it: in JSON bodies, SSE events and error pages the
//! data plane relays, and in the discovery errors the admin API reports.
//! The credential is searched for as sent and as it appears inside a JSON string.

use std::borrow::Cow;

use memchr::memmem;

pub const MASK: &str = "[REDACTED]";

/// `text` with every occurrence of `secret` masked; borrowed when there is none.
pub fn redact<'a>(text: &'a [u8], secret: Option<&str>) -> Cow<'a, [u8]> {
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return Cow::Borrowed(text);
    };
    let escaped = serde_json::to_string(secret).unwrap_or_default();
    let escaped = &escaped[1..escaped.len().saturating_sub(1).max(1)];
    let mut out = Cow::Borrowed(text);
    for needle in [secret, escaped] {
        if !needle.is_empty() && memmem::find(&out, needle.as_bytes()).is_some() {
            out = Cow::Owned(replace_all(&out, needle.as_bytes()));
        }
    }
    out
}

fn replace_all(text: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    let finder = memmem::Finder::new(needle);
    while let Some(at) = finder.find(rest) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(MASK.as_bytes());
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// [`redact`] for text.
pub fn redact_text(text: String, secret: Option<&str>) -> String {
    match redact(text.as_bytes(), secret) {
        Cow::Borrowed(_) => text,
        Cow::Owned(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence() {
        let out = redact(b"token s3cr3t and again s3cr3t.", Some("s3cr3t"));
        assert_eq!(&*out, b"token [REDACTED] and again [REDACTED].");
    }

    #[test]
    fn masks_the_json_escaped_form() {
        let body = serde_json::to_vec(&serde_json::json!({"m": "bad key a\"b\\c"})).unwrap();
        let out = redact(&body, Some("a\"b\\c"));
        assert!(
            !String::from_utf8_lossy(&out).contains("a\\\"b"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        assert!(String::from_utf8_lossy(&out).contains(MASK));
    }

    #[test]
    fn borrows_when_clean() {
        assert!(matches!(
            redact(b"nothing here", Some("s3cr3t")),
            Cow::Borrowed(_)
        ));
        assert!(matches!(redact(b"nothing here", None), Cow::Borrowed(_)));
    }
}
