//! # portcullis-bench (library)
//!
//! What the benchmark plugs into a proxy: [`native::NativeDecider`], which answers the
//! built-in plugins' links with their crates' Rust code instead of the sandbox, through
//! the runtime's `Decider` seam. The `portcullis-bench-native` binary is the proxy with it
//! plugged in; the harness (`portcullis-bench`) measures that proxy beside the default
//! one, so the sandbox's share of the proxy's cost shows on its own.

pub mod native;
