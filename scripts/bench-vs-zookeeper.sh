#!/usr/bin/env bash
# ringkeeper against Apache ZooKeeper on this machine, one table of ratios and SVG plots in
# bench/results/<timestamp>/. The logic is in scripts/bench_vs_zookeeper.py (options: --help).
#
#   scripts/bench-vs-zookeeper.sh                 # the default matrix, about 7 minutes
#   scripts/bench-vs-zookeeper.sh --quick         # 1 s runs: checks the harness only
set -euo pipefail
exec python3 "$(dirname "$0")/bench_vs_zookeeper.py" "$@"
