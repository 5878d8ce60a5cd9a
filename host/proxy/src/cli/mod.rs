//! The `portcullis` command line: run the proxy, run the demo upstream, and call the
//! admin API (`connector`, `actor`, `run`, and `ops`' `plugin`, `chain`, `audit`) without
//! writing curl commands.
//!
//! The admin commands are thin HTTP clients of `/admin/v1`; they print the answer (JSON,
//! or a table where `ops` offers one), or the API's error message and a non-zero exit
//! status.

mod client;
mod ops;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use client::{ApiArgs, Body, encode, print, request};

use crate::config::Config;
use crate::demo_upstream::{self, DemoOptions};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "An MCP connector proxy whose every decision is made by sandboxed WebAssembly plugins"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the proxy.
    Serve {
        /// A TOML configuration file (also PORTCULLIS_CONFIG).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The address to listen on (also PORTCULLIS_LISTEN).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// The data directory (also PORTCULLIS_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run a small MCP server with demo tools, to try the proxy with.
    DemoUpstream {
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// Answer 401 unless requests carry `Authorization: Bearer <TOKEN>`.
        #[arg(long, env = "DEMO_REQUIRE_TOKEN", hide_env_values = true)]
        require_token: Option<String>,
    },
    /// Manage connectors through the admin API.
    Connector {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: ConnectorCommand,
    },
    /// Manage actors through the admin API.
    Actor {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: ActorCommand,
    },
    /// Start and finish runs through the admin API.
    Run {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: RunCommand,
    },
    /// Inspect, install, roll back and delete plugins.
    Plugin {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: ops::PluginCommand,
    },
    /// Show or replace the chain configuration.
    Chain {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: ops::ChainCommand,
    },
    /// Query, export and verify the audit log.
    Audit {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: ops::AuditCommand,
    },
}

#[derive(Subcommand)]
pub enum ConnectorCommand {
    /// Add a connector: the proxy contacts the server and discovers its tools first.
    Add {
        #[arg(long)]
        owner: String,
        /// The MCP server URL.
        #[arg(long = "server-url")]
        server_url: String,
        #[arg(long)]
        name: Option<String>,
        /// The provider profile (bearer, github, sentry, ...).
        #[arg(long)]
        provider: Option<String>,
        /// The API key or token; without it the connector uses no authentication.
        #[arg(long, env = "PORTCULLIS_CONNECTOR_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// Provider settings as a JSON object.
        #[arg(long)]
        config: Option<String>,
    },
    /// List connectors.
    List {
        #[arg(long)]
        owner: Option<String>,
    },
    /// Restrict a connector to the named tools, or allow all with --all.
    Allow {
        id: String,
        tools: Vec<String>,
        #[arg(long, conflicts_with = "tools")]
        all: bool,
    },
    /// Delete a connector.
    Rm { id: String },
}

#[derive(Subcommand)]
pub enum ActorCommand {
    /// Create or replace an actor from an input-schema JSON file.
    Put {
        id: String,
        #[arg(long)]
        schema: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum RunCommand {
    /// Start a run; prints its token and environment once.
    Start {
        #[arg(long)]
        actor: String,
        #[arg(long)]
        user: String,
        /// The run input as a JSON object.
        #[arg(long, default_value = "{}")]
        input: String,
    },
    /// Finish a run: its token stops working at once.
    Finish {
        id: String,
        #[arg(long)]
        status: Option<String>,
    },
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
        } => {
            let mut config = Config::load(config.as_deref())?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
            crate::app::serve(config).await
        }
        Command::DemoUpstream {
            listen,
            require_token,
        } => demo_upstream::run(listen, DemoOptions { require_token }).await,
        Command::Connector { api, command } => {
            let (method, path, body) = match command {
                ConnectorCommand::Add {
                    owner,
                    server_url,
                    name,
                    provider,
                    secret,
                    config,
                } => {
                    let auth = match secret {
                        Some(secret) => json!({"method": "api_key", "secret": secret}),
                        None => json!({"method": "none"}),
                    };
                    let mut body = json!({"owner": owner, "server_url": server_url, "auth": auth});
                    if let Some(name) = name {
                        body["name"] = json!(name);
                    }
                    if let Some(provider) = provider {
                        body["provider"] = json!(provider);
                    }
                    if let Some(config) = config {
                        body["config"] = parse_json("--config", &config)?;
                    }
                    (reqwest::Method::POST, "/connectors".to_owned(), Some(body))
                }
                ConnectorCommand::List { owner } => {
                    let path = match owner {
                        Some(owner) => format!("/connectors?owner={}", encode(&owner)),
                        None => "/connectors".to_owned(),
                    };
                    (reqwest::Method::GET, path, None)
                }
                ConnectorCommand::Allow { id, tools, all } => {
                    let allowed = if all { Value::Null } else { json!(tools) };
                    let body = json!({ "allowed_tools": allowed });
                    (
                        reqwest::Method::PATCH,
                        format!("/connectors/{}", encode(&id)),
                        Some(body),
                    )
                }
                ConnectorCommand::Rm { id } => (
                    reqwest::Method::DELETE,
                    format!("/connectors/{}", encode(&id)),
                    None,
                ),
            };
            call(&api, method, &path, body).await
        }
        Command::Actor { api, command } => match command {
            ActorCommand::Put { id, schema } => {
                let text = std::fs::read_to_string(&schema)
                    .with_context(|| format!("cannot read {}", schema.display()))?;
                let schema = parse_json("--schema", &text)?;
                let body = json!({ "input_schema": schema });
                call(
                    &api,
                    reqwest::Method::PUT,
                    &format!("/actors/{}", encode(&id)),
                    Some(body),
                )
                .await
            }
        },
        Command::Plugin { api, command } => ops::plugin(&api, command).await,
        Command::Chain { api, command } => ops::chain(&api, command).await,
        Command::Audit { api, command } => ops::audit(&api, command).await,
        Command::Run { api, command } => match command {
            RunCommand::Start { actor, user, input } => {
                let body =
                    json!({"actor": actor, "user": user, "input": parse_json("--input", &input)?});
                call(&api, reqwest::Method::POST, "/runs", Some(body)).await
            }
            RunCommand::Finish { id, status } => {
                let body = match status {
                    Some(status) => json!({ "status": status }),
                    None => json!({}),
                };
                call(
                    &api,
                    reqwest::Method::POST,
                    &format!("/runs/{}/finish", encode(&id)),
                    Some(body),
                )
                .await
            }
        },
    }
}

fn parse_json(option: &str, text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("{option} is not valid JSON"))
}

/// Calls the admin API and prints the answer.
async fn call(
    api: &ApiArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<()> {
    let answer = request(api, method, path, body.map(Body::Json)).await?;
    let shown = match answer {
        Value::Null => "done".to_owned(),
        value => serde_json::to_string_pretty(&value)?,
    };
    print(&shown);
    Ok(())
}
