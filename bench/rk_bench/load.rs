//! [io] The pipelined workloads (create, set, get, get-children, mixed, multi): each generator
//! thread drives its share of the sessions from one mio loop. A session writes `outstanding`
//! requests, then sends one more for every reply, so the server always has K requests of it.
//!
//! ZooKeeper answers a session's requests in order (FIFO client order), so the requests in
//! flight are a queue and each reply must carry the xid at its head.

use std::collections::VecDeque;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use ringkeeper::jute::protocol::{xid, OpCode};
use ringkeeper::jute::records::{GetChildrenResponse, GetDataResponse, Stat};
use ringkeeper::jute::{Reader, Record};

use crate::conn::{Conn, ReadOutcome, READ_CHUNK_BYTES};
use crate::keys::Rng;
use crate::options::Workload;
use crate::run::{Shared, Window, WorkerResult};
use crate::stats::{OpKind, Stats};
use crate::value::{encode_value, Acked};
use crate::verify::{self, VerifyError};
use crate::wire::{self, MultiResult};

/// How long connecting all sessions of a thread may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for replies in flight once the window has closed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often idle sessions are checked for a due ping.
const PING_CHECK_INTERVAL: Duration = Duration::from_millis(100);

enum PendingOp {
    Get { key: u32, acked: Acked },
    Set { key: u32, seq: u64, acked: Acked },
    Create { number: u64 },
    Children,
    Multi { writes: Vec<(u32, u64, Acked)> },
    Close,
}

struct Pending {
    xid: i32,
    op: PendingOp,
    sent: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshake,
    Ready,
    Closing,
    Dead,
}

struct Logic {
    state: State,
    rng: Rng,
    pending: VecDeque<Pending>,
    next_xid: i32,
    created: u64,
    last_zxid: i64,
    value: Vec<u8>,
    create_prefix: String,
    scratch_keys: Vec<u32>,
    seen_children: Vec<bool>,
    /// Open loop: requests issued since the load began.
    issued: u64,
}

struct Session {
    conn: Conn,
    logic: Logic,
}

/// Context shared by every session of the thread during one frame's handling.
struct Context<'a> {
    shared: &'a Shared,
    stats: &'a mut Stats,
    window: Window,
    issuing: bool,
    now: Instant,
}

impl Logic {
    fn take_xid(&mut self) -> i32 {
        let xid = self.next_xid;
        // Positive xids only; the negative ones are reserved (ClientCnxn).
        self.next_xid = if self.next_xid == i32::MAX {
            1
        } else {
            self.next_xid + 1
        };
        xid
    }

    /// Queues the next request of the workload into `out`.
    fn issue(&mut self, ctx: &Context<'_>, out: &mut Vec<u8>) {
        let shared = ctx.shared;
        let options = &shared.options;
        let workload = match options.workload {
            Workload::Mixed => {
                if self.rng.unit() < options.read_ratio {
                    Workload::Get
                } else {
                    Workload::Set
                }
            }
            other => other,
        };
        let xid = self.take_xid();
        let op = match workload {
            Workload::Get => {
                let key = shared.chooser.choose(&mut self.rng);
                let acked = shared.keys.acked(key);
                wire::push_request(out, xid, OpCode::GetData, |w| {
                    w.write_string(&shared.layout.key_paths[key as usize]);
                    w.write_bool(false);
                });
                PendingOp::Get { key, acked }
            }
            Workload::Set => {
                let key = shared.chooser.choose(&mut self.rng);
                let acked = shared.keys.acked(key);
                let seq = shared.keys.issue(key);
                self.value.clear();
                encode_value(key, seq, options.value_bytes, &mut self.value);
                wire::push_request(out, xid, OpCode::SetData, |w| {
                    wire::write_set(w, &shared.layout.key_paths[key as usize], &self.value)
                });
                PendingOp::Set { key, seq, acked }
            }
            Workload::Create => {
                let number = self.created;
                self.created += 1;
                let path = format!("{}{number}", self.create_prefix);
                if self.value.len() != options.value_bytes {
                    self.value.clear();
                    encode_value(0, 0, options.value_bytes, &mut self.value);
                }
                wire::push_request(out, xid, OpCode::Create, |w| {
                    wire::write_create(w, &path, &self.value, 0)
                });
                PendingOp::Create { number }
            }
            Workload::GetChildren => {
                wire::push_request(out, xid, OpCode::GetChildren, |w| {
                    w.write_string(&shared.layout.keys_dir);
                    w.write_bool(false);
                });
                PendingOp::Children
            }
            Workload::Multi => {
                let mut keys = std::mem::take(&mut self.scratch_keys);
                shared
                    .chooser
                    .choose_distinct(&mut self.rng, options.multi_ops, &mut keys);
                let mut writes = Vec::with_capacity(keys.len());
                let mut values = Vec::with_capacity(keys.len());
                for &key in &keys {
                    let acked = shared.keys.acked(key);
                    let seq = shared.keys.issue(key);
                    let mut value = Vec::with_capacity(options.value_bytes);
                    encode_value(key, seq, options.value_bytes, &mut value);
                    values.push(value);
                    writes.push((key, seq, acked));
                }
                wire::push_request(out, xid, OpCode::Multi, |w| {
                    for ((key, _, _), value) in writes.iter().zip(&values) {
                        wire::write_multi_header(w, OpCode::SetData as i32, false);
                        wire::write_set(w, &shared.layout.key_paths[*key as usize], value);
                    }
                    wire::write_multi_header(w, -1, true);
                });
                self.scratch_keys = keys;
                PendingOp::Multi { writes }
            }
            Workload::Mixed
            | Workload::EphemeralChurn
            | Workload::WatchFanout
            | Workload::SessionStorm => unreachable!("not a pipelined workload"),
        };
        self.pending.push_back(Pending {
            xid,
            op,
            sent: ctx.now,
        });
    }

    fn fail(&mut self, stats: &mut Stats, context: &str, error: VerifyError) {
        stats.verification_error(context, &error);
    }

    /// Handles one reply frame. Returns false if the session can no longer be trusted (its
    /// reply stream is out of step) and must be dropped.
    fn on_frame(&mut self, frame: &[u8], ctx: &mut Context<'_>, out: &mut Vec<u8>) -> bool {
        if self.state == State::Handshake {
            return match wire::parse_connect_response(frame) {
                Ok(response) if response.time_out > 0 => {
                    self.state = State::Ready;
                    true
                }
                Ok(_) => {
                    ctx.stats.connect_failures += 1;
                    false
                }
                Err(error) => {
                    ctx.stats.connect_failures += 1;
                    self.fail(
                        ctx.stats,
                        "connect",
                        VerifyError::Malformed(error.to_string()),
                    );
                    false
                }
            };
        }
        let mut reader = Reader::new(frame);
        let header = match wire::parse_reply_header(&mut reader) {
            Ok(header) => header,
            Err(error) => {
                self.fail(
                    ctx.stats,
                    "reply",
                    VerifyError::Malformed(error.to_string()),
                );
                return false;
            }
        };
        if header.xid == xid::PING || header.xid == xid::NOTIFICATION {
            return true;
        }
        let Some(pending) = self.pending.pop_front() else {
            self.fail(
                ctx.stats,
                "reply",
                VerifyError::XidOrder {
                    expected: 0,
                    actual: header.xid,
                },
            );
            return false;
        };
        if header.xid != pending.xid {
            self.fail(
                ctx.stats,
                "reply",
                VerifyError::XidOrder {
                    expected: pending.xid,
                    actual: header.xid,
                },
            );
            return false;
        }
        if let Err(error) = verify::check_zxid(&mut self.last_zxid, header.zxid) {
            self.fail(ctx.stats, "reply", error);
        }
        let in_window = ctx.window.contains(ctx.now);
        if let PendingOp::Close = pending.op {
            self.state = State::Dead;
            return true;
        }
        if header.err != 0 {
            if in_window {
                ctx.stats.error(header.err);
            }
        } else {
            match self.check(&pending.op, &mut reader, header.zxid, ctx) {
                Ok(kind) => {
                    if in_window {
                        ctx.stats.record(kind, ctx.now - pending.sent);
                    }
                }
                Err((context, error)) => self.fail(ctx.stats, context, error),
            }
        }
        // Closed loop: every reply makes room for the next request. Open loop (--rate):
        // the worker issues on its schedule instead.
        if ctx.issuing && self.state == State::Ready && ctx.shared.options.rate.is_none() {
            self.issue(ctx, out);
        }
        true
    }

    /// Checks a successful reply's body against what was asked.
    fn check(
        &mut self,
        op: &PendingOp,
        reader: &mut Reader<'_>,
        reply_zxid: i64,
        ctx: &Context<'_>,
    ) -> Result<OpKind, (&'static str, VerifyError)> {
        let shared = ctx.shared;
        let value_bytes = shared.options.value_bytes;
        let malformed = |context| {
            move |error: ringkeeper::jute::JuteError| {
                (context, VerifyError::Malformed(error.to_string()))
            }
        };
        match op {
            PendingOp::Get { key, acked } => {
                let response = GetDataResponse::decode(reader).map_err(malformed("get"))?;
                verify::check_get(
                    *key,
                    response.data.as_deref(),
                    &response.stat,
                    value_bytes,
                    *acked,
                    shared.keys.issued(*key),
                )
                .map_err(|e| ("get", e))?;
                Ok(OpKind::Get)
            }
            PendingOp::Set { key, seq, acked } => {
                let stat = Stat::decode(reader).map_err(malformed("set"))?;
                verify::check_set(&stat, value_bytes, *acked, reply_zxid)
                    .map_err(|e| ("set", e))?;
                shared.keys.acknowledge(*key, stat.version, *seq);
                Ok(OpKind::Set)
            }
            PendingOp::Create { number } => {
                let path = reader.read_string().map_err(malformed("create"))?;
                let expected = format!("{}{number}", self.create_prefix);
                verify::check_created_path(&expected, &path).map_err(|e| ("create", e))?;
                Ok(OpKind::Create)
            }
            PendingOp::Children => {
                let response =
                    GetChildrenResponse::decode(reader).map_err(malformed("get-children"))?;
                verify::check_key_children(
                    &response.children,
                    shared.keys.len(),
                    &mut self.seen_children,
                )
                .map_err(|e| ("get-children", e))?;
                Ok(OpKind::GetChildren)
            }
            PendingOp::Multi { writes } => {
                let results =
                    wire::parse_multi_response(reader, writes.len()).map_err(malformed("multi"))?;
                if results.len() != writes.len() {
                    return Err((
                        "multi",
                        VerifyError::Malformed(format!(
                            "{} results for {} ops",
                            results.len(),
                            writes.len()
                        )),
                    ));
                }
                for ((key, seq, acked), result) in writes.iter().zip(results) {
                    match result {
                        MultiResult::SetData(stat) => {
                            verify::check_set(&stat, value_bytes, *acked, reply_zxid)
                                .map_err(|e| ("multi", e))?;
                            shared.keys.acknowledge(*key, stat.version, *seq);
                        }
                        other => {
                            return Err((
                                "multi",
                                VerifyError::Malformed(format!(
                                    "successful multi with result {other:?}"
                                )),
                            ))
                        }
                    }
                }
                Ok(OpKind::Multi)
            }
            PendingOp::Close => Ok(OpKind::Get),
        }
    }
}

/// Reads a session's socket and handles every whole frame; false if the session is lost.
fn service(session: &mut Session, ctx: &mut Context<'_>, scratch: &mut [u8]) -> bool {
    let outcome = session.conn.read_available(scratch);
    loop {
        let frame = match session.conn.decoder.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(error) => {
                ctx.stats
                    .verification_error("frame", &VerifyError::Malformed(error.to_string()));
                return false;
            }
        };
        ctx.now = Instant::now();
        if !session.logic.on_frame(frame, ctx, &mut session.conn.out) {
            return false;
        }
    }
    if outcome == ReadOutcome::Closed {
        return session.logic.state == State::Dead;
    }
    if !session.conn.out.is_empty() {
        session.conn.last_send = ctx.now;
    }
    session.conn.flush().is_ok()
}

/// Runs this thread's sessions; `first_session` numbers them globally.
pub fn run_worker(
    shared: &Shared,
    worker: usize,
    session_indexes: Vec<usize>,
    barrier: &Barrier,
) -> WorkerResult {
    let mut stats = Stats::new();
    let mut result = WorkerResult::default();
    let mut poll = match Poll::new() {
        Ok(poll) => poll,
        Err(error) => {
            eprintln!("rk-bench: poll: {error}");
            barrier.wait();
            return result;
        }
    };
    let options = &shared.options;
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; READ_CHUNK_BYTES];
    let mut sessions: Vec<Option<Session>> = Vec::with_capacity(session_indexes.len());
    let start = Instant::now();
    for (slot, &index) in session_indexes.iter().enumerate() {
        match Conn::connect(shared.server, poll.registry(), Token(slot), start) {
            Ok(mut conn) => {
                wire::push_connect(&mut conn.out, options.session_timeout_ms());
                let _ = conn.flush();
                sessions.push(Some(Session {
                    conn,
                    logic: Logic {
                        state: State::Handshake,
                        rng: Rng::new(options.seed, index as u64),
                        pending: VecDeque::with_capacity(options.outstanding),
                        next_xid: 1,
                        created: 0,
                        last_zxid: 0,
                        value: Vec::with_capacity(options.value_bytes),
                        create_prefix: format!("{}/w{worker}s{index}-", shared.layout.create_dir),
                        scratch_keys: Vec::new(),
                        seen_children: Vec::new(),
                        issued: 0,
                    },
                }));
            }
            Err(_) => {
                stats.connect_failures += 1;
                sessions.push(None);
            }
        }
    }

    let mut ctx_window = Window::new(start, Duration::ZERO, Duration::ZERO);
    let mut load_begin = start;
    let mut started = false;
    let mut issuing = false;
    let mut drain_deadline = None;
    let mut closing_deadline = None;
    let mut last_ping_check = start;
    let timeout_third = options.session_timeout / 3;
    loop {
        let now = Instant::now();
        let in_handshake = sessions
            .iter()
            .flatten()
            .any(|s| s.logic.state == State::Handshake);
        if !started && !in_handshake {
            started = true;
            // Every session of this thread is connected (or failed): wait for the others,
            // then start the load together.
            barrier.wait();
            let begin = Instant::now();
            load_begin = begin;
            ctx_window = Window::new(begin, options.warmup, options.duration);
            issuing = true;
            let ctx = Context {
                shared,
                stats: &mut stats,
                window: ctx_window,
                issuing,
                now: begin,
            };
            for session in sessions.iter_mut().flatten() {
                if session.logic.state == State::Ready {
                    let initial = if options.rate.is_some() {
                        0
                    } else {
                        options.outstanding
                    };
                    for _ in 0..initial {
                        session.logic.issue(&ctx, &mut session.conn.out);
                    }
                    session.conn.last_send = begin;
                    if session.conn.flush().is_err() {
                        ctx.stats.sessions_lost += 1;
                        session.logic.state = State::Dead;
                    }
                }
            }
            continue;
        }
        if in_handshake && now - start > CONNECT_TIMEOUT {
            for slot in sessions.iter_mut() {
                if slot
                    .as_ref()
                    .is_some_and(|s| s.logic.state == State::Handshake)
                {
                    stats.connect_failures += 1;
                    *slot = None;
                }
            }
            continue;
        }
        if issuing && now >= ctx_window.end {
            issuing = false;
            drain_deadline = Some(now + DRAIN_TIMEOUT);
        }
        if let Some(deadline) = drain_deadline {
            let drained = sessions
                .iter()
                .flatten()
                .all(|s| s.logic.pending.is_empty() || s.logic.state == State::Dead);
            if drained || now >= deadline {
                drain_deadline = None;
                closing_deadline = Some(now + CLOSE_TIMEOUT);
                for session in sessions.iter_mut().flatten() {
                    session.logic.pending.clear();
                    if session.logic.state == State::Ready {
                        let xid = session.logic.take_xid();
                        wire::push_request(
                            &mut session.conn.out,
                            xid,
                            OpCode::CloseSession,
                            |_| {},
                        );
                        session.logic.pending.push_back(Pending {
                            xid,
                            op: PendingOp::Close,
                            sent: now,
                        });
                        session.logic.state = State::Closing;
                        let _ = session.conn.flush();
                    }
                }
            }
        }
        if let Some(deadline) = closing_deadline {
            let closed = sessions
                .iter()
                .flatten()
                .all(|s| s.logic.state == State::Dead);
            if closed || now >= deadline {
                break;
            }
        }
        if let (Some(rate), true) = (options.rate, issuing) {
            // Open loop: each session is due (elapsed × its share of the rate) requests; it
            // sends what is due as long as it has fewer than `outstanding` in flight.
            let per_session = rate / options.sessions.max(1) as f64;
            let elapsed = now.saturating_duration_since(load_begin).as_secs_f64();
            let due = (elapsed * per_session) as u64;
            let ctx = Context {
                shared,
                stats: &mut stats,
                window: ctx_window,
                issuing,
                now,
            };
            for session in sessions.iter_mut().flatten() {
                if session.logic.state != State::Ready {
                    continue;
                }
                let mut sent = false;
                while session.logic.issued < due
                    && session.logic.pending.len() < options.outstanding
                {
                    session.logic.issue(&ctx, &mut session.conn.out);
                    session.logic.issued += 1;
                    sent = true;
                }
                // Behind schedule with the window full: skip what cannot be sent rather
                // than burst later (the report's throughput shows the shortfall).
                if session.logic.issued < due {
                    session.logic.issued = due;
                }
                if sent {
                    session.conn.last_send = now;
                    let _ = session.conn.flush();
                }
            }
        }
        if now - last_ping_check >= PING_CHECK_INTERVAL {
            last_ping_check = now;
            for session in sessions.iter_mut().flatten() {
                if session.logic.state == State::Ready
                    && now - session.conn.last_send >= timeout_third
                {
                    wire::push_request(&mut session.conn.out, xid::PING, OpCode::Ping, |_| {});
                    session.conn.last_send = now;
                    let _ = session.conn.flush();
                }
            }
        }
        let poll_wait = if options.rate.is_some() {
            Duration::from_micros(200)
        } else {
            Duration::from_millis(5)
        };
        if poll.poll(&mut events, Some(poll_wait)).is_err() {
            continue;
        }
        let mut ctx = Context {
            shared,
            stats: &mut stats,
            window: ctx_window,
            issuing,
            now: Instant::now(),
        };
        for event in events.iter() {
            let slot = event.token().0;
            let Some(Some(session)) = sessions.get_mut(slot) else {
                continue;
            };
            if !service(session, &mut ctx, &mut scratch) {
                if session.logic.state != State::Dead {
                    if session.logic.state == State::Handshake {
                        ctx.stats.connect_failures += 1;
                    } else {
                        ctx.stats.sessions_lost += 1;
                    }
                }
                session.conn.deregister(poll.registry());
                session.logic.state = State::Dead;
                if session.logic.created > 0 {
                    result
                        .created
                        .push((session.logic.create_prefix.clone(), session.logic.created));
                }
                sessions[slot] = None;
            }
        }
    }
    for session in sessions.iter().flatten() {
        if session.logic.created > 0 {
            result
                .created
                .push((session.logic.create_prefix.clone(), session.logic.created));
        }
    }
    result.stats = stats;
    result
}
