//! Versions of what the data plane caches, so that a cache fill cannot undo a revocation.
//!
//! A request reads the store, then keeps what it read. If a revocation (a run finished, a
//! connector changed or was deleted, an actor replaced) lands between the read and the
//! keeping, the stale record would come back and outlive the revocation. So every
//! revocation bumps a counter first and then forgets; a fill takes [`Generations::seen`]
//! before it reads and keeps its result only if [`Generations::unchanged`] still holds,
//! checked under the lock of the cache it writes to ([`super::cache::Table::insert_if`]).
//! Either the fill is kept before the forget (which then removes it) or it sees the new
//! counter and keeps nothing.
//!
//! The counters are plain data: a broadcaster of revocations between replicas (such as
//! PostgreSQL `LISTEN/NOTIFY`) applies a remote revocation through the same
//! [`crate::revocation::Revocations`] call, which bumps the same counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a revocation can name.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Runs,
    Connectors,
    Actors,
}

/// One counter per kind of record.
#[derive(Default)]
pub struct Generations {
    counters: [AtomicU64; 3],
}

/// The counters as a fill saw them before it read the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen([u64; 3]);

impl Generations {
    pub fn seen(&self) -> Seen {
        Seen(self.counters.each_ref().map(|c| c.load(Ordering::Acquire)))
    }

    /// Whether no revocation happened since `seen`.
    pub fn unchanged(&self, seen: Seen) -> bool {
        self.seen() == seen
    }

    /// Called by a revocation before it forgets anything.
    pub fn bump(&self, kind: Kind) {
        self.counters[kind as usize].fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_revocation_after_a_read_invalidates_its_fill() {
        let generations = Generations::default();
        let seen = generations.seen();
        assert!(generations.unchanged(seen));
        generations.bump(Kind::Actors);
        assert!(!generations.unchanged(seen));
        assert!(generations.unchanged(generations.seen()));
    }
}
