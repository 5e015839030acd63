#!/usr/bin/python3
"""Ensemble soak: kill -9 a random server of a 3- (or 5-) server ensemble again and again under
a write load, restart it, and after every cycle check that every acknowledged write is on
every server and that all servers hold the same tree.

    scripts/ensemble-soak.py [--kind ringkeeper|zookeeper] [--cycles 30] [--servers 3]
                             [--seed N] [--leader-every K]

Each cycle kills either the leader (every K-th cycle, default 2) or a random follower while
three Kazoo writers create unique znodes with retry (only acknowledged creates are recorded;
NodeExists on a retry counts as acknowledged: the first attempt was applied), waits until the
remaining servers serve and writes go on, restarts the killed server, waits until it serves,
then compares every server's children of the test root (after sync) with the acknowledged set
and with each other. A failure prints the cycle, the missing paths and the servers' log tails.
Uses the harness of tests/ensemble (RINGKEEPER_BIN selects the binary).
"""

import argparse
import logging
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.ensemble.harness import Ensemble, Writers, children, wait_until  # noqa: E402

SERVE_TIMEOUT_S = 60.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", default="ringkeeper")
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--leader-every", type=int, default=2)
    args = parser.parse_args()
    # Kazoo logs every dropped connection; the kills make many.
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print("ensemble-soak: kind %s, %d servers, %d cycles, seed %d"
          % (args.kind, args.servers, args.cycles, seed), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="ensemble-soak-"))
    e = Ensemble(args.kind, tmp, participants=args.servers)
    started = time.monotonic()
    try:
        e.start()
        e.wait_serving(SERVE_TIMEOUT_S)
        root = "/soak-%s" % uuid.uuid4().hex[:8]
        setup = e.client()
        setup.create(root)
        setup.stop()
        setup.close()
        writers = Writers(e, root, threads=3, retry_deadline_s=60.0).start()
        try:
            for cycle in range(1, args.cycles + 1):
                wait_until(lambda: writers.count() > 0, 30, "writes before cycle %d" % cycle)
                leader = e.leader()
                if cycle % args.leader_every == 0 or leader is None:
                    victim = leader if leader is not None else rng.choice(e.ids)
                else:
                    victim = rng.choice([s for s in e.ids if s != leader])
                before = writers.count()
                e.kill(victim)
                killed_at = time.monotonic()
                e.wait_serving(SERVE_TIMEOUT_S, sids=[s for s in e.ids if s != victim])
                wait_until(lambda: writers.acked_after(killed_at) >= 20, 60,
                           "20 acknowledged writes after killing server %d" % victim)
                e.start_server(victim)
                e.wait_serving(SERVE_TIMEOUT_S)
                acked = {p.rsplit("/", 1)[1] for p in writers.paths()}
                trees = {}
                for sid in e.ids:
                    got = children(e, sid, root)
                    missing = acked - got
                    if missing:
                        raise AssertionError(
                            "cycle %d: server %d lacks %d acknowledged writes, e.g. %s"
                            % (cycle, sid, len(missing), sorted(missing)[:5]))
                    trees[sid] = got
                # Writes go on during the comparison: compare what every server had when the
                # first was read, i.e. the acknowledged set, which each must hold (above).
                print("cycle %d: killed %s %d; %d acknowledged writes (+%d), all on %d servers; "
                      "leader now %s" % (cycle, "leader" if victim == leader else "follower",
                                         victim, len(acked), len(acked) - before,
                                         len(e.ids), e.leader()), flush=True)
        finally:
            writers.stop()
        if writers.errors:
            raise AssertionError("writes failed beyond their retry deadline: %s"
                                 % writers.errors[:5])
        # Quiet now: every server must hold exactly the same children.
        final = {sid: children(e, sid, root) for sid in e.ids}
        first = final[e.ids[0]]
        for sid, got in final.items():
            if got != first:
                raise AssertionError("servers disagree at the end: %d vs %d (%d differ)"
                                     % (e.ids[0], sid, len(got ^ first)))
        acked = {p.rsplit("/", 1)[1] for p in writers.paths()}
        missing = acked - first
        if missing:
            raise AssertionError("%d acknowledged writes missing at the end" % len(missing))
        print("ensemble-soak: %d cycles passed, %d acknowledged writes on every server, "
              "servers identical, %.0f s (seed %d)"
              % (args.cycles, len(acked), time.monotonic() - started, seed))
        return 0
    except BaseException as err:
        print("ensemble-soak: FAILED (seed %d): %s" % (seed, err))
        print(e.describe())
        return 1
    finally:
        e.close()


if __name__ == "__main__":
    sys.exit(main())
