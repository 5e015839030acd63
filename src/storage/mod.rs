//! Storage I/O behind one small trait, so the log and snapshots run over the real disk in the
//! server and over a simulated disk in tests (`sim`), which keeps a live and a durable copy of
//! every file and injects torn writes, failed syncs and ENOSPC.
//!
//! The contract is the one POSIX gives and crash safety needs: data written to a file is
//! durable only after `sync_data` on that file returns Ok; a file's existence, size changes
//! and renames are durable only after `sync_dir` on its directory returns Ok.

pub mod direct;
pub mod sim;

/// The unit of O_DIRECT I/O: offsets and lengths of direct writes are multiples of it (the
/// logical block size of every device and filesystem the server runs on, rounded up to the
/// page size). The log's block size is defined from it (`txnlog::format::BLOCK_BYTES`).
pub const DIRECT_IO_ALIGNMENT_BYTES: usize = 4096;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// An open file that is written at explicit offsets. Not `Send`: a file is used by the
/// thread that opened it (the log writer opens and writes its segments on its own thread).
pub trait StorageFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// fdatasync: everything written so far is durable when this returns Ok.
    fn sync_data(&mut self) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

pub trait Storage: Send + Sync {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries of a directory (not paths), unsorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Up to `length` bytes from `offset` (fewer at the end of the file).
    fn read_at(&self, path: &Path, offset: u64, length: usize) -> io::Result<Vec<u8>>;
    /// Creates a new file (failing if it exists), preallocated to `preallocate_bytes` of zeros.
    fn create(&self, path: &Path, preallocate_bytes: u64) -> io::Result<Box<dyn StorageFile>>;
    /// Opens an existing file for writing.
    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// True for a storage that changes nothing (`ringkeeper check`): recovery then converts
    /// a format 2 snapshot outside the data directory (`snapshot::open_converting`).
    fn is_dry_run(&self) -> bool {
        false
    }
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiskStorage;

struct DiskFile {
    file: File,
}

impl StorageFile for DiskFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, offset)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

impl Storage for DiskStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn read_at(&self, path: &Path, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        let file = File::open(path)?;
        let mut buffer = vec![0u8; length];
        let mut filled = 0;
        while filled < length {
            match file.read_at(&mut buffer[filled..], offset + filled as u64)? {
                0 => break,
                count => filled += count,
            }
        }
        buffer.truncate(filled);
        Ok(buffer)
    }

    fn create(&self, path: &Path, preallocate_bytes: u64) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        if preallocate_bytes > 0 {
            // Real blocks, not a sparse file: appends then change no allocation metadata, so
            // fdatasync has only the data to flush (ZooKeeper's preAllocSize).
            rustix::fs::fallocate(
                &file,
                rustix::fs::FallocateFlags::empty(),
                0,
                preallocate_bytes,
            )
            .map_err(io::Error::from)?;
        }
        Ok(Box::new(DiskFile { file }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Box::new(DiskFile { file }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// `dir/name`.
pub fn join(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// The server's session secret (session passwords are derived from it), kept in
/// `dir/session-secret` so sessions can be resumed after a restart. Created on first start:
/// written to a temp file, synced, renamed, directory synced.
pub fn load_or_create_secret(storage: &dyn Storage, dir: &Path) -> io::Result<[u8; 16]> {
    let path = dir.join("session-secret");
    match storage.read(&path) {
        Ok(bytes) => bytes.as_slice().try_into().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not 16 bytes long", path.display()),
            )
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let secret: [u8; 16] = rand::random();
            let temporary = dir.join("session-secret.tmp");
            let _ = storage.remove(&temporary);
            let mut file = storage.create(&temporary, 0)?;
            file.write_at(0, &secret)?;
            file.sync_data()?;
            storage.rename(&temporary, &path)?;
            storage.sync_dir(dir)?;
            Ok(secret)
        }
        Err(error) => Err(error),
    }
}
