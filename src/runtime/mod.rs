//! [io] The thread-per-core runtime: one pinned glommio executor per core, each accepting
//! connections on the shared port (SO_REUSEPORT) and serving them; the pipeline on its own
//! thread; bounded waits for startup; SIGTERM and SIGINT for a clean stop. This is the only
//! module that names glommio's executor API.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};
use thiserror::Error;
use tracing::{info, warn};

use crate::config::Config;
use crate::fourlw::AdminHub;
use crate::metrics::ServerStats;
use crate::net::admin::admin_loop;
use crate::net::readiness::{self, nobody_listens_on, Listener, Readiness};
use crate::net::tls::ListenerKind;
use crate::net::{accept_loop, touch_report_interval, ConnectionCounts, CoreShared, CoreState};
use crate::pipeline::driver::{LogChannels, Pipeline, PipelineStart, QuorumStart, Snapshots};
use crate::pipeline::{CoreBatch, CorePresence, CoreReply, PipelineInput};
use crate::quorum::member::{MemberDisk, TcpLinks};
use crate::quorum::transport::TransportLimits;
use crate::session::SessionSecrets;
use crate::storage::direct::DirectStorage;
use crate::storage::{load_or_create_secret, DiskStorage, Storage};
use crate::txnlog::load::{load_state, LoadedState};
use crate::txnlog::writer::{LogWriter, WriterSettings};
use crate::zab::{DurableState, Peer};
use std::sync::atomic::Ordering;

/// Bounds of one group-commit batch: records and (approximate) bytes.
const LOG_BATCH_RECORDS_MAX: usize = 10_000;
const LOG_BATCH_BYTES_MAX: usize = 4 << 20;

/// io_uring memory each executor registers. glommio locks it, and hosts commonly allow only
/// 8 MiB of locked memory per process (`ulimit -l`); network I/O needs none of it.
const IO_MEMORY_BYTES: usize = 512 * 1024;

#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error("cannot start the executor of core {core}: {reason} (glommio needs io_uring and locked memory: check `ulimit -l`, at least {} KiB per core)", IO_MEMORY_BYTES / 1024 * 2)]
    Executor { core: usize, reason: String },
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: String, reason: String },
    #[error("core {0} did not start within 10 s")]
    StartTimeout(usize),
    #[error("storage: {0}")]
    Storage(String),
    #[error("TLS client port: {0}")]
    Tls(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The cores listen with SO_REUSEPORT, which would let a second server started on the same
/// client port (by mistake, under the same user) share it with the running one: clients
/// would be spread over two servers with two trees. ZooKeeper's bind fails with "Address
/// already in use" instead; so does this, when a server answers on the port.
///
/// The probe connects and sends `ruok`: a server answers (`imok`, or that the word is not
/// allowed). A connection that is accepted but never answered is not taken as a server: a
/// server that has just exited leaves its listening socket to the kernel's io_uring teardown
/// for a moment, and it accepts connections that nobody reads. A plain bind as the probe
/// would fail on the port's TIME_WAIT connections after a restart. What remains is the moment
/// between this check and the cores' binds.
///
/// Such a leftover listener is also waited for (within [`PORT_PROBE_BUDGET`]): SO_REUSEPORT
/// would share the port with it, and the kernel would hand it a part of the new connections,
/// which nobody ever reads and which are reset when it goes. A client reconnecting to a member
/// just restarted after a crash would land there; ZooKeeper's clients are refused instead
/// (its bind fails while the port is held), and try the next server. A bind with SO_REUSEADDR
/// and without SO_REUSEPORT tells: it fails while any socket listens on the port, and only
/// then (TIME_WAIT connections do not count).
fn refuse_a_port_in_use(config: &Config) -> Result<(), RuntimeError> {
    let mut target = config.client_address;
    if target.ip().is_unspecified() {
        target.set_ip(match target {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let deadline = std::time::Instant::now() + PORT_PROBE_BUDGET;
    while std::time::Instant::now() < deadline {
        if nobody_listens_on(config.client_address) {
            return Ok(());
        }
        let Ok(mut stream) = std::net::TcpStream::connect_timeout(&target, PORT_PROBE_REPLY) else {
            return Ok(()); // refused: nobody listens
        };
        if server_answers(&mut stream) {
            return Err(RuntimeError::Listen {
                address: config.client_address.to_string(),
                reason: "address already in use: another server answers on this port".into(),
            });
        }
        drop(stream);
        std::thread::sleep(PORT_PROBE_RETRY); // a socket on its way out: nothing to await
    }
    // The secure port cannot be asked `ruok` without a TLS client: any listener there that
    // does not go away within the budget is taken as a server.
    if let Some(secure) = config.secure_client_address {
        while !nobody_listens_on(secure) {
            if std::time::Instant::now() >= deadline {
                return Err(RuntimeError::Listen {
                    address: secure.to_string(),
                    reason: "address already in use".into(),
                });
            }
            std::thread::sleep(PORT_PROBE_RETRY); // a socket on its way out: nothing to await
        }
    }
    Ok(())
}

/// Whether something on `stream` answers `ruok` within [`PORT_PROBE_REPLY`].
fn server_answers(stream: &mut std::net::TcpStream) -> bool {
    use std::io::{Read, Write};
    if stream.set_read_timeout(Some(PORT_PROBE_REPLY)).is_err()
        || stream.write_all(b"ruok").is_err()
    {
        return false;
    }
    let mut reply = [0u8; 4];
    matches!(stream.read(&mut reply), Ok(read) if read > 0)
}

/// The client port's listeners as the pipeline moves them (a reconfig changed this member's
/// client address): the new address's sockets are bound here, one per core and all or none,
/// and each core's accept loop takes its socket over and closes its old listener.
struct MovableClientPort {
    cores: Vec<async_channel::Sender<socket2::Socket>>,
}

impl crate::pipeline::driver::ClientListeners for MovableClientPort {
    fn move_to(&self, from: std::net::SocketAddr, to: std::net::SocketAddr) -> std::io::Result<()> {
        let sockets = readiness::listening_sockets(to, self.cores.len(), from.port() == to.port())?;
        for (core, socket) in self.cores.iter().zip(sockets) {
            // Unbounded, and a core drops its receiver only when it stops: the server is
            // stopping then.
            if core.try_send(socket).is_err() {
                return Err(std::io::Error::other("a core has stopped"));
            }
        }
        Ok(())
    }
}

/// How long a stopping server waits for its client connections to be shut.
const CLOSE_CONNECTIONS_BUDGET: Duration = Duration::from_secs(1);
const CLOSE_CONNECTIONS_POLL: Duration = Duration::from_millis(2);

/// Closes every client connection before the process exits, as ZooKeeper's shutdown closes
/// its connections (ServerCnxnFactory.shutdown -> closeAll) before the JVM exits.
///
/// Leaving it to the exit is not enough: the io_uring requests in flight on a socket hold it
/// until the kernel has torn the rings down, 5-11 ms after the process has been reaped
/// (measured), so a client still sees its connection open after the server is gone. A client
/// that sends a request in that moment (go-zookeeper's TestDNSHostProviderReconnect: stop a
/// member, start it, create) loses it with "connection closed" instead of reconnecting first.
/// Each connection's write loop ends with shutdown(SHUT_WR), which sends the FIN whatever holds
/// the socket. The batches go after everything the pipeline sent, so replies it produced
/// before stopping are delivered first. Bounded: a client that never closes its side does not
/// hold the exit up for more than [`CLOSE_CONNECTIONS_BUDGET`].
fn close_client_connections(cores: &[async_channel::Sender<CoreBatch>], stats: &ServerStats) {
    for core in cores {
        let _ = core.try_send(CoreBatch {
            steps: Arc::new(Vec::new()),
            replies: vec![(
                0,
                CoreReply::CloseAll {
                    reason: "the server is shutting down",
                },
            )],
        });
    }
    let deadline = std::time::Instant::now() + CLOSE_CONNECTIONS_BUDGET;
    // The connection count is an atomic shared by the cores; nothing signals it reaching
    // zero, and this runs once, at exit.
    while stats.connections.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(CLOSE_CONNECTIONS_POLL);
    }
}

/// How long the check for a server already on the client port waits for an answer, between
/// retries, and in all.
const PORT_PROBE_REPLY: Duration = Duration::from_millis(100);
const PORT_PROBE_RETRY: Duration = Duration::from_millis(20);
const PORT_PROBE_BUDGET: Duration = Duration::from_secs(2);

/// Starts the server and blocks until SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<(), RuntimeError> {
    // The handlers are installed first: a SIGTERM that arrives while the server starts (the
    // client port may already answer) is taken once it serves, and stops it cleanly, rather
    // than killing it with the signal's default action.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGUSR1,
    ])?;
    refuse_a_port_in_use(&config)?;
    // The stores are read once, before anything starts: a bad key store stops the server
    // here rather than failing every handshake later.
    let tls_context = if config.uses_tls() {
        Some(
            crate::net::tls::build(&config)
                .map_err(|error| RuntimeError::Tls(error.to_string()))?,
        )
    } else {
        None
    };
    let link_security = crate::quorum::member::link_security(&config)
        .map_err(|error| RuntimeError::Tls(format!("quorum: {error}")))?;
    let config = Arc::new(config);
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cores = if config.cores == 0 {
        available
    } else {
        config.cores
    };
    for key in &config.unknown_keys {
        warn!("unknown configuration key {key:?} ignored");
    }
    for warning in &config.warnings {
        warn!("configuration: {warning}");
    }
    let stats = Arc::new(ServerStats::default());
    let (pipeline_sender, pipeline_receiver) = crossbeam_channel::unbounded();
    let mut batch_senders = Vec::with_capacity(cores);
    let mut batch_receivers = Vec::with_capacity(cores);
    let mut admin_senders = Vec::with_capacity(cores);
    let mut admin_receivers = Vec::with_capacity(cores);
    let mut move_senders = Vec::with_capacity(cores);
    let mut move_receivers = Vec::with_capacity(cores);
    for _ in 0..cores {
        let (sender, receiver) = async_channel::unbounded();
        move_senders.push(sender);
        move_receivers.push(receiver);
        let (sender, receiver) = async_channel::unbounded();
        batch_senders.push(sender);
        batch_receivers.push(receiver);
        let (sender, receiver) = async_channel::unbounded();
        admin_senders.push(sender);
        admin_receivers.push(receiver);
    }
    let admin = AdminHub {
        cores: admin_senders,
    };

    // Recovery: the log replayed onto the empty tree.
    let storage: Arc<dyn Storage> = Arc::new(DiskStorage);
    let started = std::time::Instant::now();
    let storage_error = |error: std::io::Error| RuntimeError::Storage(error.to_string());
    storage
        .create_dir_all(&config.data_dir)
        .map_err(storage_error)?;
    storage
        .create_dir_all(&config.data_log_dir)
        .map_err(storage_error)?;
    // Migration from Apache ZooKeeper: with no state of its own and ZooKeeper's version-2/
    // files present, ringkeeper loads them and writes its own snapshot of them first.
    let imported =
        crate::zkformat::import::import_at_startup(&config.data_dir, &config.data_log_dir)
            .map_err(RuntimeError::Storage)?;
    if let (Some(imported), Some(_)) = (&imported, &config.quorum) {
        crate::zkformat::import::write_quorum_epochs(&*storage, &config.data_dir, imported)
            .map_err(RuntimeError::Storage)?;
    }
    // Every member of an ensemble derives the same session passwords, from nothing in its
    // zoo.cfg: a session may resume on any of them.
    let mut secret = match &config.quorum {
        Some(quorum) => crate::quorum::member::ensemble_secrets(quorum),
        None => SessionSecrets::only(
            load_or_create_secret(&*storage, &config.data_dir).map_err(storage_error)?,
        ),
    };
    // Sessions imported from ZooKeeper resume with the password ZooKeeper gave them.
    secret.zookeeper_passwords = crate::zkformat::import::was_imported(&config.data_dir);
    // In a ZooKeeper ensemble a session may resume on a Java member: ZooKeeper's passwords.
    secret.issue_zookeeper_passwords = config.quorum.is_some()
        && config.quorum_protocol == crate::config::QuorumProtocol::Zookeeper;
    // The newest valid snapshot is the tree's base, mapped and read in place (an older one
    // is used when the newest fails validation), with the log after it replayed.
    let loaded = load_state(
        &*storage,
        &config.data_dir,
        &config.data_log_dir,
        LOG_BATCH_BYTES_MAX,
        None,
    )
    .map_err(RuntimeError::Storage)?;
    for repair in &loaded.repairs {
        warn!("log recovery: {repair}");
    }
    let quorum_state = match &config.quorum {
        Some(quorum) => {
            let mut zab_config = quorum.zab_config(u64::from(config.tick_time_ms));
            if let Some(counter_max) = config.zxid_counter_max {
                warn!("ringkeeper.zxidCounterMax={counter_max}: a new epoch every {counter_max} transactions");
                zab_config.counter_max = counter_max;
            }
            if config.quorum_protocol == crate::config::QuorumProtocol::Zookeeper {
                // A member of an ensemble on Apache ZooKeeper's wire: it follows, observes or
                // leads (quorum::zookeeper::lead) with ZooKeeper's servers, acknowledging
                // each proposal as ZooKeeper's leader counts them.
                zab_config.ack_each_proposal = true;
                zab_config.zookeeper_leader = true;
            }
            let epochs =
                crate::quorum::epochs::load(&*storage, &config.data_dir).map_err(storage_error)?;
            info!(
                "ensemble member {} of {} participants and {} observers; epochs {epochs:?}",
                quorum.my_id,
                zab_config.participants.len(),
                zab_config.observers.len()
            );
            let durable = DurableState::from_history(
                &loaded.records,
                loaded.snapshot_zxid,
                epochs,
                zab_config.history_limit,
            );
            Some((quorum.clone(), zab_config, durable))
        }
        None => None,
    };
    let LoadedState {
        tree,
        sessions,
        records,
        tail,
        ..
    } = loaded;
    info!(
        "recovered zxid {:#x} from {}: {} transactions replayed, {} sessions open, in {} ms",
        tree.zxid,
        config.data_log_dir.display(),
        records.len(),
        sessions.len(),
        started.elapsed().as_millis()
    );
    if !config.force_sync {
        warn!("forceSync=no: the transaction log is NOT synced; acknowledged writes can be lost on a crash or power failure");
    }
    let settings = WriterSettings {
        dir: config.data_log_dir.clone(),
        segment_bytes: config.log_segment_bytes,
        batch_bytes_max: LOG_BATCH_BYTES_MAX,
        batch_records_max: LOG_BATCH_RECORDS_MAX,
        force_sync: config.force_sync,
        fsync_warning: Duration::from_millis(config.fsync_warning_ms),
        prepare_spare_segments: true,
    };
    let (appends, append_receiver) = crossbeam_channel::unbounded();
    let (event_sender, events) = crossbeam_channel::unbounded();
    // The log writer gets a core of its own when the serving cores leave one free. Its files
    // are opened and written on its own thread.
    let writer_core = (cores < available).then_some(cores);
    let (opened_sender, opened) = std::sync::mpsc::channel::<Result<(), String>>();
    let writer_thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            if let Some(core) = writer_core {
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
            }
            match LogWriter::new(Arc::new(DirectStorage), settings, tail) {
                Ok(writer) => {
                    let _ = opened_sender.send(Ok(()));
                    writer.run(append_receiver, event_sender);
                }
                Err(error) => {
                    let _ = opened_sender.send(Err(error.to_string()));
                }
            }
        })?;
    match opened.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => return Err(RuntimeError::Storage(reason)),
        Err(_) => {
            return Err(RuntimeError::Storage(
                "the log writer did not start within 10 s".into(),
            ))
        }
    }

    let initial = Arc::new(tree.clone());
    let presence = Arc::new(CorePresence::new(cores, initial.clone()));
    let mut snapshots = Snapshots::new(
        config.data_dir.clone(),
        config.data_log_dir.clone(),
        config.snap_count,
        (config.purge_interval_hours > 0).then_some(config.snap_retain_count),
        initial.clone(),
        sessions.clone(),
    );
    if config.purge_interval_hours > 0 {
        snapshots.purge_every = Some(Duration::from_secs(config.purge_interval_hours * 3600));
    }
    let pipeline = Pipeline::new(
        config.clone(),
        stats.clone(),
        PipelineStart {
            tree,
            sessions: sessions.into_iter().collect(),
            secret,
            server_id: config
                .quorum
                .as_ref()
                .map_or(0, |quorum| quorum.my_id as u8),
        },
        batch_senders.clone(),
        Some(LogChannels { appends, events }),
        Some(snapshots),
    )
    .with_presence(presence.clone())
    .with_client_listeners(Box::new(MovableClientPort {
        cores: move_senders,
    }));
    let pipeline = match quorum_state {
        Some((quorum, zab_config, durable)) => {
            stats
                .quorum
                .quorum_size
                .store(zab_config.participants.len(), Ordering::Relaxed);
            let (inbound_sender, inbound) = crossbeam_channel::unbounded();
            let (closed_sender, closed) = crossbeam_channel::unbounded();
            let links: Box<dyn crate::quorum::QuorumLinks> = match config.quorum_protocol {
                crate::config::QuorumProtocol::Ringkeeper => Box::new(
                    TcpLinks::start(
                        &quorum,
                        TransportLimits::default(),
                        inbound_sender,
                        closed_sender,
                        link_security,
                    )
                    .map_err(|error| RuntimeError::Listen {
                        address: format!(
                            "the quorum and election ports of server.{}",
                            quorum.my_id
                        ),
                        reason: error.to_string(),
                    })?,
                ),
                crate::config::QuorumProtocol::Zookeeper
                    if link_security.tls.is_some() || link_security.sasl.is_some() =>
                {
                    // Plain sockets only so far: refuse rather than connect without the
                    // security the configuration asks for.
                    return Err(RuntimeError::Tls(
                        "quorum.protocol=zookeeper does not support sslQuorum, \
                         portUnification or quorum SASL yet"
                            .into(),
                    ));
                }
                crate::config::QuorumProtocol::Zookeeper => Box::new(
                    crate::quorum::zookeeper::links::ZkLinks::start(
                        &quorum,
                        zab_config.tick_ms,
                        config.max_session_timeout_ms,
                        inbound_sender,
                        closed_sender,
                    )
                    .map_err(|error| RuntimeError::Listen {
                        address: format!("the election port of server.{}", quorum.my_id),
                        reason: error.to_string(),
                    })?,
                ),
            };
            let tick_ms = zab_config.tick_ms;
            pipeline.with_ensemble(QuorumStart {
                peer: Peer::new(zab_config),
                durable,
                links,
                disk: Arc::new(MemberDisk {
                    storage: storage.clone(),
                    data_dir: config.data_dir.clone(),
                    log_dir: config.data_log_dir.clone(),
                    batch_bytes_max: LOG_BATCH_BYTES_MAX,
                    reception: Default::default(),
                }),
                inbound,
                closed,
                tick_ms,
            })
        }
        None => pipeline,
    };
    let pipeline_thread = std::thread::Builder::new()
        .name("pipeline".into())
        .spawn(move || pipeline.run(pipeline_receiver))?;

    let connection_counts = Arc::new(ConnectionCounts::default());
    let (ready_sender, ready_receiver) = std::sync::mpsc::channel::<Result<usize, RuntimeError>>();
    let mut executors = Vec::with_capacity(cores);
    for (core, ((batches, admin_queries), moves)) in batch_receivers
        .into_iter()
        .zip(admin_receivers)
        .zip(move_receivers)
        .enumerate()
    {
        let placement = if cores <= available {
            Placement::Fixed(core)
        } else {
            Placement::Unbound
        };
        let config = config.clone();
        let stats = stats.clone();
        let pipeline = pipeline_sender.clone();
        let initial = initial.clone();
        let connection_counts = connection_counts.clone();
        let admin = admin.clone();
        let presence = presence.clone();
        let ready = ready_sender.clone();
        let tls_context = tls_context.clone();
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("core-{core}"))
            .io_memory(IO_MEMORY_BYTES)
            .spawn(move || async move {
                let address = config.client_address;
                // The client port's sockets wait on this core's epoll instance, never on an
                // io_uring request, so that they close with the process (net/readiness.rs).
                let (listener, readiness) = match Readiness::new()
                    .and_then(|readiness| Ok((Listener::bind(&readiness, address)?, readiness)))
                {
                    Ok((listener, readiness)) => {
                        glommio::spawn_local(readiness::drive(readiness.clone())).detach();
                        (listener, readiness)
                    }
                    Err(error) => {
                        let _ = ready.send(Err(RuntimeError::Listen {
                            address: address.to_string(),
                            reason: error.to_string(),
                        }));
                        return;
                    }
                };
                let secure_listener = match config.secure_client_address {
                    Some(address) => match Listener::bind(&readiness, address) {
                        Ok(listener) => Some(listener),
                        Err(error) => {
                            let _ = ready.send(Err(RuntimeError::Listen {
                                address: address.to_string(),
                                reason: error.to_string(),
                            }));
                            return;
                        }
                    },
                    None => None,
                };
                let shared = CoreShared {
                    config: config.clone(),
                    stats,
                    pipeline,
                    connection_counts,
                    admin,
                    core_count: cores,
                    presence,
                };
                let state = Rc::new(CoreState::new(core, shared, initial, batches.clone()));
                let dispatcher_state = state.clone();
                glommio::spawn_local(async move {
                    while let Ok(batch) = batches.recv().await {
                        dispatcher_state.apply_batch(batch);
                    }
                })
                .detach();
                let reporter_state = state.clone();
                let interval = touch_report_interval(&config);
                glommio::spawn_local(async move {
                    loop {
                        glommio::timer::sleep(interval).await;
                        reporter_state.report_touches();
                    }
                })
                .detach();
                glommio::spawn_local(admin_loop(state.clone(), admin_queries)).detach();
                let (client_kind, secure_kind) = match tls_context {
                    Some(tls) if config.port_unification => (
                        ListenerKind::Unified(tls.clone()),
                        ListenerKind::Secure(tls),
                    ),
                    Some(tls) => (ListenerKind::Plain, ListenerKind::Secure(tls)),
                    None => (ListenerKind::Plain, ListenerKind::Plain),
                };
                if let Some(listener) = secure_listener {
                    glommio::spawn_local(accept_loop(state.clone(), listener, secure_kind, None))
                        .detach();
                }
                let _ = ready.send(Ok(core));
                // Only the client port moves with a reconfig (the `server.N` line's client
                // part); secureClientPort is not in it.
                accept_loop(state, listener, client_kind, Some(moves)).await;
            })
            .map_err(|error| RuntimeError::Executor {
                core,
                reason: error.to_string(),
            })?;
        executors.push(handle);
    }
    drop(ready_sender);
    for _ in 0..cores {
        match ready_receiver.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(RuntimeError::StartTimeout(cores)),
        }
    }
    crate::admin::start(Arc::new(crate::admin::AdminContext {
        config: config.clone(),
        stats: stats.clone(),
        hub: admin.clone(),
        presence: presence.clone(),
        pipeline: pipeline_sender.clone(),
        snapshot_limiter: std::sync::Mutex::new(crate::admin::commands::RateLimiter::new(
            1,
            std::time::Duration::from_micros(config.admin.rate_limiter_interval),
        )),
        restore_limiter: std::sync::Mutex::new(crate::admin::commands::RateLimiter::new(
            1,
            std::time::Duration::from_millis(config.admin.rate_limiter_interval),
        )),
    }))
    .map_err(|error| RuntimeError::Listen {
        address: error.address.to_string(),
        reason: format!("{} ({})", error.reason, error.what),
    })?;
    info!(
        "ringkeeper {} serving ZooKeeper clients on {} with {cores} cores (ZooKeeper {} semantics)",
        env!("CARGO_PKG_VERSION"),
        config.client_address,
        crate::fourlw::ZOOKEEPER_COMPAT_VERSION
    );
    if let Some(secure) = config.secure_client_address {
        info!("TLS clients on {secure} (secureClientPort)");
    }
    if config.port_unification {
        info!(
            "TLS and plaintext clients on {} (client.portUnification)",
            config.client_address
        );
    }

    for signal in signals.forever() {
        if signal == signal_hook::consts::SIGUSR1 {
            info!("SIGUSR1: taking a snapshot");
            let _ = pipeline_sender.send(PipelineInput::Snapshot);
            continue;
        }
        info!("signal {signal} received: shutting down");
        break;
    }
    let _ = pipeline_sender.send(PipelineInput::Shutdown);
    if pipeline_thread.join().is_err() {
        warn!("the pipeline thread panicked during shutdown");
    }
    if writer_thread.join().is_err() {
        warn!("the log writer thread panicked during shutdown");
    }
    close_client_connections(&batch_senders, &stats);
    info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_port_in_use_is_refused_before_anything_starts() {
        // A server on the port: answers whatever comes.
        let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = holder.local_addr().unwrap();
        let answering = holder.try_clone().unwrap();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for mut stream in answering.incoming().flatten() {
                let mut word = [0u8; 4];
                if stream.read_exact(&mut word).is_ok() {
                    let _ = stream.write_all(b"imok");
                }
            }
        });
        let scratch = tempfile::tempdir().unwrap();
        let config = Config {
            client_address: address,
            data_dir: scratch.path().join("data"),
            data_log_dir: scratch.path().join("data"),
            ..Config::default()
        };
        match run(config) {
            Err(RuntimeError::Listen {
                address: named,
                reason,
            }) => {
                assert_eq!(named, address.to_string());
                assert!(reason.contains("another server"), "{reason}");
            }
            other => panic!("a port in use was not refused: {other:?}"),
        }
        assert!(
            !scratch.path().join("data").exists(),
            "nothing was created before the refusal"
        );
        // A listener that accepts but never answers (a socket on its way out) is not a server.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_config = Config {
            client_address: silent.local_addr().unwrap(),
            ..Config::default()
        };
        assert!(refuse_a_port_in_use(&silent_config).is_ok());
        // Nobody on the port (and TIME_WAIT connections left on it): free.
        drop(silent);
        assert!(refuse_a_port_in_use(&silent_config).is_ok());
    }
}
