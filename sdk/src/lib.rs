//! # portcullis-sdk
//!
//! What a Portcullis plugin author depends on. A plugin is a small Rust crate built for
//! `wasm32-wasip2` that implements one of two worlds of the WIT package
//! `portcullis:plugin@0.2.0` (see `wit/`):
//!
//! * a **policy** plugin ([`policy::Policy`], exported with [`export_policy!`]) answers the
//!   decisions of the request path: may this run use this connector, may this MCP message
//!   pass, which tools may this run see;
//! * a **provider** plugin ([`provider::Provider`], exported with [`export_provider!`])
//!   says how a connector's credential is written into upstream requests, as templates the
//!   host fills in, and where the provider's OAuth departs from the standard flow. No
//!   plugin ever sees a credential.
//!
//! The helpers implement the parts of the specification every plugin needs the same way:
//! [`glob`] (`*` and `?`), [`url`] (normalizing `mcpServers[].url` targets), [`hints`] (MCP
//! annotation defaults and the read-only rule) and [`rules`] (the eligibility and
//! permitted-set algorithm). [`testing`] is the native harness: plugin logic is plain Rust
//! and is unit-tested with `cargo test`, no proxy and no WebAssembly needed.
//!
//! A policy writes only what it decides: `access` and `request` allow and
//! `permitted_tools` permits every tool unless the plugin says otherwise. A provider
//! writes its `plan`, and `oauth` only where its OAuth is not the standard flow.
//!
//! ```
//! use portcullis_sdk::policy::*;
//!
//! struct NoDeletes;
//!
//! impl Policy for NoDeletes {
//!     fn describe() -> PolicyInfo {
//!         info("no-deletes", env!("CARGO_PKG_VERSION"))
//!     }
//!     fn request(_ctx: DecisionContext, request: McpRequest) -> Decision {
//!         match request.tool.as_deref() {
//!             Some(tool) if tool.starts_with("delete_") => {
//!                 deny(DenyCode::ToolNotPermitted, "deletes_forbidden", "no deletes here")
//!             }
//!             _ => Decision::Allow,
//!         }
//!     }
//! }
//!
//! portcullis_sdk::export_policy!(NoDeletes);
//! # use portcullis_sdk::testing::{call, context};
//! # assert!(matches!(NoDeletes::request(context().build(), call("delete_file")), Decision::Deny(_)));
//! # assert!(matches!(NoDeletes::access(context().build()), Decision::Allow));
//! ```
//!
//! ## Contract versions
//!
//! Plugins are written against the records of `0.2.0`, and by default exported as
//! `0.2.0` components. With the feature `contract-v0-1-0` the same source is exported as a
//! `0.1.0` component instead (`v0_1_0`): the records are converted at the boundary, a
//! provider's `oauth` is not exported (the host gives a `0.1.0` provider the standard
//! profile), and a connector pending its first authorization reaches the plugin as
//! needing re-authorization. The host serves both versions; the feature exists to build
//! plugins for hosts that serve only `0.1.0`, and to test that the host still serves it.

pub mod glob;
pub mod hints;
pub mod log;
pub mod policy;
pub mod provider;
pub mod rules;
pub mod testing;
pub mod url;
#[cfg(feature = "contract-v0-1-0")]
#[doc(hidden)]
pub mod v0_1_0;

/// The raw `wit-bindgen` output for each world of `0.2.0`. Plugins use [`policy`] and
/// [`provider`] instead; the export macros bridge their traits to the bindings' `Guest`
/// traits.
pub mod bindings {
    pub mod policy {
        wit_bindgen::generate!({
            world: "policy-plugin",
            path: "../wit/v0.2.0",
            pub_export_macro: true,
            export_macro_name: "export_policy_bindings",
            default_bindings_module: "portcullis_sdk::bindings::policy",
        });
    }

    pub mod provider {
        wit_bindgen::generate!({
            world: "provider-plugin",
            path: "../wit/v0.2.0",
            additional_derives: [PartialEq, Eq],
            with: {
                "portcullis:plugin/types@0.2.0": crate::bindings::policy::portcullis::plugin::types,
                "portcullis:plugin/log@0.2.0": crate::bindings::policy::portcullis::plugin::log,
            },
            pub_export_macro: true,
            export_macro_name: "export_provider_bindings",
            default_bindings_module: "portcullis_sdk::bindings::provider",
        });
    }
}

/// Exports a type implementing [`policy::Policy`] as the plugin's `policy` interface
/// (through the bindings' `Guest` trait, which every `Policy` implements).
#[macro_export]
macro_rules! export_policy {
    ($ty:ident) => {
        // Only a component uses the export symbols, and native linkers reject their
        // `pkg:iface/name@version#func` names: plugins still build and test natively.
        #[cfg(target_arch = "wasm32")]
        $crate::__export_policy_world!($ty);
    };
}

/// Exports a type implementing [`provider::Provider`] as the plugin's `provider` interface
/// (through the bindings' `Guest` trait, which every `Provider` implements).
#[macro_export]
macro_rules! export_provider {
    ($ty:ident) => {
        // Only a component uses the export symbols, and native linkers reject their
        // `pkg:iface/name@version#func` names: plugins still build and test natively.
        #[cfg(target_arch = "wasm32")]
        $crate::__export_provider_world!($ty);
    };
}

// The world the export macros use is chosen when the SDK is compiled, by its feature: a
// `cfg` inside an exported macro would test the plugin crate's features instead.

#[cfg(not(feature = "contract-v0-1-0"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_policy_world {
    ($ty:ident) => {
        $crate::bindings::policy::export_policy_bindings!($ty);
    };
}

#[cfg(not(feature = "contract-v0-1-0"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_provider_world {
    ($ty:ident) => {
        $crate::bindings::provider::export_provider_bindings!($ty);
    };
}

#[cfg(feature = "contract-v0-1-0")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_policy_world {
    ($ty:ident) => {
        $crate::v0_1_0::policy::export_policy_bindings!($ty);
    };
}

#[cfg(feature = "contract-v0-1-0")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_provider_world {
    ($ty:ident) => {
        $crate::v0_1_0::provider::export_provider_bindings!($ty);
    };
}
