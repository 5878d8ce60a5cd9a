//! The runtime's integration tests, one binary (each test binary links wasmtime in full).
//! They run under looser limits than the defaults, so that tests running side by side on
//! a busy machine cannot push a healthy call past its wall-clock timeout; the built-in
//! chains under the default limits are checked by a unit test of `chain`, which has its
//! binary to itself.
//!
//! | module | what it checks |
//! |---|---|
//! | `hostile` | the sandbox against a plugin that misbehaves on purpose |
//! | `install` | installing, refusing and rolling back plugins, and swapping under load |
//! | `abi` | canonical-ABI garbage from a hand-written component |
//! | `ops` | chains changed live, removals, shadows, per-plugin metrics, inspection |
//! | `evaluation` | calls asked together share an instance per plugin, and nothing else does |
//! | `support` | what they share: the hostile plugin, runtimes, contexts |

mod abi;
mod evaluation;
mod hostile;
mod install;
mod ops;
mod support;
