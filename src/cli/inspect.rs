//! [io] The inspection subcommands: a transaction log and a snapshot printed readably, and a
//! data directory recovered as a start would without changing it. They read the formats of
//! `txnlog::format` and `snapshot::format` through the same code the server recovers with.

use std::cell::Cell;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::jute::records::Acl;
use crate::snapshot::mmap::MappedSnapshot;
use crate::storage::{DiskStorage, Storage, StorageFile};
use crate::tree::Txn;
use crate::txnlog::format::{parse_segment_name, scan_segment, Ending, LogRecord};
use crate::zkformat::import::ZOOKEEPER_SUBDIR;
use crate::zkformat::txn::ZkTxn;

/// A progress line on stderr for long work, when stderr is a terminal (redrawn in place at
/// most every [`PROGRESS_INTERVAL`]); nothing otherwise, so pipes and files get only the
/// listing.
pub struct Progress {
    enabled: bool,
    last: Cell<Option<Instant>>,
    shown: Cell<bool>,
}

const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            last: Cell::new(None),
            shown: Cell::new(false),
        }
    }

    pub fn update(&self, what: &str, done: usize, total: usize) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .get()
            .is_some_and(|last| now.duration_since(last) < PROGRESS_INTERVAL)
        {
            return;
        }
        self.last.set(Some(now));
        self.shown.set(true);
        eprint!("\r{what}: {done}/{total}");
    }

    pub fn finish(&self) {
        if self.shown.replace(false) {
            eprintln!();
        }
    }
}

fn write_error(error: io::Error) -> String {
    format!("writing the output: {error}")
}

/// Data as text when it is printable UTF-8, else as hex (`0x…`).
fn data_text(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text)
            if text
                .chars()
                .all(|c| !c.is_control() || c == '\n' || c == '\t') =>
        {
            format!("{text:?}")
        }
        _ => {
            let mut hex = String::from("0x");
            for byte in data {
                hex.push_str(&format!("{byte:02x}"));
            }
            hex
        }
    }
}

fn acl_text(acl: &[Acl]) -> String {
    let entries: Vec<String> = acl
        .iter()
        .map(|entry| {
            format!(
                "{}:{}:{}",
                entry.id.scheme,
                entry.id.id,
                perms_text(entry.perms)
            )
        })
        .collect();
    format!("[{}]", entries.join(","))
}

/// ZooKeeper's permission letters (zkCli's getAcl: c d r w a).
fn perms_text(perms: i32) -> String {
    let mut text = String::new();
    for (bit, letter) in [(4, 'c'), (8, 'd'), (1, 'r'), (2, 'w'), (16, 'a')] {
        if perms & bit != 0 {
            text.push(letter);
        }
    }
    text
}

fn optional_data(data: &Option<Vec<u8>>, show: bool) -> String {
    data_field(data.as_deref(), show)
}

fn data_field(data: Option<&[u8]>, show: bool) -> String {
    match data {
        None => " data=null".into(),
        Some(bytes) if show => format!(" data={}", data_text(bytes)),
        Some(bytes) => format!(" dataLength={}", bytes.len()),
    }
}

/// One transaction, in the words of ZooKeeper's TxnLogToolkit (`create`, `setData`, ...).
pub fn txn_text(txn: &Txn, show_data: bool) -> String {
    match txn {
        Txn::Create {
            path,
            data,
            acl,
            ephemeral_owner,
            parent_cversion,
        } => format!(
            "create '{path}'{} acl={} ephemeralOwner={ephemeral_owner:#x} parentCVersion={parent_cversion}",
            optional_data(data, show_data),
            acl_text(acl)
        ),
        Txn::Delete { path } => format!("delete '{path}'"),
        Txn::SetData {
            path,
            data,
            version,
        } => format!(
            "setData '{path}'{} version={version}",
            optional_data(data, show_data)
        ),
        Txn::SetAcl { path, acl, version } => {
            format!("setACL '{path}' acl={} version={version}", acl_text(acl))
        }
        Txn::Check { path } => format!("check '{path}'"),
        Txn::Reconfig { data } => format!(
            "reconfig {}",
            optional_data(&Some(data.clone()), show_data)
        ),
        Txn::Error { code } => format!("error {}", code.code()),
        Txn::Multi { ops } => {
            let ops: Vec<String> = ops.iter().map(|op| txn_text(op, show_data)).collect();
            format!("multi [{}]", ops.join("; "))
        }
        Txn::CreateSession {
            session_id,
            timeout_ms,
        } => format!("createSession {session_id:#x} timeout={timeout_ms}"),
        Txn::CloseSession {
            session_id,
            ephemerals,
        } => format!("closeSession {session_id:#x} ephemerals={ephemerals:?}"),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

fn record_line(record: &LogRecord, show_data: bool) -> String {
    format!(
        "{} zxid {:#x} {}",
        crate::fourlw::java_date(record.time_ms),
        record.zxid,
        txn_text(&record.txn, show_data)
    )
}

/// The segments to dump: the file itself, or a directory's `log.<zxid>` files in zxid order:
/// ringkeeper's (`log.<16 hex>`), else Apache ZooKeeper's (`log.<hex>`, in the directory or in
/// its `version-2`).
fn segments(path: &Path) -> Result<Vec<PathBuf>, String> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let listed = |dir: &Path, parse: fn(&str) -> Option<i64>| -> Result<Vec<PathBuf>, String> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound && dir != path => {
                return Ok(Vec::new())
            }
            Err(error) => return Err(format!("{}: {error}", dir.display())),
        };
        let mut found: Vec<(i64, PathBuf)> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().to_string();
                parse(&name).map(|zxid| (zxid, entry.path()))
            })
            .collect();
        found.sort();
        Ok(found.into_iter().map(|(_, path)| path).collect())
    };
    let own = listed(path, parse_segment_name)?;
    if !own.is_empty() {
        return Ok(own);
    }
    for dir in [path.to_path_buf(), path.join(ZOOKEEPER_SUBDIR)] {
        let zookeeper = listed(&dir, crate::zkformat::log::parse_log_name)?;
        if !zookeeper.is_empty() {
            return Ok(zookeeper);
        }
    }
    Err(format!(
        "{}: no transaction log segments (log.<zxid>, or Apache ZooKeeper's in version-2)",
        path.display()
    ))
}

/// Whether `bytes` begin with `magic` (a big-endian int, as jute writes it).
fn starts_with_magic(bytes: &[u8], magic: i32) -> bool {
    bytes.get(..4) == Some(&magic.to_be_bytes()[..])
}

/// One of ZooKeeper's txns, in the words of its TxnLogToolkit.
pub fn zk_txn_text(op: i32, txn: &ZkTxn, show_data: bool) -> String {
    use crate::zkformat::opcode;
    match txn {
        ZkTxn::Create {
            op,
            path,
            data,
            acl,
            ephemeral,
            parent_cversion,
        } => format!(
            "{} '{path}'{} acl={} ephemeral={ephemeral} parentCVersion={parent_cversion}",
            if *op == opcode::CREATE2 {
                "create2"
            } else {
                "create"
            },
            optional_data(data, show_data),
            acl_text(acl)
        ),
        ZkTxn::CreateContainer {
            path,
            data,
            acl,
            parent_cversion,
        } => format!(
            "createContainer '{path}'{} acl={} parentCVersion={parent_cversion}",
            optional_data(data, show_data),
            acl_text(acl)
        ),
        ZkTxn::CreateTtl {
            path,
            data,
            acl,
            parent_cversion,
            ttl_ms,
        } => format!(
            "createTTL '{path}'{} acl={} parentCVersion={parent_cversion} ttl={ttl_ms}",
            optional_data(data, show_data),
            acl_text(acl)
        ),
        ZkTxn::Delete { path } if op == opcode::DELETE_CONTAINER => {
            format!("deleteContainer '{path}'")
        }
        ZkTxn::Delete { path } => format!("delete '{path}'"),
        ZkTxn::SetData {
            path,
            data,
            version,
        } => format!(
            "{} '{path}'{} version={version}",
            if op == opcode::RECONFIG {
                "reconfig"
            } else {
                "setData"
            },
            optional_data(data, show_data)
        ),
        ZkTxn::SetAcl { path, acl, version } => {
            format!("setACL '{path}' acl={} version={version}", acl_text(acl))
        }
        ZkTxn::Check { path, version } => format!("check '{path}' version={version}"),
        ZkTxn::Error { code } => format!("error {code}"),
        ZkTxn::Multi { ops } => {
            let ops: Vec<String> = ops
                .iter()
                .map(|sub| zk_txn_text(crate::zkformat::txn::op_of(sub), sub, show_data))
                .collect();
            format!("multi [{}]", ops.join("; "))
        }
        ZkTxn::CreateSession { timeout_ms } => format!("createSession timeout={timeout_ms}"),
        ZkTxn::CloseSession { paths: None } => "closeSession".into(),
        ZkTxn::CloseSession { paths: Some(paths) } => format!("closeSession ephemerals={paths:?}"),
    }
}

/// `dump-log` of one of Apache ZooKeeper's `log.<zxid>` files (TxnLogToolkit's listing).
fn dump_zk_log(
    segment: &Path,
    bytes: &[u8],
    show_data: bool,
    out: &mut dyn Write,
    progress: &Progress,
) -> Result<usize, String> {
    let file = crate::zkformat::log::read_log(bytes)
        .map_err(|error| format!("{}: {error}", segment.display()))?;
    writeln!(
        out,
        "Apache ZooKeeper log {}: {} txns",
        segment.display(),
        file.entries.len()
    )
    .map_err(write_error)?;
    for (index, entry) in file.entries.iter().enumerate() {
        let header = &entry.header;
        let digest = entry.digest.map_or(String::new(), |digest| {
            format!(
                " digest={:#x} (version {})",
                digest.tree_digest, digest.version
            )
        });
        writeln!(
            out,
            "{} session {:#x} cxid {:#x} zxid {:#x} {}{digest}",
            crate::fourlw::java_date(header.time_ms),
            header.client_id,
            header.cxid,
            header.zxid,
            zk_txn_text(header.op, &entry.txn, show_data)
        )
        .map_err(write_error)?;
        progress.update("txns", index + 1, file.entries.len());
    }
    match &file.partial_tail {
        None => writeln!(out, "end of log"),
        Some(tail) => writeln!(
            out,
            "end of log: {tail} (ZooKeeper's recovery stops there too)"
        ),
    }
    .map_err(write_error)?;
    Ok(file.entries.len())
}

/// `dump-log`: every record of a segment (or of every segment of a directory), one a line,
/// and how each segment ends.
pub fn dump_log(
    path: &Path,
    show_data: bool,
    out: &mut dyn Write,
    progress: &Progress,
) -> Result<(), String> {
    let mut total = 0usize;
    for segment in segments(path)? {
        let bytes =
            std::fs::read(&segment).map_err(|error| format!("{}: {error}", segment.display()))?;
        if starts_with_magic(&bytes, crate::zkformat::log::LOG_MAGIC) {
            total += dump_zk_log(&segment, &bytes, show_data, out, progress)?;
            continue;
        }
        let scan =
            scan_segment(&bytes).map_err(|error| format!("{}: {error}", segment.display()))?;
        writeln!(
            out,
            "segment {} first zxid {:#x}: {} records in {} batches",
            segment.display(),
            scan.first_zxid,
            scan.records.len(),
            scan.batches.len()
        )
        .map_err(write_error)?;
        for (index, record) in scan.records.iter().enumerate() {
            writeln!(out, "{}", record_line(record, show_data)).map_err(write_error)?;
            progress.update("records", index + 1, scan.records.len());
        }
        match &scan.ending {
            Ending::Clean => writeln!(out, "end of segment (clean)"),
            Ending::TornTail { at, reason } => writeln!(
                out,
                "end of segment: torn tail at offset {at} ({reason}); recovery cuts it here"
            ),
        }
        .map_err(write_error)?;
        total += scan.records.len();
    }
    progress.finish();
    writeln!(out, "{total} records").map_err(write_error)?;
    Ok(())
}

/// `dump-snapshot`: the header, the sessions, and every node with its Stat and ACL. A format 2
/// file is read through `snapshot::format2` (converted in memory, the file left as it is).
pub fn dump_snapshot(
    path: &Path,
    show_data: bool,
    out: &mut dyn Write,
    progress: &Progress,
) -> Result<(), String> {
    let failed = |error: crate::snapshot::SnapshotError| format!("{}: {error}", path.display());
    if let Some(bytes) = zookeeper_snapshot_bytes(path)? {
        return dump_zk_snapshot(path, &bytes, show_data, out, progress);
    }
    match MappedSnapshot::open(path) {
        Ok(snapshot) => dump_view(
            path,
            snapshot.zxid(),
            snapshot.file_bytes(),
            snapshot.view(),
            show_data,
            out,
            progress,
        ),
        Err(crate::snapshot::SnapshotError::PreviousVersion) => {
            let old =
                std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
            let converted = crate::snapshot::format2::convert(&old).map_err(failed)?;
            let (header, body) =
                crate::snapshot::format::validate(&converted.file).map_err(failed)?;
            let acls = crate::snapshot::format::decode_acls(body);
            let view = crate::snapshot::format::SnapshotView { body, acls: &acls };
            dump_view(path, header.zxid, old.len(), view, show_data, out, progress)
        }
        Err(error) => Err(failed(error)),
    }
}

/// The decompressed bytes of `path` when it is one of Apache ZooKeeper's snapshots (named
/// `snapshot.<hex>[.gz|.snappy]` and, once decompressed, starting with "ZKSN"); None for
/// anything else (ringkeeper's own snapshots among them).
fn zookeeper_snapshot_bytes(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_string())
        .unwrap_or_default();
    if crate::zkformat::log::parse_zxid_name(&name, "snapshot").is_none() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let compressed = name.ends_with(".gz") || name.ends_with(".snappy");
    if !compressed && !starts_with_magic(&bytes, crate::zkformat::snapshot::SNAPSHOT_MAGIC) {
        return Ok(None);
    }
    let bytes = crate::zkformat::snapshot::decompress(&name, &bytes)
        .map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(Some(bytes))
}

/// One node of a snapshot listing: its path, then its Stat, data and ACL on an indented line
/// (the same for ringkeeper's snapshots and ZooKeeper's).
fn node_line(
    path: &str,
    stat: &crate::tree::NodeStat,
    children: usize,
    data: Option<&[u8]>,
    show_data: bool,
    acl: &[Acl],
) -> String {
    format!(
        "{path}\n  cZxid={:#x} mZxid={:#x} pZxid={:#x} ctime={} mtime={} version={} \
         cversion={} aversion={} ephemeralOwner={:#x} numChildren={children}{} acl={}",
        stat.czxid,
        stat.mzxid,
        stat.pzxid,
        stat.ctime,
        stat.mtime,
        stat.version,
        stat.cversion,
        stat.aversion,
        stat.ephemeral_owner,
        data_field(data, show_data),
        acl_text(acl)
    )
}

/// `dump-snapshot` of one of Apache ZooKeeper's snapshots (SnapshotFormatter's listing: the
/// nodes with their Stat, ACL and data length, the sessions, the digest trailers).
fn dump_zk_snapshot(
    path: &Path,
    bytes: &[u8],
    show_data: bool,
    out: &mut dyn Write,
    progress: &Progress,
) -> Result<(), String> {
    let snapshot = crate::zkformat::snapshot::read_snapshot(bytes)
        .map_err(|error| format!("{}: {error}", path.display()))?;
    let tree = &snapshot.tree;
    writeln!(
        out,
        "Apache ZooKeeper snapshot {}: {} nodes, {} sessions, {} bytes decompressed (checksums verified)",
        path.display(),
        tree.len(),
        tree.sessions.len(),
        bytes.len()
    )
    .map_err(write_error)?;
    match snapshot.digest {
        Some(digest) => {
            let computed = if digest.version == crate::tree::digest::DIGEST_VERSION {
                if tree.digest() == digest.digest {
                    ", equal to the nodes' digest"
                } else {
                    ", the nodes' digest differs (a fuzzy snapshot: the log after it settles it)"
                }
            } else {
                ""
            };
            writeln!(
                out,
                "digest {:#x} at zxid {:#x} (version {}){computed}",
                digest.digest, digest.zxid, digest.version
            )
        }
        None => writeln!(out, "no digest"),
    }
    .map_err(write_error)?;
    if let Some(zxid) = snapshot.last_processed_zxid {
        writeln!(out, "lastProcessedZxid {zxid:#x}").map_err(write_error)?;
    }
    for (session, timeout_ms) in &tree.sessions {
        writeln!(out, "session {session:#x} timeout {timeout_ms} ms").map_err(write_error)?;
    }
    let paths = tree.paths_preorder();
    for (index, node_path) in paths.iter().enumerate() {
        let Some(node) = tree.get(node_path) else {
            continue;
        };
        let line = node_line(
            node_path,
            &node.stat,
            node.children.len(),
            node.data.as_deref(),
            show_data,
            &node.acl,
        );
        writeln!(out, "{line}").map_err(write_error)?;
        progress.update("nodes", index + 1, paths.len());
    }
    progress.finish();
    Ok(())
}

fn dump_view(
    path: &Path,
    zxid: i64,
    file_bytes: usize,
    snapshot: crate::snapshot::format::SnapshotView<'_>,
    show_data: bool,
    out: &mut dyn Write,
    progress: &Progress,
) -> Result<(), String> {
    let sessions = snapshot.sessions();
    writeln!(
        out,
        "snapshot {}: zxid {:#x}, {} nodes, {} sessions, {} bytes (checksum verified)",
        path.display(),
        zxid,
        snapshot.node_count(),
        sessions.len(),
        file_bytes
    )
    .map_err(write_error)?;
    for session in &sessions {
        writeln!(
            out,
            "session {:#x} timeout {} ms",
            session.session_id, session.timeout_ms
        )
        .map_err(write_error)?;
    }
    let count = snapshot.node_count();
    for (index, (node_path, node)) in snapshot.iter().enumerate() {
        let line = node_line(
            &node_path,
            &node.stat,
            node.child_count,
            node.data.as_deref(),
            show_data,
            &node.acl,
        );
        writeln!(out, "{line}").map_err(write_error)?;
        progress.update("nodes", index + 1, count);
    }
    progress.finish();
    Ok(())
}

/// The real filesystem for reading; every change recovery would make (cutting a torn tail,
/// removing an empty segment) is accepted and not done, so `check` leaves the directory as it
/// was. Recovery reports each such repair, which `check` prints.
pub(crate) struct DryRunStorage;

struct DryRunFile {
    length: u64,
}

impl StorageFile for DryRunFile {
    fn write_at(&mut self, _offset: u64, _bytes: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.length)
    }
}

impl Storage for DryRunStorage {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        DiskStorage.list(dir)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        DiskStorage.read(path)
    }

    fn read_at(&self, path: &Path, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        DiskStorage.read_at(path, offset, length)
    }

    fn create(&self, _path: &Path, preallocate_bytes: u64) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(DryRunFile {
            length: preallocate_bytes,
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let length = std::fs::metadata(path)?.len();
        Ok(Box::new(DryRunFile { length }))
    }

    fn rename(&self, _from: &Path, _to: &Path) -> io::Result<()> {
        Ok(())
    }

    fn remove(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn is_dry_run(&self) -> bool {
        true
    }
}

/// `check`: recovers `data_dir` / `log_dir` as a start would (newest valid snapshot, the log
/// after it replayed, torn tails cut) without writing anything, and reports the outcome.
/// Ok(false) when a start would refuse the directory.
pub fn check(
    data_dir: &Path,
    log_dir: &Path,
    out: &mut dyn Write,
    progress: &Progress,
) -> Result<bool, String> {
    for dir in [data_dir, log_dir] {
        if !dir.is_dir() {
            return Err(format!("{}: not a directory", dir.display()));
        }
    }
    let own_state = crate::zkformat::import::has_own_state(data_dir, log_dir)
        .map_err(|error| format!("{}: {error}", data_dir.display()))?;
    if !own_state && crate::zkformat::import::has_zookeeper_files(data_dir, log_dir)? {
        return check_zookeeper(data_dir, log_dir, out, progress);
    }
    progress.update("recovering", 0, 1);
    let started = Instant::now();
    let loaded = crate::txnlog::load::load_state(&DryRunStorage, data_dir, log_dir, 4 << 20, None);
    progress.finish();
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(reason) => {
            writeln!(out, "FAILED: a start would refuse this directory: {reason}")
                .map_err(write_error)?;
            return Ok(false);
        }
    };
    let snapshot = if loaded.snapshot_zxid > 0 {
        format!("snapshot at zxid {:#x}", loaded.snapshot_zxid)
    } else {
        "no snapshot".into()
    };
    writeln!(
        out,
        "dataDir {} dataLogDir {}\n{snapshot}, {} transactions after it, recovered zxid {:#x}\n\
         {} nodes, {} sessions open, recovered in {} ms",
        data_dir.display(),
        log_dir.display(),
        loaded.records.len(),
        loaded.tree.zxid,
        loaded.tree.node_count() + 1,
        loaded.sessions.len(),
        started.elapsed().as_millis()
    )
    .map_err(write_error)?;
    if loaded.repairs.is_empty() {
        writeln!(out, "OK: nothing to repair").map_err(write_error)?;
    } else {
        for repair in &loaded.repairs {
            writeln!(out, "a start would repair: {repair}").map_err(write_error)?;
        }
        writeln!(out, "OK: a start would recover after the repairs above").map_err(write_error)?;
    }
    Ok(true)
}

/// `check` of a directory that holds only Apache ZooKeeper's files: the import a start would
/// make (newest valid snapshot, the log after it replayed, digests compared), read only.
fn check_zookeeper(
    data_dir: &Path,
    log_dir: &Path,
    out: &mut dyn Write,
    progress: &Progress,
) -> Result<bool, String> {
    progress.update("reading Apache ZooKeeper's files", 0, 1);
    let started = Instant::now();
    let loaded = crate::zkformat::import::load_zookeeper(data_dir, log_dir);
    progress.finish();
    let state = match loaded {
        Ok(state) => state,
        Err(reason) => {
            writeln!(
                out,
                "FAILED: a start would refuse to import Apache ZooKeeper's files: {reason}"
            )
            .map_err(write_error)?;
            return Ok(false);
        }
    };
    let snapshot = match &state.snapshot {
        Some((path, zxid)) => format!("snapshot {} (zxid {zxid:#x})", path.display()),
        None => "no snapshot".into(),
    };
    let epoch = |epoch: Option<i64>| epoch.map_or("none".to_string(), |epoch| epoch.to_string());
    writeln!(
        out,
        "dataDir {} dataLogDir {}: no ringkeeper state, Apache ZooKeeper's files in {ZOOKEEPER_SUBDIR}\n\
         a start would import: {snapshot}, {} txns replayed from {} log files, zxid {:#x}\n\
         {} nodes, {} sessions, {} digests checked, currentEpoch {} acceptedEpoch {}, read in {} ms",
        data_dir.display(),
        log_dir.display(),
        state.txns_replayed,
        state.logs_read.len(),
        state.tree.last_zxid,
        state.tree.len(),
        state.tree.sessions.len(),
        state.digests_checked,
        epoch(state.current_epoch),
        epoch(state.accepted_epoch),
        started.elapsed().as_millis()
    )
    .map_err(write_error)?;
    for note in &state.notes {
        writeln!(out, "note: {note}").map_err(write_error)?;
    }
    writeln!(
        out,
        "OK: a start would import this state (ZooKeeper's files stay untouched)"
    )
    .map_err(write_error)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_text_when_printable_else_hex() {
        assert_eq!(data_text(b"hello"), "\"hello\"");
        assert_eq!(data_text(&[0, 255]), "0x00ff");
        assert_eq!(perms_text(31), "cdrwa");
        assert_eq!(perms_text(1), "r");
    }
}
