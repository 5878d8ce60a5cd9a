//! What the runtime's integration tests share: the hostile plugin, built once with the
//! same nested cargo the built-in plugins use, a runtime loaded with the built-ins, and a
//! realistic decision context built with the model's fixtures.

use std::path::Path;
use std::sync::{Arc, OnceLock};

pub use portcullis_model::fixtures::call;
use portcullis_model::fixtures::{connector, rule, single, tool};
use portcullis_runtime::*;
use portcullis_wasm_build::{PluginBuild, PluginCrate, nested_target_dir, workspace_root};

const SLACK: &str = "https://mcp.slack.com/mcp";

/// Limits looser than the defaults, so that a busy two-core machine running tests in
/// parallel cannot push a well-behaved call past its CPU deadline; the hostile calls
/// still hit every limit.
pub fn test_limits() -> Limits {
    Limits {
        cpu_deadline_ms: 250,
        wall_timeout_ms: 2_000,
        ..Limits::default()
    }
}

/// The hostile plugin's component bytes.
pub fn hostile_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let root = workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")))
            .expect("the runtime crate lives inside the workspace");
        let build = PluginBuild::new(root.join("Cargo.toml"), nested_target_dir(&root));
        let paths = build
            .build(&[PluginCrate::new("portcullis-hostile-plugin")])
            .unwrap_or_else(|e| panic!("building the hostile plugin failed: {e}"));
        std::fs::read(&paths[0]).expect("read the hostile component")
    })
}

pub fn builtin(name: &str) -> &'static [u8] {
    portcullis_builtins::builtin(name)
        .unwrap_or_else(|| panic!("no built-in plugin named {name}"))
        .wasm
}

pub fn builtins() -> Vec<InitialPlugin<'static>> {
    portcullis_builtins::BUILTINS
        .iter()
        .map(|b| InitialPlugin::builtin(b.name, b.wasm))
        .collect()
}

/// The built-ins with the default chains.
pub fn builtin_runtime() -> Runtime {
    let config = RuntimeConfig {
        limits: test_limits(),
        ..RuntimeConfig::default()
    };
    Runtime::new(config, &builtins()).expect("the built-ins load")
}

/// The built-ins plus `hostile`, which goes first in every policy chain: it allows
/// whatever it does not recognise, so the built-ins after it decide normal calls.
pub fn hostile_runtime() -> Runtime {
    let mut chains = ChainConfig::default();
    for chain in [&mut chains.access, &mut chains.request, &mut chains.tools] {
        chain.insert(0, ChainEntry::Name("hostile".to_owned()));
    }
    let mut plugins = builtins();
    plugins.push(InitialPlugin {
        name: "hostile",
        wasm: hostile_wasm(),
        builtin: false,
    });
    let config = RuntimeConfig {
        limits: test_limits(),
        chains,
        ..RuntimeConfig::default()
    };
    Runtime::new(config, &plugins).expect("the built-ins and the hostile plugin load")
}

/// A run whose input gives connector `conn_1` (a Slack server with the read-only tools
/// `list_channels` and `send_message`) in a field that requires `list_*`.
pub fn context(run_id: &str) -> Arc<DecisionContext> {
    let slack = connector("conn_1", "alice", SLACK)
        .tool(tool("list_channels").read_only())
        .tool(tool("send_message").read_only());
    Arc::new(
        portcullis_model::fixtures::context()
            .run(run_id)
            .connector(slack)
            .field(single("slack").rule(rule(SLACK).required(["list_*"])))
            .provide("slack", "conn_1")
            .build(),
    )
}
