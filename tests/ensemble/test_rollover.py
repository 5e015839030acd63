"""zxid counter exhaustion (ZooKeeper's XidRolloverException): when the 32-bit counter of the
zxid reaches its limit, the leader steps down and a new epoch starts; clients see a connection
loss, no longer than an election, and no acknowledged write is lost. ZooKeeper's limit is
0xffffffff and cannot be lowered, so only ringkeeper (`ringkeeper.zxidCounterMax`) runs it."""

import uuid

import pytest

from .harness import Writers, children, wait_until

SERVE_TIMEOUT_S = 60.0
COUNTER_MAX = 40


def test_zxid_counter_rollover_starts_new_epochs_and_loses_nothing(kind, ensembles):
    if kind != "ringkeeper":
        pytest.skip("ZooKeeper's zxid counter limit (0xffffffff) is not configurable")
    e = ensembles(kind, extra_cfg={"ringkeeper.zxidCounterMax": COUNTER_MAX}).start()
    e.wait_serving(SERVE_TIMEOUT_S)
    epoch_before = e.zxid(e.leader()) >> 32
    root = "/rollover-%s" % uuid.uuid4().hex[:8]
    setup = ensembles.client(e)
    setup.create(root)
    writers = Writers(e, root, threads=2, retry_deadline_s=60.0).start()
    try:
        wait_until(lambda: writers.count() >= 8 * COUNTER_MAX, 120,
                   "%d acknowledged writes across rollovers" % (8 * COUNTER_MAX))
    finally:
        writers.stop()
    assert not writers.errors, "writes failed beyond their retry deadline: %s" % writers.errors[:5]
    modes = e.wait_serving(SERVE_TIMEOUT_S)
    assert sorted(modes.values()) == ["follower", "follower", "leader"], modes
    epoch_after = e.zxid(e.leader()) >> 32
    # Each epoch holds at most COUNTER_MAX transactions (creates, session creations and
    # closes): 8 x COUNTER_MAX creates need at least 7 new epochs.
    assert epoch_after - epoch_before >= 7, (epoch_before, epoch_after)
    acked = {p.rsplit("/", 1)[1] for p in writers.paths()}
    for sid in e.ids:
        missing = acked - children(e, sid, root)
        assert not missing, "server %d lacks %d acknowledged writes, e.g. %s" % (
            sid, len(missing), sorted(missing)[:5])
