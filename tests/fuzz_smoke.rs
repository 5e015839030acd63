//! The short run of every fuzz target in the default suite (issue 14, item 1): each target's
//! body (`ringkeeper::fuzzing`, the same function the cargo-fuzz target in `fuzz/` calls) runs
//! over its committed seed corpus (`fuzz/seeds/<target>/`), over every regression input
//! (`fuzz/regressions/<target>/`: each input a campaign found that crashed, kept so the fix
//! stays fixed), then over deterministic mutations of the seeds (a seeded RNG: bit flips,
//! interesting integers at any offset, inserted, deleted and duplicated ranges, splices of two
//! seeds), at most `MUTATIONS_MAX` of them and at most `RINGKEEPER_FUZZ_SMOKE_MS` (default
//! 1500) milliseconds per target. Stable Rust, no libFuzzer: the long campaigns are
//! `scripts/fuzz-campaign.sh`.
//!
//! A failing input is written to `target/fuzz-smoke-failures/<target>-<n>` and named in the
//! panic message; `cargo +nightly fuzz run <target> <file>` (in `fuzz/`) replays it.
//!
//! `write_seed_corpora` (ignored; run it with `--ignored`) rebuilds `fuzz/seeds/` from the
//! golden frames (`tests/golden/*.txt`), the TLS fixtures (`tests/golden/tls/`), and files made
//! by the server's own encoders (a log segment from `txnlog::format::encode_batch`, a snapshot
//! from `snapshot::writer::encode_snapshot`, quorum messages from `quorum::wire::encode`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringkeeper::fuzzing::{self, TARGETS};

const MUTATIONS_MAX: usize = 200_000;
/// Every target runs at least this many mutations whatever the time budget, so a slow machine
/// still exercises something.
const MUTATIONS_MIN: usize = 300;
/// Mutated inputs are cut to this length (the seeds are small; see fuzz/README.md).
const MUTATED_BYTES_MAX: usize = 64 * 1024;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files_in(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .filter(|path| path.file_name().is_none_or(|name| name != "README.md"))
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("{path:?}: {error}"));
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

/// SplitMix64: a small, seeded, reproducible generator (no dependency needed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            (self.next() % bound as u64) as usize
        }
    }
}

/// Big-endian integers the decoders treat specially: null lengths, zero, boundaries.
const INTERESTING: &[i64] = &[
    0,
    1,
    -1,
    2,
    4,
    8,
    16,
    36,
    255,
    4096,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    -0x8000_0000,
    i64::MAX,
    i64::MIN,
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = rng.next() as u8;
            }
            2 => {
                // An interesting integer, 4 or 8 bytes wide, over or into the input.
                let value = INTERESTING[rng.below(INTERESTING.len())];
                let bytes: Vec<u8> = if rng.below(2) == 0 {
                    (value as i32).to_be_bytes().to_vec()
                } else {
                    value.to_be_bytes().to_vec()
                };
                let at = rng.below(len + 1);
                for (offset, byte) in bytes.into_iter().enumerate() {
                    match input.get_mut(at + offset) {
                        Some(slot) => *slot = byte,
                        None => input.push(byte),
                    }
                }
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let count = 1 + rng.below((len - at).min(64));
                input.drain(at..at + count);
            }
            4 => {
                let at = rng.below(len + 1);
                let count = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..count).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            5 if len > 0 => {
                let from = rng.below(len);
                let count = 1 + rng.below((len - from).min(256));
                let chunk = input[from..from + count].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, chunk);
            }
            6 if !seeds.is_empty() => {
                // Splice: a prefix of this input, the tail of another seed.
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            _ if len > 0 => {
                input.truncate(rng.below(len));
            }
            _ => input.push(rng.next() as u8),
        }
    }
    input.truncate(MUTATED_BYTES_MAX);
}

fn run_one(name: &str, body: fuzzing::TargetBody, input: &[u8], what: &str) {
    if catch_unwind(AssertUnwindSafe(|| body(input))).is_err() {
        let dir = repo().join("target").join("fuzz-smoke-failures");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}-{:016x}", fnv(input)));
        let _ = std::fs::write(&path, input);
        let shown: String = input.iter().take(256).map(|b| format!("{b:02x}")).collect();
        panic!(
            "fuzz target {name} panicked on {what} ({} bytes, saved to {}): {shown}",
            input.len(),
            path.display()
        );
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn budget() -> Duration {
    let ms = std::env::var("RINGKEEPER_FUZZ_SMOKE_MS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1500);
    Duration::from_millis(ms)
}

/// Seeds, regressions, then mutations of `name`; returns how many mutations ran.
fn smoke(name: &str) -> usize {
    let body = fuzzing::target(name).unwrap_or_else(|| panic!("no fuzz target {name}"));
    let seeds = files_in(&repo().join("fuzz").join("seeds").join(name));
    assert!(!seeds.is_empty(), "fuzz/seeds/{name}/ is empty");
    for (path, bytes) in &seeds {
        run_one(name, body, bytes, &format!("seed {}", path.display()));
    }
    for (path, bytes) in files_in(&repo().join("fuzz").join("regressions").join(name)) {
        run_one(
            name,
            body,
            &bytes,
            &format!("regression {}", path.display()),
        );
    }
    let seeds: Vec<Vec<u8>> = seeds.into_iter().map(|(_, bytes)| bytes).collect();
    let mut rng = Rng(fnv(name.as_bytes()));
    let started = Instant::now();
    let budget = budget();
    let mut count = 0;
    while count < MUTATIONS_MAX && (count < MUTATIONS_MIN || started.elapsed() < budget) {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut input, &seeds);
        run_one(name, body, &input, &format!("mutation {count}"));
        count += 1;
    }
    count
}

macro_rules! smoke_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let count = smoke(stringify!($name));
                println!("{}: {count} mutations", stringify!($name));
                assert!(count >= MUTATIONS_MIN);
            }
        )*

        /// The list above names every target of the library, each has a cargo-fuzz target
        /// file, and nothing in fuzz/ names a target the library lacks.
        #[test]
        fn every_target_is_smoke_tested_and_has_a_fuzz_target() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in TARGETS {
                assert!(tested.contains(name), "{name} is not in smoke_tests!");
                let file = repo().join("fuzz").join("fuzz_targets").join(format!("{name}.rs"));
                assert!(file.is_file(), "{} is missing", file.display());
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                assert!(
                    text.contains(&format!("ringkeeper::fuzzing::{name}(")),
                    "{} does not call ringkeeper::fuzzing::{name}",
                    file.display()
                );
            }
            assert_eq!(tested.len(), TARGETS.len());
            for (path, _) in files_in(&repo().join("fuzz").join("fuzz_targets")) {
                let stem = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or("");
                assert!(fuzzing::target(stem).is_some(), "{} has no body", path.display());
            }
        }
    };
}

smoke_tests!(
    client_frames,
    connect_request,
    jute_records,
    request,
    quorum_wire,
    zookeeper_quorum,
    txn,
    log_segment,
    log_records,
    snapshot,
    zoo_cfg,
    jaas,
    java_properties,
    four_letter_word,
    admin_request,
    admin_http,
    digest_md5,
    der_x509,
    key_store,
    kerberos_name,
);

/// The seeds reach past the decoders' first checks, so the mutations start from inputs that
/// decode and the round-trip invariants are exercised, not only the error paths.
#[test]
fn seeds_are_valid_inputs() {
    use ringkeeper::txnlog::format::scan_segment;
    let seeds = |name: &str| files_in(&repo().join("fuzz").join("seeds").join(name));
    let (_, segment) = &seeds("log_segment")[0];
    let scan = scan_segment(segment).expect("the segment seed scans");
    assert_eq!(scan.records.len(), 9);
    assert_eq!(scan.batches.len(), 3);
    let (_, file) = &seeds("snapshot")[0];
    let mut aligned = rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(&file[1..]);
    let (header, _) = ringkeeper::snapshot::format::validate(&aligned).expect("snapshot seed");
    // The root, /zookeeper and its two children, /app, /app/b, /app/e, /zk.
    assert_eq!(header.node_count, 8);
    let (_, fixed_up) = &seeds("snapshot")[1];
    assert_eq!(u64::from(fixed_up[0] >> 1), header.node_count);
    for (path, body) in seeds("quorum_wire") {
        assert!(
            ringkeeper::quorum::wire::decode(&body).is_ok(),
            "{}",
            path.display()
        );
    }
    for (path, text) in seeds("zoo_cfg") {
        let text = std::str::from_utf8(&text[1..]).unwrap();
        let myid = (text.contains("server.1")).then_some("1");
        let parsed = ringkeeper::config::Config::parse_without_io(text, myid);
        assert!(parsed.is_ok(), "{}: {parsed:?}", path.display());
    }
    for (path, text) in seeds("jaas") {
        let text = std::str::from_utf8(&text).unwrap();
        let properties = [("user.home".to_string(), "/home/zk".to_string())].into();
        let parsed = ringkeeper::auth::jaas::parse(text, &properties);
        assert!(parsed.is_ok(), "{}: {parsed:?}", path.display());
    }
    let (_, jks) = &seeds("key_store")[2];
    assert_eq!(
        ringkeeper::auth::jks::parse(&jks[1..], "jks-pass")
            .unwrap()
            .len(),
        2
    );
}

#[path = "fuzz_smoke/seeds.rs"]
mod seeds;

/// Rebuilds fuzz/seeds/ (see the module doc). Run after a format change:
/// `cargo test --release --test fuzz_smoke -- --ignored write_seed_corpora`.
#[test]
#[ignore]
fn write_seed_corpora() {
    let root = repo().join("fuzz").join("seeds");
    for (name, inputs) in seeds::all(repo()) {
        let dir = root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (index, input) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{index:03}")), input).unwrap();
        }
        println!("{name}: {} seeds", inputs.len());
    }
}

/// zoo_cfg campaign finding: a tickTime whose default session timeouts (2 and 20 ticks)
/// overflow an int is refused, not wrapped into negative timeouts.
#[test]
fn a_tick_time_whose_timeouts_overflow_is_refused() {
    let parsed = ringkeeper::config::Config::parse_without_io("tickTime=2002000200\n", None);
    assert!(parsed.is_err(), "{parsed:?}");
    let parsed = ringkeeper::config::Config::parse_without_io("tickTime=100000000\n", None);
    assert_eq!(
        parsed.map(|config| config.max_session_timeout_ms).ok(),
        Some(2_000_000_000)
    );
}
