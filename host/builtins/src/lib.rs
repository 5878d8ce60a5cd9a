//! The built-in plugins, compiled from `plugins/` by this crate's build script and
//! embedded as component bytes. The proxy loads them at start; operators may replace any
//! of them at runtime.
//!
//! Which plugins are built in, and what each does in the default chains, is the list in
//! `host/builtins/list` (re-exported here as [`list`]); this crate adds only the bytes.

pub use portcullis_builtins_list as list;

/// One embedded component.
#[derive(Clone, Copy, Debug)]
pub struct Builtin {
    /// The registry name the proxy loads it under, such as `declared-tools`.
    pub name: &'static str,
    /// The component bytes.
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The embedded component named `name`.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_plugin_is_embedded_as_a_component() {
        let names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        let listed: Vec<&str> = list::LIST.iter().map(|e| e.name).collect();
        assert_eq!(names, listed);
        for b in BUILTINS {
            assert_eq!(
                &b.wasm[..8],
                b"\0asm\x0d\0\x01\0",
                "{} is not a component",
                b.name
            );
        }
    }
}
