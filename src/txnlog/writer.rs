//! [io] The log writer: one thread that owns the log device. Group commit (ZooKeeper's
//! SyncRequestProcessor, STYLE habit 8): it takes every batch of records that has arrived,
//! up to a byte and a count bound, writes them as one block-aligned batch with one write,
//! syncs once, and reports "durable up to zxid Z". A failed write or sync poisons the log: the
//! writer reports the failure and stops; it never retries a sync, whose failure may already
//! have dropped the dirty pages (STYLE habit 7).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use tracing::{info, warn};

use crate::storage::{Storage, StorageFile};

use super::format::{
    encode_batch, encode_segment_header, parse_segment_name, segment_name, Ending, LogRecord,
    BLOCK_BYTES,
};

/// Settings of the writer (zoo.cfg: preAllocSize, forceSync, fsync.warningthresholdms).
#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub dir: PathBuf,
    /// Size of each segment, preallocated when created.
    pub segment_bytes: u64,
    /// Bounds of one group-commit batch.
    pub batch_bytes_max: usize,
    pub batch_records_max: usize,
    /// `forceSync=no` skips fdatasync (ZooKeeper's zookeeper.forceSync): nothing is durable.
    pub force_sync: bool,
    pub fsync_warning: Duration,
    /// Prepare the next segment on a background thread (the server does; deterministic
    /// tests over the simulated disk do not).
    pub prepare_spare_segments: bool,
}

/// Where appending resumes, as recovery found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTail {
    /// The segment being appended to, with the offset of its end (block-aligned), or None
    /// when the next batch starts a new segment.
    pub segment: Option<(PathBuf, u64)>,
    /// The number the next batch gets.
    pub next_batch: u64,
}

/// Work to run on the writer's thread once every record appended before it is durable: the
/// standalone server's publication of a batch (ZooKeeper's SyncRequestProcessor likewise
/// hands a flushed request to the next processor on its own thread). Run in the order sent,
/// after the sync that covers them, never after a failed one.
pub struct AfterDurable(pub Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for AfterDurable {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("AfterDurable")
    }
}

#[derive(Debug)]
pub enum WriterInput {
    Append(Vec<LogRecord>),
    /// Append these records (possibly none), then run the work once they and everything
    /// appended before them are durable: one message, so the writer wakes once per batch.
    AppendThen(Vec<LogRecord>, AfterDurable),
    /// ZAB's TRUNC: drop every record above `zxid`, durably, then answer on `done`. Handled
    /// in order: every append queued before it is written and synced first. See
    /// [`LogWriter::truncate`]. A failure is reported on `done` and poisons the writer.
    Truncate {
        zxid: i64,
        done: Sender<Result<(), String>>,
    },
    /// ZAB's SNAP: remove every segment (and a prepared spare), durably, then answer on
    /// `done`; the next append starts a new segment. See [`LogWriter::reset`].
    Reset {
        done: Sender<Result<(), String>>,
    },
    Shutdown,
}

/// What ends one round of gathering appends.
enum Control {
    Truncate {
        zxid: i64,
        done: Sender<Result<(), String>>,
    },
    Reset {
        done: Sender<Result<(), String>>,
    },
    Shutdown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriterEvent {
    /// Every record up to `zxid` is durable.
    Durable {
        zxid: i64,
        records: usize,
        sync_micros: u64,
    },
    /// The log is poisoned: nothing after this is durable.
    Failed { reason: String },
}

pub struct LogWriter {
    storage: Arc<dyn Storage>,
    settings: WriterSettings,
    file: Option<Box<dyn StorageFile>>,
    offset: u64,
    next_batch: u64,
    buffer: Vec<u8>,
    /// A segment file prepared in the background (created, zero-filled, synced) so that a
    /// roll-over is a rename instead of writing a whole segment while writes wait.
    spare: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

/// The prepared segment's name; recovery ignores it (it is not `log.<zxid>`).
pub const SPARE_SEGMENT: &str = "log.spare";

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

impl LogWriter {
    pub fn new(
        storage: Arc<dyn Storage>,
        settings: WriterSettings,
        tail: LogTail,
    ) -> std::io::Result<LogWriter> {
        let (file, offset) = match &tail.segment {
            Some((path, offset)) => (Some(storage.open(path)?), *offset),
            None => (None, 0),
        };
        Ok(LogWriter {
            storage,
            settings,
            file,
            offset,
            next_batch: tail.next_batch.max(1),
            buffer: Vec::with_capacity(1 << 20),
            spare: None,
        })
    }

    /// Starts preparing the next segment in the background.
    pub fn prepare_spare(&mut self) {
        if self.spare.is_some() || !self.settings.prepare_spare_segments {
            return;
        }
        let storage = self.storage.clone();
        let dir = self.settings.dir.clone();
        let bytes = self.settings.segment_bytes;
        let spawned = std::thread::Builder::new()
            .name("log-spare".into())
            .spawn(move || {
                let temporary = dir.join("log.spare.tmp");
                let _ = storage.remove(&temporary);
                let mut file = storage.create(&temporary, bytes)?;
                file.sync_data()?;
                drop(file);
                storage.rename(&temporary, &dir.join(SPARE_SEGMENT))?;
                storage.sync_dir(&dir)
            });
        match spawned {
            Ok(handle) => self.spare = Some(handle),
            Err(error) => warn!("could not start preparing the next log segment: {error}"),
        }
    }

    /// Whether a spare segment has been prepared (its preparation has ended).
    pub fn spare_ready(&self) -> bool {
        self.spare
            .as_ref()
            .is_some_and(|handle| handle.is_finished())
    }

    /// The prepared spare, renamed to `path`, if it is ready; None otherwise.
    fn take_spare(&mut self, path: &std::path::Path) -> Option<Box<dyn StorageFile>> {
        let handle = self.spare.take_if(|handle| handle.is_finished())?;
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                warn!("preparing the next log segment failed: {error}");
                return None;
            }
            Err(_) => return None,
        }
        let spare = self.settings.dir.join(SPARE_SEGMENT);
        if let Err(error) = self.storage.rename(&spare, path) {
            warn!("could not use the prepared log segment: {error}");
            return None;
        }
        self.storage.open(path).ok()
    }

    /// Starts a new segment for a batch whose first record is `first_zxid`.
    fn roll(&mut self, first_zxid: i64) -> std::io::Result<()> {
        let path = self.settings.dir.join(segment_name(first_zxid));
        let mut file = match self.take_spare(&path) {
            Some(file) => file,
            None => self.storage.create(&path, self.settings.segment_bytes)?,
        };
        let mut header = encode_segment_header(first_zxid, wall_clock_ms()).to_vec();
        header.resize(BLOCK_BYTES, 0);
        file.write_at(0, &header)?;
        file.sync_data()?;
        self.storage.sync_dir(&self.settings.dir)?;
        info!("new transaction log segment {}", path.display());
        self.file = Some(file);
        self.offset = BLOCK_BYTES as u64;
        self.prepare_spare();
        Ok(())
    }

    /// Writes and syncs one batch; returns the sync time.
    pub fn write_batch(&mut self, records: &[LogRecord]) -> std::io::Result<Duration> {
        let Some(first) = records.first() else {
            return Ok(Duration::ZERO);
        };
        self.buffer.clear();
        encode_batch(&mut self.buffer, self.next_batch, records);
        let fits = self
            .offset
            .checked_add(self.buffer.len() as u64)
            .is_some_and(|end| end <= self.settings.segment_bytes.max(2 * BLOCK_BYTES as u64));
        if self.file.is_none() || !fits {
            self.roll(first.zxid)?;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(std::io::Error::other("no log segment open"));
        };
        file.write_at(self.offset, &self.buffer)?;
        let started = Instant::now();
        if self.settings.force_sync {
            file.sync_data()?;
        }
        let elapsed = started.elapsed();
        if elapsed > self.settings.fsync_warning {
            warn!(
                "fsync of the transaction log took {} ms (fsync.warningthresholdms = {} ms) for {} records",
                elapsed.as_millis(),
                self.settings.fsync_warning.as_millis(),
                records.len()
            );
        }
        self.offset += self.buffer.len() as u64;
        self.next_batch += 1;
        Ok(elapsed)
    }

    /// The writer loop: group commit until Shutdown or the first failure. A `Truncate` or
    /// `Reset` ends the gathering of a batch: what arrived before it is written and synced
    /// first, so the log operations happen in the order they were sent.
    pub fn run(mut self, input: Receiver<WriterInput>, events: Sender<WriterEvent>) {
        self.prepare_spare();
        let mut records: Vec<LogRecord> = Vec::new();
        let mut after_durable: Vec<AfterDurable> = Vec::new();
        loop {
            let mut control = match input.recv() {
                Ok(WriterInput::Append(batch)) => {
                    records.extend(batch);
                    None
                }
                Ok(WriterInput::AppendThen(batch, work)) => {
                    records.extend(batch);
                    after_durable.push(work);
                    None
                }
                Ok(other) => Some(Self::control(other)),
                Err(_) => Some(Control::Shutdown),
            };
            let mut bytes: usize = records.iter().map(approximate_size).sum();
            while control.is_none()
                && bytes < self.settings.batch_bytes_max
                && records.len() < self.settings.batch_records_max
            {
                match input.try_recv() {
                    Ok(WriterInput::Append(batch)) => {
                        bytes += batch.iter().map(approximate_size).sum::<usize>();
                        records.extend(batch);
                    }
                    Ok(WriterInput::AppendThen(batch, work)) => {
                        bytes += batch.iter().map(approximate_size).sum::<usize>();
                        records.extend(batch);
                        after_durable.push(work);
                    }
                    Ok(other) => control = Some(Self::control(other)),
                    Err(_) => break,
                }
            }
            if let Some(last) = records.last().map(|record| record.zxid) {
                match self.write_batch(&records) {
                    Ok(elapsed) => {
                        let event = WriterEvent::Durable {
                            zxid: last,
                            records: records.len(),
                            sync_micros: elapsed.as_micros() as u64,
                        };
                        records.clear();
                        for work in after_durable.drain(..) {
                            (work.0)();
                        }
                        if events.send(event).is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        let reason = format!(
                            "transaction log write or sync failed in {}: {error}",
                            self.settings.dir.display()
                        );
                        // A log operation waiting behind the failed batch fails with it.
                        match control {
                            Some(Control::Truncate { done, .. } | Control::Reset { done }) => {
                                let _ = done.send(Err(reason.clone()));
                            }
                            Some(Control::Shutdown) | None => {}
                        }
                        let _ = events.send(WriterEvent::Failed { reason });
                        return;
                    }
                }
            }
            // Work sent after records already durable (nothing new to write) runs at once.
            for work in after_durable.drain(..) {
                (work.0)();
            }
            let (outcome, done) = match control {
                None => continue,
                Some(Control::Shutdown) => return,
                Some(Control::Truncate { zxid, done }) => (
                    self.truncate(zxid).map_err(|error| {
                        format!(
                            "truncating the transaction log in {} to zxid {zxid:#x} failed: {error}",
                            self.settings.dir.display()
                        )
                    }),
                    done,
                ),
                Some(Control::Reset { done }) => (
                    self.reset().map_err(|error| {
                        format!(
                            "removing the transaction log in {} failed: {error}",
                            self.settings.dir.display()
                        )
                    }),
                    done,
                ),
            };
            match outcome {
                Ok(()) => {
                    let _ = done.send(Ok(()));
                }
                Err(reason) => {
                    // Poisoned, as after a failed sync: the log's state on disk is no longer
                    // what this writer believes, so nothing more is written.
                    let _ = done.send(Err(reason.clone()));
                    let _ = events.send(WriterEvent::Failed { reason });
                    return;
                }
            }
        }
    }

    fn control(input: WriterInput) -> Control {
        match input {
            WriterInput::Truncate { zxid, done } => Control::Truncate { zxid, done },
            WriterInput::Reset { done } => Control::Reset { done },
            // Append and AppendThen are handled by the caller; treating them as a stop is
            // never reached.
            WriterInput::Shutdown | WriterInput::Append(_) | WriterInput::AppendThen(..) => {
                Control::Shutdown
            }
        }
    }

    /// The log segments in the directory, oldest first: (first zxid, path).
    fn segments(&self) -> std::io::Result<Vec<(i64, PathBuf)>> {
        let dir = &self.settings.dir;
        let mut segments: Vec<(i64, PathBuf)> = self
            .storage
            .list(dir)?
            .into_iter()
            .filter_map(|name| parse_segment_name(&name).map(|zxid| (zxid, dir.join(name))))
            .collect();
        segments.sort();
        Ok(segments)
    }

    /// Removes `path` and makes the removal durable before anything else happens.
    fn remove_durably(&self, path: &Path) -> std::io::Result<()> {
        self.storage.remove(path)?;
        self.storage.sync_dir(&self.settings.dir)
    }

    /// Drops every record above `zxid` (ZAB's TRUNC; ZooKeeper's `FileTxnLog.truncate`),
    /// durably: when this returns Ok the log holds exactly its records at or below `zxid`,
    /// and the next [`write_batch`](Self::write_batch) continues it.
    ///
    /// Steps, each durable before the next:
    ///
    /// 1. The segments whose first zxid is above `zxid` are removed, newest first, the
    ///    directory synced after each removal.
    /// 2. The last remaining segment S (the one that straddles `zxid`) is rewritten when it
    ///    holds anything above `zxid` (records, or a torn tail): a new file `S.truncate` gets
    ///    S's bytes up to the start of the straddling batch, then the kept records of that
    ///    batch re-encoded as a batch with the same number, then zeros to S's length; it is
    ///    synced and renamed over S, and the directory synced. A segment left with no record
    ///    at or below `zxid` is removed instead, and the next append starts a new segment.
    ///
    /// Why a crash at any point recovers: recovery reads segments in name order and accepts
    /// any log that is a prefix of a valid log. After any number of the removals of step 1,
    /// what remains is a prefix of the old segments (removals are durable one by one, newest
    /// first), so recovery gives the old log cut at a segment boundary: all of its records at
    /// or below `zxid`, and possibly some above it, which the caller truncates again (ZAB
    /// sends TRUNC again after a restart). Step 2 replaces S atomically by rename: recovery
    /// sees either the old S, whole, or the new S, whose every byte was synced before the
    /// rename and which holds no stale bytes past its end (the tail is zeros, as recovery
    /// expects). So recovery never finds records above `zxid` next to damage it refuses.
    /// Rewriting costs one copy of the kept part of S (at most a segment); truncation is rare.
    ///
    /// A prepared spare segment holds only zeros and stays valid. Batch numbers go on from
    /// the last kept batch, as a segment requires.
    pub fn truncate(&mut self, zxid: i64) -> std::io::Result<()> {
        // The open segment may be removed or replaced: appending resumes wherever step 2 says.
        self.file = None;
        self.offset = 0;
        let mut segments = self.segments()?;
        while let Some((first_zxid, path)) = segments.last() {
            if *first_zxid <= zxid {
                break;
            }
            self.remove_durably(path)?;
            info!("truncation to {zxid:#x} removed segment {}", path.display());
            segments.pop();
        }
        let Some((_, path)) = segments.last() else {
            return Ok(());
        };
        // Only the used prefix: the rest of a preallocated segment is zeros.
        let (bytes, scan) = super::recovery::read_used_prefix(&*self.storage, path, i64::MIN)?;
        let scan = scan.map_err(|error| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("segment {} cannot be truncated: {error}", path.display()),
            )
        })?;
        let kept = scan.records.partition_point(|record| record.zxid <= zxid);
        if kept == 0 {
            self.remove_durably(path)?;
            info!("truncation to {zxid:#x} removed segment {}", path.display());
            return Ok(());
        }
        if kept == scan.records.len() && scan.ending == Ending::Clean {
            // Nothing above `zxid` in S: appending resumes at its end.
            self.file = Some(self.storage.open(path)?);
            self.offset = scan.valid_end as u64;
            self.next_batch = scan.last_batch + 1;
            return Ok(());
        }
        // The batch holding the first record above `zxid`, if any.
        let straddling = scan
            .batches
            .iter()
            .rev()
            .find(|batch| batch.first_record <= kept && kept < scan.records.len());
        let mut rewritten;
        let next_batch;
        match straddling {
            Some(batch) => {
                rewritten = bytes[..batch.start].to_vec();
                let kept_records = &scan.records[batch.first_record..kept];
                if kept_records.is_empty() {
                    next_batch = batch.number;
                } else {
                    encode_batch(&mut rewritten, batch.number, kept_records);
                    next_batch = batch.number + 1;
                }
            }
            None => {
                // Every record is kept; only a torn tail follows them.
                rewritten = bytes[..scan.valid_end].to_vec();
                next_batch = scan.last_batch + 1;
            }
        }
        let temporary = path.with_extension(
            path.extension()
                .and_then(|extension| extension.to_str())
                .map_or_else(|| "truncate".to_string(), |hex| format!("{hex}.truncate")),
        );
        if self.storage.read_at(&temporary, 0, 1).is_ok() {
            // Left by a crash during an earlier truncation: never read by recovery.
            self.storage.remove(&temporary)?;
        }
        // As large as the segment was preallocated (the prefix read may be shorter), so the
        // appends that follow change no allocation metadata.
        let length = self
            .settings
            .segment_bytes
            .max(bytes.len() as u64)
            .max(rewritten.len() as u64);
        // The prepared spare when it is ready: creating a segment zero-fills it (see
        // `storage::direct`), 64 MiB written and synced, hundreds of milliseconds that a learner
        // would spend after its TRUNC before it can follow its new leader. The spare is zeros
        // past what is written here, as the segment's tail must be.
        let mut file = match self.take_spare(&temporary) {
            Some(file) => file,
            None => self.storage.create(&temporary, length)?,
        };
        file.write_at(0, &rewritten)?;
        file.sync_data()?;
        drop(file);
        self.storage.rename(&temporary, path)?;
        self.storage.sync_dir(&self.settings.dir)?;
        info!(
            "truncated {} to zxid {zxid:#x}: {} records kept, {} dropped",
            path.display(),
            kept,
            scan.records.len() - kept
        );
        self.file = Some(self.storage.open(path)?);
        self.offset = rewritten.len() as u64;
        self.next_batch = next_batch;
        self.prepare_spare();
        Ok(())
    }

    /// Removes every segment, and the prepared spare, durably (ZAB's SNAP replaces the whole
    /// history; ZooKeeper's learner starts a new log after `Learner.syncWithLeader` takes a
    /// snapshot). Segments are removed newest first, the directory synced after each, so a
    /// crash leaves a prefix of the old log, which recovery accepts. The next append starts a
    /// new segment named by its first zxid. The caller resets the log *before* installing the
    /// leader's snapshot (see `snapshot::install_snapshot`).
    pub fn reset(&mut self) -> std::io::Result<()> {
        self.file = None;
        self.offset = 0;
        if let Some(handle) = self.spare.take() {
            // Wait for the preparing thread so that it cannot re-create the spare afterwards.
            let _ = handle.join();
        }
        for (_, path) in self.segments()?.iter().rev() {
            self.remove_durably(path)?;
        }
        let names = self.storage.list(&self.settings.dir)?;
        for spare in [SPARE_SEGMENT, "log.spare.tmp"] {
            if names.iter().any(|name| name == spare) {
                self.remove_durably(&self.settings.dir.join(spare))?;
            }
        }
        info!(
            "removed every transaction log segment in {}",
            self.settings.dir.display()
        );
        Ok(())
    }
}

fn approximate_size(record: &LogRecord) -> usize {
    use crate::tree::Txn;
    fn size(txn: &Txn) -> usize {
        match txn {
            Txn::Create {
                path, data, acl, ..
            } => path.len() + data.as_ref().map_or(0, Vec::len) + acl.len() * 24 + 32,
            Txn::SetData { path, data, .. } => path.len() + data.as_ref().map_or(0, Vec::len) + 16,
            Txn::Multi { ops } => ops.iter().map(size).sum::<usize>() + 8,
            Txn::CloseSession { ephemerals, .. } => {
                ephemerals.iter().map(String::len).sum::<usize>() + 16
            }
            _ => 64,
        }
    }
    size(&record.txn) + super::format::RECORD_HEADER_BYTES
}
