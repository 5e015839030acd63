//! Snapshots: the tree at one zxid, written in the background from an immutable version and
//! read back in place, as the base of the tree after a restart (DESIGN.md, "Snapshots and
//! recovery").
//!
//! - `format` [pure]: the file format, its validation and the in-place view of an archive;
//! - `writer` [io]: write a snapshot durably (temp file, fsync, rename, directory fsync) and
//!   retention;
//! - `mmap` [io]: map a snapshot read-only and serve lookups from it; the one unsafe corner.

pub mod format;
pub mod mmap;
pub mod writer;

pub use format::{SessionRecord, SnapshotError};
pub use mmap::{newest_valid, MappedSnapshot, NewestValid, Rejected};
pub use writer::{list_snapshots, retain, write_snapshot};

#[cfg(test)]
mod tests;
