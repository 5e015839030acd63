//! [io] The pipeline as a standalone server: zxids are local, and a sealed batch is published
//! once the log writer reports its last record durable (ZooKeeper's standalone chain:
//! PrepRequestProcessor → SyncRequestProcessor → FinalRequestProcessor, without a thread per
//! processor). The ensemble shell is [`super::ensemble`].

use std::time::{Duration, Instant};

use crate::tree::{Txn, TxnResult};
use crate::txnlog::format::LogRecord;
use crate::txnlog::writer::{WriterEvent, WriterInput};

use super::{wall_clock_ms, Pipeline};

/// How long a stopping server waits for the log writer to make what it was sent durable.
const SHUTDOWN_DURABLE_WAIT: Duration = Duration::from_secs(10);

impl Pipeline {
    /// Applies a prepped transaction at the next local zxid and queues its log record.
    pub(super) fn standalone_commit(&mut self, txn: &Txn) -> (i64, TxnResult) {
        let zxid = self.batch.zxid() + 1;
        let time_ms = wall_clock_ms();
        let result = self.apply_txn(zxid, time_ms, txn);
        self.records.push(LogRecord {
            zxid,
            time_ms,
            txn: txn.clone(),
        });
        (zxid, result)
    }

    /// The log writer made every record up to `zxid` durable: the batches up to it may go.
    pub(super) fn standalone_durable(&mut self, zxid: i64) {
        self.durable_zxid = self.durable_zxid.max(zxid);
    }

    /// Stops the log writer after what it was sent is durable, and publishes that.
    pub(super) fn standalone_finish(&mut self) {
        if let Some(log) = self.log.as_ref() {
            let _ = log.appends.send(WriterInput::Shutdown);
            // What is not durable in time is not published: its clients get no answer.
            if let Err(reason) = self.wait_durable(SHUTDOWN_DURABLE_WAIT) {
                tracing::warn!("{reason}");
            }
            self.log = None;
        }
        self.release();
    }
}

/// How long `restore` waits for the log writer (the writes before it, the log's reset).
const RESTORE_LOG_WAIT: Duration = Duration::from_secs(30);

impl Pipeline {
    /// The AdminServer's `restore` (ZooKeeper 3.9's RestoreCommand, which swaps in a new
    /// database): `tree` and `sessions` replace the state. Standalone only: in an ensemble one
    /// member's new tree would differ from the others' (ZooKeeper does it anyway).
    ///
    /// The order keeps every acknowledged write recoverable at every instant: everything sealed
    /// before is made durable and published; the restored tree gets the next zxid after both
    /// the server's and the snapshot's (zxids only grow: a client's last-seen zxid stays
    /// valid, and nodes are never newer than the tree), and is written as a snapshot at that
    /// zxid, durably, before the log is reset (a crash in between recovers the restored state,
    /// as the snapshot is the newest and the older log lies entirely before it). Then the
    /// tree and the session table are replaced, and every client connection is closed: its
    /// watches were set on the old tree, and a client whose session the snapshot holds
    /// resumes it on reconnecting, one whose session it lacks gets SessionExpired. Returns
    /// the restored state's zxid.
    pub(super) fn restore(
        &mut self,
        mut tree: crate::tree::TreeVersion,
        sessions: Vec<crate::snapshot::SessionRecord>,
    ) -> Result<i64, String> {
        if self.ensemble.is_some() {
            return Err(
                "restore is not supported in an ensemble (one member's tree would differ from the others'): restore a standalone server"
                    .into(),
            );
        }
        let Some(data_dir) = self
            .snapshots
            .as_ref()
            .map(|snapshots| snapshots.data_dir.clone())
        else {
            return Err("this server keeps no snapshots".into());
        };
        self.seal();
        self.wait_durable(RESTORE_LOG_WAIT)?;
        self.release();
        let zxid = self.batch.zxid().max(tree.zxid) + 1;
        tree.zxid = zxid;
        let path = crate::snapshot::write_snapshot(&data_dir, &tree, &sessions)
            .map_err(|error| format!("writing the restored state's snapshot failed: {error}"))?;
        if let Some(log) = self.log.as_ref() {
            let (done, result) = crossbeam_channel::bounded(1);
            if log.appends.send(WriterInput::Reset { done }).is_err() {
                self.log_failed("the log writer stopped".into());
            }
            match result.recv_timeout(RESTORE_LOG_WAIT) {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => self.log_failed(format!(
                    "resetting the log after a restore failed: {reason}"
                )),
                Err(_) => self.log_failed(
                    "resetting the log after a restore: the log writer did not answer".into(),
                ),
            }
        }
        let connected: Vec<crate::session::ConnRef> = self
            .sessions
            .iter()
            .chain(self.local_sessions.iter())
            .filter_map(|session| session.owner)
            .collect();
        for conn in connected {
            self.reply(
                conn,
                crate::pipeline::CoreReply::Close {
                    conn_id: conn.conn_id,
                    reason: "the server's state was restored from a snapshot",
                },
            );
        }
        self.local_sessions.clear();
        let node_count = tree.node_count();
        let session_count = sessions.len();
        let pairs: Vec<(i64, i32)> = sessions
            .iter()
            .map(|session| (session.session_id, session.timeout_ms))
            .collect();
        self.replace_state(tree, pairs.clone());
        if let Some(snapshots) = self.snapshots.as_mut() {
            snapshots.restored(
                std::sync::Arc::new(self.batch.tree().clone()),
                pairs.into_iter().collect(),
            );
        }
        tracing::warn!(
            "restored the state from a snapshot: {node_count} znodes, {session_count} sessions, now at zxid {zxid:#x} ({}); every client connection was closed",
            path.display()
        );
        Ok(zxid)
    }

    /// Waits until every sealed batch is durable (bounded).
    fn wait_durable(&mut self, wait: Duration) -> Result<(), String> {
        let Some(log) = self.log.as_ref() else {
            return Ok(());
        };
        let events = log.events.clone();
        let deadline = Instant::now() + wait;
        while self
            .waiting
            .back()
            .is_some_and(|sealed| sealed.last_zxid > self.durable_zxid)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            match events.recv_timeout(left) {
                Ok(WriterEvent::Durable { zxid, .. }) => self.standalone_durable(zxid),
                Ok(WriterEvent::Failed { reason }) => self.log_failed(reason),
                Err(_) => {
                    return Err(format!(
                        "the writes sealed so far did not become durable within {} s",
                        wait.as_secs()
                    ))
                }
            }
        }
        Ok(())
    }
}
