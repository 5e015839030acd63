#!/usr/bin/python3
"""Large trees, ringkeeper beside Apache ZooKeeper on the same data, as ratios (issue 14,
"trees past 2 GiB"): a 3-server ensemble of each kind, loaded through its leader with the same
tree (rk-bench: --znodes N znodes of --value-size bytes under /bench-bigsnap/keys), then

  * RSS per znode on the leader (RSS after the load minus RSS before, over N);
  * snapshot write time: the longest snapshot written during the load (ZooKeeper: mntr
    zk_max_snapshottime; ringkeeper: its "snapshot ... written in N ms" log lines, plus one of
    the whole tree requested with SIGUSR1 after the load);
  * a learner's SNAP time: a follower killed, its dataDir emptied (myid kept) and started
    again, to its first served read of a znode of the tree (the leader sends it the whole tree
    by SNAP); for ringkeeper also the leader's own "streamed in N ms";
  * restart time: that follower killed again and restarted, to its first served read (it
    loads its snapshot and log, then syncs by DIFF).

    bench/bigsnap_bench.py [--znodes 1000000] [--value-size 100] [--kinds zookeeper,ringkeeper]
                           [--snap-count N] [--out DIR]

10M znodes of 100 B (about 1 GB of values, past 2 GiB of snapshot) is the target size;
--value-size 2200 with 1M znodes is a tree past 2 GiB of data. The load generator is rk-bench
(`cargo build --release --bins`). ZooKeeper runs with zkServer.sh's JVM defaults and a heap of
ZK_HEAP_MB (default 4000) per server. --snap-count sets snapCount for both kinds alike: at the
default 100,000 a 10M-znode load writes about a hundred snapshots per server, most of a
terabyte across an ensemble of Java servers that do not purge them (autopurge is hourly). The machine's cores are shared with whatever else runs:
the figures are for comparison between the two servers of one run, not absolutes.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ZK_HEAP_MB", "4000")
sys.path.insert(0, str(REPO / "tests" / "ensemble"))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "scripts"))
import harness  # noqa: E402
from storage_bench import RK_BENCH, RINGKEEPER, first_read, rk_bench, rss_kib  # noqa: E402
from loopback import four_letter  # noqa: E402

ROOT = "/bench-bigsnap"
KEY = ROOT + "/keys/k0"
READ_TIMEOUT_S = 3600


def mntr(port):
    out = {}
    for line in four_letter(port, "mntr", 5.0).splitlines():
        parts = line.split("\t", 1)
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out


def log_text(e, sid, offset=0):
    with open(e.members[sid].log, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def ringkeeper_snapshot_ms(text, znodes_min):
    """(znodes, ms) of the largest snapshot ringkeeper logged having written."""
    best = None
    for m in re.finditer(r"snapshot \S+ of (\d+) znodes written in (\d+) ms", text):
        znodes, ms = int(m.group(1)), int(m.group(2))
        if znodes >= znodes_min and (best is None or znodes > best[0]):
            best = (znodes, ms)
    return best


def wait_until(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)  # log lines and files have no event to await
    raise RuntimeError("timed out waiting for %s" % what)


def empty_data_dir(e, sid):
    data = e.members[sid].data
    for child in data.iterdir():
        if child.name == "myid":
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def measure(kind, znodes, value_size, snap_count, scratch):
    cfg = {"snapCount": snap_count} if snap_count else {}
    e = harness.Ensemble(kind, scratch, participants=3, jvm_profile="server", tickTime=2000,
                         initLimit=900, syncLimit=60, **cfg)
    try:
        e.start()
        e.wait_serving(300)
        leader = e.leader()
        follower = e.followers()[0]
        leader_port = e.members[leader].client_port
        follower_port = e.members[follower].client_port
        rss_before = rss_kib(e.members[leader].proc.pid)
        started = time.monotonic()
        rk_bench(leader_port, "--workload", "get", "--znodes", str(znodes), "--value-size",
                 str(value_size), "--sessions", "8", "--outstanding", "64", "--duration", "1s",
                 "--warmup", "0s", "--root", ROOT, "--no-cleanup", timeout_s=4 * 3600)
        load_s = time.monotonic() - started
        result = {"znodes": znodes, "value_size": value_size, "load_s": round(load_s, 1)}
        if kind == "ringkeeper":
            # A snapshot of the whole tree, so that the figure is of the largest one.
            offset = e.members[leader].log.stat().st_size
            os.kill(e.members[leader].proc.pid, signal.SIGUSR1)
            written = wait_until(lambda: ringkeeper_snapshot_ms(log_text(e, leader, offset),
                                                                znodes),
                                 3600, "ringkeeper's snapshot of the whole tree")
            result["snapshot_write_ms"] = written[1]
            result["snapshot_znodes"] = written[0]
            data = e.members[leader].data
            snapshots = sorted(data.glob("snapshot.*"), key=lambda p: p.stat().st_mtime)
            result["snapshot_bytes"] = snapshots[-1].stat().st_size if snapshots else None
        else:
            # ZooKeeper snapshots every snapCount transactions (no request for one in 3.8);
            # its summary of their times. The follower's snapshot of the whole tree after
            # the SNAP below is measured too.
            stats = mntr(leader_port)
            result["leader_max_snapshot_ms_during_load"] = float(
                stats.get("zk_max_snapshottime", "nan"))
            result["snapshot_count"] = stats.get("zk_cnt_snapshottime")
            snapshots = sorted((e.members[leader].data / "version-2").glob("snapshot.*"),
                               key=lambda p: p.stat().st_mtime)
            result["snapshot_bytes"] = snapshots[-1].stat().st_size if snapshots else None
        rss_after = rss_kib(e.members[leader].proc.pid)
        result["leader_rss_kib"] = rss_after
        result["rss_bytes_per_znode"] = round((rss_after - rss_before) * 1024 / znodes, 1)

        # SNAP: a follower with an empty dataDir gets the whole tree from the leader.
        e.kill(follower)
        empty_data_dir(e, follower)
        offset = e.members[leader].log.stat().st_size
        started = time.monotonic()
        e.start_server(follower)
        first_read(follower_port, KEY, time.monotonic() + READ_TIMEOUT_S)
        result["learner_snap_to_first_read_ms"] = round((time.monotonic() - started) * 1000)
        result["follower_rss_kib_after_snap"] = rss_kib(e.members[follower].proc.pid)
        if kind == "zookeeper":
            # Learner.syncWithLeader snapshots the tree it received (ZooKeeperServer.takeSnapshot
            # feeds mntr's snapshottime): the time to write a snapshot of the whole tree.
            stats = mntr(follower_port)
            result["snapshot_write_ms"] = float(stats.get("zk_max_snapshottime", "nan"))
            snapshots = sorted((e.members[follower].data / "version-2").glob("snapshot.*"),
                               key=lambda p: p.stat().st_mtime)
            result["snapshot_bytes"] = snapshots[-1].stat().st_size if snapshots else None
        if kind == "ringkeeper":
            m = re.search(r"sending server %d a snapshot at zxid \S+ \((\d+) bytes, (\d+) chunks, "
                          r"streamed in (\d+) ms" % follower, log_text(e, leader, offset))
            if m:
                result["leader_snap_stream_ms"] = int(m.group(3))
                result["snap_chunks"] = int(m.group(2))

        # Restart: the follower loads what it now holds.
        e.kill(follower)
        started = time.monotonic()
        e.start_server(follower)
        first_read(follower_port, KEY, time.monotonic() + READ_TIMEOUT_S)
        result["restart_to_first_read_ms"] = round((time.monotonic() - started) * 1000)
        return result
    finally:
        e.close()


ROWS = [
    ("restart of a follower to its first read (ms)", "restart_to_first_read_ms"),
    ("resident bytes per znode on the leader", "rss_bytes_per_znode"),
    ("snapshot write time of the whole tree (ms)", "snapshot_write_ms"),
    ("snapshot file size (bytes)", "snapshot_bytes"),
    ("learner SNAP, empty dataDir to first read (ms)", "learner_snap_to_first_read_ms"),
    ("follower RSS after the SNAP (KiB)", "follower_rss_kib_after_snap"),
    ("load time (s)", "load_s"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--znodes", type=int, default=1_000_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--kinds", default="zookeeper,ringkeeper")
    parser.add_argument("--snap-count", type=int, default=None,
                        help="snapCount for both kinds (default: the servers' own, 100,000)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    for binary in (RK_BENCH, RINGKEEPER):
        if not binary.exists():
            sys.exit("%s is missing: run `cargo build --release --bins`" % binary)
    kinds = [k for k in args.kinds.split(",") if k]
    scratch = Path(tempfile.mkdtemp(prefix="ringkeeper-bigsnap-bench-"))
    results = {}
    for kind in kinds:
        try:
            results[kind] = measure(kind, args.znodes, args.value_size, args.snap_count,
                                    scratch)
        except Exception:
            # The servers' logs stay for the diagnosis.
            print("%s failed; its servers' directories are kept in %s" % (kind, scratch),
                  file=sys.stderr)
            raise
        print("%s: %s" % (kind, json.dumps(results[kind])), flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    zk, rk = results.get("zookeeper", {}), results.get("ringkeeper", {})
    lines = ["| %d znodes of %d B | ZooKeeper | ringkeeper | ringkeeper / ZooKeeper |"
             % (args.znodes, args.value_size), "| --- | --- | --- | --- |"]
    for label, key in ROWS:
        a, b = zk.get(key), rk.get(key)
        ratio = "%.3f" % (b / a) if isinstance(a, (int, float)) and a and b is not None else ""
        lines.append("| %s | %s | %s | %s |" % (label, a, b, ratio))
    if "leader_snap_stream_ms" in rk:
        lines.append("")
        lines.append("ringkeeper's leader streamed the SNAP in %d ms (%s chunks)."
                     % (rk["leader_snap_stream_ms"], rk.get("snap_chunks")))
    table = "\n".join(lines)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "bigsnap.md").write_text(table + "\n")
        (out / "bigsnap.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
