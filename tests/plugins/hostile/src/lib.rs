//! `hostile`: a policy plugin that misbehaves on request, for the runtime's sandbox tests.
//!
//! Every decision reads a command from the data it is given: `request` from the tool
//! name, `access` and `permitted-tools` from the run id. An unknown command is a plain
//! allow (or every tool), so the same component also serves as a well-behaved plugin.
//!
//! The commands, each probing one promise of the sandbox:
//!
//! | command | what the plugin does |
//! |---|---|
//! | `spin` | loops forever |
//! | `memory` | allocates until the allocator fails |
//! | `panic` | panics (aborts: plugins are built with `panic = "abort"`) |
//! | `trap` | executes `unreachable` |
//! | `stack` | recurses until the wasm stack is exhausted |
//! | `sleep` | sleeps for an hour |
//! | `bad-reason`, `long-reason` | denies with a reason that is not a short snake_case code |
//! | `huge-message` | denies with a message of 4 MiB |
//! | `file` | reads `/etc/passwd` and reports the outcome in the deny message |
//! | `tcp:<port>` | connects to `127.0.0.1:<port>` and reports the outcome |
//! | `udp` | binds a UDP socket on `127.0.0.1` and reports the outcome |
//! | `print` | writes to standard output and standard error, then reports it did |
//! | `env` | reports its environment variables and arguments |
//! | `clock` | reports the wall clock and a monotonic duration |
//! | `entropy` | reports a value derived from the random seed of `HashMap` |
//! | `state` | counts its calls in a static: a fresh instance always answers 1 |
//! | `log-spam` | writes [`SPAM_LINES`] log lines, then allows |
//!
//! `permitted-tools` also knows `too-many-tools` (100,001 names) and `long-tool-name`.

use std::hash::BuildHasher;
use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};

use portcullis_sdk::policy::*;

/// Log lines `log-spam` writes: well over any sensible per-call budget.
pub const SPAM_LINES: usize = 200;

pub struct Hostile;

/// A deny whose message reports what the plugin observed.
fn report(reason: &str, message: impl Into<String>) -> Decision {
    deny(DenyCode::ToolNotPermitted, reason, message)
}

/// Recurses without bound in practice: the guard only keeps the compiler from proving it.
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let local = std::hint::black_box([depth; 16]);
    recurse(local[0] + 1) + local[15]
}

/// Runs `command`; `None` for a command this plugin does not know.
fn act(command: &str) -> Option<Decision> {
    let decision = match command {
        "spin" => {
            let mut n = 0u64;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![0xa5; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "panic" => panic!("the hostile plugin panics on request"),
        // `abort` compiles to the `unreachable` instruction on wasm32.
        "trap" => std::process::abort(),
        "stack" => report("unreachable", recurse(0).to_string()),
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            Decision::Allow
        }
        "bad-reason" => report("Not Snake Case", "a reason with spaces and capitals"),
        "long-reason" => report(&"x".repeat(65), "a reason over 64 bytes"),
        "huge-message" => report("huge", "m".repeat(4 << 20)),
        "file" => {
            let outcome = match std::fs::File::open("/etc/passwd") {
                Ok(mut file) => {
                    let mut text = String::new();
                    match file.read_to_string(&mut text) {
                        Ok(n) => format!("read {n} bytes"),
                        Err(e) => format!("opened, then: {e}"),
                    }
                }
                Err(e) => e.to_string(),
            };
            report("file_outcome", outcome)
        }
        tcp if tcp.starts_with("tcp:") => {
            let outcome = match std::net::TcpStream::connect(("127.0.0.1", port(tcp))) {
                Ok(_) => "connected".to_owned(),
                Err(e) => e.to_string(),
            };
            report("tcp_outcome", outcome)
        }
        "udp" => {
            let outcome = match std::net::UdpSocket::bind(("127.0.0.1", 0)) {
                Ok(_) => "bound".to_owned(),
                Err(e) => e.to_string(),
            };
            report("udp_outcome", outcome)
        }
        "print" => {
            println!("the hostile plugin prints to standard output");
            eprintln!("the hostile plugin prints to standard error");
            report("print_outcome", "printed")
        }
        "env" => {
            let vars = std::env::vars().count();
            let args = std::env::args().count();
            report("env_outcome", format!("vars={vars} args={args}"))
        }
        "clock" => {
            let wall = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(u64::MAX);
            let start = std::time::Instant::now();
            let elapsed = start.elapsed().as_nanos();
            report("clock_outcome", format!("wall={wall} elapsed={elapsed}"))
        }
        "entropy" => {
            let value = std::collections::hash_map::RandomState::new().hash_one(42u32);
            report("entropy_outcome", value.to_string())
        }
        "state" => {
            static CALLS: AtomicU32 = AtomicU32::new(0);
            let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
            report("state_outcome", calls.to_string())
        }
        "log-spam" => {
            for line in 0..SPAM_LINES {
                portcullis_sdk::log::info(&format!("hostile spam line {line}"));
            }
            Decision::Allow
        }
        _ => return None,
    };
    Some(decision)
}

fn port(command: &str) -> u16 {
    command["tcp:".len()..].parse().unwrap_or(9)
}

impl Policy for Hostile {
    fn describe() -> PolicyInfo {
        info("hostile", env!("CARGO_PKG_VERSION"))
    }

    fn access(ctx: DecisionContext) -> Decision {
        act(&ctx.run.id).unwrap_or(Decision::Allow)
    }

    fn request(_ctx: DecisionContext, request: McpRequest) -> Decision {
        request
            .tool
            .as_deref()
            .and_then(act)
            .unwrap_or(Decision::Allow)
    }

    fn permitted_tools(ctx: DecisionContext) -> ToolSet {
        match ctx.run.id.as_str() {
            "too-many-tools" => ToolSet::Only((0..100_001).map(|i| format!("t{i}")).collect()),
            "long-tool-name" => ToolSet::Only(vec!["n".repeat(300)]),
            command => {
                act(command);
                ToolSet::All
            }
        }
    }
}

portcullis_sdk::export_policy!(Hostile);
