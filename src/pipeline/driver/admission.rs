//! [io] The leader's admission queue: proposals held back while ZAB's window is full.
//!
//! A leader may have at most `outstanding_proposals_max` proposals in flight (uncommitted);
//! ZAB answers `Busy` to a write beyond that. A client must never see that answer: overload
//! slows a producer, it does not drop its request (ZooKeeper throttles by not reading the
//! sockets; its leader never refuses a learner's request for load). So before it preps
//! anything that would be proposed, the leader asks whether the window has room, and when it
//! has none the request waits here, unprepped, and is taken up, in arrival order, as commits
//! free the window.
//!
//! Order: while anything waits, every new proposal-making request waits behind it, whatever
//! its source (a local client, a learner's forward, a session expiry). Prep happens when a
//! request is admitted, against the pending tree at that moment, so a request is never
//! prepped against a tree that lacks an older request of its session. Each admitted request
//! makes at most one proposal, so admitting one while the window has room never fails.
//!
//! Bound: the queue holds at most what the servers let in. Each server's clients may have
//! `globalOutstandingLimit` requests unanswered, a learner forwards no more than its clients
//! sent, and expiries are at most one per session; the queue's length is reported as
//! `zk_admission_queue` in `mntr`.

use std::collections::VecDeque;

use super::*;
use crate::quorum::{Forwarded, Wire};
use crate::zab::ServerId;

/// A request that will make a proposal once the window has room.
#[derive(Debug)]
pub(super) enum Held {
    /// A client write (or sync), or a new session's ConnectRequest, received on this server:
    /// kept as the core sent it, and handled as if it arrived now when admitted.
    Client(PipelineInput),
    /// A learner's forwarded request.
    Forwarded {
        from: ServerId,
        id: u64,
        request: Forwarded,
    },
    /// A session whose timeout passed (already marked closing: no new write is taken for it).
    Expiry { session_id: i64 },
}

/// The queue and whether it is being drained (a request taken from it must not be queued
/// behind the ones still waiting).
#[derive(Debug, Default)]
pub(super) struct Admissions {
    waiting: VecDeque<Held>,
    admitting: bool,
}

impl Admissions {
    pub(super) fn len(&self) -> usize {
        self.waiting.len()
    }
}

impl Pipeline {
    /// True when a proposal-making request must wait: this server leads, and either the
    /// window is full or older requests wait already (standalone, and learners, never hold).
    pub(super) fn must_hold(&self) -> bool {
        let Some(ensemble) = self.ensemble.as_ref() else {
            return false;
        };
        if !ensemble.serving || !ensemble.peer.is_broadcasting() {
            return false;
        }
        let admissions = &self.admissions;
        (!admissions.admitting && !admissions.waiting.is_empty())
            || ensemble.peer.proposal_room() == 0
    }

    pub(super) fn hold(&mut self, held: Held) {
        self.admissions.waiting.push_back(held);
        self.stats
            .admission_queue
            .store(self.admissions.len() as i64, Ordering::Relaxed);
    }

    /// Takes up held requests, oldest first, while the window has room.
    pub(super) fn admit_held(&mut self) {
        while !self.admissions.waiting.is_empty() {
            let room = self
                .ensemble
                .as_ref()
                .filter(|ensemble| ensemble.serving && ensemble.peer.is_broadcasting())
                .map_or(0, |ensemble| ensemble.peer.proposal_room());
            if room == 0 {
                break;
            }
            let Some(held) = self.admissions.waiting.pop_front() else {
                break;
            };
            self.admissions.admitting = true;
            let zxid_before = self.batch.zxid();
            match held {
                Held::Client(input) => {
                    // Only writes and connects are held; neither asks for shutdown.
                    let _ = self.handle(input);
                }
                Held::Forwarded { from, id, request } => self.leader_forwarded(from, id, request),
                Held::Expiry { session_id } => self.expire_session(session_id),
            }
            self.admissions.admitting = false;
            // One request, one proposal at most: admission with room never holds again.
            assert!(
                self.batch.zxid() <= zxid_before + 1,
                "an admitted request made more than one proposal"
            );
        }
        self.stats
            .admission_queue
            .store(self.admissions.len() as i64, Ordering::Relaxed);
    }

    /// This server stopped leading: what waits here will not be proposed by it. Clients of
    /// this server lose their connections with every other one (the caller closes them all);
    /// a learner is told its request was not taken, and closes that client's connection;
    /// a session whose expiry waited lives on, to be expired by whoever leads next.
    pub(super) fn drop_held(&mut self) {
        let now = self.monotonic_ms();
        for held in std::mem::take(&mut self.admissions.waiting) {
            match held {
                Held::Forwarded { from, id, .. } => {
                    if let Some(ensemble) = self.ensemble.as_mut() {
                        ensemble.send(from, Wire::Rejected { id });
                    }
                }
                Held::Expiry { session_id } => self.sessions.reopen(session_id, now),
                Held::Client(_) => {}
            }
        }
        self.stats.admission_queue.store(0, Ordering::Relaxed);
    }
}
