//! ringkeeper: a ZooKeeper-compatible coordination server.
//!
//! The modules follow the path of a request (see DESIGN.md): `net` frames bytes with `jute`,
//! `session` and `watch` hold per-connection state, `pipeline` validates writes and assigns
//! zxids, `tree` applies them and publishes immutable versions that every core reads from.

pub mod config;
pub mod jute;
pub mod pipeline;
pub mod session;
pub mod tree;
pub mod watch;
