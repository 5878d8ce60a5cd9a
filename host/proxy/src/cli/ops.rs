//! The operator's commands: `plugin`, `chain` and `audit`.
//!
//! Lists print a readable table by default and JSON with `-o json`. Two commands work
//! without a proxy: `plugin inspect FILE` reads a component file, and `audit verify
//! --data-dir DIR` reads the database directly (read-only, so it works on a copy) and
//! exits non-zero naming the first bad record. `audit export` pages through
//! `GET /audit` and writes JSON lines, oldest first.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{ApiArgs, Body, encode, print, request};
use super::plugin_local;
use crate::app::DATABASE_FILE;

#[derive(Clone, Copy, Default, ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Json,
}

#[derive(Subcommand)]
pub enum PluginCommand {
    /// List the loaded plugins and the chains that use them.
    List {
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Everything about a plugin: world, imports, exports, digest, signer, limits,
    /// chains. A path to a component file is inspected locally.
    Inspect { plugin: String },
    /// Install a component file as plugin NAME.
    Install {
        name: String,
        file: PathBuf,
        /// Refuse unless the file's SHA-256 is this (hex).
        #[arg(long)]
        sha256: Option<String>,
        /// The minisign signature file (`FILE.minisig`).
        #[arg(long)]
        signature: Option<PathBuf>,
    },
    /// The kept versions of plugin NAME.
    Versions {
        name: String,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Roll plugin NAME back to a kept version (by default the previous one).
    Rollback {
        name: String,
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Delete plugin NAME (refused while a chain uses it).
    Delete { name: String },
    /// Make a minisign key pair for `plugin sign` (PORTCULLIS_SIGNING_PASSWORD, when set,
    /// encrypts the secret key).
    Keygen {
        /// Where the secret key goes (created owner-only; must not exist).
        #[arg(long, default_value = "portcullis.key")]
        secret_key: PathBuf,
        /// Where the public key goes, for the proxy's `trusted_keys`.
        #[arg(long, default_value = "portcullis.pub")]
        public_key: PathBuf,
    },
    /// Sign a component file: writes FILE.minisig, for `install --signature`.
    Sign {
        file: PathBuf,
        /// A minisign secret key (from `plugin keygen` or `minisign -G`).
        #[arg(long)]
        secret_key: PathBuf,
        /// Where the signature goes (default: FILE.minisig).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Try a component file locally on a sample decision and print its answers.
    Test {
        file: PathBuf,
        /// A JSON sample: `context` (a run and a connector), `request` and `settings`
        /// for a policy plugin; `plan` for a provider plugin.
        #[arg(long)]
        request: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum ChainCommand {
    /// Print the chain configuration as JSON.
    Show,
    /// Replace the chain configuration with the JSON file FILE (the shape `show` prints).
    Set { file: PathBuf },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// The newest audit records matching the filters.
    List {
        #[command(flatten)]
        filter: AuditFilter,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Write every matching record as JSON lines, oldest first.
    Export {
        #[command(flatten)]
        filter: AuditFilter,
    },
    /// Check the hash chain of the audit log in a data directory (or a copy of one),
    /// offline and read-only.
    Verify {
        #[arg(
            long,
            env = "PORTCULLIS_DATA_DIR",
            required_unless_present = "database_url"
        )]
        data_dir: Option<PathBuf>,
        /// Check the PostgreSQL database that replicas share instead (read-only).
        #[arg(long, env = "PORTCULLIS_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct AuditFilter {
    #[arg(long)]
    run: Option<String>,
    #[arg(long)]
    connector: Option<String>,
    /// `allow` or `deny`.
    #[arg(long)]
    decision: Option<String>,
    #[arg(long)]
    method: Option<String>,
    /// Records in which this plugin took part.
    #[arg(long)]
    plugin: Option<String>,
    /// `decision` or `admin`.
    #[arg(long)]
    kind: Option<String>,
    /// Unix milliseconds, inclusive.
    #[arg(long)]
    since: Option<i64>,
    /// Unix milliseconds, exclusive.
    #[arg(long)]
    until: Option<i64>,
}

impl AuditFilter {
    fn query(&self) -> String {
        let pairs = [
            ("run", self.run.clone()),
            ("connector", self.connector.clone()),
            ("decision", self.decision.clone()),
            ("method", self.method.clone()),
            ("plugin", self.plugin.clone()),
            ("kind", self.kind.clone()),
            ("since", self.since.map(|v| v.to_string())),
            ("until", self.until.map(|v| v.to_string())),
        ];
        pairs
            .into_iter()
            .filter_map(|(key, value)| Some(format!("&{key}={}", encode(&value?))))
            .collect()
    }
}

pub async fn plugin(api: &ApiArgs, command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::List { output } => {
            let list = request(api, Method::GET, "/plugins", None).await?;
            show(
                &list,
                output,
                &["name", "kind", "version", "sha256", "builtin", "chains"],
            );
        }
        PluginCommand::Inspect { plugin } => {
            let path = Path::new(&plugin);
            let answer = if path.is_file() {
                let wasm = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                serde_json::to_value(portcullis_runtime::inspect(&wasm)?)?
            } else {
                let path = format!("/plugins/{}", encode(&plugin));
                request(api, Method::GET, &path, None).await?
            };
            print(&serde_json::to_string_pretty(&answer)?);
        }
        PluginCommand::Install {
            name,
            file,
            sha256,
            signature,
        } => {
            let wasm =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut query = Vec::new();
            if let Some(sha256) = sha256 {
                query.push(format!("sha256={}", encode(&sha256)));
            }
            if let Some(signature) = signature {
                let text = std::fs::read(&signature)
                    .with_context(|| format!("cannot read {}", signature.display()))?;
                let encoded =
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text);
                query.push(format!("signature={}", encode(&encoded)));
            }
            let path = format!("/plugins/{}?{}", encode(&name), query.join("&"));
            let answer = request(api, Method::PUT, &path, Some(Body::Bytes(wasm))).await?;
            print(&serde_json::to_string_pretty(&answer)?);
        }
        PluginCommand::Versions { name, output } => {
            let path = format!("/plugins/{}/versions", encode(&name));
            let answer = request(api, Method::GET, &path, None).await?;
            show(
                &answer["versions"],
                output,
                &[
                    "sha256",
                    "version",
                    "installed_at",
                    "signed_by",
                    "current",
                    "previous",
                    "builtin",
                ],
            );
        }
        PluginCommand::Rollback { name, sha256 } => {
            let body = sha256.map(|sha256| Body::Json(json!({ "sha256": sha256 })));
            let path = format!("/plugins/{}/rollback", encode(&name));
            let answer = request(api, Method::POST, &path, body).await?;
            print(&serde_json::to_string_pretty(&answer)?);
        }
        PluginCommand::Delete { name } => {
            let path = format!("/plugins/{}", encode(&name));
            request(api, Method::DELETE, &path, None).await?;
            print(&format!("plugin {name} deleted"));
        }
        PluginCommand::Keygen {
            secret_key,
            public_key,
        } => plugin_local::keygen(&secret_key, &public_key)?,
        PluginCommand::Sign {
            file,
            secret_key,
            output,
        } => plugin_local::sign(&file, &secret_key, output)?,
        PluginCommand::Test { file, request } => plugin_local::test(&file, &request).await?,
    }
    Ok(())
}

pub async fn chain(api: &ApiArgs, command: ChainCommand) -> anyhow::Result<()> {
    let answer = match command {
        ChainCommand::Show => request(api, Method::GET, "/chains", None).await?,
        ChainCommand::Set { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let body: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            request(api, Method::PUT, "/chains", Some(Body::Json(body))).await?
        }
    };
    print(&serde_json::to_string_pretty(&answer)?);
    Ok(())
}

pub async fn audit(api: &ApiArgs, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::List {
            filter,
            limit,
            output,
        } => {
            let path = format!("/audit?limit={limit}{}", filter.query());
            let records = request(api, Method::GET, &path, None).await?;
            show(
                &records,
                output,
                &[
                    "seq", "at_ms", "kind", "run", "method", "tool", "decision", "reason",
                    "action", "target",
                ],
            );
        }
        AuditCommand::Export { filter } => {
            let mut after = 0i64;
            loop {
                let path = format!("/audit?limit=1000&after={after}{}", filter.query());
                let records = request(api, Method::GET, &path, None).await?;
                let records = records.as_array().cloned().unwrap_or_default();
                for record in &records {
                    print(&record.to_string());
                    after = record["seq"].as_i64().unwrap_or(after);
                }
                if records.len() < 1000 {
                    break;
                }
            }
        }
        AuditCommand::Verify {
            data_dir,
            database_url,
        } => {
            let outcome = match (database_url, data_dir) {
                (Some(url), _) => crate::store::verify_audit_postgres(&url).await?,
                (None, Some(data_dir)) => {
                    let path = data_dir.join(DATABASE_FILE);
                    if !path.is_file() {
                        bail!(
                            "{} does not exist; pass the proxy's data directory",
                            path.display()
                        );
                    }
                    crate::store::verify_audit_file(&path).await?
                }
                (None, None) => bail!("pass --data-dir or --database-url"),
            };
            match outcome {
                Ok(verified) => print(&format!(
                    "audit log verified: {} chained records ({} from before the chain); head {}",
                    verified.chained, verified.legacy, verified.head
                )),
                Err(broken) => bail!("the audit log was tampered with: {broken}"),
            }
        }
    }
    Ok(())
}

/// Prints an array of objects as a table of `columns`, or as JSON.
fn show(value: &Value, output: Output, columns: &[&str]) {
    let rows = match (output, value.as_array()) {
        (Output::Table, Some(rows)) => rows,
        _ => {
            print(&serde_json::to_string_pretty(value).unwrap_or_default());
            return;
        }
    };
    let cell = |row: &Value, column: &str| match &row[column] {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|c| cell(row, c)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].len())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    print(&line(columns.iter().map(|c| c.to_uppercase()).collect()));
    for row in cells {
        print(&line(row));
    }
}
