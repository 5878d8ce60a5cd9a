//! The audit log's hash chain: how a record is encoded for hashing, how its hash links to
//! the one before it, and how a whole log is checked.
//!
//! **Canonical encoding.** A record is encoded as the compact JSON array of its columns,
//! in this order, each a JSON string, a JSON integer or `null` exactly as stored:
//! `[at_ms, kind, run, connector, method, tool, decision, reason, plugins, actor, action,
//! target, before, after]`, where `plugins`, `before` and `after` are the stored JSON
//! *text* (a string), not re-encoded values, so the encoding never depends on how a
//! JSON library orders keys. `seq` is not part of it: the order is carried by the links.
//!
//! **Link.** `hash = hex(SHA-256(prev_hash ‖ "\n" ‖ encoding))`, with `prev_hash` the hex
//! hash of the record before it; the first chained record links to [`GENESIS`] (64 zeros).
//!
//! **Checking** walks the log in `seq` order. A record whose hash does not recompute was
//! edited; one whose `prev_hash` is not the hash of the record before it follows a removed
//! or moved record. Records written before the chain existed (no hash) may only precede
//! the first chained record. Removing records from the end cannot be seen from the log
//! alone: compare the head hash `verify` prints with one kept elsewhere.

use sha2::{Digest, Sha256};

/// What the first chained record links to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A record's columns as stored, the input of the encoding.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChainRow {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub run: Option<String>,
    pub connector: Option<String>,
    pub method: Option<String>,
    pub tool: Option<String>,
    pub decision: String,
    pub reason: Option<String>,
    pub plugins: String,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

impl ChainRow {
    /// The canonical encoding (see the module documentation), written straight from the
    /// columns: the compact JSON of the tuple is, byte for byte, that of the array of its
    /// values.
    pub fn encoding(&self) -> Vec<u8> {
        let columns = (
            self.at_ms,
            &self.kind,
            &self.run,
            &self.connector,
            &self.method,
            &self.tool,
            &self.decision,
            &self.reason,
            &self.plugins,
            &self.actor,
            &self.action,
            &self.target,
            &self.before,
            &self.after,
        );
        serde_json::to_vec(&columns).expect("strings, options and an integer encode")
    }

    /// The hash of this record when it follows a record whose hash is `prev`.
    pub fn hash_after(&self, prev: &str) -> String {
        let mut digest = Sha256::new();
        digest.update(prev.as_bytes());
        digest.update(b"\n");
        digest.update(self.encoding());
        hex::encode(digest.finalize())
    }
}

/// `rows`, in order, chained after the record whose hash is `head`: each gets its
/// `prev_hash` and `hash`. Both stores append a batch through it.
pub fn link(rows: impl IntoIterator<Item = ChainRow>, head: String) -> Vec<ChainRow> {
    let mut prev = head;
    rows.into_iter()
        .map(|row| {
            let hash = row.hash_after(&prev);
            ChainRow {
                prev_hash: Some(std::mem::replace(&mut prev, hash.clone())),
                hash: Some(hash),
                ..row
            }
        })
        .collect()
}

/// What a check of a sound log found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Records checked (chained ones).
    pub chained: u64,
    /// Records from before the chain existed, at its start.
    pub legacy: u64,
    /// The hash of the last record: keep it elsewhere to detect a cut-off end later.
    pub head: String,
}

/// The first bad record of a log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit record {seq} is not the one that was written: {why}")]
pub struct Broken {
    pub seq: i64,
    pub why: String,
}

/// Checks a log record by record, in `seq` order.
#[derive(Default)]
pub struct Verifier {
    prev: Option<(i64, String)>,
    chained: u64,
    legacy: u64,
}

impl Verifier {
    /// Checks the next record.
    pub fn push(&mut self, row: &ChainRow) -> Result<(), Broken> {
        let broken = |why: String| Broken { seq: row.seq, why };
        let (Some(prev_hash), Some(hash)) = (&row.prev_hash, &row.hash) else {
            if self.prev.is_some() {
                return Err(broken(
                    "its hash is missing in the chained part of the log".into(),
                ));
            }
            self.legacy += 1;
            return Ok(());
        };
        let expected_prev = self.prev.as_ref().map_or(GENESIS, |(_, h)| h.as_str());
        if prev_hash != expected_prev {
            let after = match &self.prev {
                Some((seq, _)) => format!("record {seq}"),
                None => "the start of the chain".to_owned(),
            };
            return Err(broken(format!(
                "it does not follow {after}: a record between them was removed, or records \
                 were moved"
            )));
        }
        if row.hash_after(prev_hash) != *hash {
            return Err(broken(
                "its content does not match its hash: it was edited".to_owned(),
            ));
        }
        self.chained += 1;
        self.prev = Some((row.seq, hash.clone()));
        Ok(())
    }

    /// What the records pushed so far amount to.
    pub fn finish(self) -> Verified {
        Verified {
            chained: self.chained,
            legacy: self.legacy,
            head: self
                .prev
                .map_or_else(|| GENESIS.to_owned(), |(_, hash)| hash),
        }
    }
}

/// Checks the records of a whole log, given in `seq` order.
pub fn verify(rows: impl IntoIterator<Item = ChainRow>) -> Result<Verified, Broken> {
    let mut verifier = Verifier::default();
    for row in rows {
        verifier.push(&row)?;
    }
    Ok(verifier.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<ChainRow> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut row = ChainRow {
                    seq,
                    at_ms: seq * 1000,
                    kind: "decision".into(),
                    method: Some("tools/call".into()),
                    decision: "allow".into(),
                    plugins: "[]".into(),
                    ..ChainRow::default()
                };
                let hash = row.hash_after(&prev);
                row.prev_hash = Some(prev.clone());
                row.hash = Some(hash.clone());
                prev = hash;
                row
            })
            .collect()
    }

    #[test]
    fn a_sound_log_verifies_and_each_kind_of_tampering_names_the_record() {
        let log = chain(5);
        let verified = verify(log.clone()).unwrap();
        assert_eq!(verified.chained, 5);
        assert_eq!(verified.head, log[4].hash.clone().unwrap());

        let mut edited = log.clone();
        edited[2].decision = "deny".into();
        assert_eq!(verify(edited).unwrap_err().seq, 3);

        let mut removed = log.clone();
        removed.remove(1);
        assert_eq!(verify(removed).unwrap_err().seq, 3);

        let mut swapped = log.clone();
        swapped.swap(1, 2);
        assert_eq!(verify(swapped).unwrap_err().seq, 3);

        let mut legacy = vec![ChainRow {
            seq: 0,
            ..ChainRow::default()
        }];
        legacy.extend(log.clone());
        assert_eq!(verify(legacy).unwrap().legacy, 1);
    }

    /// The encoding written from the tuple is the one the chain was defined with: the
    /// array of the columns as JSON values (records hashed before stay verifiable).
    #[test]
    fn the_encoding_is_the_array_of_the_columns() {
        let text = |v: &str| Some(v.to_owned());
        let row = ChainRow {
            seq: 9,
            at_ms: -1_764_000_000_123,
            kind: "decision".into(),
            run: text("run_\u{e9}\"x\""),
            connector: text("conn\n\t\u{1}"),
            method: text("tools/call"),
            tool: text("</script>\\"),
            decision: "deny".into(),
            reason: text("\u{1f600} \u{2028}"),
            plugins: r#"[{"name":"a","v":"1"}]"#.into(),
            actor: text("act"),
            action: text("connector.update"),
            target: text("conn_1"),
            before: text(r#"{"b":1,"a":2}"#),
            after: text(""),
            ..ChainRow::default()
        };
        let as_values = |row: &ChainRow| {
            let text = |v: &Option<String>| serde_json::to_value(v).unwrap();
            serde_json::Value::Array(vec![
                row.at_ms.into(),
                row.kind.clone().into(),
                text(&row.run),
                text(&row.connector),
                text(&row.method),
                text(&row.tool),
                row.decision.clone().into(),
                text(&row.reason),
                row.plugins.clone().into(),
                text(&row.actor),
                text(&row.action),
                text(&row.target),
                text(&row.before),
                text(&row.after),
            ])
            .to_string()
        };
        assert_eq!(row.encoding(), as_values(&row).into_bytes());
        let empty = ChainRow::default();
        assert_eq!(empty.encoding(), as_values(&empty).into_bytes());
    }

    #[test]
    fn the_encoding_keeps_stored_text_as_text() {
        let row = ChainRow {
            plugins: r#"[{"name":"a"}]"#.into(),
            before: Some("{}".into()),
            ..ChainRow::default()
        };
        assert_eq!(
            row.encoding(),
            br#"[0,"",null,null,null,null,"",null,"[{\"name\":\"a\"}]",null,null,null,"{}",null]"#
        );
    }
}
