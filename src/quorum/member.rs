//! [io] An ensemble member's links and disk, as the pipeline's ZAB shell uses them
//! ([`super::QuorumLinks`], [`super::QuorumDisk`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Sender;

use super::{QuorumDisk, QuorumLinks};
use crate::config::QuorumConfig;
use crate::session::{SessionSecrets, ENSEMBLE_SECRET};
use crate::snapshot::{ChunkOutcome, MappedSnapshot, SessionRecord, SnapshotReception};
use crate::storage::Storage;
use crate::tree::TreeVersion;
use crate::zab::{Epochs, Message, ServerId, Zxid};

use super::transport::{AcceptMode, LinkSecurity, Transport, TransportLimits};
use super::Wire;

/// Election notifications travel on the election port, everything else on the quorum port,
/// as in ZooKeeper.
pub struct TcpLinks {
    election: Transport,
    quorum: Transport,
}

impl TcpLinks {
    /// Listens on this server's election and quorum addresses and prepares links to every
    /// other member; what arrives goes to `inbound`.
    pub fn start(
        config: &QuorumConfig,
        limits: TransportLimits,
        inbound: Sender<(ServerId, Wire)>,
        closed: Sender<ServerId>,
        security: LinkSecurity,
    ) -> std::io::Result<TcpLinks> {
        let me = config.my_id;
        let Some(own) = config.servers.get(&me) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("myid {me} has no server.{me} line"),
            ));
        };
        let election_members: BTreeMap<ServerId, SocketAddr> = config
            .servers
            .iter()
            .map(|(id, server)| (*id, server.election_addr))
            .collect();
        let quorum_members: BTreeMap<ServerId, SocketAddr> = config
            .servers
            .iter()
            .map(|(id, server)| (*id, server.quorum_addr))
            .collect();
        // Both ports are secured alike: ZooKeeper's QuorumCnxManager (election) and
        // Leader/Learner (quorum) both use QuorumX509Util's sockets under sslQuorum and
        // authenticate with quorum.auth.* SASL.
        // With reconfig, each transport announces its own address in the handshake (a member
        // that does not know this server yet answers there).
        let announce = |address: SocketAddr| security.accept_joiners.then_some(address);
        let election = Transport::start_secured(
            "election",
            me,
            std::net::TcpListener::bind(own.election_addr)?,
            election_members,
            limits.clone(),
            inbound.clone(),
            LinkSecurity {
                announce: announce(own.election_addr),
                ..security.clone()
            },
        )?;
        let quorum = Transport::start_secured(
            "quorum",
            me,
            std::net::TcpListener::bind(own.quorum_addr)?,
            quorum_members,
            limits,
            inbound,
            LinkSecurity {
                announce: announce(own.quorum_addr),
                ..security
            },
        )?;
        // The leader–learner connection closing is what ZooKeeper's learners act on.
        quorum.notify_closed(closed);
        Ok(TcpLinks { election, quorum })
    }
}

impl QuorumLinks for TcpLinks {
    fn send(&self, to: ServerId, message: &Wire) -> bool {
        match message {
            Wire::Zab(Message::Notification(_) | Message::Config(_)) => {
                self.election.send(to, message)
            }
            _ => self.quorum.send(to, message),
        }
    }

    fn set_members(&self, members: &[(ServerId, SocketAddr, SocketAddr)], removed: &[ServerId]) {
        for &(id, election, quorum) in members {
            for (transport, address) in [(&self.election, election), (&self.quorum, quorum)] {
                if let Err(error) = transport.set_peer(id, address) {
                    tracing::warn!(peer = id, %address, %error, "cannot start a link to a new member");
                }
            }
        }
        for &id in removed {
            self.election.remove_peer(id);
            self.quorum.remove_peer(id);
        }
    }

    fn shutdown(self: Box<Self>) {
        let links = *self;
        links.election.shutdown();
        links.quorum.shutdown();
    }
}

/// The security of this member's quorum links from its configuration: `sslQuorum` and
/// `portUnification` with the `ssl.quorum.*` stores (read here, once; a bad store stops the
/// server at startup), and the quorum SASL settings `Config::load_security` read.
pub fn link_security(config: &crate::config::Config) -> Result<LinkSecurity, String> {
    let Some(quorum) = &config.quorum else {
        return Ok(LinkSecurity::default());
    };
    let tls = if config.ssl_quorum || config.quorum_port_unification {
        Some(Arc::new(
            crate::net::tls::QuorumTls::new(
                &config.quorum_tls,
                config.ssl_quorum_reload_cert_files,
            )
            .map_err(|error| error.to_string())?,
        ))
    } else {
        None
    };
    let accept = match (config.quorum_port_unification, config.ssl_quorum) {
        (true, _) => AcceptMode::Unified,
        (false, true) => AcceptMode::Tls,
        (false, false) => AcceptMode::Plain,
    };
    Ok(LinkSecurity {
        tls,
        dial_tls: config.ssl_quorum,
        accept,
        sasl: config.quorum_sasl.clone().map(Arc::new),
        hosts: quorum
            .servers
            .iter()
            .map(|(id, server)| (*id, server.host.clone()))
            .collect(),
        announce: None,
        accept_joiners: config.reconfig_enabled,
    })
}

/// The session password secrets of an ensemble member: every member derives passwords from
/// [`ENSEMBLE_SECRET`], which depends on nothing in its zoo.cfg, so a session moves to any
/// member whatever each member's `server.N` lines say about the others (see the constant for
/// why that is as safe as ZooKeeper). Passwords of the derivation used before (a hash of this
/// member's `server.N` lines, [`legacy_ensemble_secret`]) are still accepted on resume, so
/// clients holding one keep their sessions across an upgrade; the reply to that resume carries
/// the new password.
pub fn ensemble_secrets(config: &QuorumConfig) -> SessionSecrets {
    SessionSecrets {
        current: ENSEMBLE_SECRET,
        accepted: vec![legacy_ensemble_secret(config)],
        zookeeper_passwords: false,
        issue_zookeeper_passwords: false,
    }
}

/// The secret of ringkeeper up to and including 502bc7c: derived from every member's host and
/// ports as this member's configuration writes them, so members whose files spell the ensemble
/// differently disagreed on passwords. Kept only to accept the passwords it produced.
pub fn legacy_ensemble_secret(config: &QuorumConfig) -> [u8; 16] {
    use sha1::{Digest, Sha1};
    let mut hasher = Sha1::new();
    hasher.update(b"ringkeeper ensemble session secret\n");
    for (id, server) in &config.servers {
        hasher.update(
            format!(
                "server.{id}={}:{}:{}:{}\n",
                server.host,
                server.quorum_addr.port(),
                server.election_addr.port(),
                if server.observer {
                    "observer"
                } else {
                    "participant"
                }
            )
            .as_bytes(),
        );
    }
    let digest = hasher.finalize();
    let mut secret = [0u8; 16];
    secret.copy_from_slice(&digest[..16]);
    secret
}

/// The member's dataDir and dataLogDir.
pub struct MemberDisk {
    pub storage: Arc<dyn Storage>,
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    pub batch_bytes_max: usize,
    /// The snapshot a leader is streaming to this server, if any (one at a time: a learner
    /// syncs with one leader).
    pub reception: std::sync::Mutex<Option<SnapshotReception>>,
}

fn sessions_of(snapshot: &MappedSnapshot) -> Vec<(i64, i32)> {
    snapshot
        .sessions()
        .into_iter()
        .map(|record| (record.session_id, record.timeout_ms))
        .collect()
}

impl QuorumDisk for MemberDisk {
    fn save_epochs(&self, epochs: &Epochs) -> Result<(), String> {
        super::epochs::save(&*self.storage, &self.data_dir, epochs).map_err(|e| e.to_string())
    }

    fn encode_snapshot(
        &self,
        version: &TreeVersion,
        sessions: &[(i64, i32)],
    ) -> Result<Vec<u8>, String> {
        crate::snapshot::encode_snapshot(version, &SessionRecord::from_pairs(sessions))
            .map_err(|e| e.to_string())
    }

    fn install_snapshot(&self, bytes: &[u8]) -> Result<(TreeVersion, Vec<(i64, i32)>), String> {
        if bytes.len() == crate::snapshot::format::HEADER_BYTES {
            // The end of a stream of chunks: `bytes` is the real header.
            let reception = match self.reception.lock() {
                Ok(mut reception) => reception.take(),
                Err(_) => return Err("the snapshot reception state is poisoned".into()),
            };
            let Some(reception) = reception else {
                return Err("a streamed snapshot ended, but none was being received".into());
            };
            let snapshot = reception.finish(bytes).map_err(|e| e.to_string())?;
            let sessions = sessions_of(&snapshot);
            return Ok((TreeVersion::from_snapshot(Arc::new(snapshot)), sessions));
        }
        let path =
            crate::snapshot::install_snapshot(&self.data_dir, bytes).map_err(|e| e.to_string())?;
        let snapshot = MappedSnapshot::open(&path).map_err(|e| e.to_string())?;
        let sessions = sessions_of(&snapshot);
        Ok((TreeVersion::from_snapshot(Arc::new(snapshot)), sessions))
    }

    fn receive_snapshot_chunk(
        &self,
        conn: u64,
        zxid: Zxid,
        offset: u64,
        bytes: &[u8],
    ) -> Result<bool, String> {
        let Ok(mut reception) = self.reception.lock() else {
            return Err("the snapshot reception state is poisoned".into());
        };
        match SnapshotReception::chunk(&mut reception, &self.data_dir, conn, zxid, offset, bytes) {
            Ok(ChunkOutcome::Written(_)) => Ok(true),
            Ok(ChunkOutcome::Stale) => Ok(false),
            Err(error) => Err(error.to_string()),
        }
    }

    fn remove_snapshots_above(&self, zxid: Zxid) -> Result<(), String> {
        crate::snapshot::remove_snapshots_above(&self.data_dir, zxid)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn reload(&self, zxid: Zxid) -> Result<(TreeVersion, Vec<(i64, i32)>), String> {
        let loaded = crate::txnlog::load::load_state(
            &*self.storage,
            &self.data_dir,
            &self.log_dir,
            self.batch_bytes_max,
            Some(zxid),
        )?;
        Ok((loaded.tree, loaded.sessions.into_iter().collect()))
    }
}
