//! zk-load: a load generator built on a real ZooKeeper client library (the `zookeeper-client`
//! crate, on a tokio runtime with one thread), for measuring servers the way a user's
//! application sees them (bench/README.md). rk-bench, built on ringkeeper's own codec, is the
//! other generator; this one charges the server for what an ordinary client sends.

// Gate (STYLE habit 10): no unwrap/expect on input and no dbg! outside tests; clippy enforces it.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::dbg_macro)
)]

mod cpu;
mod options;
mod run;
mod stats;

use std::process::ExitCode;

/// Raises the soft limit on open files to the hard limit: 2,000 sessions need 2,000 sockets.
fn raise_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit owned by this frame.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match options::parse(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{}", options::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("zk-load: {message}\n\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    raise_file_limit();
    // The client library logs through `tracing`: why a session left SyncConnected ("enter state
    // Disconnected due to ..."), reconnects. Off unless asked for, e.g. ZK_LOAD_LOG=info.
    if let Ok(filter) = std::env::var("ZK_LOAD_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let json_path = options.json.clone();
    // One thread runs every session's tasks (the setting: tokio with 1 worker).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("zk-load: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    let report = match local.block_on(&runtime, run::run(options)) {
        Ok(report) => report,
        Err(message) => {
            eprintln!("zk-load: {message}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.text());
    if let Some(path) = json_path {
        let text = match serde_json::to_string_pretty(&report) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("zk-load: JSON: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = std::fs::write(&path, text + "\n") {
            eprintln!("zk-load: write {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}
