#!/usr/bin/python3
"""Crash test with real processes: concurrent writers against ringkeeper, `kill -9` at a random
moment, restart, and check that every acknowledged write is there and no multi is half applied.

    scripts/crash-test.py --kills 10              # the short run CI does
    scripts/crash-test.py --kills 200 --seed 7    # the long run

Each cycle starts the server on the same data directory, runs writer threads (create with
data, versioned setData of a per-writer counter, two-node multis, ephemeral creates) until the
kill, then restarts the server and checks everything acknowledged in every cycle so far:

* every acknowledged create exists with exactly the data written;
* every writer's counter is at least the last acknowledged value (a later, unacknowledged set
  may also have landed, so "at least");
* every multi is all or nothing: its two nodes both exist or both do not, whether or not it
  was acknowledged; acknowledged ones both exist;
* the server recovers, serves, and the zxid never goes backwards across restarts.

Every wait is bounded; the script exits non-zero with the seed and the first violation.
Uses Debian's python3-kazoo.
"""

import argparse
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError, NoNodeError
from kazoo.retry import KazooRetry

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from loopback import four_letter, free_port  # noqa: E402


class Server:
    def __init__(self, binary, directory, port):
        self.binary, self.dir, self.port = binary, directory, port
        self.proc = None
        (directory / "zoo.cfg").write_text(
            "tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
            "maxClientCnxns=0\n4lw.commands.whitelist=*\n"
            # Small thresholds so that snapshots, purges and segment roll-overs happen
            # during the test and crashes land in the middle of them.
            "snapCount=1000\nautopurge.purgeInterval=1\npreAllocSize=1024\n"
            % (directory / "data", port))

    def start(self, timeout_s=30.0):
        log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen([str(self.binary), "--config", str(self.dir / "zoo.cfg")],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s during startup; see %s"
                                   % (self.proc.returncode, self.dir / "server.log"))
            try:
                if four_letter(self.port, "ruok", 1.0) == "imok":
                    return
            except OSError:
                pass
            time.sleep(0.05)  # the port is not listening yet: nothing to await
        raise RuntimeError("server did not answer ruok within %.0fs" % timeout_s)

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def zxid(self):
        for line in four_letter(self.port, "srvr").splitlines():
            if line.startswith("Zxid:"):
                return int(line.split()[1], 16)
        raise RuntimeError("srvr reported no Zxid")


class Ledger:
    """What was acknowledged, across every cycle."""

    def __init__(self):
        self.lock = threading.Lock()
        self.creates = {}        # path -> data
        self.counters = {}       # path -> last acknowledged value
        self.multis = []         # (path a, path b, acknowledged)

    def check(self, client, since_cycle=0):
        """Checks what was acknowledged in cycles >= since_cycle (0: everything). Reads are
        pipelined (Kazoo's async calls) so a full check of a long run stays fast."""
        problems = []
        with self.lock:
            creates = {p: d for p, (d, c) in self.creates.items() if c >= since_cycle}
            counters = dict(self.counters)
            multis = [m for m in self.multis if m[3] >= since_cycle]
        pending = [(path, data, client.get_async(path)) for path, data in creates.items()]
        for path, data, result in pending:
            try:
                value, _ = result.get(timeout=30)
            except NoNodeError:
                problems.append("acknowledged create %s is missing" % path)
                continue
            if value != data:
                problems.append("%s holds %r, acknowledged %r" % (path, value, data))
        for path, value in counters.items():
            got, _ = client.get(path)
            if int(got.decode() or "0") < value:
                problems.append("counter %s is %s, acknowledged %d" % (path, got, value))
        probes = [(a, b, acknowledged, client.exists_async(a), client.exists_async(b))
                  for a, b, acknowledged, _ in multis]
        for a, b, acknowledged, first, second in probes:
            ea = first.get(timeout=30) is not None
            eb = second.get(timeout=30) is not None
            if ea != eb:
                problems.append("multi half applied: %s=%s %s=%s" % (a, ea, b, eb))
            if acknowledged and not ea:
                problems.append("acknowledged multi %s / %s is missing" % (a, b))
        return problems


def writer(client, ledger, root, writer_id, cycle, stop, rng):
    base = "%s/w%d" % (root, writer_id)
    counter = base + "/counter"
    try:
        client.ensure_path(base)
        if client.exists(counter) is None:
            client.create(counter, b"0")
    except KazooException:
        return
    step = 0
    while not stop.is_set():
        step += 1
        kind = rng.random()
        try:
            if kind < 0.4:
                path = "%s/c%d-%d" % (base, cycle, step)
                data = ("%d:%d:%d" % (writer_id, cycle, step)).encode() * rng.randint(1, 8)
                client.create(path, data)
                with ledger.lock:
                    ledger.creates[path] = (data, cycle)
            elif kind < 0.7:
                value = cycle * 1_000_000 + step
                client.set(counter, str(value).encode())
                with ledger.lock:
                    ledger.counters[counter] = max(ledger.counters.get(counter, 0), value)
            elif kind < 0.95:
                a = "%s/m%d-%d-a" % (base, cycle, step)
                b = "%s/m%d-%d-b" % (base, cycle, step)
                entry = [a, b, False, cycle]
                with ledger.lock:
                    ledger.multis.append(entry)
                t = client.transaction()
                t.create(a, b"a")
                t.create(b, b"b")
                results = t.commit()
                if all(isinstance(r, str) for r in results):
                    entry[2] = True
            else:
                client.create("%s/e%d-%d" % (base, cycle, step), b"", ephemeral=True)
        except NodeExistsError:
            pass
        except KazooException:
            # Connection lost around the kill: the outcome is unknown, nothing recorded.
            return
        except Exception:
            return


def make_client(port):
    client = KazooClient(hosts="127.0.0.1:%d" % port, timeout=10.0,
                         connection_retry=KazooRetry(max_tries=0),
                         command_retry=KazooRetry(max_tries=0))
    client.start(timeout=15)
    return client


def main():
    # Kazoo logs every dropped connection; the kills make plenty of those.
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--binary", default=os.environ.get(
        "RINGKEEPER_BIN", str(REPO / "target" / "release" / "ringkeeper")))
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--full-check-every", type=int, default=1,
                        help="check everything acknowledged so far every N cycles (and after "
                             "the last); in between, what the last N cycles acknowledged")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)
    directory = Path(tempfile.mkdtemp(prefix="ringkeeper-crash-"))
    server = Server(Path(args.binary), directory, free_port())
    ledger = Ledger()
    root = "/crash"
    last_zxid = 0
    print("crash test: seed %d, %d kills, data in %s" % (seed, args.kills, directory))
    started = time.monotonic()
    passed = False
    try:
        server.start()
        for cycle in range(1, args.kills + 1):
            clients = [make_client(server.port) for _ in range(max(1, args.writers // 2))]
            stop = threading.Event()
            threads = [threading.Thread(target=writer, daemon=True,
                                        args=(clients[i % len(clients)], ledger, root, i, cycle,
                                              stop, random.Random(rng.random())))
                       for i in range(args.writers)]
            for t in threads:
                t.start()
            # Let the load run, then kill at a random moment.
            stop.wait(rng.uniform(0.2, 1.2))
            server.kill9()
            stop.set()
            for t in threads:
                t.join(timeout=30)
                if t.is_alive():
                    raise RuntimeError("a writer did not stop within 30 s")
            for c in clients:
                try:
                    c.stop()
                    c.close()
                except Exception:
                    pass
            server.start()
            zxid = server.zxid()
            if zxid < last_zxid:
                raise AssertionError("zxid went backwards: %#x after %#x" % (zxid, last_zxid))
            last_zxid = zxid
            checker = make_client(server.port)
            full = cycle % args.full_check_every == 0 or cycle == args.kills
            problems = ledger.check(checker, 0 if full else cycle - args.full_check_every)
            checker.stop()
            checker.close()
            with ledger.lock:
                summary = (len(ledger.creates), len(ledger.multis),
                           sum(1 for m in ledger.multis if m[2]))
            print("cycle %d: zxid %#x; acknowledged so far: %d creates, %d multis (%d acked)"
                  % (cycle, zxid, summary[0], summary[1], summary[2]), flush=True)
            if problems:
                for p in problems[:20]:
                    print("VIOLATION: " + p)
                print("FAILED after %d kills (seed %d); data kept in %s"
                      % (cycle, seed, directory))
                print("crash-test: %d passed, 1 failed" % (cycle - 1))
                return 1
        print("every acknowledged write present after %d kill -9 cycles (seed %d, %.1f s)"
              % (args.kills, seed, time.monotonic() - started))
        print("crash-test: %d passed, 0 failed" % args.kills)
        passed = True
        return 0
    finally:
        server.kill9()
        if passed and not args.keep:
            import shutil
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
