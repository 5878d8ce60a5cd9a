# Recipes for builders. Nothing here is needed to build or test: `cargo` alone does both.

# Build the built-in plugins to wasm32-wasip2 (the host build does this by itself too).
plugins:
    cargo build -p portcullis-builtins

# Run the proxy on its embedded defaults.
run *ARGS:
    cargo run --release -p portcullis -- serve {{ARGS}}

# The README's test command.
test:
    cargo test --workspace

# The interop suite against third-party MCP clients and servers.
interop:
    tests/interop/run.sh

# Benchmarks: proxy overhead against direct calls, plugin cost, sessions, memory, restart
# and hot swaps, on loopback; figures go to bench/results/ (see docs/benchmarks.md).
# Builds the two release proxies first (default, and with the native decision backend).
# ARGS: --secs N (per point, default 4), --sessions N (default 10000), --no-build.
bench *ARGS:
    cargo run --release -p portcullis-bench -- {{ARGS}}

lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
