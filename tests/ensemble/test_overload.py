"""Overload in an ensemble is slowed, never dropped (issue "Write path"). A real client library
(zk-load, the `zookeeper-client` crate) keeps more writes in flight than globalOutstandingLimit
(1000) through each member in turn, leader and followers: every request is answered, no
session or connection is lost, and every member still answers four-letter words and new
clients afterwards. Apache ZooKeeper pauses reading the sockets until it catches up; before
ringkeeper's leader held proposals back when its ZAB window was full, it answered them Busy
and closed the clients' connections ("the ensemble did not take the write", "the leader did
not take the request"), and a connection closed while it waited for its core's share of the
limit never gave that share back, until the member stopped reading any socket.
"""

import sys
from pathlib import Path

import pytest

from .harness import four_letter, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))
import zk_load  # noqa: E402  tests/compat/zk_load.py

SERVE_TIMEOUT_S = 60.0


def run_clean(e, sids, path, **options):
    status, report, output = zk_load.run(
        [e.address(sid) for sid in sids], path, znodes=1000, duration="2s", warmup="0.3s",
        **options)
    zk_load.assert_clean(status, report, "%s\n%s" % (output, e.describe(20)))
    return report


def test_pipelining_past_the_outstanding_limit_through_each_member_loses_nothing(
        kind, ensembles, tmp_path):
    if zk_load.binary() is None:
        pytest.skip(zk_load.SKIP_REASON)
    e = ensembles(kind).start()
    e.wait_serving(SERVE_TIMEOUT_S)
    for sid in e.ids:
        # 8 sessions x 256 creates: 2,048 outstanding on one member.
        run_clean(e, [sid], tmp_path / ("create-%d.json" % sid), op="create", sessions=8,
                  inflight=256)
        run_clean(e, [sid], tmp_path / ("set-%d.json" % sid), op="set", sessions=32,
                  inflight=16)
    # A fleet: 2,000 sessions with one write each in flight, spread over every member.
    run_clean(e, e.ids, tmp_path / "fleet.json", op="set", sessions=2000, inflight=1,
              connect_parallel=200, session_timeout="30s")
    # Every member still serves: a four-letter word, no request left outstanding, and a new
    # client that writes and reads through it.
    for sid in e.ids:
        srvr = wait_until(lambda: four_letter(e.members[sid].host, e.members[sid].client_port,
                                              "srvr"), 10.0, "srvr from server %d" % sid)
        assert "Mode:" in srvr, srvr
        wait_until(lambda: "Outstanding: 0" in four_letter(
            e.members[sid].host, e.members[sid].client_port, "srvr"), 10.0,
            "no outstanding requests left on server %d" % sid)
        run_clean(e, [sid], tmp_path / ("after-%d.json" % sid), op="mixed", sessions=1,
                  inflight=1)
