//! What the runtime's integration tests share: the hostile plugin, built once per test
//! binary with the same nested cargo the built-in plugins use, a runtime loaded with the
//! built-ins, and a realistic decision context.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use portcullis_runtime::*;
use portcullis_wasm_build::{PluginBuild, PluginCrate, nested_target_dir, workspace_root};

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
        .map(|b| InitialPlugin {
            name: b.name,
            wasm: b.wasm,
            builtin: true,
        })
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

/// A run whose input gives connector `conn_1` (a Slack server with `tools` tools) in a
/// field that requires `list_*`.
pub fn context_with(run_id: &str, tools: usize) -> Arc<DecisionContext> {
    let mut names = vec!["list_channels".to_owned(), "send_message".to_owned()];
    names.extend((names.len()..tools).map(|i| format!("tool_{i}")));
    Arc::new(DecisionContext {
        run: Run {
            id: run_id.into(),
            actor: "actor_1".into(),
            user: "alice".into(),
            fields: vec![ConnectorField {
                name: "slack".into(),
                kind: FieldKind::Single,
                rules: vec![ServerRule {
                    url: "https://mcp.slack.com/mcp".into(),
                    tools: Some(ToolRule {
                        required: Some(vec!["list_*".into()]),
                        ..Default::default()
                    }),
                }],
                provided: vec!["conn_1".into()],
            }],
        },
        connector: Connector {
            id: "conn_1".into(),
            owner: "alice".into(),
            server_url: "https://mcp.slack.com/mcp".into(),
            provider: "bearer".into(),
            status: ConnectorStatus::Authorized,
            tools: names
                .into_iter()
                .take(tools.max(2))
                .map(|name| Tool {
                    name,
                    hints: ToolHints {
                        read_only: Some(true),
                        ..Default::default()
                    },
                })
                .collect(),
            allowed_tools: None,
        },
    })
}

pub fn context(run_id: &str) -> Arc<DecisionContext> {
    context_with(run_id, 2)
}

pub fn tools_call(tool: &str) -> McpRequest {
    McpRequest {
        method: "tools/call".into(),
        tool: Some(tool.into()),
        arguments: Some("{}".into()),
        protocol_version: "2025-11-25".into(),
    }
}
