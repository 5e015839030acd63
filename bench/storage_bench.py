#!/usr/bin/python3
"""Storage benchmarks, ringkeeper beside Apache ZooKeeper in one invocation, as ratios:

  * restart time to the first served read with N znodes of 100 bytes (default 1,000,000),
    the median of --restarts restarts (default 3);
  * resident memory per znode at N znodes (RSS after loading minus RSS when empty), right
    after the load and again --settle seconds later (default 10);
  * p99 write latency while a snapshot is being written, against the same load without one
    (ringkeeper; the snapshot is requested with SIGUSR1 during the load).

    bench/storage_bench.py [--znodes 1000000] [--restarts 3] [--settle 10] [--out DIR]

Both servers run from the same kind of zoo.cfg on the same filesystem, fsync on, 127.0.0.1.
The load generator is rk-bench (target/release/rk-bench); `cargo build --release --bins`
first. Prints a table; writes it and the raw figures as JSON to --out when given.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from loopback import four_letter, free_port  # noqa: E402

RK_BENCH = REPO / "target" / "release" / "rk-bench"
RINGKEEPER = REPO / "target" / "release" / "ringkeeper"


def first_read(port, path, deadline):
    """Connects, then getData(path) until it answers OK; returns when it does."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
                s.settimeout(5.0)
                body = struct.pack(">iqiq", 0, 0, 30000, 0) + struct.pack(">i", 16) + bytes(16) + b"\0"
                s.sendall(struct.pack(">i", len(body)) + body)
                read_frame(s)
                p = path.encode()
                req = struct.pack(">ii", 1, 4) + struct.pack(">i", len(p)) + p + b"\0"
                s.sendall(struct.pack(">i", len(req)) + req)
                reply = read_frame(s)
                xid, _zxid, err = struct.unpack(">iqi", reply[:16])
                if xid == 1 and err == 0:
                    return
        except OSError:
            pass
        time.sleep(0.005)  # the server is not accepting yet: nothing to await
    raise RuntimeError("no successful read before the deadline")


def read_frame(s):
    header = recv_exact(s, 4)
    (length,) = struct.unpack(">i", header)
    return recv_exact(s, length)


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise OSError("connection closed")
        out += chunk
    return out


def rss_kib(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Server:
    def __init__(self, kind, directory):
        self.kind, self.dir = kind, directory
        self.port = free_port()
        (directory / "data").mkdir(parents=True, exist_ok=True)
        (directory / "zoo.cfg").write_text(
            "tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
            "maxClientCnxns=0\n4lw.commands.whitelist=*\nadmin.enableServer=false\n"
            % (directory / "data", self.port))
        self.proc = None

    def start(self, timeout_s=300.0):
        started = time.monotonic()
        if self.kind == "zookeeper":
            # The reference as zkServer.sh runs it, with a heap big enough for the tree.
            env = dict(os.environ, ZK_JVM_PROFILE="server", ZK_HEAP_MB="8000")
            subprocess.run([str(REPO / "scripts" / "reference-zk.sh"), "start", str(self.dir)],
                           check=True, capture_output=True, env=env, timeout=timeout_s)
            self.pid = int((self.dir / "zk.pid").read_text().strip())
        else:
            log = open(self.dir / "server.log", "ab")
            self.proc = subprocess.Popen([str(RINGKEEPER), "--config", str(self.dir / "zoo.cfg")],
                                         stdout=log, stderr=subprocess.STDOUT)
            log.close()
            self.pid = self.proc.pid
        return started

    def stop(self):
        if self.kind == "zookeeper":
            subprocess.run([str(REPO / "scripts" / "reference-zk.sh"), "stop", str(self.dir)],
                           capture_output=True, timeout=60)
        elif self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


def rk_bench(port, *args, timeout_s=3600):
    out = subprocess.run([str(RK_BENCH), "--server", "127.0.0.1:%d" % port] + list(args),
                         capture_output=True, text=True, timeout=timeout_s)
    if out.returncode != 0:
        raise RuntimeError("rk-bench failed: %s %s" % (out.stdout[-2000:], out.stderr[-2000:]))
    return out.stdout


def json_run(port, *args):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        rk_bench(port, *args, "--json", f.name)
        return json.loads(Path(f.name).read_text())


def p99_of(report, op="set"):
    summary = report.get("summary", report)
    for entry in summary.get("latencies", []):
        if entry.get("op") == op:
            return round(entry.get("p99_us"), 1)
    return None


def measure(kind, znodes, scratch, restarts, settle_s):
    directory = scratch / kind
    server = Server(kind, directory)
    server.start()
    wait_ready(server.port)
    empty_rss = rss_kib(server.pid)
    load_started = time.monotonic()
    root = "/bench-storage"
    rk_bench(server.port, "--workload", "get", "--znodes", str(znodes), "--value-size", "100",
             "--sessions", "8", "--outstanding", "64", "--duration", "1s", "--warmup", "0s",
             "--root", root, "--no-cleanup")
    load_seconds = time.monotonic() - load_started
    loaded_rss = rss_kib(server.pid)
    time.sleep(settle_s)  # the measurement is of what the server holds after a while
    settled_rss = rss_kib(server.pid)
    result = {
        "znodes": znodes,
        "load_seconds": round(load_seconds, 1),
        "rss_empty_kib": empty_rss,
        "rss_loaded_kib": loaded_rss,
        "rss_settled_kib": settled_rss,
        "settle_seconds": settle_s,
        "bytes_per_znode": round((loaded_rss - empty_rss) * 1024 / znodes, 1),
        "bytes_per_znode_settled": round((settled_rss - empty_rss) * 1024 / znodes, 1),
    }
    if kind == "ringkeeper":
        # Write latency without and with a snapshot being written during the load.
        base = json_run(server.port, "--workload", "set", "--sessions", "32",
                        "--outstanding", "16", "--duration", "8s", "--warmup", "1s")
        snapshotter = subprocess.Popen(["/bin/sh", "-c",
                                        "sleep 1.5; kill -USR1 %d; sleep 3; kill -USR1 %d"
                                        % (server.pid, server.pid)])
        during = json_run(server.port, "--workload", "set", "--sessions", "32",
                          "--outstanding", "16", "--duration", "8s", "--warmup", "1s")
        snapshotter.wait(timeout=30)
        result["set_p99_us_without_snapshot"] = p99_of(base)
        result["set_p99_us_during_snapshot"] = p99_of(during)
        # Make the restart start from a snapshot of everything, as it would after a while: one
        # at or after the zxid of the request (a snapshot already being written when the
        # request comes is of an older version; the request waits for it).
        zxid = server_zxid(server.port)
        os.kill(server.pid, signal.SIGUSR1)
        wait_for_snapshot(directory / "data", zxid, timeout_s=120)
    server.stop()
    samples = []
    for _ in range(restarts):
        restart_started = server.start()
        first_read(server.port, root + "/keys/k0", time.monotonic() + 600)
        samples.append(round((time.monotonic() - restart_started) * 1000, 1))
        server.stop()
    result["restart_samples_ms"] = samples
    result["restart_to_first_read_ms"] = sorted(samples)[len(samples) // 2]
    return result


def wait_ready(port, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if "Mode:" in four_letter(port, "srvr", 1.0):
                return
        except OSError:
            pass
        time.sleep(0.05)  # not listening yet
    raise RuntimeError("server not ready")


def server_zxid(port):
    """The server's last zxid, from srvr ("Zxid: 0x...")."""
    for line in four_letter(port, "srvr", 2.0).splitlines():
        if line.startswith("Zxid:"):
            return int(line.split(":", 1)[1].strip(), 16)
    raise RuntimeError("srvr gave no zxid")


def wait_for_snapshot(data_dir, zxid, timeout_s):
    """Waits for a snapshot file whose zxid (in its name) is at least `zxid`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in data_dir.glob("snapshot.*"):
            suffix = path.name[len("snapshot."):]
            if len(suffix) == 16 and int(suffix, 16) >= zxid:
                return
        time.sleep(0.1)  # the snapshot thread reports only in the log
    raise RuntimeError("no snapshot at or after zxid %#x appeared" % zxid)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--znodes", type=int, default=1_000_000)
    parser.add_argument("--restarts", type=int, default=3,
                        help="restarts measured per server; the median is reported")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds after the load for the second RSS reading")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    for binary in (RK_BENCH, RINGKEEPER):
        if not binary.exists():
            sys.exit("%s is missing: run `cargo build --release --bins`" % binary)
    scratch = Path(tempfile.mkdtemp(prefix="ringkeeper-storage-bench-"))
    try:
        results = {kind: measure(kind, args.znodes, scratch, max(1, args.restarts), args.settle)
                   for kind in ("zookeeper", "ringkeeper")}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    zk, rk = results["zookeeper"], results["ringkeeper"]
    rows = [
        ("restart to first read (ms, median of %d), lower is better" % max(1, args.restarts),
         "restart_to_first_read_ms"),
        ("resident bytes per znode right after the load, lower is better", "bytes_per_znode"),
        ("resident bytes per znode %g s after the load, lower is better" % args.settle,
         "bytes_per_znode_settled"),
        ("load time of the znodes (s), lower is better", "load_seconds"),
    ]
    lines = ["| %d znodes of 100 B | ZooKeeper | ringkeeper | ringkeeper / ZooKeeper |" % args.znodes,
             "| --- | --- | --- | --- |"]
    for label, key in rows:
        ratio = rk[key] / zk[key] if zk.get(key) else float("nan")
        lines.append("| %s | %s | %s | %.3f |" % (label, zk[key], rk[key], ratio))
    without, during = rk.get("set_p99_us_without_snapshot"), rk.get("set_p99_us_during_snapshot")
    if without and during:
        lines.append("| ringkeeper set p99 (us) without / during a snapshot | | %s / %s | %.2f |"
                     % (without, during, during / without))
    lines.append("")
    lines.append("Restart samples (ms): ZooKeeper %s; ringkeeper %s."
                 % (zk["restart_samples_ms"], rk["restart_samples_ms"]))
    table = "\n".join(lines)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "storage.md").write_text(table + "\n")
        (out / "storage.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
