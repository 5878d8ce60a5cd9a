//! # portcullis-sdk
//!
//! What a Portcullis plugin author depends on. A plugin is a small Rust crate built for
//! `wasm32-wasip2` that implements one of two worlds of the WIT package
//! `portcullis:plugin@0.1.0` (see `wit/`):
//!
//! * a **policy** plugin ([`policy::Policy`], exported with [`export_policy!`]) answers the
//!   decisions of the request path: may this run use this connector, may this MCP message
//!   pass, which tools may this run see;
//! * a **provider** plugin ([`provider::Provider`], exported with [`export_provider!`])
//!   says how a connector's credential is written into upstream requests, as templates the
//!   host fills in. No plugin ever sees a credential.
//!
//! The helpers implement the parts of the specification every plugin needs the same way:
//! [`glob`] (`*` and `?`), [`url`] (normalizing `mcpServers[].url` targets), [`hints`] (MCP
//! annotation defaults and the read-only rule) and [`rules`] (the eligibility and
//! permitted-set algorithm). [`testing`] is the native harness: plugin logic is plain Rust
//! and is unit-tested with `cargo test`, no proxy and no WebAssembly needed.
//!
//! A policy writes only what it decides: `access` and `request` allow and
//! `permitted_tools` permits every tool unless the plugin says otherwise.
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

pub mod glob;
pub mod hints;
pub mod log;
pub mod rules;
pub mod testing;
pub mod url;

/// The raw `wit-bindgen` output for each world. Plugins use [`policy`] and [`provider`]
/// instead; the export macros bridge their traits to the bindings' `Guest` traits.
pub mod bindings {
    pub mod policy {
        wit_bindgen::generate!({
            world: "policy-plugin",
            path: "../wit/v0.1.0",
            pub_export_macro: true,
            export_macro_name: "export_policy_bindings",
            default_bindings_module: "portcullis_sdk::bindings::policy",
        });
    }

    pub mod provider {
        wit_bindgen::generate!({
            world: "provider-plugin",
            path: "../wit/v0.1.0",
            pub_export_macro: true,
            export_macro_name: "export_provider_bindings",
            default_bindings_module: "portcullis_sdk::bindings::provider",
        });
    }
}

/// Everything a policy plugin needs: the typed records of the contract, the [`Policy`]
/// trait to implement and shorthands for answers.
///
/// [`Policy`]: policy::Policy
pub mod policy {
    use crate::bindings::policy::exports::portcullis::plugin::policy::Guest;
    pub use crate::bindings::policy::exports::portcullis::plugin::policy::PolicyInfo;
    pub use crate::bindings::policy::portcullis::plugin::types::{
        Connector, ConnectorField, ConnectorStatus, Decision, DecisionContext, Denial, DenyCode,
        FieldKind, McpRequest, PluginInfo, Run, ServerRule, Tool, ToolHints, ToolRule, ToolSet,
    };

    /// A policy plugin: the decisions of the request path. Only `describe` is required;
    /// a policy implements the decisions it makes and inherits the rest, which allow.
    /// In a chain the host combines policies deny-overrides and intersects their tool
    /// sets, so an inherited answer never widens what another policy narrows.
    pub trait Policy {
        /// The plugin's name and version, and whether `request` reads tool arguments.
        fn describe() -> PolicyInfo;

        /// May this run use this connector at all? Inherited: allow.
        fn access(_ctx: DecisionContext) -> Decision {
            Decision::Allow
        }

        /// May this client-to-server message pass? Inherited: allow.
        fn request(_ctx: DecisionContext, _request: McpRequest) -> Decision {
            Decision::Allow
        }

        /// Which tools of the connector's snapshot the run may see and call. Inherited:
        /// all of them.
        fn permitted_tools(_ctx: DecisionContext) -> ToolSet {
            ToolSet::All
        }
    }

    /// The bridge [`export_policy!`](crate::export_policy) relies on: every [`Policy`] is
    /// the component's `policy` export.
    impl<T: Policy> Guest for T {
        fn describe() -> PolicyInfo {
            <T as Policy>::describe()
        }
        fn access(ctx: DecisionContext) -> Decision {
            <T as Policy>::access(ctx)
        }
        fn request(ctx: DecisionContext, request: McpRequest) -> Decision {
            <T as Policy>::request(ctx, request)
        }
        fn permitted_tools(ctx: DecisionContext) -> ToolSet {
            <T as Policy>::permitted_tools(ctx)
        }
    }

    /// A policy's self-description for a plugin that ignores tool arguments.
    pub fn info(name: &str, version: &str) -> PolicyInfo {
        PolicyInfo {
            plugin: PluginInfo {
                name: name.to_owned(),
                version: version.to_owned(),
            },
            reads_arguments: false,
        }
    }

    /// A deny answer.
    pub fn deny(code: DenyCode, reason: &str, message: impl Into<String>) -> Decision {
        Decision::Deny(Denial {
            code,
            reason: reason.to_owned(),
            message: message.into(),
        })
    }
}

/// Everything a provider plugin needs: the [`Provider`] trait and the plan records.
///
/// [`Provider`]: provider::Provider
pub mod provider {
    use crate::bindings::provider::exports::portcullis::plugin::provider::Guest;
    pub use crate::bindings::provider::exports::portcullis::plugin::provider::{
        CredentialKind, InjectionPlan, PlanRequest,
    };
    pub use crate::bindings::provider::portcullis::plugin::types::PluginInfo;

    /// A provider plugin: where a connector's credential goes in upstream requests.
    pub trait Provider {
        /// The plugin's name and version.
        fn describe() -> PluginInfo;

        /// The plan for a connector, with placeholders ([`SECRET`], [`ACCESS_TOKEN`])
        /// where the host writes the credential; or a refusal in the provider's words.
        fn plan(request: PlanRequest) -> Result<InjectionPlan, String>;
    }

    /// The bridge [`export_provider!`](crate::export_provider) relies on: every
    /// [`Provider`] is the component's `provider` export.
    impl<T: Provider> Guest for T {
        fn describe() -> PluginInfo {
            <T as Provider>::describe()
        }
        fn plan(request: PlanRequest) -> Result<InjectionPlan, String> {
            <T as Provider>::plan(request)
        }
    }

    /// The placeholder the host replaces with an API key or token.
    pub const SECRET: &str = "{secret}";
    /// The placeholder the host replaces with an OAuth access token.
    pub const ACCESS_TOKEN: &str = "{access_token}";

    /// A provider's self-description.
    pub fn info(name: &str, version: &str) -> PluginInfo {
        PluginInfo {
            name: name.to_owned(),
            version: version.to_owned(),
        }
    }

    /// The placeholder naming the credential of `kind`, or `None` when there is none.
    pub fn credential_placeholder(kind: CredentialKind) -> Option<&'static str> {
        match kind {
            CredentialKind::None => None,
            CredentialKind::ApiKey => Some(SECRET),
            CredentialKind::OauthAccessToken => Some(ACCESS_TOKEN),
        }
    }

    /// The provider configuration of a plan request as a JSON object.
    pub fn config(
        request: &PlanRequest,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        match serde_json::from_str(&request.config) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(_) => Err("the provider configuration must be a JSON object".to_owned()),
            Err(e) => Err(format!("the provider configuration is not valid JSON: {e}")),
        }
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
        $crate::bindings::policy::export_policy_bindings!($ty);
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
        $crate::bindings::provider::export_provider_bindings!($ty);
    };
}
