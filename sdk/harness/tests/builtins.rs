//! The harness against built-in plugins: loaded from embedded bytes and built from source.

use std::path::Path;

use portcullis_model::fixtures::{
    self, call, connector, plan_request, request, rule, single, tool,
};
use portcullis_plugin_harness::*;
use portcullis_runtime::*;

const SLACK: &str = "https://mcp.slack.com/mcp";

fn context(tools: &[&str]) -> DecisionContext {
    let slack = tools
        .iter()
        .fold(connector("conn_1", "alice", SLACK), |c, name| {
            c.tool(tool(name))
        });
    fixtures::context()
        .connector(slack)
        .field(single("slack").rule(rule(SLACK).required(["list_*"])))
        .provide("slack", "conn_1")
        .build()
}

/// Limits looser than the defaults: these tests run in a debug build, in parallel, on
/// machines that may be busy compiling, where a 10 ms deadline could cut a healthy call.
fn options() -> Options {
    Options {
        limits: Limits {
            cpu_deadline_ms: 250,
            wall_timeout_ms: 2_000,
            ..Limits::default()
        },
        ..Options::default()
    }
}

fn builtin(name: &str) -> &'static [u8] {
    portcullis_builtins::builtin(name).unwrap().wasm
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_plugin_answers_every_decision() {
    let plugin = Harness::load_with(builtin("declared-tools"), options()).unwrap();
    assert_eq!(plugin.summary().kind, PluginKind::Policy);
    assert_eq!(plugin.summary().reported_name, "declared-tools");
    let ctx = context(&["list_channels", "send_message"]);
    assert_eq!(plugin.access(ctx.clone()).await.value, Decision::Allow);
    assert_eq!(
        plugin.permitted_tools(ctx.clone()).await.value,
        ToolSet::Only(["list_channels".to_owned()].into())
    );
    assert!(
        plugin
            .request(ctx.clone(), call("list_channels"))
            .await
            .value
            .is_allow()
    );
    let verdict = plugin.request(ctx.clone(), call("send_message")).await;
    let Decision::Deny(denial) = verdict.value else {
        panic!("{verdict:?}");
    };
    assert_eq!(denial.reason, "not_declared");
    assert_eq!(&*verdict.plugins[0].name, PLUGIN_NAME);
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_reach_the_plugin() {
    let mut settings = serde_json::Map::new();
    settings.insert("allow_methods".into(), serde_json::json!(["resources/*"]));
    let with_settings = Options {
        settings,
        ..options()
    };
    let plugin = Harness::load_with(builtin("declared-tools"), with_settings).unwrap();
    let read = request("resources/read");
    let verdict = plugin.request(context(&[]), read.clone()).await;
    assert!(verdict.value.is_allow(), "{verdict:?}");
    let plain = Harness::load_with(builtin("declared-tools"), options()).unwrap();
    assert!(!plain.request(context(&[]), read).await.value.is_allow());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_plan_renders_with_the_credential() {
    let options = Options {
        profiles: vec!["sentry".into()],
        ..options()
    };
    let plugin = Harness::load_with(builtin("provider-sentry"), options).unwrap();
    assert_eq!(plugin.summary().kind, PluginKind::Provider);
    let request = PlanRequest {
        server_url: "https://mcp.sentry.dev/mcp".into(),
        provider: "sentry".into(),
        ..plan_request(CredentialKind::ApiKey, "{}")
    };
    let rendered = plugin
        .rendered_plan(request.clone(), Some("tok"))
        .await
        .unwrap();
    assert!(
        rendered
            .headers
            .contains(&("authorization".into(), "Sentry-Bearer tok".into())),
        "{rendered:?}"
    );
    assert!(matches!(
        plugin.rendered_plan(request.clone(), None).await,
        Err(HarnessError::MissingCredential(_))
    ));
    let unknown = PlanRequest {
        provider: "bearer".into(),
        ..request
    };
    assert!(matches!(
        plugin.rendered_plan(unknown, Some("tok")).await,
        Err(HarnessError::Plan(PlanError::UnknownProvider(_)))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn builds_a_plugin_from_its_manifest() {
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/connector-allowlist/Cargo.toml");
    let plugin = Harness::build_with(&manifest, options()).unwrap();
    assert_eq!(plugin.summary().reported_name, "connector-allowlist");
    let verdict = plugin
        .request(context(&["list_channels"]), call("list_channels"))
        .await;
    assert!(verdict.value.is_allow(), "{verdict:?}");
}

#[test]
fn a_core_module_is_refused() {
    let error = Harness::load(b"\0asm\x01\0\0\0").err().unwrap();
    assert!(
        matches!(error, HarnessError::Load(LoadError::NotAComponent)),
        "{error}"
    );
}

/// Each built-in provider's OAuth profile, from its component in the sandbox, checked as
/// the host checks it.
#[tokio::test(flavor = "multi_thread")]
async fn the_providers_oauth_profiles_come_from_their_components() {
    let oauth = |provider: &str, registration: Registration, config: &str| OAuthRequest {
        connector_id: "conn_1".into(),
        server_url: "https://mcp.example.com/mcp".into(),
        provider: provider.into(),
        config: config.into(),
        registration,
        discovered_scopes: vec!["search:read.public".into(), "chat:write".into()],
        requested_scopes: None,
        client_auth_methods: vec![ClientAuth::ClientSecretPost],
    };
    let load = |name: &str, profile: &str| {
        let options = Options {
            profiles: vec![profile.into()],
            ..options()
        };
        Harness::load_with(builtin(name), options).unwrap()
    };

    let slack = load("provider-slack", "slack");
    let profile = slack
        .oauth_profile(oauth("slack", Registration::Own, "{}"))
        .await
        .value
        .unwrap();
    assert_eq!(profile.client_auth, Some(ClientAuth::ClientSecretPost));
    assert_eq!(profile.scopes, Some(vec![]));
    assert_eq!(
        profile.authorization_params,
        [(
            "user_scope".to_owned(),
            "search:read.public,chat:write".to_owned()
        )]
    );
    assert_eq!(
        profile.access_token_pointer.as_deref(),
        Some("/authed_user/access_token")
    );
    let refused = slack
        .oauth_profile(oauth("slack", Registration::Dynamic, "{}"))
        .await;
    assert!(
        matches!(&refused.value, Err(PlanError::Refused(_))),
        "{refused:?}"
    );

    for (name, profile, standard, refused) in [
        ("provider-bearer", "bearer", Registration::Dynamic, None),
        (
            "provider-notion",
            "notion",
            Registration::Dynamic,
            Some(Registration::Own),
        ),
        ("provider-supabase", "supabase", Registration::Dynamic, None),
        (
            "provider-github",
            "github",
            Registration::Own,
            Some(Registration::Dynamic),
        ),
        (
            "provider-sentry",
            "sentry",
            Registration::Dynamic,
            Some(Registration::Own),
        ),
    ] {
        let plugin = load(name, profile);
        let verdict = plugin.oauth_profile(oauth(profile, standard, "{}")).await;
        assert_eq!(verdict.value, Ok(OAuthProfile::default()), "{name}");
        if let Some(registration) = refused {
            let verdict = plugin
                .oauth_profile(oauth(profile, registration, "{}"))
                .await;
            assert!(
                matches!(&verdict.value, Err(PlanError::Refused(_))),
                "{name}: {verdict:?}"
            );
        }
    }
}
