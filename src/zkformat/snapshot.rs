//! [pure] ZooKeeper's snapshot, `version-2/snapshot.<zxid in hex>[.gz|.snappy]` (FileSnap,
//! SnapStream, SerializeUtils.serializeSnapshot, DataTree.serialize,
//! ReferenceCountedACLCache.serialize), byte for byte after decompression:
//!
//! ```text
//! FileHeader   int magic "ZKSN" (0x5a4b534e), int version 2, long dbid (-1)
//! sessions     int count, then count x (long id, int timeout ms)
//! ACL cache    int count, then count x (long index, vector<ACL>)
//! nodes        repeated: ustring path ("" for the root, parents before children), DataNode:
//!              buffer data, long acl index (-1 = OPEN_ACL_UNSAFE), StatPersisted (long czxid,
//!              long mzxid, long ctime, long mtime, int version, int cversion, int aversion,
//!              long ephemeralOwner, long pzxid); ended by the path "/"
//! seal         long Adler-32 of every byte before it, ustring "/"
//! [3.6+]       ZxidDigest: long zxid, int digestVersion, long digest (digestVersion < 2: a
//!              hex ustring), then a seal (Adler-32 of every byte before it)
//! [3.9+]       long lastProcessedZxid, then a seal
//! ```
//!
//! The optional trailers are read when present (ZooKeeper stops at EOF); a seal that does not
//! match is damage ("CRC corruption"), and the snapshot is not used. `.gz` is gzip;
//! `.snappy` is xerial snappy-java's SnappyOutputStream: the 8-byte magic `\x82SNAPPY\0`, two
//! ints (version, compatible version), then blocks of int length + raw snappy data.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use crate::jute::codec::{Reader, Record, Writer};
use crate::jute::records::Acl;
use crate::tree::NodeStat;

use super::model::{ZkNode, ZkTree};
use super::{adler32, FormatError};
use crate::tree::digest::DIGEST_VERSION;

pub const SNAPSHOT_MAGIC: i32 = 0x5a4b_534e;
pub const SNAPSHOT_VERSION: i32 = 2;
/// ReferenceCountedACLCache.OPEN_UNSAFE_ACL_ID.
const OPEN_UNSAFE_ACL_INDEX: i64 = -1;
const SNAPPY_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// The largest snapshot (after decompression) read into memory: far above any tree a
/// ZooKeeper heap holds; anything larger is damage, not data.
pub const SNAPSHOT_BYTES_MAX: u64 = 32 << 30;

/// `DataTree.ZxidDigest` as the snapshot holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: i64,
    pub version: i32,
    pub digest: i64,
}

/// A parsed snapshot.
#[derive(Debug)]
pub struct ZkSnapshot {
    /// The tree (its `sessions` are the snapshot's; `last_zxid` is left to the caller, which
    /// knows the zxid from the file name).
    pub tree: ZkTree,
    pub digest: Option<ZxidDigest>,
    pub last_processed_zxid: Option<i64>,
}

/// The compression a file name says (SnapStream.getStreamMode: the last dot-separated part).
pub fn decompress(name: &str, bytes: &[u8]) -> Result<Vec<u8>, FormatError> {
    if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .take(SNAPSHOT_BYTES_MAX)
            .read_to_end(&mut out)
            .map_err(|error| FormatError::Decompress(error.to_string()))?;
        Ok(out)
    } else if name.ends_with(".snappy") {
        decompress_snappy(bytes)
    } else {
        Ok(bytes.to_vec())
    }
}

fn decompress_snappy(bytes: &[u8]) -> Result<Vec<u8>, FormatError> {
    if bytes.len() < 16 || &bytes[..8] != SNAPPY_MAGIC {
        return Err(FormatError::Decompress(
            "no snappy-java stream header".into(),
        ));
    }
    let mut out = Vec::new();
    let mut position = 16;
    let mut decoder = snap::raw::Decoder::new();
    while position < bytes.len() {
        let mut reader = Reader::new(&bytes[position..]);
        let length = reader.read_i32()?;
        if length < 0 || bytes.len() - position - 4 < length as usize {
            return Err(FormatError::Decompress(format!(
                "snappy block of {length} bytes at offset {position} runs past the file"
            )));
        }
        let block = &bytes[position + 4..position + 4 + length as usize];
        let decoded_length = snap::raw::decompress_len(block)
            .map_err(|error| FormatError::Decompress(error.to_string()))?;
        if (out.len() + decoded_length) as u64 > SNAPSHOT_BYTES_MAX {
            return Err(FormatError::Decompress("snapshot too large".into()));
        }
        let start = out.len();
        out.resize(start + decoded_length, 0);
        decoder
            .decompress(block, &mut out[start..])
            .map_err(|error| FormatError::Decompress(error.to_string()))?;
        position += 4 + length as usize;
    }
    Ok(out)
}

fn read_stat(reader: &mut Reader<'_>) -> Result<NodeStat, FormatError> {
    let czxid = reader.read_i64()?;
    let mzxid = reader.read_i64()?;
    let ctime = reader.read_i64()?;
    let mtime = reader.read_i64()?;
    let version = reader.read_i32()?;
    let cversion = reader.read_i32()?;
    let aversion = reader.read_i32()?;
    let ephemeral_owner = reader.read_i64()?;
    let pzxid = reader.read_i64()?;
    Ok(NodeStat {
        czxid,
        mzxid,
        pzxid,
        ctime,
        mtime,
        version,
        cversion,
        aversion,
        ephemeral_owner,
    })
}

/// Reads a seal at the reader's position: the Adler-32 of `bytes[..position]`, then "/".
fn check_seal(
    bytes: &[u8],
    reader: &mut Reader<'_>,
    what: &'static str,
) -> Result<(), FormatError> {
    let computed = adler32(&bytes[..reader.offset()]);
    let stored = reader.read_i64()?;
    let _slash = reader.read_string()?;
    if stored != computed {
        return Err(FormatError::Checksum {
            what,
            stored,
            computed,
        });
    }
    Ok(())
}

/// Parses a decompressed snapshot.
pub fn read_snapshot(bytes: &[u8]) -> Result<ZkSnapshot, FormatError> {
    let mut reader = Reader::new(bytes);
    let magic = reader.read_i32()?;
    if magic != SNAPSHOT_MAGIC {
        return Err(FormatError::BadMagic {
            kind: "snapshot",
            found: magic,
        });
    }
    let version = reader.read_i32()?;
    if version != SNAPSHOT_VERSION {
        return Err(FormatError::BadVersion {
            kind: "snapshot",
            version,
        });
    }
    let _dbid = reader.read_i64()?;
    let mut tree = ZkTree::new();
    let session_count = reader.read_i32()?;
    for _ in 0..session_count.max(0) {
        let id = reader.read_i64()?;
        let timeout = reader.read_i32()?;
        tree.sessions.insert(id, timeout);
    }
    let acl_count = reader.read_i32()?;
    let mut acls: HashMap<i64, Vec<Acl>> = HashMap::new();
    for _ in 0..acl_count.max(0) {
        let index = reader.read_i64()?;
        let acl = reader.read_vec(12, Acl::decode)?;
        acls.insert(index, acl);
    }
    let open = crate::tree::acl::open_acl();
    loop {
        let path = reader.read_string()?;
        if path == "/" {
            break;
        }
        let data = reader.read_optional_buffer()?;
        let acl_index = reader.read_i64()?;
        let stat = read_stat(&mut reader)?;
        let acl = if acl_index == OPEN_UNSAFE_ACL_INDEX {
            open.clone()
        } else {
            acls.get(&acl_index).cloned().ok_or_else(|| {
                FormatError::Invalid(format!(
                    "node {path} names ACL {acl_index}, not in the cache"
                ))
            })?
        };
        tree.insert_loaded(
            &path,
            ZkNode {
                data,
                acl,
                stat,
                children: Default::default(),
            },
        )
        .map_err(FormatError::Invalid)?;
    }
    if tree.get("/").is_none() {
        return Err(FormatError::Invalid("the snapshot has no root".into()));
    }
    check_seal(bytes, &mut reader, "snapshot seal")?;
    let mut digest = None;
    let mut last_processed_zxid = None;
    // Trailers: each is there only if the writer had the feature on; EOF ends them.
    if reader.remaining() > 0 {
        let zxid = reader.read_i64()?;
        let version = reader.read_i32()?;
        let value = if version < 2 {
            let text = reader.read_optional_string()?;
            match text {
                Some(text) => u64::from_str_radix(&text, 16)
                    .map(|value| value as i64)
                    .map_err(|_| FormatError::Invalid(format!("digest {text:?} is not hex")))?,
                None => 0,
            }
        } else {
            reader.read_i64()?
        };
        check_seal(bytes, &mut reader, "digest seal")?;
        digest = Some(ZxidDigest {
            zxid,
            version,
            digest: value,
        });
        if reader.remaining() > 0 {
            last_processed_zxid = Some(reader.read_i64()?);
            check_seal(bytes, &mut reader, "last zxid seal")?;
        }
    }
    Ok(ZkSnapshot {
        tree,
        digest,
        last_processed_zxid,
    })
}

fn seal(out: &mut Writer) {
    let checksum = adler32(out_bytes(out));
    out.write_i64(checksum);
    out.write_string("/");
}

fn out_bytes(out: &Writer) -> &[u8] {
    out.as_slice()
}

/// Writes a snapshot of `nodes` (parents first, the root as "/"), `sessions` and the digest of
/// the tree at `zxid` (with the trailer 3.6+ reads; 3.5 and older stop before it). No
/// lastProcessedZxid trailer: ZooKeeper 3.9 reads its absence as an older snapshot.
pub fn write_snapshot(
    nodes: &[(String, ZkNode)],
    sessions: &BTreeMap<i64, i32>,
    zxid: i64,
    digest: i64,
) -> Vec<u8> {
    write_snapshot_body(nodes, sessions, zxid, digest).into_bytes()
}

/// [`write_snapshot`] with ZooKeeper 3.9's lastProcessedZxid trailer (`zxid`, sealed), as
/// its FileSnap writes with `zookeeper.serializeLastProcessedZxid.enabled` (the default, and
/// what its `snapshot` and `restore` admin commands require). ZooKeeper 3.6 to 3.8 stop
/// reading after the digest, so they load it too.
pub fn write_snapshot_with_last_zxid(
    nodes: &[(String, ZkNode)],
    sessions: &BTreeMap<i64, i32>,
    zxid: i64,
    digest: i64,
) -> Vec<u8> {
    let mut out = write_snapshot_body(nodes, sessions, zxid, digest);
    out.write_i64(zxid);
    seal(&mut out);
    out.into_bytes()
}

fn write_snapshot_body(
    nodes: &[(String, ZkNode)],
    sessions: &BTreeMap<i64, i32>,
    zxid: i64,
    digest: i64,
) -> Writer {
    let mut out = Writer::new();
    out.write_i32(SNAPSHOT_MAGIC);
    out.write_i32(SNAPSHOT_VERSION);
    out.write_i64(-1);
    write_tree_body(&mut out, nodes, sessions);
    seal(&mut out);
    out.write_i64(zxid);
    out.write_i32(DIGEST_VERSION);
    out.write_i64(digest);
    seal(&mut out);
    out
}

/// SerializeUtils.serializeSnapshot: the sessions, the ACL cache and the nodes (parents
/// first), ended by the path "/". A snapshot file and a leader's SNAP stream both carry it.
pub fn write_tree_body(
    out: &mut Writer,
    nodes: &[(String, ZkNode)],
    sessions: &BTreeMap<i64, i32>,
) {
    out.write_i32(sessions.len() as i32);
    for (id, timeout) in sessions {
        out.write_i64(*id);
        out.write_i32(*timeout);
    }
    // The ACL cache: one index per distinct ACL (keyed by its jute encoding), in order of
    // first use.
    let acl_key = |acl: &[Acl]| {
        let mut key = Writer::new();
        key.write_vec(acl, |writer, entry| entry.encode(writer));
        key.into_bytes()
    };
    let mut indexes: HashMap<Vec<u8>, i64> = HashMap::new();
    let mut node_indexes: Vec<i64> = Vec::with_capacity(nodes.len());
    let mut ordered: Vec<&[Acl]> = Vec::new();
    for (_, node) in nodes {
        let key = acl_key(&node.acl);
        let next = ordered.len() as i64 + 1;
        let index = *indexes.entry(key).or_insert_with(|| {
            ordered.push(node.acl.as_slice());
            next
        });
        node_indexes.push(index);
    }
    out.write_i32(ordered.len() as i32);
    for (position, acl) in ordered.iter().enumerate() {
        out.write_i64(position as i64 + 1);
        out.write_vec(acl, |writer, entry| entry.encode(writer));
    }
    for ((path, node), index) in nodes.iter().zip(node_indexes) {
        out.write_string(if path == "/" { "" } else { path });
        out.write_optional_buffer(node.data.as_deref());
        out.write_i64(index);
        let stat = &node.stat;
        out.write_i64(stat.czxid);
        out.write_i64(stat.mzxid);
        out.write_i64(stat.ctime);
        out.write_i64(stat.mtime);
        out.write_i32(stat.version);
        out.write_i32(stat.cversion);
        out.write_i32(stat.aversion);
        out.write_i64(stat.ephemeral_owner);
        out.write_i64(stat.pzxid);
    }
    out.write_string("/");
}

/// ZooKeeper's name of the snapshot at `zxid` (Util.makeSnapshotName: unpadded hex).
pub fn snapshot_file_name(zxid: i64) -> String {
    format!("snapshot.{:x}", zxid as u64)
}
