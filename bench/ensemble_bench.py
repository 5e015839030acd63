#!/usr/bin/env python3
"""A 3-server Apache ZooKeeper ensemble against a 3-server ringkeeper ensemble, on this machine,
in one run, with the same settings.

    /usr/bin/python3 bench/ensemble_bench.py [--kinds zookeeper,ringkeeper] [--duration 6s]
        [--warmup 2s] [--failovers 5] [--quick] [--out DIR] [--rk-bench PATH]
        [--rk-quorum-protocol ringkeeper|zookeeper]

Figures (each per kind, side by side, with the ratio ringkeeper / ZooKeeper):

* write throughput and latency: rk-bench `set` against a follower (the write is forwarded to the
  leader, proposed, acknowledged by a majority, committed) and against the leader, 32 sessions x
  16 outstanding; write latency with 1 session x 1 outstanding against a follower;
* read throughput: rk-bench `get` against one follower, and against all three servers at once
  (one rk-bench per server, in parallel; throughputs added, the worst p99 shown);
* leader failover: a Kazoo client connected to one follower only writes; the leader is killed
  with SIGKILL; the figure is the time from the kill to the first acknowledged write issued after
  it (and, for reference, to the first srvr that names a new leader). The killed server is
  restarted and rejoins between measurements; the distribution of --failovers runs is printed.

Settings for both kinds: zoo_sample.cfg's tickTime=2000 initLimit=10 syncLimit=5, forceSync on,
all servers on 127.0.0.1, data dirs side by side under OUT/data; ZooKeeper with
scripts/reference-zk.sh's `server` JVM profile (zkServer.sh's defaults, -Xmx1000m), not the
tests' small JVM. Both ensembles run at once and the kinds alternate at every entry, first kind
swapped each time (Z R, R Z, ...), as scripts/bench_vs_zookeeper.py does, so slow drift of a
shared machine falls on both. `--kinds zookeeper` runs the reference alone.

The ensembles are tests/ensemble/harness.py's Ensemble; the load generator is rk-bench
(bench/README.md), which accepts loopback targets only.
"""

import argparse
import datetime
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from ensemble.harness import Ensemble, KINDS, ringkeeper_binary, wait_until  # noqa: E402

LABEL = {"zookeeper": "ZooKeeper", "ringkeeper": "ringkeeper"}
BENCH_CFG = {"tickTime": 2000, "initLimit": 10, "syncLimit": 5,
             "minSessionTimeout": 4000, "maxSessionTimeout": 40000}
SERVE_TIMEOUT_S = 120.0
RUN_OVERHEAD_LIMIT_S = 120.0
FAILOVER_LIMIT_S = 60.0


def parse_seconds(text):
    text = text.strip()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if text.endswith("s"):
        return float(text[:-1])
    return float(text)


class Entry:
    """One measurement: rk-bench `workload` against the servers `targets` picks (role names:
    "follower", "leader", "all")."""

    def __init__(self, key, title, workload, target, sessions, outstanding, op):
        self.key, self.title, self.workload, self.target = key, title, workload, target
        self.sessions, self.outstanding, self.op = sessions, outstanding, op


MATRIX = [
    Entry("set-follower-32x16", "setData via a follower, 32 sessions x 16 outstanding",
          "set", "follower", 32, 16, "set"),
    Entry("set-leader-32x16", "setData via the leader, 32 sessions x 16 outstanding",
          "set", "leader", 32, 16, "set"),
    Entry("set-follower-1x1", "setData via a follower, 1 session x 1 outstanding (write latency)",
          "set", "follower", 1, 1, "set"),
    Entry("get-follower-32x16", "getData from a follower, 32 sessions x 16 outstanding",
          "get", "follower", 32, 16, "get"),
    Entry("get-all-3x16x16", "getData from all three servers at once, 16 sessions x 16 each",
          "get", "all", 16, 16, "get"),
]


def targets(e, role):
    leader = e.leader()
    followers = sorted(e.followers())
    if role == "leader":
        return [leader]
    if role == "follower":
        return followers[:1]
    return [leader] + followers


def rk_bench_run(rk_bench, e, entry, out, duration_s, warmup_s):
    """One entry against ensemble `e`: one rk-bench per target server, in parallel. Returns
    {"ops_per_second": sum, "p50_us"/"p99_us"/"p999_us": worst over the targets, "errors": ...}."""
    sids = targets(e, entry.target)
    procs = []
    for sid in sids:
        m = e.members[sid]
        json_path = out / ("%s-%s-s%d.json" % (entry.key, e.kind, sid))
        if json_path.exists():
            json_path.unlink()
        cmd = [str(rk_bench), "--server", "127.0.0.1:%d" % m.client_port,
               "--workload", entry.workload, "--sessions", str(entry.sessions),
               "--outstanding", str(entry.outstanding), "--duration", "%gs" % duration_s,
               "--warmup", "%gs" % warmup_s, "--json", str(json_path)]
        procs.append((sid, json_path, cmd, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    result = {"servers": sids, "ops_per_second": 0.0, "p50_us": None, "p99_us": None,
              "p999_us": None, "errors": 0, "verification_errors": 0, "failed": []}
    for sid, json_path, cmd, p in procs:
        try:
            text, _ = p.communicate(timeout=duration_s + warmup_s + RUN_OVERHEAD_LIMIT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            text, _ = p.communicate(timeout=10)
        (out / (json_path.stem + ".txt")).write_text(" ".join(cmd) + "\n\n" + (text or ""))
        if p.returncode != 0 or not json_path.exists():
            result["failed"].append("server %d: status %s: %s" % (
                sid, p.returncode, (text or "").strip()[-300:]))
            continue
        report = json.loads(json_path.read_text())
        result["ops_per_second"] += report["ops_per_second"]
        result["errors"] += report["errors"]
        result["verification_errors"] += report["verification_errors"]
        for row in report.get("latencies", []):
            if row["op"] == entry.op:
                for f in ("p50_us", "p99_us", "p999_us"):
                    v = row.get(f)
                    if v is not None and (result[f] is None or v > result[f]):
                        result[f] = v
    print("  %-20s %-10s servers %s: %s" % (
        entry.key, e.kind, sids,
        "%.0f ops/s, p50 %s us, p99 %s us, errors %d, verification_errors %d" % (
            result["ops_per_second"], result["p50_us"], result["p99_us"], result["errors"],
            result["verification_errors"]) if not result["failed"]
        else "FAILED: %s" % "; ".join(result["failed"])), flush=True)
    return result


def failover_once(e, path):
    """Kill -9 the leader while a client on a follower writes; seconds from the kill to (a) the
    first srvr naming another leader, (b) the first acknowledged write issued after the kill."""
    from kazoo.retry import KazooRetry
    old = e.leader()
    survivor = sorted(e.followers())[0]
    # Reconnect promptly (the figure should be the server's, not the client's back-off).
    c = e.client(survivor, timeout=20.0,
                 connection_retry=KazooRetry(max_tries=-1, delay=0.01, backoff=1, max_delay=0.05))
    try:
        c.ensure_path(path)
        c.set(path, b"warm")  # the session is established and writes go through
        election = {}

        def watch_leader():
            try:
                new = e.wait_leader(FAILOVER_LIMIT_S, exclude=[old])
                election["s"] = time.monotonic() - killed_at
                election["leader"] = new
            except AssertionError as err:
                election["error"] = str(err)

        e.kill(old)
        killed_at = time.monotonic()
        watcher = threading.Thread(target=watch_leader, daemon=True)
        watcher.start()
        write_s, attempts = None, 0
        deadline = killed_at + FAILOVER_LIMIT_S
        while time.monotonic() < deadline:
            attempts += 1
            try:
                c.set_async(path, b"after %d" % attempts).get(timeout=max(0.1, deadline - time.monotonic()))
                write_s = time.monotonic() - killed_at
                break
            except Exception:
                # ConnectionLoss while the follower re-elects; the client reconnects by itself.
                wait_until(lambda: c.connected or time.monotonic() > deadline,
                           FAILOVER_LIMIT_S, "reconnect", interval_s=0.005)
        watcher.join(FAILOVER_LIMIT_S)
    finally:
        c.stop()
        c.close()
    e.start_server(old)
    e.wait_serving(SERVE_TIMEOUT_S)
    return {"killed": old, "client_on": survivor, "new_leader": election.get("leader"),
            "election_s": election.get("s"), "first_write_s": write_s, "attempts": attempts,
            "error": election.get("error")}


def dist(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    q = lambda f: values[min(len(values) - 1, int(round(f * (len(values) - 1))))]  # noqa: E731
    return {"n": len(values), "min": values[0], "p50": q(0.5), "mean": statistics.mean(values),
            "p90": q(0.9), "max": values[-1], "values": values}


def fmt(v, unit):
    if v is None:
        return "n/a"
    if unit == "ops/s":
        return "{:,.0f}".format(v)
    if unit == "us":
        return "{:,.0f}".format(v) if v >= 100 else "{:,.1f}".format(v)
    if unit == "ms":
        return "{:,.0f}".format(v * 1000)
    return str(v)


def ratio(zk, rk):
    if zk is None or rk is None or zk == 0:
        return "n/a"
    return "%.2f" % (rk / zk)


def table(kinds, results, failovers, args, started):
    lines = ["# 3-server ensembles: ringkeeper vs Apache ZooKeeper, %s" % started, "",
             "Settings (both): 3 participants on 127.0.0.1, tickTime=%d initLimit=%d syncLimit=%d, "
             "forceSync=yes, data dirs side by side in %s; ZooKeeper with the `server` JVM profile "
             "(-Xmx%dm). rk-bench: %gs warm-up then %gs measured, 128-byte values, 1000 keys. "
             "Ratio = ringkeeper / ZooKeeper; `better` says which side of 1 favours ringkeeper."
             % (BENCH_CFG["tickTime"], BENCH_CFG["initLimit"], BENCH_CFG["syncLimit"],
                args.data_root, args.zk_heap_mb, args.warmup_s, args.duration_s),
             "", "| run | figure | ZooKeeper | ringkeeper | ratio rk/zk | better |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    for entry in MATRIX:
        row = {k: results.get((entry.key, k)) for k in KINDS}
        figs = [("throughput", "ops_per_second", "ops/s", "> 1"),
                ("%s p50" % entry.op, "p50_us", "us", "< 1"),
                ("%s p99" % entry.op, "p99_us", "us", "< 1"),
                ("%s p99.9" % entry.op, "p999_us", "us", "< 1")]
        for name, field, unit, better in figs:
            zk = row["zookeeper"][field] if row["zookeeper"] and not row["zookeeper"]["failed"] else None
            rk = row["ringkeeper"][field] if row["ringkeeper"] and not row["ringkeeper"]["failed"] else None
            lines.append("| %s | %s (%s) | %s | %s | %s | %s |" % (
                entry.key, name, unit, fmt(zk, unit),
                fmt(rk, unit) if "ringkeeper" in kinds else "not run", ratio(zk, rk), better))
        for k in kinds:
            r = row[k]
            if r and (r["failed"] or r["errors"] or r["verification_errors"]):
                lines.append("| %s | **%s: %s errors %d verification_errors %d** | | | | |" % (
                    entry.key, k, "; ".join(r["failed"]), r["errors"], r["verification_errors"]))
    for key, title in (("first_write_s", "failover: kill -9 of leader to first acknowledged write"),
                       ("election_s", "failover: kill -9 of leader to srvr naming a new leader")):
        d = {k: dist([f[key] for f in failovers.get(k, [])]) for k in KINDS}
        for stat in ("p50", "p90", "max"):
            zk = d["zookeeper"][stat] if d["zookeeper"] else None
            rk = d["ringkeeper"][stat] if d["ringkeeper"] else None
            lines.append("| failover | %s, %s (ms) | %s | %s | %s | < 1 |" % (
                title, stat, fmt(zk, "ms"), fmt(rk, "ms") if "ringkeeper" in kinds else "not run",
                ratio(zk, rk)))
    lines += ["", "Failover samples (ms, kill -9 of the leader to the first acknowledged write "
              "by a client on a surviving follower; srvr poll every 100 ms for the election):", ""]
    for k in kinds:
        samples = failovers.get(k, [])
        lines.append("- %s: writes %s; new leader named %s%s" % (
            LABEL[k], [fmt(f["first_write_s"], "ms") for f in samples],
            [fmt(f["election_s"], "ms") for f in samples],
            "; errors: %s" % [f["error"] for f in samples if f["error"]]
            if any(f["error"] for f in samples) else ""))
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default="zookeeper,ringkeeper",
                        help="comma-separated kinds to run [zookeeper,ringkeeper]")
    parser.add_argument("--duration", default="6s", help="measured window per run [6s]")
    parser.add_argument("--warmup", default="2s", help="unrecorded load before each window [2s]")
    parser.add_argument("--server-warmup", default="10s",
                        help="unrecorded set load per ensemble before the matrix [10s]")
    parser.add_argument("--failovers", type=int, default=5, help="leader kills per kind [5]")
    parser.add_argument("--quick", action="store_true",
                        help="1 s windows, 0.5 s warm-ups, 3 failovers: checks the harness")
    parser.add_argument("--zk-heap-mb", type=int, default=1000)
    parser.add_argument("--rk-quorum-protocol", choices=("ringkeeper", "zookeeper"),
                        default="ringkeeper",
                        help="the ringkeeper ensemble's quorum.protocol: its own wire, or "
                             "Apache ZooKeeper's [ringkeeper]")
    parser.add_argument("--out", help="output directory [bench/results/ensemble-<timestamp>]")
    parser.add_argument("--data-root", help="directory of the data dirs [OUT/data]")
    parser.add_argument("--rk-bench", help="rk-bench binary [$RK_BENCH or target/release/rk-bench]")
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args()
    # Kazoo logs every dropped connection; during failovers that is expected, and noise.
    logging.basicConfig(level=logging.ERROR)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for k in kinds:
        if k not in KINDS:
            parser.error("unknown kind %r" % k)
    args.duration_s, args.warmup_s = parse_seconds(args.duration), parse_seconds(args.warmup)
    server_warmup_s = parse_seconds(args.server_warmup)
    if args.quick:
        args.duration_s, args.warmup_s, server_warmup_s = 1.0, 0.5, 1.0
        args.failovers = min(args.failovers, 3)
    os.environ["ZK_HEAP_MB"] = str(args.zk_heap_mb)  # read by harness.JVM_PROFILES at import
    import ensemble.harness as harness
    harness.JVM_PROFILES["server"] = ["-Xmx%dm" % args.zk_heap_mb]

    rk_bench = Path(args.rk_bench or os.environ.get("RK_BENCH")
                    or REPO / "target" / "release" / "rk-bench")
    if not rk_bench.exists():
        sys.exit("%s missing: cargo build --release --bin rk-bench, or pass --rk-bench" % rk_bench)
    if "ringkeeper" in kinds and not ringkeeper_binary().exists():
        sys.exit("%s missing: build it, set RINGKEEPER_BIN, or run --kinds zookeeper"
                 % ringkeeper_binary())

    started = datetime.datetime.now().isoformat(timespec="seconds")
    out = Path(args.out or REPO / "bench" / "results" / (
        "ensemble-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))).resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    args.data_root = Path(args.data_root or out / "data").resolve()
    args.data_root.mkdir(parents=True, exist_ok=True)

    ensembles = {}
    results, failovers = {}, {k: [] for k in kinds}
    try:
        for k in kinds:
            extra = {"forceSync": "yes"}
            if k == "ringkeeper":
                extra["quorum.protocol"] = args.rk_quorum_protocol
            ensembles[k] = Ensemble(k, args.data_root, jvm_profile="server", extra_cfg=extra,
                                    **BENCH_CFG).start()
        for k in kinds:
            modes = ensembles[k].wait_serving(SERVE_TIMEOUT_S)
            if "standalone" in modes.values():
                raise SystemExit("%s reports Mode: standalone: no ensemble support" % k)
            print("== %s ensemble: %s, leader %d" % (k, ensembles[k].connect_string(),
                                                    ensembles[k].leader()), flush=True)

        print("== warm-up (unrecorded): %gs of set per ensemble" % server_warmup_s, flush=True)
        warm = Entry("warmup", "warm-up", "set", "follower", 32, 16, "set")
        for k in kinds:
            rk_bench_run(rk_bench, ensembles[k], warm, out / "runs", server_warmup_s, 0.5)

        print("== matrix: %d entries, %gs + %gs each" % (len(MATRIX), args.warmup_s,
                                                         args.duration_s), flush=True)
        for i, entry in enumerate(MATRIX):
            order = kinds if i % 2 == 0 else list(reversed(kinds))
            for k in order:
                results[(entry.key, k)] = rk_bench_run(rk_bench, ensembles[k], entry,
                                                       out / "runs", args.duration_s,
                                                       args.warmup_s)

        print("== failover: %d leader kills per kind" % args.failovers, flush=True)
        for i in range(args.failovers):
            order = kinds if i % 2 == 0 else list(reversed(kinds))
            for k in order:
                f = failover_once(ensembles[k], "/ensemble-bench-failover")
                failovers[k].append(f)
                print("  %-10s kill %d (client on %d): new leader %s after %s ms, first write "
                      "after %s ms" % (k, f["killed"], f["client_on"], f["new_leader"],
                                       fmt(f["election_s"], "ms"), fmt(f["first_write_s"], "ms")),
                      flush=True)
    finally:
        for e in ensembles.values():
            for sid in e.ids:
                e.stop(sid)
            for sid in e.ids:
                shutil.copy(e.members[sid].log, out / ("%s-s%d.log" % (e.kind, sid)))
        if not args.keep_data:
            shutil.rmtree(args.data_root, ignore_errors=True)

    text = table(kinds, results, failovers, args, started)
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(json.dumps({
        "started": started, "kinds": kinds, "settings": BENCH_CFG,
        "runs": {"%s/%s" % key: v for key, v in results.items()},
        "failovers": failovers}, indent=2) + "\n")
    print()
    print(text)
    print("results in %s" % out)
    bad = [v for v in results.values() if v["failed"] or v["verification_errors"]]
    bad += [f for fs in failovers.values() for f in fs if f["first_write_s"] is None]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
