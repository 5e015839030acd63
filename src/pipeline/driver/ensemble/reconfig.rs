//! [io] The ensemble's configuration: what `/zookeeper/config` shows on every member, the
//! leader's view for the checks of a reconfig request, and the `zoo.cfg.dynamic.<version>`
//! file a configuration is kept in (ZooKeeper's QuorumPeer.setQuorumVerifier with
//! writeToDisk, QuorumPeerConfig.writeDynamicConfig / editStaticConfig).
//!
//! - **Version.** A configuration read from static `server.N` lines has version 0; the first
//!   leader to establish an epoch with it gives it the zxid of its NEWLEADER (epoch << 32),
//!   as ZooKeeper does since ZOOKEEPER-1783, and (with `reconfigEnabled`) sends it to each
//!   learner ahead of NEWLEADER ([`Wire::Config`]); a learner adopts the leader's
//!   configuration when it is newer than its own. Without reconfig each learner derives the
//!   same version from the epoch it serves in.
//! - **The znode.** A member that starts serving sets `/zookeeper/config` in its own tree
//!   (ZKDatabase.initConfigInZKDatabase): no transaction, no watch; mzxid is the version,
//!   version -1, ACL world:anyone READ.
//! - **On disk** (only with `reconfigEnabled=true`, so that a server without reconfig never
//!   rewrites its zoo.cfg): the membership goes to `<zoo.cfg>.dynamic.<hex version>`, and
//!   zoo.cfg is rewritten without its `server.`, `group`, `weight`, `peerType` lines (and
//!   `clientPort`/`clientPortAddress` when the member's own line has a client part) and with
//!   `dynamicConfigFile=` naming that file; the zoo.cfg from before the first rewrite is kept
//!   as `zoo.cfg.bak`. Both are written to a temporary file, fsynced and renamed.
//! - **The client port.** A configuration in force whose line for this member names another
//!   client address than the listeners have moves them there ([`ClientListeners`]), as
//!   QuorumPeer.processReconfig calls ServerCnxnFactory.reconfigure.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::dynamic::DynamicConfig;
use crate::pipeline::prep::{ReconfigGate, ReconfigView};

use super::*;

impl Pipeline {
    /// What prep needs for a reconfig request (None for any other request, and off the
    /// leader).
    pub(in crate::pipeline::driver) fn reconfig_view(
        &self,
        request: &Request,
    ) -> Option<ReconfigView> {
        if !matches!(request, Request::Reconfig(_)) {
            return None;
        }
        let ensemble = self.ensemble.as_ref()?;
        // A reconfig in this leader's initial history that has not committed yet (logged
        // under an earlier leader) is in progress too.
        let pending = ensemble
            .peer
            .pending_memberships()
            .last()
            .map(|membership| membership.version);
        Some(ReconfigView {
            active: ensemble.active_config.clone(),
            last_seen_version: pending.unwrap_or(ensemble.last_seen_version),
            synced: ensemble.peer.synced_participants(),
            next_zxid: ensemble.peer.last_zxid() + 1,
            standalone_enabled: self.config.standalone_enabled,
        })
    }

    pub(in crate::pipeline::driver) fn reconfig_gate<'a>(
        &self,
        view: Option<&'a ReconfigView>,
    ) -> ReconfigGate<'a> {
        if !self.config.reconfig_enabled {
            return ReconfigGate::Disabled;
        }
        match (self.ensemble.is_some(), view) {
            (false, _) => ReconfigGate::Standalone,
            (true, Some(view)) => ReconfigGate::Leader(view),
            // A learner forwards its writes; it never preps one.
            (true, None) => ReconfigGate::Disabled,
        }
    }

    /// The leader is about to send NEWLEADER of `epoch` to `to`: a configuration nobody has
    /// established yet takes the epoch's first zxid as its version, and the learner is told
    /// the leader's configuration first.
    pub(super) fn send_config_before_new_leader(&mut self, to: ServerId, epoch: u32) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        if ensemble.active_config.version == 0 {
            ensemble.active_config.version = crate::zab::make_zxid(epoch, 0);
            ensemble.last_seen_version = ensemble.active_config.version;
        }
        // Only with reconfig enabled: a member of an earlier ringkeeper release does not know
        // this message and closes the link (a rolling upgrade to this release must not
        // depend on it). Without it each learner takes the same epoch's first zxid itself.
        if !self.config.reconfig_enabled {
            return;
        }
        let message = Wire::Config {
            version: ensemble.active_config.version,
            text: ensemble.active_config.to_znode_text(),
        };
        ensemble.send(to, message);
    }

    /// A learner is told its leader's configuration (before NEWLEADER).
    pub(super) fn config_from_leader(&mut self, from: ServerId, version: i64, text: &str) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        if ensemble.leader_id() != Some(from) {
            return;
        }
        match DynamicConfig::from_znode_text(text) {
            Ok(mut config) => {
                config.version = version;
                ensemble.leader_config = Some(config);
            }
            Err(error) => {
                warn!("ignoring the configuration server {from} sent: {error:?}: {text:?}")
            }
        }
    }

    /// This member starts serving: the configuration in force is decided, kept on disk,
    /// and shown in `/zookeeper/config`.
    pub(super) fn install_config_on_serving(&mut self) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        if let Some(leader) = ensemble.leader_config.take() {
            if leader.version > ensemble.active_config.version {
                if leader.servers != ensemble.active_config.servers {
                    warn!(
                        "the leader's configuration (version {:#x}) differs from this server's (version {:#x}); taking the leader's for /zookeeper/config",
                        leader.version, ensemble.active_config.version
                    );
                }
                let previous = std::mem::replace(&mut ensemble.active_config, leader);
                let next = ensemble.active_config.clone();
                self.update_links(&previous, &next);
            }
        }
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        if ensemble.active_config.version == 0 {
            let epoch = ensemble.peer.epochs().current_epoch;
            ensemble.active_config.version = crate::zab::make_zxid(epoch, 0);
        }
        ensemble.last_seen_version = ensemble.active_config.version;
        let config = ensemble.active_config.clone();
        self.persist_config(&config);
        let mut tree = self.batch.tree().clone();
        if tree
            .set_config_node(
                config.to_znode_text().as_bytes(),
                config.version,
                wall_clock_ms(),
            )
            .is_none()
        {
            warn!("the tree has no /zookeeper/config; the configuration is not shown");
            return;
        }
        // A snapshot being written was cut before this change; rebasing on it would lose it.
        self.cancel_rebase();
        self.batch.replace_tree(tree);
        // A learner that missed the reconfig moving its client port while it was away learns
        // it from the leader here (ZooKeeper: processReconfig on NEWLEADER / UPTODATE).
        self.follow_own_client_address();
    }

    /// The client port's listeners go where this member's line in the configuration in force
    /// says, when that is another address (QuorumPeer.processReconfig ->
    /// ServerCnxnFactory.reconfigure). A bind that fails keeps the old listeners and says so
    /// loudly: ZooKeeper's NIOServerCnxnFactory has closed the old socket by then, and stays
    /// without a client port; this server keeps serving on the old one until a restart (which
    /// binds the address of the dynamic file) or a later configuration.
    fn follow_own_client_address(&mut self) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let from = ensemble.client_address;
        let Some(to) = ensemble
            .active_config
            .client_address_change(ensemble.me, from)
        else {
            return;
        };
        let version = ensemble.active_config.version;
        let Some(listeners) = self.client_listeners.as_ref() else {
            warn!("configuration {version:#x} moves the client port to {to}, but this pipeline has no listeners to move; still on {from}");
            return;
        };
        match listeners.move_to(from, to) {
            Ok(()) => {
                info!("configuration {version:#x}: clients are accepted on {to} and no longer on {from} (connections already open stay)");
                ensemble.client_address = to;
                self.stats
                    .moved_client_port
                    .store(to.port(), std::sync::atomic::Ordering::Relaxed);
            }
            Err(error) => error!(
                "configuration {version:#x} moves this server's client port to {to}, but it cannot listen there: {error}; STILL ACCEPTING CLIENTS ON {from}, not on {to}. Free {to} and restart this server, or reconfig its line back"
            ),
        }
    }
}

impl Pipeline {
    /// Everything up to `zxid` commits: a reconfig among it becomes the configuration in
    /// force on this member (QuorumPeer.processReconfig), with the reconfig's zxid as its
    /// version, and is kept on disk. Its transaction sets `/zookeeper/config` as it applies.
    pub(super) fn activate_committed_configs(&mut self, zxid: Zxid) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let after = ensemble.active_config.version;
        let committed: Vec<(Zxid, Vec<u8>)> = ensemble
            .proposed
            .range(after + 1..=zxid)
            .chain(ensemble.unapplied.range(after + 1..=zxid))
            .filter_map(|(at, record)| match &record.txn {
                Txn::Reconfig { data } => Some((*at, data.clone())),
                _ => None,
            })
            .collect();
        let activated = !committed.is_empty();
        for (at, data) in committed {
            let text = String::from_utf8_lossy(&data);
            let mut config = match DynamicConfig::from_znode_text(&text) {
                Ok(config) => config,
                Err(error) => {
                    warn!("committed reconfig at zxid {at:#x} does not parse ({error:?}); keeping the configuration in force");
                    continue;
                }
            };
            config.version = at;
            info!(
                "configuration version {at:#x} is in force: participants {:?}, observers {:?}",
                config.participants(),
                config.observers()
            );
            let mut previous = None;
            if let Some(ensemble) = self.ensemble.as_mut() {
                previous = Some(std::mem::replace(
                    &mut ensemble.active_config,
                    config.clone(),
                ));
                ensemble.last_seen_version = ensemble.last_seen_version.max(at);
            }
            if let Some(previous) = previous {
                self.update_links(&previous, &config);
            }
            let me = self.config.quorum.as_ref().map(|quorum| quorum.my_id);
            if me.is_some_and(|me| !config.servers.contains_key(&me)) {
                warn!(
                    "this server is not a member of configuration {at:#x}: it stops taking part and serves no client; restart it with a configuration that lists it to join again"
                );
            }
            self.persist_config(&config);
        }
        if activated {
            // Once per configuration put in force, not per commit: a move that failed is not
            // retried (and logged again) on every write.
            self.follow_own_client_address();
        }
    }

    /// The quorum links follow the membership: links to members `next` adds, none to those it
    /// removes (their connections close: a removed learner is not served any more).
    fn update_links(&mut self, previous: &DynamicConfig, next: &DynamicConfig) {
        let Some(ensemble) = self.ensemble.as_ref() else {
            return;
        };
        let me = ensemble.me;
        let members: Vec<(ServerId, std::net::SocketAddr, std::net::SocketAddr)> = next
            .servers
            .values()
            .filter(|server| server.id != me)
            .map(|server| (server.id, server.election_addr, server.quorum_addr))
            .collect();
        let removed: Vec<ServerId> = previous
            .servers
            .keys()
            .copied()
            .filter(|id| *id != me && !next.servers.contains_key(id))
            .collect();
        ensemble.links.set_members(&members, &[]);
        if let Some(ensemble) = self.ensemble.as_mut() {
            // Closed after this step's sends: the COMMIT or INFORM of the reconfig is how a
            // removed learner learns that it was removed.
            ensemble.links_to_close.extend(removed);
        }
    }

    /// Closes the links that a configuration put in force in this step removed.
    pub(super) fn close_removed_links(&mut self) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        if ensemble.links_to_close.is_empty() {
            return;
        }
        let removed = std::mem::take(&mut ensemble.links_to_close);
        info!("closing the quorum links to the servers the configuration removed: {removed:?}");
        ensemble.links.set_members(&[], &removed);
    }

    /// Keeps `config` on disk (with `reconfigEnabled`), once per version.
    fn persist_config(&mut self, config: &DynamicConfig) {
        let persisted = self
            .ensemble
            .as_ref()
            .is_some_and(|ensemble| ensemble.persisted_version == config.version);
        if persisted || !self.config.reconfig_enabled {
            return;
        }
        let me = self.config.quorum.as_ref().map(|quorum| quorum.my_id);
        if me.is_some_and(|me| !config.servers.contains_key(&me)) {
            // A configuration without this server (it was removed, or joins and the leader's
            // does not list it yet) would not start it again: the files stay as they are.
            return;
        }
        let Some(path) = self.config.config_path.clone() else {
            return;
        };
        match write_dynamic_config(&path, config, self.config.quorum.as_ref()) {
            Ok(written) => {
                info!(
                    "configuration version {:#x} written to {}",
                    config.version,
                    written.display()
                );
                if let Some(ensemble) = self.ensemble.as_mut() {
                    ensemble.persisted_version = config.version;
                }
            }
            Err(error) => warn!(
                "could not write configuration version {:#x} next to {}: {error}",
                config.version,
                path.display()
            ),
        }
    }
}

/// `<zoo.cfg>.dynamic.<hex>` (QuorumPeer.makeDynamicConfigFilename).
fn dynamic_file_path(static_path: &Path, version: i64) -> PathBuf {
    let mut name = static_path.as_os_str().to_os_string();
    name.push(format!(".dynamic.{version:x}"));
    PathBuf::from(name)
}

/// Writes `text` to `path` through a temporary file that is fsynced and renamed
/// (ZooKeeper's AtomicFileWritingIdiom).
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_os_string();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    if let Some(directory) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::File::open(directory)?.sync_all()?;
    }
    Ok(())
}

/// The zoo.cfg lines editStaticConfig leaves out.
fn moves_to_dynamic_file(key: &str, erase_client: bool) -> bool {
    key.starts_with("server.")
        || key.starts_with("group")
        || key.starts_with("weight")
        || key.starts_with("dynamicConfigFile")
        || key.starts_with("peerType")
        || (erase_client && key.starts_with("clientPort"))
}

/// The dynamic file of `config`, and zoo.cfg pointing at it. Returns the dynamic file's path.
fn write_dynamic_config(
    static_path: &Path,
    config: &DynamicConfig,
    quorum: Option<&crate::config::QuorumConfig>,
) -> std::io::Result<PathBuf> {
    let dynamic = dynamic_file_path(static_path, config.version);
    write_atomically(&dynamic, &config.to_dynamic_file_text())?;
    let static_text = std::fs::read_to_string(static_path)?;
    // needEraseClientInfoFromStaticConfig: this member's client address is in its line.
    let erase_client = quorum
        .and_then(|quorum| config.servers.get(&quorum.my_id))
        .is_some_and(|own| own.client_host.is_some());
    let mut had_server_lines = false;
    let mut edited = String::new();
    for line in static_text.lines() {
        let trimmed = line.trim();
        let key = trimmed
            .split_once('=')
            .or_else(|| trimmed.split_once(':'))
            .map(|(key, _)| key.trim());
        let comment = trimmed.starts_with('#') || trimmed.starts_with('!');
        if let Some(key) = key.filter(|_| !comment) {
            if moves_to_dynamic_file(key, erase_client) {
                had_server_lines |= key.starts_with("server.");
                continue;
            }
        }
        edited.push_str(line);
        edited.push('\n');
    }
    let absolute = std::fs::canonicalize(&dynamic).unwrap_or(dynamic.clone());
    edited.push_str(&format!("dynamicConfigFile={}\n", absolute.display()));
    if had_server_lines {
        // QuorumPeerConfig.backupOldConfig: the static configuration as first written.
        let mut backup = static_path.as_os_str().to_os_string();
        backup.push(".bak");
        write_atomically(Path::new(&backup), &static_text)?;
    }
    write_atomically(static_path, &edited)?;
    Ok(dynamic)
}
