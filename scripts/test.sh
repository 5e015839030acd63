#!/usr/bin/env bash
# The whole default test suite, as CI runs it (.ci/run calls exactly this).
#
#   1. installs the reference server and the real clients (scripts/install-test-deps.sh)
#   2. the gates: cargo fmt --check, cargo clippy --all-targets -D warnings, over the whole
#      workspace (the server, rk-bench, and bench/zk-load, the generator on a real client library)
#   3. cargo test: unit tests, codec golden files and property tests, the deterministic
#      simulators, rk-bench self-test
#   4. the crash test: 10 kill -9 cycles under concurrent writers (scripts/crash-test.py;
#      the long run is `scripts/crash-test.py --kills 200`)
#   5. side by side: the compatibility suites (tests/compat: every scenario through real
#      clients against Apache ZooKeeper and ringkeeper, Kazoo and Curator recipes, the C client
#      and zkCli, bad input and limits) and the ensemble suites (tests/ensemble: quorum, leader
#      kill -9 under load, DIFF/SNAP catch-up, observers, sessions across servers, mixed
#      ensembles with Apache ZooKeeper, a network-namespace partition)
#
# Everything runs with bounded timeouts; each phase prints the seconds since the start. The
# whole suite takes 15-20 minutes on 2 cores from a clean checkout, most of it compiling.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase prints the seconds since the start, so a slow CI run shows where its time went.
SECONDS=0
phase() { echo "== [${SECONDS} s] $*"; }
trap 'echo "== [${SECONDS} s] end (status $?)"' EXIT

phase "install the test dependencies"
scripts/install-test-deps.sh

phase "gates: cargo fmt --check, cargo clippy with Kerberos"
cargo fmt --all -- --check
cargo clippy --all-targets --release --workspace --features ringkeeper/kerberos -- -D warnings
# and without Kerberos, as a plain `cargo build` compiles it
phase "gates: cargo clippy without Kerberos"
cargo clippy --all-targets --release -- -D warnings

phase "build"
cargo build --release --workspace --bins --features ringkeeper/kerberos
phase "cargo test"
cargo test --release --workspace --features ringkeeper/kerberos

phase "crash test: kill -9 under concurrent writes, restart, every acknowledged write present"
RINGKEEPER_BIN="$PWD/target/release/ringkeeper" /usr/bin/python3 scripts/crash-test.py --kills 10

# The compatibility and ensemble suites run side by side: both mostly wait on servers and
# clients, so together they take little more than the longer one. Each has its own pytest
# temporary directory, and the ensemble suite picks its ports below the kernel's ephemeral
# range (RK_TEST_PORT_RANGE, scripts/loopback.py), where the compatibility suite's ports and
# every outgoing connection's are, so the two never pick the same port.
phase "compatibility suites (Apache ZooKeeper vs ringkeeper), and beside them the ensemble suites (3- and 5-server Apache ZooKeeper and ringkeeper ensembles)"
suites_tmp="$(mktemp -d /tmp/rk-suites.XXXXXX)"
ensemble_log="$suites_tmp/ensemble.log"
RK_TEST_PORT_RANGE=20000-32000 RINGKEEPER_BIN="$PWD/target/release/ringkeeper" \
  scripts/ensemble-test.sh --basetemp="$suites_tmp/ensemble" --durations=10 \
  >"$ensemble_log" 2>&1 &
ensemble_pid=$!
compat_status=0
RINGKEEPER_BIN="$PWD/target/release/ringkeeper" /usr/bin/python3 -m pytest tests/compat -q \
  -p no:cacheprovider --basetemp="$suites_tmp/compat" --durations=10 || compat_status=$?
phase "compatibility suites ended (status $compat_status); the ensemble suites:"
ensemble_status=0
wait "$ensemble_pid" || ensemble_status=$?
cat "$ensemble_log"
phase "ensemble suites ended (status $ensemble_status)"
if [ "$compat_status" -ne 0 ] || [ "$ensemble_status" -ne 0 ]; then
  exit 1
fi
rm -rf "$suites_tmp"
