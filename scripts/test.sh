#!/usr/bin/env bash
# The whole default test suite, as CI runs it (.ci/run calls exactly this).
#
#   1. installs the reference server and the real clients (scripts/install-test-deps.sh)
#   2. the gates: cargo fmt --check, cargo clippy --all-targets -D warnings, over the whole
#      workspace (the server, rk-bench, and bench/zk-load, the generator on a real client library)
#   3. cargo test: unit tests, codec golden files and property tests, rk-bench self-test
#   4. the compatibility suites (tests/compat): every scenario through real clients against
#      Apache ZooKeeper and ringkeeper, Kazoo and Curator recipes, the C client and zkCli,
#      bad input and limits
#   6. the ensemble suites (tests/ensemble): quorum, leader kill -9 under load, DIFF/SNAP
#      catch-up, observers, sessions across servers, a network-namespace partition
#   5. the crash test: 10 kill -9 cycles under concurrent writers (scripts/crash-test.py;
#      the long run is `scripts/crash-test.py --kills 200`)
#
# Everything runs with bounded timeouts; the whole suite takes a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

echo "== gates"
cargo fmt --all -- --check
cargo clippy --all-targets --release --workspace --features ringkeeper/kerberos -- -D warnings
# and without Kerberos, as a plain `cargo build` compiles it
cargo clippy --all-targets --release -- -D warnings

echo "== cargo test"
cargo build --release --workspace --bins --features ringkeeper/kerberos
cargo test --release --workspace --features ringkeeper/kerberos

echo "== crash test: kill -9 under concurrent writes, restart, every acknowledged write present"
RINGKEEPER_BIN="$PWD/target/release/ringkeeper" /usr/bin/python3 scripts/crash-test.py --kills 10

echo "== compatibility suites (Apache ZooKeeper vs ringkeeper)"
RINGKEEPER_BIN="$PWD/target/release/ringkeeper" /usr/bin/python3 -m pytest tests/compat -q -p no:cacheprovider

echo "== ensemble suites (3- and 5-server Apache ZooKeeper and ringkeeper ensembles)"
RINGKEEPER_BIN="$PWD/target/release/ringkeeper" scripts/ensemble-test.sh
