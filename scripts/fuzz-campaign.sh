#!/usr/bin/env bash
# A libFuzzer campaign over ringkeeper's decoders of untrusted bytes (issue 14, item 1).
#
#   scripts/fuzz-campaign.sh [-t SECONDS] [TARGET ...]
#
# Runs each named target (default: every target in fuzz/fuzz_targets/) for SECONDS (default
# 300; an hour-long campaign is -t 3600), one target at a time, at nice 19 (the machine is
# shared), then appends one row per target to fuzz/results/<UTC date>.md: executions,
# executions per second, coverage (libFuzzer's final `cov:` and `ft:`), corpus size, new units,
# peak RSS and the outcome with the CPU seconds the run got. A crash, timeout or OOM input is
# kept in fuzz/artifacts/<target>/ (libFuzzer's -artifact_prefix) and named in the results; turn
# it into a regression by copying it to fuzz/regressions/<target>/ (tests/fuzz_smoke.rs replays
# every file there) once the decoder is fixed. Several campaigns may run at once (one
# invocation each); each appends its own rows.
#
# Inputs: fuzz/seeds/<target>/ (committed, read only) and fuzz/corpus/<target>/ (what earlier
# campaigns found, not committed; new units go there, so campaigns build on each other).
#
# Environment:
#   FUZZ_SANITIZER   cargo-fuzz -s: none (default; the decoders are safe Rust, so ASan adds
#                    little but halves the speed), address, ...
#   FUZZ_TIMEOUT_S   one input taking longer is a finding (default 10)
#   FUZZ_RSS_MB      memory limit, above it is an OOM finding (default 2048)
#   FUZZ_JOBS        cargo build jobs (default 1)
#   FUZZ_PREBUILT    run the target binaries as last built (fuzz/target/), without building:
#                    a campaign can go on while the source is being edited. Its value (the
#                    commit they were built from) goes in the commit column; FUZZ_SANITIZER
#                    then only labels the row, so give the one they were built with.
# Needs rustup's nightly toolchain; installs cargo-fuzz from crates.io when it is missing.
set -euo pipefail

seconds=300
while getopts "t:h" option; do
    case "$option" in
        t) seconds="$OPTARG" ;;
        h) sed -n '2,27p' "$0"; exit 0 ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "fuzz-campaign: -t needs a positive number of seconds, not '$seconds'" >&2
    exit 2
fi

repo="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$repo/fuzz"
sanitizer="${FUZZ_SANITIZER:-none}"
timeout_s="${FUZZ_TIMEOUT_S:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
jobs="${FUZZ_JOBS:-1}"

if [ "$#" -eq 0 ]; then
    set -- $(cd "$fuzz/fuzz_targets" && ls -- *.rs | sed 's/\.rs$//')
fi
for target in "$@"; do
    if [ ! -f "$fuzz/fuzz_targets/$target.rs" ]; then
        echo "fuzz-campaign: no target '$target' (fuzz/fuzz_targets/$target.rs)" >&2
        exit 2
    fi
done

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz-campaign: needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    nice -n 19 cargo install cargo-fuzz
fi

cd "$fuzz"
prebuilt="${FUZZ_PREBUILT:-}"
binaries="$fuzz/target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"
if [ -z "$prebuilt" ]; then
    # -a: debug assertions and overflow checks, so an arithmetic overflow is a finding too.
    build=(cargo +nightly fuzz build -s "$sanitizer" -a)
    echo "fuzz-campaign: ${build[*]}"
    CARGO_BUILD_JOBS="$jobs" nice -n 19 "${build[@]}"
else
    for target in "$@"; do
        if [ ! -x "$binaries/$target" ]; then
            echo "fuzz-campaign: FUZZ_PREBUILT: no $binaries/$target (build it first)" >&2
            exit 2
        fi
    done
fi

mkdir -p "$fuzz/results"
results="$fuzz/results/$(date -u +%Y-%m-%d).md"
if [ ! -f "$results" ]; then
    {
        echo "# Fuzz campaigns $(date -u +%Y-%m-%d)"
        echo
        echo "scripts/fuzz-campaign.sh; libFuzzer via cargo-fuzz $(cargo fuzz --version 2>/dev/null | awk '{print $2}'), $(rustc +nightly --version)."
        echo "Machine: $(nproc) cores, shared; every run at nice 19. cov/ft: libFuzzer's final coverage counters (edges / features)."
        echo
        echo "| started (UTC) | target | commit | sanitizer | seconds | executions | exec/s | cov | ft | corpus | new units | peak RSS MB | outcome |"
        echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    } >"$results"
fi
if [ -n "$prebuilt" ]; then
    commit="$prebuilt (prebuilt)"
else
    commit="$(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD -- src fuzz/fuzz_targets || echo '+dirty')"
fi

status=0
for target in "$@"; do
    started="$(date -u +%H:%M:%S)"
    mkdir -p "$fuzz/corpus/$target" "$fuzz/artifacts/$target"
    log="$fuzz/artifacts/$target/last-run.log"
    before="$(ls "$fuzz/artifacts/$target" | grep -Ev '^last-run.log$' | sort || true)"
    echo "fuzz-campaign: $target for ${seconds}s (log: $log)"
    # The CPU seconds the run got (user + system of cargo and the fuzzer it waits for): on a
    # shared machine the wall-clock length alone says little about how much was fuzzed.
    cpu_file="$(mktemp)"
    set +e
    options=(-max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb="$rss_mb"
        -print_final_stats=1 -artifact_prefix="$fuzz/artifacts/$target/")
    {
        TIMEFORMAT='%U %S'
        if [ -n "$prebuilt" ]; then
            time nice -n 19 "$binaries/$target" "${options[@]}" \
                "$fuzz/corpus/$target" "$fuzz/seeds/$target" >"$log" 2>&1
        else
            time nice -n 19 cargo +nightly fuzz run -s "$sanitizer" -a "$target" \
                "$fuzz/corpus/$target" "$fuzz/seeds/$target" -- "${options[@]}" >"$log" 2>&1
        fi
    } 2>"$cpu_file"
    code=$?
    set -e
    cpu_s="$(awk '{ printf "%d", $1 + $2 }' "$cpu_file")"
    rm -f "$cpu_file"
    # The last status line ("#N DONE cov: C ft: F corp: U/S ...", or the last "pulse"/"NEW"
    # line when the run stopped on a finding) and the final stats.
    last="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
    field() { sed -n "s/.* $1: \([^ ]*\).*/\1/p" <<<"$last"; }
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    executions="$(stat number_of_executed_units)"
    per_second="$(stat average_exec_per_sec)"
    new_units="$(stat new_units_added)"
    peak_rss="$(stat peak_rss_mb)"
    cov="$(field cov)"
    ft="$(field ft)"
    corpus="$(field corp)"
    after="$(ls "$fuzz/artifacts/$target" | grep -Ev '^last-run.log$' | sort || true)"
    found="$(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ' | sed 's/ $//')"
    if [ "$code" -eq 0 ]; then
        outcome="ok; ${cpu_s:-?} CPU s"
    else
        outcome="FAILED (exit $code)${found:+: fuzz/artifacts/$target/$found}; ${cpu_s:-?} CPU s"
        status=1
    fi
    echo "| $started | $target | $commit | $sanitizer | $seconds | ${executions:-?} | ${per_second:-?} | ${cov:-?} | ${ft:-?} | ${corpus:-?} | ${new_units:-?} | ${peak_rss:-?} | $outcome |" >>"$results"
    echo "fuzz-campaign: $target: $outcome; ${executions:-?} executions, cov ${cov:-?}, ft ${ft:-?}"
done
echo "fuzz-campaign: results in $results"
exit "$status"
