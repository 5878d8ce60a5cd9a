//! Defence in depth (SEC-4): the injected credential, and any other confidential value of
//! the request (an owner's extra header value of [`MIN_EXTRA_BYTES`] or more), is masked
//! in upstream text before anyone else sees it: JSON bodies, SSE events (every field),
//! error pages the data plane relays, and the discovery errors the admin API reports.
//!
//! A value is found in every form an upstream could echo it in: as sent; inside a JSON
//! string, where any character may be written as `\uXXXX` (or `\/`, `\\`, `\"`, ...);
//! URL-encoded (`%XX` for any byte, `+` for a space), and any mix of those; and as
//! base64 (standard and URL-safe alphabets, at each of the three alignments it can have
//! inside a longer base64 text, such as a `Basic` credential) for values of at least
//! [`MIN_BASE64_BYTES`]. A match is found on the decoded text and its whole encoded span
//! is replaced with [`MASK`].
//!
//! [`StreamRedactor`] does the same over a body that is relayed chunk by chunk: it holds
//! back the few bytes that could start a match until the next chunk shows whether they
//! do.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

pub const MASK: &str = "[REDACTED]";

/// Values shorter than this have no base64 forms searched for (too many false hits).
pub const MIN_BASE64_BYTES: usize = 8;
/// An owner's extra header value is treated as confidential from this length on; shorter
/// ones (`Notion-Version: 2025-09-03`, a team id) are configuration, not secrets.
pub const MIN_EXTRA_BYTES: usize = 16;
/// The longest encoding of one byte this module decodes (`\uXXXX`).
const MAX_UNIT: usize = 6;

/// The forms of a set of confidential values to mask. They are the secrets themselves,
/// so they are wiped when the redactor is dropped and never printed.
#[derive(Clone, Default)]
pub struct Redactor {
    needles: Vec<Zeroizing<Vec<u8>>>,
    /// The longest encoded span a match can have.
    longest: usize,
}

impl Redactor {
    /// A redactor of `values` (empty ones are ignored).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for value in values.into_iter().filter(|v| !v.is_empty()) {
            needles.push(Zeroizing::new(value.as_bytes().to_vec()));
            if value.len() >= MIN_BASE64_BYTES {
                needles.extend(base64_forms(value.as_bytes()));
            }
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        let longest = needles
            .iter()
            .map(|n| n.len() * MAX_UNIT)
            .max()
            .unwrap_or(0);
        Self { needles, longest }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every form of every value masked; borrowed when there is none.
    pub fn redact<'a>(&self, text: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out = Cow::Borrowed(text);
        for needle in &self.needles {
            let spans = find_all(&out, needle);
            if !spans.is_empty() {
                out = Cow::Owned(replace(&out, &spans));
            }
        }
        out
    }

    /// [`Self::redact`] for text.
    pub fn redact_text(&self, text: String) -> String {
        match self.redact(text.as_bytes()) {
            Cow::Borrowed(_) => text,
            Cow::Owned(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

/// `text` with every form of `secret` masked; borrowed when there is none.
pub fn redact<'a>(text: &'a [u8], secret: Option<&str>) -> Cow<'a, [u8]> {
    Redactor::new(secret).redact(text)
}

/// [`redact`] for text.
pub fn redact_text(text: String, secret: Option<&str>) -> String {
    Redactor::new(secret).redact_text(text)
}

/// The base64 texts that appear wherever `value` is part of a base64-encoded text: for
/// each alignment, the characters determined by `value`'s bytes alone.
fn base64_forms(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut forms = Vec::new();
    for offset in 0..3usize {
        // Sized once: a buffer that grew would leave its earlier copy unwiped.
        let mut padded = Zeroizing::new(Vec::with_capacity(offset + value.len() + 2));
        padded.resize(offset, 0);
        padded.extend_from_slice(value);
        padded.extend_from_slice(&[0, 0]);
        let start_bits = offset * 8;
        let end_bits = (offset + value.len()) * 8;
        let first = start_bits.div_ceil(6);
        let last = end_bits / 6;
        if last <= first + 3 {
            continue;
        }
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = Zeroizing::new(engine.encode(&*padded));
            if let Some(core) = encoded.as_bytes().get(first..last) {
                forms.push(Zeroizing::new(core.to_vec()));
            }
        }
    }
    forms
}

/// One decoded unit of text: the bytes it stands for and how many bytes it spans.
struct Unit {
    bytes: [u8; 4],
    len: usize,
    span: usize,
    /// A `+`, which stands for a space in a URL-encoded text.
    plus: bool,
}

fn hex(digits: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(digits).ok()?;
    if text.len() != digits.len() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

fn unit_of(bytes: &[u8], len: usize, span: usize) -> Unit {
    let mut out = [0u8; 4];
    out[..len].copy_from_slice(&bytes[..len]);
    Unit {
        bytes: out,
        len,
        span,
        plus: false,
    }
}

fn char_unit(c: char, span: usize) -> Unit {
    let mut buf = [0u8; 4];
    let len = c.encode_utf8(&mut buf).len();
    unit_of(&buf, len, span)
}

/// The unit that starts at `text[0]`, decoding one JSON escape or percent-escape.
fn unit(text: &[u8]) -> Option<Unit> {
    let first = *text.first()?;
    match first {
        b'\\' => json_escape(text).or_else(|| Some(unit_of(&[first], 1, 1))),
        b'%' => text
            .get(1..3)
            .and_then(hex)
            .map(|byte| unit_of(&[byte as u8], 1, 3))
            .or_else(|| Some(unit_of(&[first], 1, 1))),
        b'+' => Some(Unit {
            plus: true,
            ..unit_of(&[first], 1, 1)
        }),
        _ => Some(unit_of(&[first], 1, 1)),
    }
}

fn json_escape(text: &[u8]) -> Option<Unit> {
    let simple = match *text.get(1)? {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => return unicode_escape(text),
        _ => return None,
    };
    Some(unit_of(&[simple], 1, 2))
}

fn unicode_escape(text: &[u8]) -> Option<Unit> {
    let high = hex(text.get(2..6)?)?;
    if (0xd800..0xdc00).contains(&high) {
        if text.get(6..8)? != b"\\u" {
            return None;
        }
        let low = hex(text.get(8..12)?)?;
        if !(0xdc00..0xe000).contains(&low) {
            return None;
        }
        let c = char::from_u32(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00))?;
        return Some(char_unit(c, 12));
    }
    Some(char_unit(char::from_u32(high)?, 6))
}

/// The end of a match of `needle` at the start of `text`, if there is one.
fn match_at(text: &[u8], needle: &[u8]) -> Option<usize> {
    let mut pos = 0;
    let mut matched = 0;
    while matched < needle.len() {
        let want = &needle[matched..];
        let decoded = unit(&text[pos..])?;
        // A `%` or `\` of the value itself may be followed by text that reads as an
        // escape (`%00`, `\u0041`): when the decoded unit does not continue the match,
        // the raw byte may.
        let unit = if fits(&decoded, want) {
            decoded
        } else {
            let raw = unit_of(&text[pos..], 1, 1);
            if decoded.span == 1 || !fits(&raw, want) {
                return None;
            }
            raw
        };
        matched += unit.len;
        pos += unit.span;
    }
    Some(pos)
}

/// Whether `unit` is how the rest of a value, `want`, goes on.
fn fits(unit: &Unit, want: &[u8]) -> bool {
    if unit.plus {
        want[0] == b'+' || want[0] == b' '
    } else {
        want.starts_with(&unit.bytes[..unit.len])
    }
}

/// The non-overlapping spans of `text` that decode to `needle`, left to right.
fn find_all(text: &[u8], needle: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let Some(&first) = needle.first() else {
        return spans;
    };
    let mut at = 0;
    while at < text.len() {
        let Some(offset) = memchr::memchr3(first, b'\\', b'%', &text[at..])
            .into_iter()
            .chain(if first == b' ' {
                memchr::memchr(b'+', &text[at..])
            } else {
                None
            })
            .min()
        else {
            break;
        };
        let start = at + offset;
        match match_at(&text[start..], needle) {
            Some(len) => {
                spans.push((start, start + len));
                at = start + len;
            }
            None => at = start + 1,
        }
    }
    spans
}

fn replace(text: &[u8], spans: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    for &(start, end) in spans {
        out.extend_from_slice(&text[at..start]);
        out.extend_from_slice(MASK.as_bytes());
        at = end;
    }
    out.extend_from_slice(&text[at..]);
    out
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("forms", &self.needles.len())
            .finish_non_exhaustive()
    }
}

/// [`Redactor`] over a text that arrives in chunks.
pub struct StreamRedactor {
    redactor: Redactor,
    carry: Vec<u8>,
}

impl StreamRedactor {
    pub fn new(redactor: Redactor) -> Self {
        Self {
            redactor,
            carry: Vec::new(),
        }
    }

    /// What of the text so far can be passed on, redacted.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.redactor.is_empty() {
            return chunk.to_vec();
        }
        self.carry.extend_from_slice(chunk);
        let text = std::mem::take(&mut self.carry);
        let mut safe = text.len().saturating_sub(self.redactor.longest);
        // A match that starts before the cut is complete within `text`: cut after it.
        let mut spans_end = 0;
        for needle in &self.redactor.needles {
            for (start, end) in find_all(&text, needle) {
                if start < safe {
                    spans_end = spans_end.max(end);
                }
            }
        }
        safe = safe.max(spans_end);
        self.carry = text[safe..].to_vec();
        self.redactor.redact(&text[..safe]).into_owned()
    }

    /// The rest of the text, redacted.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.carry);
        self.redactor.redact(&rest).into_owned()
    }
}

#[cfg(test)]
mod tests;
