#!/usr/bin/env python3
"""ringkeeper against Apache ZooKeeper as a user's client sees them: zk-load (bench/zk-load, the
`zookeeper-client` crate on tokio, one thread) against both servers in one invocation.

    /usr/bin/python3 bench/client_bench.py [--standalone | --ensemble 3] [--reps 2]
        [--duration 8s] [--warmup 2s] [--server-warmup 10s] [--quick] [--only KEYS]
        [--out DIR] [--data-root DIR] [--zk-heap-mb 1000] [--no-build]

The matrix is issue 10's: set 1x1, set 32x16, create 32x16, get 32x16, mixed 90/10 32x16,
and 2,000 sessions x 1 for set and get (sessions x requests in flight per session), 10,000
znodes of 100 B. Every point runs --reps times per server; the servers alternate point by
point and the first of each pair swaps every time (Z R, R Z, ...), so slow drift of a shared
machine falls on both.

For every run: ops/s, p50/p99/p99.9 latency, and server CPU per operation: utime+stime from
/proc/<pid>/stat of the server processes only (every member of an ensemble, summed), read by
zk-load itself right when its measured window opens and closes (--server-pid). The table gives
the mean over the repetitions (CPU per op: CPU over all repetitions / operations over all
repetitions) and the ratios ringkeeper / ZooKeeper.

Servers (the same settings for both): fsync on (forceSync=yes), 127.0.0.1 only,
maxClientCnxns=0 (2,000 sessions come from one address), tickTime 2000, 4lw enabled; the
file-descriptor limit of this process (and so of the servers and zk-load) raised to its hard
limit; ZooKeeper with scripts/reference-zk.sh's `server` JVM profile (zkServer.sh's -Xmx1000m,
default collector, full JIT).

* `--standalone` (default): one server of each kind, started by scripts/bench_vs_zookeeper.py's
  Server (zoo.cfg, reference-zk.sh, ruok/srvr wait), data dirs side by side under OUT/data.
* `--ensemble 3`: two 3-participant ensembles (tests/ensemble/harness.py's Ensemble, with
  bench/ensemble_bench.py's settings), both running throughout; zk-load's sessions are dealt
  round-robin over all members, followers first, so a single session (1x1) goes through a
  follower.

Before the window of each run zk-load creates its root and keys (setup, not timed) and after
it deletes them; between runs every server must answer `srvr` (a wedged server fails the run).
The hardware floor for a single write is printed beside set 1x1: one fdatasync (rk-bench probe
disk in the data directory) plus one loopback round trip (rk-bench probe loopback), probed
before the servers start, between the warm-up and the matrix (servers idle) and after the
matrix; the fastest fdatasync of the three is used.

Output: bench/results/client-<mode>-<timestamp>/ with table.md (also printed), results.json,
and runs/ (each zk-load command, its output and JSON). Exit status 1 if any run had an error.
Standard library only, like the other runners.
"""

import argparse
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))
import bench_vs_zookeeper as standalone  # noqa: E402  (Server, mntr, commit_stats, parse_seconds)
import loopback  # noqa: E402  (free_port, four_letter)
import preflight  # noqa: E402  (describe_host)

SERVERS = ("zookeeper", "ringkeeper")
LABEL = {"zookeeper": "Apache ZK", "ringkeeper": "ringkeeper"}
# A run's window and warm-up, plus setup (10,000 creates), cleanup (the created znodes) and
# connecting 2,000 sessions on a loaded machine; beyond this it is killed and counted failed.
RUN_OVERHEAD_LIMIT_S = 240.0
SRVR_TIMEOUT_S = 5.0


class Point:
    def __init__(self, key, title, op, sessions, inflight, extra=()):
        self.key, self.title, self.op = key, title, op
        self.sessions, self.inflight, self.extra = sessions, inflight, list(extra)


MATRIX = [
    Point("set-1x1", "set 1 session x 1", "set", 1, 1),
    Point("set-32x16", "set 32 x 16", "set", 32, 16),
    Point("create-32x16", "create 32 x 16", "create", 32, 16),
    Point("get-32x16", "get 32 x 16", "get", 32, 16),
    Point("mixed-32x16", "mixed 90/10, 32 x 16", "mixed", 32, 16, ["--read-percent", "90"]),
    Point("set-2000x1", "set 2,000 sessions x 1", "set", 2000, 1),
    Point("get-2000x1", "get 2,000 sessions x 1", "get", 2000, 1),
]


def raise_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# ---------------------------------------------------------------- the two kinds of target

class StandaloneTarget:
    """One standalone server, through scripts/bench_vs_zookeeper.py's Server."""

    def __init__(self, name, data_root, ringkeeper, zk_heap_mb):
        self.name = name
        self.server = standalone.Server(name, data_root, loopback.free_port(), "yes",
                                        ringkeeper, zk_heap_mb)

    def start(self):
        self.server.start()

    def pids(self):
        if self.name == "zookeeper":
            return [int((self.server.dir / "zk.pid").read_text().strip())]
        return [self.server.proc.pid]

    def addresses(self):
        return ["127.0.0.1:%d" % self.server.port]

    def ports(self):
        return [self.server.port]

    def commit_port(self):
        return self.server.port

    def alive(self):
        return self.server.alive()

    def logs(self):
        return [(self.server.log, self.server.log.name if self.name == "ringkeeper"
                 else "zookeeper.log")]

    def stop(self):
        self.server.stop()


class EnsembleTarget:
    """A 3-participant ensemble, through tests/ensemble/harness.py with ensemble_bench's settings."""

    def __init__(self, name, data_root, participants):
        import ensemble_bench  # bench/ensemble_bench.py: BENCH_CFG, SERVE_TIMEOUT_S
        from ensemble.harness import Ensemble
        self.name = name
        self.serve_timeout_s = ensemble_bench.SERVE_TIMEOUT_S
        self.ensemble = Ensemble(name, data_root, participants=participants, jvm_profile="server",
                                 extra_cfg={"forceSync": "yes"}, **ensemble_bench.BENCH_CFG)

    def start(self):
        self.ensemble.start()
        modes = self.ensemble.wait_serving(self.serve_timeout_s)
        if "standalone" in modes.values():
            raise RuntimeError("%s reports Mode: standalone" % self.name)

    def order(self):
        # Followers first: one session (1x1) then writes through a follower, as issue 10's
        # single-write latency target asks; more sessions cover every member.
        leader = self.ensemble.leader()
        return sorted(self.ensemble.followers()) + [leader]

    def pids(self):
        return [self.ensemble.members[sid].proc.pid for sid in self.ensemble.ids]

    def addresses(self):
        return ["127.0.0.1:%d" % self.ensemble.members[sid].client_port for sid in self.order()]

    def ports(self):
        return [self.ensemble.members[sid].client_port for sid in self.ensemble.ids]

    def commit_port(self):
        return self.ensemble.members[self.ensemble.leader()].client_port

    def alive(self):
        return all(self.ensemble.members[sid].running() for sid in self.ensemble.ids)

    def logs(self):
        return [(self.ensemble.members[sid].log, "%s-s%d.log" % (self.name, sid))
                for sid in self.ensemble.ids]

    def stop(self):
        for sid in self.ensemble.ids:
            self.ensemble.stop(sid)


# ---------------------------------------------------------------- one run

def answering(target):
    """Ports of `target` that do not answer srvr with a Mode line within SRVR_TIMEOUT_S."""
    silent = []
    for port in target.ports():
        try:
            if "Mode:" not in loopback.four_letter(port, "srvr", SRVR_TIMEOUT_S):
                silent.append(port)
        except OSError:
            silent.append(port)
    return silent


def run_probes(rk_bench, args, out, when):
    """rk-bench probe disk (4 KiB pwrite + fdatasync in the data directory) and probe loopback."""
    probes = {}
    for kind, extra in (("disk", ["--dir", str(args.data_root)]), ("loopback", [])):
        path = out / ("probe-%s-%s.json" % (kind, when))
        r = subprocess.run([str(rk_bench), "probe", kind, "--duration",
                            "1s" if args.quick else "5s", "--json", str(path)] + extra,
                           capture_output=True, text=True, timeout=120)
        print("  " + (r.stdout or r.stderr).strip(), flush=True)
        if r.returncode == 0:
            probes[kind] = json.loads(path.read_text())
    return probes


def hardware_floor(probes):
    """One fdatasync + one loopback round trip, per quantile, from the probe run with the fastest
    fdatasync p50: on a shared machine the slower ones measured the neighbours."""
    runs = [p for p in probes.values() if p.get("disk") and p.get("loopback")]
    if not runs:
        return None
    best = min(runs, key=lambda p: p["disk"]["p50_us"])
    return {"disk": best["disk"], "loopback": best["loopback"],
            "p50_us": best["disk"]["p50_us"] + best["loopback"]["p50_us"],
            "p99_us": best["disk"]["p99_us"] + best["loopback"]["p99_us"],
            "all": {when: {"disk_p50_us": p["disk"]["p50_us"], "disk_p99_us": p["disk"]["p99_us"],
                           "loopback_p50_us": p["loopback"]["p50_us"]}
                    for when, p in probes.items() if p.get("disk") and p.get("loopback")}}


def run_zk_load(zk_load, target, point, out, stem, duration_s, warmup_s):
    json_path = out / "runs" / (stem + ".json")
    cmd = [str(zk_load), "--servers", ",".join(target.addresses()), "--op", point.op,
           "--sessions", str(point.sessions), "--inflight", str(point.inflight),
           "--duration", "%gs" % duration_s, "--warmup", "%gs" % warmup_s,
           "--server-pid", ",".join(str(p) for p in target.pids()),
           "--root", "/zk-load-%s" % stem.replace(".", "-"),
           "--json", str(json_path)] + point.extra
    before = standalone.mntr(target.commit_port())
    # The machine's 1-minute load average when the run starts: on a shared machine, what else
    # competed for the two cores.
    load = (preflight.read("/proc/loadavg", "?") or "?").split()[0]
    started = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=duration_s + warmup_s + RUN_OVERHEAD_LIMIT_S)
        status, stdout, stderr = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        status = "timeout"
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
    elapsed = time.monotonic() - started
    after = standalone.mntr(target.commit_port())
    silent = answering(target)
    (out / "runs" / (stem + ".txt")).write_text(" ".join(cmd) + "\n\n" + stdout + stderr)
    report = json.loads(json_path.read_text()) if json_path.exists() else None
    record = {"point": point.key, "server": target.name, "stem": stem, "status": status,
              "load_average_1m": load,
              "elapsed_s": elapsed, "command": cmd, "report": report,
              # Transactions and log syncs (mntr) over the whole zk-load process, setup and
              # cleanup included: context, not a figure of the window.
              "mntr_whole_run": standalone.commit_stats(before, after), "silent_ports": silent}
    record["ok"] = status == 0 and report is not None and not silent
    if report is not None:
        line = "%.0f ops/s, p50 %.0f us, p99 %.0f us, server CPU %s us/op, errors %d%s" % (
            report["ops_per_second"], lat(report, "p50_us") or 0, lat(report, "p99_us") or 0,
            "%.1f" % report["server_cpu_us_per_op"] if report["server_cpu_us_per_op"] else "n/a",
            report["errors"], " %s by server %s" % (report["errors_by_kind"],
                                                    report.get("errors_by_server"))
            if report["errors"] else "")
    else:
        line = "FAILED (status %s): %s" % (status, (stderr or stdout).strip()[-300:])
    if silent:
        line += "; NOT ANSWERING srvr afterwards: ports %s" % silent
    print("  %-24s %-10s %s" % (stem, target.name, line), flush=True)
    return record


def lat(report, field, op=None):
    """A latency field of the report's row for `op` (the only row, or the first, by default)."""
    rows = report.get("latencies") or []
    for row in rows:
        if op is None or row["op"] == op:
            return row.get(field)
    return None


# ---------------------------------------------------------------- aggregation and the table

def aggregate(records):
    """Mean over the repetitions of one (point, server): ops/s and latency percentiles; CPU per op
    as CPU over all repetitions / operations over all of them."""
    reports = [r["report"] for r in records if r["report"] is not None]
    if not reports:
        return None
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    ops = sum(r["operations"] for r in reports)
    cpu = [r["server_cpu_seconds"] for r in reports]
    client = [r["client_cpu_seconds"] for r in reports]
    out = {
        "reps": len(reports),
        "ops_per_second": mean([r["ops_per_second"] for r in reports]),
        "ops_per_second_each": [r["ops_per_second"] for r in reports],
        "load_each": [r["load_average_1m"] for r in records if r["report"] is not None],
        "server_cpu_us_per_op": (sum(cpu) * 1e6 / ops) if ops and None not in cpu else None,
        "client_cpu_us_per_op": (sum(client) * 1e6 / ops) if ops else None,
        "errors": sum(r["errors"] for r in reports),
        "errors_by_kind": {},
        "errors_by_server": {},
        "failed_runs": sum(1 for r in records if not r["ok"]),
    }
    for field in ("p50_us", "p99_us", "p999_us"):
        values = [lat(r, field) for r in reports if lat(r, field) is not None]
        out[field] = mean(values)
    for r in reports:
        for k, v in r["errors_by_kind"].items():
            out["errors_by_kind"][k] = out["errors_by_kind"].get(k, 0) + v
        for k, v in r.get("errors_by_server", {}).items():
            out["errors_by_server"][k] = out["errors_by_server"].get(k, 0) + v
    return out


def num(v, digits=0):
    if v is None:
        return "n/a"
    if digits == 0 or v >= 100:
        return "{:,.0f}".format(v)
    return "{:,.{d}f}".format(v, d=digits)


def ratio(zk, rk, digits=2):
    if zk is None or rk is None or zk == 0:
        return "n/a"
    return "%.*f" % (digits, rk / zk)


def build_table(mode_title, matrix, agg, probes, host, args, started, zk_version):
    floor = hardware_floor(probes)
    lines = ["# zk-load (zookeeper-client on tokio, 1 thread): ringkeeper vs Apache ZooKeeper %s, %s"
             % (zk_version or "3.8", mode_title), "",
             "Run %s. Host: %d CPUs (%s), %s MiB, kernel %s; data on %s. Load average before: %s. "
             "**The machine was shared with other engineers' builds and tests: figures are noisy.**"
             % (started, host["nproc"], host["cpu"], host["memory_mib"], host["kernel"],
                host["disk"], host["load_average"]),
             "",
             "Settings (both): fsync on (forceSync=yes), 127.0.0.1, maxClientCnxns=0, tickTime 2000; "
             "ZooKeeper with the `server` JVM profile (-Xmx%dm). zk-load: %d repetition(s) per point "
             "and server, %gs warm-up + %gs measured each, servers alternated point by point; "
             "10,000 znodes of 100 B. ops/s and percentiles: mean over the repetitions. Server CPU: "
             "utime+stime of the server processes (%s) from /proc during the window, per operation. "
             "Ratio = ringkeeper / ZooKeeper (ops/s: above 1 favours ringkeeper; CPU: below 1)."
             % (args.zk_heap_mb, args.reps, args.warmup_s, args.duration_s,
                "every member, summed" if args.ensemble else "one each"), "",
             "| point | Apache ZK ops/s (p50 · p99 · p99.9 µs) | ringkeeper ops/s (p50 · p99 · p99.9 µs) "
             "| ratio | server CPU µs per op, Apache · ringkeeper | CPU ratio |",
             "|---|---:|---:|---:|---|---:|"]
    for p in matrix:
        z, r = agg.get((p.key, "zookeeper")), agg.get((p.key, "ringkeeper"))

        def cell(a):
            if a is None:
                return "not run"
            return "%s (%s · %s · %s)" % (num(a["ops_per_second"]), num(a["p50_us"]),
                                          num(a["p99_us"]), num(a["p999_us"]))
        lines.append("| %s | %s | %s | %s | %s · %s | %s |" % (
            p.title, cell(z), cell(r),
            ratio(z and z["ops_per_second"], r and r["ops_per_second"]),
            num(z and z["server_cpu_us_per_op"], 1), num(r and r["server_cpu_us_per_op"], 1),
            ratio(z and z["server_cpu_us_per_op"], r and r["server_cpu_us_per_op"])))
    if floor:
        lines += ["", "Hardware floor for one write: one fdatasync (rk-bench probe disk, 4 KiB "
                  "pwrite + fdatasync in the data directory: p50 %s µs, p99 %s µs) + one loopback "
                  "round trip (rk-bench probe loopback: p50 %s µs, p99 %s µs) = p50 %s µs, "
                  "p99 %s µs. Probed before the servers started, with them idle after the warm-up, "
                  "and after the matrix with them stopped (fdatasync p50 %s); the fastest is used: "
                  "on this shared virtual disk the others measured the neighbours' I/O."
                  % (num(floor["disk"]["p50_us"], 1), num(floor["disk"]["p99_us"], 1),
                     num(floor["loopback"]["p50_us"], 1), num(floor["loopback"]["p99_us"], 1),
                     num(floor["p50_us"], 1), num(floor["p99_us"], 1),
                     ", ".join("%s %s µs" % (w, num(v["disk_p50_us"], 1))
                               for w, v in floor["all"].items()))]
        for name in SERVERS:
            a = agg.get(("set-1x1", name))
            if a and a["p50_us"] and a["p99_us"]:
                lines.append("- set 1x1, %s: p50 %s µs = %.1f × floor p50; p99 %s µs = %.1f × floor p99"
                             % (LABEL[name], num(a["p50_us"]), a["p50_us"] / floor["p50_us"],
                                num(a["p99_us"]), a["p99_us"] / floor["p99_us"]))
    lines += ["", "Each repetition (ops/s, and the machine's 1-minute load average as it started), "
              "zk-load's own CPU per op (its tokio thread and the client library's I/O thread), "
              "errors:", "",
              "| point | server | ops/s each (load) | client CPU µs/op | errors |",
              "|---|---|---|---:|---|"]
    for p in matrix:
        for name in SERVERS:
            a = agg.get((p.key, name))
            if a is None:
                continue
            errors = ("%d %s, by server %s" % (a["errors"], a["errors_by_kind"], a["errors_by_server"])
                      if a["errors"] else "0")
            if a["failed_runs"]:
                errors += " (**%d failed run(s)**)" % a["failed_runs"]
            lines.append("| %s | %s | %s | %s | %s |" % (
                p.key, LABEL[name], ", ".join("%s (%s)" % (num(v), l) for v, l in zip(
                    a["ops_per_second_each"], a["load_each"])),
                num(a["client_cpu_us_per_op"], 1), errors))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--standalone", action="store_true", help="one server of each kind [default]")
    mode.add_argument("--ensemble", type=int, metavar="N", help="N-participant ensembles (3)")
    parser.add_argument("--reps", type=int, default=2, help="repetitions per point and server [2]")
    parser.add_argument("--duration", default="8s", help="measured window per run [8s]")
    parser.add_argument("--warmup", default="2s", help="unrecorded load before each window [2s]")
    parser.add_argument("--server-warmup", default="10s",
                        help="unrecorded set and get load per server before the matrix [10s]")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test of the harness: 1 repetition, 1 s windows, 0.5 s warm-ups, "
                        "200 sessions instead of 2,000")
    parser.add_argument("--only", help="comma-separated points to run (default all): %s"
                        % ",".join(p.key for p in MATRIX))
    parser.add_argument("--zk-heap-mb", type=int, default=standalone.ZK_HEAP_MB_DEFAULT)
    parser.add_argument("--out", help="output directory [bench/results/client-<mode>-<timestamp>]")
    parser.add_argument("--data-root", help="directory for the data dirs [OUT/data]")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args()
    args.duration_s = standalone.parse_seconds(args.duration)
    args.warmup_s = standalone.parse_seconds(args.warmup)
    server_warmup_s = standalone.parse_seconds(args.server_warmup)
    matrix = list(MATRIX)
    if args.quick:
        args.reps, args.duration_s, args.warmup_s, server_warmup_s = 1, 1.0, 0.5, 1.0
        matrix = [Point(p.key, p.title.replace("2,000", "200"), p.op, min(p.sessions, 200),
                        p.inflight, p.extra) for p in matrix]
    if args.only:
        wanted = set(args.only.split(","))
        matrix = [p for p in matrix if p.key in wanted]
        if not matrix:
            parser.error("--only matches none of %s" % ",".join(p.key for p in MATRIX))
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    if args.ensemble is not None and args.ensemble < 3:
        parser.error("--ensemble needs at least 3 participants")

    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")).resolve() / "release"
    if not args.no_build:
        print("== cargo build --release --workspace --bins", flush=True)
        subprocess.run(["cargo", "build", "--release", "--workspace", "--bins"], cwd=str(REPO),
                       check=True)
    zk_load, rk_bench, ringkeeper = (target_dir / "zk-load", target_dir / "rk-bench",
                                     target_dir / "ringkeeper")
    for b in (zk_load, rk_bench, ringkeeper):
        if not b.exists():
            sys.exit("%s missing: cargo build --release --workspace --bins" % b)
    if not Path("/usr/share/java/zookeeper.jar").exists():
        sys.exit("Apache ZooKeeper not installed (apt-get install zookeeper)")
    os.environ.setdefault("RINGKEEPER_BIN", str(ringkeeper))  # the ensemble harness's binary
    nofile = raise_file_limit()
    if nofile[0] < 2 * max(p.sessions for p in matrix) + 1024:
        sys.exit("open-file limit %d is too low for %d sessions (raise the hard limit)"
                 % (nofile[0], max(p.sessions for p in matrix)))

    mode_key = "ensemble%d" % args.ensemble if args.ensemble else "standalone"
    mode_title = ("%d servers on loopback, sessions spread over all of them (followers first)"
                  % args.ensemble if args.ensemble else "standalone")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or REPO / "bench" / "results" / ("client-%s-%s" % (mode_key, stamp))).resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    args.data_root = Path(args.data_root or out / "data").resolve()
    args.data_root.mkdir(parents=True, exist_ok=True)
    host = preflight.describe_host(str(args.data_root))
    started = datetime.datetime.now().isoformat(timespec="seconds")
    print("== %s; host: %d CPUs, load %s; open-file limit %d" % (
        mode_title, host["nproc"], host["load_average"], nofile[0]), flush=True)

    print("== probes (servers not yet started): fdatasync in %s, loopback round trip"
          % args.data_root, flush=True)
    probes = {"before": run_probes(rk_bench, args, out, "before")}

    if args.ensemble:
        import ensemble.harness as harness
        harness.JVM_PROFILES["server"] = ["-Xmx%dm" % args.zk_heap_mb]
    targets, records, warmups = {}, [], []
    zk_version = None
    try:
        for name in SERVERS:
            targets[name] = (EnsembleTarget(name, args.data_root, args.ensemble) if args.ensemble
                             else StandaloneTarget(name, args.data_root, ringkeeper, args.zk_heap_mb))
            targets[name].start()
            print("== %s: %s, pids %s" % (name, ",".join(targets[name].addresses()),
                                          targets[name].pids()), flush=True)
        srvr = loopback.four_letter(targets["zookeeper"].ports()[0], "srvr", SRVR_TIMEOUT_S)
        zk_version = srvr.splitlines()[0].split(":", 1)[-1].strip().split("-")[0] if srvr else None

        print("== server warm-up (unrecorded): %gs set and %gs get 32x16 per server"
              % (server_warmup_s, server_warmup_s / 2), flush=True)
        for p, seconds in ((MATRIX[1], server_warmup_s), (MATRIX[3], server_warmup_s / 2)):
            for name in SERVERS:
                warmups.append(run_zk_load(zk_load, targets[name], p, out, "warmup-%s-%s" % (
                    p.key, name), seconds, 0.5))

        # fdatasync latency on this (virtual, shared) disk changes with what the neighbours do:
        # probed a second time here, servers idle, between the warm-up and the matrix.
        print("== probes again (servers idle after the warm-up)", flush=True)
        probes["after-warmup"] = run_probes(rk_bench, args, out, "after-warmup")

        print("== matrix: %d points x %d repetitions x 2 servers, %gs + %gs each" % (
            len(matrix), args.reps, args.warmup_s, args.duration_s), flush=True)
        turn = 0
        for rep in range(1, args.reps + 1):
            for p in matrix:
                order = SERVERS if turn % 2 == 0 else tuple(reversed(SERVERS))
                turn += 1
                for name in order:
                    if not targets[name].alive():
                        raise RuntimeError("%s is not running any more; see its log in %s"
                                           % (name, args.data_root))
                    records.append(run_zk_load(zk_load, targets[name], p, out,
                                               "r%d-%s-%s" % (rep, p.key, name),
                                               args.duration_s, args.warmup_s))
    finally:
        for t in targets.values():
            t.stop()
        if records:
            print("== probes again (servers stopped)", flush=True)
            probes["after"] = run_probes(rk_bench, args, out, "after")
        for t in targets.values():
            for path, name in t.logs():
                if Path(path).exists():
                    shutil.copy(path, out / name)
        load_after = " ".join((preflight.read("/proc/loadavg", "?") or "?").split()[:3])
        if not args.keep_data:
            shutil.rmtree(args.data_root, ignore_errors=True)

    agg = {}
    for p in matrix:
        for name in SERVERS:
            agg[(p.key, name)] = aggregate([r for r in records
                                            if r["point"] == p.key and r["server"] == name])
    table = build_table(mode_title, matrix, agg, probes, host, args, started, zk_version)
    table += "\nLoad average after the run: %s. Runs in %s/runs.\n" % (load_after, out)
    (out / "table.md").write_text(table)
    (out / "results.json").write_text(json.dumps({
        "started": started, "mode": mode_key, "zk_version": zk_version, "host": host,
        "probes": probes, "reps": args.reps, "duration_s": args.duration_s,
        "warmup_s": args.warmup_s, "runs": records, "warmup_runs": warmups,
        "aggregate": {"%s/%s" % k: v for k, v in agg.items()}}, indent=2) + "\n")
    print()
    print(table)
    print("results in %s" % out)
    bad = [r for r in records if not r["ok"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
