//! Sessions any replica can serve: a proxy session's id is what the session is made of,
//! sealed by the vault, so a replica that never saw the session opens the id the client
//! presents and serves it (the client of a replica that died retries elsewhere with the
//! same `Mcp-Session-Id` and continues).
//!
//! Why a sealed, self-describing id rather than a mapping stored in the database: minting
//! a session writes nothing (an `initialize` costs no database round trip), nothing has
//! to be cleaned up, and a replica serves a session even while the database is slow. What
//! a stored mapping would add, revoking one session everywhere, the proxy does not need:
//! a session id is never authentication. Every request is authenticated by its run token
//! first, and the id is sealed for its run and connector (the vault's AAD), so it opens
//! only with that run's token on that connector; a finished run or a deleted connector is
//! refused before any session is looked at. A session ended on one replica (DELETE, idle)
//! can be opened again on another, but that gains nothing a new `initialize` would not
//! give: its upstream session was closed, and the upstream's 404 becomes ERR-5.
//!
//! A replica never adopts a session it minted itself: its own table is the truth about
//! those, so a session it ended (DELETE, idle) stays ended there, exactly as with one
//! process. Only a session minted elsewhere (by a replica that died or is behind another
//! balancer route) is opened from its id.
//!
//! The sealed value holds the upstream's session id, the client's capabilities and the
//! minting replica's random instance id; every replica shares the master key (see the
//! README's "Running several replicas"). The id is base64url without padding: visible
//! ASCII, as MCP requires.

// A refusal is the response itself, as in `gate`.
#![allow(clippy::result_large_err)]

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::now_secs;
use crate::data::catalogue;
use crate::data::gate::Checked;
use crate::data::plane::NoSession;
use crate::data::session::ClientCapabilities;
use crate::data::upstream::SESSION_HEADER;
use crate::state::AppState;
use crate::vault::Vault;
use crate::vault::binding::Binding;

/// What a session id carries.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The upstream's session id, when it has one (visible ASCII, as MCP requires).
    upstream: Option<String>,
    sampling: bool,
    elicitation: bool,
    roots: bool,
    /// The replica that minted it (`DataPlane::instance`).
    instance: String,
    /// Random, so that two sessions of one run on one connector have different ids.
    nonce: String,
}

/// What a session id opens to.
pub struct Opened {
    pub upstream_id: Option<HeaderValue>,
    pub client: ClientCapabilities,
    /// The replica that minted it.
    pub instance: String,
}

/// A new session id for `run` on `connector`; `None` when the upstream's session id is
/// not visible ASCII (the session then lives on this replica only, under a random id).
pub fn mint(
    vault: &Vault,
    instance: &str,
    run: &str,
    connector: &str,
    upstream_id: Option<&HeaderValue>,
    client: ClientCapabilities,
) -> Option<String> {
    let upstream = match upstream_id {
        Some(value) => Some(value.to_str().ok()?.to_owned()),
        None => None,
    };
    let nonce: [u8; 16] = rand::random();
    let sealed = Sealed {
        upstream,
        sampling: client.sampling,
        elicitation: client.elicitation,
        roots: client.roots,
        instance: instance.to_owned(),
        nonce: hex::encode(nonce),
    };
    let text = serde_json::to_string(&sealed).expect("a session serializes");
    let bytes = vault
        .seal(&text, Binding::Session { run, connector })
        .ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// What `id` holds, if it is a session id minted for `run` on `connector`.
pub fn open(vault: &Vault, id: &str, run: &str, connector: &str) -> Option<Opened> {
    // A sealed id is short; anything long is not one (and is not worth decoding).
    if id.len() > 1024 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
    let text = vault
        .open(&bytes, Binding::Session { run, connector })
        .ok()?;
    let sealed: Sealed = serde_json::from_str(&text).ok()?;
    let upstream_id = match sealed.upstream {
        Some(text) => Some(HeaderValue::from_str(&text).ok()?),
        None => None,
    };
    Some(Opened {
        upstream_id,
        client: ClientCapabilities {
            sampling: sealed.sampling,
            elicitation: sealed.elicitation,
            roots: sealed.roots,
        },
        instance: sealed.instance,
    })
}

/// Keeps here the session `headers` name when another replica minted it for this
/// request's run and connector, so that `gate::session` finds it. Anything else (no
/// session header, a session already here, an id that does not open) is left to
/// `gate::session` to answer.
pub fn adopt(
    state: &AppState,
    checked: &Checked,
    headers: &HeaderMap,
    request_id: Option<&Value>,
) -> Result<(), Response> {
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let (run, connector) = (&checked.run.id, &checked.connector.id);
    if state.data.sessions.find(id, run, connector).is_some() {
        return Ok(());
    }
    let Some(opened) = open(&state.vault, id, run, connector) else {
        return Ok(());
    };
    if opened.instance == state.data.instance {
        return Ok(());
    }
    state
        .data
        .open_session(
            Some(id.to_owned()),
            &checked.live,
            connector,
            opened.upstream_id,
            opened.client,
            now_secs(),
        )
        .map(drop)
        .map_err(|refused| refusal(state, refused, request_id))
}

/// The answer when a session could not be opened.
pub fn refusal(state: &AppState, refused: NoSession, request_id: Option<&Value>) -> Response {
    match refused {
        NoSession::Finished => catalogue::unauthorized("run_finished"),
        NoSession::Full => {
            state.metrics.decision("limit", "deny", "sessions_per_run");
            catalogue::rate_limited(request_id, "sessions_per_run", 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_opens_only_for_its_run_and_connector() {
        let vault = Vault::from_key(&[7; 32]);
        let client = ClientCapabilities {
            sampling: true,
            elicitation: false,
            roots: true,
        };
        let upstream = HeaderValue::from_static("upstream-session-1");
        let id = mint(&vault, "i1", "run_1", "conn_1", Some(&upstream), client).unwrap();
        assert!(id.bytes().all(|b| b.is_ascii_graphic()), "{id}");
        let opened = open(&vault, &id, "run_1", "conn_1").unwrap();
        assert_eq!(opened.upstream_id, Some(upstream.clone()));
        assert!(opened.client.sampling && !opened.client.elicitation && opened.client.roots);
        assert_eq!(opened.instance, "i1");

        assert!(
            open(&vault, &id, "run_2", "conn_1").is_none(),
            "another run"
        );
        assert!(
            open(&vault, &id, "run_1", "conn_2").is_none(),
            "another connector"
        );
        assert!(open(&Vault::from_key(&[8; 32]), &id, "run_1", "conn_1").is_none());
        let mut edited = id.clone().into_bytes();
        edited[10] = if edited[10] == b'A' { b'B' } else { b'A' };
        let edited = String::from_utf8(edited).unwrap();
        assert!(open(&vault, &edited, "run_1", "conn_1").is_none(), "edited");
        assert!(open(&vault, "not-a-session", "run_1", "conn_1").is_none());
        assert!(open(&vault, &"A".repeat(5000), "run_1", "conn_1").is_none());

        let again = mint(&vault, "i1", "run_1", "conn_1", Some(&upstream), client).unwrap();
        assert_ne!(id, again, "two sessions, two ids");
        let stateless = mint(&vault, "i1", "run_1", "conn_1", None, client).unwrap();
        assert_eq!(
            open(&vault, &stateless, "run_1", "conn_1")
                .unwrap()
                .upstream_id,
            None
        );
        let binary = HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap();
        assert!(mint(&vault, "i1", "run_1", "conn_1", Some(&binary), client).is_none());
    }
}
