use std::sync::Arc;

use portcullis_runtime::*;

fn runtime() -> Runtime {
    let plugins: Vec<InitialPlugin> = portcullis_builtins::BUILTINS
        .iter()
        .map(|b| InitialPlugin {
            name: b.name,
            wasm: b.wasm,
            builtin: true,
        })
        .collect();
    Runtime::new(RuntimeConfig::default(), &plugins).unwrap()
}

fn ctx() -> Arc<DecisionContext> {
    Arc::new(DecisionContext {
        run: Run {
            id: "run_1".into(),
            actor: "a".into(),
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
            tools: vec![
                Tool {
                    name: "list_channels".into(),
                    hints: ToolHints::default(),
                },
                Tool {
                    name: "send_message".into(),
                    hints: ToolHints::default(),
                },
            ],
            allowed_tools: None,
        },
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn smoke() {
    let rt = runtime();
    let v = rt.access(ctx()).await;
    assert_eq!(v.value, Decision::Allow, "{v:?}");
    let v = rt.permitted_tools(ctx()).await;
    assert_eq!(
        v.value,
        ToolSet::Only(["list_channels".to_string()].into()),
        "{v:?}"
    );
    let v = rt
        .request(
            ctx(),
            McpRequest {
                method: "tools/call".into(),
                tool: Some("send_message".into()),
                arguments: None,
                protocol_version: "2025-11-25".into(),
            },
        )
        .await;
    assert!(!v.value.is_allow(), "{v:?}");
    let v = rt
        .injection_plan(PlanRequest {
            connector_id: "conn_1".into(),
            server_url: "x".into(),
            provider: "sentry".into(),
            config: "{}".into(),
            credential: CredentialKind::ApiKey,
        })
        .await;
    let plan = v.value.unwrap();
    assert_eq!(
        plan.headers[0].1.render(Some("tok")).unwrap(),
        "Sentry-Bearer tok"
    );
    let t = std::time::Instant::now();
    for _ in 0..100 {
        rt.access(ctx()).await;
    }
    eprintln!("access: {:?}/call", t.elapsed() / 100);
}
