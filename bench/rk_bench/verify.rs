//! [pure] Checks of every answer the generator receives. A failed check is a
//! `verification_error`; the run reports them and a run with any of them has no valid score.
//!
//! What ZooKeeper guarantees and is checked here (ZooKeeper Programmer's Guide, "Consistency
//! Guarantees"; standalone servers and leaders order reads after every acknowledged write):
//! - a read returns a value that was written, and never one older than the latest write that
//!   was acknowledged before the read was sent;
//! - a write's znode version is above every version acknowledged before it was sent;
//! - create returns the path asked for (non-sequential creates);
//! - Stat fields are consistent with the data and with each other;
//! - reply zxids never go backwards within a session, and replies come in request order.

use ringkeeper::jute::records::Stat;

use crate::value::{decode_value, Acked, ValueError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    Value(ValueError),
    /// A value with a sequence number that was never issued for that key.
    NeverWritten {
        seq: u64,
        issued: u64,
    },
    /// The read returned a version older than one acknowledged before it was sent.
    StaleRead {
        version: i32,
        acked_version: u32,
    },
    /// The version is the acknowledged one but the value is not what that write stored.
    WrongValueForVersion {
        version: i32,
        seq: u64,
        acked_seq: u32,
    },
    /// A write acknowledged with a version not above an earlier acknowledged one.
    VersionNotIncreasing {
        version: i32,
        acked_version: u32,
    },
    Stat(&'static str),
    CreatedPath {
        expected: String,
        actual: String,
    },
    Children(String),
    ZxidWentBack {
        previous: i64,
        reply: i64,
    },
    XidOrder {
        expected: i32,
        actual: i32,
    },
    Malformed(String),
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::Value(error) => write!(f, "{error}"),
            VerifyError::NeverWritten { seq, issued } => {
                write!(f, "value seq {seq} never written (issued < {issued})")
            }
            VerifyError::StaleRead {
                version,
                acked_version,
            } => write!(
                f,
                "stale read: version {version} older than acknowledged {acked_version}"
            ),
            VerifyError::WrongValueForVersion {
                version,
                seq,
                acked_seq,
            } => write!(
                f,
                "version {version} holds seq {seq}, the acknowledged write stored seq {acked_seq}"
            ),
            VerifyError::VersionNotIncreasing {
                version,
                acked_version,
            } => write!(
                f,
                "write acknowledged as version {version}, not above acknowledged {acked_version}"
            ),
            VerifyError::Stat(what) => write!(f, "insane stat: {what}"),
            VerifyError::CreatedPath { expected, actual } => {
                write!(f, "create of {expected} returned {actual}")
            }
            VerifyError::Children(what) => write!(f, "children: {what}"),
            VerifyError::ZxidWentBack { previous, reply } => {
                write!(f, "reply zxid {reply:#x} below earlier {previous:#x}")
            }
            VerifyError::XidOrder { expected, actual } => {
                write!(f, "reply xid {actual}, expected {expected}")
            }
            VerifyError::Malformed(what) => write!(f, "malformed reply: {what}"),
        }
    }
}

/// Consistency of a persistent, childless key's Stat with its data length.
pub fn check_key_stat(stat: &Stat, data_length: usize) -> Result<(), VerifyError> {
    if stat.data_length as i64 != data_length as i64 {
        return Err(VerifyError::Stat("dataLength differs from the data"));
    }
    check_stat_common(stat)?;
    if stat.num_children != 0 {
        return Err(VerifyError::Stat("numChildren of a leaf key"));
    }
    if stat.ephemeral_owner != 0 {
        return Err(VerifyError::Stat("ephemeralOwner of a persistent key"));
    }
    Ok(())
}

fn check_stat_common(stat: &Stat) -> Result<(), VerifyError> {
    if stat.version < 0 || stat.cversion < 0 || stat.aversion < 0 {
        return Err(VerifyError::Stat("negative version"));
    }
    if stat.czxid <= 0 || stat.mzxid < stat.czxid {
        return Err(VerifyError::Stat("mzxid below czxid or czxid not positive"));
    }
    if stat.pzxid < stat.czxid {
        return Err(VerifyError::Stat("pzxid below czxid"));
    }
    if stat.mtime < stat.ctime {
        return Err(VerifyError::Stat("mtime before ctime"));
    }
    Ok(())
}

/// A getData answer for `key`. `acked_at_send` is the latest acknowledged write when the read
/// was sent; `issued_now` is one past the highest sequence number issued when it came back.
pub fn check_get(
    key: u32,
    data: Option<&[u8]>,
    stat: &Stat,
    value_bytes: usize,
    acked_at_send: Acked,
    issued_now: u64,
) -> Result<u64, VerifyError> {
    let seq = decode_value(key, data, value_bytes).map_err(VerifyError::Value)?;
    if seq >= issued_now {
        return Err(VerifyError::NeverWritten {
            seq,
            issued: issued_now,
        });
    }
    check_key_stat(stat, value_bytes)?;
    if (stat.version as u32) < acked_at_send.version {
        return Err(VerifyError::StaleRead {
            version: stat.version,
            acked_version: acked_at_send.version,
        });
    }
    if stat.version as u32 == acked_at_send.version && seq != acked_at_send.seq as u64 {
        return Err(VerifyError::WrongValueForVersion {
            version: stat.version,
            seq,
            acked_seq: acked_at_send.seq,
        });
    }
    Ok(seq)
}

/// A setData answer: the new Stat of the key.
pub fn check_set(
    stat: &Stat,
    value_bytes: usize,
    acked_at_send: Acked,
    reply_zxid: i64,
) -> Result<(), VerifyError> {
    check_key_stat(stat, value_bytes)?;
    if stat.version as u32 <= acked_at_send.version {
        return Err(VerifyError::VersionNotIncreasing {
            version: stat.version,
            acked_version: acked_at_send.version,
        });
    }
    if reply_zxid > 0 && stat.mzxid > reply_zxid {
        return Err(VerifyError::Stat("mzxid above the reply's zxid"));
    }
    Ok(())
}

pub fn check_created_path(expected: &str, actual: &str) -> Result<(), VerifyError> {
    if expected != actual {
        return Err(VerifyError::CreatedPath {
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        });
    }
    Ok(())
}

/// The children of the key directory: exactly `k0 .. k{key_count-1}`, each once, any order.
/// `seen` is scratch space reused between calls.
pub fn check_key_children(
    children: &[String],
    key_count: usize,
    seen: &mut Vec<bool>,
) -> Result<(), VerifyError> {
    if children.len() != key_count {
        return Err(VerifyError::Children(format!(
            "{} children, expected {key_count}",
            children.len()
        )));
    }
    seen.clear();
    seen.resize(key_count, false);
    for child in children {
        let index = child
            .strip_prefix('k')
            .and_then(|digits| digits.parse::<usize>().ok())
            .filter(|index| *index < key_count)
            .ok_or_else(|| VerifyError::Children(format!("unexpected child {child:?}")))?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(VerifyError::Children(format!(
                "child {child:?} listed twice"
            )));
        }
    }
    Ok(())
}

/// Reply zxids of one session never decrease (ZooKeeper serves a session's requests in order
/// from a state at least as new as the last one it answered from).
pub fn check_zxid(previous: &mut i64, reply: i64) -> Result<(), VerifyError> {
    if reply < *previous {
        return Err(VerifyError::ZxidWentBack {
            previous: *previous,
            reply,
        });
    }
    *previous = reply;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::value_for;

    fn stat(version: i32, data_length: i32) -> Stat {
        Stat {
            czxid: 2,
            mzxid: 2 + version as i64,
            ctime: 10,
            mtime: 11,
            version,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            data_length,
            num_children: 0,
            pzxid: 2,
        }
    }

    const ACKED: Acked = Acked { version: 5, seq: 9 };

    #[test]
    fn read_of_the_acknowledged_write_passes() {
        let value = value_for(1, 9, 32);
        assert_eq!(
            check_get(1, Some(&value), &stat(5, 32), 32, ACKED, 12),
            Ok(9)
        );
    }

    #[test]
    fn read_of_a_newer_unacknowledged_write_passes() {
        // A write in flight when the read was sent may be visible: version 6, seq 11.
        let value = value_for(1, 11, 32);
        assert_eq!(
            check_get(1, Some(&value), &stat(6, 32), 32, ACKED, 12),
            Ok(11)
        );
    }

    #[test]
    fn stale_read_fails() {
        let value = value_for(1, 7, 32);
        assert_eq!(
            check_get(1, Some(&value), &stat(4, 32), 32, ACKED, 12),
            Err(VerifyError::StaleRead {
                version: 4,
                acked_version: 5
            })
        );
    }

    #[test]
    fn acknowledged_version_with_another_value_fails() {
        let value = value_for(1, 10, 32);
        assert!(matches!(
            check_get(1, Some(&value), &stat(5, 32), 32, ACKED, 12),
            Err(VerifyError::WrongValueForVersion { .. })
        ));
    }

    #[test]
    fn value_never_issued_fails() {
        let value = value_for(1, 12, 32);
        assert_eq!(
            check_get(1, Some(&value), &stat(7, 32), 32, ACKED, 12),
            Err(VerifyError::NeverWritten {
                seq: 12,
                issued: 12
            })
        );
    }

    #[test]
    fn garbage_data_and_bad_stats_fail() {
        assert!(matches!(
            check_get(1, Some(&[0xAB; 32]), &stat(5, 32), 32, ACKED, 12),
            Err(VerifyError::Value(_))
        ));
        let value = value_for(1, 9, 32);
        assert!(matches!(
            check_get(1, Some(&value), &stat(5, 31), 32, ACKED, 12),
            Err(VerifyError::Stat(_))
        ));
        let mut zeroed = stat(5, 32);
        zeroed.czxid = 0;
        assert!(matches!(
            check_get(1, Some(&value), &zeroed, 32, ACKED, 12),
            Err(VerifyError::Stat(_))
        ));
    }

    #[test]
    fn write_must_move_the_version_forward() {
        assert_eq!(check_set(&stat(6, 32), 32, ACKED, 100), Ok(()));
        assert!(matches!(
            check_set(&stat(5, 32), 32, ACKED, 100),
            Err(VerifyError::VersionNotIncreasing { .. })
        ));
        assert!(matches!(
            check_set(&stat(6, 32), 32, ACKED, 3),
            Err(VerifyError::Stat(_))
        ));
    }

    #[test]
    fn children_must_be_exactly_the_keys() {
        let mut seen = Vec::new();
        let keys: Vec<String> = ["k2", "k0", "k1"].iter().map(|s| s.to_string()).collect();
        assert_eq!(check_key_children(&keys, 3, &mut seen), Ok(()));
        let twice: Vec<String> = ["k2", "k2", "k1"].iter().map(|s| s.to_string()).collect();
        assert!(check_key_children(&twice, 3, &mut seen).is_err());
        let foreign: Vec<String> = ["k2", "x", "k1"].iter().map(|s| s.to_string()).collect();
        assert!(check_key_children(&foreign, 3, &mut seen).is_err());
        assert!(check_key_children(&keys[..2], 3, &mut seen).is_err());
        let out_of_range: Vec<String> = ["k2", "k3", "k1"].iter().map(|s| s.to_string()).collect();
        assert!(check_key_children(&out_of_range, 3, &mut seen).is_err());
    }

    #[test]
    fn created_path_and_zxid_order() {
        assert!(check_created_path("/a/b", "/a/b").is_ok());
        assert!(check_created_path("/a/b", "/a/c").is_err());
        let mut last = 5;
        assert!(check_zxid(&mut last, 5).is_ok());
        assert!(check_zxid(&mut last, 9).is_ok());
        assert_eq!(
            check_zxid(&mut last, 8),
            Err(VerifyError::ZxidWentBack {
                previous: 9,
                reply: 8
            })
        );
    }
}
