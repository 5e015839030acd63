//! [pure] The session password Apache ZooKeeper gives a session (ZooKeeperServer.generatePasswd):
//! 16 bytes of `new java.util.Random(sessionId ^ superSecret).nextBytes`, with the constant
//! `superSecret = 0xB3415C00`. A client that had a session on ZooKeeper holds this password;
//! a server that imported ZooKeeper's state accepts it, so the session resumes on ringkeeper
//! with its ephemerals, as it would across a ZooKeeper restart.

/// ZooKeeperServer.superSecret.
const SUPER_SECRET: i64 = 0xB341_5C00;

/// java.util.Random's linear congruential generator (its documented algorithm).
struct JavaRandom {
    seed: u64,
}

const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const ADDEND: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;

impl JavaRandom {
    fn new(seed: i64) -> JavaRandom {
        JavaRandom {
            seed: (seed as u64 ^ MULTIPLIER) & MASK,
        }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(MULTIPLIER).wrapping_add(ADDEND)) & MASK;
        (self.seed >> (48 - bits)) as i32
    }

    /// Random.nextBytes: each int gives up to four bytes, low byte first.
    fn next_bytes(&mut self, bytes: &mut [u8]) {
        let mut index = 0;
        while index < bytes.len() {
            let mut random = self.next(32);
            let count = (bytes.len() - index).min(4);
            for _ in 0..count {
                bytes[index] = random as u8;
                random >>= 8;
                index += 1;
            }
        }
    }
}

/// The password ZooKeeper generated for `session_id`.
pub fn zookeeper_password(session_id: i64) -> [u8; 16] {
    let mut password = [0u8; 16];
    JavaRandom::new(session_id ^ SUPER_SECRET).next_bytes(&mut password);
    password
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by the JDK on the development machine: `new java.util.Random(42)`'s
    /// first two nextInt(), and `generatePasswd(0x0123456789abcdef)` (Random(id ^
    /// 0xB3415C00L).nextBytes of 16 bytes, in hex).
    #[test]
    fn java_random_and_the_password_match_the_jdk() {
        let mut random = JavaRandom::new(42);
        assert_eq!(random.next(32), -1170105035);
        assert_eq!(random.next(32), 234785527);
        let password = zookeeper_password(0x0123_4567_89ab_cdef);
        let hex: String = password.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex, "f7cd1b8b3f946c477425d41be3f667c6");
    }
}
