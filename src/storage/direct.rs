//! [io] Log files written with O_DIRECT by plain positional writes (`pwrite`) from the log
//! writer's own thread, and synced with fdatasync on the same descriptor. Writes must be
//! block-aligned in offset, length and memory: the log format pads every batch to BLOCK_BYTES,
//! and each write goes through an aligned scratch buffer. Where the filesystem refuses O_DIRECT
//! (tmpfs, some overlays), files fall back to ordinary buffered I/O with fdatasync, and say so
//! once.
//!
//! Why not io_uring (DESIGN.md's log writer, which this replaced): the writer is one thread that
//! waits for each write before the next (a batch is written, then synced, then reported), so a
//! ring never held more than one request and saved nothing, and the glommio executor it was
//! driven by stalls for good in that use. In the linearizability soak (5 servers, the leader
//! SIGSTOPped for 2 s) a log writer sat in glommio's `SleepableRing::sleep` inside `write_at`
//! while its rings held no request of ours (fdinfo of the main ring: glommio's own link poll,
//! throughput timer and its eventfd write, as when idle; nothing in the CQ; io-wq idle), until
//! a ptrace stop (gdb) interrupted the wait and it went on. The follower's next TRUNC or SNAP
//! waits on the writer (`cut_log`), so the member stopped serving. The cause is in glommio 0.9's
//! `LocalExecutor::run`: when `run_task_queues` starts with `need_preempt()` already true (the
//! 100 ms preempt timer armed by `poll_io` has fired, which a stop or a starved CPU between the
//! two makes happen), it returns "nothing ran" without running the runnable task; `park` then
//! consumes the timer's completion, which wakes no task, and sleeps on a ring where nothing
//! will complete. `scripts/glommio_lost_wakeup.rs` shows it with a 1 us preempt timer. Every
//! segment preparation also made a glommio executor of its own on the spare thread, whose
//! eventfd and whose copy of the segment's descriptor were never closed (one of each leaked per
//! segment). A blocking `pwrite` has none of these states.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{info, warn};

use super::DIRECT_IO_ALIGNMENT_BYTES as BLOCK_BYTES;
use super::{DiskStorage, Storage, StorageFile};

/// Zeros written per write when a new segment is filled (its whole length is written once, so
/// that later appends change no extent metadata; see `create`).
const ZERO_FILL_CHUNK_BYTES: usize = 1 << 20;

/// Set once the fallback to buffered writes has been reported.
static BUFFERED_FALLBACK_REPORTED: AtomicBool = AtomicBool::new(false);

/// The real disk, with log files written with O_DIRECT.
#[derive(Debug, Default, Clone, Copy)]
pub struct DirectStorage;

/// A reusable buffer whose used part starts on a BLOCK_BYTES boundary in memory, as O_DIRECT
/// requires of the source of a write (safe code: the aligned window is found inside a longer
/// allocation).
#[derive(Default)]
struct AlignedBuffer {
    bytes: Vec<u8>,
}

impl AlignedBuffer {
    /// An aligned window of `length` bytes (contents unspecified).
    fn window(&mut self, length: usize) -> &mut [u8] {
        if self.bytes.len() < length + BLOCK_BYTES {
            self.bytes = vec![0u8; length + BLOCK_BYTES];
        }
        let misalignment = self.bytes.as_ptr() as usize % BLOCK_BYTES;
        let start = (BLOCK_BYTES - misalignment) % BLOCK_BYTES;
        &mut self.bytes[start..start + length]
    }
}

struct DirectFile {
    file: File,
    buffer: AlignedBuffer,
}

fn aligned(value: u64) -> bool {
    value.is_multiple_of(BLOCK_BYTES as u64)
}

impl DirectFile {
    fn write_aligned(&mut self, offset: u64, length: usize) -> io::Result<()> {
        let window = self.buffer.window(length);
        self.file.write_all_at(window, offset)
    }
}

impl StorageFile for DirectFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        if !aligned(offset) || !aligned(bytes.len() as u64) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "O_DIRECT writes must be block-aligned",
            ));
        }
        self.buffer.window(bytes.len()).copy_from_slice(bytes);
        self.write_aligned(offset, bytes.len())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

impl DirectStorage {
    /// Opens (or creates, zero-filled to `create_bytes`) `path` with O_DIRECT; None when the
    /// filesystem refuses O_DIRECT.
    fn open_direct(
        &self,
        path: &Path,
        create_bytes: Option<u64>,
    ) -> io::Result<Option<Box<dyn StorageFile>>> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).custom_flags(libc::O_DIRECT);
        if create_bytes.is_some() {
            options.create_new(true);
        }
        let file = match options.open(path) {
            Ok(file) => file,
            Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {
                if !BUFFERED_FALLBACK_REPORTED.swap(true, Ordering::Relaxed) {
                    warn!(
                        "{} does not support O_DIRECT; the transaction log uses buffered writes",
                        path.display()
                    );
                }
                if create_bytes.is_some() {
                    let _ = std::fs::remove_file(path);
                }
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let mut direct = DirectFile {
            file,
            buffer: AlignedBuffer::default(),
        };
        if let Some(bytes) = create_bytes.filter(|bytes| *bytes > 0) {
            // Real blocks, written: O_DIRECT writes into allocated but unwritten extents change
            // the extent tree, so every fdatasync would also commit filesystem metadata
            // (measured: tail latencies of hundreds of ms). Written extents make later syncs
            // data-only.
            rustix::fs::fallocate(&direct.file, rustix::fs::FallocateFlags::empty(), 0, bytes)
                .map_err(io::Error::from)?;
            direct
                .buffer
                .window(ZERO_FILL_CHUNK_BYTES.min(bytes as usize))
                .fill(0);
            let mut offset = 0u64;
            while offset < bytes {
                let length = (ZERO_FILL_CHUNK_BYTES as u64).min(bytes - offset) as usize;
                if !aligned(length as u64) {
                    // A size that is not a multiple of the block: the tail stays as fallocate
                    // left it (reads as zeros), which only a test uses.
                    break;
                }
                direct.write_aligned(offset, length)?;
                offset += length as u64;
            }
            direct.file.sync_data()?;
        }
        Ok(Some(Box::new(direct)))
    }
}

impl Storage for DirectStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        DiskStorage.create_dir_all(dir)
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

    fn create(&self, path: &Path, preallocate_bytes: u64) -> io::Result<Box<dyn StorageFile>> {
        match self.open_direct(path, Some(preallocate_bytes))? {
            Some(file) => {
                info!(
                    "transaction log segment {} opened with O_DIRECT",
                    path.display()
                );
                Ok(file)
            }
            None => DiskStorage.create(path, preallocate_bytes),
        }
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        match self.open_direct(path, None)? {
            Some(file) => Ok(file),
            None => DiskStorage.open(path),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        DiskStorage.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        DiskStorage.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        DiskStorage.sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Descriptors of this process open on files under `dir` (other tests running in
    /// parallel open files elsewhere).
    fn descriptors_under(dir: &Path) -> Vec<std::path::PathBuf> {
        let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| std::fs::read_link(entry.path()).ok())
            .filter(|target| target.starts_with(dir))
            .collect()
    }

    #[test]
    fn aligned_writes_survive_a_reopen_and_unaligned_ones_are_refused() {
        let dir = std::env::temp_dir().join(format!("ringkeeper-direct-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(std::fs::create_dir_all(&dir).is_ok());
        let path = dir.join("segment");
        let storage = DirectStorage;
        let mut file = match storage.create(&path, 64 * 1024) {
            Ok(file) => file,
            Err(error) => panic!("create: {error}"),
        };
        let block = vec![0x5au8; BLOCK_BYTES];
        assert!(file.write_at(BLOCK_BYTES as u64, &block).is_ok());
        assert!(file.sync_data().is_ok());
        assert!(file.write_at(1, &block).is_err());
        assert!(file.write_at(0, &block[..100]).is_err());
        let contents = std::fs::read(&path).unwrap_or_default();
        assert_eq!(contents.len(), 64 * 1024);
        assert_eq!(&contents[BLOCK_BYTES..2 * BLOCK_BYTES], &block[..]);
        assert!(contents[..BLOCK_BYTES].iter().all(|byte| *byte == 0));
        assert!(contents[2 * BLOCK_BYTES..].iter().all(|byte| *byte == 0));
        // Reopened (as after a restart), the file takes more writes.
        drop(file);
        let mut file = match storage.open(&path) {
            Ok(file) => file,
            Err(error) => panic!("open: {error}"),
        };
        assert!(file.write_at(2 * BLOCK_BYTES as u64, &block).is_ok());
        assert!(file.sync_data().is_ok());
        let contents = std::fs::read(&path).unwrap_or_default();
        assert_eq!(&contents[2 * BLOCK_BYTES..3 * BLOCK_BYTES], &block[..]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The log writer's thread and the segment-preparing threads create, write, sync and drop
    /// files all the time: none of that may leave a descriptor behind (the io_uring storage
    /// leaked the segment's descriptor, and an eventfd, per prepared segment: its glommio
    /// close was queued on the preparing thread's executor, which never ran again), and a file
    /// made on one thread is used on another (the prepared spare).
    #[test]
    fn files_made_on_short_lived_threads_leave_no_descriptor_open() {
        let dir =
            std::env::temp_dir().join(format!("ringkeeper-direct-threads-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(std::fs::create_dir_all(&dir).is_ok());
        for round in 0..20 {
            let path = dir.join(format!("spare.{round}"));
            let made = std::thread::spawn({
                let path = path.clone();
                move || -> io::Result<()> {
                    let mut file = DirectStorage.create(&path, 256 * 1024)?;
                    file.sync_data()
                }
            })
            .join();
            assert!(matches!(made, Ok(Ok(()))), "round {round}: {made:?}");
            let mut file = match DirectStorage.open(&path) {
                Ok(file) => file,
                Err(error) => panic!("open: {error}"),
            };
            let block = vec![round as u8; 8 * BLOCK_BYTES];
            assert!(file.write_at(BLOCK_BYTES as u64, &block).is_ok());
            assert!(file.sync_data().is_ok());
            drop(file);
        }
        let left = descriptors_under(&dir);
        assert!(left.is_empty(), "descriptors left open: {left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
