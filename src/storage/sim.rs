//! A simulated disk for tests: every file has a live copy (what reads see) and a durable copy
//! (what survives a crash); directory entries likewise. `crash()` throws away everything not
//! synced — or, with torn writes enabled, keeps a random prefix of the unsynced writes, the last
//! one possibly cut mid-way, as a real disk may. Faults: a failed `sync_data`, ENOSPC after a
//! byte budget, and a budget of mutating operations after which every one fails (to stop a
//! multi-step operation at each of its steps and crash there). Deterministic from a seed.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Storage, StorageFile};

#[derive(Debug, Default, Clone)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Writes since the last successful sync, in order.
    unsynced: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct State {
    live_names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
    rng: u64,
    torn_writes: bool,
    fail_next_sync: bool,
    /// Bytes that may still be written before ENOSPC; None = unlimited.
    space_left: Option<u64>,
    /// Mutating operations (write, sync, create, rename, remove, directory sync) that may
    /// still succeed; None = unlimited. Once spent, each fails with EIO and changes nothing.
    operations_left: Option<u64>,
    syncs: u64,
}

impl State {
    fn random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Spends one mutating operation of the budget; Err once it is spent.
    fn operation(&mut self) -> io::Result<()> {
        match self.operations_left {
            Some(0) => Err(io::Error::from_raw_os_error(libc::EIO)),
            Some(left) => {
                self.operations_left = Some(left - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// A cloneable handle on one simulated disk.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

fn poisoned() -> io::Error {
    io::Error::other("simulated disk lock poisoned")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

impl SimDisk {
    pub fn new(seed: u64) -> SimDisk {
        let disk = SimDisk::default();
        if let Ok(mut state) = disk.state.lock() {
            state.rng = seed | 1;
        }
        disk
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| poisoned())
    }

    /// With torn writes, a crash keeps a random prefix of unsynced writes.
    pub fn set_torn_writes(&self, enabled: bool) {
        if let Ok(mut state) = self.lock() {
            state.torn_writes = enabled;
        }
    }

    /// The next `sync_data` fails with EIO (and, as on Linux, the unsynced data may be lost).
    pub fn fail_next_sync(&self) {
        if let Ok(mut state) = self.lock() {
            state.fail_next_sync = true;
        }
    }

    /// Writes fail with ENOSPC once `bytes` more bytes have been written.
    pub fn set_space_left(&self, bytes: Option<u64>) {
        if let Ok(mut state) = self.lock() {
            state.space_left = bytes;
        }
    }

    /// After `operations` more mutating operations succeed, every further one fails with EIO
    /// and has no effect, as if the process had stopped there; `crash()` then keeps what was
    /// durable at that point. None lifts the limit.
    pub fn fail_after_operations(&self, operations: Option<u64>) {
        if let Ok(mut state) = self.lock() {
            state.operations_left = operations;
        }
    }

    pub fn sync_count(&self) -> u64 {
        self.lock().map(|state| state.syncs).unwrap_or(0)
    }

    /// Loses everything that was not made durable, as a power cut would.
    pub fn crash(&self) {
        let Ok(mut state) = self.lock() else {
            return;
        };
        let torn = state.torn_writes;
        let ids: Vec<u64> = state.inodes.keys().copied().collect();
        for id in ids {
            let (unsynced, mut contents) = match state.inodes.get_mut(&id) {
                Some(inode) => (std::mem::take(&mut inode.unsynced), inode.durable.clone()),
                None => continue,
            };
            if torn && !unsynced.is_empty() {
                let kept = (state.random() % (unsynced.len() as u64 + 1)) as usize;
                for (index, (offset, bytes)) in unsynced.iter().take(kept).enumerate() {
                    let length = if index + 1 == kept {
                        (state.random() % (bytes.len() as u64 + 1)) as usize
                    } else {
                        bytes.len()
                    };
                    apply_write(&mut contents, *offset, &bytes[..length]);
                }
            }
            if let Some(inode) = state.inodes.get_mut(&id) {
                inode.live = contents.clone();
                inode.durable = contents;
            }
        }
        state.live_names = state.durable_names.clone();
        let live: std::collections::HashSet<u64> = state.live_names.values().copied().collect();
        state.inodes.retain(|id, _| live.contains(id));
    }
}

fn apply_write(contents: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let start = offset as usize;
    let end = start + bytes.len();
    if contents.len() < end {
        contents.resize(end, 0);
    }
    contents[start..end].copy_from_slice(bytes);
}

struct SimFile {
    disk: SimDisk,
    inode: u64,
}

impl StorageFile for SimFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.disk.lock()?;
        state.operation()?;
        if let Some(left) = state.space_left {
            if (bytes.len() as u64) > left {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            state.space_left = Some(left - bytes.len() as u64);
        }
        let inode = state
            .inodes
            .get_mut(&self.inode)
            .ok_or_else(|| io::Error::other("file was removed"))?;
        apply_write(&mut inode.live, offset, bytes);
        inode.unsynced.push((offset, bytes.to_vec()));
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut state = self.disk.lock()?;
        state.operation()?;
        state.syncs += 1;
        if std::mem::take(&mut state.fail_next_sync) {
            // Linux may drop the dirty pages of a failed fsync: the data is neither durable
            // nor guaranteed to be read back.
            if let Some(inode) = state.inodes.get_mut(&self.inode) {
                inode.unsynced.clear();
                inode.live = inode.durable.clone();
            }
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let inode = state
            .inodes
            .get_mut(&self.inode)
            .ok_or_else(|| io::Error::other("file was removed"))?;
        inode.durable = inode.live.clone();
        inode.unsynced.clear();
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let state = self.disk.lock()?;
        Ok(state
            .inodes
            .get(&self.inode)
            .map_or(0, |inode| inode.live.len() as u64))
    }
}

impl Storage for SimDisk {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.lock()?;
        Ok(state
            .live_names
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.lock()?;
        let id = state.live_names.get(path).ok_or_else(|| not_found(path))?;
        Ok(state
            .inodes
            .get(id)
            .map(|inode| inode.live.clone())
            .unwrap_or_default())
    }

    fn read_at(&self, path: &Path, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        let contents = self.read(path)?;
        let start = (offset as usize).min(contents.len());
        let end = start.saturating_add(length).min(contents.len());
        Ok(contents[start..end].to_vec())
    }

    fn create(&self, path: &Path, preallocate_bytes: u64) -> io::Result<Box<dyn StorageFile>> {
        let mut state = self.lock()?;
        state.operation()?;
        if state.live_names.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
        }
        let id = state.next_inode;
        state.next_inode += 1;
        let zeros = vec![0u8; preallocate_bytes as usize];
        state.inodes.insert(
            id,
            Inode {
                // Preallocation is part of creating the file: durable with the directory entry.
                live: zeros.clone(),
                durable: zeros,
                unsynced: Vec::new(),
            },
        );
        state.live_names.insert(path.to_path_buf(), id);
        drop(state);
        Ok(Box::new(SimFile {
            disk: self.clone(),
            inode: id,
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let state = self.lock()?;
        let id = *state.live_names.get(path).ok_or_else(|| not_found(path))?;
        drop(state);
        Ok(Box::new(SimFile {
            disk: self.clone(),
            inode: id,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock()?;
        state.operation()?;
        let id = state
            .live_names
            .remove(from)
            .ok_or_else(|| not_found(from))?;
        state.live_names.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock()?;
        state.operation()?;
        state
            .live_names
            .remove(path)
            .ok_or_else(|| not_found(path))?;
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock()?;
        state.operation()?;
        let live: Vec<(PathBuf, u64)> = state
            .live_names
            .iter()
            .filter(|(path, _)| path.parent() == Some(dir))
            .map(|(path, id)| (path.clone(), *id))
            .collect();
        state
            .durable_names
            .retain(|path, _| path.parent() != Some(dir));
        state.durable_names.extend(live);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_data_and_names_are_lost_on_crash() {
        let disk = SimDisk::new(1);
        let dir = Path::new("/d");
        let path = dir.join("f");
        let mut file = disk.create(&path, 0).unwrap_or_else(|e| panic!("{e}"));
        assert!(file.write_at(0, b"abc").is_ok());
        assert!(file.sync_data().is_ok());
        disk.crash();
        assert!(disk.read(&path).is_err(), "the directory was never synced");

        let mut file = disk.create(&path, 0).unwrap_or_else(|e| panic!("{e}"));
        assert!(disk.sync_dir(dir).is_ok());
        assert!(file.write_at(0, b"abc").is_ok());
        assert!(file.sync_data().is_ok());
        assert!(file.write_at(3, b"def").is_ok());
        disk.crash();
        assert_eq!(disk.read(&path).ok(), Some(b"abc".to_vec()));
    }

    #[test]
    fn failed_sync_reports_and_loses_the_data() {
        let disk = SimDisk::new(1);
        let path = Path::new("/d/f");
        let mut file = disk.create(path, 0).unwrap_or_else(|e| panic!("{e}"));
        assert!(disk.sync_dir(Path::new("/d")).is_ok());
        assert!(file.write_at(0, b"abc").is_ok());
        disk.fail_next_sync();
        assert!(file.sync_data().is_err());
        assert_eq!(disk.read(path).ok(), Some(Vec::new()));
    }

    #[test]
    fn enospc_after_the_budget() {
        let disk = SimDisk::new(1);
        let mut file = disk
            .create(Path::new("/d/f"), 0)
            .unwrap_or_else(|e| panic!("{e}"));
        disk.set_space_left(Some(4));
        assert!(file.write_at(0, b"abcd").is_ok());
        let error = file.write_at(4, b"e").err();
        assert_eq!(error.and_then(|e| e.raw_os_error()), Some(libc::ENOSPC));
    }

    #[test]
    fn torn_crash_keeps_a_prefix_of_unsynced_writes() {
        let disk = SimDisk::new(7);
        disk.set_torn_writes(true);
        let path = Path::new("/d/f");
        let mut file = disk.create(path, 0).unwrap_or_else(|e| panic!("{e}"));
        assert!(disk.sync_dir(Path::new("/d")).is_ok());
        for index in 0..10u64 {
            assert!(file.write_at(index * 4, &[index as u8 + 1; 4]).is_ok());
        }
        disk.crash();
        let contents = disk.read(path).unwrap_or_default();
        // Whatever survived is a prefix of the writes in order.
        for (position, byte) in contents.iter().enumerate() {
            assert!(*byte == (position / 4) as u8 + 1 || *byte == 0);
        }
    }
}
