//! What every contract version's file has in common: the host side of the `log` import,
//! the linker registration of both worlds, and the calls and conversions of the records
//! that have the same shape in every version served (everything but a connector's
//! status). A version file invokes `version_common!` inside its module, after naming its
//! bindings `policy`, `provider`, `wit` (its `types`), `log` and `wit_provider`, and
//! defining `fn status(model::ConnectorStatus) -> wit::ConnectorStatus`.
//!
//! A macro rather than generic code: the records of each version are distinct types that
//! `bindgen!` generates with the same names, so one text serves every version, and a
//! version whose records differ writes that conversion itself instead of invoking this.

macro_rules! version_common {
    () => {
        impl log::Host for HostState {
            fn log(&mut self, level: log::Level, message: String) {
                let level = match level {
                    log::Level::Trace => tracing::Level::TRACE,
                    log::Level::Debug => tracing::Level::DEBUG,
                    log::Level::Info => tracing::Level::INFO,
                    log::Level::Warn => tracing::Level::WARN,
                    log::Level::Error => tracing::Level::ERROR,
                };
                self.plugin_log(level, &message);
            }
        }

        /// Registers the imports of the policy world.
        pub fn add_policy_imports(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
            policy::PolicyPlugin::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
        }

        /// Registers the imports of the provider world.
        pub fn add_provider_imports(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
            provider::ProviderPlugin::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
        }

        pub fn describe_policy(
            instance: &PolicyInstance,
            store: &mut Store<HostState>,
        ) -> wasmtime::Result<Description> {
            let info = instance.portcullis_plugin_policy().call_describe(store)?;
            Ok(Description {
                name: info.plugin.name,
                version: info.plugin.version,
                reads_arguments: info.reads_arguments,
            })
        }

        pub fn describe_provider(
            instance: &ProviderInstance,
            store: &mut Store<HostState>,
        ) -> wasmtime::Result<Description> {
            let info = instance.portcullis_plugin_provider().call_describe(store)?;
            Ok(Description {
                name: info.name,
                version: info.version,
                reads_arguments: false,
            })
        }

        pub fn access(
            instance: &PolicyInstance,
            store: &mut Store<HostState>,
            ctx: &model::DecisionContext,
            settings: &str,
        ) -> wasmtime::Result<model::Decision> {
            let ctx = decision_context(ctx, settings);
            let answer = instance
                .portcullis_plugin_policy()
                .call_access(store, &ctx)?;
            Ok(decision(answer))
        }

        pub fn request(
            instance: &PolicyInstance,
            store: &mut Store<HostState>,
            ctx: &model::DecisionContext,
            settings: &str,
            request: &model::McpRequest,
        ) -> wasmtime::Result<model::Decision> {
            let ctx = decision_context(ctx, settings);
            let answer = instance.portcullis_plugin_policy().call_request(
                store,
                &ctx,
                &mcp_request(request),
            )?;
            Ok(decision(answer))
        }

        pub fn permitted_tools(
            instance: &PolicyInstance,
            store: &mut Store<HostState>,
            ctx: &model::DecisionContext,
            settings: &str,
        ) -> wasmtime::Result<RawToolSet> {
            let ctx = decision_context(ctx, settings);
            let answer = instance
                .portcullis_plugin_policy()
                .call_permitted_tools(store, &ctx)?;
            Ok(match answer {
                wit::ToolSet::All => RawToolSet::All,
                wit::ToolSet::Only(names) => RawToolSet::Only(names),
            })
        }

        pub fn plan(
            instance: &ProviderInstance,
            store: &mut Store<HostState>,
            request: &model::PlanRequest,
        ) -> wasmtime::Result<Result<RawPlan, String>> {
            let answer = instance
                .portcullis_plugin_provider()
                .call_plan(store, &plan_request(request))?;
            Ok(answer.map(|plan| RawPlan {
                headers: plan.headers,
                query: plan.query,
            }))
        }

        fn hints(h: &model::ToolHints) -> wit::ToolHints {
            wit::ToolHints {
                read_only: h.read_only,
                destructive: h.destructive,
                idempotent: h.idempotent,
                open_world: h.open_world,
            }
        }

        fn connector(c: &model::Connector) -> wit::Connector {
            wit::Connector {
                id: c.id.clone(),
                owner: c.owner.clone(),
                server_url: c.server_url.clone(),
                provider: c.provider.clone(),
                status: status(c.status),
                tools: c
                    .tools
                    .iter()
                    .map(|t| wit::Tool {
                        name: t.name.clone(),
                        hints: hints(&t.hints),
                    })
                    .collect(),
                allowed_tools: c.allowed_tools.clone(),
            }
        }

        fn rule(r: &model::ServerRule) -> wit::ServerRule {
            wit::ServerRule {
                url: r.url.clone(),
                tools: r.tools.as_ref().map(|t| wit::ToolRule {
                    required: t.required.clone(),
                    read_only: t.read_only,
                    destructive: t.destructive,
                    idempotent: t.idempotent,
                    open_world: t.open_world,
                }),
            }
        }

        /// The context record of one call, with the link's operator settings.
        fn decision_context(ctx: &model::DecisionContext, settings: &str) -> wit::DecisionContext {
            wit::DecisionContext {
                run: wit::Run {
                    id: ctx.run.id.clone(),
                    actor: ctx.run.actor.clone(),
                    user: ctx.run.user.clone(),
                    fields: ctx
                        .run
                        .fields
                        .iter()
                        .map(|f| wit::ConnectorField {
                            name: f.name.clone(),
                            kind: match f.kind {
                                model::FieldKind::Single => wit::FieldKind::Single,
                                model::FieldKind::Multiple => wit::FieldKind::Multiple,
                            },
                            rules: f.rules.iter().map(rule).collect(),
                            provided: f.provided.clone(),
                        })
                        .collect(),
                },
                connector: connector(&ctx.connector),
                settings: settings.to_owned(),
            }
        }

        fn mcp_request(r: &model::McpRequest) -> wit::McpRequest {
            wit::McpRequest {
                method: r.method.clone(),
                tool: r.tool.clone(),
                arguments: r.arguments.clone(),
                protocol_version: r.protocol_version.clone(),
            }
        }

        fn decision(d: wit::Decision) -> model::Decision {
            match d {
                wit::Decision::Allow => model::Decision::Allow,
                wit::Decision::Deny(denial) => model::Decision::Deny(model::Denial {
                    code: match denial.code {
                        wit::DenyCode::ConnectorUnavailable => {
                            model::DenyCode::ConnectorUnavailable
                        }
                        wit::DenyCode::ToolNotPermitted => model::DenyCode::ToolNotPermitted,
                        wit::DenyCode::MethodNotAllowed => model::DenyCode::MethodNotAllowed,
                    },
                    reason: denial.reason,
                    message: denial.message,
                }),
            }
        }

        fn plan_request(r: &model::PlanRequest) -> wit_provider::PlanRequest {
            wit_provider::PlanRequest {
                connector_id: r.connector_id.clone(),
                server_url: r.server_url.clone(),
                provider: r.provider.clone(),
                config: r.config.clone(),
                credential: match r.credential {
                    model::CredentialKind::None => wit_provider::CredentialKind::None,
                    model::CredentialKind::ApiKey => wit_provider::CredentialKind::ApiKey,
                    model::CredentialKind::OauthAccessToken => {
                        wit_provider::CredentialKind::OauthAccessToken
                    }
                },
            }
        }
    };
}
