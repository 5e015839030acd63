//! The `ringkeeper` server binary: parse the command line and zoo.cfg, start the runtime.

// Gate (STYLE habit 10): no unwrap/expect on input and no dbg! outside tests; clippy enforces it.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::dbg_macro)
)]

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Collects this thread's heap in mimalloc and purges (decommits) what is free, rather than
/// waiting for mimalloc's delayed purge, which only runs when the thread allocates again.
fn collect_freed_memory() {
    // SAFETY: mi_collect takes no pointer and may be called from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
    ringkeeper::memory::set_memory_release(collect_freed_memory);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match ringkeeper::config::Config::from_args(&args) {
        Ok(config) => config,
        Err(ringkeeper::config::ConfigError::Usage(text)) => {
            eprintln!("{text}");
            return ExitCode::from(2);
        }
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
