//! [pure] Streams a tree version into a snapshot: the header and the rkyv archive of the body
//! written straight to an `io::Write` (a file, or a buffer for ZAB's SNAP), never built as a
//! `SnapshotBody` in memory first.
//!
//! The bytes are exactly those of rkyv's derived serialization of the equivalent
//! [`super::format::SnapshotBody`] (`the_streamed_archive_holds_the_models_records` checks
//! it). What differs is the memory: building a `SnapshotBody` first holds a record per node
//! with copies of its name and data, and the archive in a buffer: about three times the file.
//! This encoder writes each node's name and data as it walks the tree and keeps a 48-byte slot
//! per node (plus its name, and the stat of nodes changed since the base: the base's own
//! records are read again in place) until the node array, which must follow the data it points
//! to, is written at the end.
//!
//! Order of the body. rkyv's validation visits pointers depth first and requires each
//! pointee to lie before its pointer and after everything visited before it, which is the
//! order rkyv's own serializer writes in: node 0's name (when longer than rkyv's 8 inline
//! bytes) and data, node 1's, …, the node array, the ACL table, the special list, the
//! sessions, and the root.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;

use rkyv::munge::munge;
use rkyv::rancor::{self, Fallible, Source};
use rkyv::ser::writer::IoWriter;
use rkyv::ser::{Allocator, Positional, Writer};
use rkyv::string::{ArchivedString, StringResolver};
use rkyv::vec::{ArchivedVec, VecResolver};
use rkyv::{Archive, Place, Serialize};

use super::format::{
    AclRecord, ArchivedAclRecord, ArchivedNodeRecord, ArchivedSnapshotBody, Header, SessionRecord,
    SnapshotError, FLAG_DATA_NULL, HEADER_BYTES, NODE_COUNT_MAX,
};
use crate::jute::records::Acl;
use crate::snapshot::MappedSnapshot;
use crate::tree::{NodeSource, NodeStat, TreeVersion};

/// Writes the snapshot of `tree` (base and delta merged) and `sessions` (those live at
/// `tree.zxid`) to `out`, which must be positioned at the start of the file: a zeroed header,
/// then the body. Returns the real header, which the caller writes over the zeroed one (the
/// body's length and checksum are only known at the end).
///
/// Errors: `out` failed (the caller names its file), or the tree cannot be encoded.
pub fn stream_snapshot<W: Write>(
    tree: &TreeVersion,
    sessions: &[SessionRecord],
    out: W,
) -> Result<Header, StreamError> {
    stream_snapshot_within(tree, sessions, out, BODY_BYTES_MAX)
}

/// The largest body written (format 3's pointers are 64-bit: the bound is ours, not rkyv's;
/// see `format::BODY_BYTES_MAX`).
pub const BODY_BYTES_MAX: usize = super::format::BODY_BYTES_MAX as usize;

/// [`stream_snapshot`] with the body limited to `body_bytes_max` (tests use a small one).
/// A tree whose body would not fit is refused with [`SnapshotError::BodyTooLarge`] before
/// any pointer to it is written.
pub fn stream_snapshot_within<W: Write>(
    tree: &TreeVersion,
    sessions: &[SessionRecord],
    out: W,
    body_bytes_max: usize,
) -> Result<Header, StreamError> {
    let mut sessions = sessions.to_vec();
    sessions.sort();
    let mut out = ChecksumWriter {
        inner: out,
        checksum: 0,
        failed: None,
    };
    if let Err(error) = out.inner.write_all(&[0u8; HEADER_BYTES]) {
        return Err(StreamError::Io(error));
    }
    let source = BodySource {
        tree,
        sessions: &sessions,
        body_bytes_max,
        node_count: Cell::new(0),
        failure: Cell::new(None),
    };
    let written =
        rkyv::api::high::to_bytes_in::<_, rancor::Error>(&source, IoWriter::new(&mut out));
    let body_bytes = match written {
        Ok(writer) => writer.pos(),
        Err(error) => {
            return Err(match (out.failed.take(), source.failure.take()) {
                (Some(io_error), _) => StreamError::Io(io_error),
                (None, Some(failure)) => StreamError::Snapshot(failure),
                (None, None) => StreamError::Snapshot(SnapshotError::Archive(error.to_string())),
            })
        }
    };
    Ok(Header {
        zxid: tree.zxid,
        node_count: source.node_count.get(),
        body_bytes: body_bytes as u64,
        body_checksum: out.checksum,
        tree_digest: Some(tree.digest() as u64),
    })
}

/// Why streaming a snapshot failed.
#[derive(Debug)]
pub enum StreamError {
    /// Writing to the output failed.
    Io(io::Error),
    /// The tree cannot be encoded (too large, or it changed while being read).
    Snapshot(SnapshotError),
}

/// Passes bytes through, computing the CRC-32C of everything after the header, and keeps the
/// first write error (rkyv reports it only as a message).
struct ChecksumWriter<W> {
    inner: W,
    checksum: u32,
    failed: Option<io::Error>,
}

impl<W: Write> Write for ChecksumWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self.inner.write(bytes) {
            Ok(written) => {
                self.checksum = crc32c::crc32c_append(self.checksum, &bytes[..written]);
                Ok(written)
            }
            Err(error) => {
                let kind = error.kind();
                let message = error.to_string();
                self.failed.get_or_insert(error);
                Err(io::Error::new(kind, message))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The body, serialised from the tree: an `Archive` whose archived form is the derived
/// [`ArchivedSnapshotBody`].
struct BodySource<'a> {
    tree: &'a TreeVersion,
    sessions: &'a [SessionRecord],
    body_bytes_max: usize,
    /// Set by `serialize`: the header needs it.
    node_count: Cell<u64>,
    /// Why the walk failed, if it did (rkyv carries only a message).
    failure: Cell<Option<SnapshotError>>,
}

/// The error rkyv carries when the walk fails; the cause is in `BodySource::failure`.
#[derive(Debug)]
struct WalkFailed(String);

impl std::fmt::Display for WalkFailed {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for WalkFailed {}

struct BodyResolver {
    nodes: (usize, VecResolver),
    acls: (usize, VecResolver),
    special: (usize, VecResolver),
    sessions: (usize, VecResolver),
}

impl Archive for BodySource<'_> {
    type Archived = ArchivedSnapshotBody;
    type Resolver = BodyResolver;

    fn resolve(&self, resolver: BodyResolver, out: Place<ArchivedSnapshotBody>) {
        munge!(let ArchivedSnapshotBody { nodes, acls, special, sessions, data_size } = out);
        ArchivedVec::resolve_from_len(resolver.nodes.0, resolver.nodes.1, nodes);
        ArchivedVec::resolve_from_len(resolver.acls.0, resolver.acls.1, acls);
        ArchivedVec::resolve_from_len(resolver.special.0, resolver.special.1, special);
        ArchivedVec::resolve_from_len(resolver.sessions.0, resolver.sessions.1, sessions);
        (self.tree.approximate_data_size() as u64).resolve((), data_size);
    }
}

impl<S> Serialize<S> for BodySource<'_>
where
    S: Fallible + Writer + Allocator + ?Sized,
    S::Error: Source,
{
    fn serialize(&self, serializer: &mut S) -> Result<BodyResolver, S::Error> {
        let walked = walk(self.tree, serializer, &self.failure, self.body_bytes_max)?;
        self.node_count.set(walked.slots.len() as u64);
        // Everything after the data (an over-estimate of the ACL table included) must fit
        // before any relative pointer is resolved: rkyv panics on an offset that overflows.
        let acl_bytes: usize = walked
            .acls
            .iter()
            .map(|list| {
                std::mem::size_of::<ArchivedVec<ArchivedAclRecord>>()
                    + list
                        .iter()
                        .map(|acl| {
                            std::mem::size_of::<ArchivedAclRecord>()
                                + acl.scheme.len()
                                + acl.id.len()
                                + 16
                        })
                        .sum::<usize>()
            })
            .sum();
        let estimate = serializer.pos()
            + walked.slots.len() * std::mem::size_of::<ArchivedNodeRecord>()
            + acl_bytes
            + walked.special.len() * 4
            + std::mem::size_of_val(self.sessions) * 2
            + 4096;
        if estimate > self.body_bytes_max {
            let error = SnapshotError::BodyTooLarge(estimate as u64);
            let message = error.to_string();
            self.failure.set(Some(error));
            return Err(S::Error::new(WalkFailed(message)));
        }
        let items = walked
            .slots
            .iter()
            .zip(&walked.name_resolvers)
            .map(|(slot, name_resolver)| NodeItem {
                fixed: walked.fixed(slot),
                name: walked.name(slot),
                name_resolver,
            });
        let nodes = ArchivedVec::serialize_from_iter::<NodeItem, _, _>(items, serializer)?;
        let acls = ArchivedVec::serialize_from_slice(&walked.acls, serializer)?;
        let special = ArchivedVec::serialize_from_slice(&walked.special, serializer)?;
        let sessions = ArchivedVec::serialize_from_slice(self.sessions, serializer)?;
        Ok(BodyResolver {
            nodes: (walked.slots.len(), nodes),
            acls: (walked.acls.len(), acls),
            special: (walked.special.len(), special),
            sessions: (self.sessions.len(), sessions),
        })
    }
}

/// The fields of a node's archived record other than its name and data pointers.
struct NodeFixed {
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    ctime: i64,
    mtime: i64,
    ephemeral_owner: i64,
    version: i32,
    cversion: i32,
    aversion: i32,
    acl: u32,
    parent: u32,
    first_child: u32,
    child_count: u32,
    flags: u32,
    data_len: u32,
    data_pos: usize,
}

/// What the walk keeps of a node until the node array is written (48 bytes): its place in
/// the tree, where its data went, and where the rest of its record is. A node read from the
/// base keeps only its index there, since the base is mapped and its record can be read
/// again; a node of the delta keeps its stat in `Walked::delta`.
struct NodeSlot {
    /// The node's index in the base, or `DELTA | i` for `Walked::delta[i]`.
    source: u32,
    parent: u32,
    first_child: u32,
    child_count: u32,
    acl: u32,
    name_len: u32,
    /// Where the node's data went: a body past 4 GiB has data beyond u32.
    data_pos: u64,
    name_start: usize,
}

const DELTA: u32 = 1 << 31;

/// A node of the delta: what its record needs besides what `NodeSlot` has.
struct DeltaNode {
    stat: NodeStat,
    data_len: u32,
    flags: u32,
}

/// What the walk produced besides the names and data it wrote.
struct Walked<'a> {
    slots: Vec<NodeSlot>,
    delta: Vec<DeltaNode>,
    base: Option<&'a Arc<MappedSnapshot>>,
    names: String,
    /// Where each node's name went (taken when the node array is written).
    name_resolvers: Vec<Cell<Option<StringResolver>>>,
    acls: Vec<Vec<AclRecord>>,
    special: Vec<u32>,
}

impl Walked<'_> {
    fn name(&self, slot: &NodeSlot) -> &str {
        self.names
            .get(slot.name_start..slot.name_start + slot.name_len as usize)
            .unwrap_or("")
    }

    /// The whole record of `slot` but its name (the delta's stat, or the base's record).
    fn fixed(&self, slot: &NodeSlot) -> NodeFixed {
        let mut fixed = NodeFixed {
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
            ephemeral_owner: 0,
            version: 0,
            cversion: 0,
            aversion: 0,
            acl: slot.acl,
            parent: slot.parent,
            first_child: slot.first_child,
            child_count: slot.child_count,
            flags: 0,
            data_len: 0,
            data_pos: slot.data_pos as usize,
        };
        if slot.source & DELTA != 0 {
            if let Some(node) = self.delta.get((slot.source & !DELTA) as usize) {
                let stat = &node.stat;
                (fixed.czxid, fixed.mzxid, fixed.pzxid) = (stat.czxid, stat.mzxid, stat.pzxid);
                (fixed.ctime, fixed.mtime) = (stat.ctime, stat.mtime);
                fixed.ephemeral_owner = stat.ephemeral_owner;
                (fixed.version, fixed.cversion) = (stat.version, stat.cversion);
                fixed.aversion = stat.aversion;
                (fixed.flags, fixed.data_len) = (node.flags, node.data_len);
            }
        } else if let Some(record) = self.base.and_then(|base| base.view().record(slot.source)) {
            fixed.czxid = record.czxid.to_native();
            fixed.mzxid = record.mzxid.to_native();
            fixed.pzxid = record.pzxid.to_native();
            fixed.ctime = record.ctime.to_native();
            fixed.mtime = record.mtime.to_native();
            fixed.ephemeral_owner = record.ephemeral_owner.to_native();
            fixed.version = record.version.to_native();
            fixed.cversion = record.cversion.to_native();
            fixed.aversion = record.aversion.to_native();
            fixed.flags = record.flags.to_native() & FLAG_DATA_NULL;
            fixed.data_len = record.data.len() as u32;
        }
        fixed
    }
}

/// Walks `tree` breadth-first (children sorted), writing each node's name and data to
/// `serializer`, and numbers the nodes: slot i is node i, its children are numbered when it
/// is visited, after every node already numbered. Nodes are visited in index order, so the
/// numbered-but-unvisited slots are the breadth-first queue, and no path is kept but the
/// parent's of the node being visited. Nodes of the base are read in place.
fn walk<'a, S>(
    tree: &'a TreeVersion,
    serializer: &mut S,
    failure: &Cell<Option<SnapshotError>>,
    body_bytes_max: usize,
) -> Result<Walked<'a>, S::Error>
where
    S: Fallible + Writer + ?Sized,
    S::Error: Source,
    str: rkyv::SerializeUnsized<S>,
{
    let fail = |error: SnapshotError| {
        let message = error.to_string();
        failure.set(Some(error));
        S::Error::new(WalkFailed(message))
    };
    let mut walked = Walked {
        slots: Vec::with_capacity(tree.node_count()),
        delta: Vec::new(),
        base: tree.base(),
        names: String::new(),
        name_resolvers: Vec::with_capacity(tree.node_count()),
        acls: Vec::new(),
        special: Vec::new(),
    };
    walked.slots.push(NodeSlot::numbered(0, 0, 0));
    // Per slot: the node's index in the base, when its parent's walk found it there unchanged
    // (so the node is not looked up from the root again; see `TreeVersion::for_each_child_at`).
    let mut base_hints: Vec<Option<u32>> = Vec::with_capacity(tree.node_count());
    base_hints.push(None);
    // ACL lists by identity first (nodes of the base, and nodes of the delta made from one
    // request, share their Arc), then by value.
    let mut acl_by_pointer: HashMap<*const Vec<Acl>, u32> = HashMap::new();
    let mut acl_by_value: HashMap<Vec<AclRecord>, u32> = HashMap::new();
    // The pointer is only a cache key: `owners` keeps each Arc alive (so the address is not
    // reused by another list) until the walk ends.
    let mut owners: Vec<Arc<Vec<Acl>>> = Vec::new();
    let mut acl_index = |acl: &Arc<Vec<Acl>>, acls: &mut Vec<Vec<AclRecord>>| {
        if let Some(index) = acl_by_pointer.get(&Arc::as_ptr(acl)) {
            return *index;
        }
        let records: Vec<AclRecord> = acl.iter().map(AclRecord::from_acl).collect();
        let next = acls.len() as u32;
        let index = *acl_by_value.entry(records.clone()).or_insert(next);
        if index == next {
            acls.push(records);
        }
        acl_by_pointer.insert(Arc::as_ptr(acl), index);
        owners.push(acl.clone());
        index
    };
    // (index, path) of the parent of the nodes being visited.
    let mut parent_path: (u32, String) = (0, "/".to_string());
    let mut path = String::new();
    let mut index = 0usize;
    while let Some(slot) = walked.slots.get(index) {
        let parent = slot.parent;
        path.clear();
        if index == 0 {
            path.push('/');
        } else {
            if parent_path.0 != parent {
                parent_path = (parent, path_of(&walked, parent));
            }
            path.push_str(&parent_path.1);
            if parent_path.1 != "/" {
                path.push('/');
            }
            path.push_str(walked.name(slot));
        }
        let vanished = || SnapshotError::Structure(format!("{path} vanished while written"));
        // What the record needs from the node: (source, acl, data or None for null, owner).
        let hint = base_hints.get(index).copied().flatten();
        let node_source = tree.source_at(&path, hint);
        let base_index = match &node_source {
            Some(NodeSource::Base(_, base_index)) => Some(*base_index),
            _ => None,
        };
        let (source, acl, data, owner) = match node_source {
            Some(NodeSource::Delta(node)) => {
                let data_len = node.data.as_ref().map_or(0, |data| data.len()) as u32;
                let source = DELTA | walked.delta.len() as u32;
                if walked.delta.len() as u32 >= DELTA {
                    return Err(fail(SnapshotError::TooLarge(walked.slots.len())));
                }
                walked.delta.push(DeltaNode {
                    stat: node.stat,
                    data_len,
                    flags: if node.data.is_none() {
                        FLAG_DATA_NULL
                    } else {
                        0
                    },
                });
                let acl = acl_index(&node.acl, &mut walked.acls);
                (source, acl, node.data.as_deref(), node.stat.ephemeral_owner)
            }
            Some(NodeSource::Base(base, base_index)) => {
                let view = base.view();
                let (Some(record), true) = (view.record(base_index), base_index < DELTA) else {
                    return Err(fail(vanished()));
                };
                let Some(list) = view.acls.get(record.acl.to_native() as usize) else {
                    return Err(fail(vanished()));
                };
                let acl = acl_index(list, &mut walked.acls);
                let data = (record.flags.to_native() & FLAG_DATA_NULL == 0)
                    .then(|| record.data.as_slice());
                (base_index, acl, data, record.ephemeral_owner.to_native())
            }
            None => return Err(fail(vanished())),
        };
        let first_child = walked.slots.len();
        {
            let Walked { slots, names, .. } = &mut walked;
            tree.for_each_child_at(&path, base_index, |name, child_base_index| {
                let start = names.len();
                names.push_str(name);
                slots.push(NodeSlot::numbered(index as u32, start, name.len() as u32));
                base_hints.push(child_base_index);
            });
        }
        let child_count = walked.slots.len() - first_child;
        if walked.slots.len() > NODE_COUNT_MAX {
            return Err(fail(SnapshotError::TooLarge(walked.slots.len())));
        }
        // This node's name, then its data: the order in which validation visits them.
        let Some(slot) = walked.slots.get(index) else {
            break;
        };
        let name_resolver = ArchivedString::serialize_from_str(walked.name(slot), serializer)?;
        walked.name_resolvers.push(Cell::new(Some(name_resolver)));
        let data_pos = serializer.pos();
        if data_pos > body_bytes_max {
            return Err(fail(SnapshotError::BodyTooLarge(data_pos as u64)));
        }
        serializer.write(data.unwrap_or(&[]))?;
        if owner != 0 {
            walked.special.push(index as u32);
        }
        let Some(slot) = walked.slots.get_mut(index) else {
            break;
        };
        slot.source = source;
        slot.acl = acl;
        slot.first_child = if child_count == 0 {
            0
        } else {
            first_child as u32
        };
        slot.child_count = child_count as u32;
        slot.data_pos = data_pos as u64;
        index += 1;
    }
    drop(owners);
    Ok(walked)
}

/// The path of node `index` of the walk, from the parent links (parents come first).
fn path_of(walked: &Walked, index: u32) -> String {
    let mut names = Vec::new();
    let mut current = index;
    while current != 0 {
        let Some(slot) = walked.slots.get(current as usize) else {
            break;
        };
        names.push(walked.name(slot));
        current = slot.parent;
    }
    crate::tree::path::from_leaf_up(&names)
}

impl NodeSlot {
    /// A node numbered but not visited yet: its parent and name are known.
    fn numbered(parent: u32, name_start: usize, name_len: u32) -> NodeSlot {
        NodeSlot {
            source: 0,
            parent,
            first_child: 0,
            child_count: 0,
            acl: 0,
            data_pos: 0,
            name_start,
            name_len,
        }
    }
}

/// One element of the node array: the record, its name, and where the walk wrote the name
/// (the data's position is in the record). Serialising it writes nothing.
struct NodeItem<'a> {
    fixed: NodeFixed,
    name: &'a str,
    name_resolver: &'a Cell<Option<StringResolver>>,
}

struct NodeItemResolver {
    name: StringResolver,
    data: VecResolver,
}

impl Archive for NodeItem<'_> {
    type Archived = ArchivedNodeRecord;
    type Resolver = NodeItemResolver;

    fn resolve(&self, resolver: NodeItemResolver, out: Place<ArchivedNodeRecord>) {
        let fixed = &self.fixed;
        munge!(let ArchivedNodeRecord {
            czxid, mzxid, pzxid, ctime, mtime, ephemeral_owner, version, cversion, aversion,
            acl, parent, first_child, child_count, flags, name, data
        } = out);
        fixed.czxid.resolve((), czxid);
        fixed.mzxid.resolve((), mzxid);
        fixed.pzxid.resolve((), pzxid);
        fixed.ctime.resolve((), ctime);
        fixed.mtime.resolve((), mtime);
        fixed.ephemeral_owner.resolve((), ephemeral_owner);
        fixed.version.resolve((), version);
        fixed.cversion.resolve((), cversion);
        fixed.aversion.resolve((), aversion);
        fixed.acl.resolve((), acl);
        fixed.parent.resolve((), parent);
        fixed.first_child.resolve((), first_child);
        fixed.child_count.resolve((), child_count);
        fixed.flags.resolve((), flags);
        ArchivedString::resolve_from_str(self.name, resolver.name, name);
        ArchivedVec::<u8>::resolve_from_len(fixed.data_len as usize, resolver.data, data);
    }
}

impl<S> Serialize<S> for NodeItem<'_>
where
    S: Fallible + Writer + ?Sized,
    S::Error: Source,
    str: rkyv::SerializeUnsized<S>,
{
    fn serialize(&self, serializer: &mut S) -> Result<NodeItemResolver, S::Error> {
        // rkyv serialises each item once, so the walk's resolver is there; without one (a
        // name of at most 8 bytes is inline) this writes nothing.
        let name = match self.name_resolver.take() {
            Some(resolver) => resolver,
            None => ArchivedString::serialize_from_str(self.name, serializer)?,
        };
        Ok(NodeItemResolver {
            name,
            data: VecResolver::from_pos(self.fixed.data_pos),
        })
    }
}
