//! Logging from a plugin, the one capability every world imports.
//!
//! Inside a component the lines go to the host, which tags them with the plugin's name
//! and digest and caps how many one call may write. Under the native harness they are
//! kept per thread so a test can assert on them with [`crate::testing::take_logs`].

pub use crate::bindings::policy::portcullis::plugin::log::Level;

/// Writes one line to the operator's log.
pub fn log(level: Level, message: &str) {
    #[cfg(all(target_arch = "wasm32", not(feature = "contract-v0-1-0")))]
    crate::bindings::policy::portcullis::plugin::log::log(level, message);
    #[cfg(all(target_arch = "wasm32", feature = "contract-v0-1-0"))]
    log_v0_1_0(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    native::record(level, message);
}

/// Writes one line through `0.1.0`'s `log` import (see `crate::v0_1_0`).
#[cfg(all(target_arch = "wasm32", feature = "contract-v0-1-0"))]
fn log_v0_1_0(level: Level, message: &str) {
    use crate::v0_1_0::policy::portcullis::plugin::log as v0_1_0;
    let level = match level {
        Level::Trace => v0_1_0::Level::Trace,
        Level::Debug => v0_1_0::Level::Debug,
        Level::Info => v0_1_0::Level::Info,
        Level::Warn => v0_1_0::Level::Warn,
        Level::Error => v0_1_0::Level::Error,
    };
    v0_1_0::log(level, message);
}

pub fn debug(message: &str) {
    log(Level::Debug, message);
}

pub fn info(message: &str) {
    log(Level::Info, message);
}

pub fn warn(message: &str) {
    log(Level::Warn, message);
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod native {
    use std::cell::RefCell;

    use super::Level;

    thread_local! {
        static LINES: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
    }

    pub fn record(level: Level, message: &str) {
        LINES.with(|lines| lines.borrow_mut().push((level, message.to_owned())));
    }

    pub fn take() -> Vec<(Level, String)> {
        LINES.with(|lines| std::mem::take(&mut *lines.borrow_mut()))
    }
}
