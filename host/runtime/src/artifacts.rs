//! Compiled components: what admission compiles is kept, in memory for the life of the
//! process and, when the runtime has a cache directory, on disk, so that a restart
//! deserializes each plugin (milliseconds) instead of compiling it with Cranelift (tens
//! of milliseconds in a release build, over a second in a debug one).
//!
//! An artifact is keyed by the component's sha256 and the engine's compatibility hash
//! (wasmtime's version and every setting that shapes the code: fuel, epochs, the pooling
//! allocator's limits...). On disk it is `<dir>/<sha256>-<hash>.cwasm`: a header (magic,
//! the component's sha256, the compatibility hash, the sha256 of the artifact bytes)
//! followed by `Component::serialize`'s output, written to a temporary file in the same
//! directory and renamed into place, so a reader never sees a half-written file.
//!
//! **Why deserializing is safe here.** `Component::deserialize` trusts its input to be
//! wasmtime's own output: it maps it as executable code. The only bytes handed to it are
//! artifacts this process serialized (in memory), or files of the cache directory, which
//! the runtime creates owner-only (mode 0700) under the proxy's data directory and to
//! which only this code writes, from `Component::serialize`. A file is used only if its
//! header names the component and the engine being loaded and the artifact's sha256
//! matches (a truncated, corrupt or renamed file, or one of another build, fails these),
//! and then only if wasmtime's own checks accept it; anything else is ignored, deleted,
//! compiled afresh and written again. Whoever can write the data directory can replace
//! the installed plugins and the database as well: the cache adds no authority.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::error::LoadError;

/// The first bytes of a cache file (format version 1).
const MAGIC: [u8; 8] = *b"PCLSCA\x01\0";
/// Magic, component sha256, compatibility hash, artifact sha256.
const HEADER: usize = 8 + 32 + 8 + 32;

type Key = ([u8; 32], u64);

/// Where compiled components are kept; see the module header.
pub(crate) struct Artifacts {
    dir: Option<PathBuf>,
}

impl Artifacts {
    /// Keeps artifacts in memory, and in `dir` (created owner-only) if given.
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// `bytes` (whose sha256 is `sha256`) compiled for `engine`: from memory, from the
    /// cache directory, or compiled now and kept in both.
    pub(crate) fn compile(
        &self,
        engine: &wasmtime::Engine,
        sha256: &[u8; 32],
        bytes: &[u8],
    ) -> Result<Component, LoadError> {
        static MEMORY: OnceLock<Mutex<HashMap<Key, Arc<[u8]>>>> = OnceLock::new();
        let key = (*sha256, compatibility(engine));
        let memory = MEMORY.get_or_init(Default::default);
        let kept = memory.lock().expect("artifact memory").get(&key).cloned();
        if let Some(artifact) = kept {
            // SAFETY: serialized by this process for an engine of the same compatibility
            // hash, and immutable since (see the module header).
            if let Ok(component) = unsafe { Component::deserialize(engine, &artifact) } {
                return Ok(component);
            }
        }
        let (component, artifact) = self.disk_or_compile(engine, &key, bytes)?;
        if let Some(artifact) = artifact {
            memory
                .lock()
                .expect("artifact memory")
                .insert(key, artifact.into());
        }
        Ok(component)
    }

    /// The component of `key` from the cache directory, or compiled from `bytes` and
    /// written there; with the artifact to keep in memory when it was compiled now.
    fn disk_or_compile(
        &self,
        engine: &wasmtime::Engine,
        key: &Key,
        bytes: &[u8],
    ) -> Result<(Component, Option<Vec<u8>>), LoadError> {
        if let Some(component) = self.load(engine, key) {
            return Ok((component, None));
        }
        let component =
            Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let artifact = component.serialize().ok();
        if let Some(artifact) = &artifact {
            self.save(key, artifact);
        }
        Ok((component, artifact))
    }

    fn path(&self, key: &Key) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{}-{:016x}.cwasm", hex::encode(key.0), key.1)))
    }

    /// The cached artifact of `key`, if its file is there and checks; a file that does
    /// not check is removed.
    fn load(&self, engine: &wasmtime::Engine, key: &Key) -> Option<Component> {
        let path = self.path(key)?;
        let file = std::fs::read(&path).ok()?;
        let component = artifact(&file, key)
            // SAFETY: a file of the cache directory that names this component and engine
            // and whose bytes are the ones this code wrote (see the module header).
            .and_then(|artifact| unsafe { Component::deserialize(engine, artifact) }.ok());
        if component.is_none() {
            tracing::warn!(path = %path.display(), "ignoring a compiled-plugin cache file that does not check; compiling again");
            let _ = std::fs::remove_file(&path);
        }
        component
    }

    /// Writes `artifact` for `key` atomically; a failure only costs the next start a
    /// compilation.
    fn save(&self, key: &Key, artifact: &[u8]) {
        let Some(path) = self.path(key) else { return };
        if let Err(error) = write_atomically(&path, &file(key, artifact)) {
            tracing::warn!(path = %path.display(), %error, "could not write the compiled-plugin cache; the next start compiles this plugin again");
        }
    }
}

/// The engine's compatibility hash, folded to 64 bits.
fn compatibility(engine: &wasmtime::Engine) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}

/// A cache file's bytes: the header, then the artifact.
fn file(key: &Key, artifact: &[u8]) -> Vec<u8> {
    let mut file = Vec::with_capacity(HEADER + artifact.len());
    file.extend_from_slice(&MAGIC);
    file.extend_from_slice(&key.0);
    file.extend_from_slice(&key.1.to_le_bytes());
    file.extend_from_slice(&Sha256::digest(artifact));
    file.extend_from_slice(artifact);
    file
}

/// The artifact in `file` if its header is for `key` and its digest matches.
fn artifact<'f>(file: &'f [u8], key: &Key) -> Option<&'f [u8]> {
    let (header, artifact) = file.split_at_checked(HEADER)?;
    let (magic, rest) = header.split_at(8);
    let (component, rest) = rest.split_at(32);
    let (compatibility, digest) = rest.split_at(8);
    let matches = magic == MAGIC
        && component == key.0
        && compatibility == key.1.to_le_bytes()
        && digest == Sha256::digest(artifact).as_slice();
    matches.then_some(artifact)
}

/// Writes `bytes` to a fresh temporary file beside `path`, then renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .expect("a cache file is in the cache directory");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Key = ([7; 32], 42);

    /// A cache in a fresh directory, an engine, and a small component with its key.
    fn setup(dir: &Path) -> (Artifacts, wasmtime::Engine, Key, Vec<u8>) {
        let engine = wasmtime::Engine::default();
        let bytes = wat::parse_str("(component (core module (func (export \"f\"))))").unwrap();
        let key = (Sha256::digest(&bytes).into(), compatibility(&engine));
        (Artifacts::new(Some(dir.join("cache"))), engine, key, bytes)
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "portcullis-artifacts-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_compiled_component_is_written_owner_only_and_read_back() {
        let dir = scratch("written");
        let (artifacts, engine, key, bytes) = setup(&dir);
        let (_, compiled) = artifacts.disk_or_compile(&engine, &key, &bytes).unwrap();
        assert!(compiled.is_some(), "nothing was cached yet");
        let path = artifacts.path(&key).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&path), 0o600);
        let (_, compiled) = artifacts.disk_or_compile(&engine, &key, &bytes).unwrap();
        assert!(compiled.is_none(), "read back from the cache directory");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_ignored_removed_and_rebuilt() {
        let dir = scratch("corrupt");
        let (artifacts, engine, key, bytes) = setup(&dir);
        let engine = &engine;
        artifacts.disk_or_compile(engine, &key, &bytes).unwrap();
        let path = artifacts.path(&key).unwrap();
        let good = std::fs::read(&path).unwrap();
        let mut corrupt = good.clone();
        let middle = HEADER + (good.len() - HEADER) / 2;
        corrupt[middle] ^= 0xff;
        // A valid artifact of another component, renamed to this one's file.
        let other = wat::parse_str("(component)").unwrap();
        let other_key = (Sha256::digest(&other).into(), key.1);
        let other_artifact = Component::new(engine, &other).unwrap().serialize().unwrap();
        // This component's artifact, framed right, but not wasmtime's output.
        let garbage = file(&key, b"not an artifact at all");
        for bad in [
            corrupt,
            good[..good.len() - 1].to_vec(),
            file(&other_key, &other_artifact),
            other_artifact,
            garbage,
            Vec::new(),
        ] {
            std::fs::write(&path, &bad).unwrap();
            assert!(artifacts.load(engine, &key).is_none());
            assert!(!path.exists(), "a file that does not check is removed");
            std::fs::write(&path, &bad).unwrap();
            let (component, compiled) = artifacts.disk_or_compile(engine, &key, &bytes).unwrap();
            assert!(compiled.is_some(), "compiled again");
            assert_eq!(component.serialize().unwrap(), good[HEADER..]);
            assert_eq!(std::fs::read(&path).unwrap(), good, "and written again");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_cache_directory_only_costs_a_compilation() {
        let dir = scratch("unwritable");
        std::fs::create_dir_all(&dir).unwrap();
        // A file where the cache directory should be.
        std::fs::write(dir.join("cache"), b"").unwrap();
        let (artifacts, engine, key, bytes) = setup(&dir);
        let (_, compiled) = artifacts.disk_or_compile(&engine, &key, &bytes).unwrap();
        assert!(compiled.is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_gives_back_its_artifact_only_for_its_own_key() {
        let file = file(&KEY, b"artifact bytes");
        assert_eq!(artifact(&file, &KEY), Some(&b"artifact bytes"[..]));
        assert_eq!(artifact(&file, &([8; 32], 42)), None, "another component");
        assert_eq!(artifact(&file, &([7; 32], 43)), None, "another engine");
    }

    #[test]
    fn a_corrupt_or_truncated_file_gives_nothing() {
        let good = file(&KEY, b"artifact bytes");
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            assert_eq!(artifact(&bad, &KEY), None, "a bit flipped at {at}");
        }
        for len in 0..good.len() {
            assert_eq!(artifact(&good[..len], &KEY), None, "cut at {len}");
        }
    }
}
