//! [io] A snapshot mapped read-only and served in place: the base of a tree version.
//!
//! This is the one unsafe corner of the server (STYLE.md). Two operations are unsafe:
//!
//! - `Mmap::map`: the mapping is only sound while nobody modifies or truncates the file. The
//!   invariant that provides this: a snapshot file is written under a temporary name, fsynced
//!   and then renamed into place, and nothing in the server opens a snapshot for writing after
//!   the rename (`writer::write_snapshot` is the only writer; a later snapshot of the same zxid
//!   replaces the directory entry, never the mapped inode; retention unlinks, which keeps the
//!   mapped inode alive). An operator editing the file in place is outside the contract.
//! - `rkyv::access_unchecked`: every access after `open` skips validation because `open`
//!   validated the very same bytes (header, checksum, bytecheck, structure), and they cannot
//!   change (previous point).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use tracing::warn;

use super::format::{
    self, ArchivedSnapshotBody, Header, SessionRecord, SnapshotError, SnapshotView, HEADER_BYTES,
};
use super::writer::list_snapshots;
use crate::jute::records::Acl;
use crate::tree::Node;

/// A validated snapshot, mapped read-only. Shared by every tree version built on it.
pub struct MappedSnapshot {
    path: PathBuf,
    map: Mmap,
    header: Header,
    /// The ACL table decoded once: nodes read from the base share these lists.
    acls: Vec<Arc<Vec<Acl>>>,
}

impl std::fmt::Debug for MappedSnapshot {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MappedSnapshot")
            .field("path", &self.path)
            .field("zxid", &format_args!("{:#x}", self.header.zxid))
            .field("node_count", &self.header.node_count)
            .finish()
    }
}

impl MappedSnapshot {
    /// Maps and validates the snapshot at `path`. Cost: one sequential pass (checksum,
    /// bytecheck, structure) and no allocation per node.
    pub fn open(path: &Path) -> Result<MappedSnapshot, SnapshotError> {
        let io = |source| SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the file is never modified after it was renamed into place (module doc).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let (header, body) = format::validate(&map)?;
        let acls = format::decode_acls(body);
        Ok(MappedSnapshot {
            path: path.to_path_buf(),
            map,
            header,
            acls,
        })
    }

    /// The same mapping, known by the name it was renamed to (a received snapshot is
    /// validated under its temporary name, then renamed into place).
    pub fn renamed(mut self, path: PathBuf) -> MappedSnapshot {
        self.path = path;
        self
    }

    /// The archive, in place.
    pub fn view(&self) -> SnapshotView<'_> {
        // SAFETY: `open` validated these bytes with `rkyv::access` and `check_structure`, and
        // the mapping cannot change (module doc). `open` guarantees the length.
        let body =
            unsafe { rkyv::access_unchecked::<ArchivedSnapshotBody>(&self.map[HEADER_BYTES..]) };
        SnapshotView {
            body,
            acls: &self.acls,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The zxid of the last transaction in the snapshot.
    pub fn zxid(&self) -> i64 {
        self.header.zxid
    }

    pub fn node_count(&self) -> usize {
        self.header.node_count as usize
    }

    /// Size of the file in bytes.
    pub fn file_bytes(&self) -> usize {
        self.map.len()
    }

    /// The sessions live at the snapshot's zxid, sorted by id.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.view().sessions()
    }

    /// The node at `path`, materialised (data copied, ACL shared).
    pub fn get(&self, path: &str) -> Option<Node> {
        let view = self.view();
        view.node(view.lookup(path)?)
    }

    /// The children of `path`, sorted; None when there is no such node.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        let view = self.view();
        let index = view.lookup(path)?;
        Some(view.child_names(index).map(str::to_string).collect())
    }

    /// Every (path, node), breadth-first.
    pub fn iter(&self) -> impl Iterator<Item = (String, Node)> + '_ {
        self.view().iter()
    }
}

/// A snapshot that could not be used, and why.
#[derive(Debug)]
pub struct Rejected {
    pub path: PathBuf,
    pub error: SnapshotError,
}

/// The outcome of looking for the snapshot to recover from.
#[derive(Debug)]
pub struct NewestValid {
    /// The newest snapshot that passed validation; None when there is none.
    pub snapshot: Option<MappedSnapshot>,
    /// Newer snapshots that failed validation, newest first. Recovery from an older snapshot
    /// needs the log from that snapshot's zxid on.
    pub rejected: Vec<Rejected>,
}

/// Maps the newest valid snapshot in `dir`, falling back to older ones (each rejection is
/// logged as a warning and reported). A missing directory holds no snapshot.
pub fn newest_valid(dir: &Path) -> Result<NewestValid, SnapshotError> {
    let mut rejected = Vec::new();
    for (_, path) in list_snapshots(dir)?.into_iter().rev() {
        match MappedSnapshot::open(&path) {
            Ok(snapshot) => {
                return Ok(NewestValid {
                    snapshot: Some(snapshot),
                    rejected,
                })
            }
            Err(error) => {
                warn!("skipping snapshot {}: {error}", path.display());
                rejected.push(Rejected { path, error });
            }
        }
    }
    Ok(NewestValid {
        snapshot: None,
        rejected,
    })
}
