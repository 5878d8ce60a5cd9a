//! The sandbox against a plugin that misbehaves on purpose (`tests/plugins/hostile`): every
//! misbehaviour is a deny with the right fault, within its deadline, and the runtime
//! serves the next call normally.

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use portcullis_runtime::*;

use crate::support::*;

/// Generous for a debug build on a loaded machine; the limits themselves are far lower.
const BOUND: Duration = Duration::from_secs(2);

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(hostile_runtime)
}

fn denial(verdict: &Verdict<Decision>) -> &Denial {
    match &verdict.value {
        Decision::Deny(denial) => denial,
        Decision::Allow => panic!("expected a deny: {verdict:?}"),
    }
}

/// Asks for a `tools/call` of `command` and checks the fault and the elapsed time.
async fn request_fault(command: &str) -> (Fault, Denial) {
    let rt = runtime();
    let started = Instant::now();
    let verdict = rt.request(context("run_1"), call(command)).await;
    let elapsed = started.elapsed();
    assert!(elapsed < BOUND, "{command}: took {elapsed:?}");
    let denial = denial(&verdict).clone();
    assert_eq!(denial.code, DenyCode::ToolNotPermitted, "{verdict:?}");
    let fault = verdict
        .fault
        .clone()
        .unwrap_or_else(|| panic!("{command}: no fault: {verdict:?}"));
    assert_eq!(denial.reason, fault.reason());
    assert_eq!(
        verdict.plugins.len(),
        1,
        "the chain stops at the failed plugin"
    );
    assert_eq!(&*verdict.plugins[0].name, "hostile");
    still_serving().await;
    (fault, denial)
}

/// A plain call right after a failure: the built-ins after `hostile` allow it.
async fn still_serving() {
    let verdict = runtime()
        .request(context("run_1"), call("list_channels"))
        .await;
    assert_eq!(verdict.value, Decision::Allow, "{verdict:?}");
    assert_eq!(verdict.fault, None);
    assert_eq!(verdict.plugins.len(), 3);
}

/// The message of a deny the plugin chose (no fault), reporting what it observed.
async fn report(command: &str, reason: &str) -> String {
    let verdict = runtime().request(context("run_1"), call(command)).await;
    assert_eq!(verdict.fault, None, "{verdict:?}");
    let denial = denial(&verdict);
    assert_eq!(denial.reason, reason, "{verdict:?}");
    denial.message.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn infinite_loop_hits_the_cpu_deadline() {
    let (fault, _) = request_fault("spin").await;
    assert_eq!(fault, Fault::CpuDeadline("hostile".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_bomb_hits_the_memory_limit() {
    let (fault, denial) = request_fault("memory").await;
    assert_eq!(fault, Fault::MemoryLimit("hostile".into()));
    assert_eq!(denial.reason, "plugin_memory_limit");
}

#[tokio::test(flavor = "multi_thread")]
async fn panic_abort_and_stack_overflow_are_traps() {
    for command in ["panic", "trap", "stack"] {
        let (fault, _) = request_fault(command).await;
        assert!(
            matches!(&fault, Fault::Trap { plugin, .. } if plugin == "hostile"),
            "{command}: {fault:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sleeping_traps_instead_of_holding_a_thread() {
    let (fault, _) = request_fault("sleep").await;
    let Fault::Trap { detail, .. } = fault else {
        panic!("{fault:?}");
    };
    assert!(detail.contains("timer"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_oversized_answers_are_refused() {
    for command in ["bad-reason", "long-reason", "huge-message"] {
        let (fault, _) = request_fault(command).await;
        assert!(
            matches!(&fault, Fault::Malformed { plugin, .. } if plugin == "hostile"),
            "{command}: {fault:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_tool_lists_are_refused() {
    let rt = runtime();
    for run in ["too-many-tools", "long-tool-name"] {
        let started = Instant::now();
        let verdict = rt.permitted_tools(context(run)).await;
        assert!(started.elapsed() < BOUND, "{run}: {:?}", started.elapsed());
        assert!(
            matches!(&verdict.fault, Some(Fault::Malformed { .. })),
            "{run}: {:?}",
            verdict.fault
        );
        assert_eq!(verdict.value, ToolSet::Only(Default::default()));
    }
    let verdict = runtime().permitted_tools(context("run_1")).await;
    assert_eq!(
        verdict.value,
        ToolSet::Only(["list_channels".to_owned()].into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn access_faults_deny_with_connector_unavailable() {
    let rt = runtime();
    let started = Instant::now();
    let verdict = rt.access(context("spin")).await;
    assert!(started.elapsed() < BOUND, "{:?}", started.elapsed());
    assert_eq!(verdict.fault, Some(Fault::CpuDeadline("hostile".into())));
    assert_eq!(denial(&verdict).code, DenyCode::ConnectorUnavailable);
    let verdict = runtime().access(context("run_1")).await;
    assert_eq!(verdict.value, Decision::Allow, "{verdict:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_file_is_readable() {
    let message = report("file", "file_outcome").await;
    assert!(
        !message.starts_with("read "),
        "the plugin read a file: {message}"
    );
    assert!(!message.contains("root:"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_socket_can_be_opened() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let message = report(&format!("tcp:{port}"), "tcp_outcome").await;
    assert_ne!(message, "connected");
    assert!(!message.is_empty());
    assert_eq!(
        listener.accept().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "the listener saw a connection"
    );
}

/// Printing (a panic message goes to standard error) and sockets are WASI I/O that blocks
/// on tokio, which panics on a thread driving async tasks, where an inline evaluation runs.
/// Each command is asked first on a fresh runtime, so that no earlier call sent the plugin
/// to the blocking pool, on both kinds of tokio runtime.
#[test]
fn blocking_wasi_io_answers_and_never_panics_the_host() {
    let runtimes = [
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    ];
    for tokio in runtimes.map(Result::unwrap) {
        for (command, expected) in [
            ("print", Some(("print_outcome", "printed"))),
            ("udp", None),
            ("panic", None),
        ] {
            let rt = hostile_runtime();
            let verdict = tokio.block_on(rt.request(context("run_1"), call(command)));
            let denial = denial(&verdict);
            match (command, expected) {
                (_, Some((reason, message))) => {
                    assert_eq!((&*denial.reason, &*denial.message), (reason, message));
                    assert_eq!(verdict.fault, None, "{verdict:?}");
                }
                ("udp", _) => {
                    assert_eq!(denial.reason, "udp_outcome", "{verdict:?}");
                    assert_ne!(denial.message, "bound");
                }
                _ => assert!(
                    matches!(&verdict.fault, Some(Fault::Trap { plugin, .. }) if plugin == "hostile"),
                    "{command}: {verdict:?}"
                ),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_environment_time_or_entropy_and_no_state_between_calls() {
    assert_eq!(report("env", "env_outcome").await, "vars=0 args=0");
    assert_eq!(report("clock", "clock_outcome").await, "wall=0 elapsed=0");
    let first = report("entropy", "entropy_outcome").await;
    assert_eq!(report("entropy", "entropy_outcome").await, first);
    for _ in 0..3 {
        assert_eq!(report("state", "state_outcome").await, "1");
    }
}

/// Everything the binary's tracing subscriber wrote.
fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .init();
        logs
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn log_spam_is_cut_at_the_budget() {
    let logs = captured_logs();
    let verdict = runtime().request(context("run_1"), call("log-spam")).await;
    // `hostile` allows after logging; `declared-tools` then denies the tool, which is
    // not in the connector's snapshot.
    assert_eq!(verdict.fault, None, "{verdict:?}");
    assert_eq!(verdict.plugins.len(), 2, "{verdict:?}");
    assert_eq!(denial(&verdict).reason, "unknown_tool");
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let written = text
        .lines()
        .filter(|l| l.contains("hostile spam line"))
        .count();
    let budget = runtime().limits().max_log_lines as usize;
    assert_eq!(written, budget, "{text}");
    let dropped = 200 - budget;
    assert!(text.contains(&format!("dropped={dropped}")), "{text}");
}

/// A spinning plugin does not stop a single-threaded runtime: its timer fires while the
/// call is still running, because the call runs on the blocking pool.
#[test]
fn a_spinning_plugin_does_not_block_the_async_thread() {
    let config = RuntimeConfig {
        limits: Limits {
            cpu_deadline_ms: 1_500,
            wall_timeout_ms: 5_000,
            ..Limits::default()
        },
        chains: ChainConfig {
            request: vec![ChainEntry::Name("hostile".into())],
            ..ChainConfig::default()
        },
        ..RuntimeConfig::default()
    };
    let mut plugins = builtins();
    plugins.push(InitialPlugin {
        name: "hostile",
        wasm: hostile_wasm(),
        builtin: false,
    });
    let rt = Runtime::new(config, &plugins).unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    tokio.block_on(async {
        let pending = rt.request(context("run_1"), call("spin"));
        tokio::pin!(pending);
        tokio::select! {
            biased;
            verdict = &mut pending => panic!("the call finished before a 20 ms timer: {verdict:?}"),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        let verdict = pending.await;
        assert_eq!(verdict.fault, Some(Fault::CpuDeadline("hostile".into())));
    });
}
