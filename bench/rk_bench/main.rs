//! rk-bench: a load generator for ZooKeeper-compatible servers (bench/README.md).
//!
//! It speaks the client protocol itself (ringkeeper's jute codec), keeps a fixed number of
//! pipelined requests in flight per session, records latencies in HdrHistograms and checks
//! every answer against what it wrote, so a server that answers wrongly cannot score.

// Gate (STYLE habit 10): no unwrap/expect on input and no dbg! outside tests; clippy enforces it.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::dbg_macro)
)]

mod churn;
mod conn;
mod fanout;
mod keys;
mod load;
mod options;
mod probe;
mod responder;
mod run;
mod setup;
mod stats;
mod storm;
mod value;
mod verify;
mod wire;

use std::net::SocketAddr;
use std::process::ExitCode;

use options::{Mode, Options, USAGE};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("probe") {
        return match probe::main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("rk-bench: {message}");
                eprint!("{}", probe::USAGE);
                ExitCode::from(2)
            }
        };
    }
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("rk-bench: {message}");
            }
            eprint!("{USAGE}");
            return if message.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match options.mode {
        Mode::Responder => {
            let address = options
                .listen
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 2181)));
            match responder::Responder::start(address) {
                Ok(responder) => {
                    eprintln!("rk-bench: trivial responder on {}", responder.address);
                    loop {
                        std::thread::park();
                    }
                }
                Err(error) => {
                    eprintln!("rk-bench: listen on {address}: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Mode::SelfTest => {
            let responder = match responder::Responder::start(SocketAddr::from(([127, 0, 0, 1], 0)))
            {
                Ok(responder) => responder,
                Err(error) => {
                    eprintln!("rk-bench: responder: {error}");
                    return ExitCode::FAILURE;
                }
            };
            eprintln!(
                "rk-bench: self-test against the trivial responder on {}",
                responder.address
            );
            let code = run_and_report(&options, responder.address);
            responder.stop();
            code
        }
        Mode::Run => match options.server {
            Some(server) => run_and_report(&options, server),
            None => ExitCode::from(2),
        },
    }
}

fn run_and_report(options: &Options, server: SocketAddr) -> ExitCode {
    let report = match run::run(options, server) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("rk-bench: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "rk-bench {} against {}: {} sessions x {} outstanding, {} threads, {} B values, {} znodes",
        report.workload,
        report.server,
        report.sessions,
        report.outstanding,
        report.threads,
        report.value_bytes,
        report.znodes
    );
    print!("{}", report.summary.table());
    if let Some(path) = &options.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|text| std::fs::write(path, text + "\n").map_err(|e| e.to_string()));
        if let Err(error) = written {
            eprintln!("rk-bench: writing {path}: {error}");
            return ExitCode::FAILURE;
        }
    }
    if report.summary.verification_errors > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}
