//! [io] watch-fanout: M watcher sessions hold a data watch on one znode; one writer session
//! sets it; a sample is the time from sending the write until every watcher has its
//! NodeDataChanged event (and one `notification` sample per watcher). Watches are one-shot
//! (ZooKeeper Programmer's Guide, "ZooKeeper Watches"), so each watcher re-registers with a
//! getData that must return the value just written; the next round starts once all have.

use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use ringkeeper::jute::protocol::{xid, EventType, OpCode};
use ringkeeper::jute::records::{GetDataResponse, Stat, WatcherEvent};
use ringkeeper::jute::{Reader, Record};

use crate::conn::{read_frames, Conn, ReadOutcome, READ_CHUNK_BYTES};
use crate::run::{Shared, Window, WorkerResult};
use crate::setup::WATCH_KEY;
use crate::stats::{OpKind, Stats};
use crate::value::{decode_value, encode_value};
use crate::verify::VerifyError;
use crate::wire;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A round that takes longer than this is abandoned and the run ends.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

struct Member {
    conn: Option<Conn>,
    connected: bool,
    next_xid: i32,
    /// Watcher: xid of its outstanding getData, if any.
    pending_xid: Option<i32>,
    /// Watcher: notified in the current round.
    notified: bool,
    /// Watcher: registered (its getData answered) for the current round.
    registered: bool,
}

pub fn run_fanout(shared: &Shared) -> WorkerResult {
    let mut result = WorkerResult::default();
    let Ok(mut poll) = Poll::new() else {
        return result;
    };
    let stats = &mut result.stats;
    let options = &shared.options;
    let watchers = options.watchers;
    let writer = watchers;
    let start = Instant::now();
    let mut members: Vec<Member> = (0..=watchers)
        .map(|token| {
            let conn = Conn::connect(shared.server, poll.registry(), Token(token), start)
                .ok()
                .map(|mut conn| {
                    wire::push_connect(&mut conn.out, options.session_timeout_ms());
                    let _ = conn.flush();
                    conn
                });
            Member {
                conn,
                connected: false,
                next_xid: 1,
                pending_xid: None,
                notified: false,
                registered: false,
            }
        })
        .collect();
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; READ_CHUNK_BYTES];
    // Connect everyone.
    while members.iter().any(|m| m.conn.is_some() && !m.connected) {
        if start.elapsed() > CONNECT_TIMEOUT
            || poll
                .poll(&mut events, Some(Duration::from_millis(5)))
                .is_err()
        {
            break;
        }
        for event in events.iter() {
            let Some(member) = members.get_mut(event.token().0) else {
                continue;
            };
            let Some(conn) = member.conn.as_mut() else {
                continue;
            };
            let (frames, outcome) = read_frames(conn, &mut scratch);
            match frames.ok().and_then(|f| f.first().cloned()) {
                Some(frame) => match wire::parse_connect_response(&frame) {
                    Ok(response) if response.time_out > 0 => member.connected = true,
                    _ => member.conn = None,
                },
                None if outcome == ReadOutcome::Closed => member.conn = None,
                None => {
                    let _ = conn.flush();
                }
            }
        }
    }
    if members.iter().any(|m| !m.connected) {
        stats.connect_failures += members.iter().filter(|m| !m.connected).count() as u64;
        eprintln!("rk-bench: watch-fanout: not every session connected; no rounds run");
        return result;
    }

    let begin = Instant::now();
    let window = Window::new(begin, options.warmup, options.duration);
    let mut round: u64 = 0;
    let mut write_sent: Option<Instant> = None;
    let mut write_xid: Option<i32> = None;
    let mut round_start = begin;
    let mut value = Vec::with_capacity(options.value_bytes);
    // Every watcher registers for round 0 (value seq 0, written at population).
    for member in members.iter_mut().take(watchers) {
        register(shared, member);
    }
    loop {
        let now = Instant::now();
        if now - round_start > ROUND_TIMEOUT {
            stats.verification_error(
                "watch-fanout",
                &VerifyError::Malformed(format!(
                    "round {round} did not complete in {ROUND_TIMEOUT:?}"
                )),
            );
            break;
        }
        let all_registered = members[..watchers].iter().all(|m| m.registered);
        if write_sent.is_none() && all_registered {
            if now >= window.end {
                break;
            }
            // Everyone watches: write the next value.
            value.clear();
            encode_value(WATCH_KEY, round + 1, options.value_bytes, &mut value);
            let member = &mut members[writer];
            let xid = member.next_xid;
            member.next_xid += 1;
            if let Some(conn) = member.conn.as_mut() {
                wire::push_request(&mut conn.out, xid, OpCode::SetData, |w| {
                    wire::write_set(w, &shared.layout.watch_path, &value)
                });
                let _ = conn.flush();
            }
            for member in members[..watchers].iter_mut() {
                member.notified = false;
                member.registered = false;
            }
            write_sent = Some(Instant::now());
            write_xid = Some(xid);
            round_start = now;
        }
        if poll
            .poll(&mut events, Some(Duration::from_millis(5)))
            .is_err()
        {
            continue;
        }
        for event in events.iter() {
            let token = event.token().0;
            let Some(member) = members.get_mut(token) else {
                continue;
            };
            let Some(conn) = member.conn.as_mut() else {
                continue;
            };
            let (frames, outcome) = read_frames(conn, &mut scratch);
            let now = Instant::now();
            let Ok(frames) = frames else {
                stats.verification_error(
                    "watch-fanout",
                    &VerifyError::Malformed("bad frame".into()),
                );
                member.conn = None;
                continue;
            };
            for frame in frames {
                if token == writer {
                    on_writer_frame(&frame, &mut write_xid, round, stats);
                } else {
                    on_watcher_frame(
                        shared, member, &frame, round, write_sent, now, &window, stats,
                    );
                }
            }
            if outcome == ReadOutcome::Closed {
                stats.sessions_lost += 1;
                member.conn = None;
            } else if let Some(conn) = member.conn.as_mut() {
                let _ = conn.flush();
            }
        }
        if members.iter().any(|m| m.conn.is_none()) {
            eprintln!("rk-bench: watch-fanout: a session was lost; stopping");
            break;
        }
        if let Some(sent) = write_sent {
            if write_xid.is_none() && members[..watchers].iter().all(|m| m.notified) {
                let now = Instant::now();
                if window.contains(now) {
                    stats.record(OpKind::Fanout, now - sent);
                }
                write_sent = None;
                round += 1;
            }
        }
    }
    for member in members.iter_mut() {
        if let Some(conn) = member.conn.as_mut() {
            wire::push_request(&mut conn.out, member.next_xid, OpCode::CloseSession, |_| {});
            let _ = conn.flush();
        }
    }
    result
}

/// Sends getData(watch) for the watch node.
fn register(shared: &Shared, member: &mut Member) {
    let xid = member.next_xid;
    member.next_xid += 1;
    if let Some(conn) = member.conn.as_mut() {
        wire::push_request(&mut conn.out, xid, OpCode::GetData, |w| {
            w.write_string(&shared.layout.watch_path);
            w.write_bool(true);
        });
        let _ = conn.flush();
    }
    member.pending_xid = Some(xid);
}

fn on_writer_frame(frame: &[u8], write_xid: &mut Option<i32>, round: u64, stats: &mut Stats) {
    let mut reader = Reader::new(frame);
    let Ok(header) = wire::parse_reply_header(&mut reader) else {
        stats.verification_error(
            "watch-fanout write",
            &VerifyError::Malformed("header".into()),
        );
        return;
    };
    if Some(header.xid) != *write_xid {
        return;
    }
    *write_xid = None;
    if header.err != 0 {
        stats.error(header.err);
        return;
    }
    match Stat::decode(&mut reader) {
        // Single writer: the watch node's version is the number of rounds written.
        Ok(stat) if stat.version as u64 == round + 1 => {}
        Ok(stat) => stats.verification_error(
            "watch-fanout write",
            &VerifyError::VersionNotIncreasing {
                version: stat.version,
                acked_version: round as u32,
            },
        ),
        Err(error) => stats.verification_error(
            "watch-fanout write",
            &VerifyError::Malformed(error.to_string()),
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn on_watcher_frame(
    shared: &Shared,
    member: &mut Member,
    frame: &[u8],
    round: u64,
    write_sent: Option<Instant>,
    now: Instant,
    window: &Window,
    stats: &mut Stats,
) {
    let mut reader = Reader::new(frame);
    let Ok(header) = wire::parse_reply_header(&mut reader) else {
        stats.verification_error("watch-fanout", &VerifyError::Malformed("header".into()));
        return;
    };
    if header.xid == xid::NOTIFICATION {
        match WatcherEvent::decode(&mut reader) {
            Ok(event)
                if event.event_type == EventType::NodeDataChanged as i32
                    && event.path == shared.layout.watch_path
                    && write_sent.is_some()
                    && member.registered_or_pending_done() =>
            {
                member.notified = true;
                if let Some(sent) = write_sent {
                    if window.contains(now) {
                        stats.record(OpKind::Notification, now - sent);
                    }
                }
                register(shared, member);
            }
            Ok(event) => stats.verification_error(
                "watch-fanout",
                &VerifyError::Malformed(format!("unexpected event {event:?}")),
            ),
            Err(error) => {
                stats.verification_error("watch-fanout", &VerifyError::Malformed(error.to_string()))
            }
        }
        return;
    }
    if header.xid == xid::PING || Some(header.xid) != member.pending_xid {
        return;
    }
    member.pending_xid = None;
    if header.err != 0 {
        stats.error(header.err);
        return;
    }
    // The registering read of round r must see the value of round r: written by the single
    // writer, acknowledged (or notified) before the read was sent.
    let expected_seq = if write_sent.is_some() {
        round + 1
    } else {
        round
    };
    match GetDataResponse::decode(&mut reader) {
        Ok(response) => match decode_value(
            WATCH_KEY,
            response.data.as_deref(),
            shared.options.value_bytes,
        ) {
            Ok(seq) if seq == expected_seq => member.registered = true,
            Ok(seq) => stats.verification_error(
                "watch-fanout read",
                &VerifyError::Malformed(format!("read seq {seq}, expected {expected_seq}")),
            ),
            Err(error) => stats.verification_error("watch-fanout read", &VerifyError::Value(error)),
        },
        Err(error) => stats.verification_error(
            "watch-fanout read",
            &VerifyError::Malformed(error.to_string()),
        ),
    }
}

impl Member {
    /// A watch fires only after its registering read was answered.
    fn registered_or_pending_done(&self) -> bool {
        self.pending_xid.is_none()
    }
}
