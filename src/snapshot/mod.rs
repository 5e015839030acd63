//! Snapshots: the tree at one zxid, written in the background from an immutable version and
//! read back in place, as the base of the tree after a restart (DESIGN.md, "Snapshots and
//! recovery").
//!
//! - `format` [pure]: the file format, its validation and the in-place view of an archive;
//! - `format2` [pure]: a hand-written reader of format version 2 (32-bit pointers), so that
//!   recovery converts such a snapshot to the current format;
//! - `encode` [pure]: a tree version streamed into that format, without building it in memory;
//! - `writer` [io]: encode a snapshot to bytes (also ZAB's SNAP payload), write it durably
//!   (temp file, fsync, rename, directory fsync), install one received from a leader, and
//!   retention;
//! - `mmap` [io]: map a snapshot read-only and serve lookups from it; the one unsafe corner.

pub mod encode;
pub mod format;
pub mod format2;
pub mod mmap;
pub mod writer;

pub use format::{SessionRecord, SnapshotError};
pub use mmap::{
    newest_valid, newest_valid_converting, open_converting, MappedSnapshot, NewestValid, Rejected,
};
pub use writer::{
    encode_snapshot, install_snapshot, list_snapshots, remove_snapshots_above, retain,
    write_snapshot, ChunkOutcome, SnapshotReception,
};

#[cfg(test)]
mod tests;
