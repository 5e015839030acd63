#!/usr/bin/env bash
# Soak run of the ZAB simulator: many seeds in parallel chunks (tests/zab_sim.rs `sweep`).
#
#   scripts/sim-sweep.sh [seeds per ensemble size, default 1000000] [parallel jobs, default nproc]
#
# Runs ensembles of 3, 3+1 observer, 5+1 and 7+1 servers, seeds 0..N each, in chunks of
# SIM_CHUNK (default 20000) seeds, from SIM_SEED_BASE (default 0). SIM_SHAPES picks the ensembles
# ("participants+observers" separated by spaces, default "3+0 3+1 5+1 7+1"); a sweep can be
# resumed where an earlier one stopped with SIM_SEED_BASE. SIM_SPARES=<n> (passed through to the
# `sweep` test) adds n spare servers and turns on dynamic reconfigs, which a sweep without it
# does not exercise (the reconfig sweeps of README "Dynamic reconfig" ran with SIM_SPARES=2).
# SIM_FEATURES (e.g. ringkeeper/kerberos, as scripts/test.sh builds) reuses that build's binary.
# A failing chunk prints its seeds; replay one with
#   SIM_TRACE=1 SIM_SEED=<seed> SIM_PARTICIPANTS=<n> SIM_OBSERVERS=<m> [SIM_SPARES=<s>] \
#     cargo test --release --test zab_sim replay -- --ignored --nocapture
set -euo pipefail
cd "$(dirname "$0")/.."

seeds="${1:-1000000}"
jobs="${2:-$(nproc)}"
chunk="${SIM_CHUNK:-20000}"
base="${SIM_SEED_BASE:-0}"
shapes="${SIM_SHAPES:-3+0 3+1 5+1 7+1}"

features=()
[ -n "${SIM_FEATURES:-}" ] && features=(--features "$SIM_FEATURES")
cargo test --release --test zab_sim --no-run "${features[@]}"
binary="$(cargo test --release --test zab_sim --no-run "${features[@]}" --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*zab_sim[^"]*\)".*/\1/p' | tail -1)"
[ -x "$binary" ] || { echo "zab_sim test binary not found" >&2; exit 1; }

logs="$(mktemp -d)"
echo "sim sweep: seeds $base..$((base + seeds)) per ensemble ($shapes), chunks of $chunk, $jobs jobs, logs in $logs"
for ensemble in $shapes; do
  set -- ${ensemble/+/ }
  for ((start = base; start < base + seeds; start += chunk)); do
    echo "$1 $2 $start"
  done
done | xargs -P "$jobs" -L 1 sh -c '
  end=$(( '"$base"' + '"$seeds"' ))
  count=$(( end - $2 < '"$chunk"' ? end - $2 : '"$chunk"' ))
  log="'"$logs"'/$0+$1-$2.log"
  if SIM_PARTICIPANTS=$0 SIM_OBSERVERS=$1 SIM_SEED_START=$2 SIM_SEED_COUNT=$count \
       "'"$binary"'" sweep --ignored --exact >"$log" 2>&1; then
    echo "ok   $0+$1 seeds $2..$(( $2 + count ))"
  else
    echo "FAIL $0+$1 seeds $2..$(( $2 + count )): $(grep -m3 "seed" "$log" | tr "\n" " ")"
    exit 255
  fi
'
echo "sim sweep passed"
