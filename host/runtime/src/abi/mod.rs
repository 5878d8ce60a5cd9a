//! One module per released version of the WIT contract (Zed's layout): each holds the
//! `bindgen!` output for its directory under `wit/` and the conversions from the
//! version-independent [`crate::model`]. Only `v0_1_0` exists so far.

pub mod v0_1_0;
