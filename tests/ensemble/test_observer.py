"""Observers (ZooKeeper Observers Guide): a non-voting member that serves reads, forwards writes
to the leader, learns committed transactions (INFORM), and whose loss does not touch the quorum."""

import uuid

from .harness import children

SERVE_TIMEOUT_S = 60.0


def test_observer_serves_reads_forwards_writes_and_does_not_vote(kind, ensembles):
    e = ensembles(kind, participants=3, observers=1).start()
    modes = e.wait_serving(SERVE_TIMEOUT_S)
    observer = 4
    assert modes[observer] == "observer", modes
    assert sorted(modes[s] for s in e.participant_ids) == ["follower", "follower", "leader"]
    leader = e.leader()
    epoch = e.zxid(leader) >> 32

    root = "/obs-%s" % uuid.uuid4().hex[:8]
    at_leader = ensembles.client(e, leader)
    at_observer = ensembles.client(e, observer)
    at_leader.create(root, b"from the leader")

    # reads: the observer serves what the quorum committed (after sync, per the sync contract)
    at_observer.sync(root)
    assert at_observer.get(root)[0] == b"from the leader"

    # writes: forwarded to the leader, committed by the participants, visible everywhere
    at_observer.create(root + "/through-observer", b"forwarded")
    for sid in e.ids:
        assert "through-observer" in children(e, sid, root), sid
    at_leader.sync(root)
    assert at_leader.get(root + "/through-observer")[0] == b"forwarded"

    # loss: the participants keep their leader and epoch (no election), writes go on
    e.kill(observer)
    at_leader.create(root + "/after-observer-loss")
    assert e.leader() == leader
    assert e.zxid(leader) >> 32 == epoch, "the loss of an observer started a new epoch"
    for sid in e.participant_ids:
        assert e.mode(sid) in ("leader", "follower")
        assert "after-observer-loss" in children(e, sid, root)

    # and it comes back as an observer that has the writes it missed
    e.start_server(observer)
    modes = e.wait_serving(SERVE_TIMEOUT_S)
    assert modes[observer] == "observer"
    assert {"through-observer", "after-observer-loss"} <= children(e, observer, root)
