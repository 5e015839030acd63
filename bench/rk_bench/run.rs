//! [io] One run: pre-populate, start the generator threads together, merge their statistics,
//! clean up, report.

use std::net::SocketAddr;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::keys::KeyChooser;
use crate::options::{Options, Workload};
use crate::setup::{self, Layout, SyncClient};
use crate::stats::{Stats, Summary};
use crate::value::KeyTable;

/// Everything the generator threads read; `keys` is the only part they update.
pub struct Shared {
    pub options: Options,
    pub server: SocketAddr,
    pub layout: Layout,
    pub keys: KeyTable,
    pub chooser: KeyChooser,
}

/// The measured window: replies arriving in [measure_start, end) are recorded.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub measure_start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn new(begin: Instant, warmup: Duration, duration: Duration) -> Window {
        Window {
            measure_start: begin + warmup,
            end: begin + warmup + duration,
        }
    }

    pub fn contains(&self, at: Instant) -> bool {
        at >= self.measure_start && at < self.end
    }
}

#[derive(Debug, Default)]
pub struct WorkerResult {
    pub stats: Stats,
    /// (path prefix, count) of znodes created by the create workload, for cleanup.
    pub created: Vec<(String, u64)>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub server: String,
    pub workload: String,
    pub sessions: usize,
    pub outstanding: usize,
    pub threads: usize,
    pub value_bytes: usize,
    pub znodes: usize,
    pub seed: u64,
    pub warmup_seconds: f64,
    #[serde(flatten)]
    pub summary: Summary,
}

pub fn run(options: &Options, server: SocketAddr) -> Result<Report, String> {
    let layout = Layout::new(&options.root, options.znodes);
    // The setup session lives only as long as the setup: SyncClient sends no pings, so kept
    // open through a run longer than the session timeout it expired, and the cleanup then
    // failed with "server closed the connection" (the session expiry seen in long runs; the
    // server was right to expire it, as ZooKeeper does). Cleanup opens a session of its own.
    let mut client = SyncClient::connect(server, options.session_timeout_ms())?;
    let populate_start = Instant::now();
    setup::populate(&mut client, &layout, options.value_bytes)?;
    client.close();
    eprintln!(
        "rk-bench: populated {} keys of {} bytes under {} in {:.2} s",
        options.znodes,
        options.value_bytes,
        layout.root,
        populate_start.elapsed().as_secs_f64()
    );
    let shared = Shared {
        options: options.clone(),
        server,
        layout,
        keys: KeyTable::new(options.znodes),
        chooser: KeyChooser::new(options.znodes, options.distribution),
    };
    let results = run_threads(&shared);
    let mut stats = Stats::new();
    let mut created = Vec::new();
    for result in &results {
        stats.merge(&result.stats);
        for (prefix, count) in &result.created {
            created.extend((0..*count).map(|n| format!("{prefix}{n}")));
        }
    }
    if options.cleanup {
        let cleanup_start = Instant::now();
        let cleaned =
            SyncClient::connect(server, options.session_timeout_ms()).and_then(|mut client| {
                let outcome = setup::cleanup(&mut client, &shared.layout, &created);
                client.close();
                outcome
            });
        match cleaned {
            Ok(0) => eprintln!(
                "rk-bench: removed {} in {:.2} s",
                shared.layout.root,
                cleanup_start.elapsed().as_secs_f64()
            ),
            Ok(failures) => eprintln!("rk-bench: cleanup: {failures} deletes failed"),
            Err(error) => eprintln!("rk-bench: cleanup: {error}"),
        }
    }
    Ok(Report {
        server: server.to_string(),
        workload: options.workload.name().to_owned(),
        sessions: options.sessions,
        outstanding: options.outstanding,
        threads: options.threads,
        value_bytes: options.value_bytes,
        znodes: options.znodes,
        seed: options.seed,
        warmup_seconds: options.warmup.as_secs_f64(),
        summary: stats.summary(options.duration),
    })
}

fn run_threads(shared: &Shared) -> Vec<WorkerResult> {
    let options = &shared.options;
    match options.workload {
        Workload::WatchFanout => vec![crate::fanout::run_fanout(shared)],
        Workload::SessionStorm => vec![crate::storm::run_storm(shared)],
        workload => {
            let threads = options.threads.min(options.sessions);
            let barrier = Barrier::new(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|worker| {
                        let indexes: Vec<usize> =
                            (worker..options.sessions).step_by(threads).collect();
                        let barrier = &barrier;
                        scope.spawn(move || {
                            if workload == Workload::EphemeralChurn {
                                crate::churn::run_churn(shared, worker, indexes, barrier)
                            } else {
                                crate::load::run_worker(shared, worker, indexes, barrier)
                            }
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| match handle.join() {
                        Ok(result) => result,
                        Err(_) => {
                            eprintln!("rk-bench: a generator thread panicked");
                            let mut result = WorkerResult::default();
                            result.stats.verification_error(
                                "generator",
                                &crate::verify::VerifyError::Malformed("thread panicked".into()),
                            );
                            result
                        }
                    })
                    .collect()
            })
        }
    }
}
