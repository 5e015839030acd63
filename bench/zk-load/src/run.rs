//! [io] One run: setup (root, keys), sessions, warm-up, the measured window, drain, cleanup.
//!
//! Everything runs on one thread (a tokio current_thread runtime and a LocalSet), so the shared
//! counters are plain `Cell`s and `RefCell`s: no lock is taken on the request path of the
//! generator, and the window opens and closes between two operations of that thread, exactly
//! where the server CPU is read.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use zookeeper_client as zk;

use crate::cpu;
use crate::options::{Op, Options};
use crate::stats::{Kind, ProcessCpu, Report, Stats};

/// Bound on one connect (ConnectRequest until the session is established).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the replies still in flight after the window closes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one request of setup or cleanup.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a session's closeSession being answered.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in flight at once while creating and deleting the keys.
const SETUP_PARALLEL: usize = 256;
/// Pause of a slot after an error, so a failing server is not hammered in a tight loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

struct Shared {
    stats: RefCell<Stats>,
    recording: Cell<bool>,
    stopping: Cell<bool>,
    /// Sessions are being closed: state changes from here on are the run's own doing.
    closing: Cell<bool>,
    sessions_lost: Cell<u64>,
    /// Operations issued and not answered yet.
    in_flight: Cell<u64>,
}

/// splitmix64: a small, seeded generator for key choices (no dependency needed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The name of a client error's variant, for counting by kind ("ConnectionLoss", "NoNode").
fn error_kind(error: &zk::Error) -> String {
    let debug = format!("{error:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("Error")
        .to_string()
}

/// Errors after which the session cannot go on (the client library will not reconnect).
fn is_terminal(error: &zk::Error) -> bool {
    matches!(
        error,
        zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::AuthFailed
    )
}

async fn bounded<T>(
    what: &str,
    limit: Duration,
    future: impl std::future::Future<Output = Result<T, zk::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!("{what}: {error}")),
        Err(_) => Err(format!("{what}: no answer within {limit:?}")),
    }
}

async fn connect(server: SocketAddr, options: &Options) -> Result<zk::Client, String> {
    let connector = zk::Client::connector()
        .with_session_timeout(options.session_timeout)
        .with_connection_timeout(CONNECT_TIMEOUT);
    bounded(
        &format!("connect to {server}"),
        CONNECT_TIMEOUT,
        connector.connect(&server.to_string()),
    )
    .await
}

/// Drops the client (its last handle: the library then sends closeSession) and waits, bounded,
/// for the session to report Closed, so a run leaves no session for the server to expire later.
async fn close(client: zk::Client) {
    let mut watcher = client.state_watcher();
    drop(client);
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        for _ in 0..8 {
            if watcher.changed().await.is_terminated() {
                break;
            }
        }
    })
    .await;
}

fn key_path(root: &str, index: usize) -> String {
    format!("{root}/keys/k{index}")
}

/// The value every write stores: a fixed pattern, so a get can be checked byte for byte.
fn value_bytes(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Runs `work(i)` for i in 0..count with at most `parallel` at once; returns the errors.
async fn in_parallel<F, Fut>(count: usize, parallel: usize, work: F) -> Vec<String>
where
    F: Fn(usize) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + 'static,
{
    let lanes = parallel.min(count).max(1);
    let mut handles = Vec::with_capacity(lanes);
    for lane in 0..lanes {
        let work = work.clone();
        handles.push(tokio::task::spawn_local(async move {
            let mut errors = Vec::new();
            let mut i = lane;
            while i < count {
                if let Err(e) = work(i).await {
                    errors.push(e);
                }
                i += lanes;
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for handle in handles {
        match handle.await {
            Ok(mut e) => errors.append(&mut e),
            Err(e) => errors.push(format!("task failed: {e}")),
        }
    }
    errors
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

async fn setup(client: &zk::Client, options: &Options, value: Rc<[u8]>) -> Result<(), String> {
    let root = options.root.clone();
    for path in [root.clone(), format!("{root}/keys"), format!("{root}/c")] {
        match tokio::time::timeout(REQUEST_TIMEOUT, client.create(&path, b"", &persistent())).await
        {
            Ok(Ok(_)) => {}
            Ok(Err(zk::Error::NodeExists)) if path == root => {
                return Err(format!(
                    "{root} exists: a run needs a fresh root (--root, or delete it)"
                ))
            }
            Ok(Err(e)) => return Err(format!("create {path}: {e}")),
            Err(_) => {
                return Err(format!(
                    "create {path}: no answer within {REQUEST_TIMEOUT:?}"
                ))
            }
        }
    }
    let client = client.clone();
    let errors = in_parallel(options.znodes, SETUP_PARALLEL, move |i| {
        let client = client.clone();
        let path = key_path(&root, i);
        let value = value.clone();
        async move {
            bounded(
                &format!("create {path}"),
                REQUEST_TIMEOUT,
                client.create(&path, &value, &persistent()),
            )
            .await
            .map(|_| ())
        }
    })
    .await;
    match errors.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} of {} key creates failed, first: {first}",
            errors.len(),
            options.znodes
        )),
    }
}

/// A failed operation: an error reply (or a lost connection) or an answer that failed its check.
struct Failure {
    kind: String,
    detail: String,
    terminal: bool,
}

impl Failure {
    fn client(error: &zk::Error, detail: String) -> Failure {
        Failure {
            kind: error_kind(error),
            detail,
            terminal: is_terminal(error),
        }
    }

    fn check(kind: &str, detail: String) -> Failure {
        Failure {
            kind: kind.to_string(),
            detail,
            terminal: false,
        }
    }
}

/// What one load slot did: its session, slot number and how many znodes it created.
struct SlotEnd {
    session: usize,
    slot: usize,
    created: u64,
}

fn created_path(root: &str, session: usize, slot: usize, n: u64) -> String {
    format!("{root}/c/s{session}-{slot}-{n}")
}

/// One request slot of a session: issues the next operation as soon as the previous answer is
/// in, until the run stops. `inflight` slots per session keep that many requests outstanding.
#[allow(clippy::too_many_arguments)]
fn spawn_slot(
    shared: Rc<Shared>,
    client: zk::Client,
    options: Rc<Options>,
    keys: Rc<Vec<String>>,
    value: Rc<[u8]>,
    server: String,
    session: usize,
    slot: usize,
) -> JoinHandle<SlotEnd> {
    tokio::task::spawn_local(async move {
        let mut rng = Rng(options.seed ^ ((session as u64) << 24) ^ slot as u64);
        let mut created = 0u64;
        let create_options = persistent();
        while !shared.stopping.get() {
            let kind = match options.op {
                Op::Set => Kind::Set,
                Op::Create => Kind::Create,
                Op::Get => Kind::Get,
                Op::Mixed => {
                    if rng.below(100) < options.read_percent as usize {
                        Kind::Get
                    } else {
                        Kind::Set
                    }
                }
            };
            let started = Instant::now();
            shared.in_flight.set(shared.in_flight.get() + 1);
            // Every answer is checked: an error reply or an answer that is not what was written
            // is counted as an error and never as an operation.
            let outcome: Result<(), Failure> = match kind {
                Kind::Get => {
                    let key = &keys[rng.below(keys.len())];
                    match client.get_data(key).await {
                        Ok((data, stat)) => {
                            if data[..] != value[..] || stat.data_length as usize != value.len() {
                                Err(Failure::check(
                                    "WrongValue",
                                    format!(
                                        "get {key}: {} bytes, not the value written",
                                        data.len()
                                    ),
                                ))
                            } else {
                                Ok(())
                            }
                        }
                        Err(e) => Err(Failure::client(&e, format!("get {key}: {e}"))),
                    }
                }
                Kind::Set => {
                    let key = &keys[rng.below(keys.len())];
                    match client.set_data(key, &value, None).await {
                        Ok(stat) => {
                            if stat.version < 1 || stat.data_length as usize != value.len() {
                                Err(Failure::check(
                                    "WrongStat",
                                    format!("set {key}: stat {stat:?}"),
                                ))
                            } else {
                                Ok(())
                            }
                        }
                        Err(e) => Err(Failure::client(&e, format!("set {key}: {e}"))),
                    }
                }
                Kind::Create => {
                    let path = created_path(&options.root, session, slot, created);
                    created += 1;
                    match client.create(&path, &value, &create_options).await {
                        Ok((stat, _)) => {
                            if stat.czxid != stat.mzxid
                                || stat.version != 0
                                || stat.data_length as usize != value.len()
                            {
                                Err(Failure::check(
                                    "WrongStat",
                                    format!("create {path}: stat {stat:?}"),
                                ))
                            } else {
                                Ok(())
                            }
                        }
                        Err(e) => Err(Failure::client(&e, format!("create {path}: {e}"))),
                    }
                }
            };
            shared.in_flight.set(shared.in_flight.get() - 1);
            let finished = Instant::now();
            // Replies that arrive while the window is open are the ones counted (rk-bench's rule).
            let in_window = shared.recording.get();
            match outcome {
                Ok(()) => {
                    if in_window {
                        shared.stats.borrow_mut().record(kind, finished - started);
                    }
                }
                Err(failure) => {
                    shared.stats.borrow_mut().record_failed(finished - started);
                    shared.stats.borrow_mut().error(
                        &failure.kind,
                        Some(&server),
                        format!("session {session} slot {slot}: {}", failure.detail),
                        in_window,
                    );
                    if failure.terminal {
                        shared.sessions_lost.set(shared.sessions_lost.get() + 1);
                        break;
                    }
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            }
        }
        SlotEnd {
            session,
            slot,
            created,
        }
    })
}

fn read_server_cpu(pids: &[u32]) -> Result<Vec<Duration>, String> {
    pids.iter()
        .map(|pid| cpu::process_cpu(&pid.to_string()))
        .collect()
}

pub async fn run(options: Options) -> Result<Report, String> {
    let options = Rc::new(options);
    let value: Rc<[u8]> = value_bytes(options.value_size).into();
    let setup_started = Instant::now();

    // Setup through a session on the first server; the load sessions sync before they start, so
    // on a follower they see every key (ZooKeeper: sync makes the server catch up with the leader).
    let setup_client = connect(options.servers[0], &options).await?;
    setup(&setup_client, &options, value.clone()).await?;

    let shared = Rc::new(Shared {
        stats: RefCell::new(Stats::new()),
        recording: Cell::new(false),
        stopping: Cell::new(false),
        closing: Cell::new(false),
        sessions_lost: Cell::new(0),
        in_flight: Cell::new(0),
    });

    // Connect every session, `connect_parallel` at a time, session i to server i mod n.
    let slots: Rc<RefCell<Vec<Option<zk::Client>>>> =
        Rc::new(RefCell::new(vec![None; options.sessions]));
    let connect_errors = {
        let options = options.clone();
        let slots = slots.clone();
        in_parallel(options.sessions, options.connect_parallel, move |i| {
            let options = options.clone();
            let slots = slots.clone();
            async move {
                let server = options.servers[i % options.servers.len()];
                let client = connect(server, &options).await?;
                bounded("sync", REQUEST_TIMEOUT, client.sync(&options.root)).await?;
                slots.borrow_mut()[i] = Some(client);
                Ok(())
            }
        })
        .await
    };
    // The connected sessions, each with the address of its server (session i of the options is
    // on server i mod n; a session that failed to connect leaves no gap here).
    let (servers_of, clients): (Vec<String>, Vec<zk::Client>) = slots
        .borrow_mut()
        .drain(..)
        .enumerate()
        .filter_map(|(i, client)| {
            client.map(|c| (options.servers[i % options.servers.len()].to_string(), c))
        })
        .unzip();
    let connect_failures = connect_errors.len() as u64;
    if clients.is_empty() {
        return Err(format!(
            "no session connected; first error: {}",
            connect_errors.first().cloned().unwrap_or_default()
        ));
    }
    for e in connect_errors.iter().take(10) {
        shared
            .stats
            .borrow_mut()
            .error_samples
            .push(format!("connect: {e}"));
    }
    let setup_seconds = setup_started.elapsed().as_secs_f64();

    // A connection the server drops shows as Disconnected on the session (the library then
    // reconnects): counted as an error even when no request happened to fail with it.
    for (session, client) in clients.iter().enumerate() {
        let mut watcher = client.state_watcher();
        let shared = shared.clone();
        let server = servers_of[session].clone();
        tokio::task::spawn_local(async move {
            loop {
                let state = watcher.changed().await;
                if state.is_terminated() || shared.closing.get() {
                    break;
                }
                if state == zk::SessionState::Disconnected {
                    let in_window = shared.recording.get();
                    shared.stats.borrow_mut().error(
                        "Disconnected",
                        Some(&server),
                        format!("session {session}: connection lost (the client reconnects)"),
                        in_window,
                    );
                }
            }
        });
    }

    let keys: Rc<Vec<String>> = Rc::new(
        (0..options.znodes)
            .map(|i| key_path(&options.root, i))
            .collect(),
    );
    let mut handles = Vec::with_capacity(clients.len() * options.inflight);
    for (session, client) in clients.iter().enumerate() {
        for slot in 0..options.inflight {
            handles.push(spawn_slot(
                shared.clone(),
                client.clone(),
                options.clone(),
                keys.clone(),
                value.clone(),
                servers_of[session].clone(),
                session,
                slot,
            ));
        }
    }

    // The window: CPU of the servers and of this process read right before it opens and right
    // after it closes, on this same thread, so the operations counted are exactly those between.
    tokio::time::sleep(options.warmup).await;
    let server_before = read_server_cpu(&options.server_pids);
    let client_before = cpu::process_cpu("self")?;
    let window_started = Instant::now();
    shared.recording.set(true);
    tokio::time::sleep(options.duration).await;
    shared.recording.set(false);
    let window = window_started.elapsed();
    let server_after = read_server_cpu(&options.server_pids);
    let client_after = cpu::process_cpu("self")?;
    shared.stopping.set(true);

    // Drain: every slot finishes its request in flight; one that never gets its answer is a
    // server fault (a dropped request), reported as `unanswered_at_end`.
    let drain_deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    let mut ends = Vec::with_capacity(handles.len());
    let mut unanswered = 0u64;
    for handle in handles {
        match tokio::time::timeout_at(drain_deadline, handle).await {
            Ok(Ok(end)) => ends.push(end),
            Ok(Err(e)) => {
                unanswered += 1;
                shared.stats.borrow_mut().error(
                    "TaskFailed",
                    None,
                    format!("load task: {e}"),
                    false,
                );
            }
            Err(_) => unanswered += 1,
        }
    }
    let unanswered = unanswered.max(shared.in_flight.get());

    // Cleanup: the created znodes (each slot's own, through its own session), the keys, the root.
    let mut cleanup_errors = 0u64;
    if options.cleanup && unanswered == 0 {
        let ends = Rc::new(ends);
        let clients_rc = Rc::new(clients.clone());
        let root = options.root.clone();
        let ends_for_work = ends.clone();
        let errors = in_parallel(ends.len(), ends.len().max(1), move |i| {
            let end = &ends_for_work[i];
            let client = clients_rc[end.session].clone();
            let (session, slot, created) = (end.session, end.slot, end.created);
            let root = root.clone();
            async move {
                for n in 0..created {
                    let path = created_path(&root, session, slot, n);
                    match tokio::time::timeout(REQUEST_TIMEOUT, client.delete(&path, None)).await {
                        // A create that failed (already counted as an error) left nothing.
                        Ok(Ok(())) | Ok(Err(zk::Error::NoNode)) => {}
                        Ok(Err(e)) => return Err(format!("delete {path}: {e}")),
                        Err(_) => return Err(format!("delete {path}: no answer")),
                    }
                }
                Ok(())
            }
        })
        .await;
        cleanup_errors += errors.len() as u64;
        let root = options.root.clone();
        let client = setup_client.clone();
        let errors = in_parallel(options.znodes, SETUP_PARALLEL, move |i| {
            let client = client.clone();
            let path = key_path(&root, i);
            async move {
                bounded(
                    &format!("delete {path}"),
                    REQUEST_TIMEOUT,
                    client.delete(&path, None),
                )
                .await
            }
        })
        .await;
        cleanup_errors += errors.len() as u64;
        let root = &options.root;
        for path in [format!("{root}/c"), format!("{root}/keys"), root.clone()] {
            if let Err(e) =
                bounded("delete", REQUEST_TIMEOUT, setup_client.delete(&path, None)).await
            {
                cleanup_errors += 1;
                eprintln!("zk-load: cleanup: {path}: {e}");
            }
        }
    }
    shared.closing.set(true);
    for client in clients {
        close(client).await;
    }
    close(setup_client).await;

    let stats = shared.stats.borrow();
    let operations = stats.operations;
    let per_op = |seconds: f64| {
        if operations > 0 {
            Some(seconds * 1e6 / operations as f64)
        } else {
            None
        }
    };
    let (server_cpu, server_cpu_seconds) = match (server_before, server_after) {
        (Ok(before), Ok(after)) if !options.server_pids.is_empty() => {
            let rows: Vec<ProcessCpu> = options
                .server_pids
                .iter()
                .zip(before.iter().zip(after.iter()))
                .map(|(pid, (b, a))| ProcessCpu {
                    pid: *pid,
                    cpu_seconds: a.saturating_sub(*b).as_secs_f64(),
                })
                .collect();
            let total = rows.iter().map(|r| r.cpu_seconds).sum();
            (rows, Some(total))
        }
        (Err(e), _) | (_, Err(e)) => return Err(format!("server CPU: {e}")),
        _ => (Vec::new(), None),
    };
    let client_cpu_seconds = client_after.saturating_sub(client_before).as_secs_f64();
    Ok(Report {
        generator: "zk-load",
        client_library: "zookeeper-client 0.11",
        op: options.op.name().to_string(),
        read_percent: options.read_percent,
        servers: options.servers.iter().map(|s| s.to_string()).collect(),
        sessions: options.sessions,
        inflight: options.inflight,
        value_size: options.value_size,
        znodes: options.znodes,
        warmup_seconds: options.warmup.as_secs_f64(),
        window_seconds: window.as_secs_f64(),
        setup_seconds,
        operations,
        ops_per_second: operations as f64 / window.as_secs_f64().max(1e-9),
        errors: stats.errors + connect_failures,
        errors_in_window: stats.errors_in_window,
        errors_by_kind: {
            let mut by_kind = stats.errors_by_kind.clone();
            if connect_failures > 0 {
                by_kind.insert("ConnectFailed".to_string(), connect_failures);
            }
            by_kind
        },
        errors_by_server: stats.errors_by_server.clone(),
        error_samples: stats.error_samples.clone(),
        connect_failures,
        sessions_lost: shared.sessions_lost.get(),
        unanswered_at_end: unanswered,
        cleanup_errors,
        latencies: stats.latency_rows(window),
        failed_latency: stats.failed_row(window),
        server_cpu,
        server_cpu_seconds,
        server_cpu_us_per_op: server_cpu_seconds.and_then(per_op),
        client_cpu_seconds,
        client_cpu_us_per_op: per_op(client_cpu_seconds),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_are_variant_names() {
        assert_eq!(error_kind(&zk::Error::ConnectionLoss), "ConnectionLoss");
        assert_eq!(error_kind(&zk::Error::NoNode), "NoNode");
        assert!(is_terminal(&zk::Error::SessionExpired));
        assert!(!is_terminal(&zk::Error::ConnectionLoss));
    }

    #[test]
    fn key_choices_cover_the_keys() {
        let mut rng = Rng(1);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            seen[rng.below(10)] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
