//! The relay's own `tools/list` answer made from the connector's kept listing
//! (`data::listings`) when the upstream sent the same `result` again: one raw pass over
//! the message, a byte comparison, and the strict check of the other members only.

use super::raw::{self, RawObject};
use super::{Relaying, Rewrite};
use crate::data::jsonrpc;

impl Relaying {
    /// The answer owed for this relay's own `tools/list`, made from the connector's
    /// kept listing when the answer's `result` is the text it was made from (see
    /// `listings`); `None` when the answer must go the whole way.
    pub(super) fn listed_before(&self, message: &mut RawObject<'_>) -> Option<Vec<u8>> {
        let relay = &self.relay;
        let own_listing = matches!(relay.rewrite, Some(Rewrite::ToolsList)) && self.own_due();
        if !own_listing || !relay.state.runtime.memoize() || message.contains_key("method") {
            return None;
        }
        let own = relay.request_id.as_ref()?;
        let id = message.get("id").map(raw::value)?;
        if !jsonrpc::same_id(own, &id) {
            return None;
        }
        let connector = &relay.connector;
        let result = message.get("result")?.get();
        let listing = relay.state.data.listings.reuse(
            &connector.id,
            connector.revision,
            &relay.permitted,
            result,
        )?;
        if !message.strict_except("result") {
            return None;
        }
        let live = &relay.state.data.live_hints;
        let hints = listing
            .kept
            .iter()
            .map(|(name, hints)| (name.as_str(), hints.clone()));
        if live.observe(connector, &relay.ctx, hints).is_some() {
            return None;
        }
        self.mark_answered();
        message.replace("result", listing.filtered.clone());
        message.replace("id", raw::to_raw(own));
        Some(message.to_vec())
    }
}
