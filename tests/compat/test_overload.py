"""Overload is slowed, never dropped (issue "Write path"): a real client library (zk-load, the
`zookeeper-client` crate) keeping more requests in flight than the server's
globalOutstandingLimit (1000) gets every one answered, with no error, no lost session and no
closed connection, and the server answers four-letter words and new clients afterwards.
Apache ZooKeeper does the same by pausing reads from the sockets until it catches up;
ringkeeper must match it (a connection is closed only for a reason ZooKeeper closes one).

Both servers are run (differential): a failure on ZooKeeper means the scenario is wrong, not
ringkeeper.
"""

import pytest

import harness
import zk_load

# 8 sessions x 256 creates in flight: 2,048 outstanding, twice globalOutstandingLimit.
BURSTS = [
    pytest.param(dict(op="create", sessions=8, inflight=256), id="create-8x256"),
    pytest.param(dict(op="set", sessions=32, inflight=16), id="set-32x16"),
]


@pytest.mark.parametrize("kind", harness.TARGETS)
@pytest.mark.parametrize("burst", BURSTS)
def test_a_client_pipelining_past_the_outstanding_limit_is_slowed_not_dropped(
        servers, kind, burst, tmp_path):
    server = servers[kind]
    if not server.available:
        pytest.skip(server.skip_reason)
    if zk_load.binary() is None:
        pytest.skip(zk_load.SKIP_REASON)
    address = "%s:%d" % (server.host, server.port)
    status, report, output = zk_load.run(
        [address], tmp_path / "overload.json", znodes=1000,
        duration="3s", warmup="0.5s", **burst)
    zk_load.assert_clean(status, report, output)
    # Still serving: a four-letter word, and a new client that writes and reads.
    assert "Mode:" in harness.four_letter(server.host, server.port, "srvr"), output
    status, report, output = zk_load.run(
        [address], tmp_path / "after.json", op="mixed", sessions=1, inflight=1, znodes=10,
        duration="0.3s", warmup="0s")
    zk_load.assert_clean(status, report, output)
