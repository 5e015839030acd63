//! [io] ephemeral-churn: each session slot repeats connect, create an ephemeral znode, close
//! the session; one sample is the whole cycle. Closing a session deletes its ephemerals
//! (ZooKeeper's closeSession transaction), so the znode count stays bounded.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use ringkeeper::jute::protocol::{xid, OpCode};
use ringkeeper::jute::Reader;

use crate::conn::{read_frames, Conn, ReadOutcome, READ_CHUNK_BYTES};
use crate::run::{Shared, Window, WorkerResult};
use crate::stats::{OpKind, Stats};
use crate::verify::{self, VerifyError};
use crate::wire;

/// How long one cycle may take before the slot gives up on it.
const CYCLE_TIMEOUT: Duration = Duration::from_secs(30);
const CREATE_XID: i32 = 1;
const CLOSE_XID: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Connecting,
    Creating,
    Closing,
    Idle,
}

struct Slot {
    index: usize,
    conn: Option<Conn>,
    step: Step,
    started: Instant,
    cycles: u64,
}

pub fn run_churn(
    shared: &Shared,
    worker: usize,
    indexes: Vec<usize>,
    barrier: &Barrier,
) -> WorkerResult {
    let mut result = WorkerResult::default();
    let Ok(mut poll) = Poll::new() else {
        barrier.wait();
        return result;
    };
    let stats = &mut result.stats;
    let options = &shared.options;
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; READ_CHUNK_BYTES];
    barrier.wait();
    let begin = Instant::now();
    let window = Window::new(begin, options.warmup, options.duration);
    let drain_end = window.end + CYCLE_TIMEOUT;
    let mut slots: Vec<Slot> = indexes
        .into_iter()
        .map(|index| Slot {
            index,
            conn: None,
            step: Step::Idle,
            started: begin,
            cycles: 0,
        })
        .collect();
    loop {
        let now = Instant::now();
        let issuing = now < window.end;
        for (token, slot) in slots.iter_mut().enumerate() {
            if slot.step == Step::Idle && issuing {
                start_cycle(shared, &poll, token, slot, stats, now);
            } else if slot.step != Step::Idle && now - slot.started > CYCLE_TIMEOUT {
                stats.sessions_lost += 1;
                end_cycle(&poll, slot);
            }
        }
        if !issuing && (slots.iter().all(|s| s.step == Step::Idle) || now >= drain_end) {
            break;
        }
        if poll
            .poll(&mut events, Some(Duration::from_millis(5)))
            .is_err()
        {
            continue;
        }
        for event in events.iter() {
            let Some(slot) = slots.get_mut(event.token().0) else {
                continue;
            };
            let Some(conn) = slot.conn.as_mut() else {
                continue;
            };
            let (frames, outcome) = read_frames(conn, &mut scratch);
            let frames = match frames {
                Ok(frames) => frames,
                Err(error) => {
                    stats.verification_error("churn", &VerifyError::Malformed(error));
                    end_cycle(&poll, slot);
                    continue;
                }
            };
            let now = Instant::now();
            for frame in frames {
                step(shared, worker, slot, &frame, stats, now, &window);
            }
            if slot.step == Step::Idle {
                end_cycle(&poll, slot);
                continue;
            }
            if outcome == ReadOutcome::Closed {
                if slot.step == Step::Connecting {
                    stats.connect_failures += 1;
                } else {
                    stats.sessions_lost += 1;
                }
                end_cycle(&poll, slot);
                continue;
            }
            if let Some(conn) = slot.conn.as_mut() {
                if conn.flush().is_err() {
                    stats.sessions_lost += 1;
                    end_cycle(&poll, slot);
                }
            }
        }
    }
    for slot in slots.iter_mut() {
        end_cycle(&poll, slot);
    }
    let _ = poll.registry();
    result
}

fn start_cycle(
    shared: &Shared,
    poll: &Poll,
    token: usize,
    slot: &mut Slot,
    stats: &mut Stats,
    now: Instant,
) {
    match Conn::connect(shared.server, poll.registry(), Token(token), now) {
        Ok(mut conn) => {
            wire::push_connect(&mut conn.out, shared.options.session_timeout_ms());
            let _ = conn.flush();
            slot.conn = Some(conn);
            slot.step = Step::Connecting;
            slot.started = now;
        }
        Err(_) => stats.connect_failures += 1,
    }
}

fn end_cycle(poll: &Poll, slot: &mut Slot) {
    if let Some(mut conn) = slot.conn.take() {
        conn.deregister(poll.registry());
    }
    slot.step = Step::Idle;
}

fn ephemeral_path(shared: &Shared, worker: usize, slot: &Slot) -> String {
    format!(
        "{}/w{worker}s{}-{}",
        shared.layout.ephemeral_dir, slot.index, slot.cycles
    )
}

fn step(
    shared: &Shared,
    worker: usize,
    slot: &mut Slot,
    frame: &[u8],
    stats: &mut Stats,
    now: Instant,
    window: &Window,
) {
    let path = ephemeral_path(shared, worker, slot);
    let Some(conn) = slot.conn.as_mut() else {
        return;
    };
    match slot.step {
        Step::Connecting => match wire::parse_connect_response(frame) {
            Ok(response) if response.time_out > 0 => {
                wire::push_request(&mut conn.out, CREATE_XID, OpCode::Create, |w| {
                    wire::write_create(w, &path, b"", 1)
                });
                slot.step = Step::Creating;
            }
            Ok(_) => {
                stats.connect_failures += 1;
                slot.step = Step::Idle;
            }
            Err(error) => {
                stats.verification_error("connect", &VerifyError::Malformed(error.to_string()));
                slot.step = Step::Idle;
            }
        },
        Step::Creating | Step::Closing => {
            let mut reader = Reader::new(frame);
            let header = match wire::parse_reply_header(&mut reader) {
                Ok(header) => header,
                Err(error) => {
                    stats.verification_error("churn", &VerifyError::Malformed(error.to_string()));
                    slot.step = Step::Idle;
                    return;
                }
            };
            if header.xid == xid::PING || header.xid == xid::NOTIFICATION {
                return;
            }
            let expected = if slot.step == Step::Creating {
                CREATE_XID
            } else {
                CLOSE_XID
            };
            if header.xid != expected {
                stats.verification_error(
                    "churn",
                    &VerifyError::XidOrder {
                        expected,
                        actual: header.xid,
                    },
                );
                slot.step = Step::Idle;
                return;
            }
            if slot.step == Step::Creating {
                if header.err != 0 {
                    if window.contains(now) {
                        stats.error(header.err);
                    }
                } else {
                    match reader.read_string() {
                        Ok(created) => {
                            if let Err(error) = verify::check_created_path(&path, &created) {
                                stats.verification_error("churn create", &error);
                            }
                        }
                        Err(error) => stats.verification_error(
                            "churn create",
                            &VerifyError::Malformed(error.to_string()),
                        ),
                    }
                }
                wire::push_request(&mut conn.out, CLOSE_XID, OpCode::CloseSession, |_| {});
                slot.step = Step::Closing;
            } else {
                if header.err == 0 && window.contains(now) {
                    stats.record(OpKind::ChurnCycle, now - slot.started);
                }
                slot.cycles += 1;
                slot.step = Step::Idle;
            }
        }
        Step::Idle => {}
    }
}
