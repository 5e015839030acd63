//! The `ringkeeper` server binary: parse the command line and zoo.cfg, start the runtime (or
//! run an inspection subcommand).

// Gate (STYLE habit 10): no unwrap/expect on input and no dbg! outside tests; clippy enforces it.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::dbg_macro)
)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use ringkeeper::cli::{Cli, Command};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Collects this thread's heap in mimalloc and purges (decommits) what is free, rather than
/// waiting for mimalloc's delayed purge, which only runs when the thread allocates again.
fn collect_freed_memory() {
    // SAFETY: mi_collect takes no pointer and may be called from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

fn main() -> ExitCode {
    // clap prints --help and --version and exits 0; a bad argument is named, exit 2.
    let cli = Cli::parse();
    // One line per event; colour only when a person is reading the terminal, never in a log
    // file or a pipe.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    if let Some(command) = cli.command {
        return match run_tool(command) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("ringkeeper: {error}");
                ExitCode::FAILURE
            }
        };
    }
    ringkeeper::memory::set_memory_release(collect_freed_memory);
    let config = match ringkeeper::config::Config::from_options(&cli.server.options()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ringkeeper: {error}");
            return ExitCode::from(2);
        }
    };
    match ringkeeper::runtime::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ringkeeper: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_tool(command: Command) -> Result<ExitCode, String> {
    use ringkeeper::cli::inspect;
    let mut out = std::io::stdout().lock();
    let progress = inspect::Progress::new(std::io::stderr().is_terminal());
    match command {
        Command::DumpLog { path, data } => inspect::dump_log(&path, data, &mut out, &progress)?,
        Command::DumpSnapshot { path, data } => {
            inspect::dump_snapshot(&path, data, &mut out, &progress)?
        }
        Command::Check {
            data_dir,
            data_log_dir,
            config,
        } => {
            let (data_dir, log_dir) = match config {
                Some(path) => {
                    let config = ringkeeper::config::Config::from_file(&path)
                        .map_err(|error| error.to_string())?;
                    (config.data_dir, config.data_log_dir)
                }
                None => {
                    let data_dir = data_dir.unwrap_or_else(|| "data".into());
                    let log_dir = data_log_dir.unwrap_or_else(|| data_dir.clone());
                    (data_dir, log_dir)
                }
            };
            if !inspect::check(&data_dir, &log_dir, &mut out, &progress)? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::ExportZookeeper {
            data_dir,
            data_log_dir,
            config,
            out: target,
        } => {
            let (data_dir, log_dir) = directories(config, data_dir, data_log_dir)?;
            let exported = ringkeeper::zkformat::export::export(&data_dir, &log_dir, &target)?;
            use std::io::Write;
            writeln!(
                out,
                "wrote {} (zxid {:#x}, {} znodes, {} sessions) and currentEpoch/acceptedEpoch {}",
                exported.snapshot.display(),
                exported.zxid,
                exported.node_count,
                exported.session_count,
                exported.epoch
            )
            .map_err(|error| error.to_string())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// dataDir and dataLogDir from a zoo.cfg or from the command line.
fn directories(
    config: Option<std::path::PathBuf>,
    data_dir: Option<std::path::PathBuf>,
    data_log_dir: Option<std::path::PathBuf>,
) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    Ok(match config {
        Some(path) => {
            let config =
                ringkeeper::config::Config::from_file(&path).map_err(|error| error.to_string())?;
            (config.data_dir, config.data_log_dir)
        }
        None => {
            let data_dir = data_dir.unwrap_or_else(|| "data".into());
            let log_dir = data_log_dir.unwrap_or_else(|| data_dir.clone());
            (data_dir, log_dir)
        }
    })
}
