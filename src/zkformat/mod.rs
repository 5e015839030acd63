//! Apache ZooKeeper's own files (DESIGN.md, "ZooKeeper's own formats"): readers and writers of
//! its snapshot ("ZKSN"), its transaction log ("ZKLG"), its txn records and its tree digest,
//! and the replay of its log onto its snapshot with ZooKeeper's rules.
//!
//! [pure]: [`model`] (ZooKeeper's DataTree as it replays: fuzzy-snapshot rules, digest),
//! [`txn`] (TxnHeader and every txn record), [`log`] (a `log.<zxid>` file), [`snapshot`]
//! (a `snapshot.<zxid>` file, with its gz/snappy wrappers), [`password`]
//! (ZooKeeperServer.generatePasswd). [io]: [`import`] (finding ZooKeeper's files in
//! `dataDir/version-2` and `dataLogDir/version-2`, the startup decision, writing ringkeeper's
//! own snapshot) and [`export`] (writing a ZooKeeper data directory from ringkeeper's state).
//!
//! ZooKeeper's files and ringkeeper's never collide: ZooKeeper keeps them in the `version-2`
//! subdirectory of dataDir and dataLogDir (FileTxnSnapLog), with unpadded hex zxids;
//! ringkeeper keeps `snapshot.<16 hex>` and `log.<16 hex>` in dataDir and dataLogDir
//! themselves. The import only reads `version-2`; nothing there is ever written or removed.

pub mod export;
pub mod import;
pub mod log;
pub mod model;
pub mod password;
pub mod snapshot;
pub mod txn;

use thiserror::Error;

use crate::jute::codec::JuteError;

/// Why one of ZooKeeper's files could not be read.
#[derive(Debug, Error)]
pub enum FormatError {
    #[error("not a ZooKeeper {kind} file: magic {found:#010x}")]
    BadMagic { kind: &'static str, found: i32 },
    #[error("unsupported {kind} file version {version}")]
    BadVersion { kind: &'static str, version: i32 },
    #[error("truncated or malformed record: {0}")]
    Jute(#[from] JuteError),
    #[error("checksum mismatch ({what}): stored {stored:#x}, computed {computed:#x}")]
    Checksum {
        what: &'static str,
        stored: i64,
        computed: i64,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("decompressing: {0}")]
    Decompress(String),
}

/// `ZooDefs.OpCode`: the txn types a log can hold.
pub mod opcode {
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const SET_DATA: i32 = 5;
    pub const SET_ACL: i32 = 7;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// Adler-32 of `bytes` as Java's `Checksum.getValue()` returns it (a non-negative long).
pub fn adler32(bytes: &[u8]) -> i64 {
    let mut adler = adler2::Adler32::new();
    adler.write_slice(bytes);
    i64::from(adler.checksum())
}

#[cfg(test)]
mod tests;
