//! The `portcullis` command line: run the proxy, run the demo upstream, call the admin
//! API (`connector`, `actor`, `run`, and `ops`' `plugin`, `chain`, `audit`) without
//! writing curl commands, migrate the database (`migrate`), and rotate the master key
//! (`vault rotate`, with the proxy stopped).
//!
//! The admin commands are thin HTTP clients of `/admin/v1`; they print the answer (JSON,
//! or a table where `ops` offers one), or the API's error message and a non-zero exit
//! status. `connector add --oauth` prints the authorization URL for the owner's browser,
//! then waits until the callback authorized the connector (or the URL expired).

mod client;
mod ops;
mod plugin_local;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use cap_std::fs::Dir;
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use client::{ApiArgs, Body, encode, print, request};

use crate::app::DATABASE_FILE;
use crate::config::{Config, Secret};
use crate::demo_upstream::{self, DemoOptions};
use crate::store::SqliteStore;
use crate::vault::{KeySource, MASTER_KEY_FILE, Vault, replace_secret_file};

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
    /// Bring the database's schema up to date and exit (`serve` also does this at start;
    /// replicas that migrate at once are safe: one migrates, the others wait).
    Migrate {
        /// A TOML configuration file (also PORTCULLIS_CONFIG).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The data directory (also PORTCULLIS_DATA_DIR), for the embedded SQLite database.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The PostgreSQL database (also PORTCULLIS_DATABASE_URL).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Manage the vault of a data directory; stop the proxy first.
    Vault {
        #[command(subcommand)]
        command: VaultCommand,
    },
}

#[derive(Subcommand)]
pub enum VaultCommand {
    /// Re-wrap every stored credential under a new master key, in one transaction. The
    /// new key replaces master.key, or is printed when the current one came from
    /// PORTCULLIS_MASTER_KEY (set it before the next start).
    Rotate {
        /// A TOML configuration file (also PORTCULLIS_CONFIG).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The data directory (also PORTCULLIS_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
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
        #[command(flatten)]
        oauth: Box<OAuthArgs>,
    },
    /// Probe a server: whether it needs authentication, and which methods it offers.
    Probe {
        /// The MCP server URL.
        server_url: String,
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

/// `connector add --oauth`: an OAuth connector, authorized in the owner's browser.
#[derive(Args)]
pub struct OAuthArgs {
    /// Authorize with OAuth: prints the URL to open, then waits for the authorization.
    #[arg(long, conflicts_with = "secret")]
    oauth: bool,
    /// `dynamic` (the proxy registers itself) or `own` (an OAuth app you created).
    #[arg(long, requires = "oauth", value_parser = ["dynamic", "own"])]
    registration: Option<String>,
    /// The own app's client id.
    #[arg(long, requires = "oauth")]
    client_id: Option<String>,
    /// The own app's client secret.
    #[arg(
        long,
        requires = "oauth",
        env = "PORTCULLIS_OAUTH_CLIENT_SECRET",
        hide_env_values = true
    )]
    client_secret: Option<String>,
    /// client_secret_post, client_secret_basic or none.
    #[arg(long, requires = "oauth")]
    token_endpoint_auth_method: Option<String>,
    /// The own app's authorization endpoint, when the server publishes no metadata.
    #[arg(long, requires = "oauth")]
    authorization_url: Option<String>,
    /// The own app's token endpoint, when the server publishes no metadata.
    #[arg(long, requires = "oauth")]
    token_url: Option<String>,
    /// A scope to request (repeatable); default: what the server advertises.
    #[arg(long = "scope", requires = "oauth")]
    scopes: Vec<String>,
    /// Print the authorization URL and return without waiting.
    #[arg(long, requires = "oauth")]
    no_wait: bool,
}

impl OAuthArgs {
    /// The `auth` object of the admin API.
    fn auth(&self) -> Value {
        let mut auth = json!({
            "method": "oauth",
            "registration": self.registration.as_deref().unwrap_or("dynamic"),
        });
        let fields = [
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            (
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            ),
            ("authorization_url", &self.authorization_url),
            ("token_url", &self.token_url),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                auth[name] = json!(value);
            }
        }
        if !self.scopes.is_empty() {
            auth["scopes"] = json!(self.scopes);
        }
        auth
    }
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
                    oauth,
                } => {
                    let auth = match secret {
                        _ if oauth.oauth => oauth.auth(),
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
                    if oauth.oauth {
                        return add_oauth(&api, body, !oauth.no_wait).await;
                    }
                    (reqwest::Method::POST, "/connectors".to_owned(), Some(body))
                }
                ConnectorCommand::Probe { server_url } => (
                    reqwest::Method::POST,
                    "/connectors/probe".to_owned(),
                    Some(json!({ "server_url": server_url })),
                ),
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
        Command::Migrate {
            config,
            data_dir,
            database_url,
        } => {
            let mut config = Config::load(config.as_deref())?;
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
            if let Some(url) = database_url {
                config.database_url = Some(Secret::new(url));
            }
            let (version, database) = crate::store::migrate(
                config.database_url.as_ref().map(Secret::expose),
                &config.data_dir.join(DATABASE_FILE),
            )
            .await?;
            println!("{database}: schema version {version}");
            Ok(())
        }
        Command::Vault {
            command: VaultCommand::Rotate { config, data_dir },
        } => {
            let mut config = Config::load(config.as_deref())?;
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
            rotate_master_key(&config).await
        }
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

/// `vault rotate`. The current key is checked before anything is written. With a key
/// file, the new key is written to `master.key.new` first and renamed over `master.key`
/// only once the transaction has committed, so an interruption leaves either the old
/// state or the new key in `master.key.new` (which the start-up error names).
async fn rotate_master_key(config: &Config) -> anyhow::Result<()> {
    if let Some(url) = &config.database_url {
        return rotate_shared_key(config, url.expose()).await;
    }
    let database = config.data_dir.join(DATABASE_FILE);
    let dir = Dir::open_ambient_dir(&config.data_dir, cap_std::ambient_authority())
        .ok()
        .filter(|dir| dir.exists(DATABASE_FILE))
        .with_context(|| {
            format!(
                "{} holds no Portcullis database, so there is nothing to rotate; check \
                 --data-dir",
                config.data_dir.display()
            )
        })?;
    let env_key = config.master_key.as_ref().map(Secret::expose);
    if env_key.is_none() && !dir.exists(MASTER_KEY_FILE) {
        bail!(
            "neither PORTCULLIS_MASTER_KEY nor {MASTER_KEY_FILE} in {} gives the current key",
            config.data_dir.display()
        );
    }
    let (old, source) = Vault::load(&dir, env_key)?;
    let store = SqliteStore::open(&database).await?;
    let (new, encoded) = Vault::generate()?;
    let pending = format!("{MASTER_KEY_FILE}.new");
    let in_file = source != KeySource::Environment;
    let rotated = async {
        old.bind(&store).await?;
        if in_file {
            replace_secret_file(&dir, &pending, &encoded)?;
        }
        old.rotate(&new, &store).await
    }
    .await;
    store.close().await;
    let credentials = rotated?;
    if in_file {
        dir.rename(&pending, &dir, MASTER_KEY_FILE)
            .and_then(|()| std::fs::File::open(&config.data_dir)?.sync_all())
            .with_context(|| {
                format!(
                    "the database uses the new key, in {pending}; rename it to {MASTER_KEY_FILE}"
                )
            })?;
        println!(
            "rotated: {credentials} credential(s) re-wrapped; the new key is in {}",
            config.data_dir.join(MASTER_KEY_FILE).display()
        );
    } else {
        println!(
            "rotated: {credentials} credential(s) re-wrapped. Set PORTCULLIS_MASTER_KEY to \
             this new key before the next start (the old one no longer opens them):\n{}",
            encoded.as_str()
        );
    }
    Ok(())
}

/// `vault rotate` on a PostgreSQL database that replicas share: the key must come from
/// `PORTCULLIS_MASTER_KEY` (every replica holds it), and the new one is printed, to be set
/// on every replica before they start again.
async fn rotate_shared_key(config: &Config, url: &str) -> anyhow::Result<()> {
    let Some(key) = &config.master_key else {
        bail!(
            "with database_url the master key comes from PORTCULLIS_MASTER_KEY, which every \
             replica shares: set it to the current key (and stop every replica first)"
        );
    };
    let old = Vault::from_env_key(key.expose())?;
    let store = crate::store::open(Some(url), &config.data_dir.join(DATABASE_FILE)).await?;
    let (new, encoded) = Vault::generate()?;
    let rotated = old.rotate(&new, store.as_ref()).await;
    store.close().await;
    let credentials = rotated?;
    println!(
        "rotated: {credentials} credential(s) re-wrapped. Set PORTCULLIS_MASTER_KEY to this \
         new key on every replica before they start again (the old one no longer opens \
         them):\n{}",
        encoded.as_str()
    );
    Ok(())
}

fn parse_json(option: &str, text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("{option} is not valid JSON"))
}

/// How often `connector add --oauth` looks at the connector while it waits.
const POLL: Duration = Duration::from_secs(1);

/// Creates an OAuth connector, prints the URL to open, and waits (when `wait`) until the
/// connector is authorized; prints it then.
async fn add_oauth(api: &ApiArgs, body: Value, wait: bool) -> anyhow::Result<()> {
    let pending = request(
        api,
        reqwest::Method::POST,
        "/connectors",
        Some(Body::Json(body)),
    )
    .await?;
    let (Some(id), Some(url)) = (
        pending.pointer("/connector/id").and_then(Value::as_str),
        pending["authorization_url"].as_str(),
    ) else {
        bail!("the proxy did not answer an authorization URL: {pending}");
    };
    let expires_at = pending["authorization_expires_at"].as_i64().unwrap_or(0);
    let mut out = std::io::stdout();
    let _ = writeln!(out, "Connector {id} waits for its authorization.");
    let _ = writeln!(
        out,
        "Open this URL in a browser and approve the access:\n\n{url}\n"
    );
    let _ = out.flush();
    if !wait {
        return Ok(());
    }
    let path = format!("/connectors/{}", encode(id));
    loop {
        tokio::time::sleep(POLL).await;
        let connector = request(api, reqwest::Method::GET, &path, None).await?;
        if connector["status"] == "authorized" {
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&connector)?);
            return Ok(());
        }
        if crate::clock::now_secs() > expires_at {
            bail!(
                "connector {id} was not authorized before its authorization URL expired; \
                 start again with POST /admin/v1/connectors/{id}/reauthorize, or delete it"
            );
        }
    }
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
