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

/// The segments to dump: the file itself, or a directory's `log.<zxid>` files in zxid order.
fn segments(path: &Path) -> Result<Vec<PathBuf>, String> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries =
        std::fs::read_dir(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let mut found: Vec<(i64, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            parse_segment_name(&name).map(|zxid| (zxid, entry.path()))
        })
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(format!(
            "{}: no transaction log segments (log.<zxid>)",
            path.display()
        ));
    }
    Ok(found.into_iter().map(|(_, path)| path).collect())
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
        let stat = &node.stat;
        let data = match &node.data {
            None => "data=null".to_string(),
            Some(bytes) if show_data => format!("data={}", data_text(bytes)),
            Some(bytes) => format!("dataLength={}", bytes.len()),
        };
        writeln!(
            out,
            "{node_path}\n  cZxid={:#x} mZxid={:#x} pZxid={:#x} ctime={} mtime={} version={} \
             cversion={} aversion={} ephemeralOwner={:#x} numChildren={} {data} acl={}",
            stat.czxid,
            stat.mzxid,
            stat.pzxid,
            stat.ctime,
            stat.mtime,
            stat.version,
            stat.cversion,
            stat.aversion,
            stat.ephemeral_owner,
            node.child_count,
            acl_text(&node.acl)
        )
        .map_err(write_error)?;
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
