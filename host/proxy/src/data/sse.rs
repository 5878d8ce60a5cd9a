//! Server-sent events, read and written as the relay needs them (FR-37), with a bound.
//!
//! [`Parser`] turns an upstream's bytes into events as they arrive, following the
//! HTML event-stream rules (lines end with CRLF, LF or CR; `data:` lines join with a
//! newline; comments and unknown fields are dropped; a blank line ends an event). It
//! never holds more than `max_event` bytes of one event, its unfinished line included,
//! so an upstream that never sends a newline cannot grow the proxy: past the bound the
//! stream is refused ([`TooLarge`]). [`Event::encode`] writes an event back.

/// One event: the fields the relay passes on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Option<String>,
    pub retry: Option<u64>,
}

impl Event {
    /// The event as event-stream text, ending with its blank line.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.as_ref().map_or(0, String::len) + 32);
        if let Some(id) = &self.id {
            push_field(&mut out, "id", id);
        }
        if let Some(event) = &self.event {
            push_field(&mut out, "event", event);
        }
        if let Some(retry) = self.retry {
            push_field(&mut out, "retry", &retry.to_string());
        }
        if let Some(data) = &self.data {
            for line in data.split('\n') {
                push_field(&mut out, "data", line);
            }
        }
        if out.is_empty() {
            out.extend_from_slice(b":\n");
        }
        out.push(b'\n');
        out
    }
}

/// Writes one field; line breaks in a single-line field are dropped, never passed on
/// to start a field of the upstream's choosing.
fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend(value.bytes().filter(|b| !matches!(b, b'\n' | b'\r')));
    out.push(b'\n');
}

/// An event (or a line) over the bound.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge;

/// An event-stream reader that holds at most `max_event` bytes.
pub struct Parser {
    max_event: usize,
    line: Vec<u8>,
    /// A CR ended the last chunk: an LF starting the next one belongs to it.
    after_cr: bool,
    current: Partial,
}

#[derive(Default)]
struct Partial {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    retry: Option<u64>,
    bytes: usize,
}

impl Parser {
    pub fn new(max_event: usize) -> Self {
        Self {
            max_event,
            line: Vec::new(),
            after_cr: false,
            current: Partial::default(),
        }
    }

    /// Reads `chunk`, appending every event it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), TooLarge> {
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(end) = memchr::memchr2(b'\n', b'\r', rest) {
            self.grow(end)?;
            self.line.extend_from_slice(&rest[..end]);
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out);
            let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
            if rest[end] == b'\r' && end + 1 == rest.len() {
                self.after_cr = true;
            }
            rest = &rest[end + if crlf { 2 } else { 1 }..];
        }
        self.grow(rest.len())?;
        self.line.extend_from_slice(rest);
        Ok(())
    }

    fn grow(&self, more: usize) -> Result<(), TooLarge> {
        let held = self.current.bytes + self.line.len() + more;
        if held > self.max_event {
            return Err(TooLarge);
        }
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() {
            let done = std::mem::take(&mut self.current);
            if done.id.is_some()
                || done.event.is_some()
                || done.data.is_some()
                || done.retry.is_some()
            {
                out.push(Event {
                    id: done.id,
                    event: done.event,
                    data: done.data,
                    retry: done.retry,
                });
            }
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        self.current.bytes += line.len() + 1;
        match name {
            b"data" => match &mut self.current.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(&value);
                }
                None => self.current.data = Some(value.into_owned()),
            },
            b"id" if !value.contains('\0') => self.current.id = Some(value.into_owned()),
            b"event" => self.current.event = Some(value.into_owned()),
            b"retry" => {
                if let Ok(retry) = value.parse() {
                    self.current.retry = Some(retry);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
