//! The AdminServer's commands, as ZooKeeper 3.9.3's `Commands` answers them: one JSON object
//! per command with the command's keys, then `"command"` (its primary name) and `"error"` (null,
//! or why it could not run), as `CommandResponse.toMap` builds it. Names and aliases, the
//! commands that need a serving server, and the auth rule of `snapshot` / `restore` (an
//! `Authorization: <scheme> <auth>` header whose ids hold ALL on `/`) follow `Commands`.
//! Every figure comes from the same place as the four-letter word of the same name.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tracing::{info, warn};

use super::{http, AdminContext};
use crate::fourlw::{self, AdminKind, ConnInfo, ZK_NOT_SERVING};
use crate::jute::records::Id;
use crate::metrics::ServerMode;

/// A command: its names (the first is the primary one), whether it needs a serving server
/// (CommandBase.serverRequired), whether it needs authorisation (an AuthRequest of ALL on
/// `/`), and whether it is a POST command.
struct CommandSpec {
    names: &'static [&'static str],
    server_required: bool,
    auth: bool,
    post: bool,
}

const fn get(names: &'static [&'static str], server_required: bool) -> CommandSpec {
    CommandSpec {
        names,
        server_required,
        auth: false,
        post: false,
    }
}

/// ZooKeeper 3.9.3's registered commands (Commands' static block).
const COMMANDS: &[CommandSpec] = &[
    get(&["connection_stat_reset", "crst"], true),
    get(&["configuration", "conf", "config"], true),
    get(&["connections", "cons"], true),
    get(&["hash"], true),
    get(&["dirs"], true),
    get(&["dump"], true),
    get(&["environment", "env", "envi"], false),
    get(&["get_trace_mask", "gtmk"], false),
    get(&["initial_configuration", "icfg"], true),
    get(&["is_read_only", "isro"], true),
    get(&["last_snapshot", "lsnp"], true),
    get(&["leader", "lead"], true),
    get(&["monitor", "mntr"], false),
    get(&["observer_connection_stat_reset", "orst"], true),
    CommandSpec {
        names: &["restore", "rest"],
        server_required: true,
        auth: true,
        post: true,
    },
    get(&["ruok"], true),
    get(&["set_trace_mask", "stmk"], false),
    CommandSpec {
        names: &["snapshot", "snap"],
        server_required: true,
        auth: true,
        post: false,
    },
    get(&["server_stats", "srvr"], true),
    get(&["stats", "stat"], true),
    get(&["stat_reset", "srst"], true),
    get(&["observers", "obsr"], true),
    get(&["system_properties", "sysp"], false),
    get(&["voting_view"], true),
    get(&["watches", "wchc"], true),
    get(&["watches_by_path", "wchp"], true),
    get(&["watch_summary", "wchs"], true),
    get(&["zabstate"], false),
];

fn find(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|spec| spec.names.contains(&name))
}

/// The primary names, sorted, for the index page (JettyAdminServer.commandLinks).
pub fn primary_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = COMMANDS.iter().map(|spec| spec.names[0]).collect();
    names.sort_unstable();
    names
}

/// ZooKeeper's CommandResponse.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandResponse {
    pub command: String,
    pub error: Option<String>,
    pub status: u16,
    pub data: Map<String, Value>,
    /// Response headers a command adds (CommandResponse.addHeader).
    pub headers: Vec<(String, String)>,
    /// A stream in place of the JSON (CommandResponse.setInputStream), sent as
    /// application/octet-stream.
    pub body: Option<Vec<u8>>,
}

impl CommandResponse {
    fn new(command: &str) -> CommandResponse {
        CommandResponse {
            command: command.to_string(),
            error: None,
            status: 200,
            data: Map::new(),
            headers: Vec::new(),
            body: None,
        }
    }

    fn failed(command: &str, error: impl Into<String>, status: u16) -> CommandResponse {
        CommandResponse {
            error: Some(error.into()),
            status,
            ..CommandResponse::new(command)
        }
    }

    fn put(&mut self, key: &str, value: impl Into<Value>) {
        self.data.insert(key.to_string(), value.into());
    }

    /// `toMap`: the data, then `command` and `error` unless the data has its own (the
    /// `leader` command puts its "error" among its data).
    pub fn to_json(&self) -> Value {
        let mut out = self.data.clone();
        out.entry("command")
            .or_insert_with(|| Value::from(self.command.clone()));
        out.entry("error")
            .or_insert_with(|| self.error.clone().map_or(Value::Null, Value::from));
        Value::Object(out)
    }
}

/// [pure] An Authorization header taken apart as Commands.runCommand does
/// (`authInfo.split(" ")`): the scheme and the optional credential; None when it has more
/// than two space-separated parts.
pub fn authorization_parts(header: &str) -> Option<(&str, Option<&str>)> {
    let mut parts = header.split(' ');
    let scheme = parts.next()?;
    let credential = parts.next();
    if parts.next().is_some() {
        return None;
    }
    Some((scheme, credential))
}

/// Where an AdminServer request goes, from its URL (JettyAdminServer's servlet mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminPath<'a> {
    /// `commandURL` or `commandURL/`: the index of the commands.
    Index,
    /// `commandURL/<name>`, the query string dropped.
    Command(&'a str),
    NotFound,
}

/// [pure] Routes a request URL under `command_url` (admin.commandURL).
pub fn route<'a>(command_url: &str, url: &'a str) -> AdminPath<'a> {
    let path = url.split('?').next().unwrap_or("");
    let Some(rest) = path.strip_prefix(command_url) else {
        return AdminPath::NotFound;
    };
    match rest.strip_prefix('/') {
        None if rest.is_empty() => AdminPath::Index,
        Some("") => AdminPath::Index,
        Some(name) => AdminPath::Command(name),
        None => AdminPath::NotFound,
    }
}

/// Whether `name` is a command (a primary name or an alias), and its primary name.
pub fn command_primary_name(name: &str) -> Option<&'static str> {
    find(name).map(|spec| spec.names[0])
}

/// Who sent a command, for the schemes that take the identity from the connection: `ip`
/// its address, `x509` its client certificate (the ids computed only when asked for).
pub struct Caller<'a> {
    pub ip: Option<std::net::IpAddr>,
    pub x509_ids: &'a dyn Fn() -> Vec<Id>,
}

/// Why the Authorization header did not authorise (Commands.runCommand's answers).
fn authorize(
    context: &AdminContext,
    header: Option<&str>,
    caller: &Caller<'_>,
) -> Result<(), (&'static str, u16)> {
    let Some(header) = header else {
        return Err(("Auth info is missing for the command", 401));
    };
    let Some((scheme, auth)) = authorization_parts(header) else {
        return Err(("Not authenticated", 401));
    };
    // ProviderRegistry's server providers that authenticate an HTTP request: digest
    // (user:password), ip (the peer address), x509 (the connection's client certificate,
    // which the AdminServer has only over HTTPS with admin.needClientAuth); sasl has no
    // HTTP form. An empty id list is "Not authenticated" (Commands.handleAuthentication).
    let mut ids = Vec::new();
    match (scheme, auth) {
        ("digest", Some(credential)) => {
            let Some(digest) = crate::tree::acl::generate_digest(credential) else {
                return Err(("Not authenticated", 401));
            };
            if context.config.super_digest.as_deref() == Some(digest.as_str()) {
                ids.push(Id {
                    scheme: "super".into(),
                    id: String::new(),
                });
            }
            ids.push(Id {
                scheme: "digest".into(),
                id: digest,
            });
        }
        ("ip", _) => match caller.ip {
            Some(ip) => ids.push(Id {
                scheme: "ip".into(),
                id: ip.to_string(),
            }),
            None => return Err(("Not authenticated", 401)),
        },
        ("x509", _) => {
            ids = (caller.x509_ids)();
            if ids.is_empty() {
                return Err(("Not authenticated", 401));
            }
        }
        _ => return Err(("Not authenticated", 401)),
    }
    if context.config.skip_acl {
        return Ok(());
    }
    let view = context.view();
    let Some(root) = view.get("/") else {
        return Err(("Error occurred during auth", 500));
    };
    // ZooDefs.Perms.ALL on "/" (the AuthRequest of snapshot and restore).
    if crate::tree::acl::check(&root.acl, 31, &ids) {
        Ok(())
    } else {
        Err(("Not authorized", 403))
    }
}

/// Runs `name` as ZooKeeper's `Commands.runGetCommand` / `runPostCommand` would.
pub fn run(
    context: &AdminContext,
    name: &str,
    query: &str,
    post: bool,
    authorization: Option<&str>,
    caller: &Caller<'_>,
    body: Option<&mut dyn std::io::Read>,
) -> CommandResponse {
    let Some(spec) = find(name) else {
        return CommandResponse::failed(name, format!("Unknown command: {name}"), 200);
    };
    let primary = spec.names[0];
    if spec.server_required && !context.stats.quorum.mode().is_serving() {
        return CommandResponse::failed(name, ZK_NOT_SERVING, 200);
    }
    if spec.auth {
        if let Err((error, status)) = authorize(context, authorization, caller) {
            return CommandResponse::failed(name, error, status);
        }
    }
    if spec.post != post {
        // ZooKeeper answers the other method with nothing (a GetCommand's runPost is null).
        let method = if spec.post { "POST" } else { "GET" };
        return CommandResponse::failed(primary, format!("{primary} takes {method}"), 405);
    }
    if primary == "snapshot" {
        return snapshot(context, query);
    }
    if primary == "restore" {
        return restore(context, body);
    }
    if primary == "set_trace_mask" {
        // SetTraceMaskCommand: `traceMask` parsed as a Java long.
        let mut response = CommandResponse::new(primary);
        match query_value(query, "traceMask") {
            None => {
                response.put("error", "setTraceMask requires long traceMask argument");
            }
            Some(text) => match text.parse::<i64>() {
                Ok(mask) => {
                    context
                        .stats
                        .trace_mask
                        .store(mask as u64, Ordering::Relaxed);
                    response.put("tracemask", mask);
                }
                Err(_) => response.put(
                    "error",
                    format!("setTraceMask requires long traceMask argument, got {text}"),
                ),
            },
        }
        return response;
    }
    futures_lite::future::block_on(run_command(context, primary))
}

/// [pure] The value of `key` in a URL query string (`a=1&b=2`), as Jetty's getParameter
/// gives the first one; no percent-decoding (the commands' arguments are plain words).
pub fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(name, _)| *name == key)
        .map(|(_, value)| value)
}

/// ZooKeeper's RateLimiter: `rate` permits per interval, the interval starting when the
/// limiter is made and restarting at the first request after it ends.
#[derive(Debug)]
pub struct RateLimiter {
    interval: std::time::Duration,
    last_reset: std::time::Instant,
    remaining: u32,
    rate: u32,
}

impl RateLimiter {
    pub fn new(rate: u32, interval: std::time::Duration) -> RateLimiter {
        RateLimiter {
            interval,
            last_reset: std::time::Instant::now(),
            remaining: rate,
            rate,
        }
    }

    pub fn allow(&mut self) -> bool {
        let now = std::time::Instant::now();
        if now > self.last_reset + self.interval {
            self.remaining = self.rate;
            self.last_reset = now;
        }
        if self.remaining == 0 {
            return false;
        }
        self.remaining -= 1;
        true
    }
}

/// `snapshot` (Commands.SnapshotCommand, ZooKeeper 3.9): the server's state as a ZooKeeper
/// snapshot file (`version-2/snapshot.<zxid>` format, with the digest and lastProcessedZxid
/// trailers), streamed as the body unless `streaming=false`, with the headers `last_zxid`
/// (0x + hex) and `snapshot_size`. ZooKeeper serializes its in-memory tree to a file in its
/// dataDir and streams that; ringkeeper takes the newest durable tree version and its
/// sessions from the pipeline (a consistent state: every write acknowledged before the
/// command is in it) and encodes it in memory, leaving dataDir alone.
fn snapshot(context: &AdminContext, query: &str) -> CommandResponse {
    let mut response = CommandResponse::new("snapshot");
    if !context.config.admin.snapshot_enabled {
        warn!("AdminServer: the snapshot command is disabled (admin.snapshot.enabled=false)");
        response.status = 503;
        return response;
    }
    if !context.config.admin.serialize_last_processed_zxid {
        warn!("AdminServer: snapshot requires serializeLastProcessedZxid.enabled=true");
        response.status = 500;
        return response;
    }
    let allowed = context
        .snapshot_limiter
        .lock()
        .map(|mut limiter| limiter.allow())
        .unwrap_or(false);
    if !allowed {
        warn!("AdminServer: snapshot request rate limited");
        response.status = 429;
        return response;
    }
    let streaming = query_value(query, "streaming").is_none_or(|value| {
        // Boolean.parseBoolean
        value.eq_ignore_ascii_case("true")
    });
    let (reply, answer) = crossbeam_channel::bounded(1);
    let asked = context
        .pipeline
        .send(crate::pipeline::PipelineInput::DurableState(reply))
        .is_ok();
    let state = if asked {
        answer.recv_timeout(SNAPSHOT_STATE_TIMEOUT).ok().flatten()
    } else {
        None
    };
    let Some(state) = state else {
        warn!("AdminServer: snapshot: the pipeline gave no durable state");
        response.status = 500;
        return response;
    };
    let (nodes, digest) = crate::zkformat::export::zookeeper_nodes(&state.version);
    let zxid = state.version.zxid;
    let bytes = crate::zkformat::snapshot::write_snapshot_with_last_zxid(
        &nodes,
        &state.sessions,
        zxid,
        digest,
    );
    info!(
        "AdminServer: snapshot of {} znodes and {} sessions at zxid {zxid:#x}, {} bytes",
        nodes.len(),
        state.sessions.len(),
        bytes.len()
    );
    response
        .headers
        .push(("last_zxid".into(), format!("0x{:x}", zxid as u64)));
    response
        .headers
        .push(("snapshot_size".into(), bytes.len().to_string()));
    if streaming {
        response.body = Some(bytes);
    }
    response
}

/// `restore` (Commands.RestoreCommand, ZooKeeper 3.9): the POST body, a snapshot in
/// ZooKeeper's file format (what `snapshot` streams, or a `version-2/snapshot.<zxid>` file),
/// replaces the server's state. Answers `last_zxid`, the snapshot's lastProcessedZxid (0 when
/// it has no such trailer), as ZooKeeper does. Checks in ZooKeeper's order: disabled (503),
/// `serializeLastProcessedZxid.enabled=false` (500), no body (400), the rate limit (429); then
/// a body over `admin.restore.maxBytes` is refused (413), and one that is not a valid
/// snapshot (checksums included) changes nothing (500). See `Pipeline::restore` for what a
/// restore does to the log, the zxid and the connected clients.
fn restore(context: &AdminContext, body: Option<&mut dyn std::io::Read>) -> CommandResponse {
    use std::io::Read;
    let mut response = CommandResponse::new("restore");
    if !context.config.admin.restore_enabled {
        warn!("AdminServer: the restore command is disabled (admin.restore.enabled=false)");
        response.status = 503;
        return response;
    }
    if !context.config.admin.serialize_last_processed_zxid {
        warn!("AdminServer: restore requires serializeLastProcessedZxid.enabled=true");
        response.status = 500;
        return response;
    }
    let Some(body) = body else {
        warn!("AdminServer: restore request without a body");
        response.status = 400;
        return response;
    };
    let allowed = context
        .restore_limiter
        .lock()
        .map(|mut limiter| limiter.allow())
        .unwrap_or(false);
    if !allowed {
        warn!("AdminServer: restore request rate limited");
        response.status = 429;
        return response;
    }
    let max = context.config.admin.restore_max_bytes;
    let mut bytes = Vec::new();
    if let Err(error) = body.take(max.saturating_add(1)).read_to_end(&mut bytes) {
        warn!("AdminServer: restore: reading the snapshot failed: {error}");
        response.status = 500;
        return response;
    }
    if bytes.len() as u64 > max {
        warn!("AdminServer: restore: the snapshot is larger than admin.restore.maxBytes ({max})");
        response.error = Some(format!(
            "the snapshot is larger than admin.restore.maxBytes ({max})"
        ));
        response.status = 413;
        return response;
    }
    let snapshot = match crate::zkformat::snapshot::read_snapshot(&bytes) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            warn!("AdminServer: restore: not a usable snapshot: {error}");
            response.status = 500;
            return response;
        }
    };
    let last_zxid = snapshot.last_processed_zxid.unwrap_or(0);
    let mut tree = snapshot.tree;
    tree.last_zxid = last_zxid;
    // ZKDatabase.deserializeSnapshot compares the digest at lastProcessedZxid and only logs a
    // mismatch (a snapshot ZooKeeper wrote while txns applied may lag its nodes by one txn).
    if let Some(digest) = snapshot.digest {
        if digest.zxid == last_zxid
            && digest.version == crate::tree::digest::DIGEST_VERSION
            && digest.digest != tree.digest()
        {
            warn!(
                "AdminServer: restore: the snapshot's digest at zxid {last_zxid:#x} is {:#x}, its nodes' is {:#x}",
                digest.digest,
                tree.digest()
            );
        }
    }
    let (tree, sessions) = crate::zkformat::import::to_ringkeeper(tree);
    let (reply, answer) = crossbeam_channel::bounded(1);
    let asked = context
        .pipeline
        .send(crate::pipeline::PipelineInput::Restore(Box::new(
            crate::pipeline::Restore {
                tree,
                sessions,
                reply,
            },
        )))
        .is_ok();
    let outcome = if asked {
        answer
            .recv_timeout(RESTORE_TIMEOUT)
            .unwrap_or_else(|_| Err("the pipeline did not answer".into()))
    } else {
        Err("the pipeline is gone".into())
    };
    match outcome {
        Ok(zxid) => {
            info!("AdminServer: restored the state from a snapshot of zxid {last_zxid:#x}, now at zxid {zxid:#x}");
            response.put("last_zxid", last_zxid);
        }
        Err(error) => {
            warn!("AdminServer: restore failed: {error}");
            response.error = Some(error);
            response.status = 500;
        }
    }
    response
}

/// How long the restore command waits for the pipeline to put the new state in place.
const RESTORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// How long the snapshot command waits for the pipeline's answer.
const SNAPSHOT_STATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn connection_json(info: &ConnInfo, brief: bool) -> Value {
    // ServerCnxn.getConnectionInfo(brief); interest_ops is NIO's OP_READ (1) while the
    // connection is read, 0 while paused.
    let mut entry = Map::new();
    entry.insert("remote_socket_address".into(), info.remote.clone().into());
    entry.insert("interest_ops".into(), 1.into());
    entry.insert("outstanding_requests".into(), info.outstanding.into());
    entry.insert("packets_received".into(), info.received.into());
    entry.insert("packets_sent".into(), info.sent.into());
    if !brief && info.session_id != 0 {
        entry.insert("session_id".into(), info.session_id.into());
        entry.insert("last_operation".into(), info.last_op.into());
        entry.insert("established".into(), info.established_ms.into());
        entry.insert("session_timeout".into(), info.timeout_ms.into());
        entry.insert("last_cxid".into(), info.last_xid.into());
        entry.insert("last_zxid".into(), info.last_zxid.into());
        entry.insert("last_response_time".into(), info.last_response_ms.into());
        entry.insert("last_latency".into(), info.last_latency_ms.into());
        entry.insert("min_latency".into(), info.latency_min_ms.into());
        entry.insert("avg_latency".into(), info.latency_avg_ms.into());
        entry.insert("max_latency".into(), info.latency_max_ms.into());
    }
    Value::Object(entry)
}

async fn connections(context: &AdminContext, brief: bool) -> Value {
    let mut list = Vec::new();
    for answer in context.hub.ask(AdminKind::Connections).await {
        for info in &answer.connections {
            list.push(connection_json(info, brief));
        }
    }
    Value::Array(list)
}

/// A `mntr` value as the JSON type ZooKeeper gives it: longs and doubles as numbers, the
/// rest (version, states, the hex zxid) as strings.
fn monitor_value(text: &str) -> Value {
    if let Ok(number) = text.parse::<i64>() {
        return number.into();
    }
    match text.parse::<f64>() {
        Ok(number) if number.is_finite() => json!(number),
        _ => text.into(),
    }
}

async fn watches(
    context: &AdminContext,
) -> (BTreeMap<i64, Vec<String>>, BTreeMap<String, Vec<i64>>) {
    let mut by_session: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut by_path: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for answer in context.hub.ask(AdminKind::Watches).await {
        for (session, path) in answer.watches {
            by_session.entry(session).or_default().push(path.clone());
            by_path.entry(path).or_default().push(session);
        }
    }
    for paths in by_session.values_mut() {
        paths.sort();
        paths.dedup();
    }
    for sessions in by_path.values_mut() {
        sessions.sort();
        sessions.dedup();
    }
    (by_session, by_path)
}

/// `host:port` of a socket address, IPv6 in brackets (QuorumServer.delimitedHostString).
fn address_text(address: std::net::SocketAddr) -> String {
    address.to_string()
}

fn server_stats(context: &AdminContext, zxid: i64) -> Value {
    let stats = &context.stats;
    let config = &context.config;
    let (min, avg, max) = stats.latency();
    let (last_size, min_size, max_size) = stats.response_sizes();
    // ZooKeeper's ServerStats as Jackson writes it (snake case).
    json!({
        "packets_sent": stats.packets_sent.load(Ordering::Relaxed),
        "packets_received": stats.packets_received.load(Ordering::Relaxed),
        "fsync_threshold_exceed_count": stats.fsync_threshold_exceeded.load(Ordering::Relaxed),
        "client_response_stats": {
            "last_buffer_size": last_size, "min_buffer_size": min_size, "max_buffer_size": max_size
        },
        "data_dir_size": fourlw::directory_size(&config.data_dir),
        "log_dir_size": fourlw::directory_size(&config.data_log_dir),
        "provider_null": false,
        "server_state": stats.quorum.mode().as_str(),
        "last_processed_zxid": zxid,
        "outstanding_requests": stats.outstanding_requests.load(Ordering::Relaxed).max(0),
        "avg_latency": avg,
        "max_latency": max,
        "min_latency": min,
        "num_alive_client_connections": stats.connections.load(Ordering::Relaxed),
        "uptime": stats.started.elapsed().as_millis() as u64,
        "auth_failed_count": stats.auth_failed.load(Ordering::Relaxed),
        "non_mtlsremote_conn_count": 0,
        "non_mtlslocal_conn_count": 0,
    })
}

/// The newest snapshot file in dataDir: (zxid, modification time in seconds).
fn last_snapshot(context: &AdminContext) -> Option<(i64, i64)> {
    let entries = std::fs::read_dir(&context.config.data_dir).ok()?;
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            let zxid = crate::snapshot::format::parse_snapshot_name(&name)?;
            let modified = entry.metadata().ok()?.modified().ok()?;
            let seconds = modified
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs() as i64;
            Some((zxid, seconds))
        })
        .max()
}

/// The `digests` of the `hash` command: `[{"zxid":128,"digest":...,"digest_version":2}, ...]`,
/// oldest first.
pub fn digests_json(log: &crate::tree::digest::DigestLog) -> Value {
    Value::Array(
        log.entries()
            .map(|entry| {
                json!({
                    "zxid": entry.zxid,
                    "digest": entry.digest,
                    "digest_version": entry.digest_version,
                })
            })
            .collect(),
    )
}

async fn run_command(context: &AdminContext, primary: &str) -> CommandResponse {
    let mut response = CommandResponse::new(primary);
    let config = &context.config;
    let stats = &context.stats;
    let mode = stats.quorum.mode();
    let view = context.view();
    let zxid = view.zxid.max(stats.last_zxid.load(Ordering::Relaxed));
    match primary {
        "connection_stat_reset" => {
            context.hub.ask(AdminKind::ResetConnections).await;
        }
        "configuration" => {
            // ZookeeperServerConf.toMap.
            response.put(
                "client_port",
                stats.client_port(config.client_address.port()),
            );
            response.put("data_dir", config.data_dir.display().to_string());
            response.put("data_log_dir", config.data_log_dir.display().to_string());
            response.put("tick_time", config.tick_time_ms);
            response.put("max_client_cnxns", config.limits.connections_per_ip_max);
            response.put("min_session_timeout", config.min_session_timeout_ms);
            response.put("max_session_timeout", config.max_session_timeout_ms);
            response.put(
                "server_id",
                config.quorum.as_ref().map_or(0, |quorum| quorum.my_id),
            );
            response.put("client_port_listen_backlog", -1);
        }
        "connections" => {
            // TLS connections are served by the same cores and listed with the others.
            response.put("connections", connections(context, false).await);
            response.put("secure_connections", Value::Array(Vec::new()));
        }
        "dirs" => {
            response.put("datadir_size", fourlw::directory_size(&config.data_dir));
            response.put("logdir_size", fourlw::directory_size(&config.data_log_dir));
        }
        "dump" => {
            let mut expiry = Map::new();
            for (deadline_ms, ids) in stats.session_sets() {
                expiry.insert(deadline_ms.to_string(), json!(ids));
            }
            let mut ephemerals = Map::new();
            for (session, paths) in view.ephemeral_owners() {
                ephemerals.insert(session.to_string(), json!(paths));
            }
            response.put("expiry_time_to_session_ids", Value::Object(expiry));
            response.put("session_id_to_ephemeral_paths", Value::Object(ephemerals));
        }
        "environment" => {
            for (key, value) in fourlw::environment_rows() {
                response.put(key, value);
            }
        }
        "initial_configuration" => {
            response.put(
                "initial_configuration",
                config.config_text.clone().unwrap_or_default(),
            );
        }
        "is_read_only" => response.put("read_only", mode == ServerMode::ReadOnly),
        "last_snapshot" => {
            let (zxid, timestamp) = last_snapshot(context).unwrap_or((-1, -1));
            response.put("zxid", format!("{zxid:x}"));
            response.put("timestamp", timestamp);
        }
        "leader" => match &config.quorum {
            Some(quorum) => {
                let leader_id = stats.quorum.leader_id.load(Ordering::Relaxed);
                response.put("is_leader", mode == ServerMode::Leader);
                response.put(
                    "leader_id",
                    if leader_id == 0 { -1 } else { leader_id as i64 },
                );
                let leader_ip = quorum
                    .servers
                    .values()
                    .find(|server| server.id == leader_id)
                    .map(|server| address_text(server.quorum_addr))
                    .unwrap_or_default();
                response.put("leader_ip", leader_ip);
            }
            None => response.put("error", "server is not initialized"),
        },
        "monitor" => {
            let word_context = context.word_context();
            for (key, value) in fourlw::monitor_rows(&word_context).await {
                let key = key.strip_prefix("zk_").unwrap_or(key);
                response.put(key, monitor_value(&value));
            }
        }
        "observer_connection_stat_reset" | "ruok" | "stat_reset" => {
            if primary == "stat_reset" {
                stats.reset();
            }
        }
        "observers" => {
            // ringkeeper's leader does not keep per-observer handler details.
            let synced = if mode == ServerMode::Leader {
                stats.quorum.synced_observers.load(Ordering::Relaxed)
            } else {
                0
            };
            response.put("synced_observers", synced);
            response.put("observers", Value::Array(Vec::new()));
        }
        "server_stats" | "stats" => {
            response.put("version", fourlw::version_string());
            response.put("read_only", mode == ServerMode::ReadOnly);
            response.put("server_stats", server_stats(context, zxid));
            response.put("client_response", {
                let (last, min, max) = stats.response_sizes();
                json!({"last_buffer_size": last, "min_buffer_size": min, "max_buffer_size": max})
            });
            if mode == ServerMode::Leader {
                let quorum = &stats.quorum;
                response.put(
                    "proposal_stats",
                    json!({
                        "last_buffer_size": quorum.proposal_bytes_last.load(Ordering::Relaxed),
                        "min_buffer_size": quorum.proposal_bytes_min.load(Ordering::Relaxed),
                        "max_buffer_size": quorum.proposal_bytes_max.load(Ordering::Relaxed),
                    }),
                );
            }
            // DataTree.getNodeCount counts the root under two keys, as `srvr` does.
            response.put("node_count", view.node_count() + 1);
            if primary == "stats" {
                response.put("connections", connections(context, true).await);
                response.put("secure_connections", Value::Array(Vec::new()));
            }
        }
        "system_properties" => {
            let sorted: BTreeMap<&str, &str> = config
                .system_properties
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str()))
                .collect();
            for (key, value) in sorted {
                response.put(key, value);
            }
        }
        "voting_view" => {
            let mut view = Map::new();
            if let Some(quorum) = &config.quorum {
                for server in quorum.servers.values().filter(|server| !server.observer) {
                    let client = server.client_addr.map(address_text).unwrap_or_default();
                    view.insert(
                        server.id.to_string(),
                        json!({
                            "server_addresses": [address_text(server.quorum_addr)],
                            "election_addresses": [address_text(server.election_addr)],
                            "client_address": client,
                            "learner_type": "participant",
                        }),
                    );
                }
            }
            response.put("current_config", Value::Object(view));
        }
        "watches" | "watches_by_path" | "watch_summary" => {
            let (by_session, by_path) = watches(context).await;
            match primary {
                "watches" => {
                    let map: Map<String, Value> = by_session
                        .into_iter()
                        .map(|(session, paths)| (session.to_string(), json!(paths)))
                        .collect();
                    response.put("session_id_to_watched_paths", Value::Object(map));
                }
                "watches_by_path" => {
                    let map: Map<String, Value> = by_path
                        .into_iter()
                        .map(|(path, sessions)| (path, json!(sessions)))
                        .collect();
                    response.put("path_to_session_ids", Value::Object(map));
                }
                _ => {
                    let total: usize = by_session.values().map(Vec::len).sum();
                    response.put("num_connections", by_session.len());
                    response.put("num_paths", by_path.len());
                    response.put("num_total_watches", total);
                }
            }
        }
        "zabstate" => match config.quorum.as_ref().and_then(|quorum| quorum.me()) {
            Some(me) => {
                let zab_state = match mode {
                    // A read-only server's peer is still LOOKING (QuorumPeer).
                    ServerMode::Looking | ServerMode::ReadOnly => "election",
                    _ => "broadcast",
                };
                response.put("myid", me.id);
                response.put("is_leader", mode == ServerMode::Leader);
                response.put("quorum_address", address_text(me.quorum_addr));
                response.put("election_address", address_text(me.election_addr));
                response.put(
                    "client_address",
                    me.client_addr.map(address_text).unwrap_or_default(),
                );
                response.put("voting", !me.observer);
                response.put("last_zxid", format!("{zxid:#x}"));
                response.put("zab_epoch", zxid >> 32);
                response.put("zab_counter", zxid & 0xffff_ffff);
                response.put("zabstate", zab_state);
            }
            None => {
                response.put("voting", false);
                response.put("zabstate", "");
            }
        },
        // Commands.DigestCommand: DataTree.getDigestLog, each ZxidDigest as Jackson writes
        // it (fields in declaration order, snake_case names).
        "hash" => {
            response.put("digests", digests_json(view.digest_log()));
        }
        "get_trace_mask" => {
            response.put("tracemask", stats.trace_mask.load(Ordering::Relaxed) as i64);
        }
        other => {
            response.error = Some(format!("Unknown command: {other}"));
        }
    }
    response
}

/// What the AdminServer's connections share: the commands' context, the lock that runs them
/// one at a time, and what the `x509` scheme checks a certificate chain against.
pub struct Endpoint {
    pub context: Arc<AdminContext>,
    pub x509_verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    pub one_at_a_time: std::sync::Mutex<()>,
}

impl Endpoint {
    /// Answers one request as JettyAdminServer's CommandServlet does.
    pub fn answer(
        &self,
        request: &http::Request,
        body: &mut dyn std::io::Read,
        peer: &http::Peer,
    ) -> http::Response {
        let context = &self.context;
        let command_url = &context.config.admin.command_url;
        let url = request.target.as_str();
        match route(command_url, url) {
            AdminPath::Index => {
                let mut page = String::new();
                for name in primary_names() {
                    page.push_str(&format!(
                        "<a href=\"{command_url}/{name}\">{name}</a>\n<br/>\n"
                    ));
                }
                http::Response::text(200, "text/html", page)
            }
            AdminPath::Command(name) => {
                let post = request.method == "POST";
                if request.method != "GET" && !post {
                    return http::Response::text(405, "text/plain", "method not allowed\n");
                }
                let query = url.split_once('?').map_or("", |(_, query)| query);
                let x509_ids = || {
                    crate::net::tls::x509_command_ids(
                        peer.certificates.as_deref(),
                        self.x509_verifier.as_deref(),
                        context.config.x509_super_user.as_deref(),
                    )
                };
                let _turn = self
                    .one_at_a_time
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let response = run(
                    context,
                    name,
                    query,
                    post,
                    request.header("Authorization"),
                    &Caller {
                        ip: Some(peer.address.ip()),
                        x509_ids: &x509_ids,
                    },
                    post.then_some(body),
                );
                encode(response)
            }
            AdminPath::NotFound => http::Response::text(404, "text/plain", "not found\n"),
        }
    }
}

/// A command's answer: its stream as application/octet-stream, or its JSON, with the
/// headers it added.
fn encode(mut response: CommandResponse) -> http::Response {
    let (content_type, body) = match response.body.take() {
        Some(bytes) => ("application/octet-stream", bytes),
        None => (
            "application/json",
            serde_json::to_string_pretty(&response.to_json())
                .unwrap_or_else(|_| {
                    "{\"error\": \"Exception writing command response to JSON\"}".into()
                })
                .into_bytes(),
        ),
    };
    let headers = std::iter::once(("Content-Type".to_string(), content_type.to_string()))
        .chain(response.headers.iter().cloned())
        .collect();
    http::Response {
        status: response.status,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_as_jetty_gives_the_first() {
        assert_eq!(query_value("streaming=false", "streaming"), Some("false"));
        assert_eq!(
            query_value("a=1&streaming=true&streaming=x", "streaming"),
            Some("true")
        );
        assert_eq!(query_value("streaming", "streaming"), Some(""));
        assert_eq!(query_value("", "streaming"), None);
        assert_eq!(query_value("streamingx=1", "streaming"), None);
    }

    /// Commands.DigestCommand as ZooKeeper 3.8 answers it (Jackson: the ZxidDigest fields in
    /// declaration order, snake_case), then `command` and `error`, and the 4lw text of the
    /// same history (DigestCommand: `Long.toHexString(zxid) + ": " + digest`).
    #[test]
    fn hash_answers_in_zookeepers_shapes() {
        let mut tree = crate::tree::TreeVersion::new();
        let error = crate::tree::Txn::Error {
            code: crate::jute::protocol::ErrorCode::BadVersion,
        };
        for zxid in 1..=300 {
            assert!(tree.apply(zxid, 0, &error, &mut Vec::new()).is_ok());
        }
        let mut response = CommandResponse::new("hash");
        response.put("digests", digests_json(tree.digest_log()));
        let text = response.to_json().to_string();
        let digest = 0x51c6_d660_i64;
        assert_eq!(
            text,
            format!(
                "{{\"digests\":[{{\"zxid\":128,\"digest\":{digest},\"digest_version\":2}},\
                 {{\"zxid\":256,\"digest\":{digest},\"digest_version\":2}}],\
                 \"command\":\"hash\",\"error\":null}}"
            )
        );
        assert_eq!(
            crate::tree::digest::digest_log_text(tree.digest_log()),
            format!("80: {digest}\n100: {digest}\n")
        );
        let empty = digests_json(crate::tree::TreeVersion::new().digest_log());
        assert_eq!(empty.to_string(), "[]");
    }

    #[test]
    fn the_rate_limiter_allows_one_per_interval() {
        let mut limiter = RateLimiter::new(1, std::time::Duration::from_secs(3600));
        assert!(limiter.allow());
        assert!(!limiter.allow());
        let mut unlimited = RateLimiter::new(1, std::time::Duration::ZERO);
        assert!(unlimited.allow());
        // A zero interval restarts at the next instant.
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(unlimited.allow());
    }
}
