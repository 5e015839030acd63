#!/usr/bin/env bash
# The ensemble tests (tests/ensemble): 3- and 5-server quorums, leader kill -9 under load,
# DIFF/SNAP catch-up, observers, sessions, and a network-namespace partition, against Apache
# ZooKeeper 3.8 ensembles and ringkeeper ensembles (skipped, with the reason, while the
# ringkeeper binary reports Mode: standalone for a server.N config).
#
#   scripts/ensemble-test.sh [pytest args]     e.g. -k zookeeper, -x
#
# ENSEMBLE_KINDS=zookeeper,ringkeeper (default both) selects the kinds; RINGKEEPER_BIN the binary
# (default target/release/ringkeeper). About a minute per kind on 2 cores; bounded by a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
RINGKEEPER_BIN="${RINGKEEPER_BIN:-$PWD/target/release/ringkeeper}" \
  exec timeout "${ENSEMBLE_TEST_TIMEOUT_S:-900}" \
  /usr/bin/python3 -m pytest tests/ensemble -q -p no:cacheprovider "$@"
