#!/usr/bin/env bash
# Read-only host check against ZooKeeper's performance guidance; see scripts/preflight.py and
# tuning/README.md.
#
#   scripts/preflight.sh [--config zoo.cfg | --data-dir DIR [--data-log-dir DIR]] [--json FILE]
set -euo pipefail
exec python3 "$(dirname "$0")/preflight.py" "$@"
