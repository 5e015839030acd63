//! [io] session-storm: all `--sessions` sessions connect at once; one `storm-round` sample is
//! the time from the first connect until every ConnectResponse has arrived, and each session
//! adds a `connect` sample. Then every session is closed (closeSession) and the next round
//! starts, until the window ends.

use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use ringkeeper::jute::protocol::OpCode;

use crate::conn::{read_frames, Conn, ReadOutcome};
use crate::run::{Shared, Window, WorkerResult};
use crate::stats::OpKind;
use crate::verify::VerifyError;
use crate::wire;

/// A round still incomplete after this long is abandoned: its missing sessions are counted as
/// connect failures.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run_storm(shared: &Shared) -> WorkerResult {
    let mut result = WorkerResult::default();
    let Ok(mut poll) = Poll::new() else {
        return result;
    };
    let stats = &mut result.stats;
    let options = &shared.options;
    let mut events = Events::with_capacity(4096);
    let mut scratch = vec![0u8; 64 * 1024];
    let begin = Instant::now();
    let window = Window::new(begin, options.warmup, options.duration);
    while Instant::now() < window.end {
        // Open every session at once.
        let round_start = Instant::now();
        let mut conns: Vec<Option<Conn>> = (0..options.sessions)
            .map(|token| {
                Conn::connect(shared.server, poll.registry(), Token(token), round_start)
                    .ok()
                    .map(|mut conn| {
                        wire::push_connect(&mut conn.out, options.session_timeout_ms());
                        let _ = conn.flush();
                        conn
                    })
            })
            .collect();
        let mut connected = vec![false; options.sessions];
        let mut remaining = conns.iter().filter(|c| c.is_some()).count();
        stats.connect_failures += (options.sessions - remaining) as u64;
        while remaining > 0 && round_start.elapsed() < ROUND_TIMEOUT {
            if poll
                .poll(&mut events, Some(Duration::from_millis(5)))
                .is_err()
            {
                continue;
            }
            for event in events.iter() {
                let token = event.token().0;
                let Some(Some(conn)) = conns.get_mut(token) else {
                    continue;
                };
                if connected[token] {
                    continue;
                }
                let (frames, outcome) = read_frames(conn, &mut scratch);
                let now = Instant::now();
                match frames.ok().and_then(|f| f.first().cloned()) {
                    Some(frame) => {
                        match wire::parse_connect_response(&frame) {
                            Ok(response) if response.time_out > 0 => {
                                if window.contains(now) {
                                    stats.record(OpKind::Connect, now - round_start);
                                }
                                connected[token] = true;
                            }
                            Ok(_) => {
                                stats.connect_failures += 1;
                                conns[token] = None;
                            }
                            Err(error) => {
                                stats.verification_error(
                                    "session-storm",
                                    &VerifyError::Malformed(error.to_string()),
                                );
                                conns[token] = None;
                            }
                        }
                        remaining -= 1;
                    }
                    None if outcome == ReadOutcome::Closed => {
                        stats.connect_failures += 1;
                        conns[token] = None;
                        remaining -= 1;
                    }
                    None => {
                        let _ = conn.flush();
                    }
                }
            }
        }
        let now = Instant::now();
        if remaining == 0 && conns.iter().all(|c| c.is_some()) {
            if window.contains(now) {
                stats.record(OpKind::StormRound, now - round_start);
            }
        } else {
            stats.connect_failures += remaining as u64;
        }
        // Close every session and wait (bounded) for the server to drop the connections.
        for conn in conns.iter_mut().flatten() {
            wire::push_request(&mut conn.out, 1, OpCode::CloseSession, |_| {});
            let _ = conn.flush();
        }
        let close_start = Instant::now();
        let mut open = conns.iter().filter(|c| c.is_some()).count();
        while open > 0 && close_start.elapsed() < CLOSE_TIMEOUT {
            if poll
                .poll(&mut events, Some(Duration::from_millis(5)))
                .is_err()
            {
                continue;
            }
            for event in events.iter() {
                let token = event.token().0;
                let Some(Some(conn)) = conns.get_mut(token) else {
                    continue;
                };
                let (frames, outcome) = read_frames(conn, &mut scratch);
                // The close reply (or the server closing the socket) ends the session.
                if outcome == ReadOutcome::Closed || frames.is_ok_and(|f| !f.is_empty()) {
                    conn.deregister(poll.registry());
                    conns[token] = None;
                    open -= 1;
                }
            }
        }
        for conn in conns.iter_mut().flatten() {
            conn.deregister(poll.registry());
        }
    }
    result
}
