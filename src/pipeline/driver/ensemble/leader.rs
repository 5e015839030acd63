//! [io] The leader's side of the ensemble shell: proposals of prepped transactions, learners'
//! forwarded requests (ZooKeeper's LearnerHandler feeding PrepRequestProcessor), session
//! ownership for SessionMoved, and the snapshots a lagging learner is synced with (SNAP).

use super::*;

impl Pipeline {
    /// A leader proposes a prepped transaction: the peer assigns its zxid, the pending tree
    /// takes it at once. `origin` is the learner and request id to tell (`Proposed`).
    pub(in crate::pipeline::driver) fn propose(
        &mut self,
        txn: &Txn,
        origin: Option<(ServerId, u64)>,
    ) -> Result<(i64, TxnResult), RejectReason> {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return Err(RejectReason::NotLeader { leader: None });
        };
        let now = ensemble.now_ms();
        let time_ms = wall_clock_ms();
        let mut actions = ensemble.peer.step(
            now,
            Input::Write {
                txn: txn.clone(),
                time_ms,
            },
        );
        let own = actions
            .iter()
            .position(|action| matches!(action, Action::Append(_)));
        let record = match own.map(|index| actions.remove(index)) {
            Some(Action::Append(record)) => record,
            _ => {
                let reason = actions
                    .iter()
                    .find_map(|action| match action {
                        Action::WriteRejected(reason) => Some(*reason),
                        _ => None,
                    })
                    .unwrap_or(RejectReason::Busy);
                self.perform(actions);
                return Err(reason);
            }
        };
        let zxid = record.zxid;
        if let (Txn::Reconfig { .. }, Some(ensemble)) = (txn, self.ensemble.as_mut()) {
            // From here until it commits, another reconfig is ReconfigInProgress.
            ensemble.last_seen_version = zxid;
        }
        // ZooKeeper's proposal sizes (mntr zk_last/min/max_proposal_size) are the serialized
        // transaction; ours is the record as logged and sent: header and encoded transaction.
        let mut payload = crate::jute::codec::Writer::new();
        crate::txnlog::format::encode_txn(&mut payload, &record.txn);
        self.stats.quorum.record_proposal_bytes(
            (crate::txnlog::format::RECORD_HEADER_BYTES + payload.len()) as i64,
        );
        let result = self.apply_txn(zxid, record.time_ms, &record.txn);
        let digest = self.batch.tree().digest();
        if let Some(ensemble) = self.ensemble.as_mut() {
            // The pending tree's digest after this txn: sent ahead of its proposals (the
            // Sends among `actions`, performed below) and informs.
            ensemble.recent_digests.record(zxid, digest);
            if let Some((to, id)) = origin {
                ensemble.send(to, Wire::Proposed { id, zxid });
            }
            ensemble.proposed.insert(zxid, record.clone());
        }
        self.records.push(record);
        self.perform(actions);
        Ok((zxid, result))
    }

    /// The leader takes a learner's forwarded request.
    pub(in crate::pipeline::driver) fn leader_forwarded(
        &mut self,
        from: ServerId,
        id: u64,
        request: Forwarded,
    ) {
        if self.quorum_role_for_clients() != Some(true) {
            if let Some(ensemble) = self.ensemble.as_mut() {
                ensemble.send(from, Wire::Rejected { id });
            }
            return;
        }
        // A full window holds the request back, in order with every other proposal; a
        // revalidation proposes nothing and is answered at once.
        if !matches!(request, Forwarded::Revalidate { .. }) && self.must_hold() {
            self.hold(super::admission::Held::Forwarded { from, id, request });
            return;
        }
        let now = self.monotonic_ms();
        let rejected = match request {
            Forwarded::CreateSession {
                session_id,
                timeout_ms,
            } => {
                let txn = Txn::CreateSession {
                    session_id,
                    timeout_ms,
                };
                match self.propose(&txn, Some((from, id))) {
                    Ok(_) => {
                        self.sessions.add(session_id, timeout_ms, None, now);
                        if let Some(ensemble) = self.ensemble.as_mut() {
                            ensemble.owners.insert(session_id, from);
                        }
                        false
                    }
                    Err(_) => true,
                }
            }
            Forwarded::Revalidate {
                session_id,
                timeout_ms,
            } => {
                let valid = self.sessions.touch(session_id, now);
                let timeout_ms = self
                    .sessions
                    .get(session_id)
                    .map_or(timeout_ms, |session| session.timeout_ms);
                if let Some(ensemble) = self.ensemble.as_mut() {
                    if valid {
                        ensemble.owners.insert(session_id, from);
                    }
                    ensemble.send(
                        from,
                        Wire::Revalidated {
                            id,
                            valid,
                            timeout_ms,
                        },
                    );
                }
                false
            }
            Forwarded::Request {
                session_id,
                request,
                auth,
                ..
            } => {
                if let Request::Sync(_) = request {
                    let last = self.batch.zxid();
                    if let Some(ensemble) = self.ensemble.as_mut() {
                        let committed = ensemble.peer.committed_zxid();
                        if last <= committed {
                            ensemble.send(
                                from,
                                Wire::Synced {
                                    id,
                                    zxid: committed,
                                },
                            );
                        } else {
                            ensemble.pending_syncs.push((from, id, last));
                        }
                    }
                    return;
                }
                // With local sessions, a session the leader does not know whose id names
                // another server is that server's local session, which it vouches for
                // (LeaderSessionTracker.checkSession).
                let local_elsewhere = self.config.local_sessions_enabled
                    && self.sessions.get(session_id).is_none()
                    && self.ensemble.as_ref().is_some_and(|ensemble| {
                        crate::pipeline::local::server_id_of_session(session_id) != ensemble.me
                    });
                let txn = if !local_elsewhere && !self.sessions.touch(session_id, now) {
                    Txn::Error {
                        code: ErrorCode::SessionExpired,
                    }
                } else if !local_elsewhere && self.session_moved(session_id, Some(from)) {
                    Txn::Error {
                        code: ErrorCode::SessionMoved,
                    }
                } else {
                    let view = self.reconfig_view(&request);
                    let context = PrepContext {
                        session_id,
                        auth: &auth,
                        extended_types_enabled: self.config.extended_types_enabled,
                        skip_acl: self.config.skip_acl,
                        enforce_quota: self.config.enforce_quota,
                        reconfig: self.reconfig_gate(view.as_ref()),
                    };
                    let mut notes = Vec::new();
                    let prepared = prep_noting(self.batch.tree(), &request, &context, &mut notes);
                    for note in notes {
                        warn!("{note}");
                    }
                    prepared.unwrap_or_else(|code| Txn::Error { code })
                };
                let closing = matches!(txn, Txn::CloseSession { .. });
                if closing {
                    self.sessions.set_closing(session_id);
                }
                match self.propose(&txn, Some((from, id))) {
                    Ok(_) => {
                        if closing {
                            self.sessions.remove(session_id);
                            info!("closed session {session_id:#x} at the client's request");
                        }
                        false
                    }
                    Err(_) => true,
                }
            }
        };
        if rejected {
            if let Some(ensemble) = self.ensemble.as_mut() {
                ensemble.send(from, Wire::Rejected { id });
            }
        }
    }

    /// The tree at `zxid`, replayed from the published version and the proposals after it
    /// (None when `zxid` is not between the two).
    pub(super) fn version_at(&self, zxid: Zxid) -> Option<TreeVersion> {
        let ensemble = self.ensemble.as_ref()?;
        if zxid < self.published.zxid || zxid > self.batch.zxid() {
            return None;
        }
        let mut tree = (*self.published).clone();
        let mut triggers = Vec::new();
        for record in ensemble
            .proposed
            .range(self.published.zxid + 1..=zxid)
            .map(|(_, record)| record)
        {
            if tree
                .apply(record.zxid, record.time_ms, &record.txn, &mut triggers)
                .is_err()
            {
                return None;
            }
            triggers.clear();
        }
        (tree.zxid == zxid).then_some(tree)
    }

    /// The leader sends a learner a snapshot of its history through `zxid`.
    pub(super) fn send_snapshot(&mut self, to: ServerId, conn: u64, seq: u64, zxid: Zxid) {
        let version = if self.batch.zxid() == zxid {
            Some(Arc::new(self.batch.tree().clone()))
        } else if self.published.zxid == zxid {
            Some(self.published.clone())
        } else {
            self.waiting
                .iter()
                .filter_map(|waiting| waiting.delivery.as_ref())
                .flat_map(|delivery| delivery.steps.iter())
                .chain(self.batch.steps().iter())
                .find(|step| step.version.zxid == zxid)
                .map(|step| step.version.clone())
        };
        // Versions are cut per step, not per transaction: a zxid inside a step is rebuilt
        // from the newest published version and the proposals after it, which the leader
        // keeps until they are published.
        let version = version.or_else(|| self.version_at(zxid).map(Arc::new));
        let Some(version) = version else {
            warn!("no tree version at zxid {zxid:#x} to send to server {to}; it will retry");
            return;
        };
        let sessions: Vec<(i64, i32)> = self
            .sessions
            .iter()
            .map(|session| (session.id, session.timeout_ms))
            .collect();
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        // Streamed on a thread of its own: the leader's writes go on meanwhile, and whatever
        // else is sent to this learner waits behind the snapshot (its sequence number is
        // before theirs). The thread encodes the tree straight into chunks of
        // SNAP_CHUNK_BYTES and sends them as they fill, never more than SNAP_WINDOW_BYTES
        // beyond what the learner acknowledged: the memory it holds is bounded whatever the
        // snapshot's size (a SNAP used to be one message, built whole in memory on both
        // sides; compare ZOOKEEPER-3500 and ZOOKEEPER-3437).
        ensemble.held.entry(to).or_insert((0, Vec::new())).0 += 1;
        // At most one stream per learner: a newer one (a new link) replaces the older, whose
        // thread sees its acknowledgements' sender dropped and stops.
        let (credits_sender, credits) = crossbeam_channel::unbounded();
        ensemble.transfers.insert(to, (conn, credits_sender));
        let done = ensemble.encoded.0.clone();
        // ZooKeeper's learners read the leader's tree as ZooKeeper streams it after SNAP
        // (LearnerHandler: ZKDatabase.serializeSnapshot and the signature), in the same chunks.
        let zookeeper = ensemble.links.zookeeper_snapshots();
        let spawned = std::thread::Builder::new()
            .name("snapshot-send".into())
            .spawn(move || {
                let started = Instant::now();
                let mut stream = ChunkStream {
                    to,
                    conn,
                    zxid,
                    buffer: Vec::with_capacity(SNAP_CHUNK_BYTES),
                    sent: 0,
                    acked: 0,
                    chunks: 0,
                    events: done.clone(),
                    credits,
                };
                if zookeeper {
                    let streamed = crate::zkformat::export::stream_learner_snapshot(
                        &version,
                        &sessions,
                        &mut stream,
                    )
                    .and_then(|_| stream.emit());
                    let message = match streamed {
                        Ok(()) => {
                            info!(
                                "sending server {to} ZooKeeper's snapshot stream at zxid {zxid:#x} ({} bytes, {} chunks, streamed in {} ms)",
                                stream.sent,
                                stream.chunks,
                                started.elapsed().as_millis()
                            );
                            Some(Wire::Zab(Message::snapshot(conn, seq, zxid, Vec::new())))
                        }
                        Err(error) => {
                            warn!("streaming a snapshot to server {to} failed: {error}");
                            None
                        }
                    };
                    let _ = done.send((to, message));
                    return;
                }
                let records = crate::snapshot::SessionRecord::from_pairs(&sessions);
                let streamed =
                    crate::snapshot::encode::stream_snapshot(&version, &records, &mut stream)
                        .map_err(|error| match error {
                            crate::snapshot::encode::StreamError::Io(error) => error.to_string(),
                            crate::snapshot::encode::StreamError::Snapshot(error) => {
                                error.to_string()
                            }
                        })
                        .and_then(|header| {
                            stream.emit().map_err(|error| error.to_string())?;
                            Ok(header)
                        });
                let message = match streamed {
                    Ok(header) => {
                        info!(
                            "sending server {to} a snapshot at zxid {zxid:#x} ({} bytes, {} chunks, streamed in {} ms)",
                            stream.sent,
                            stream.chunks,
                            started.elapsed().as_millis()
                        );
                        let header = header.encode().to_vec();
                        Some(Wire::Zab(Message::snapshot(conn, seq, zxid, header)))
                    }
                    Err(reason) => {
                        warn!("streaming a snapshot to server {to} failed: {reason}");
                        None
                    }
                };
                let _ = done.send((to, message));
            });
        if let Err(error) = spawned {
            warn!("could not start a thread to stream a snapshot to server {to}: {error}");
            let _ = ensemble.encoded.0.send((to, None));
        }
    }

    /// From a thread streaming a snapshot to a learner: a chunk goes out at once (ahead of
    /// the messages held behind the snapshot); the end of the stream (the `Snap` carrying
    /// the header) goes out, then what waited behind it.
    pub(in crate::pipeline::driver) fn quorum_snapshot_encoded(
        &mut self,
        to: ServerId,
        message: Option<Wire>,
    ) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        let Some((pending, _)) = ensemble.held.get_mut(&to) else {
            return; // the leadership it was for has ended
        };
        if let Some(chunk @ Wire::SnapChunk { .. }) = &message {
            if !ensemble.links.send(to, chunk) {
                // Dropped (link down or queue full): the stream cannot complete; stop it.
                ensemble.transfers.remove(&to);
            }
            return;
        }
        if let Some(message) = message {
            ensemble.links.send(to, &message);
        }
        *pending = pending.saturating_sub(1);
        if *pending == 0 {
            ensemble.transfers.remove(&to);
            if let Some((_, queue)) = ensemble.held.remove(&to) {
                for message in queue {
                    ensemble.links.send(to, &message);
                }
            }
        }
    }

    /// The leader records which server a session belongs to when it is created or resumed
    /// here.
    pub(in crate::pipeline::driver) fn claim_session(&mut self, session_id: i64) {
        if let Some(ensemble) = self.ensemble.as_mut() {
            let me = ensemble.me;
            ensemble.owners.insert(session_id, me);
        }
    }

    /// Whether a write for `session_id` arriving from `from` (None: this server) must fail
    /// with SessionMoved. A session without a known owner (after an election) is claimed by
    /// the first server that sends its traffic, as ZooKeeper's session tracker does.
    pub(in crate::pipeline::driver) fn session_moved(
        &mut self,
        session_id: i64,
        from: Option<ServerId>,
    ) -> bool {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return false;
        };
        let from = from.unwrap_or(ensemble.me);
        match ensemble.owners.get(&session_id) {
            Some(owner) => *owner != from,
            None => {
                ensemble.owners.insert(session_id, from);
                false
            }
        }
    }
}

/// Bytes per [`Wire::SnapChunk`]: small against the transport's frame limit, large enough
/// that a chunk's framing and acknowledgement cost nothing.
pub(super) const SNAP_CHUNK_BYTES: usize = 4 << 20;
/// Bytes of a snapshot stream the leader sends beyond the learner's last acknowledgement:
/// what either side holds of a snapshot in memory (the learner writes each chunk to disk as
/// it arrives).
pub(super) const SNAP_WINDOW_BYTES: u64 = 4 * SNAP_CHUNK_BYTES as u64;
/// How long the stream waits for a learner's acknowledgement before giving up (the learner
/// writes a chunk to its disk before acknowledging it).
pub(super) const SNAP_ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// The `io::Write` a snapshot is streamed into on the leader: cuts it into chunks, each sent
/// to the pipeline thread (which puts it on the learner's link) once the window allows.
struct ChunkStream {
    to: ServerId,
    conn: u64,
    zxid: Zxid,
    buffer: Vec<u8>,
    /// Bytes sent (handed to the pipeline) so far.
    sent: u64,
    /// Bytes the learner acknowledged writing.
    acked: u64,
    chunks: u64,
    events: Sender<EncodedSnapshot>,
    credits: Receiver<u64>,
}

impl ChunkStream {
    /// Sends what is buffered as one chunk, after waiting for the window to have room.
    fn emit(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let end = self.sent + self.buffer.len() as u64;
        while end.saturating_sub(self.acked) > SNAP_WINDOW_BYTES {
            match self.credits.recv_timeout(SNAP_ACK_TIMEOUT) {
                Ok(offset) => self.acked = self.acked.max(offset),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "server {} acknowledged nothing for {} s",
                            self.to,
                            SNAP_ACK_TIMEOUT.as_secs()
                        ),
                    ))
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err(std::io::Error::other(
                        "cancelled: the link or the leadership ended, or a newer stream replaced it",
                    ))
                }
            }
        }
        let bytes = std::mem::replace(&mut self.buffer, Vec::with_capacity(SNAP_CHUNK_BYTES));
        let chunk = Wire::SnapChunk {
            conn: self.conn,
            zxid: self.zxid,
            offset: self.sent,
            bytes,
        };
        if self.events.send((self.to, Some(chunk))).is_err() {
            return Err(std::io::Error::other("the pipeline stopped"));
        }
        self.sent = end;
        self.chunks += 1;
        Ok(())
    }
}

impl std::io::Write for ChunkStream {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = SNAP_CHUNK_BYTES - self.buffer.len();
        let taken = room.min(bytes.len());
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() >= SNAP_CHUNK_BYTES {
            self.emit()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
