#!/usr/bin/python3
"""Linearizability soak (issue 14, item 2): many histories of tests/ensemble/linzrun.py's
workload (client sessions doing create / set / compare-and-set / delete / sync + read / plain
read) under a nemesis, checked by tests/ensemble/linearizability.py, against ringkeeper and the
Apache ZooKeeper control, per fault schedule.

    scripts/linearizability-soak.py [--rounds 2] [--duration-s 60] [--servers 3,5]
                                    [--kinds ringkeeper,zookeeper]
                                    [--schedules kill,pause,partition,mixed]
                                    [--workers 6] [--keys 6] [--seed N] [--dir DIR]
                                    [--stacks-on-failure]
    scripts/linearizability-soak.py --check DIR/<name>.ops.jsonl

A round runs every (kind, servers, schedule) once, each in a fresh ensemble whose members are
in network namespaces of their own (NetLab of tests/ensemble/test_partition.py; needs root,
without it the partition faults are left out and said so). Schedules:

    kill        kill -9 of a member (the leader every other time), restart
    pause       the leader SIGSTOPped for 2 x syncLimit x tickTime, then SIGCONT
    partition   the leader cut off until the others elect, then healed; a follower cut off
    mixed       all of them (and, with 5 servers, kill -9 of the leader and a follower at once)

Prints one line per history, then a table per kind and schedule: histories checked, ops,
indeterminate ops, violations, faults applied. A history with a violation is written to
DIR/<kind>-<servers>-<schedule>-<n>.history.txt with its violations (and as JSON lines,
.ops.jsonl, which `--check FILE` checks again). Exit status 1 when any
history has a violation or a run failed. RINGKEEPER_BIN names the binary (default
target/release/ringkeeper).
"""

import argparse
import dataclasses
import json
import logging
import random
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.ensemble import harness, linzrun  # noqa: E402
from tests.ensemble import linearizability as lin  # noqa: E402
from tests.ensemble.test_partition import NetLab, netns_unavailable  # noqa: E402

SCHEDULES = {
    "kill": {3: ("kill",), 5: ("kill", "kill2")},
    "pause": {3: ("pause",), 5: ("pause",)},
    "partition": {3: ("partition", "partition-follower"), 5: ("partition",
                                                              "partition-follower")},
    "mixed": {3: ("kill", "pause", "partition", "partition-follower"),
              5: ("kill2", "pause", "partition", "kill", "partition-follower")},
}


def one(kind, servers, schedule, args, base, seed):
    lab = None
    if not netns_unavailable():
        lab = NetLab(servers)
        lab.setup()
    e = None
    try:
        place = {} if lab is None else {"hosts": lab.hosts, "netns": lab.namespaces}
        e = harness.Ensemble(kind, base, participants=servers, **place).start()
        pause_s = 2.0 * harness.TEST_CFG["syncLimit"] * harness.TEST_CFG["tickTime"] / 1000.0
        try:
            return linzrun.run(e, lab, args.duration_s, SCHEDULES[schedule][servers],
                               workers=args.workers, keys=args.keys, seed=seed,
                               pause_s=pause_s)
        except Exception:
            if args.stacks_on_failure:
                dump_stacks(e, base)
            raise
    finally:
        if e is not None:
            e.close()
        if lab is not None:
            lab.close()


def dump_stacks(e, base):
    """Every thread's stack of every running server (gdb), and its srvr, into base/: what a
    server that stopped making progress was doing."""
    for sid in e.running_ids():
        m = e.members[sid]
        out = Path(base) / ("s%d.stacks.txt" % sid)
        try:
            srvr = e.srvr(sid)
        except OSError as ex:
            srvr = repr(ex)
        r = subprocess.run(["gdb", "-p", str(m.proc.pid), "-batch", "-ex",
                            "thread apply all bt"], capture_output=True, text=True,
                           timeout=120)
        out.write_text("srvr:\n%s\n\n%s\n%s" % (srvr, r.stdout, r.stderr[-2000:]))
        print("  server %d: stacks in %s" % (sid, out), flush=True)


def dump_ops(path, ops):
    """One JSON object per op (bytes as latin-1 text), for `--check` to read back."""
    with open(path, "w") as f:
        for o in ops:
            d = dataclasses.asdict(o)
            for k in ("data", "result_data"):
                if d[k] is not None:
                    d[k] = d[k].decode("latin-1")
            f.write(json.dumps(d) + "\n")


def load_ops(path):
    ops = []
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            for k in ("data", "result_data"):
                if d[k] is not None:
                    d[k] = d[k].encode("latin-1")
            ops.append(lin.Op(**d))
    return ops


def write_history(path, result):
    dump_ops(str(path).replace(".history.txt", ".ops.jsonl"), result.ops)
    with open(path, "w") as f:
        f.write(result.summary() + "\n\n")
        for v in result.report.violations:
            f.write(str(v) + "\n\n")
        f.write("nemesis: %s\n\n" % result.events)
        for o in sorted(result.ops, key=lambda o: o.invoke):
            f.write(o.describe() + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--duration-s", type=float, default=60.0)
    p.add_argument("--servers", default="3,5")
    p.add_argument("--kinds", default="ringkeeper,zookeeper")
    p.add_argument("--schedules", default="kill,pause,partition,mixed")
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--keys", type=int, default=6)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--dir", default=None)
    p.add_argument("--stacks-on-failure", action="store_true",
                   help="when a run fails, dump every server's thread stacks (gdb) first")
    p.add_argument("--check", default=None, metavar="OPS_JSONL",
                   help="only check a history written by an earlier run (*.ops.jsonl)")
    args = p.parse_args()
    if args.check:
        report = lin.check(load_ops(args.check))
        print(report.summary())
        for v in report.violations:
            print(v)
        return 0 if report.ok() and not report.unknown_keys else 1
    # Kazoo logs every dropped connection; the nemesis drops many on purpose.
    logging.basicConfig(level=logging.ERROR)
    out = Path(args.dir or tempfile.mkdtemp(prefix="linz-soak-"))
    out.mkdir(parents=True, exist_ok=True)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    kinds = [k for k in args.kinds.split(",") if k]
    sizes = [int(s) for s in args.servers.split(",") if s]
    schedules = [s for s in args.schedules.split(",") if s]
    print("seed %d, logs and histories in %s%s" % (seed, out, "" if not netns_unavailable()
                                                    else " (no partitions: %s)" %
                                                    netns_unavailable()), flush=True)
    totals = {}  # (kind, schedule) -> dict of sums
    failures = 0
    started = time.monotonic()
    for r in range(args.rounds):
        for kind in kinds:
            for servers in sizes:
                for schedule in schedules:
                    run_seed = rng.randrange(1 << 30)
                    name = "%s-%d-%s-%d" % (kind, servers, schedule, r)
                    t = totals.setdefault((kind, schedule), {
                        "histories": 0, "ops": 0, "indeterminate": 0, "violations": 0,
                        "bad_histories": 0, "failed_runs": 0, "faults": {}})
                    try:
                        result = one(kind, servers, schedule, args, out / name, run_seed)
                    except Exception:
                        failures += 1
                        t["failed_runs"] += 1
                        print("%s (seed %d): RUN FAILED\n%s" % (name, run_seed,
                                                                traceback.format_exc()),
                              flush=True)
                        continue
                    t["histories"] += 1
                    t["ops"] += result.report.ops
                    t["indeterminate"] += result.report.indeterminate
                    t["violations"] += len(result.report.violations)
                    for f, n in result.faults.items():
                        t["faults"][f] = t["faults"].get(f, 0) + n
                    problems = result.nemesis_errors + result.worker_errors
                    if result.report.unknown_keys:
                        problems.append("search bound hit on %s" % result.report.unknown_keys)
                    if result.report.violations or problems:
                        t["bad_histories"] += 1
                        failures += 1
                        path = out / (name + ".history.txt")
                        write_history(path, result)
                        print("%s (seed %d): %s\n  PROBLEMS %s, history in %s" % (
                            name, run_seed, result.summary(), problems, path), flush=True)
                        for v in result.report.violations[:3]:
                            print("  " + str(v).replace("\n", "\n  "), flush=True)
                    else:
                        print("%s (seed %d): %s" % (name, run_seed, result.summary()),
                              flush=True)
    print("\n%-11s %-10s %9s %9s %13s %10s %7s  %s" % (
        "kind", "schedule", "histories", "ops", "indeterminate", "violations", "failed",
        "faults applied"))
    for (kind, schedule), t in sorted(totals.items()):
        print("%-11s %-10s %9d %9d %13d %10d %7d  %s" % (
            kind, schedule, t["histories"], t["ops"], t["indeterminate"], t["violations"],
            t["failed_runs"] + t["bad_histories"],
            " ".join("%s=%d" % kv for kv in sorted(t["faults"].items()))))
    print("total %.0fs, seed %d" % (time.monotonic() - started, seed))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
