//! [io] Synchronisation with a leader (ZAB phase 2): a TRUNC cuts the log back, durably, before
//! anything else; a SNAP replaces the tree and the session table.

use super::*;

/// How long a truncation or reset of the log (TRUNC, SNAP) may take the log writer: far above
/// any fsync and rename it does, short enough that a stuck writer becomes a visible stop.
const LOG_CUT_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

impl Pipeline {
    /// TRUNC: the log loses every record above `zxid`, durably, before anything else.
    pub(super) fn truncate_log(&mut self, zxid: Zxid) {
        self.flush_records();
        self.cut_log(zxid, "truncating", |done| WriterInput::Truncate {
            zxid,
            done,
        });
        info!("log truncated after zxid {zxid:#x} (TRUNC from the leader)");
        if let Some(ensemble) = self.ensemble.as_mut() {
            ensemble.unapplied = {
                let mut kept = std::mem::take(&mut ensemble.unapplied);
                let _ = kept.split_off(&(zxid + 1));
                kept
            };
            ensemble.origins.retain(|origin, _| *origin <= zxid);
            ensemble.digest_check.truncated(zxid);
        }
        if let Some(ensemble) = self.ensemble.as_ref() {
            if let Err(reason) = ensemble.disk.remove_snapshots_above(zxid) {
                self.log_failed(format!("removing snapshots above zxid {zxid:#x}: {reason}"));
            }
        }
        if self.batch.zxid() > zxid {
            // Only after a restart can the tree hold records that were never committed (the
            // whole log is replayed, as ZooKeeper does); rebuild it from the truncated log.
            let reloaded = match self.ensemble.as_ref() {
                Some(ensemble) => ensemble.disk.reload(zxid),
                None => return,
            };
            match reloaded {
                Ok((tree, sessions)) => {
                    if let Some(ensemble) = self.ensemble.as_mut() {
                        ensemble.digest_check.replaced(zxid);
                    }
                    self.replace_state(tree, sessions)
                }
                Err(reason) => {
                    self.log_failed(format!("reloading the tree after a truncation: {reason}"))
                }
            }
        }
    }

    /// Has the log writer truncate or reset the log, waits until that is durable (a failure
    /// stops the server), then takes the durability reports it made before, capped at `zxid`.
    pub(super) fn cut_log(
        &mut self,
        zxid: Zxid,
        what: &str,
        command: impl FnOnce(Sender<Result<(), String>>) -> WriterInput,
    ) {
        let Some(log) = self.log.as_ref() else {
            return;
        };
        let (done, result) = crossbeam_channel::bounded(1);
        if log.appends.send(command(done)).is_err() {
            self.log_failed("the log writer stopped".into());
        }
        // Bounded: a writer that never answers would otherwise leave this member stalled for
        // good, serving nothing and timing nothing out. Stopping loudly turns it into a
        // restart. (The stall seen in soaks, a glommio executor that parked with the write's
        // task runnable, is gone with the io_uring log writer: see `storage::direct`.)
        match result.recv_timeout(LOG_CUT_ANSWER_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => self.log_failed(format!("{what} the log failed: {reason}")),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => self.log_failed(format!(
                "{what} the log writer did not answer within {} s",
                LOG_CUT_ANSWER_TIMEOUT.as_secs()
            )),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                self.log_failed("the log writer stopped".into())
            }
        }
        self.drain_durable_after_cut(zxid);
    }

    /// The writer reports durability of records that a truncation or reset may have just
    /// removed; they were all reported before the writer answered, so take them now, capped.
    pub(super) fn drain_durable_after_cut(&mut self, cap: Zxid) {
        let mut durable = None;
        if let Some(log) = self.log.as_ref() {
            while let Ok(event) = log.events.try_recv() {
                match event {
                    WriterEvent::Durable { zxid, .. } => {
                        durable = Some(durable.unwrap_or(zxid).max(zxid))
                    }
                    WriterEvent::Failed { reason } => self.log_failed(reason),
                }
            }
        }
        if let Some(zxid) = durable {
            self.quorum_durable(zxid.min(cap));
        }
    }

    /// SNAP: the leader's snapshot replaces this server's state and log. The log is reset
    /// first: a crash in between leaves an older state with no log after it (this server then
    /// just holds less history), never the new snapshot followed by records of the history it
    /// replaced.
    pub(super) fn install_snapshot(&mut self, zxid: Zxid, payload: &[u8]) {
        self.flush_records();
        self.cut_log(zxid, "resetting", |done| WriterInput::Reset { done });
        let installed = match self.ensemble.as_ref() {
            Some(ensemble) => ensemble.disk.install_snapshot(payload),
            None => return,
        };
        let (tree, sessions) = match installed {
            Ok(state) => state,
            Err(reason) => {
                self.log_failed(format!(
                    "installing the leader's snapshot at zxid {zxid:#x} failed: {reason}"
                ));
            }
        };
        info!(
            "installed the leader's snapshot at zxid {zxid:#x} ({} znodes)",
            tree.node_count()
        );
        if let Some(ensemble) = self.ensemble.as_mut() {
            ensemble.unapplied.clear();
            ensemble.origins.clear();
            // ringkeeper's snapshots are consistent versions (never fuzzy), so the txns after
            // one are compared from the first; a ZooKeeper leader's fuzzy SNAP has its
            // pre-NEWLEADER digests dropped by the translator, as Learner.syncWithLeader
            // applies those txns without them.
            ensemble.digest_check.replaced(zxid);
        }
        self.replace_state(tree, sessions);
    }

    /// A chunk of the snapshot the leader streams (SNAP): written to dataDir at once and
    /// acknowledged, which opens the leader's window for the next ones. A chunk that does not
    /// continue the stream is not acknowledged: the leader's stream then stalls and gives up,
    /// and the `Snap` that would end it fails to install, which stops this server loudly
    /// (a restart syncs again) rather than serving a partial tree.
    pub(super) fn snapshot_chunk_received(
        &mut self,
        from: ServerId,
        conn: u64,
        zxid: Zxid,
        offset: u64,
        bytes: &[u8],
    ) {
        let Some(ensemble) = self.ensemble.as_mut() else {
            return;
        };
        match ensemble
            .disk
            .receive_snapshot_chunk(conn, zxid, offset, bytes)
        {
            Ok(true) => {
                let offset = offset + bytes.len() as u64;
                ensemble.send(from, Wire::SnapAck { conn, offset });
                self.step_peer(Input::Heard { from, conn });
            }
            Ok(false) => {}
            Err(reason) => warn!("dropping a snapshot chunk from server {from}: {reason}"),
        }
    }

    /// Replaces the tree and the session table (after SNAP or a reload); the cores get the
    /// new tree as a step of their next batch.
    pub(in crate::pipeline::driver) fn replace_state(
        &mut self,
        tree: TreeVersion,
        sessions: Vec<(i64, i32)>,
    ) {
        self.cancel_rebase();
        let now = self.monotonic_ms();
        let known: Vec<i64> = self.sessions.iter().map(|session| session.id).collect();
        for id in known {
            self.sessions.remove(id);
        }
        for (id, timeout_ms) in sessions {
            self.sessions.add(id, timeout_ms, None, now);
        }
        self.batch.replace_tree(tree);
        self.durable_zxid = self.durable_zxid.max(self.batch.zxid());
    }
}
