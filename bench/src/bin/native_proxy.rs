//! `portcullis-bench-native`: the proxy with the native decision backend plugged in, for
//! the benchmark harness only. It takes `portcullis serve`'s command line
//! (`serve [--config FILE] [--listen ADDR] [--data-dir DIR]`) and the same environment,
//! and serves as `portcullis serve` does (`portcullis::app::serve_with`, on the same tokio
//! runtime, `portcullis::executor`), except that the
//! built-in plugins' links are answered by their crates' native code
//! (`portcullis_bench::native`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use portcullis::config::Config;
use portcullis_bench::native::NativeDecider;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    match portcullis::executor::build() {
        Ok(runtime) => runtime.block_on(serve()),
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> ExitCode {
    let filter =
        EnvFilter::try_from_env("PORTCULLIS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("serve") {
        bail!(
            "usage: portcullis-bench-native serve [--config FILE] [--listen ADDR] [--data-dir DIR]"
        );
    }
    let (mut file, mut listen, mut data_dir) = (None, None, None);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--config" => file = Some(PathBuf::from(value)),
            "--listen" => listen = Some(value.parse().context("--listen")?),
            "--data-dir" => data_dir = Some(PathBuf::from(value)),
            other => bail!("unknown argument {other}"),
        }
    }
    let mut config = Config::load(file.as_deref())?;
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if let Some(dir) = data_dir {
        config.data_dir = dir;
    }
    portcullis::app::serve_with(
        config,
        Box::new(|runtime| {
            // Logged here, when the proxy hands its runtime over, so the line also says
            // that the decider was plugged in.
            tracing::warn!(
                "decisions of the built-in plugins are made by their native code, without a \
                 sandbox: a benchmark mode, not for production"
            );
            let sandbox = runtime.decider();
            runtime.with_decider(Arc::new(NativeDecider::new(sandbox)))
        }),
    )
    .await
}
