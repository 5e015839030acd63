#!/usr/bin/python3
"""How long an ensemble takes to be healthy again after its leader was paused (SIGSTOP) for
longer than syncLimit × tickTime and resumed (issue 16), for Apache ZooKeeper and ringkeeper
side by side, with the same zoo.cfg (tests/ensemble/harness.py's TEST_CFG: tickTime 200,
syncLimit 5) and the same clients.

    scripts/paused-leader-recovery.py [--runs 3] [--pause-s 2.5] [--kinds zookeeper,ringkeeper]
                                      [--session-timeout-s 6] [--dir DIR]

Per run: a 3-server ensemble on 127.0.0.1, 4 clients on the whole connect string and 3 pinned
to the leader, each doing set + sync + get in a loop; the leader is paused for --pause-s,
resumed, and these are measured from SIGCONT:

    serving_s   every server answers srvr with a Mode and exactly one says leader
    pinned_s    every client pinned to the old leader has completed a write (set + sync + get)
                through it that it started after SIGCONT
    expired     sessions that expired (Kazoo LOST) during the run, pinned and moving

RINGKEEPER_BIN names the binary (default target/release/ringkeeper). The servers' logs stay in
--dir (default a fresh temp dir), printed at the end.
"""

import argparse
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.ensemble import harness  # noqa: E402

POLL_S = 0.02


class Load:
    def __init__(self, e, hosts, name, root, timeout_s):
        from kazoo.protocol.states import KazooState
        self.lost = False
        self.name = name
        self.path = "%s/%s" % (root, name)
        self.rounds = []  # (started, completed) monotonic times of each set + sync + get
        self.client = e.client(hosts=hosts, timeout=timeout_s)
        self.client.add_listener(lambda s: setattr(self, "lost", self.lost or
                                                   s == KazooState.LOST))
        self.client.create(self.path, b"")
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        c = self.client
        n = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                c.retry(c.set, self.path, b"%d" % n)
                c.retry(c.sync, self.path)
                c.retry(c.get, self.path)
                self.rounds.append((started, time.monotonic()))
                n += 1
            except Exception:
                time.sleep(POLL_S)  # an expired session: keep trying (it reports LOST)

    def stop(self):
        self.stopping.set()
        self.thread.join(40)
        try:
            self.client.stop()
            self.client.close()
        except Exception:
            pass


def one_run(kind, base, pause_s, timeout_s):
    e = harness.Ensemble(kind, base).start()
    loads = []
    try:
        e.wait_serving(60)
        leader = e.leader()
        admin = e.client()
        root = "/pause-%d" % time.monotonic_ns()
        admin.create(root)
        admin.stop()
        admin.close()
        loads = [Load(e, e.connect_string(), "m%d" % i, root, timeout_s) for i in range(4)]
        pinned = [Load(e, e.address(leader), "p%d" % i, root, timeout_s) for i in range(3)]
        loads += pinned
        harness.wait_until(lambda: all(len(ld.rounds) >= 3 for ld in loads), 30, "load")
        proc = e.members[leader].proc
        proc.send_signal(signal.SIGSTOP)
        time.sleep(pause_s)  # the fault's duration
        proc.send_signal(signal.SIGCONT)
        resumed = time.monotonic()

        def serving():
            modes = {sid: e.mode(sid) for sid in e.ids}
            return (all(modes.values()) and
                    sum(1 for m in modes.values() if m == "leader") == 1)
        harness.wait_until(serving, 60, "every server serving", interval_s=POLL_S)
        serving_s = time.monotonic() - resumed
        # A round that started after SIGCONT: one in flight across the pause may be answered
        # from before it.
        harness.wait_until(lambda: all(any(s > resumed for s, _ in ld.rounds) for ld in pinned),
                           60, "the pinned clients to write", interval_s=POLL_S)
        pinned_s = max(min(d for s, d in ld.rounds if s > resumed) for ld in pinned) - resumed
        time.sleep(1.0)  # let a late expiry show
        expired = sum(1 for ld in loads if ld.lost)
        return {"leader": leader, "serving_s": serving_s, "pinned_s": pinned_s,
                "expired": expired, "dir": str(e.dir)}
    finally:
        for ld in loads:
            ld.stop()
        e.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pause-s", type=float, default=2.5)
    ap.add_argument("--session-timeout-s", type=float, default=6.0)
    ap.add_argument("--kinds", default="zookeeper,ringkeeper")
    ap.add_argument("--dir")
    args = ap.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="paused-leader-"))
    results = {}
    for kind in args.kinds.split(","):
        for run in range(args.runs):
            r = one_run(kind, base, args.pause_s, args.session_timeout_s)
            results.setdefault(kind, []).append(r)
            print("%-10s run %d: leader %d, serving %.2f s, pinned clients writing %.2f s, "
                  "%d expired  (%s)" % (kind, run + 1, r["leader"], r["serving_s"],
                                        r["pinned_s"], r["expired"], r["dir"]), flush=True)
    for kind, rs in results.items():
        print("%-10s serving median %.2f max %.2f s; pinned median %.2f max %.2f s; "
              "expired %d" % (kind, statistics.median(r["serving_s"] for r in rs),
                              max(r["serving_s"] for r in rs),
                              statistics.median(r["pinned_s"] for r in rs),
                              max(r["pinned_s"] for r in rs), sum(r["expired"] for r in rs)))
    print("logs in %s" % base)


if __name__ == "__main__":
    main()
