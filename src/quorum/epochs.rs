//! [io] The epochs a quorum member persists (ZooKeeper's `acceptedEpoch` and `currentEpoch`
//! files in dataDir, plus the leader the accepted epoch came from: see [`crate::zab`], phase 1).
//!
//! ZooKeeper writes each epoch synchronously before it replies (`QuorumPeer.writeLongToFile`:
//! temp file, fsync, rename), so a server never acknowledges an epoch it could forget. Here the
//! three values live in one file, so they change together: a crash leaves either the old or
//! the new [`Epochs`], never a mix and never nothing.
//!
//! # File format
//!
//! `dataDir/quorum-epochs`, ASCII text, exactly these five lines in this order, each ending
//! in `\n`:
//!
//! ```text
//! # ringkeeper quorum epochs
//! acceptedEpoch=<decimal u32>
//! currentEpoch=<decimal u32>
//! acceptedLeader=<decimal u64 server id, or "none">
//! checksum=<CRC-32C of every byte before this line, 8 lowercase hex digits>
//! ```
//!
//! Nothing else is accepted: a file that does not parse, whose checksum does not match, or
//! whose current epoch is above its accepted epoch (ZAB never adopts an epoch it has not
//! accepted) is reported as damaged, and the server refuses to start rather than guess. A
//! missing file is a server that never took part in an election: [`Epochs::default`].
//!
//! Writing: `quorum-epochs.tmp` is created, written, fsynced, renamed over `quorum-epochs`,
//! and the directory is fsynced (as `storage::load_or_create_secret` does).

use std::io;
use std::path::Path;

use crate::storage::Storage;
use crate::zab::Epochs;

/// The file's name in dataDir.
pub const EPOCHS_FILE: &str = "quorum-epochs";
const TEMPORARY_FILE: &str = "quorum-epochs.tmp";
const TITLE: &str = "# ringkeeper quorum epochs";
/// The file is five short lines; anything longer is not this file.
const FILE_BYTES_MAX: usize = 256;

/// The file's bytes for `epochs`.
pub fn encode(epochs: &Epochs) -> String {
    let leader = epochs
        .accepted_leader
        .map_or_else(|| "none".to_string(), |leader| leader.to_string());
    let body = format!(
        "{TITLE}\nacceptedEpoch={}\ncurrentEpoch={}\nacceptedLeader={leader}\n",
        epochs.accepted_epoch, epochs.current_epoch
    );
    let checksum = crc32c::crc32c(body.as_bytes());
    format!("{body}checksum={checksum:08x}\n")
}

/// Parses the file's bytes; Err says what is wrong.
pub fn decode(bytes: &[u8]) -> Result<Epochs, String> {
    if bytes.len() > FILE_BYTES_MAX {
        return Err(format!(
            "{} bytes, longer than the format allows",
            bytes.len()
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not ASCII text".to_string())?;
    let checksum_at = text
        .find("checksum=")
        .ok_or_else(|| "no checksum line".to_string())?;
    let (body, checksum_line) = text.split_at(checksum_at);
    let written = checksum_line
        .strip_prefix("checksum=")
        .and_then(|rest| rest.strip_suffix('\n'))
        .filter(|hex| hex.len() == 8)
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or_else(|| "malformed checksum line".to_string())?;
    let computed = crc32c::crc32c(body.as_bytes());
    if written != computed {
        return Err(format!(
            "checksum mismatch (file says {written:08x}, contents give {computed:08x})"
        ));
    }
    let lines: Vec<&str> = body.split_terminator('\n').collect();
    let [title, accepted, current, leader] = lines.as_slice() else {
        return Err(format!(
            "{} lines before the checksum, expected 4",
            lines.len()
        ));
    };
    if *title != TITLE {
        return Err(format!("first line is {title:?}, expected {TITLE:?}"));
    }
    let value = |line: &str, key: &str| -> Result<String, String> {
        line.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::to_string)
            .ok_or_else(|| format!("expected a {key}= line, found {line:?}"))
    };
    let epoch = |line: &str, key: &str| -> Result<u32, String> {
        let raw = value(line, key)?;
        raw.parse::<u32>()
            .map_err(|_| format!("{key}={raw:?} is not an epoch"))
    };
    let accepted_epoch = epoch(accepted, "acceptedEpoch")?;
    let current_epoch = epoch(current, "currentEpoch")?;
    let raw_leader = value(leader, "acceptedLeader")?;
    let accepted_leader = match raw_leader.as_str() {
        "none" => None,
        raw => Some(
            raw.parse::<u64>()
                .map_err(|_| format!("acceptedLeader={raw:?} is not a server id"))?,
        ),
    };
    let epochs = Epochs {
        accepted_epoch,
        accepted_leader,
        current_epoch,
    };
    check(&epochs)?;
    Ok(epochs)
}

/// ZAB's invariant: a server only adopts (current) an epoch it has accepted.
fn check(epochs: &Epochs) -> Result<(), String> {
    if epochs.current_epoch > epochs.accepted_epoch {
        return Err(format!(
            "current epoch {} is above accepted epoch {}",
            epochs.current_epoch, epochs.accepted_epoch
        ));
    }
    Ok(())
}

/// Reads `data_dir/quorum-epochs`. A missing file gives `Epochs::default()`; a damaged one
/// is an `InvalidData` error naming the file and the damage.
pub fn load(storage: &dyn Storage, data_dir: &Path) -> io::Result<Epochs> {
    let path = data_dir.join(EPOCHS_FILE);
    let bytes = match storage.read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Epochs::default()),
        Err(error) => return Err(error),
    };
    decode(&bytes).map_err(|reason| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is damaged: {reason}; refusing to guess the epochs this server promised \
                 (restore the file or remove it to rejoin as a new member)",
                path.display()
            ),
        )
    })
}

/// Writes `epochs` durably: when this returns Ok, a crash leaves exactly these epochs.
pub fn save(storage: &dyn Storage, data_dir: &Path, epochs: &Epochs) -> io::Result<()> {
    check(epochs).map_err(|reason| io::Error::new(io::ErrorKind::InvalidInput, reason))?;
    let temporary = data_dir.join(TEMPORARY_FILE);
    // A temp file left by a crash is garbage: nothing reads it.
    let _ = storage.remove(&temporary);
    let mut file = storage.create(&temporary, 0)?;
    file.write_at(0, encode(epochs).as_bytes())?;
    file.sync_data()?;
    drop(file);
    storage.rename(&temporary, &data_dir.join(EPOCHS_FILE))?;
    storage.sync_dir(data_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sim::SimDisk;

    const DIR: &str = "/data";

    fn epochs(accepted: u32, current: u32, leader: Option<u64>) -> Epochs {
        Epochs {
            accepted_epoch: accepted,
            accepted_leader: leader,
            current_epoch: current,
        }
    }

    #[test]
    fn format_is_the_documented_text() {
        let text = encode(&epochs(7, 6, Some(3)));
        let body =
            "# ringkeeper quorum epochs\nacceptedEpoch=7\ncurrentEpoch=6\nacceptedLeader=3\n";
        assert_eq!(
            text,
            format!("{body}checksum={:08x}\n", crc32c::crc32c(body.as_bytes()))
        );
        assert!(encode(&Epochs::default()).contains("acceptedLeader=none\n"));
    }

    #[test]
    fn every_value_round_trips() {
        for value in [
            Epochs::default(),
            epochs(1, 0, Some(1)),
            epochs(u32::MAX, u32::MAX, Some(u64::MAX)),
            epochs(9, 9, None),
        ] {
            assert_eq!(decode(encode(&value).as_bytes()), Ok(value));
        }
    }

    #[test]
    fn missing_file_is_the_default() {
        let disk = SimDisk::new(1);
        let loaded = load(&disk, Path::new(DIR));
        assert_eq!(loaded.ok(), Some(Epochs::default()));
    }

    #[test]
    fn saved_epochs_survive_a_crash() {
        let disk = SimDisk::new(1);
        let dir = Path::new(DIR);
        let value = epochs(4, 3, Some(2));
        assert!(save(&disk, dir, &value).is_ok());
        disk.crash();
        assert_eq!(load(&disk, dir).ok(), Some(value));
    }

    #[test]
    fn damaged_file_is_an_error_not_the_default() {
        let good = encode(&epochs(4, 3, Some(2))).into_bytes();
        let mut cases: Vec<Vec<u8>> = vec![Vec::new(), b"garbage".to_vec()];
        // Every single-byte change and every truncation is detected.
        for index in 0..good.len() {
            let mut flipped = good.clone();
            flipped[index] ^= 0x01;
            cases.push(flipped);
            cases.push(good[..index].to_vec());
        }
        // A consistent checksum over a broken invariant is refused too.
        let body =
            "# ringkeeper quorum epochs\nacceptedEpoch=1\ncurrentEpoch=2\nacceptedLeader=none\n";
        cases
            .push(format!("{body}checksum={:08x}\n", crc32c::crc32c(body.as_bytes())).into_bytes());
        let disk = SimDisk::new(1);
        let dir = Path::new(DIR);
        for case in cases {
            let path = dir.join(EPOCHS_FILE);
            let _ = disk.remove(&path);
            let mut file = disk
                .create(&path, 0)
                .unwrap_or_else(|error| panic!("{error}"));
            assert!(file.write_at(0, &case).is_ok());
            let error = load(&disk, dir).err();
            assert_eq!(
                error.as_ref().map(io::Error::kind),
                Some(io::ErrorKind::InvalidData),
                "{:?} must be refused",
                String::from_utf8_lossy(&case)
            );
            assert!(error.is_some_and(|error| error.to_string().contains(EPOCHS_FILE)));
        }
    }

    #[test]
    fn saving_a_broken_invariant_is_refused() {
        let disk = SimDisk::new(1);
        assert!(save(&disk, Path::new(DIR), &epochs(1, 2, None)).is_err());
    }

    /// ZooKeeper's guarantee for `acceptedEpoch`/`currentEpoch`: a crash at any point of a
    /// save leaves the old or the new value, never a mix and never nothing.
    #[test]
    fn crash_at_every_step_of_a_save_keeps_old_or_new() {
        let old = epochs(4, 3, Some(2));
        let new = epochs(5, 4, Some(1));
        for torn in [false, true] {
            let mut operations = 0;
            loop {
                let disk = SimDisk::new(operations + 1);
                disk.set_torn_writes(torn);
                let dir = Path::new(DIR);
                assert!(save(&disk, dir, &old).is_ok());
                disk.fail_after_operations(Some(operations));
                let finished = save(&disk, dir, &new).is_ok();
                disk.fail_after_operations(None);
                disk.crash();
                let loaded = load(&disk, dir)
                    .unwrap_or_else(|error| panic!("after {operations} operations: {error}"));
                if finished {
                    assert_eq!(loaded, new, "a completed save is durable");
                    break;
                }
                assert!(
                    loaded == old || loaded == new,
                    "after {operations} operations: {loaded:?}"
                );
                // A later save after the crash still works (the stale temp file is replaced).
                assert!(save(&disk, dir, &new).is_ok());
                disk.crash();
                assert_eq!(load(&disk, dir).ok(), Some(new));
                operations += 1;
            }
            assert!(operations >= 4, "the save has several steps");
        }
    }
}
