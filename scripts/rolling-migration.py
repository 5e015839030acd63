#!/usr/bin/env python3
"""A rolling migration of a 3-server Apache ZooKeeper 3.8 ensemble to ringkeeper and back,
under a Kazoo write load (issue 13, "Mixed ensembles").

One server at a time is stopped and started again as ringkeeper on the same zoo.cfg, myid and
dataDir (plus `quorum.protocol=zookeeper`): ringkeeper imports the Java server's files and joins
the ensemble. The plan: a Java follower becomes ringkeeper; the leader is killed with kill -9;
the next Java server becomes ringkeeper; the leader is killed again (two ringkeeper servers and
one Java: if the Java server led, a ringkeeper server leads now); the last Java server becomes
ringkeeper (an all-ringkeeper ensemble on ZooKeeper's wire); then each ringkeeper server in
turn is stopped, its state exported as a ZooKeeper data directory (`ringkeeper
export-zookeeper`) and the Java server started on that export, the leader killed once more in
the mixed phase on the way back.

Throughout, three Kazoo writers create sequential znodes (each create retried until it is
acknowledged) and a fourth client holds a session with an ephemeral. At the end every
acknowledged write must be present on every server, no session may have expired, the
ephemeral must still be its session's, and both a Java and a ringkeeper server must have led.
Prints, per step, the longest time without an acknowledged write, the leader after it, and
the totals.

    scripts/rolling-migration.py [--binary target/release/ringkeeper] [--keep]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kazoo.protocol.states import KazooState  # noqa: E402

from tests.ensemble import harness  # noqa: E402
from tests.ensemble.harness import wait_until  # noqa: E402
from tests.ensemble.test_mixed import MixedEnsemble  # noqa: E402

SERVE_TIMEOUT_S = 60.0
ROOT = "/rolling"


def longest_gap(acked_times, start, end):
    """The longest time in [start, end] without an acknowledged write."""
    times = sorted(t for t in acked_times if start <= t <= end)
    points = [start] + times + [end]
    return max(b - a for a, b in zip(points, points[1:]))


class Migration:
    def __init__(self, ensemble, binary):
        self.e = ensemble
        self.binary = binary
        self.steps = []  # (name, seconds, longest gap)
        self.leaders = set()  # the kinds of server that led after a step

    def caught_up(self, sid):
        leader = self.e.leader()
        wait_until(lambda: self.e.zxid(sid) >= self.e.zxid(leader), SERVE_TIMEOUT_S,
                   "server %d to hold the leader's zxid" % sid)

    def to_ringkeeper(self, sid):
        e = self.e
        e.stop(sid)
        e.ringkeeper_ids.add(sid)
        e.configure(sid, extra_lines=["quorum.protocol=zookeeper"])
        e.start_server(sid)
        wait_until(lambda: e.mode(sid) == "follower", SERVE_TIMEOUT_S,
                   "server %d to follow as ringkeeper" % sid)
        self.caught_up(sid)

    def to_java(self, sid):
        e = self.e
        m = e.members[sid]
        e.stop(sid)
        out = m.dir / ("zookeeper-data-%d" % int(time.time() * 1000))
        exported = subprocess.run(
            [str(self.binary), "export-zookeeper", "--config", str(m.dir / "zoo.cfg"),
             "--out", str(out)], capture_output=True, text=True, timeout=120)
        if exported.returncode != 0:
            raise RuntimeError("export of server %d failed: %s%s" % (
                sid, exported.stdout, exported.stderr))
        (out / "myid").write_text("%d\n" % sid)
        e.ringkeeper_ids.discard(sid)
        e.configure(sid, extra_lines=["dataDir=%s" % out])
        e.start_server(sid)
        wait_until(lambda: e.mode(sid) == "follower", SERVE_TIMEOUT_S,
                   "server %d to follow as Apache ZooKeeper" % sid)
        self.caught_up(sid)

    def kind(self, sid):
        return "ringkeeper" if sid in self.e.ringkeeper_ids else "Java"

    def kill_leader(self):
        e = self.e
        leader = e.leader()
        e.kill(leader)
        new = e.wait_leader(SERVE_TIMEOUT_S, exclude=(leader,))
        print("  killed the %s leader %d; server %d (%s) leads" % (
            self.kind(leader), leader, new, self.kind(new)))
        e.start_server(leader)
        wait_until(lambda: e.mode(leader) == "follower", SERVE_TIMEOUT_S,
                   "the killed server %d to follow again" % leader)
        self.caught_up(leader)

    def step(self, name, writers, action):
        started = time.monotonic()
        action()
        # The step ends once writes are acknowledged again.
        wait_until(lambda: writers.acked_after(time.monotonic() - 1.0) > 0, SERVE_TIMEOUT_S,
                   "writes to go on after: %s" % name)
        ended = time.monotonic()
        with writers.lock:
            times = [t for t, _ in writers.acked]
        gap = longest_gap(times, started, ended)
        self.steps.append((name, ended - started, gap))
        leader = self.e.leader()
        self.leaders.add(self.kind(leader))
        print("%-62s %6.1f s, longest write outage %5.2f s, leader %d (%s)" % (
            name, ended - started, gap, leader, self.kind(leader)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=str(REPO / "target" / "release" / "ringkeeper"))
    parser.add_argument("--keep", action="store_true", help="keep the servers' directories")
    args = parser.parse_args()
    binary = Path(args.binary).resolve()
    os.environ["RINGKEEPER_BIN"] = str(binary)
    tmp = Path(tempfile.mkdtemp(prefix="rk-rolling-migration-"))
    e = MixedEnsemble("zookeeper", tmp, participants=3, ringkeeper_ids=[], snapCount=2000)
    clients = []
    writers = None
    ok = False
    try:
        e.start()
        e.wait_serving(SERVE_TIMEOUT_S)
        setup = e.client()
        clients.append(setup)
        setup.ensure_path(ROOT)
        holder = e.client(timeout=30.0)
        clients.append(holder)
        states = []
        holder.add_listener(lambda state: states.append(state))
        holder.create(ROOT + "-eph", b"held", ephemeral=True)
        session = holder.client_id[0]
        writers = harness.Writers(e, ROOT, threads=3).start()
        wait_until(lambda: writers.count() > 100, SERVE_TIMEOUT_S, "the load to start")
        migration = Migration(e, binary)
        print("3 Apache ZooKeeper 3.8 servers, leader %d; load: 3 Kazoo writers" % e.leader())

        def next_java():
            """A Java server to replace: a follower if there is one, else the leader."""
            leader = e.leader()
            java = [s for s in e.participant_ids if s not in e.ringkeeper_ids]
            followers = [s for s in java if s != leader]
            return (followers or java)[0]

        migration.leaders.add("Java")
        for count in (1, 2, 3):
            sid = next_java()
            migration.step("server %d: Java -> ringkeeper (%d of 3)" % (sid, count), writers,
                           lambda sid=sid: migration.to_ringkeeper(sid))
            if count < 3:
                migration.step("kill -9 the leader (mixed: %d ringkeeper, %d Java)" % (
                    count, 3 - count), writers, migration.kill_leader)
        for count, sid in enumerate(sorted(e.ringkeeper_ids), start=1):
            migration.step("server %d: ringkeeper -> Java (export-zookeeper)" % sid, writers,
                           lambda sid=sid: migration.to_java(sid))
            if count == 1:
                migration.step("kill -9 the leader (mixed: 2 ringkeeper, 1 Java)", writers,
                               migration.kill_leader)
        writers.stop()
        acked = writers.paths()
        assert not writers.errors, writers.errors[:5]
        missing = {}
        for sid in e.participant_ids:
            present = harness.children(e, sid, ROOT)
            lost = [p for p in acked if p.rsplit("/", 1)[1] not in present]
            if lost:
                missing[sid] = sorted(lost)[:5]
        assert not missing, "acknowledged writes missing: %s" % missing
        assert KazooState.LOST not in states, states
        assert holder.exists(ROOT + "-eph").ephemeralOwner == session
        assert migration.leaders == {"Java", "ringkeeper"}, migration.leaders
        total = sum(seconds for _, seconds, _ in migration.steps)
        print("%d acknowledged writes, all present on every server; no session expired; the "
              "held session's ephemeral is its own; Java and ringkeeper servers led; %.1f s of "
              "steps, longest write outage %.2f s" % (
                  len(acked), total, max(gap for _, _, gap in migration.steps)))
        ok = True
    finally:
        if writers is not None and not writers.stopping.is_set():
            try:
                writers.stop()
            except AssertionError as error:
                print(error)
        for client in clients:
            try:
                client.stop()
                client.close()
            except Exception:  # closing is best effort once the run is over
                pass
        if not ok:
            print(e.describe())
        e.close()
        if args.keep or not ok:
            print("servers' directories kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    threading.current_thread().name = "rolling-migration"
    sys.exit(main())
