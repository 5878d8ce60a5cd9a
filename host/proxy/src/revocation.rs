//! What the control plane tells the data plane when it changes something the data plane
//! may be holding on to: the one interface between the two planes.
//!
//! The data plane keeps run tokens, records and plugin answers between requests (see
//! `data`); the control plane never reaches into those caches. It says what changed, as a
//! [`Revocation`], through [`Revocations`], and the data plane decides what to forget.
//! Invariant: when `revoke` returns, no request that starts afterwards on this process is
//! served from what was revoked (a finished run's token is refused, its sessions and
//! streams are closed; a changed connector or actor is read again).
//!
//! A revocation is plain data so that it can travel: with several replicas, an
//! implementation of [`Revocations`] can publish it to the others (PostgreSQL
//! `LISTEN/NOTIFY`) and apply it locally; a versioned cache can bump the version of what
//! it names so that a refill already under way cannot bring the old state back.

/// One change the data plane must act on at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The run finished: its token stops working and its sessions and streams end.
    RunFinished { run: String },
    /// The connector was edited or re-authorized, or its grant failed: what was decided about it is read
    /// again, and its open streams end (they carry the old tools and credential).
    ConnectorChanged { connector: String },
    /// The connector was deleted: also its sessions end.
    ConnectorDeleted { connector: String },
    /// The actor's input schema was replaced.
    ActorChanged { actor: String },
    /// Another replica installed, rolled back or deleted a plugin version or changed the
    /// chains: the plugin registry is read again from the store (`plugin_sync`). The
    /// registry's new generation already keeps memoized answers from being reused.
    PluginsChanged,
    /// Anything may have changed without this process being told (another replica's
    /// notifications may have been lost): every cached record and decision is read again,
    /// and so is the plugin registry.
    /// Sessions and streams stay; the next request re-checks them.
    Everything,
}

/// Where the control plane sends revocations.
#[async_trait::async_trait]
pub trait Revocations: Send + Sync {
    /// Applies `revocation`; when this returns, requests no longer see what it revoked.
    async fn revoke(&self, revocation: Revocation);
}
