//! The pipeline acknowledges nothing before the log writer reports it durable: replies and
//! tree versions of a batch reach the cores only after "durable up to zxid Z" covers the
//! batch, in batch order, and a read-only reply (sync) queued behind a pending batch waits for
//! it too. The test plays the log writer and the core.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver};
use ringkeeper::config::Config;
use ringkeeper::jute::codec::{Reader, Record};
use ringkeeper::jute::records::{ConnectRequest, ReplyHeader, SyncRequest};
use ringkeeper::jute::request::{Create, Request};
use ringkeeper::jute::OpCode;
use ringkeeper::metrics::ServerStats;
use ringkeeper::pipeline::driver::{LogChannels, Pipeline, PipelineStart};
use ringkeeper::pipeline::{CoreBatch, CoreReply, PipelineInput};
use ringkeeper::session::ConnRef;
use ringkeeper::tree::{acl, TreeVersion};
use ringkeeper::txnlog::writer::{AfterDurable, WriterEvent, WriterInput};

const CONN: ConnRef = ConnRef {
    core: 0,
    conn_id: 7,
};
const WAIT: Duration = Duration::from_secs(10);
/// How long "nothing arrives" is watched for: an absence cannot be awaited.
const QUIET: Duration = Duration::from_millis(200);

struct Harness {
    input: crossbeam_channel::Sender<PipelineInput>,
    appends: Receiver<WriterInput>,
    events: crossbeam_channel::Sender<WriterEvent>,
    core: async_channel::Receiver<CoreBatch>,
    thread: Option<thread::JoinHandle<()>>,
    /// Work the pipeline asked the writer to run after a sync (the standalone server's
    /// publication), with the last zxid appended before it; run by `durable`, as the real
    /// writer runs it after its sync.
    after_durable: std::cell::RefCell<std::collections::VecDeque<(i64, AfterDurable)>>,
    appended_zxid: std::cell::Cell<i64>,
}

impl Harness {
    fn start() -> Harness {
        let config = Arc::new(Config::default());
        let (core_sender, core) = async_channel::unbounded();
        let (append_sender, appends) = unbounded();
        let (events, event_receiver) = unbounded();
        let pipeline = Pipeline::new(
            config,
            Arc::new(ServerStats::default()),
            PipelineStart {
                tree: TreeVersion::new(),
                sessions: Vec::new(),
                secret: ringkeeper::session::SessionSecrets::only([1; 16]),
                server_id: 0,
            },
            vec![core_sender],
            Some(LogChannels {
                appends: append_sender,
                events: event_receiver,
            }),
            None,
        );
        let (input, input_receiver) = unbounded();
        let thread = thread::spawn(move || pipeline.run(input_receiver));
        Harness {
            input,
            appends,
            events,
            core,
            thread: Some(thread),
            after_durable: Default::default(),
            appended_zxid: Default::default(),
        }
    }

    /// Takes one message the pipeline sent the writer (waiting for it when `wait`).
    fn take_append(&self, wait: bool) -> Option<Vec<i64>> {
        let input = if wait {
            self.appends.recv_timeout(WAIT).ok()
        } else {
            self.appends.try_recv().ok()
        };
        let (records, work) = match input? {
            WriterInput::Append(records) => (records, None),
            WriterInput::AppendThen(records, work) => (records, Some(work)),
            other => panic!("expected an append, got {other:?}"),
        };
        let zxids: Vec<i64> = records.iter().map(|r| r.zxid).collect();
        if let Some(last) = zxids.last() {
            self.appended_zxid.set(*last);
        }
        if let Some(work) = work {
            self.after_durable
                .borrow_mut()
                .push_back((self.appended_zxid.get(), work));
        }
        Some(zxids)
    }

    fn next_append(&self) -> Vec<i64> {
        self.take_append(true)
            .unwrap_or_else(|| panic!("expected an append within {WAIT:?}"))
    }

    fn next_batch(&self) -> CoreBatch {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Ok(batch) = self.core.try_recv() {
                return batch;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no batch reached the core"
            );
            thread::yield_now();
        }
    }

    fn assert_core_quiet(&self) {
        thread::sleep(QUIET);
        assert!(
            self.core.try_recv().is_err(),
            "something reached the core before it was durable"
        );
    }

    fn durable(&self, zxid: i64) {
        while self.take_append(false).is_some() {}
        loop {
            let due = self
                .after_durable
                .borrow()
                .front()
                .is_some_and(|(last, _)| *last <= zxid);
            if !due {
                break;
            }
            if let Some((_, work)) = self.after_durable.borrow_mut().pop_front() {
                (work.0)();
            }
        }
        let sent = self.events.send(WriterEvent::Durable {
            zxid,
            records: 1,
            sync_micros: 1,
        });
        assert!(sent.is_ok());
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.input.send(PipelineInput::Shutdown);
        let _ = self.events.send(WriterEvent::Durable {
            zxid: i64::MAX,
            records: 0,
            sync_micros: 0,
        });
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn reply_header(frame: &[u8]) -> ReplyHeader {
    ReplyHeader::decode(&mut Reader::new(&frame[4..])).unwrap_or_default()
}

#[test]
fn nothing_is_acknowledged_before_it_is_durable() {
    let harness = Harness::start();
    let connect = PipelineInput::Connect {
        conn: CONN,
        request: ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 10_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: false,
        },
        read_only_flag: true,
    };
    assert!(harness.input.send(connect).is_ok());
    // The session's creation is a transaction: it goes to the log first.
    assert_eq!(harness.next_append(), vec![1]);
    harness.assert_core_quiet();
    harness.durable(1);
    let batch = harness.next_batch();
    let session_id = match batch.replies.first() {
        Some((_, CoreReply::Connected { session_id, .. })) => *session_id,
        other => panic!("expected the connect answer, got {other:?}"),
    };
    assert_ne!(session_id, 0);

    // A create, then a sync behind it.
    let create = PipelineInput::Write {
        conn: CONN,
        session_id,
        xid: 1,
        request: Request::Create(Create {
            op: OpCode::Create,
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: acl::open_acl(),
            flags: 0,
            ttl: -1,
        }),
        auth: Arc::new(Vec::new()),
        fenced: false,
    };
    assert!(harness.input.send(create).is_ok());
    assert_eq!(harness.next_append(), vec![2]);
    let sync = PipelineInput::Write {
        conn: CONN,
        session_id,
        xid: 2,
        request: Request::Sync(SyncRequest { path: "/".into() }),
        auth: Arc::new(Vec::new()),
        fenced: false,
    };
    assert!(harness.input.send(sync).is_ok());
    harness.assert_core_quiet();

    harness.durable(2);
    // The create's batch, with its version, then the sync's, in order.
    let mut frames = Vec::new();
    let mut saw_version_with_a = false;
    while frames.len() < 2 {
        let batch = harness.next_batch();
        saw_version_with_a |= batch
            .steps
            .iter()
            .any(|step| step.version.get("/a").is_some());
        for (_, reply) in batch.replies {
            if let CoreReply::Frame { frame, .. } = reply {
                frames.push(reply_header(&frame));
            }
        }
    }
    assert!(saw_version_with_a, "the durable version was published");
    assert_eq!(frames[0].xid, 1);
    assert_eq!(frames[0].zxid, 2);
    assert_eq!(frames[0].err, 0);
    assert_eq!(frames[1].xid, 2);
}
