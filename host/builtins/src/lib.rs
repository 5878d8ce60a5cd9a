//! The built-in plugins, compiled from `plugins/` by this crate's build script and
//! embedded as component bytes. The proxy loads them at start; operators may replace any
//! of them at runtime.

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
    fn every_builtin_is_a_component() {
        assert_eq!(BUILTINS.len(), 6);
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
