//! The SDK's integration tests, one binary:
//!
//! | module | what it checks |
//! |---|---|
//! | `rules` | the permitted-set algorithm case by case |
//! | `spec_examples` | the specification's input-schema examples through that algorithm |
//! | `harness` | the native test harness plugin tests rely on |
//! | `example_plugin` | the README's example plugin, compiled, tested and compared with the text |
//! | `example_provider` | the README's example provider plugin, likewise |
//! | `contract` | the SDK's copy of what the host refuses in an OAuth profile |

mod contract;
mod example_plugin;
mod example_provider;
mod harness;
mod rules;
mod spec_examples;

use std::collections::BTreeSet;

/// Owned names, to compare with a permitted set.
fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}
