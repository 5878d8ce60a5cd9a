//! The tokio runtime the proxy's binaries run on (`portcullis`, and the benchmark's
//! native proxy and floor forwarder, so that their rows compare like with like). It owns
//! the runtime's settings and why they are what they are; see docs/benchmarks.md for the
//! measurements behind them.

/// A multi-threaded runtime with I/O and timers, one worker per core.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
