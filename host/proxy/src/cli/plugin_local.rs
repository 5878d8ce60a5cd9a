//! The plugin commands that need no running proxy: make a signing key, sign a component,
//! and try a component against a sample decision (`plugin keygen|sign|test`).
//!
//! Signatures are minisign's format (the `minisign` crate), so what `plugin sign` makes
//! verifies with the `minisign` CLI and the proxy's `trusted_keys`, and the CLI's own
//! keys and signatures work here. A secret key is written owner-only and never printed;
//! when `PORTCULLIS_SIGNING_PASSWORD` is set, keys are made and opened with it.
//!
//! `plugin test` loads the component alone in a runtime of its own, with the limits of
//! the default configuration, as the only link of every chain (or the provider of the
//! profile `test`), asks the decisions the sample file calls for, and prints each answer
//! with its fault; the plugin's log lines go to standard error through the log.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use minisign::{KeyPair, PublicKeyBox, SecretKey, SecretKeyBox};
use portcullis_model::{ChainEntry, DecisionContext, PlanRequest, ToolSet};
use portcullis_runtime::{
    ChainConfig, Decision, InitialPlugin, McpRequest, PluginKind, Runtime, RuntimeConfig, Verdict,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::print;

/// The environment variable holding the password of a signing key.
const PASSWORD_VAR: &str = "PORTCULLIS_SIGNING_PASSWORD";

/// The profile name a provider plugin under test answers for.
const TEST_PROFILE: &str = "test";

fn password() -> Option<String> {
    std::env::var(PASSWORD_VAR).ok().filter(|p| !p.is_empty())
}

/// Writes `text` to a new file at `path`, with `mode`; never over an existing file.
fn create(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `plugin keygen`: a new key pair, the secret key owner-only.
pub fn keygen(secret_key: &Path, public_key: &Path) -> anyhow::Result<()> {
    let password = password();
    let encrypted = password.is_some();
    let pair = match password {
        Some(password) => KeyPair::generate_encrypted_keypair(Some(password)),
        None => KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| anyhow::anyhow!("cannot generate a key pair: {e}"))?;
    let secret = pair
        .sk
        .to_box(None)
        .map_err(|e| anyhow::anyhow!("cannot encode the secret key: {e}"))?;
    let public = pair
        .pk
        .to_box()
        .map_err(|e| anyhow::anyhow!("cannot encode the public key: {e}"))?;
    create(secret_key, &secret.into_string(), 0o600)?;
    create(public_key, &public.into_string(), 0o644)?;
    print(&format!(
        "Secret key: {} ({}; keep it private)\nPublic key: {}\nTrust it with: [plugins] trusted_keys = [\"{}\"]",
        secret_key.display(),
        if encrypted {
            "encrypted with PORTCULLIS_SIGNING_PASSWORD"
        } else {
            "not encrypted: set PORTCULLIS_SIGNING_PASSWORD to encrypt it"
        },
        public_key.display(),
        pair.pk.to_base64(),
    ));
    Ok(())
}

/// `plugin sign`: writes `<file>.minisig` (or `output`) with the secret key's signature.
pub fn sign(file: &Path, secret_key: &Path, output: Option<PathBuf>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(secret_key)
        .with_context(|| format!("cannot read the secret key {}", secret_key.display()))?;
    let secret_box = SecretKeyBox::from_string(&text).map_err(|e| {
        anyhow::anyhow!("{} is not a minisign secret key: {e}", secret_key.display())
    })?;
    let key = open_secret_key(secret_box, secret_key)?;
    let wasm =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let trusted = format!("file:{}", name.unwrap_or_default());
    let signature = minisign::sign(None, &key, wasm, Some(&trusted), None)
        .map_err(|e| anyhow::anyhow!("cannot sign {}: {e}", file.display()))?;
    let output = output.unwrap_or_else(|| {
        let mut name = file.as_os_str().to_owned();
        name.push(".minisig");
        PathBuf::from(name)
    });
    create(&output, &signature.into_string(), 0o644)?;
    let public = minisign::PublicKey::from_secret_key(&key)
        .and_then(|pk| pk.to_box())
        .map(PublicKeyBox::into_string)
        .map_err(|e| anyhow::anyhow!("cannot derive the public key: {e}"))?;
    let public = public.lines().nth(1).unwrap_or_default().to_owned();
    print(&format!(
        "Signature: {}\nSigned by: {public}\nInstall with: portcullis plugin install NAME {} --signature {}",
        output.display(),
        file.display(),
        output.display(),
    ));
    Ok(())
}

/// Opens a secret key: without a password when it is not encrypted, else with
/// `PORTCULLIS_SIGNING_PASSWORD` (never a prompt, so scripts do not hang).
fn open_secret_key(secret_box: SecretKeyBox, path: &Path) -> anyhow::Result<SecretKey> {
    if let Ok(key) = SecretKey::from_unencrypted_box(secret_box.clone())
        && !key.is_encrypted()
    {
        return Ok(key);
    }
    let Some(password) = password() else {
        bail!(
            "the secret key {} is encrypted: set {PASSWORD_VAR} to its password",
            path.display()
        );
    };
    SecretKey::from_box(secret_box, Some(password)).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the secret key {} with {PASSWORD_VAR}: {e}",
            path.display()
        )
    })
}

/// The sample a `plugin test` runs: a decision context, and what to ask about it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sample {
    /// The run and connector a policy decides on.
    context: Option<DecisionContext>,
    /// A message to ask the request chain about (policy plugins).
    request: Option<SampleRequest>,
    /// What a provider plugin is asked for its injection plan.
    plan: Option<PlanRequest>,
    /// The operator settings of the link, as in the chain configuration.
    #[serde(default)]
    settings: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleRequest {
    method: String,
    tool: Option<String>,
    arguments: Option<Value>,
    #[serde(default = "latest_protocol")]
    protocol_version: String,
}

fn latest_protocol() -> String {
    "2025-06-18".to_owned()
}

/// `plugin test`: the answers of the component at `file` to the sample at `sample`.
pub async fn test(file: &Path, sample: &Path) -> anyhow::Result<()> {
    let wasm = std::fs::read(file)
        .with_context(|| format!("cannot read the component {}", file.display()))?;
    let text = std::fs::read_to_string(sample)
        .with_context(|| format!("cannot read the sample {}", sample.display()))?;
    let sample: Sample = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a sample: it takes `context` (a run and a connector), and `request` \
             and `settings`, or `plan`",
            sample.display()
        )
    })?;
    let answers = answers(wasm, sample).await?;
    print(&serde_json::to_string_pretty(&answers)?);
    Ok(())
}

/// Runs the sample's decisions against the component; the JSON `test` prints.
async fn answers(wasm: Vec<u8>, sample: Sample) -> anyhow::Result<Value> {
    let runtime = tokio::task::spawn_blocking(move || lone_runtime(&wasm))
        .await
        .context("the loading task failed")??;
    let kind = runtime
        .plugin(NAME)
        .context("the component was not loaded")?;
    let link = if sample.settings.is_empty() {
        ChainEntry::Name(NAME.to_owned())
    } else {
        ChainEntry::WithSettings {
            plugin: NAME.to_owned(),
            settings: sample.settings,
        }
    };
    let mut chains = ChainConfig::default();
    match kind.kind {
        PluginKind::Policy => {
            chains.access = vec![link.clone()];
            chains.request = vec![link.clone()];
            chains.tools = vec![link];
        }
        PluginKind::Provider => {
            chains
                .providers
                .insert(TEST_PROFILE.to_owned(), NAME.to_owned());
        }
    }
    runtime
        .change(|draft| {
            draft.set_chains(chains);
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("the component cannot serve as a link: {e}"))?;
    let mut answers = json!({ "plugin": kind });
    match kind.kind {
        PluginKind::Policy => {
            let Some(context) = sample.context else {
                bail!("a policy plugin is tested on a `context`: a run and a connector");
            };
            let ctx = Arc::new(context);
            answers["access"] = decision(runtime.access(ctx.clone()).await);
            let tools = runtime.permitted_tools(ctx.clone()).await;
            answers["permitted_tools"] = json!({
                "tools": match &tools.value {
                    ToolSet::All => json!("all"),
                    ToolSet::Only(names) => json!(names),
                },
                "fault": tools.fault.as_ref().map(|f| f.to_string()),
            });
            if let Some(request) = sample.request {
                let request = McpRequest {
                    method: request.method,
                    tool: request.tool,
                    arguments: request.arguments.map(|a| a.to_string()),
                    protocol_version: request.protocol_version,
                };
                answers["request"] = decision(runtime.request(ctx, request).await);
            }
        }
        PluginKind::Provider => {
            let Some(mut plan) = sample.plan else {
                bail!("a provider plugin is tested on a `plan` request");
            };
            plan.provider = TEST_PROFILE.to_owned();
            let verdict = runtime.injection_plan(plan).await;
            answers["plan"] = match verdict.value {
                Ok(plan) => json!({
                    "headers": plan.headers.iter().map(|(n, t)| json!([n, t.to_string()])).collect::<Vec<_>>(),
                    "query": plan.query.iter().map(|(n, t)| json!([n, t.to_string()])).collect::<Vec<_>>(),
                }),
                Err(error) => json!({ "error": error.to_string() }),
            };
        }
    }
    Ok(answers)
}

/// The name the component under test is loaded as.
const NAME: &str = "under-test";

/// A runtime holding the built-ins and the component as [`NAME`], in no chain yet.
fn lone_runtime(wasm: &[u8]) -> anyhow::Result<Runtime> {
    let mut plugins: Vec<InitialPlugin> = portcullis_builtins::BUILTINS
        .iter()
        .map(|b| InitialPlugin::builtin(b.name, b.wasm))
        .collect();
    plugins.push(InitialPlugin {
        name: NAME,
        wasm,
        builtin: false,
    });
    let config = RuntimeConfig {
        memoize: false,
        ..RuntimeConfig::default()
    };
    Runtime::new(config, &plugins).map_err(|e| anyhow::anyhow!("the component was refused: {e}"))
}

/// A decision as `test` prints it: the answer, and the fault that made it if any.
fn decision(verdict: Verdict<Decision>) -> Value {
    json!({
        "answer": verdict.value,
        "fault": verdict.fault.as_ref().map(|f| f.to_string()),
    })
}
