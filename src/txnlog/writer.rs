//! [io] The log writer: one thread that owns the log device. Group commit (ZooKeeper's
//! SyncRequestProcessor, STYLE habit 8): it takes every batch of records that has arrived,
//! up to a byte and a count bound, writes them as one block-aligned batch with one write,
//! syncs once, and reports "durable up to zxid Z". A failed write or sync poisons the log: the
//! writer reports the failure and stops; it never retries a sync, whose failure may already
//! have dropped the dirty pages (STYLE habit 7).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use tracing::{info, warn};

use crate::storage::{Storage, StorageFile};

use super::format::{encode_batch, encode_segment_header, segment_name, LogRecord, BLOCK_BYTES};

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

#[derive(Debug)]
pub enum WriterInput {
    Append(Vec<LogRecord>),
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

    /// The writer loop: group commit until Shutdown or the first failure.
    pub fn run(mut self, input: Receiver<WriterInput>, events: Sender<WriterEvent>) {
        self.prepare_spare();
        let mut records: Vec<LogRecord> = Vec::new();
        let mut shutdown = false;
        while !shutdown {
            match input.recv() {
                Ok(WriterInput::Append(batch)) => records.extend(batch),
                Ok(WriterInput::Shutdown) | Err(_) => break,
            }
            let mut bytes: usize = records.iter().map(approximate_size).sum();
            while bytes < self.settings.batch_bytes_max
                && records.len() < self.settings.batch_records_max
            {
                match input.try_recv() {
                    Ok(WriterInput::Append(batch)) => {
                        bytes += batch.iter().map(approximate_size).sum::<usize>();
                        records.extend(batch);
                    }
                    Ok(WriterInput::Shutdown) => {
                        shutdown = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            let Some(last) = records.last().map(|record| record.zxid) else {
                continue;
            };
            match self.write_batch(&records) {
                Ok(elapsed) => {
                    let event = WriterEvent::Durable {
                        zxid: last,
                        records: records.len(),
                        sync_micros: elapsed.as_micros() as u64,
                    };
                    records.clear();
                    if events.send(event).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let _ = events.send(WriterEvent::Failed {
                        reason: format!(
                            "transaction log write or sync failed in {}: {error}",
                            self.settings.dir.display()
                        ),
                    });
                    return;
                }
            }
        }
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
