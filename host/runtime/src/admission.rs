//! Admission: deciding whether a component may become a plugin.
//!
//! This is the part a security reviewer reads to know what a loaded plugin can be. A
//! component is admitted only if, in order:
//!
//! 1. its name is a plain registry name and its size is within bounds;
//! 2. it is a component (not a core module), it compiles, and its digest is recorded;
//! 3. it links against a world of a contract version the runtime serves (`abi`): the
//!    linker offers the `log` import and WASI with an empty context, so a component that
//!    imports any other capability (HTTP, a host function of its own) fails here;
//! 4. its `describe` export answers well-formed, under the same limits as every call.
//!
//! Compilation is the slow step (tens of milliseconds per plugin in a release build), so
//! compiled artifacts are kept in memory and on disk (`artifacts`). An install admits off
//! the request path, on the blocking pool, holding one instance slot for its smoke call.

use std::sync::Arc;
use std::time::SystemTime;

use portcullis_model::Fault;
use sha2::{Digest, Sha256};

use crate::abi::Pre;
use crate::answer;
use crate::call;
use crate::counters::PluginStats;
use crate::engine::Engine;
use crate::error::LoadError;
use crate::plugin::{Plugin, PluginKind};

/// Components larger than this are refused before anything else is done with them.
pub const MAX_COMPONENT_BYTES: usize = 32 << 20;

/// The first eight bytes of every component (magic, version 0x0d, layer 1).
const COMPONENT_HEADER: [u8; 8] = *b"\0asm\x0d\0\x01\0";

/// Checks a registry name: 1 to 64 of `a-z`, `0-9` and `-`.
fn check_name(name: &str) -> Result<(), LoadError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(LoadError::InvalidName(name.to_owned()))
    }
}

/// Admits `wasm` as an operator's plugin `name` on the blocking pool, within one
/// instance slot: the smoke call instantiates the component like any call, and the pooling
/// allocator refuses rather than waits when every slot is busy, so an install under full
/// load would otherwise fail for no fault of its own.
pub(crate) async fn admit_off_path(
    engine: &Arc<Engine>,
    name: &str,
    wasm: Vec<u8>,
    builtin: bool,
    stats: Arc<PluginStats>,
) -> Result<Plugin, LoadError> {
    let permit = engine.slot().await;
    let engine = engine.clone();
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        admit(&engine, &name, &wasm, builtin, stats)
    })
    .await
    .map_err(|e| LoadError::Compile(format!("admission task failed: {e}")))?
}

/// Admits `bytes` as plugin `name`. Blocking: compiles and runs the component.
pub(crate) fn admit(
    engine: &Engine,
    name: &str,
    bytes: &[u8],
    builtin: bool,
    stats: Arc<PluginStats>,
) -> Result<Plugin, LoadError> {
    check_name(name)?;
    if bytes.len() > MAX_COMPONENT_BYTES {
        return Err(LoadError::TooLarge {
            size: bytes.len(),
            limit: MAX_COMPONENT_BYTES,
        });
    }
    if !bytes.starts_with(&COMPONENT_HEADER) {
        return Err(LoadError::NotAComponent);
    }
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    let component = engine
        .artifacts()
        .compile(engine.wasmtime(), &digest, bytes)?;
    let sha256 = hex::encode(digest);

    let name: Arc<str> = name.into();
    let pre =
        Pre::new(engine.linkers(), &component).map_err(|refused| LoadError::UnknownWorld {
            policy: refused.policy,
            provider: refused.provider,
        })?;
    let kind = match pre {
        Pre::Policy(_) => PluginKind::Policy,
        Pre::Provider(_) => PluginKind::Provider,
    };

    let info = call::describe(engine, &name, &pre).map_err(LoadError::Describe)?;
    answer::check_info(&info).map_err(|error| {
        LoadError::Describe(Fault::Malformed {
            plugin: name.to_string(),
            detail: error.to_string(),
        })
    })?;

    Ok(Plugin {
        name,
        kind,
        reported_name: info.name,
        version: info.version.into(),
        sha256: sha256.into(),
        loaded_at: SystemTime::now(),
        builtin,
        reads_arguments: info.reads_arguments,
        pre,
        stats,
    })
}
