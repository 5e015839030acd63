//! [pure] A reader of snapshot format version 2, decoded by hand, so that an installation
//! whose log was purged can upgrade to format 3 (see `format`'s module doc, "Versions").
//!
//! rkyv's pointer width is a build-wide feature: this build's rkyv has 64-bit pointers and
//! cannot access a version 2 archive (32-bit pointers). Version 2 is frozen, so its layout is
//! decoded here byte by byte, every read bounds-checked: any damage is a [`SnapshotError`],
//! never a panic. The layout (as written by ringkeeper up to commit 281f941, rkyv 0.8 default
//! features: little-endian, aligned, 32-bit relative pointers):
//!
//! ```text
//! header: as format 3's, with version 2
//! body: the root, ArchivedSnapshotBody (40 bytes), is the last 40 bytes
//!   0 nodes Vec<NodeRecord>  8 acls Vec<Vec<AclRecord>>  16 special Vec<u32>
//!   24 sessions Vec<SessionRecord>  32 data size u64
//! Vec<T> (8 bytes): offset i32 (from the Vec's own position to its first element), length u32
//! String (8 bytes): inline when byte 0 & 0xc0 != 0x80 (the bytes up to the first 0xff, or
//!   all 8); else out of line: length u32 with two tag bits (length = (raw & 0x3f) |
//!   ((raw & !0xff) >> 2)), then offset i32 from the String's own position
//! NodeRecord (96 bytes): the integers of format 3's, name String at 80, data Vec<u8> at 88
//! AclRecord (20 bytes): perms i32, scheme String at 4, id String at 12
//! SessionRecord (16 bytes): session id i64, timeout ms i32 at 8
//! ```
//!
//! The checks are the old `validate`'s: header (magic, checksum, version, length), body
//! length and checksum, every pointer and length inside the body and every string UTF-8 (what
//! bytecheck checked), the header's node count. The tree structure (`check_structure`) is
//! checked by [`convert`] on the format 3 archive it produces, which has the same rules.

use rkyv::util::AlignedVec;

use super::format::{
    self, AclRecord, NodeRecord, SessionRecord, SnapshotBody, SnapshotError, HEADER_BYTES, MAGIC,
};

pub const FORMAT_VERSION_2: u32 = 2;
const ROOT_BYTES: usize = 40;
const VEC_BYTES: usize = 8;
const STRING_BYTES: usize = 8;
const NODE_BYTES: usize = 96;
const ACL_BYTES: usize = 20;
const SESSION_BYTES: usize = 16;

/// The header of a version 2 file, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header2 {
    pub zxid: i64,
    pub node_count: u64,
    pub body_bytes: u64,
    pub body_checksum: u32,
}

fn archive_error(reason: String) -> SnapshotError {
    SnapshotError::Archive(format!("format 2: {reason}"))
}

/// Bounds-checked little-endian reads of a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn slice(&self, at: usize, length: usize) -> Result<&'a [u8], SnapshotError> {
        at.checked_add(length)
            .and_then(|end| self.bytes.get(at..end))
            .ok_or_else(|| archive_error(format!("{length} bytes at {at} are out of bounds")))
    }

    fn array<const N: usize>(&self, at: usize) -> Result<[u8; N], SnapshotError> {
        let mut raw = [0u8; N];
        raw.copy_from_slice(self.slice(at, N)?);
        Ok(raw)
    }

    fn u32(&self, at: usize) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array(at)?))
    }

    fn i32(&self, at: usize) -> Result<i32, SnapshotError> {
        Ok(i32::from_le_bytes(self.array(at)?))
    }

    fn i64(&self, at: usize) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.array(at)?))
    }

    fn u64(&self, at: usize) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array(at)?))
    }

    /// The target of a relative pointer stored at `at`: `at + offset`, inside the body.
    fn target(&self, at: usize, offset: i32) -> Result<usize, SnapshotError> {
        let target = i64::try_from(at)
            .ok()
            .and_then(|at| at.checked_add(i64::from(offset)))
            .and_then(|target| usize::try_from(target).ok())
            .filter(|target| *target <= self.bytes.len());
        target.ok_or_else(|| archive_error(format!("pointer at {at} points out of the body")))
    }

    /// A `Vec<T>` at `at` of elements of `element` bytes: (position of the first, length).
    fn vec(&self, at: usize, element: usize) -> Result<(usize, usize), SnapshotError> {
        let offset = self.i32(at)?;
        let length = self.u32(at + 4)? as usize;
        let start = self.target(at, offset)?;
        let bytes = length
            .checked_mul(element)
            .ok_or_else(|| archive_error(format!("vector at {at} is too long")))?;
        self.slice(start, bytes)?;
        Ok((start, length))
    }

    fn bytes_vec(&self, at: usize) -> Result<&'a [u8], SnapshotError> {
        let (start, length) = self.vec(at, 1)?;
        self.slice(start, length)
    }

    fn string(&self, at: usize) -> Result<String, SnapshotError> {
        let repr = self.slice(at, STRING_BYTES)?;
        let first = repr.first().copied().unwrap_or(0);
        let bytes = if first & 0xc0 != 0x80 {
            let length = repr
                .iter()
                .position(|byte| *byte == 0xff)
                .unwrap_or(STRING_BYTES);
            self.slice(at, length)?
        } else {
            let raw = self.u32(at)?;
            let length = ((raw & 0x3f) | ((raw & !0xff) >> 2)) as usize;
            let start = self.target(at, self.i32(at + 4)?)?;
            self.slice(start, length)?
        };
        String::from_utf8(bytes.to_vec())
            .map_err(|_| archive_error(format!("string at {at} is not UTF-8")))
    }
}

/// Decodes and checks the header of a version 2 file (magic, checksum, version, length).
pub fn decode_header(file: &[u8]) -> Result<Header2, SnapshotError> {
    let header = Reader {
        bytes: file
            .get(..HEADER_BYTES)
            .ok_or(SnapshotError::TooShort { length: file.len() })?,
    };
    if header.slice(0, 8)? != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    if crc32c::crc32c(header.slice(0, 60)?) != header.u32(60)? {
        return Err(SnapshotError::HeaderChecksum);
    }
    let version = header.u32(8)?;
    if version != FORMAT_VERSION_2 {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    let length = header.u32(12)?;
    if length != HEADER_BYTES as u32 {
        return Err(SnapshotError::HeaderLength(length));
    }
    Ok(Header2 {
        zxid: header.i64(16)?,
        node_count: header.u64(24)?,
        body_bytes: header.u64(32)?,
        body_checksum: header.u32(40)?,
    })
}

/// Decodes a whole version 2 file: its header and body, with every check but the tree
/// structure's (which [`convert`] makes).
pub fn decode(file: &[u8]) -> Result<(Header2, SnapshotBody), SnapshotError> {
    let header = decode_header(file)?;
    let body = file.get(HEADER_BYTES..).unwrap_or(&[]);
    if body.len() as u64 != header.body_bytes {
        return Err(SnapshotError::BodyLength {
            expected: header.body_bytes,
            actual: body.len() as u64,
        });
    }
    if crc32c::crc32c(body) != header.body_checksum {
        return Err(SnapshotError::BodyChecksum);
    }
    let reader = Reader { bytes: body };
    let root = body
        .len()
        .checked_sub(ROOT_BYTES)
        .ok_or_else(|| archive_error("body shorter than its root".into()))?;
    let (nodes_at, node_count) = reader.vec(root, NODE_BYTES)?;
    if node_count as u64 != header.node_count {
        return Err(SnapshotError::Structure(format!(
            "header counts {} nodes, body holds {node_count}",
            header.node_count
        )));
    }
    let mut nodes = Vec::with_capacity(node_count);
    for index in 0..node_count {
        let at = nodes_at + index * NODE_BYTES;
        nodes.push(NodeRecord {
            czxid: reader.i64(at)?,
            mzxid: reader.i64(at + 8)?,
            pzxid: reader.i64(at + 16)?,
            ctime: reader.i64(at + 24)?,
            mtime: reader.i64(at + 32)?,
            ephemeral_owner: reader.i64(at + 40)?,
            version: reader.i32(at + 48)?,
            cversion: reader.i32(at + 52)?,
            aversion: reader.i32(at + 56)?,
            acl: reader.u32(at + 60)?,
            parent: reader.u32(at + 64)?,
            first_child: reader.u32(at + 68)?,
            child_count: reader.u32(at + 72)?,
            flags: reader.u32(at + 76)?,
            name: reader.string(at + 80)?,
            data: reader.bytes_vec(at + 88)?.to_vec(),
        });
    }
    let (lists_at, list_count) = reader.vec(root + 8, VEC_BYTES)?;
    let mut acls = Vec::with_capacity(list_count);
    for list in 0..list_count {
        let (entries_at, entry_count) = reader.vec(lists_at + list * VEC_BYTES, ACL_BYTES)?;
        let mut entries = Vec::with_capacity(entry_count);
        for entry in 0..entry_count {
            let at = entries_at + entry * ACL_BYTES;
            entries.push(AclRecord {
                perms: reader.i32(at)?,
                scheme: reader.string(at + 4)?,
                id: reader.string(at + 12)?,
            });
        }
        acls.push(entries);
    }
    let (special_at, special_count) = reader.vec(root + 16, 4)?;
    let special = (0..special_count)
        .map(|index| reader.u32(special_at + index * 4))
        .collect::<Result<Vec<u32>, SnapshotError>>()?;
    let (sessions_at, session_count) = reader.vec(root + 24, SESSION_BYTES)?;
    let sessions = (0..session_count)
        .map(|index| {
            let at = sessions_at + index * SESSION_BYTES;
            Ok(SessionRecord {
                session_id: reader.i64(at)?,
                timeout_ms: reader.i32(at + 8)?,
            })
        })
        .collect::<Result<Vec<SessionRecord>, SnapshotError>>()?;
    let body = SnapshotBody {
        nodes,
        acls,
        special,
        sessions,
        data_size: reader.u64(root + 32)?,
    };
    Ok((header, body))
}

/// A version 2 file converted to a whole version 3 file of the same zxid, validated.
pub struct Converted {
    pub zxid: i64,
    pub node_count: usize,
    /// Header then body, 16-byte aligned (the format 3 archive can be read in place).
    pub file: AlignedVec<16>,
}

/// Decodes a version 2 file and encodes the same body as version 3, then validates that
/// file fully (`format::validate`: the tree structure of `check_structure` included).
pub fn convert(file: &[u8]) -> Result<Converted, SnapshotError> {
    let (header, body) = decode(file)?;
    // Format 2 carried no tree digest: the converted file has none either, and the load
    // computes it once.
    let (new_header, new_body) = format::encode(header.zxid, None, &body)?;
    drop(body);
    let mut converted = AlignedVec::<16>::with_capacity(HEADER_BYTES + new_body.len());
    converted.extend_from_slice(&new_header);
    converted.extend_from_slice(&new_body);
    drop(new_body);
    let (checked, _) = format::validate(&converted)?;
    Ok(Converted {
        zxid: checked.zxid,
        node_count: checked.node_count as usize,
        file: converted,
    })
}
