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
use super::format2;
use super::writer::{self, list_snapshots};
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

    /// ZooKeeper's tree digest of the snapshot's tree, when the header carries one (a
    /// snapshot written before the digest was kept does not).
    pub fn tree_digest(&self) -> Option<u64> {
        self.header.tree_digest
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
    /// What was converted from format 2 on the way (one line per snapshot, for the operator).
    pub converted: Vec<String>,
}

/// Maps the newest valid snapshot in `dir`, falling back to older ones (each rejection is
/// logged as a warning and reported). A missing directory holds no snapshot. A format 2
/// snapshot is converted in place ([`open_converting`]).
pub fn newest_valid(dir: &Path) -> Result<NewestValid, SnapshotError> {
    newest_valid_converting(dir, false)
}

/// As [`newest_valid`]; with `dry_run` a format 2 snapshot is converted into a temporary
/// file outside `dir`, which is left as it was (`ringkeeper check`).
pub fn newest_valid_converting(dir: &Path, dry_run: bool) -> Result<NewestValid, SnapshotError> {
    let mut rejected = Vec::new();
    let mut converted = Vec::new();
    for (_, path) in list_snapshots(dir)?.into_iter().rev() {
        match open_converting(dir, &path, dry_run) {
            Ok((snapshot, conversion)) => {
                converted.extend(conversion);
                return Ok(NewestValid {
                    snapshot: Some(snapshot),
                    rejected,
                    converted,
                });
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
        converted,
    })
}

/// Opens the snapshot `path` in `dir`; one in format 2 (which this build cannot read in place,
/// `format2`'s module doc) is decoded, written as a format 3 snapshot of the same zxid (the
/// original kept as `<name>.format2`, `writer::replace_converted`) and that one is opened, as
/// if it had been there. Returns the snapshot and, after a conversion, what was converted.
/// With `dry_run` the format 3 file goes to a temporary directory, removed once mapped.
pub fn open_converting(
    dir: &Path,
    path: &Path,
    dry_run: bool,
) -> Result<(MappedSnapshot, Option<String>), SnapshotError> {
    match MappedSnapshot::open(path) {
        Err(SnapshotError::PreviousVersion) => {}
        other => return other.map(|snapshot| (snapshot, None)),
    }
    let io = |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    };
    let old = std::fs::read(path).map_err(io)?;
    let converted = format2::convert(&old)?;
    drop(old);
    if dry_run {
        let temp = std::env::temp_dir().join(format!(
            "ringkeeper-convert-{}-{:016x}",
            std::process::id(),
            converted.zxid as u64
        ));
        let temp_path = temp.join(format::snapshot_name(converted.zxid));
        let temp_io = |source| SnapshotError::Io {
            path: temp_path.clone(),
            source,
        };
        std::fs::create_dir_all(&temp).map_err(temp_io)?;
        std::fs::write(&temp_path, &converted.file[..]).map_err(temp_io)?;
        let opened = MappedSnapshot::open(&temp_path);
        // The mapping keeps the unlinked file alive.
        let _ = std::fs::remove_dir_all(&temp);
        let message = format!(
            "snapshot {} is in format 2: a start converts it to format 3 (zxid {:#x}, {} znodes), keeping the original as {}{}",
            path.display(),
            converted.zxid,
            converted.node_count,
            path.display(),
            writer::FORMAT_2_ASIDE_SUFFIX
        );
        return Ok((opened?.renamed(path.to_path_buf()), Some(message)));
    }
    let (new_path, aside) =
        writer::replace_converted(dir, path, converted.zxid, &converted.file[..])?;
    let message = format!(
        "converted snapshot {} from format 2 to format 3 (zxid {:#x}, {} znodes); the original is kept as {}",
        new_path.display(),
        converted.zxid,
        converted.node_count,
        aside.display()
    );
    warn!("{message}");
    Ok((MappedSnapshot::open(&new_path)?, Some(message)))
}
