//! [pure] The snapshot file format, byte for byte, its validation and the read-only view of a
//! validated archive that the tree uses as its base.
//!
//! A snapshot is one file `snapshot.<last zxid, 16 hex digits>` in `dataDir`: a 64-byte
//! header followed by the body, an rkyv 0.8 archive of [`SnapshotBody`]. Every integer, in
//! the header as in the body, is little-endian: the body is read in place (never decoded), so
//! its integers are in the byte order of the machines that serve it, and the header follows
//! the body rather than jute's big-endian.
//!
//! ```text
//! header (HEADER_BYTES = 64 bytes, at offset 0)
//!   0  magic             8 bytes  "RKSNAPSH"
//!   8  format version    u32      3
//!   12 header length     u32      64
//!   16 last zxid         i64      the zxid of the last transaction the snapshot contains
//!   24 node count        u64      number of NodeRecords in the body
//!   32 body length       u64      bytes after the header; the file is exactly 64 + this long
//!   40 body checksum     u32      CRC-32C of the body
//!   44 tree digest       u64      ZooKeeper's tree digest at the last zxid (`tree::digest`)
//!   52 digest version    u32      DigestCalculator's version of that digest (2); 0: no digest
//!   56 reserved          4 bytes  zero (covered by the header checksum)
//!   60 header checksum   u32      CRC-32C of header bytes 0..60
//! body (at offset 64, so 8-byte aligned in a page-aligned mapping)
//!   the rkyv 0.8 archive (features: little-endian, aligned, 64-bit relative pointers, i.e.
//!   `pointer_width_64`) of SnapshotBody. rkyv writes out-of-line data first and the root
//!   last: the root (ArchivedSnapshotBody, 72 bytes) is the last 72 bytes of the body.
//! ```
//!
//! The archived structs are `repr(C)`; a relative pointer is an i64 offset from the pointer's
//! own position; an archived `Vec` is (relative pointer i64, length u64); an archived
//! `String` is 16 bytes, inline when at most 16 bytes long, else (length with tag bits,
//! relative pointer). Layouts (pinned by `archived_layouts_are_pinned`):
//!
//! ```text
//! ArchivedSnapshotBody (72 bytes, align 8)
//!   0  nodes      Vec<NodeRecord>      breadth-first, children of a node contiguous and sorted
//!   16 acls       Vec<Vec<AclRecord>>  the ACL table: distinct ACL lists, referenced by index
//!   32 special    Vec<u32>             indices of the ephemeral, container and TTL nodes
//!   48 sessions   Vec<SessionRecord>   the live sessions at the snapshot's zxid
//!   64 data size  u64                  sum of path and data lengths (mntr approximate_data_size)
//! ArchivedNodeRecord (112 bytes, align 8)
//!   0  czxid i64  8 mzxid i64  16 pzxid i64  24 ctime i64  32 mtime i64
//!   40 ephemeral owner i64     (StatPersisted.ephemeralOwner, raw: containers and TTLs too)
//!   48 version i32  52 cversion i32 (creates, as the tree stores it)  56 aversion i32
//!   60 acl u32          index into acls
//!   64 parent u32       index of the parent node (the root, index 0, is its own parent)
//!   68 first child u32  index of the first child (the children are [first, first + count))
//!   72 child count u32
//!   76 flags u32        bit 0: the data is null (distinct from empty)
//!   80 name String      last path component ("" for the root)
//!   96 data Vec<u8>
//! ArchivedAclRecord (40 bytes, align 8): 0 perms i32, 4 padding, 8 scheme String, 24 id String
//! ArchivedSessionRecord (16 bytes, align 8): 0 session id i64, 8 timeout ms i32, 12 padding
//! ```
//!
//! Size. With 64-bit pointers a body has no limit of its own below [`BODY_BYTES_MAX`] (an
//! explicit 1 TiB, far beyond any tree that fits in memory): format 2's 32-bit pointers
//! capped a body at 2 GiB (about 10M znodes of 100 bytes), past which no snapshot could be
//! written and every restart replayed the whole log. The price is 16 bytes more per node
//! record (112 instead of 96) and 16 per ACL entry.
//!
//! The tree digest was added in bytes that were reserved (zero) before, without a new format
//! version: a snapshot written before it has digest version 0 there, and the load computes the
//! digest once from the nodes (`TreeVersion::from_snapshot`). A digest of another version is
//! treated as absent.
//!
//! Versions. 1: `acls` before `nodes`. 2: as 3 with 32-bit pointers (records of 96 bytes,
//! strings inline up to 8 bytes). rkyv's pointer width is a build-wide feature, so this build
//! cannot read a version 2 archive in place: [`Header::decode`] refuses one by name
//! ([`SnapshotError::PreviousVersion`]), and recovery (`mmap::open_converting`) then reads it
//! with the hand-written decoder of `format2` and writes a version 3 snapshot of the same zxid,
//! keeping the original as `snapshot.<zxid>.format2`. Version 1 files are refused.
//!
//! Node order. Nodes are sorted by (parent index, name) with parents numbered before their
//! children, which is breadth-first order: the root is node 0, then its children, then the
//! children of node 1, and so on. The children of a node are therefore a contiguous, sorted
//! range, so getChildren is a slice and a lookup is one binary search per path component. This
//! is the (parent path, name) key of DESIGN.md with the parent named by its index, which saves
//! repeating every parent path in the file.
//!
//! ACLs are deduplicated into a table (ZooKeeper's ReferenceCountedACLCache: most nodes share
//! a few ACL lists), decoded once at open so that a node read from the base shares its ACL.
//!
//! Validation (on open, before anything is served): magic, version, header length and
//! checksum, file length, body checksum, rkyv's bytecheck validation of the whole archive,
//! then [`check_structure`]: the nodes form one tree rooted at 0 whose child ranges tile the
//! node array in breadth-first order with strictly increasing names, and every index is in
//! range. A file that passes cannot make a lookup panic or loop.

use std::sync::Arc;

use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use crate::jute::records::{Acl, Id};
use crate::tree::digest::DIGEST_VERSION;
use crate::tree::{Node, NodeStat};

pub const MAGIC: &[u8; 8] = b"RKSNAPSH";
/// Version 2 put `nodes` before `acls` in the body, so that it can be written as the tree is
/// walked (`encode`); version 3 made rkyv's pointers 64-bit (see the module doc). Version 1
/// files are refused; version 2 files are refused by name here and converted by recovery.
pub const FORMAT_VERSION: u32 = 3;
/// The format 3 replaced (32-bit pointers): refused by name here, read by `format2`.
pub const FORMAT_VERSION_32_BIT: u32 = 2;
/// The largest body this server writes or reads: an explicit bound, far above any tree that
/// fits in memory (format 3's pointers are 64-bit, so the format itself is not the limit).
pub const BODY_BYTES_MAX: u64 = 1 << 40;
pub const HEADER_BYTES: usize = 64;
/// Bit 0 of `NodeRecord::flags`: the node's data is null.
pub const FLAG_DATA_NULL: u32 = 1;
/// A snapshot of more nodes than this is refused: indices are u32.
pub const NODE_COUNT_MAX: usize = u32::MAX as usize;

/// The name of the snapshot whose last transaction is `zxid`.
pub fn snapshot_name(zxid: i64) -> String {
    format!("snapshot.{:016x}", zxid as u64)
}

/// The last zxid of a snapshot, from its file name (temporary files do not parse).
pub fn parse_snapshot_name(name: &str) -> Option<i64> {
    let hex = name.strip_prefix("snapshot.")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|value| value as i64)
}

/// Why a snapshot file cannot be used. Every damage is one of these, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot i/o error on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot is {length} bytes, shorter than its {HEADER_BYTES}-byte header")]
    TooShort { length: usize },
    #[error("not a snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u32),
    #[error("snapshot header checksum mismatch")]
    HeaderChecksum,
    #[error("snapshot header has length {0}, expected {HEADER_BYTES}")]
    HeaderLength(u32),
    #[error("snapshot body is {actual} bytes, header says {expected} (truncated or extended)")]
    BodyLength { expected: u64, actual: u64 },
    #[error("snapshot body checksum mismatch")]
    BodyChecksum,
    #[error("snapshot archive is invalid: {0}")]
    Archive(String),
    #[error("snapshot structure is invalid: {0}")]
    Structure(String),
    #[error("snapshot of {0} nodes exceeds the format's limit")]
    TooLarge(usize),
    #[error("snapshot body of about {0} bytes exceeds the limit of {BODY_BYTES_MAX} bytes")]
    BodyTooLarge(u64),
    #[error("snapshot format version 2 (32-bit pointers, written before ringkeeper's format 3) cannot be read in place by this build; recovery and dump-snapshot convert it (snapshot::format2, README \"Snapshots past 2 GiB\")")]
    PreviousVersion,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Archive, Serialize, Deserialize)]
pub struct AclRecord {
    pub perms: i32,
    pub scheme: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Archive, Serialize, Deserialize)]
pub struct NodeRecord {
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub ephemeral_owner: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub acl: u32,
    pub parent: u32,
    pub first_child: u32,
    pub child_count: u32,
    pub flags: u32,
    pub name: String,
    pub data: Vec<u8>,
}

impl AclRecord {
    /// The record of one ACL entry.
    pub fn from_acl(acl: &Acl) -> AclRecord {
        AclRecord {
            perms: acl.perms,
            scheme: acl.id.scheme.clone(),
            id: acl.id.id.clone(),
        }
    }
}

/// A session that survives a restart: ZooKeeper's snapshot keeps the session table
/// (DataTree is serialised with `SerializeUtils.serializeSnapshot(sessions)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Archive, Serialize, Deserialize)]
pub struct SessionRecord {
    pub session_id: i64,
    pub timeout_ms: i32,
}

impl SessionRecord {
    /// Records of (session id, timeout ms) pairs.
    pub fn from_pairs(sessions: &[(i64, i32)]) -> Vec<SessionRecord> {
        sessions
            .iter()
            .map(|(session_id, timeout_ms)| SessionRecord {
                session_id: *session_id,
                timeout_ms: *timeout_ms,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Archive, Serialize, Deserialize)]
pub struct SnapshotBody {
    pub nodes: Vec<NodeRecord>,
    pub acls: Vec<Vec<AclRecord>>,
    pub special: Vec<u32>,
    pub sessions: Vec<SessionRecord>,
    pub data_size: u64,
}

/// The decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub zxid: i64,
    pub node_count: u64,
    pub body_bytes: u64,
    pub body_checksum: u32,
    /// ZooKeeper's tree digest of the snapshot's tree (None: written without one).
    pub tree_digest: Option<u64>,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut header = [0u8; HEADER_BYTES];
        header[0..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
        header[16..24].copy_from_slice(&self.zxid.to_le_bytes());
        header[24..32].copy_from_slice(&self.node_count.to_le_bytes());
        header[32..40].copy_from_slice(&self.body_bytes.to_le_bytes());
        header[40..44].copy_from_slice(&self.body_checksum.to_le_bytes());
        if let Some(digest) = self.tree_digest {
            header[44..52].copy_from_slice(&digest.to_le_bytes());
            header[52..56].copy_from_slice(&(DIGEST_VERSION as u32).to_le_bytes());
        }
        let checksum = crc32c::crc32c(&header[0..60]);
        header[60..64].copy_from_slice(&checksum.to_le_bytes());
        header
    }

    /// Decodes and checks the header alone (magic, version, length, its checksum).
    pub fn decode(bytes: &[u8]) -> Result<Header, SnapshotError> {
        let header = bytes.get(..HEADER_BYTES).ok_or(SnapshotError::TooShort {
            length: bytes.len(),
        })?;
        // The slices below are within the 64 bytes just checked.
        let u32_at = |at: usize| {
            let mut raw = [0u8; 4];
            raw.copy_from_slice(&header[at..at + 4]);
            u32::from_le_bytes(raw)
        };
        let u64_at = |at: usize| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&header[at..at + 8]);
            u64::from_le_bytes(raw)
        };
        if &header[0..8] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        if crc32c::crc32c(&header[0..60]) != u32_at(60) {
            return Err(SnapshotError::HeaderChecksum);
        }
        let version = u32_at(8);
        if version == FORMAT_VERSION_32_BIT {
            return Err(SnapshotError::PreviousVersion);
        }
        if version != FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        if u32_at(12) != HEADER_BYTES as u32 {
            return Err(SnapshotError::HeaderLength(u32_at(12)));
        }
        Ok(Header {
            zxid: u64_at(16) as i64,
            node_count: u64_at(24),
            body_bytes: u64_at(32),
            body_checksum: u32_at(40),
            tree_digest: (u32_at(52) == DIGEST_VERSION as u32).then(|| u64_at(44)),
        })
    }
}

/// Serialises `body` and returns (header, body bytes) ready to be written one after the other.
pub fn encode(
    zxid: i64,
    tree_digest: Option<u64>,
    body: &SnapshotBody,
) -> Result<([u8; HEADER_BYTES], AlignedVec), SnapshotError> {
    if body.nodes.len() > NODE_COUNT_MAX {
        return Err(SnapshotError::TooLarge(body.nodes.len()));
    }
    let bytes = rkyv::to_bytes::<rancor::Error>(body)
        .map_err(|error| SnapshotError::Archive(error.to_string()))?;
    let header = Header {
        zxid,
        node_count: body.nodes.len() as u64,
        body_bytes: bytes.len() as u64,
        body_checksum: crc32c::crc32c(&bytes),
        tree_digest,
    };
    Ok((header.encode(), bytes))
}

/// Validates a whole snapshot file (header then body) and returns its header and the
/// archived body. `file` must start at an 8-byte aligned address (a mapping or an
/// `AlignedVec` is).
pub fn validate(file: &[u8]) -> Result<(Header, &ArchivedSnapshotBody), SnapshotError> {
    let header = Header::decode(file)?;
    let body = &file[HEADER_BYTES..];
    if header.body_bytes > BODY_BYTES_MAX {
        return Err(SnapshotError::BodyTooLarge(header.body_bytes));
    }
    if body.len() as u64 != header.body_bytes {
        return Err(SnapshotError::BodyLength {
            expected: header.body_bytes,
            actual: body.len() as u64,
        });
    }
    if crc32c::crc32c(body) != header.body_checksum {
        return Err(SnapshotError::BodyChecksum);
    }
    let archived = rkyv::access::<ArchivedSnapshotBody, rancor::Error>(body)
        .map_err(|error| SnapshotError::Archive(error.to_string()))?;
    if archived.nodes.len() as u64 != header.node_count {
        return Err(SnapshotError::Structure(format!(
            "header counts {} nodes, body holds {}",
            header.node_count,
            archived.nodes.len()
        )));
    }
    check_structure(archived)?;
    Ok((header, archived))
}

/// The invariants every lookup relies on (see the module doc). One pass, no allocation.
pub fn check_structure(body: &ArchivedSnapshotBody) -> Result<(), SnapshotError> {
    let fail = |reason: String| Err(SnapshotError::Structure(reason));
    let nodes = body.nodes.as_slice();
    let count = nodes.len();
    let Some(root) = nodes.first() else {
        return fail("no root node".into());
    };
    if !root.name.as_str().is_empty() || root.parent.to_native() != 0 {
        return fail("node 0 is not the root".into());
    }
    let acl_count = body.acls.len() as u64;
    // The child ranges, taken in node order, must tile 1..count exactly: every node but the
    // root is the child of exactly one earlier node.
    let mut next_child: u64 = 1;
    let mut special_count: usize = 0;
    for (index, node) in nodes.iter().enumerate() {
        if node.ephemeral_owner.to_native() != 0 {
            special_count += 1;
        }
        if u64::from(node.acl.to_native()) >= acl_count {
            return fail(format!("node {index} refers to ACL {}", node.acl));
        }
        let first = u64::from(node.first_child.to_native());
        let child_count = u64::from(node.child_count.to_native());
        if child_count == 0 {
            continue;
        }
        if first != next_child || first <= index as u64 {
            return fail(format!("children of node {index} start at {first}"));
        }
        next_child = first + child_count;
        if next_child > count as u64 {
            return fail(format!("children of node {index} run past the end"));
        }
        let children = &nodes[first as usize..next_child as usize];
        let mut previous: Option<&str> = None;
        for child in children {
            let name = child.name.as_str();
            if child.parent.to_native() as usize != index {
                return fail(format!("a child of node {index} names another parent"));
            }
            if name.is_empty() || name.contains('/') {
                return fail(format!("a child of node {index} has an invalid name"));
            }
            if previous.is_some_and(|previous| previous >= name) {
                return fail(format!("children of node {index} are not sorted"));
            }
            previous = Some(name);
        }
    }
    if next_child != count as u64 {
        return fail("some nodes are nobody's children".into());
    }
    // The special list is exactly the nodes with an owner, in node order: the tree's indexes
    // of ephemerals, containers and TTL nodes are rebuilt from it alone.
    if body.special.len() != special_count {
        return fail(format!(
            "{} special nodes listed, {special_count} found",
            body.special.len()
        ));
    }
    let mut previous: Option<usize> = None;
    for special in body.special.iter() {
        let index = special.to_native() as usize;
        match nodes.get(index) {
            Some(node) if node.ephemeral_owner.to_native() != 0 => {}
            _ => return fail(format!("special node {index} is not special")),
        }
        if previous.is_some_and(|previous| previous >= index) {
            return fail("special nodes are not in node order".into());
        }
        previous = Some(index);
    }
    Ok(())
}

/// Decodes the ACL table once, so that every node read from the base shares its ACL list.
pub fn decode_acls(body: &ArchivedSnapshotBody) -> Vec<Arc<Vec<Acl>>> {
    body.acls
        .iter()
        .map(|list| {
            Arc::new(
                list.iter()
                    .map(|acl| Acl {
                        perms: acl.perms.to_native(),
                        id: Id {
                            scheme: acl.scheme.to_string(),
                            id: acl.id.to_string(),
                        },
                    })
                    .collect(),
            )
        })
        .collect()
}

/// A validated archive and its decoded ACL table: lookups in place.
#[derive(Clone, Copy)]
pub struct SnapshotView<'a> {
    pub body: &'a ArchivedSnapshotBody,
    pub acls: &'a [Arc<Vec<Acl>>],
}

impl<'a> SnapshotView<'a> {
    pub(crate) fn record(&self, index: u32) -> Option<&'a ArchivedNodeRecord> {
        self.body.nodes.get(index as usize)
    }

    fn children_of(&self, record: &ArchivedNodeRecord) -> &'a [ArchivedNodeRecord] {
        let first = record.first_child.to_native() as usize;
        let end = first + record.child_count.to_native() as usize;
        self.body.nodes.get(first..end).unwrap_or(&[])
    }

    /// The index of the node at `path` (`/` and the empty path are the root): one binary
    /// search per component.
    pub fn lookup(&self, path: &str) -> Option<u32> {
        let mut index = 0u32;
        let mut record = self.record(0)?;
        if path.is_empty() || path == "/" {
            return Some(index);
        }
        // Exactly the paths the tree stores: "/" and "/a/b", never an empty component ("//",
        // "/a//b", "/a/"), which names no node.
        let rest = path.strip_prefix('/')?;
        for component in rest.split('/') {
            if component.is_empty() {
                return None;
            }
            let children = self.children_of(record);
            let position = children
                .binary_search_by(|child| child.name.as_str().cmp(component))
                .ok()?;
            index = record
                .first_child
                .to_native()
                .checked_add(position as u32)?;
            record = children.get(position)?;
        }
        Some(index)
    }

    /// The index of the first child of node `index` (its children are contiguous, sorted by
    /// name), or None for a node without children.
    pub fn first_child(&self, index: u32) -> Option<u32> {
        let record = self.record(index)?;
        (record.child_count.to_native() > 0).then(|| record.first_child.to_native())
    }

    /// The names of the children of node `index`, sorted.
    pub fn child_names(&self, index: u32) -> impl Iterator<Item = &'a str> {
        let children = self.record(index).map_or(&[][..], |r| self.children_of(r));
        children.iter().map(|child| child.name.as_str())
    }

    /// The node at `index`, materialised (its data copied, its ACL shared).
    pub fn node(&self, index: u32) -> Option<Node> {
        let record = self.record(index)?;
        let data = if record.flags.to_native() & FLAG_DATA_NULL != 0 {
            None
        } else {
            Some(Arc::from(record.data.as_slice()))
        };
        Some(Node {
            data,
            acl: self.acls.get(record.acl.to_native() as usize)?.clone(),
            stat: NodeStat {
                czxid: record.czxid.to_native(),
                mzxid: record.mzxid.to_native(),
                pzxid: record.pzxid.to_native(),
                ctime: record.ctime.to_native(),
                mtime: record.mtime.to_native(),
                version: record.version.to_native(),
                cversion: record.cversion.to_native(),
                aversion: record.aversion.to_native(),
                ephemeral_owner: record.ephemeral_owner.to_native(),
            },
            child_count: record.child_count.to_native() as usize,
            digest_cached: None,
        })
    }

    /// The full path of node `index`, rebuilt from the parent links.
    pub fn path_of(&self, index: u32) -> Option<String> {
        let mut names = Vec::new();
        let mut current = index;
        // Parents come before children (check_structure), so this ends within `index` steps.
        while current != 0 {
            let record = self.record(current)?;
            names.push(record.name.as_str());
            let parent = record.parent.to_native();
            if parent >= current {
                return None;
            }
            current = parent;
        }
        Some(crate::tree::path::from_leaf_up(&names))
    }

    /// (path, ephemeral owner) of every ephemeral, container and TTL node, from the stored
    /// index rather than a pass over all nodes.
    pub fn special_nodes(&self) -> Vec<(String, i64)> {
        self.body
            .special
            .iter()
            .filter_map(|index| {
                let index = index.to_native();
                let owner = self.record(index)?.ephemeral_owner.to_native();
                Some((self.path_of(index)?, owner))
            })
            .collect()
    }

    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.body
            .sessions
            .iter()
            .map(|session| SessionRecord {
                session_id: session.session_id.to_native(),
                timeout_ms: session.timeout_ms.to_native(),
            })
            .collect()
    }

    pub fn node_count(&self) -> usize {
        self.body.nodes.len()
    }

    pub fn data_size(&self) -> u64 {
        self.body.data_size.to_native()
    }

    /// Every node in breadth-first order with its path: (path, node).
    pub fn iter(&self) -> impl Iterator<Item = (String, Node)> + 'a {
        let view = *self;
        // Paths of the nodes whose children are still to come, in node order.
        let mut parents: std::collections::VecDeque<(u32, String)> = Default::default();
        (0..self.body.nodes.len() as u32).filter_map(move |index| {
            let record = view.record(index)?;
            let path = if index == 0 {
                "/".to_string()
            } else {
                let parent = record.parent.to_native();
                while parents.front().is_some_and(|(front, _)| *front < parent) {
                    parents.pop_front();
                }
                let parent_path = &parents.front()?.1;
                crate::tree::path::join(parent_path, record.name.as_str())
            };
            if record.child_count.to_native() > 0 {
                parents.push_back((index, path.clone()));
            }
            Some((path, view.node(index)?))
        })
    }
}
