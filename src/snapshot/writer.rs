//! [io] Writes snapshots durably and keeps the newest few.
//!
//! A snapshot is written from one immutable `TreeVersion`, so it is a consistent point in time
//! (never fuzzy, unlike ZooKeeper's) and can be written on a background thread while the
//! pipeline goes on applying transactions. One writer at a time per directory is the caller's
//! contract (the temporary name is derived from the zxid).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::encode::{stream_snapshot, StreamError};
use super::format::{
    self, parse_snapshot_name, snapshot_name, SessionRecord, SnapshotError, HEADER_BYTES,
};
use crate::tree::TreeVersion;

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The bytes of a snapshot of `tree` (base and delta merged) and `sessions` (the sessions
/// live at `tree.zxid`): header then body, exactly what [`write_snapshot`] writes to the file.
/// This is also the payload a ZAB leader sends a learner in SNAP.
pub fn encode_snapshot(
    tree: &TreeVersion,
    sessions: &[SessionRecord],
) -> Result<Vec<u8>, SnapshotError> {
    let mut file = Vec::new();
    let header = stream_snapshot(tree, sessions, &mut file).map_err(|error| match error {
        StreamError::Io(source) => SnapshotError::Archive(source.to_string()),
        StreamError::Snapshot(error) => error,
    })?;
    file[..HEADER_BYTES].copy_from_slice(&header.encode());
    Ok(file)
}

/// Writes `snapshot.<zxid>` of `tree` (base and delta merged) and `sessions` (the sessions
/// live at `tree.zxid`) into `dir`: temp file, fsync, rename, directory fsync. Returns the
/// path once the snapshot is durable. On error nothing but a removed temp file is left.
///
/// The body is streamed to the file as the tree is walked (`encode`): the memory it needs is
/// about 100 bytes per node, whatever the data.
pub fn write_snapshot(
    dir: &Path,
    tree: &TreeVersion,
    sessions: &[SessionRecord],
) -> Result<PathBuf, SnapshotError> {
    write_durably(dir, tree.zxid, |file, temp_path| {
        let (header, sync_failed) = with_early_writeback(file, |writeback| {
            let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, writeback);
            let header =
                stream_snapshot(tree, sessions, &mut out).map_err(|error| match error {
                    StreamError::Io(source) => io_error(temp_path)(source),
                    StreamError::Snapshot(error) => error,
                })?;
            out.into_inner()
                .map_err(|error| io_error(temp_path)(error.into_error()))?;
            Ok::<_, SnapshotError>(header)
        });
        let header = header?;
        if let Some(error) = sync_failed {
            return Err(io_error(temp_path)(error));
        }
        file.write_all_at(&header.encode(), 0)
            .map_err(io_error(temp_path))
    })
}

/// Bytes buffered between the snapshot encoder and the file.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// How often the file's written bytes are handed to the device while the encoder goes on
/// ([`EarlyWriteback`]).
const WRITEBACK_BYTES: u64 = 32 << 20;

/// Passes writes to the file and, every [`WRITEBACK_BYTES`], wakes a thread of its own that
/// calls fdatasync on the file, so that the device writes while the encoder walks the tree
/// instead of the whole file waiting for the final fsync, and the snapshot's dirty pages stay
/// within a few ranges rather than the whole file (which would put the log writer's fsyncs
/// behind them). The wake-up never blocks the encoder: one pending is enough. The final
/// `sync_all` still makes the file durable; this is only about when the bytes go.
struct EarlyWriteback<'a> {
    file: &'a File,
    written: u64,
    /// Bytes written when the syncer was last woken.
    woken_at: u64,
    wake: crossbeam_channel::Sender<()>,
}

impl Write for EarlyWriteback<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = (&mut &*self.file).write(bytes)?;
        self.written += written as u64;
        if self.written - self.woken_at >= WRITEBACK_BYTES {
            self.woken_at = self.written;
            // Full: a sync is already pending, which will cover these bytes too.
            let _ = self.wake.try_send(());
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `fill` with an [`EarlyWriteback`] over `file` and its syncing thread, which ends with
/// it. Returns what `fill` returned and the first error of an early sync, if one failed: that
/// error must fail the snapshot, since Linux reports a writeback error to one fsync only and
/// the final `sync_all` could then succeed over lost pages.
fn with_early_writeback<T>(
    file: &File,
    fill: impl FnOnce(EarlyWriteback<'_>) -> T,
) -> (T, Option<std::io::Error>) {
    let (wake, woken) = crossbeam_channel::bounded::<()>(1);
    std::thread::scope(|scope| {
        let syncer = scope.spawn(move || {
            while woken.recv().is_ok() {
                if let Err(error) = file.sync_data() {
                    return Some(error);
                }
            }
            None
        });
        let filled = fill(EarlyWriteback {
            file,
            written: 0,
            woken_at: 0,
            wake,
        });
        // `fill` dropped the sender, so the syncer has ended or is ending.
        let failed = syncer
            .join()
            .unwrap_or_else(|_| Some(std::io::Error::other("the snapshot's sync thread panicked")));
        (filled, failed)
    })
}

/// Installs a snapshot received from a leader (ZAB's SNAP): validates `bytes` fully, as
/// [`super::MappedSnapshot::open`] does (header and its checksum, length, body checksum,
/// rkyv validation, tree structure), then writes them as `snapshot.<zxid>` in `dir` (temp
/// file, fsync, rename, directory fsync) and returns the path, ready for `MappedSnapshot::open`.
///
/// Snapshots in `dir` newer than the installed one are removed first (durably): they hold a
/// history the leader has replaced, and recovery maps the newest snapshot. Invalid bytes are
/// refused before anything in `dir` changes. The caller resets the log
/// (`WriterInput::Reset`) *before* installing, so that no crash leaves the new snapshot
/// followed by records of the replaced history.
pub fn install_snapshot(dir: &Path, bytes: &[u8]) -> Result<PathBuf, SnapshotError> {
    // Validation reads the archive in place, which needs the 8-byte alignment a mapping has.
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    let (header, _) = format::validate(&aligned)?;
    drop(aligned);
    remove_snapshots_above(dir, header.zxid)?;
    write_durably(dir, header.zxid, |mut file, temp_path| {
        file.write_all(bytes).map_err(io_error(temp_path))
    })
}

/// The suffix a version 2 snapshot is kept under once converted: its name no longer parses
/// as a snapshot (`list_snapshots` ignores it), so recovery does not pick it again.
pub const FORMAT_2_ASIDE_SUFFIX: &str = ".format2";

/// Replaces the version 2 snapshot `path` in `dir` by `converted` (a whole, validated
/// version 3 file of the same zxid), keeping the original: it is hard-linked to
/// `<name>.format2` first (its bytes untouched), then the new file is written as
/// [`write_snapshot`] writes one (temp file, fsync, rename over the old name, directory
/// fsync). A crash at any point leaves one of the two formats under the snapshot's name.
/// Returns (new path, where the original is kept).
pub fn replace_converted(
    dir: &Path,
    path: &Path,
    zxid: i64,
    converted: &[u8],
) -> Result<(PathBuf, PathBuf), SnapshotError> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(FORMAT_2_ASIDE_SUFFIX);
    let aside = PathBuf::from(aside);
    // An aside copy from an interrupted earlier conversion is the same file: keep it.
    if !aside.exists() {
        fs::hard_link(path, &aside).map_err(io_error(&aside))?;
        sync_dir(dir)?;
    }
    let written = write_durably(dir, zxid, |mut file, temp_path| {
        file.write_all(converted).map_err(io_error(temp_path))
    })?;
    Ok((written, aside))
}

/// The temporary file a snapshot streamed by a leader is received into (not a snapshot name:
/// `list_snapshots` ignores it, and a crash leaves only this file, overwritten next time).
pub const RECEIVING_NAME: &str = "snapshot.receiving.tmp";

/// A snapshot being received from a leader in chunks (ZAB's SNAP as a stream, see
/// `pipeline/driver/ensemble/leader.rs`): the file is written as the chunks come, so the
/// learner's memory holds one chunk whatever the snapshot's size. The stream is the file with
/// its header zeroed; [`SnapshotReception::finish`] writes the real header (which carries the
/// body's length and checksum), then validates and installs the file as
/// [`install_snapshot`] does with bytes in memory.
pub struct SnapshotReception {
    dir: PathBuf,
    /// The ZAB link and zxid of the snapshot being received.
    conn: u64,
    zxid: i64,
    file: File,
    /// Bytes written so far (the next chunk's offset).
    received: u64,
}

/// What [`SnapshotReception::chunk`] did with a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Written; the file now holds this many bytes.
    Written(u64),
    /// From an older link than the reception in progress: ignored.
    Stale,
}

impl SnapshotReception {
    /// Takes one chunk. `current` is the reception in progress, if any: a chunk at offset 0
    /// on a link at least as new starts a new file; any other chunk must continue `current`
    /// exactly (same link and zxid, at the offset reached), else the stream lost something.
    pub fn chunk(
        current: &mut Option<SnapshotReception>,
        dir: &Path,
        conn: u64,
        zxid: i64,
        offset: u64,
        bytes: &[u8],
    ) -> Result<ChunkOutcome, SnapshotError> {
        let newer = current
            .as_ref()
            .is_none_or(|reception| conn >= reception.conn);
        if offset == 0 && newer {
            *current = None;
            let path = dir.join(RECEIVING_NAME);
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(io_error(&path))?;
            *current = Some(SnapshotReception {
                dir: dir.to_path_buf(),
                conn,
                zxid,
                file,
                received: 0,
            });
        }
        let Some(reception) = current.as_mut() else {
            return Ok(ChunkOutcome::Stale);
        };
        if conn < reception.conn {
            return Ok(ChunkOutcome::Stale);
        }
        if conn != reception.conn || zxid != reception.zxid || offset != reception.received {
            let expected = (reception.conn, reception.zxid, reception.received);
            *current = None;
            return Err(SnapshotError::Structure(format!(
                "snapshot chunk of link {conn} at zxid {zxid:#x} offset {offset} does not continue the stream (link {}, zxid {:#x}, {} bytes received)",
                expected.0, expected.1, expected.2
            )));
        }
        let path = reception.dir.join(RECEIVING_NAME);
        let end = reception.received + bytes.len() as u64;
        if end > HEADER_BYTES as u64 + format::BODY_BYTES_MAX {
            *current = None;
            return Err(SnapshotError::BodyTooLarge(end));
        }
        reception.file.write_all(bytes).map_err(io_error(&path))?;
        reception.received = end;
        Ok(ChunkOutcome::Written(end))
    }

    /// Ends the stream whose header is `header` (the ZAB `Snap` payload): writes it over the
    /// zeroed one, makes the file durable, maps and validates it fully (header, length, body
    /// checksum, rkyv validation, tree structure), removes the snapshots above its zxid and
    /// renames it into place. Returns the mapped snapshot, ready to be the tree's base.
    pub fn finish(self, header: &[u8]) -> Result<super::MappedSnapshot, SnapshotError> {
        let decoded = format::Header::decode(header)?;
        let temp_path = self.dir.join(RECEIVING_NAME);
        if decoded.zxid != self.zxid {
            return Err(SnapshotError::Structure(format!(
                "the snapshot header names zxid {:#x}, the stream was for {:#x}",
                decoded.zxid, self.zxid
            )));
        }
        if self.received != HEADER_BYTES as u64 + decoded.body_bytes {
            return Err(SnapshotError::BodyLength {
                expected: decoded.body_bytes,
                actual: self.received.saturating_sub(HEADER_BYTES as u64),
            });
        }
        self.file
            .write_all_at(&header[..HEADER_BYTES], 0)
            .map_err(io_error(&temp_path))?;
        self.file.sync_all().map_err(io_error(&temp_path))?;
        drop(self.file);
        // Mapped (not read into memory) and validated before anything in `dir` changes.
        let snapshot = super::MappedSnapshot::open(&temp_path)?;
        remove_snapshots_above(&self.dir, decoded.zxid)?;
        let final_path = self.dir.join(snapshot_name(decoded.zxid));
        // After this rename the file is never opened for writing again (MappedSnapshot's
        // safety); the mapping made above stays valid, it is the same inode.
        fs::rename(&temp_path, &final_path).map_err(io_error(&final_path))?;
        sync_dir(&self.dir)?;
        Ok(snapshot.renamed(final_path))
    }
}

/// Removes, durably, every snapshot in `dir` whose zxid is above `zxid`, and returns how many
/// there were. ZAB's TRUNC to `zxid` must be followed by this (ZooKeeper's
/// `FileTxnSnapLog.truncateLog` drops such snapshots too): they contain transactions the
/// leader discarded, and recovery maps the newest snapshot. A mapped snapshot is unaffected
/// (unlinking keeps its inode).
pub fn remove_snapshots_above(dir: &Path, zxid: i64) -> Result<usize, SnapshotError> {
    let mut removed = 0;
    for (snapshot_zxid, path) in list_snapshots(dir)? {
        if snapshot_zxid > zxid {
            fs::remove_file(&path).map_err(io_error(&path))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(io_error(dir))
}

/// Writes `dir/snapshot.<zxid>` with `fill` (given the new, empty temp file): temp file,
/// fsync, rename, directory fsync.
fn write_durably(
    dir: &Path,
    zxid: i64,
    fill: impl FnOnce(&File, &Path) -> Result<(), SnapshotError>,
) -> Result<PathBuf, SnapshotError> {
    let name = snapshot_name(zxid);
    let final_path = dir.join(&name);
    let temp_path = dir.join(format!("{name}.tmp"));
    let written = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp_path)
            .map_err(io_error(&temp_path))?;
        fill(&file, &temp_path)?;
        file.sync_all().map_err(io_error(&temp_path))?;
        drop(file);
        // After this rename the file is never opened for writing again: MappedSnapshot's
        // safety rests on it.
        fs::rename(&temp_path, &final_path).map_err(io_error(&final_path))
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&temp_path);
        return Err(error);
    }
    sync_dir(dir)?;
    Ok(final_path)
}

/// The snapshots in `dir` as (zxid, path), oldest first. Temporary files are ignored; a
/// missing directory holds none.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(i64, PathBuf)>, SnapshotError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io_error(dir)(error)),
    };
    let mut snapshots = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        if let Some(zxid) = entry.file_name().to_str().and_then(parse_snapshot_name) {
            snapshots.push((zxid, entry.path()));
        }
    }
    snapshots.sort();
    Ok(snapshots)
}

/// Removes all but the newest `keep` snapshots (at least one is always kept: recovery needs a
/// starting point) and returns the oldest retained zxid, or None when there is no snapshot.
/// The log before that zxid is needed by no retained snapshot. Removal does not disturb a
/// snapshot that is still mapped (unlinking keeps the inode until it is unmapped).
pub fn retain(dir: &Path, keep: usize) -> Result<Option<i64>, SnapshotError> {
    let snapshots = list_snapshots(dir)?;
    let keep = keep.max(1);
    let remove = snapshots.len().saturating_sub(keep);
    for (_, path) in &snapshots[..remove] {
        fs::remove_file(path).map_err(io_error(path))?;
    }
    if remove > 0 {
        sync_dir(dir)?;
    }
    Ok(snapshots.get(remove).map(|(zxid, _)| *zxid))
}
