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

# Benchmarks; figures go to bench/results/.
bench:
    cargo bench -p portcullis-runtime

lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
