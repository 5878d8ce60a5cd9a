//! The SDK's integration tests, one binary:
//!
//! | module | what it checks |
//! |---|---|
//! | `rules` | the permitted-set algorithm case by case |
//! | `spec_examples` | the specification's input-schema examples through that algorithm |
//! | `harness` | the native test harness plugin tests rely on |
//! | `example_plugin` | the README's example plugin, compiled, tested and compared with the text |

mod example_plugin;
mod harness;
mod rules;
mod spec_examples;

use std::collections::BTreeSet;

/// Owned names, to compare with a permitted set.
fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}
