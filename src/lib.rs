//! ringkeeper: a ZooKeeper-compatible coordination server.
//!
//! The modules follow the path of a request (see DESIGN.md): `net` frames bytes with `jute`,
//! holds per-connection state and serves reads with `read` from the core's tree version;
//! writes go to the `pipeline`, which validates them (`prep`), owns the `session` table,
//! applies them to the `tree` and publishes each new version, with its `watch` triggers, to
//! every core of the `runtime`.

// Gate (STYLE habit 10): no unwrap/expect on input and no dbg! outside tests; clippy enforces it.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::dbg_macro)
)]

pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod fourlw;
// The bodies of the fuzz targets (fuzz/, tests/fuzz_smoke.rs); not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod jute;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod pipeline;
pub mod quorum;
pub mod read;
pub mod runtime;
pub mod session;
pub mod sim;
pub mod snapshot;
pub mod storage;
pub mod tree;
pub mod txnlog;
pub mod watch;
pub mod zab;
pub mod zkformat;
