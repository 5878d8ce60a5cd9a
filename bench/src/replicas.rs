//! The replica rows: `tools/call` of `echo` at [`CLIENTS`] clients through one replica on
//! SQLite, then through two replicas sharing one PostgreSQL database with the clients
//! split evenly over them, back to back in the same run against the same upstream, each
//! on proxies of its own with the same configuration but the database.
//!
//! PostgreSQL is the tests' own (`portcullis_test_upstreams::postgres`, which runs
//! `tests/pg/pg-server.sh`: Debian's `postgresql`, installed when missing, in a temporary
//! directory on a loopback port). Both replicas are the `portcullis` binary with
//! `database_url` in their configuration; the connectors, the actor and the run are set
//! up through the first one and used through both, so the second serves a run it never
//! saw start.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use crate::http::McpTarget;
use crate::load::{self, Plan, Stats};
use crate::proxy::{self, Binaries, Binary, Proxy, Setup};

/// The concurrency of both rows.
pub const CLIENTS: usize = 32;

/// What the two rows measured.
#[derive(Clone, Debug, Default)]
pub struct Replicas {
    /// One replica on SQLite.
    pub sqlite: Stats,
    /// Two replicas on one PostgreSQL database, half of the clients each.
    pub postgres: Stats,
}

/// Both rows' configuration but the database: the per-run and per-connector rate limits
/// are off, since every client uses the one run and the one connector.
const CONFIG: &str =
    "[limits]\nrequests_per_second_per_run = 0\nrequests_per_second_per_connector = 0\n";

/// Measures both rows on proxies of their own, set up for `echo_url` and `list_url`.
pub async fn measure(
    binaries: &Binaries,
    dir: &Path,
    (echo_url, list_url): (&str, &str),
    call: &Value,
    plan: &Plan,
) -> anyhow::Result<Replicas> {
    let plan = Plan {
        clients: CLIENTS,
        ..plan.clone()
    };
    let single = Proxy::start(binaries, Binary::Wasm, &dir.join("sqlite"), CONFIG).await?;
    eprintln!(
        "1 replica on {} (pid {}), SQLite",
        single.addr,
        single.pid()
    );
    let setup = proxy::setup(&single, echo_url, list_url).await?;
    let sqlite = load::run(&target(&single, &setup), call, &plan, Some(single.pid())).await?;
    report("1 replica on SQLite", &sqlite);
    single.stop().await;

    let url = tokio::task::spawn_blocking(portcullis_test_upstreams::postgres::fresh_database)
        .await
        .context("PostgreSQL could not be started (see tests/pg/pg-server.sh)")?;
    let config = format!("database_url = \"{url}\"\n{CONFIG}");
    let mut replicas = Vec::new();
    for name in ["replica-a", "replica-b"] {
        let replica = Proxy::start(binaries, Binary::Wasm, &dir.join(name), &config).await?;
        eprintln!(
            "{name} on {} (pid {}), PostgreSQL",
            replica.addr,
            replica.pid()
        );
        replicas.push(replica);
    }
    let setup = proxy::setup(&replicas[0], echo_url, list_url).await?;
    let targets: Vec<McpTarget> = replicas.iter().map(|r| target(r, &setup)).collect();
    let postgres = load::run_split(&targets, call, &plan).await?;
    report("2 replicas on PostgreSQL", &postgres);
    for replica in replicas {
        replica.stop().await;
    }
    Ok(Replicas { sqlite, postgres })
}

fn target(proxy: &Proxy, setup: &Setup) -> McpTarget {
    McpTarget {
        addr: proxy.addr,
        path: format!("/mcp/{}", setup.echo_connector),
        token: Some(setup.run_token.clone()),
    }
}

fn report(what: &str, stats: &Stats) {
    eprintln!(
        "  {:>3} clients  {what:<26} p50 {:>7.0} µs  p99 {:>7.0} µs  {:>7.0} req/s  {} failed",
        stats.clients, stats.p50_us, stats.p99_us, stats.throughput, stats.errors
    );
    for failure in &stats.failures {
        eprintln!("    failure: {failure}");
    }
}
