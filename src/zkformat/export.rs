//! [io] Export back: writes ringkeeper's state (of a stopped server's dataDir and dataLogDir,
//! recovered as a start would, without changing them) as an Apache ZooKeeper data directory:
//! `<out>/version-2/snapshot.<zxid hex>` (see [`super::snapshot`], with the tree digest
//! trailer) and `<out>/version-2/currentEpoch` / `acceptedEpoch` (QuorumPeer's decimal text
//! files). ZooKeeper 3.5 to 3.9 starts from such a directory as from its own: a migration that
//! can be rolled back.
//!
//! Sessions come along with their timeouts; a session created on ringkeeper carries
//! ringkeeper's password, which ZooKeeper does not derive, so its client cannot resume it
//! there and it expires after its timeout, deleting its ephemerals, on ZooKeeper.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::tree::TreeVersion;

use super::model::ZkNode;
use super::snapshot::{snapshot_file_name, write_snapshot};
use crate::tree::digest::node_digest;

/// What [`export`] wrote.
#[derive(Debug)]
pub struct Exported {
    pub snapshot: PathBuf,
    pub zxid: i64,
    pub node_count: usize,
    pub session_count: usize,
    pub epoch: i64,
}

/// ZooKeeper's nodes of a ringkeeper tree, parents first, with the tree digest.
pub fn zookeeper_nodes(tree: &TreeVersion) -> (Vec<(String, ZkNode)>, i64) {
    let mut out = Vec::with_capacity(tree.node_count() + 1);
    let mut digest: u64 = 0;
    visit_nodes(tree, |path, node| {
        let data = node.data.as_ref().map(|data| data.to_vec());
        digest = digest.wrapping_add(node_digest(path, data.as_deref(), &node.stat));
        out.push((
            path.to_string(),
            ZkNode {
                data,
                acl: node.acl.as_ref().clone(),
                stat: node.stat,
                children: Default::default(),
            },
        ));
    });
    (out, digest as i64)
}

/// Visits the nodes of `tree` parents first (children in name order), as DataTree
/// serializes them; the root is "/".
fn visit_nodes(tree: &TreeVersion, mut visit: impl FnMut(&str, &crate::tree::Node)) {
    let mut stack = vec!["/".to_string()];
    while let Some(path) = stack.pop() {
        let Some(node) = tree.get(&path) else {
            continue;
        };
        let mut children = tree.children(&path).unwrap_or_default();
        children.sort();
        for child in children.iter().rev() {
            stack.push(if path == "/" {
                format!("/{child}")
            } else {
                format!("{path}/{child}")
            });
        }
        visit(&path, &node);
    }
}

/// Writes the snapshot a ZooKeeper leader streams to a learner after SNAP
/// (`ZKDatabase.serializeSnapshot`, then the "BenWasHere" signature: see
/// `quorum::zookeeper::snapstream`) of `tree` with `sessions`, into `out` as it goes: two
/// walks of the tree (the ACL cache comes before the nodes), so what it holds is the ACL
/// cache and one node's bytes, whatever the tree's size. Returns the bytes written.
pub fn stream_learner_snapshot<W: std::io::Write>(
    tree: &TreeVersion,
    sessions: &[(i64, i32)],
    out: &mut W,
) -> std::io::Result<u64> {
    use crate::jute::codec::{Record, Writer};
    use std::collections::HashMap;
    let mut written = 0u64;
    let mut flush = |writer: &mut Writer, out: &mut W| -> std::io::Result<()> {
        let bytes = std::mem::replace(writer, Writer::new()).into_bytes();
        written += bytes.len() as u64;
        out.write_all(&bytes)
    };
    let mut writer = Writer::new();
    let mut sessions = sessions.to_vec();
    sessions.sort_unstable();
    writer.write_i32(sessions.len() as i32);
    for (id, timeout) in &sessions {
        writer.write_i64(*id);
        writer.write_i32(*timeout);
    }
    flush(&mut writer, out)?;
    // The ACL cache: one index per distinct ACL, in order of first use (ReferenceCountedACLCache
    // numbers from 1), keyed by the ACL's jute encoding.
    let acl_key = |acl: &[crate::jute::records::Acl]| {
        let mut key = Writer::new();
        key.write_vec(acl, |writer, entry| entry.encode(writer));
        key.into_bytes()
    };
    let mut indexes: HashMap<Vec<u8>, i64> = HashMap::new();
    let mut ordered: Vec<Vec<u8>> = Vec::new();
    visit_nodes(tree, |_, node| {
        let key = acl_key(&node.acl);
        if let std::collections::hash_map::Entry::Vacant(entry) = indexes.entry(key) {
            ordered.push(entry.key().clone());
            entry.insert(ordered.len() as i64);
        }
    });
    writer.write_i32(ordered.len() as i32);
    for (position, key) in ordered.iter().enumerate() {
        writer.write_i64(position as i64 + 1);
        writer.write_bytes(key);
    }
    flush(&mut writer, out)?;
    let mut failed = None;
    visit_nodes(tree, |path, node| {
        if failed.is_some() {
            return;
        }
        writer.write_string(if path == "/" { "" } else { path });
        writer.write_optional_buffer(node.data.as_deref());
        writer.write_i64(indexes.get(&acl_key(&node.acl)).copied().unwrap_or(-1));
        let stat = &node.stat;
        writer.write_i64(stat.czxid);
        writer.write_i64(stat.mzxid);
        writer.write_i64(stat.ctime);
        writer.write_i64(stat.mtime);
        writer.write_i32(stat.version);
        writer.write_i32(stat.cversion);
        writer.write_i32(stat.aversion);
        writer.write_i64(stat.ephemeral_owner);
        writer.write_i64(stat.pzxid);
        if writer.len() >= 64 * 1024 {
            if let Err(error) = flush(&mut writer, out) {
                failed = Some(error);
            }
        }
    });
    if let Some(error) = failed {
        return Err(error);
    }
    writer.write_string("/");
    writer.write_string(crate::quorum::zookeeper::snapstream::SIGNATURE);
    flush(&mut writer, out)?;
    Ok(written)
}

/// Exports the state recovered from `data_dir` / `log_dir` into `out_dir/version-2`, which
/// must not hold a ZooKeeper snapshot or log already (nothing is overwritten).
pub fn export(data_dir: &Path, log_dir: &Path, out_dir: &Path) -> Result<Exported, String> {
    let loaded = crate::txnlog::load::load_state(
        &crate::cli::inspect::DryRunStorage,
        data_dir,
        log_dir,
        4 << 20,
        None,
    )?;
    let target = out_dir.join(super::import::ZOOKEEPER_SUBDIR);
    fs::create_dir_all(&target)
        .map_err(|error| format!("creating {}: {error}", target.display()))?;
    let existing = fs::read_dir(&target)
        .map_err(|error| format!("listing {}: {error}", target.display()))?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
        .find(|name| name.starts_with("snapshot.") || name.starts_with("log."));
    if let Some(name) = existing {
        return Err(format!(
            "{} already holds ZooKeeper's {name}: export into an empty directory",
            target.display()
        ));
    }
    let zxid = loaded.tree.zxid;
    let (nodes, digest) = zookeeper_nodes(&loaded.tree);
    let sessions: BTreeMap<i64, i32> = loaded.sessions.clone();
    let bytes = write_snapshot(&nodes, &sessions, zxid, digest);
    // A quorum member's epochs, when it has them; never below the epoch of the last zxid
    // (QuorumPeer.loadDataBase refuses a currentEpoch older than the last zxid's).
    let epochs = crate::quorum::epochs::load(&crate::storage::DiskStorage, data_dir)
        .map_err(|error| error.to_string())?;
    let zxid_epoch = zxid >> 32;
    let current = i64::from(epochs.current_epoch).max(zxid_epoch);
    let accepted = i64::from(epochs.accepted_epoch).max(current);
    let snapshot = target.join(snapshot_file_name(zxid));
    write_file(&target, &snapshot_file_name(zxid), &bytes)?;
    write_file(&target, "currentEpoch", current.to_string().as_bytes())?;
    write_file(&target, "acceptedEpoch", accepted.to_string().as_bytes())?;
    Ok(Exported {
        snapshot,
        zxid,
        node_count: nodes.len(),
        session_count: sessions.len(),
        epoch: current,
    })
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let temporary = dir.join(format!("{name}.tmp"));
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, dir.join(name))?;
        fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|error| format!("writing {}: {error}", dir.join(name).display()))
}
