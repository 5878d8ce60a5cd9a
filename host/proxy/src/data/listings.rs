//! Per connector, the last `tools/list` result its upstream sent and the filtered form
//! the relay made of it, so that the same result sent again is not read again.
//!
//! Why: a listing of a hundred tools is tens of kilobytes, and checking it strictly,
//! walking it and filtering it was most of the proxy's CPU on that path
//! (`docs/benchmarks.md`). Upstreams send the same list again and again, and the filter
//! is a pure function of three things: the `result` text, the connector's tool snapshot
//! (fixed by its revision) and the run's permitted set. A byte-equal `result` under the
//! same revision and permitted set therefore has the same filtered form.
//!
//! Invariants:
//! * an entry is made only from a `result` that passed the strict check as a member of
//!   its whole message, and only when every tool the filter kept also passed the
//!   live-annotation check;
//! * it is used only for a byte-equal `result` under the same connector revision and
//!   permitted set. The relay still checks the answer's other members strictly and asks
//!   the live annotations again, and the redaction of what goes out is unchanged;
//! * one entry per connector, at most [`MAX_RESULT_BYTES`] of upstream text each,
//!   forgotten when the connector changes or is deleted.

use std::sync::Arc;

use portcullis_model::{ToolHints, ToolSet};
use serde_json::value::RawValue;

use crate::data::cache::Table;

/// A larger `result` is filtered every time rather than kept.
pub const MAX_RESULT_BYTES: usize = 256 << 10;

/// One connector's last filtered listing.
pub struct Listing {
    revision: i64,
    permitted: ToolSet,
    /// The upstream's `result`, as written.
    result: Box<str>,
    /// The tools the filter kept, with their live hints, to ask the live-annotation
    /// check again.
    pub kept: Vec<(String, ToolHints)>,
    /// The `result` holding only the kept tools.
    pub filtered: Box<RawValue>,
}

/// What a filtered listing was made from and what it became.
pub struct Made<'a> {
    pub revision: i64,
    pub permitted: &'a ToolSet,
    pub result: &'a str,
    pub kept: Vec<(String, ToolHints)>,
    pub filtered: &'a RawValue,
}

/// The listings, by connector id.
#[derive(Default)]
pub struct Listings {
    by_connector: Table<String, Listing>,
}

impl Listings {
    /// The listing made from `result` under this revision and permitted set, if kept.
    pub fn reuse(
        &self,
        connector_id: &str,
        revision: i64,
        permitted: &ToolSet,
        result: &str,
    ) -> Option<Arc<Listing>> {
        self.by_connector.get(connector_id).filter(|listing| {
            listing.revision == revision
                && listing.permitted == *permitted
                && *listing.result == *result
        })
    }

    /// Keeps what the filter made of a `result` (see the invariants above).
    pub fn keep(&self, connector_id: &str, made: Made<'_>) {
        if made.result.len() > MAX_RESULT_BYTES {
            return;
        }
        let listing = Listing {
            revision: made.revision,
            permitted: made.permitted.clone(),
            result: made.result.into(),
            kept: made.kept,
            filtered: made.filtered.to_owned(),
        };
        self.by_connector
            .insert(connector_id.to_owned(), Arc::new(listing));
    }

    pub fn forget(&self, connector_id: &str) {
        self.by_connector.remove(connector_id);
    }

    /// How many connectors have a listing kept.
    pub fn len(&self) -> usize {
        self.by_connector.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made<'a>(permitted: &'a ToolSet, result: &'a str, filtered: &'a RawValue) -> Made<'a> {
        Made {
            revision: 3,
            permitted,
            result,
            kept: vec![("a".into(), ToolHints::default())],
            filtered,
        }
    }

    #[test]
    fn a_listing_is_reused_only_for_the_same_text_revision_and_permitted_set() {
        let listings = Listings::default();
        let only_a = ToolSet::Only(["a".to_owned()].into_iter().collect());
        let result = r#"{"tools":[{"name":"a"},{"name":"b"}]}"#;
        let filtered = RawValue::from_string(r#"{"tools":[{"name":"a"}]}"#.into()).unwrap();
        listings.keep("c1", made(&only_a, result, &filtered));
        let hit = listings
            .reuse("c1", 3, &only_a, result)
            .expect("same inputs");
        assert_eq!(hit.filtered.get(), filtered.get());
        assert!(listings.reuse("c2", 3, &only_a, result).is_none());
        assert!(listings.reuse("c1", 4, &only_a, result).is_none());
        assert!(listings.reuse("c1", 3, &ToolSet::All, result).is_none());
        let respaced = r#"{"tools":[{"name":"a"}, {"name":"b"}]}"#;
        assert!(listings.reuse("c1", 3, &only_a, respaced).is_none());
        listings.forget("c1");
        assert!(listings.reuse("c1", 3, &only_a, result).is_none());

        let huge = format!(r#"{{"tools":[],"pad":"{}"}}"#, "x".repeat(MAX_RESULT_BYTES));
        listings.keep("c1", made(&only_a, &huge, &filtered));
        assert!(
            listings.reuse("c1", 3, &only_a, &huge).is_none(),
            "a result over the bound is not kept"
        );
    }
}
