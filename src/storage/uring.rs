//! [io] Log files written through io_uring with O_DIRECT: glommio's DMA files, driven by a
//! small glommio executor owned by the thread that writes (the log writer). Writes must be
//! block-aligned in offset and length, which the log format guarantees (batches are padded
//! to BLOCK_BYTES). Where the filesystem refuses O_DIRECT (tmpfs, some overlays), files fall
//! back to ordinary buffered I/O with fdatasync, and say so once.
//!
//! A `UringFile` must be used on the thread that created it (the executor is thread-local);
//! the log writer creates and uses its files on its own thread.

use std::cell::RefCell;
use std::io;
use std::path::Path;
use std::rc::Rc;

use glommio::io::DmaFile;
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};
use tracing::{info, warn};

use super::DIRECT_IO_ALIGNMENT_BYTES as BLOCK_BYTES;
use super::{DiskStorage, Storage, StorageFile};

/// Locked memory the log writer's ring registers (it allocates DMA buffers per batch).
const IO_MEMORY_BYTES: usize = 256 * 1024;

thread_local! {
    static EXECUTOR: RefCell<Option<Rc<LocalExecutor>>> = const { RefCell::new(None) };
}

fn executor() -> io::Result<Rc<LocalExecutor>> {
    EXECUTOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        if let Some(executor) = slot.as_ref() {
            return Ok(executor.clone());
        }
        let executor = LocalExecutorBuilder::new(Placement::Unbound)
            .name("log-io")
            .io_memory(IO_MEMORY_BYTES)
            .make()
            .map_err(|error| {
                io::Error::other(format!(
                    "cannot start io_uring for the transaction log: {error} (check `ulimit -l`)"
                ))
            })?;
        let executor = Rc::new(executor);
        *slot = Some(executor.clone());
        Ok(executor)
    })
}

fn glommio_error(error: glommio::GlommioError<()>) -> io::Error {
    match error {
        glommio::GlommioError::IoError(error) => error,
        other => io::Error::other(other.to_string()),
    }
}

/// The real disk, with log files written through io_uring and O_DIRECT.
#[derive(Debug, Default, Clone, Copy)]
pub struct UringStorage;

struct UringFile {
    executor: Rc<LocalExecutor>,
    file: Rc<DmaFile>,
    /// A plain descriptor of the same file, for fdatasync. fdatasync makes the file (the
    /// inode) durable whatever descriptor it is called on; called directly, it saves the
    /// hand-off io_uring makes for a sync, which it always runs on an io-wq worker thread.
    sync_handle: std::fs::File,
}

fn aligned(value: u64) -> bool {
    value.is_multiple_of(BLOCK_BYTES as u64)
}

impl StorageFile for UringFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        if !aligned(offset) || !aligned(bytes.len() as u64) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "O_DIRECT writes must be block-aligned",
            ));
        }
        let file = self.file.clone();
        self.executor.run(async move {
            let mut buffer = file.alloc_dma_buffer(bytes.len());
            buffer.as_bytes_mut().copy_from_slice(bytes);
            let written = file.write_at(buffer, offset).await.map_err(glommio_error)?;
            if written != bytes.len() {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write: {written} of {} bytes", bytes.len()),
                ));
            }
            Ok(())
        })
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.sync_handle.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        let file = self.file.clone();
        self.executor
            .run(async move { file.file_size().await.map_err(glommio_error) })
    }
}

impl UringStorage {
    fn open_direct(
        &self,
        path: &Path,
        create_bytes: Option<u64>,
    ) -> io::Result<Option<Box<dyn StorageFile>>> {
        let executor = executor()?;
        let owned = path.to_path_buf();
        let opened = executor.run(async move {
            match create_bytes {
                Some(bytes) => {
                    if owned.exists() {
                        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
                    }
                    // Opened for reading too (DmaFile::create is write-only): glommio probes a
                    // new device for io_uring polling with a read of the file, which fails
                    // with EBADF on a write-only descriptor and is then logged at ERROR on
                    // every start. Readable, the probe gets the device's real answer.
                    let file = glommio::io::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create_new(true)
                        .dma_open(&owned)
                        .await
                        .map_err(glommio_error)?;
                    if bytes > 0 {
                        file.pre_allocate(bytes, false)
                            .await
                            .map_err(glommio_error)?;
                        // Write the zeros for real: O_DIRECT writes into allocated but
                        // unwritten extents change the extent tree, so every fdatasync would
                        // also commit filesystem metadata (measured: tail latencies of
                        // hundreds of ms). Written extents make later syncs data-only.
                        const CHUNK: u64 = 1 << 20;
                        let mut offset = 0;
                        while offset < bytes {
                            let length = CHUNK.min(bytes - offset) as usize;
                            let mut zeros = file.alloc_dma_buffer(length);
                            zeros.as_bytes_mut().fill(0);
                            file.write_at(zeros, offset).await.map_err(glommio_error)?;
                            offset += length as u64;
                        }
                        file.fdatasync().await.map_err(glommio_error)?;
                    }
                    Ok(file)
                }
                None => glommio::io::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .dma_open(&owned)
                    .await
                    .map_err(glommio_error),
            }
        });
        match opened {
            Ok(file) => Ok(Some(Box::new(UringFile {
                executor,
                file: Rc::new(file),
                sync_handle: std::fs::OpenOptions::new().write(true).open(path)?,
            }))),
            Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {
                warn!(
                    "{} does not support O_DIRECT; the transaction log uses buffered writes",
                    path.display()
                );
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}

impl Storage for UringStorage {
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
                    "transaction log segment {} opened with O_DIRECT through io_uring",
                    path.display()
                );
                Ok(file)
            }
            None => {
                let _ = std::fs::remove_file(path);
                DiskStorage.create(path, preallocate_bytes)
            }
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

    #[test]
    fn aligned_writes_survive_a_reopen_and_unaligned_ones_are_refused() {
        let dir = std::env::temp_dir().join(format!("ringkeeper-uring-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(std::fs::create_dir_all(&dir).is_ok());
        let path = dir.join("segment");
        let storage = UringStorage;
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
}
