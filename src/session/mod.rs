//! [pure] The session table and its expiry queue, owned by the pipeline (the session owner
//! of DESIGN.md). Time is an input: every method that needs the clock takes `now_ms`.
//!
//! Expiry follows ZooKeeper's `ExpiryQueue`: a session's deadline is rounded up to the next
//! multiple of the tick, so sessions expire in batches once per tick, and any packet from the
//! client moves the deadline forward (SessionTrackerImpl.touchSession).
//!
//! A session's password is not stored: it is the first 16 bytes of SHA-1(secret ‖ session id,
//! big-endian), recomputed from the id whenever a session is created or recovered, and sent in
//! every ConnectResponse (ZooKeeperServer.generatePasswd does the same with a fixed
//! `superSecret`). In an ensemble a client may resume its session on any member, so every member
//! must derive the same password: the secret is a constant that depends on nothing in the
//! member's configuration (see [`ENSEMBLE_SECRET`] for why, and why that is as safe as
//! ZooKeeper). A standalone server keeps a random secret of its own in its dataDir.
//! [`SessionSecrets::accepted`] lets a server also accept passwords of an earlier derivation,
//! so clients holding one keep their sessions across an upgrade; the reply to such a resume
//! carries the current password, which the client uses from then on.

use std::collections::{BTreeMap, HashMap, HashSet};

/// Where a session's current connection lives: the core that accepted it and its id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnRef {
    pub core: usize,
    pub conn_id: u64,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub timeout_ms: i32,
    pub password: [u8; 16],
    pub owner: Option<ConnRef>,
    deadline_ms: i64,
    /// Set once a closeSession is prepped, so no further request of it is accepted.
    pub closing: bool,
}

#[derive(Debug)]
pub struct SessionTable {
    sessions: HashMap<i64, Session>,
    buckets: BTreeMap<i64, HashSet<i64>>,
    tick_ms: i64,
    next_session_id: i64,
    secrets: SessionSecrets,
}

/// The secret every member of an ensemble derives session passwords from:
/// SHA-1("ringkeeper ensemble session secret v2")[..16], a constant of the program.
///
/// Why a constant and not something from zoo.cfg: whatever a member reads from its own
/// configuration (hosts, ports, even server ids and roles) can be written differently on
/// another member (NAT, containers and Kubernetes list a server as `0.0.0.0` in its own file
/// and reach the others through proxies), and changes on a rolling membership change, and then
/// a moved session is refused with a password mismatch — a spurious expiry. None of it is
/// secret either: server ids are small integers and the server lines are in every member's
/// file. ZooKeeper derives its passwords from the session id and a fixed constant
/// (ZooKeeperServer.generatePasswd seeds a java.util.Random with `id ^ superSecret`; its
/// comment: "more of a checksum that's used in reconnection, which carries no security
/// weight"), so in both servers a password is exactly as secret as its session id. The session id is not a secret (it is every
/// ephemeral's `ephemeralOwner`, and `cons`/`dump` list it): the password guards against a
/// client resuming a session it did not mean to (a stale or mistyped id), not against an
/// attacker; authentication is per connection (addAuthInfo, SASL) and ACLs are what protect
/// data, and a resumed session carries none of its old connection's authentication.
pub const ENSEMBLE_SECRET: [u8; 16] = [
    0xc2, 0x3e, 0x3d, 0xd0, 0x59, 0xf9, 0x10, 0xbf, 0x71, 0xa6, 0xcf, 0x80, 0xe6, 0x34, 0xad, 0xb6,
];

/// The secret passwords are derived from, and earlier secrets whose passwords are still
/// accepted when a session is resumed (the derivation an older version of the server used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSecrets {
    pub current: [u8; 16],
    pub accepted: Vec<[u8; 16]>,
    /// Also accept the password Apache ZooKeeper derived for the session
    /// (`zkformat::password`): set on a server whose state was imported from ZooKeeper's files,
    /// so that ZooKeeper's clients resume their sessions.
    pub zookeeper_passwords: bool,
    /// Give new sessions the password Apache ZooKeeper derives (and accept it): set on a
    /// member of a ZooKeeper ensemble (`quorum.protocol=zookeeper`), where a session created
    /// through this server resumes on a Java member, which checks ZooKeeper's derivation.
    pub issue_zookeeper_passwords: bool,
}

impl SessionSecrets {
    /// One secret, no earlier ones.
    pub fn only(current: [u8; 16]) -> SessionSecrets {
        SessionSecrets {
            current,
            accepted: Vec::new(),
            zookeeper_passwords: false,
            issue_zookeeper_passwords: false,
        }
    }
}

/// The password of `session_id` under `secret`: SHA-1(secret ‖ id big-endian)[..16].
pub fn password_with(secret: &[u8; 16], session_id: i64) -> [u8; 16] {
    use sha1::{Digest, Sha1};
    let mut hasher = Sha1::new();
    hasher.update(secret);
    hasher.update(session_id.to_be_bytes());
    let digest = hasher.finalize();
    let mut password = [0u8; 16];
    password.copy_from_slice(&digest[..16]);
    password
}

/// Why a reconnect with a session id was refused; the client then sees an expired session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeError {
    Unknown,
    BadPassword,
    Closing,
}

impl SessionTable {
    /// `server_id` goes into the top byte of session ids (SessionTrackerImpl.initializeNextSession),
    /// the clock into the next 40 bits, so ids do not repeat across restarts.
    pub fn new(tick_ms: i64, server_id: u8, now_ms: i64, secrets: SessionSecrets) -> SessionTable {
        let base = ((now_ms << 24) as u64 >> 8) as i64;
        SessionTable {
            sessions: HashMap::new(),
            buckets: BTreeMap::new(),
            tick_ms: tick_ms.max(1),
            next_session_id: base | ((server_id as i64) << 56),
            secrets,
        }
    }

    fn bucket_of(&self, deadline_ms: i64) -> i64 {
        (deadline_ms / self.tick_ms + 1) * self.tick_ms
    }

    /// The password of a session: a keyed hash of its id, so it can be recomputed after a
    /// restart without storing it, and cannot be guessed without the server's secret.
    pub fn password_for(&self, session_id: i64) -> [u8; 16] {
        if self.secrets.issue_zookeeper_passwords {
            return crate::zkformat::password::zookeeper_password(session_id);
        }
        password_with(&self.secrets.current, session_id)
    }

    /// Whether `password` is the session's: its current password or one derived from an
    /// earlier secret still accepted.
    fn password_matches(&self, session: &Session, password: &[u8]) -> bool {
        session.password[..] == *password
            || self
                .secrets
                .accepted
                .iter()
                .any(|secret| password_with(secret, session.id)[..] == *password)
            || ((self.secrets.zookeeper_passwords || self.secrets.issue_zookeeper_passwords)
                && crate::zkformat::password::zookeeper_password(session.id)[..] == *password)
    }

    pub fn next_id(&mut self) -> i64 {
        let id = self.next_session_id;
        self.next_session_id = self.next_session_id.wrapping_add(1);
        id
    }

    /// Registers a session created by a createSession transaction.
    pub fn add(&mut self, id: i64, timeout_ms: i32, owner: Option<ConnRef>, now_ms: i64) {
        let password = self.password_for(id);
        let deadline_ms = self.bucket_of(now_ms + timeout_ms as i64);
        self.buckets.entry(deadline_ms).or_default().insert(id);
        self.sessions.insert(
            id,
            Session {
                id,
                timeout_ms,
                password,
                owner,
                deadline_ms,
                closing: false,
            },
        );
    }

    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// Moves a session's deadline forward; false if it is gone or closing.
    pub fn touch(&mut self, id: i64, now_ms: i64) -> bool {
        let tick_ms = self.tick_ms;
        let Some(session) = self.sessions.get_mut(&id) else {
            return false;
        };
        if session.closing {
            return false;
        }
        let deadline_ms = (now_ms + session.timeout_ms as i64) / tick_ms * tick_ms + tick_ms;
        if deadline_ms > session.deadline_ms {
            if let Some(bucket) = self.buckets.get_mut(&session.deadline_ms) {
                bucket.remove(&id);
                if bucket.is_empty() {
                    self.buckets.remove(&session.deadline_ms);
                }
            }
            session.deadline_ms = deadline_ms;
            self.buckets.entry(deadline_ms).or_default().insert(id);
        }
        true
    }

    /// Re-attaches a session to a new connection (ZooKeeperServer.processConnectRequest and
    /// reopenSession). The session's current connection is taken away first, whether or not
    /// the password then matches, as ZooKeeper closes it before it checks the password; it is
    /// returned in both cases so the caller can close it.
    pub fn resume(
        &mut self,
        id: i64,
        password: &[u8],
        owner: ConnRef,
        now_ms: i64,
    ) -> (Option<ConnRef>, Result<(), ResumeError>) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return (None, Err(ResumeError::Unknown));
        };
        let previous = session.owner.take().filter(|previous| *previous != owner);
        if session.closing {
            return (previous, Err(ResumeError::Closing));
        }
        let session = &self.sessions[&id];
        if !self.password_matches(session, password) {
            return (previous, Err(ResumeError::BadPassword));
        }
        if let Some(session) = self.sessions.get_mut(&id) {
            session.owner = Some(owner);
        }
        self.touch(id, now_ms);
        (previous, Ok(()))
    }

    /// Forgets the connection of a session whose connection closed; the session lives on
    /// until it expires or is resumed elsewhere.
    pub fn detach(&mut self, id: i64, conn: ConnRef) {
        if let Some(session) = self.sessions.get_mut(&id) {
            if session.owner == Some(conn) {
                session.owner = None;
            }
        }
    }

    pub fn set_closing(&mut self, id: i64) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.closing = true;
        }
    }

    /// Undoes `set_closing` (or an expiry) whose closeSession was never proposed: the session
    /// lives on with a full timeout from `now_ms`, as every session does under a new leader.
    pub fn reopen(&mut self, id: i64, now_ms: i64) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.closing = false;
        }
        self.touch(id, now_ms);
    }

    /// Removes a session (after its closeSession transaction is applied).
    pub fn remove(&mut self, id: i64) -> Option<Session> {
        let session = self.sessions.remove(&id)?;
        if let Some(bucket) = self.buckets.get_mut(&session.deadline_ms) {
            bucket.remove(&id);
            if bucket.is_empty() {
                self.buckets.remove(&session.deadline_ms);
            }
        }
        Some(session)
    }

    /// Forgets every session (a member's local sessions, when it stops serving).
    pub fn clear(&mut self) {
        self.sessions.clear();
        self.buckets.clear();
    }

    /// Sessions whose deadline has passed and that are not already closing. They are marked
    /// closing; the caller issues their closeSession transactions.
    pub fn expire(&mut self, now_ms: i64) -> Vec<i64> {
        let due: Vec<i64> = self
            .buckets
            .range(..=now_ms)
            .map(|(deadline, _)| *deadline)
            .collect();
        let mut expired = Vec::new();
        for deadline in due {
            if let Some(ids) = self.buckets.remove(&deadline) {
                for id in ids {
                    if let Some(session) = self.sessions.get_mut(&id) {
                        if !session.closing {
                            session.closing = true;
                            expired.push(id);
                        }
                    }
                }
            }
        }
        expired.sort();
        expired
    }

    /// Sessions grouped by deadline, earliest first, for `dump`.
    pub fn sets(&self) -> Vec<(i64, Vec<i64>)> {
        self.buckets
            .iter()
            .map(|(deadline, ids)| {
                let mut ids: Vec<i64> = ids.iter().copied().collect();
                ids.sort();
                (*deadline, ids)
            })
            .collect()
    }

    /// The next time `expire` could return something, for the driver's timer.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.buckets.keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONN: ConnRef = ConnRef {
        core: 0,
        conn_id: 1,
    };

    #[test]
    fn sessions_expire_at_the_tick_after_their_timeout() {
        let mut table = SessionTable::new(2000, 0, 1_000_000, SessionSecrets::only([7; 16]));
        let id = table.next_id();
        table.add(id, 4000, Some(CONN), 1_000_000);
        assert!(table.expire(1_004_000).is_empty());
        assert_eq!(table.next_deadline_ms(), Some(1_006_000));
        assert_eq!(table.expire(1_006_000), vec![id]);
        assert!(table.get(id).is_some_and(|s| s.closing));
        assert!(
            !table.touch(id, 1_006_000),
            "a closing session is not revived"
        );
    }

    #[test]
    fn touching_postpones_expiry() {
        let mut table = SessionTable::new(2000, 0, 0, SessionSecrets::only([7; 16]));
        let id = table.next_id();
        table.add(id, 4000, None, 0);
        assert!(table.touch(id, 3000));
        assert!(table.expire(6000).is_empty());
        assert_eq!(table.expire(8000), vec![id]);
    }

    #[test]
    fn resume_checks_the_password_and_returns_the_old_connection() {
        let mut table = SessionTable::new(2000, 0, 0, SessionSecrets::only([7; 16]));
        let id = table.next_id();
        table.add(id, 4000, Some(CONN), 0);
        let password = table.password_for(id);
        let other = ConnRef {
            core: 1,
            conn_id: 9,
        };
        // A wrong password still takes the session away from its connection.
        assert_eq!(
            table.resume(id, &[0; 16], other, 10),
            (Some(CONN), Err(ResumeError::BadPassword))
        );
        assert_eq!(table.resume(id, &password, other, 10), (None, Ok(())));
        assert_eq!(table.get(id).and_then(|s| s.owner), Some(other));
        assert_eq!(
            table.resume(id + 1, &password, other, 10),
            (None, Err(ResumeError::Unknown))
        );
    }

    #[test]
    fn the_ensemble_secret_is_the_documented_constant() {
        use sha1::{Digest, Sha1};
        let digest = Sha1::digest(b"ringkeeper ensemble session secret v2");
        assert_eq!(ENSEMBLE_SECRET[..], digest[..16]);
    }

    #[test]
    fn members_with_different_configurations_derive_the_same_password() {
        // Two members of one ensemble: the password one hands out is accepted by the other,
        // whatever their zoo.cfg files say (the secret comes from neither).
        let mut creator = SessionTable::new(2000, 1, 0, SessionSecrets::only(ENSEMBLE_SECRET));
        let mut other = SessionTable::new(2000, 2, 0, SessionSecrets::only(ENSEMBLE_SECRET));
        let id = creator.next_id();
        creator.add(id, 4000, Some(CONN), 0);
        other.add(id, 4000, None, 0);
        let password = creator.password_for(id);
        assert_eq!(other.resume(id, &password, CONN, 10), (None, Ok(())));
    }

    #[test]
    fn a_member_of_a_zookeeper_ensemble_gives_zookeepers_passwords() {
        // A Java member checks a resumed session's password with ZooKeeper's derivation, so a
        // session created through a ringkeeper member of a ZooKeeper ensemble must carry it.
        let secrets = SessionSecrets {
            issue_zookeeper_passwords: true,
            ..SessionSecrets::only(ENSEMBLE_SECRET)
        };
        let mut table = SessionTable::new(2000, 4, 0, secrets);
        let id = table.next_id();
        table.add(id, 4000, Some(CONN), 0);
        let password = crate::zkformat::password::zookeeper_password(id);
        assert_eq!(table.password_for(id), password);
        assert_eq!(table.resume(id, &password, CONN, 10), (None, Ok(())));
        let ringkeepers = password_with(&ENSEMBLE_SECRET, id);
        assert_eq!(
            table.resume(id, &ringkeepers, CONN, 10).1,
            Err(ResumeError::BadPassword)
        );
    }

    #[test]
    fn a_password_of_an_accepted_earlier_secret_resumes_the_session() {
        // The upgrade path: a client holding a password derived from the secret the server
        // used before keeps its session; a password of no known secret is still refused.
        let legacy = [9; 16];
        let mut table = SessionTable::new(
            2000,
            0,
            0,
            SessionSecrets {
                current: ENSEMBLE_SECRET,
                accepted: vec![legacy],
                zookeeper_passwords: false,
                issue_zookeeper_passwords: false,
            },
        );
        let id = table.next_id();
        table.add(id, 4000, None, 0);
        assert_ne!(password_with(&legacy, id), table.password_for(id));
        assert_eq!(
            table.resume(id, &password_with(&[8; 16], id), CONN, 10),
            (None, Err(ResumeError::BadPassword))
        );
        assert_eq!(
            table.resume(id, &password_with(&legacy, id), CONN, 10),
            (None, Ok(()))
        );
    }

    #[test]
    fn session_ids_carry_the_server_id_in_the_top_byte() {
        let mut table =
            SessionTable::new(2000, 3, 1_700_000_000_000, SessionSecrets::only([0; 16]));
        let first = table.next_id();
        assert_eq!(first >> 56, 3);
        assert_eq!(table.next_id(), first + 1);
    }
}
