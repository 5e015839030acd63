"""Quorum formation, replication and leader failover (Zab paper sections 3-4; ZooKeeper
Administrator's Guide, "Clustered (Multi-Server) Setup")."""

import time
import uuid

from kazoo.exceptions import KazooException, ZookeeperError

from .harness import Writers, children, four_letter, tree_on, wait_until

SERVE_TIMEOUT_S = 60.0
FAILOVER_TIMEOUT_S = 30.0


def test_three_servers_elect_one_leader_and_replicate(kind, ensembles):
    """Three participants form a quorum with exactly one leader and two followers; a write
    through one server is read on every other after sync (sync: the server catches up with the
    leader before the read; ZooKeeper Programmer's Guide, "Consistency Guarantees")."""
    e = ensembles(kind).start()
    modes = e.wait_serving(SERVE_TIMEOUT_S)
    assert sorted(modes.values()) == ["follower", "follower", "leader"], modes
    leader = e.leader()
    assert sorted(e.followers()) == sorted(s for s in e.ids if s != leader)

    root = "/q-%s" % uuid.uuid4().hex[:8]
    for writer_sid in e.ids:
        w = ensembles.client(e, writer_sid)
        path = "%s-from-%d" % (root, writer_sid)
        w.create(path, b"written through server %d" % writer_sid)
        for reader_sid in e.ids:
            r = ensembles.client(e, reader_sid)
            r.sync(path)
            data, stat = r.get(path)
            assert data == b"written through server %d" % writer_sid, (writer_sid, reader_sid)
            assert stat.version == 0

    # The leader reports the sizes of the proposals it sent (mntr zk_*_proposal_size, -1
    # until the first); min <= last <= max.
    m = e.members[leader]
    mntr = dict(line.split("\t", 1) for line in
                four_letter(m.host, m.client_port, "mntr").splitlines() if "\t" in line)
    sizes = [int(mntr["zk_%s_proposal_size" % which]) for which in ("min", "last", "max")]
    assert sizes[0] > 0 and sizes[0] <= sizes[1] <= sizes[2], sizes

    # Kazoo given the whole connect string connects to one of them and sees everything.
    whole = ensembles.client(e)
    whole.sync("/")
    names = set(whole.get_children("/"))
    assert {("%s-from-%d" % (root, s))[1:] for s in e.ids} <= names


def test_leader_kill_under_write_load(kind, ensembles):
    """kill -9 of the leader while clients write: a different server becomes leader, clients
    carry on, and every acknowledged write is on every surviving server and, once restarted, on
    the killed one (Zab: a committed proposal is in the new leader's history)."""
    e = ensembles(kind).start()
    e.wait_serving(SERVE_TIMEOUT_S)
    root = "/load-%s" % uuid.uuid4().hex[:8]
    setup = ensembles.client(e)
    setup.create(root)

    writers = Writers(e, root, threads=3).start()
    try:
        wait_until(lambda: writers.count() >= 50, 30, "50 acknowledged writes before the kill")
        old = e.leader()
        e.kill(old)
        killed_at = time.monotonic()
        new = e.wait_leader(FAILOVER_TIMEOUT_S, exclude=[old])
        assert new != old
        wait_until(lambda: writers.acked_after(killed_at) >= 50, FAILOVER_TIMEOUT_S,
                   "50 acknowledged writes after the leader was killed")
    finally:
        writers.stop()
    assert not writers.errors, "writes failed beyond their retry deadline: %s" % writers.errors[:5]
    acked = {p.rsplit("/", 1)[1] for p in writers.paths()}

    survivors = [s for s in e.ids if s != old]
    for sid in survivors:
        missing = acked - children(e, sid, root)
        assert not missing, "server %d lacks %d acknowledged writes, e.g. %s" % (
            sid, len(missing), sorted(missing)[:5])

    e.start_server(old)
    modes = e.wait_serving(SERVE_TIMEOUT_S)
    assert modes[old] == "follower", modes
    missing = acked - children(e, old, root)
    assert not missing, "restarted server %d lacks %d acknowledged writes" % (old, len(missing))
    # and it agrees with the leader on the whole subtree, not only on the acknowledged part
    assert tree_on(e, old, root) == tree_on(e, e.leader(), root)


def try_create(client, path, timeout_s):
    """One create attempt with a bounded wait: True if acknowledged, else the reason."""
    try:
        client.create_async(path, b"x").get(timeout=timeout_s)
        return True
    except (KazooException, ZookeeperError) as err:
        return repr(err)
    except Exception as err:  # the async result's own timeout
        return repr(err)


def test_five_servers_lose_and_regain_quorum(kind, ensembles):
    """Five participants tolerate two failures; with a third gone there is no majority and no
    write is acknowledged; restarting one restores the quorum and writes resume."""
    e = ensembles(kind, participants=5).start()
    e.wait_serving(SERVE_TIMEOUT_S)
    leader = e.leader()
    followers = sorted(e.followers())
    assert len(followers) == 4
    root = "/five-%s" % uuid.uuid4().hex[:8]

    for sid in followers[:2]:
        e.kill(sid)
    live = [s for s in e.ids if e.members[s].running()]
    c = ensembles.client(e, hosts=e.connect_string(live))
    c.create(root)  # three of five: still a quorum, so this is acknowledged
    assert e.leader() == leader
    for i in range(10):
        c.create("%s/after-two-%d" % (root, i))

    e.kill(followers[2])
    live = [s for s in e.ids if e.members[s].running()]
    assert len(live) == 2
    # No write issued after the third kill can gather a majority of acks.
    outcome = try_create(c, root + "/without-quorum", timeout_s=5.0)
    assert outcome is not True, "a write was acknowledged by 2 of 5 servers"
    # The leader gives up within syncLimit ticks (ZooKeeper: "Not sufficient followers synced")
    # and nobody serves until a majority is back.
    wait_until(lambda: all(e.mode(s) is None for s in live), 20,
               "the two survivors to stop serving")
    outcome = try_create(c, root + "/still-without-quorum", timeout_s=3.0)
    assert outcome is not True, "a write was acknowledged without a quorum"

    e.start_server(followers[2])
    e.wait_serving(SERVE_TIMEOUT_S)
    live = [s for s in e.ids if e.members[s].running()]
    fresh = ensembles.client(e, hosts=e.connect_string(live))
    fresh.create(root + "/after-restart")
    for sid in live:
        names = children(e, sid, root)
        assert {"after-two-%d" % i for i in range(10)} | {"after-restart"} <= names, (sid, names)
