//! [pure] The snapshot a ZooKeeper leader streams after a SNAP packet (LearnerHandler:
//! `ZKDatabase.serializeSnapshot` then `writeString("BenWasHere", "signature")`), read from
//! any `Read` (the shell's buffered socket; a byte slice in the tests).
//!
//! Unlike a snapshot file it has no FileHeader, no Adler-32 seals and no digest trailer
//! (ZooKeeper 3.8 sends none: checked against a capture, `tests/golden/zkquorum/`):
//!
//! ```text
//! sessions   int count, then count x (long id, int timeout ms)
//! ACL cache  int count, then count x (long index, vector<ACL>)
//! nodes      repeated: ustring path ("" for the root), buffer data, long acl index,
//!            StatPersisted; ended by the path "/"
//! signature  ustring "BenWasHere"
//! ```
//!
//! There is no length anywhere, so every length read is bounded before its bytes are.

use std::collections::HashMap;
use std::io::Read;

use crate::jute::records::{Acl, Id};
use crate::tree::NodeStat;
use crate::zkformat::model::{ZkNode, ZkTree};

/// Learner.syncWithLeader's check of the end of the stream.
pub const SIGNATURE: &str = "BenWasHere";
/// ReferenceCountedACLCache.OPEN_UNSAFE_ACL_ID.
const OPEN_UNSAFE_ACL_INDEX: i64 = -1;
/// Bounds on what one stream may announce (far above what a ZooKeeper heap holds).
const FIELD_BYTES_MAX: usize = 0xfffff + 64 * 1024;
const COUNT_MAX: i32 = 50_000_000;

#[derive(Debug, thiserror::Error)]
pub enum SnapStreamError {
    #[error("reading the snapshot stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid snapshot stream: {0}")]
    Invalid(String),
}

struct Fields<'r, R: Read> {
    reader: &'r mut R,
}

impl<R: Read> Fields<'_, R> {
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], SnapStreamError> {
        let mut bytes = [0u8; N];
        self.reader.read_exact(&mut bytes)?;
        Ok(bytes)
    }

    fn i32(&mut self) -> Result<i32, SnapStreamError> {
        Ok(i32::from_be_bytes(self.fixed()?))
    }

    fn i64(&mut self) -> Result<i64, SnapStreamError> {
        Ok(i64::from_be_bytes(self.fixed()?))
    }

    fn count(&mut self, what: &str) -> Result<usize, SnapStreamError> {
        let count = self.i32()?;
        if !(0..=COUNT_MAX).contains(&count) {
            return Err(SnapStreamError::Invalid(format!("{what} count {count}")));
        }
        Ok(count as usize)
    }

    fn buffer(&mut self) -> Result<Option<Vec<u8>>, SnapStreamError> {
        let length = self.i32()?;
        if length == -1 {
            return Ok(None);
        }
        if length < 0 || length as usize > FIELD_BYTES_MAX {
            return Err(SnapStreamError::Invalid(format!("field length {length}")));
        }
        let mut bytes = vec![0u8; length as usize];
        self.reader.read_exact(&mut bytes)?;
        Ok(Some(bytes))
    }

    fn string(&mut self) -> Result<String, SnapStreamError> {
        let bytes = self
            .buffer()?
            .ok_or_else(|| SnapStreamError::Invalid("a null string".into()))?;
        String::from_utf8(bytes)
            .map_err(|_| SnapStreamError::Invalid("a string is not UTF-8".into()))
    }

    fn stat(&mut self) -> Result<NodeStat, SnapStreamError> {
        let czxid = self.i64()?;
        let mzxid = self.i64()?;
        let ctime = self.i64()?;
        let mtime = self.i64()?;
        let version = self.i32()?;
        let cversion = self.i32()?;
        let aversion = self.i32()?;
        let ephemeral_owner = self.i64()?;
        let pzxid = self.i64()?;
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
}

/// Reads a whole stream; the tree's `last_zxid` is `zxid` (the SNAP packet's).
pub fn read_snapshot_stream<R: Read>(reader: &mut R, zxid: i64) -> Result<ZkTree, SnapStreamError> {
    let mut fields = Fields { reader };
    let mut tree = ZkTree::new();
    tree.last_zxid = zxid;
    for _ in 0..fields.count("session")? {
        let id = fields.i64()?;
        let timeout_ms = fields.i32()?;
        tree.sessions.insert(id, timeout_ms);
    }
    let mut acls: HashMap<i64, Vec<Acl>> = HashMap::new();
    for _ in 0..fields.count("ACL cache")? {
        let index = fields.i64()?;
        let entries = fields.count("ACL")?;
        let mut acl = Vec::with_capacity(entries.min(64));
        for _ in 0..entries {
            let perms = fields.i32()?;
            let scheme = fields.string()?;
            let id = fields.string()?;
            acl.push(Acl {
                perms,
                id: Id { scheme, id },
            });
        }
        acls.insert(index, acl);
    }
    let open = crate::tree::acl::open_acl();
    let mut nodes = 0usize;
    loop {
        let path = fields.string()?;
        if path == "/" {
            break;
        }
        nodes += 1;
        if nodes > COUNT_MAX as usize {
            return Err(SnapStreamError::Invalid("too many nodes".into()));
        }
        let data = fields.buffer()?;
        let acl_index = fields.i64()?;
        let stat = fields.stat()?;
        let acl = if acl_index == OPEN_UNSAFE_ACL_INDEX {
            open.clone()
        } else {
            acls.get(&acl_index).cloned().ok_or_else(|| {
                SnapStreamError::Invalid(format!(
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
        .map_err(SnapStreamError::Invalid)?;
    }
    if tree.get("/").is_none() {
        return Err(SnapStreamError::Invalid("the stream has no root".into()));
    }
    let signature = fields.string()?;
    if signature != SIGNATURE {
        return Err(SnapStreamError::Invalid(format!(
            "missing signature: got {signature:?} (Learner.syncWithLeader)"
        )));
    }
    Ok(tree)
}

/// Writes `tree` as a leader streams it (for tests, and for a ringkeeper leader later).
pub fn write_snapshot_stream(tree: &ZkTree, out: &mut crate::jute::codec::Writer) {
    let nodes: Vec<(String, ZkNode)> = tree
        .paths_preorder()
        .into_iter()
        .filter_map(|path| tree.get(&path).cloned().map(|node| (path, node)))
        .collect();
    crate::zkformat::snapshot::write_tree_body(out, &nodes, &tree.sessions);
    out.write_string(SIGNATURE);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::codec::Writer;

    #[test]
    fn a_written_stream_reads_back_and_any_cut_is_an_error() {
        let mut tree = ZkTree::initial();
        tree.sessions.insert(0x0400_0000_0000_0001, 10_000);
        let mut out = Writer::new();
        write_snapshot_stream(&tree, &mut out);
        let bytes = out.into_bytes();
        let read = read_snapshot_stream(&mut &bytes[..], 0x1_0000_0009).unwrap();
        assert_eq!(read.last_zxid, 0x1_0000_0009);
        assert_eq!(read.sessions, tree.sessions);
        assert_eq!(read.paths_preorder(), tree.paths_preorder());
        assert_eq!(read.digest(), tree.digest());
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                read_snapshot_stream(&mut &bytes[..cut], 0).is_err(),
                "{cut}"
            );
        }
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(read_snapshot_stream(&mut &bad[..], 0).is_err());
    }
}
