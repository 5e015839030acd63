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
        let Some(log) = self.log.take() else {
            self.release();
            return;
        };
        let _ = log.appends.send(WriterInput::Shutdown);
        let deadline = Instant::now() + SHUTDOWN_DURABLE_WAIT;
        while self
            .waiting
            .back()
            .is_some_and(|sealed| sealed.last_zxid > self.durable_zxid)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            match log.events.recv_timeout(left) {
                Ok(WriterEvent::Durable { zxid, .. }) => self.standalone_durable(zxid),
                Ok(WriterEvent::Failed { reason }) => self.log_failed(reason),
                Err(_) => break,
            }
        }
        self.release();
    }
}
