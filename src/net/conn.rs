//! [io] One client connection: handshake, request loop, ordered replies, write loop.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info, warn};

use crate::auth::{SaslOutcome, SaslSession};
use crate::jute::codec::{Reader, Record};
use crate::jute::frame::FrameDecoder;
use crate::jute::protocol::{xid, ErrorCode, OpCode};
use crate::jute::records::*;
use crate::jute::request::{Request, RequestError};
use crate::jute::response::{header_frame, record_frame, sasl_reply_frame};
use crate::pipeline::PipelineInput;
use crate::read::{serve, ReadContext};
use crate::session::ConnRef;
use crate::tree::acl::{self, AuthIds};

use super::CoreState;

enum Outgoing {
    Frame(Vec<u8>),
    Close,
}

enum Queued {
    /// A write in the pipeline; its reply comes back through the core's dispatcher.
    Write { received: Instant, op: OpCode },
    /// A read that arrived behind a write and waits for it.
    Read {
        xid: i32,
        request: Request,
        received: Instant,
        /// The newest published zxid when it arrived: it is served from a version at least
        /// that new (what any client may already have been told of), as a read with nothing
        /// ahead of it is after `catch_up`.
        newer_than: i64,
    },
}

/// Per-connection statistics for `cons`.
#[derive(Debug, Default)]
pub struct ConnStats {
    pub received: Cell<u64>,
    pub sent: Cell<u64>,
    pub last_op: Cell<&'static str>,
    pub last_xid: Cell<i32>,
    pub last_zxid: Cell<i64>,
    pub last_response_ms: Cell<i64>,
    pub last_latency_ms: Cell<u64>,
    pub latency_min_ms: Cell<u64>,
    pub latency_max_ms: Cell<u64>,
    pub latency_total_ms: Cell<u64>,
    pub latency_count: Cell<u64>,
    pub established_ms: Cell<i64>,
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

pub struct Conn {
    pub id: u64,
    pub remote: SocketAddr,
    pub session_id: Cell<i64>,
    pub timeout_ms: Cell<i32>,
    auth: RefCell<AuthIds>,
    /// This connection's SASL exchange, started by its first SASL request.
    sasl: RefCell<Option<SaslSession>>,
    outbox: async_channel::Sender<Outgoing>,
    queued_bytes: Rc<Cell<usize>>,
    queue: RefCell<VecDeque<Queued>>,
    writes_in_flight: Cell<usize>,
    /// Requests received and not yet answered (backpressure).
    outstanding: Cell<usize>,
    resume: async_channel::Sender<()>,
    handshake: async_channel::Sender<bool>,
    closed: Cell<bool>,
    /// Notified when the connection closes: wakes its read loop wherever it waits (for a
    /// reply that frees room, or for its core's share of the outstanding limit).
    closed_event: event_listener::Event,
    /// Reading is paused for backpressure: the session is kept alive meanwhile (its client
    /// cannot be heard while its socket is not read; see `CoreState::report_touches`).
    paused: Cell<bool>,
    pub stats: ConnStats,
    /// The server's counters: every frame sent counts toward the response sizes.
    server_stats: Arc<crate::metrics::ServerStats>,
}

impl Conn {
    pub fn auth(&self) -> AuthIds {
        self.auth.borrow().clone()
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.get()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub fn is_paused(&self) -> bool {
        self.paused.get()
    }

    /// A listener for this connection's close (check `is_closed` after taking it).
    pub fn on_close(&self) -> event_listener::EventListener {
        self.closed_event.listen()
    }

    /// Queues a frame for the socket. A client that does not read its replies is cut off
    /// once `outbound_bytes_per_connection_max` is queued.
    pub fn send(&self, frame: Vec<u8>) {
        if self.closed.get() {
            return;
        }
        // ServerCnxn.serialize counts the reply header and body, not the length prefix.
        self.server_stats
            .record_response_size(frame.len().saturating_sub(4) as u64);
        self.send_unmeasured(frame);
    }

    /// Queues bytes that are no jute reply (a four-letter word's answer): not counted in the
    /// response sizes, as ZooKeeper's commands write to the socket directly.
    pub fn send_unmeasured(&self, frame: Vec<u8>) {
        if self.closed.get() {
            return;
        }
        self.stats.sent.set(self.stats.sent.get() + 1);
        self.queued_bytes.set(self.queued_bytes.get() + frame.len());
        let _ = self.outbox.try_send(Outgoing::Frame(frame));
    }

    pub fn close(&self, reason: &str) {
        if !self.closed.replace(true) {
            info!(
                "closing connection {:#x} from {}: {reason}",
                self.id, self.remote
            );
            let _ = self.outbox.try_send(Outgoing::Close);
            let _ = self.resume.try_send(());
            let _ = self.handshake.try_send(false);
            self.closed_event.notify(usize::MAX);
        }
    }

    fn finish_request(&self, state: &CoreState, received: Instant, op: OpCode, zxid: i64) {
        let latency_ms = received.elapsed().as_millis() as u64;
        let stats = &self.stats;
        stats.last_op.set(op.short_name());
        stats.last_zxid.set(zxid);
        stats.last_response_ms.set(wall_clock_ms());
        stats.last_latency_ms.set(latency_ms);
        if stats.latency_count.get() == 0 || latency_ms < stats.latency_min_ms.get() {
            stats.latency_min_ms.set(latency_ms);
        }
        stats
            .latency_max_ms
            .set(stats.latency_max_ms.get().max(latency_ms));
        stats
            .latency_total_ms
            .set(stats.latency_total_ms.get() + latency_ms);
        stats.latency_count.set(stats.latency_count.get() + 1);
        state.stats.record_request(latency_ms, op.is_update());
        state
            .stats
            .packets_sent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        state.requests_finished(1);
        let outstanding = self.outstanding.get().saturating_sub(1);
        self.outstanding.set(outstanding);
        if outstanding + 1 == state.config.limits.outstanding_per_connection_max {
            let _ = self.resume.try_send(());
        }
    }

    /// The reply to this connection's oldest write arrived: send it. The reads waiting behind
    /// it are served by `serve_ready_reads`, once the events of the version they are served
    /// from are out.
    pub fn complete_write(&self, state: &CoreState, frame: Vec<u8>) {
        let front = self.queue.borrow_mut().pop_front();
        match front {
            Some(Queued::Write { received, op }) => {
                self.writes_in_flight
                    .set(self.writes_in_flight.get().saturating_sub(1));
                let zxid = reply_zxid(&frame);
                self.send(frame);
                self.finish_request(state, received, op, zxid);
            }
            other => {
                // The pipeline answers every write exactly once and in order; anything else
                // is a broken invariant of this connection. Drop the connection, not the server.
                warn!(
                    "connection {:#x}: write reply without a pending write ({})",
                    self.id,
                    other.is_some()
                );
                self.close("internal ordering error");
            }
        }
    }

    /// Serves the reads at the front of the queue, up to the next write still in flight, as
    /// far as the core's view is new enough for them. True when a read at the front still
    /// waits for a newer view (the core retries at its next step; see `CoreState::apply_batch`).
    pub fn serve_ready_reads(&self, state: &CoreState) -> bool {
        let view_zxid = state.view().zxid;
        loop {
            let next = {
                let mut queue = self.queue.borrow_mut();
                match queue.front() {
                    Some(Queued::Read { newer_than, .. }) if *newer_than <= view_zxid => {
                        queue.pop_front()
                    }
                    Some(Queued::Read { .. }) => return true,
                    _ => None,
                }
            };
            match next {
                Some(Queued::Read {
                    xid,
                    request,
                    received,
                    ..
                }) => self.serve_read(state, xid, &request, received),
                _ => return false,
            }
        }
    }

    /// The pipeline answered the ConnectRequest.
    pub fn connected(&self, state: &CoreState, session_id: i64, timeout_ms: i32, frame: Vec<u8>) {
        self.send(frame);
        if session_id == 0 {
            self.close("session expired or invalid");
            return;
        }
        self.session_id.set(session_id);
        self.timeout_ms.set(timeout_ms);
        state.touched.borrow_mut().insert(session_id);
        let _ = self.handshake.try_send(true);
    }

    /// Requests answered on the core itself (reads, auth, ping, whoAmI).
    fn serve_read(
        &self,
        state: &CoreState,
        request_xid: i32,
        request: &Request,
        received: Instant,
    ) {
        let view = state.view();
        let zxid = view.zxid;
        match request {
            Request::Ping => self.send(header_frame(xid::PING, zxid, ErrorCode::Ok)),
            // ZooKeeperServer.processPacket answers an auth packet with the request's own xid
            // and zxid 0. The Java, C and Python clients send it with xid -4 and so see -4
            // back, but go-zookeeper sends an ordinary xid and waits for a reply with that
            // one: a fixed -4 hangs its AddAuth. A failure is AUTHFAILED, then the connection
            // closes (the session lives on).
            Request::Auth(packet) => {
                if !self.authenticate(state, packet) {
                    self.send(header_frame(request_xid, 0, ErrorCode::AuthFailed));
                    self.close("authentication failed");
                } else {
                    self.send(header_frame(request_xid, 0, ErrorCode::Ok));
                }
            }
            Request::WhoAmI => {
                let client_info = self
                    .auth()
                    .iter()
                    .map(|id| ClientInfo {
                        auth_scheme: id.scheme.clone(),
                        user: match id.scheme.as_str() {
                            "digest" => id.id.split(':').next().unwrap_or("").to_string(),
                            _ => id.id.clone(),
                        },
                    })
                    .collect();
                self.send(record_frame(
                    request_xid,
                    zxid,
                    &WhoAmIResponse { client_info },
                ));
            }
            Request::Sasl(request) => self.serve_sasl(state, request_xid, &request.token),
            _ => {
                let auth = self.auth();
                let context = ReadContext {
                    conn: self.id,
                    session_id: self.session_id.get(),
                    auth: &auth,
                    skip_acl: state.config.skip_acl,
                };
                let frames = {
                    let mut watches = state.watches.borrow_mut();
                    serve(&view, &mut watches, request_xid, request, &context)
                };
                for frame in frames {
                    self.send(frame);
                }
            }
        }
        self.stats.last_xid.set(request_xid);
        self.finish_request(state, received, request.op_code(), zxid);
    }

    /// ZooKeeperServer.processSasl: the token goes to this connection's SASL server; the
    /// reply (request xid, zxid 0) carries the server's token, null when there is none (no
    /// SASL configured, or a mechanism that completes without one). On completion
    /// `sasl:<id>` (and `super` for a super user) joins the connection's ids. A failure is
    /// AuthFailed (SessionClosedRequireSaslAuth when SASL is required) with a null token and
    /// the connection closes, unless `allowSaslFailedClients` keeps it (then OK, null token).
    fn serve_sasl(&self, state: &CoreState, request_xid: i32, token: &[u8]) {
        let settings = &state.config.sasl;
        let outcome = {
            let mut slot = self.sasl.borrow_mut();
            if slot.is_none() {
                *slot = SaslSession::start(settings, &mut rand::thread_rng());
            }
            match slot.as_mut() {
                None => Ok(SaslOutcome {
                    token: None,
                    authorized: None,
                }),
                Some(session) => session.evaluate(token, settings),
            }
        };
        let reply =
            |code: ErrorCode, token: Option<Vec<u8>>| sasl_reply_frame(request_xid, code, token);
        match outcome {
            Ok(SaslOutcome { token, authorized }) => {
                if let Some((authorized_id, super_user)) = authorized {
                    info!(
                        "Session {:#x}: adding SASL authorization for authorizationID: {authorized_id}",
                        self.session_id.get()
                    );
                    let mut ids: Vec<Id> = self.auth().to_vec();
                    let mut add = |id: Id| {
                        if !ids.contains(&id) {
                            ids.push(id);
                        }
                    };
                    add(Id {
                        scheme: "sasl".into(),
                        id: authorized_id,
                    });
                    if super_user {
                        add(Id {
                            scheme: "super".into(),
                            id: String::new(),
                        });
                    }
                    *self.auth.borrow_mut() = Arc::new(ids);
                }
                self.send(reply(ErrorCode::Ok, token));
            }
            Err(error) => {
                warn!(
                    "Client {} failed to SASL authenticate: {error}",
                    self.remote
                );
                let required = settings.sasl_auth_required();
                if settings.allow_failed_clients && !required {
                    warn!("Maintaining client connection despite SASL authentication failure.");
                    self.send(reply(ErrorCode::Ok, None));
                } else {
                    let code = if required {
                        ErrorCode::SessionClosedRequireSaslAuth
                    } else {
                        ErrorCode::AuthFailed
                    };
                    self.send(reply(code, None));
                    self.close("SASL authentication failed");
                }
            }
        }
    }

    /// `addauth`: digest adds `digest:user:hash` (and `super` when it is the super digest);
    /// ip adds the connection's address; any other scheme fails.
    fn authenticate(&self, state: &CoreState, packet: &AuthPacket) -> bool {
        let mut ids: Vec<Id> = self.auth().to_vec();
        match packet.scheme.as_str() {
            "digest" => {
                let Ok(credential) = std::str::from_utf8(&packet.auth) else {
                    return false;
                };
                let Some(digest) = acl::generate_digest(credential) else {
                    return false;
                };
                if state.config.super_digest.as_deref() == Some(digest.as_str()) {
                    ids.push(Id {
                        scheme: "super".into(),
                        id: String::new(),
                    });
                }
                let id = Id {
                    scheme: "digest".into(),
                    id: digest,
                };
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            "ip" => {
                let id = Id {
                    scheme: "ip".into(),
                    id: self.remote.ip().to_string(),
                };
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            _ => return false,
        }
        *self.auth.borrow_mut() = Arc::new(ids);
        true
    }

    fn handle_request(self: &Rc<Self>, state: &CoreState, frame: &[u8]) -> Result<(), String> {
        let mut reader = Reader::new(frame);
        let header = RequestHeader::decode(&mut reader).map_err(|error| error.to_string())?;
        let received = Instant::now();
        self.stats.received.set(self.stats.received.get() + 1);
        state
            .stats
            .packets_received
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(session) = Some(self.session_id.get()).filter(|id| *id != 0) {
            state.touched.borrow_mut().insert(session);
        }
        if tracing::enabled!(tracing::Level::TRACE) {
            // ZooTrace.logRequest: requests and pings as the trace mask (gtmk/stmk) says.
            let kind = if header.xid == xid::PING {
                crate::metrics::TRACE_CLIENT_PING
            } else {
                crate::metrics::TRACE_CLIENT_REQUEST
            };
            if state.stats.traces(kind) {
                tracing::trace!(
                    "connection {:#x} session {:#x}: request xid {} opcode {}, {} bytes",
                    self.id,
                    self.session_id.get(),
                    header.xid,
                    header.op_type,
                    frame.len()
                );
            }
        }
        let request = match Request::decode(header.op_type, &mut reader) {
            Ok(request) => request,
            Err(RequestError::UnknownOpCode(op)) => {
                // UnimplementedRequestProcessor: UNIMPLEMENTED with zxid -1, then the
                // connection is closed (its session lives on).
                info!("connection {:#x}: unknown opcode {op}", self.id);
                self.send(header_frame(header.xid, -1, ErrorCode::Unimplemented));
                self.close("unknown opcode");
                return Ok(());
            }
            Err(RequestError::Malformed(error)) => {
                return Err(format!(
                    "malformed request (opcode {}): {error}",
                    header.op_type
                ))
            }
        };
        if !matches!(request, Request::Auth(_) | Request::Sasl(_))
            && !state.config.sasl.admits(&self.auth())
        {
            // AuthenticationHelper.enforceAuthentication (enforce.auth.enabled,
            // sessionRequireClientSASLAuth): any other request from a connection without an
            // id of the required schemes is answered SessionClosedRequireSaslAuth with its
            // xid and zxid 0, and the connection closes.
            info!(
                "connection {:#x}: client authentication schemes {:?} do not match the \
                 required ones",
                self.id,
                self.auth()
                    .iter()
                    .map(|id| id.scheme.clone())
                    .collect::<Vec<_>>()
            );
            self.send(header_frame(
                header.xid,
                0,
                ErrorCode::SessionClosedRequireSaslAuth,
            ));
            self.close("authentication required");
            return Ok(());
        }
        state.request_started();
        self.outstanding.set(self.outstanding.get() + 1);
        if request.is_write() {
            // A read waiting behind an earlier write must not see this one.
            let fenced = matches!(self.queue.borrow().back(), Some(Queued::Read { .. }));
            self.queue.borrow_mut().push_back(Queued::Write {
                received,
                op: request.op_code(),
            });
            self.writes_in_flight.set(self.writes_in_flight.get() + 1);
            self.stats.last_xid.set(header.xid);
            state.send_to_pipeline(PipelineInput::Write {
                conn: ConnRef {
                    core: state.core,
                    conn_id: self.id,
                },
                session_id: self.session_id.get(),
                xid: header.xid,
                request,
                auth: self.auth(),
                fenced,
            });
        } else if self.queue.borrow().is_empty() {
            state.catch_up();
            self.serve_read(state, header.xid, &request, received);
        } else {
            // Behind a write in flight, or behind reads that wait for a newer view.
            let newer_than = state
                .stats
                .published_zxid
                .load(std::sync::atomic::Ordering::SeqCst);
            self.queue.borrow_mut().push_back(Queued::Read {
                xid: header.xid,
                request,
                received,
                newer_than,
            });
            if self.writes_in_flight.get() == 0 {
                state.wait_for_view(self);
            }
        }
        Ok(())
    }
}

/// The zxid field of a reply frame, for `cons`.
fn reply_zxid(frame: &[u8]) -> i64 {
    frame
        .get(8..16)
        .and_then(|bytes| bytes.try_into().ok())
        .map(i64::from_be_bytes)
        .unwrap_or(0)
}

/// A ConnectRequest, and whether it carried the readOnly byte: clients older than 3.3 omit
/// it, and ZooKeeper then answers without it too (ServerCnxn's isOldClient).
pub(crate) fn decode_connect(frame: &[u8]) -> Result<(ConnectRequest, bool), String> {
    match ConnectRequest::from_bytes(frame) {
        Ok(request) => Ok((request, true)),
        Err(first_error) => {
            let mut padded = frame.to_vec();
            padded.push(0);
            ConnectRequest::from_bytes(&padded)
                .map(|request| (request, false))
                .map_err(|_| first_error.to_string())
        }
    }
}

async fn write_loop<W: futures_lite::AsyncWrite + Unpin>(
    mut writer: W,
    outbox: async_channel::Receiver<Outgoing>,
    queued_bytes: Rc<Cell<usize>>,
    release_slot: impl FnOnce(),
) {
    let mut buffer: Vec<u8> = Vec::with_capacity(64 * 1024);
    'outer: while let Ok(first) = outbox.recv().await {
        let mut closing = false;
        match first {
            Outgoing::Frame(frame) => buffer.extend_from_slice(&frame),
            Outgoing::Close => closing = true,
        }
        // Coalesce whatever else is queued into one write.
        while !closing && buffer.len() < 256 * 1024 {
            match outbox.try_recv() {
                Ok(Outgoing::Frame(frame)) => buffer.extend_from_slice(&frame),
                Ok(Outgoing::Close) => closing = true,
                Err(_) => break,
            }
        }
        if !buffer.is_empty() {
            let length = buffer.len();
            // A TLS stream may keep records it could not send at once; flush pushes them
            // out before the loop waits for more (a plaintext stream's flush is a no-op).
            if writer.write_all(&buffer).await.is_err() || writer.flush().await.is_err() {
                break 'outer;
            }
            queued_bytes.set(queued_bytes.get().saturating_sub(length));
            buffer.clear();
        }
        if closing {
            break;
        }
    }
    let _ = writer.flush().await;
    // The connection's maxClientCnxns slot is free before the client can see the close, as in
    // ZooKeeper (removeCnxn before the socket closes): a client that reconnects at once after
    // a closeSession is not refused.
    release_slot();
    let _ = writer.close().await;
}

/// Runs one connection to its end: a plaintext TCP stream, or a TLS stream after its
/// handshake, whose verified client certificate gave `identities` (net/tls).
pub async fn run<S>(state: Rc<CoreState>, stream: S, remote: SocketAddr, identities: Vec<Id>)
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + 'static,
{
    let (mut reader, writer) = futures_lite::io::split(stream);
    let (outbox, outbox_receiver) = async_channel::unbounded();
    let (resume, resume_receiver) = async_channel::bounded(1);
    let (handshake, handshake_receiver) = async_channel::bounded(1);
    let queued_bytes = Rc::new(Cell::new(0));
    let conn = Rc::new(Conn {
        id: state.allocate_conn_id(),
        remote,
        session_id: Cell::new(0),
        timeout_ms: Cell::new(0),
        auth: RefCell::new(Arc::new(
            std::iter::once(Id {
                scheme: "ip".into(),
                id: remote.ip().to_string(),
            })
            .chain(identities)
            .collect(),
        )),
        sasl: RefCell::new(None),
        outbox,
        queued_bytes: queued_bytes.clone(),
        queue: RefCell::new(VecDeque::new()),
        writes_in_flight: Cell::new(0),
        outstanding: Cell::new(0),
        resume,
        handshake,
        closed: Cell::new(false),
        closed_event: event_listener::Event::new(),
        paused: Cell::new(false),
        stats: ConnStats::default(),
        server_stats: state.stats.clone(),
    });
    conn.stats.established_ms.set(wall_clock_ms());
    conn.stats.last_op.set("NA");
    state.connection_opened();
    state.conns.borrow_mut().insert(conn.id, conn.clone());
    state
        .stats
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let released = Rc::new(Cell::new(false));
    let release_slot = {
        let state = state.clone();
        let released = released.clone();
        move || {
            if !released.replace(true) {
                state.connection_counts.release(remote.ip());
            }
        }
    };
    let writer_task = glommio::spawn_local(write_loop(
        writer,
        outbox_receiver,
        queued_bytes.clone(),
        release_slot.clone(),
    ));

    let outcome = read_loop(
        &state,
        &conn,
        &mut reader,
        &resume_receiver,
        &handshake_receiver,
        &queued_bytes,
    )
    .await;
    match &outcome {
        Ok(()) => debug!("connection {:#x} from {remote} ended", conn.id),
        Err(reason) => info!("closing connection {:#x} from {remote}: {reason}", conn.id),
    }
    conn.close("connection ended");
    writer_task.await;
    release_slot();
    state.conns.borrow_mut().remove(&conn.id);
    state.connection_closed();
    state.watches.borrow_mut().remove_conn(conn.id);
    state
        .stats
        .connections
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    // Requests that will never be answered no longer count against the limits.
    state.requests_finished(conn.outstanding.replace(0));
    let session_id = conn.session_id.get();
    if session_id != 0 {
        state.send_to_pipeline(PipelineInput::Closed {
            conn: ConnRef {
                core: state.core,
                conn_id: conn.id,
            },
            session_id,
        });
    }
}

async fn read_loop<R: futures_lite::AsyncRead + Unpin>(
    state: &Rc<CoreState>,
    conn: &Rc<Conn>,
    reader: &mut R,
    resume: &async_channel::Receiver<()>,
    handshake: &async_channel::Receiver<bool>,
    queued_bytes: &Rc<Cell<usize>>,
) -> Result<(), String> {
    let limits = &state.config.limits;
    let mut decoder = FrameDecoder::new(limits.frame_bytes_max);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut established = false;
    let mut checked_four_letter_word = false;
    loop {
        if conn.is_closed() {
            return Ok(());
        }
        if queued_bytes.get() > limits.outbound_bytes_per_connection_max {
            return Err(format!(
                "client is not reading its replies ({} bytes queued)",
                queued_bytes.get()
            ));
        }
        let count = reader
            .read(&mut buffer)
            .await
            .map_err(|error| format!("read error: {error}"))?;
        if count == 0 {
            return Ok(());
        }
        decoder.extend(&buffer[..count]);
        if !checked_four_letter_word {
            // A four-letter word takes the place of the first frame's length
            // (NIOServerCnxn.checkFourLetterWord).
            let Some(head) = decoder.peek(4) else {
                continue;
            };
            checked_four_letter_word = true;
            match crate::fourlw::classify_first_bytes(head) {
                crate::fourlw::FirstBytes::TlsHandshake => {
                    // Read as a length this would be hundreds of MiB; say what it is instead.
                    return Err(
                        "a TLS handshake on a plaintext client port (use secureClientPort, \
                         or client.portUnification=true)"
                            .into(),
                    );
                }
                crate::fourlw::FirstBytes::Frame => {}
                crate::fourlw::FirstBytes::Word(word) => {
                    let word = word.to_string();
                    // stmk is followed by the new mask, a big-endian long
                    // (NIOServerCnxn.checkFourLetterWord reads 8 more bytes).
                    let argument = if word == "stmk" {
                        match decoder.peek(12) {
                            Some(bytes) => {
                                let mut long = [0u8; 8];
                                long.copy_from_slice(&bytes[4..12]);
                                Some(i64::from_be_bytes(long))
                            }
                            None => {
                                checked_four_letter_word = false;
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    let context = crate::fourlw::WordContext {
                        config: &state.config,
                        stats: &state.stats,
                        admin: &state.admin,
                        view: state.view(),
                    };
                    let answer = match argument {
                        Some(mask) => crate::fourlw::set_trace_mask(&context, mask),
                        None => crate::fourlw::answer(&context, &word).await,
                    };
                    conn.send_unmeasured(answer.into_bytes());
                    conn.close("four-letter word answered");
                    return Ok(());
                }
            }
        }
        loop {
            // Backpressure, frame by frame so that the limits are exact: while this
            // connection or this core's share of globalOutstandingLimit is full, the frames
            // already received wait and the socket is not read (ZooKeeper's disableRecv);
            // nothing is refused. The handshake and four-letter words are never held back.
            if established {
                wait_for_room(state, conn, resume).await;
                if conn.is_closed() {
                    return Ok(());
                }
            }
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame.to_vec(),
                Ok(None) => break,
                Err(error) => return Err(error.to_string()),
            };
            if !established {
                let (request, read_only_flag) = decode_connect(&frame)
                    .map_err(|error| format!("malformed ConnectRequest: {error}"))?;
                let last_zxid = state.view().zxid;
                if request.last_zxid_seen > last_zxid {
                    // ZooKeeperServer.processConnectRequest: a client that has seen a newer
                    // state than this server's must go elsewhere.
                    return Err(format!(
                        "client has seen zxid {:#x}, our last zxid is {last_zxid:#x}",
                        request.last_zxid_seen
                    ));
                }
                state.send_to_pipeline(PipelineInput::Connect {
                    conn: ConnRef {
                        core: state.core,
                        conn_id: conn.id,
                    },
                    request,
                    read_only_flag,
                });
                match handshake.recv().await {
                    Ok(true) => established = true,
                    _ => return Ok(()),
                }
                continue;
            }
            conn.handle_request(state, &frame)?;
        }
        // A busy connection must not starve the core's other tasks (the dispatcher that
        // delivers replies, other connections): glommio is cooperative.
        glommio::yield_if_needed().await;
    }
}

/// Waits until this connection may take one more request: fewer than
/// `outstanding_per_connection_max` of its own unanswered, and its core under its share of
/// `globalOutstandingLimit`. Returns early when the connection closes.
async fn wait_for_room(state: &CoreState, conn: &Conn, resume: &async_channel::Receiver<()>) {
    let per_connection_max = state.config.limits.outstanding_per_connection_max;
    if conn.outstanding() < per_connection_max && state.has_capacity() {
        return;
    }
    conn.paused.set(true);
    state.connection_paused(true);
    while conn.outstanding() >= per_connection_max && !conn.is_closed() {
        let _ = resume.recv().await;
    }
    state.wait_for_capacity(conn).await;
    conn.paused.set(false);
    state.connection_paused(false);
}
