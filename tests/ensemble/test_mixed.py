"""Mixed ensembles (issue 13, item 3): a ringkeeper server with `quorum.protocol=zookeeper` as the
observer of a 3-server Apache ZooKeeper 3.8 ensemble. It finds the leader through ZooKeeper's
election notifications, syncs with OBSERVERINFO / LEADERINFO / ACKEPOCH / DIFF or SNAP /
NEWLEADER / UPTODATE, applies INFORMs, answers PINGs with its sessions, serves Kazoo reads and
forwards writes as REQUEST. Runs once (not per kind): the ensemble is both kinds."""

import os
import re
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

from . import harness
from .harness import digest_figures, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))

from test_digest import INTERVAL, hash_entries  # noqa: E402

SERVE_TIMEOUT_S = 60.0


class MixedEnsemble(harness.Ensemble):
    """ZooKeeper servers, except those in `ringkeeper_ids`, which run ringkeeper with
    `quorum.protocol=zookeeper` (their own zoo.cfg lines are otherwise the same)."""

    def __init__(self, kind, tmpdir, ringkeeper_ids=(), **kw):
        self.ringkeeper_ids = set(ringkeeper_ids)
        super().__init__(kind, tmpdir, **kw)
        for sid in self.ringkeeper_ids:
            self.configure(sid, extra_lines=["quorum.protocol=zookeeper"])

    def _command(self, m):
        if m.sid in self.ringkeeper_ids:
            return [str(harness.ringkeeper_binary()), "--config", str(m.dir / "zoo.cfg")]
        return super()._command(m)


def nodes(client, root):
    """{path: (data, stat minus nothing)} of `root` and below, after a sync."""
    client.sync(root)
    out = {}
    stack = [root]
    while stack:
        path = stack.pop()
        data, stat = client.get(path)
        out[path] = (data, tuple(stat))
        for child in client.get_children(path):
            stack.append(path.rstrip("/") + "/" + child)
    return out


def test_ringkeeper_observer_of_a_zookeeper_ensemble(ensembles):
    e = ensembles("zookeeper", cls=MixedEnsemble, participants=3, observers=1,
                  ringkeeper_ids=[4])
    if harness.ringkeeper_binary().exists() is False:
        pytest.skip("no ringkeeper binary")
    observer = 4
    e.start(e.participant_ids)
    e.wait_serving(SERVE_TIMEOUT_S, sids=e.participant_ids)
    leader = e.leader()
    java = [s for s in e.participant_ids if s != leader][0]
    root = "/mixed-%s" % uuid.uuid4().hex[:8]
    at_java = ensembles.client(e, java)
    at_java.create(root, b"before the observer")
    for i in range(5):
        at_java.create(root + "/seq-", b"%d" % i, sequence=True)

    # The observer joins: SNAP (it has nothing), then INFORMs.
    e.start_server(observer)
    wait_until(lambda: e.mode(observer) == "observer", SERVE_TIMEOUT_S,
               "the ringkeeper observer to serve")
    # It synced at the first attempt: the leader did not drop it (a ping answered before the
    # ACK of NEWLEADER ends a sync: "Next packet was supposed to be an ACK").
    leader_log = e.members[leader].log.read_text()
    assert "closing socket to learner %d" % observer not in leader_log, e.log_tail(leader)
    at_rk = ensembles.client(e, observer)
    at_rk.sync(root)
    assert at_rk.get(root)[0] == b"before the observer"

    # Writes through the observer are forwarded to the ZooKeeper leader (REQUEST) and answered
    # when their INFORM arrives; a client on a Java member sees them, and the reverse.
    at_rk.create(root + "/from-ringkeeper", b"rk")
    at_rk.set(root, b"set through ringkeeper")
    at_rk.create(root + "/eph", b"e", ephemeral=True)
    at_java.sync(root)
    assert at_java.get(root + "/from-ringkeeper")[0] == b"rk"
    assert at_java.get(root)[0] == b"set through ringkeeper"
    at_java.create(root + "/from-java", b"java")
    at_rk.sync(root)
    assert at_rk.get(root + "/from-java")[0] == b"java"
    # Sequentials, a multi, a delete and an ACL change through the observer.
    seq = at_rk.create(root + "/seq-", b"rk", sequence=True)
    tx = at_rk.transaction()
    tx.create(root + "/multi-a", b"a")
    tx.set_data(root + "/from-ringkeeper", b"rk2")
    tx.check(root, 1)
    results = tx.commit()
    assert results[0] == root + "/multi-a" and results[2] is True, results
    at_rk.delete(seq)
    from kazoo.security import make_acl, make_digest_acl
    at_rk.set_acls(root + "/multi-a", [make_acl("world", "anyone", read=True),
                                       make_digest_acl("u", "p", all=True)])
    # A failing write is answered with ZooKeeper's error (the leader's error txn).
    from kazoo.exceptions import NodeExistsError
    with pytest.raises(NodeExistsError):
        at_rk.create(root + "/from-java", b"again")

    # A session on the observer lives on through the leader's session tracker: the observer
    # answers the leader's PINGs with its sessions and their timeouts (Learner.ping). Its
    # ephemeral outlives three session timeouts on the Java members.
    short = ensembles.client(e, observer, timeout=1.0)
    short.create(root + "/short-lived-session", b"", ephemeral=True)
    owner = short.client_id[0]
    time.sleep(3.0)  # nothing to await: the check is that the leader does not expire it
    at_java.sync(root)
    stat = at_java.exists(root + "/short-lived-session")
    assert stat is not None and stat.ephemeralOwner == owner
    # Its closeSession, forwarded too, deletes the ephemeral everywhere.
    short.stop()
    short.close()
    at_java.sync(root)
    assert at_java.exists(root + "/short-lived-session") is None
    at_rk.sync(root)
    assert at_rk.exists(root + "/short-lived-session") is None

    # Every znode, its data and Stat are the same on the ringkeeper observer and a Java member.
    assert nodes(at_rk, root) == nodes(at_java, root)
    # Each INFORM's TxnDigest (ZooKeeper's leader sends one with every txn) was compared with
    # the observer's tree after applying it (DataTree.compareDigest), and every one matched.
    mismatches, compared = digest_figures(e, observer)
    assert mismatches == 0 and compared >= 10, (mismatches, compared)

    # A failing multi is answered with the error of its failing op.
    from kazoo.exceptions import BadVersionError, NoNodeError
    tx = at_rk.transaction()
    tx.create(root + "/never", b"")
    tx.check(root, 12345)
    results = tx.commit()
    assert isinstance(results[1], BadVersionError), results
    with pytest.raises(NoNodeError):
        at_rk.delete(root + "/no-such-node")
    # The failed multi's digest was compared and matches (it changes nothing). The failed
    # delete's error txn carries none: ZooKeeper 3.8's PrepRequestProcessor sets a txn digest
    # for a multi (failed or not) but throws past setTxnDigest for a single failing op.
    at_rk.sync(root)
    after_errors = digest_figures(e, observer)
    assert after_errors[0] == 0 and after_errors[1] >= compared + 1, (after_errors, compared)

    # The observer restarts on its own state and syncs again (DIFF: its log is in the leader's
    # committed log), with the writes it missed.
    e.stop(observer)
    at_java.create(root + "/while-observer-down", b"x")
    e.start_server(observer)
    wait_until(lambda: e.mode(observer) == "observer", SERVE_TIMEOUT_S,
               "the restarted ringkeeper observer to serve")
    at_rk = ensembles.client(e, observer)
    assert nodes(at_rk, root) == nodes(at_java, root)

    # The ZooKeeper leader is killed: the observer finds the new leader and serves again.
    killed_at = time.monotonic()
    e.kill(leader)
    new_leader = e.wait_leader(SERVE_TIMEOUT_S, exclude=(leader,))
    wait_until(lambda: e.mode(observer) == "observer", SERVE_TIMEOUT_S,
               "the ringkeeper observer to follow leader %d" % new_leader)
    survivor = [s for s in e.participant_ids if s not in (leader,)][0]
    at_survivor = ensembles.client(e, survivor)
    at_rk.retry(at_rk.create, root + "/after-failover", b"ok")
    print("a write through the ringkeeper observer succeeded %.2f s after the ZooKeeper "
          "leader was killed (new leader %d)" % (time.monotonic() - killed_at, new_leader))
    at_survivor.sync(root)
    assert at_survivor.get(root + "/after-failover")[0] == b"ok"
    assert nodes(at_rk, root) == nodes(at_survivor, root)
    # The restarted observer (DIFF, then the new leader's sync) compared the INFORMs since its
    # restart, and none mismatched.
    mismatches, compared = digest_figures(e, observer)
    assert mismatches == 0 and compared >= 1, (mismatches, compared)


def test_ringkeeper_observer_with_the_lowest_id_is_connected_back(ensembles):
    """QuorumCnxManager keeps only the election connection the higher sid opened: an observer
    whose id is below every participant's has its own connections closed and must accept the
    participants' connections back (the other path of the initiator rule)."""
    e = ensembles("zookeeper", cls=MixedEnsemble, participants=3, observers=1,
                  ringkeeper_ids=[1])
    # Make server 1 the observer and server 4 a participant (the harness numbers observers
    # last), then rewrite every zoo.cfg.
    e.members[1].observer, e.members[4].observer = True, False
    for sid in e.ids:
        e._write_config(e.members[sid])
    e.configure(1, extra_lines=["quorum.protocol=zookeeper"])
    participants = [2, 3, 4]
    e.start(participants)
    e.wait_serving(SERVE_TIMEOUT_S, sids=participants)
    e.start_server(1)
    wait_until(lambda: e.mode(1) == "observer", SERVE_TIMEOUT_S,
               "the ringkeeper observer with id 1 to serve")
    root = "/low-%s" % uuid.uuid4().hex[:8]
    at_rk = ensembles.client(e, 1)
    at_rk.create(root, b"through the low observer")
    at_java = ensembles.client(e, 2)
    at_java.sync(root)
    assert at_java.get(root)[0] == b"through the low observer"


def log_since_last_start(e, sid):
    """What server `sid` logged since its latest start (the harness marks each start)."""
    text = e.members[sid].log.read_text(errors="replace")
    return text[text.rfind("==== start "):]


def same_everywhere(clients, root):
    """Every znode under `root`, its data and Stat, the same through every client."""
    views = [nodes(client, root) for client in clients]
    for view in views[1:]:
        assert view == views[0]
    return views[0]


def ringkeeper_follower_of_two_java_servers(ensembles):
    """Servers 2 and 3 Java, 1 a ringkeeper participant (the lowest id: with equal histories
    a Java server wins the first election), started and serving; the Java servers
    never sync a learner from their txn log (`snapshotSizeFactor=-1`: a learner more than
    commitLogCount, 500, writes behind gets a SNAP). Returns (ensemble, leader, the other Java
    server)."""
    e = ensembles("zookeeper", cls=MixedEnsemble, participants=3, ringkeeper_ids=[1])
    java_ids = [2, 3]
    for sid in java_ids:
        e.configure(sid, jvm_flags=["-Dzookeeper.snapshotSizeFactor=-1"])
    e.start(e.participant_ids)
    e.wait_serving(SERVE_TIMEOUT_S)
    leader = e.leader()
    assert leader in java_ids, e.modes()
    return e, leader, [s for s in java_ids if s != leader][0]


def test_ringkeeper_follower_of_a_zookeeper_ensemble(ensembles):
    """A ringkeeper participant (server.1 without :observer) in an ensemble with two Java
    servers, following the Java leader: it votes in FastLeaderElection, syncs with FOLLOWERINFO /
    LEADERINFO / ACKEPOCH / DIFF or SNAP / NEWLEADER (acked once durable) / UPTODATE, acknowledges each PROPOSAL and counts for the quorum."""
    e, leader, other = ringkeeper_follower_of_two_java_servers(ensembles)
    follower = 1
    assert e.mode(follower) == "follower"

    root = "/mixed-follower-%s" % uuid.uuid4().hex[:8]
    at_rk = ensembles.client(e, follower)
    at_leader = ensembles.client(e, leader)
    at_other = ensembles.client(e, other)
    at_rk.create(root, b"through the ringkeeper follower")
    for i in range(5):
        at_leader.create(root + "/java-", b"%d" % i, sequence=True)
        at_rk.create(root + "/rk-", b"%d" % i, sequence=True)
    at_rk.set(root, b"set through ringkeeper")
    tx = at_rk.transaction()
    tx.create(root + "/multi", b"m")
    tx.check(root, 1)
    assert tx.commit() == [root + "/multi", True]
    at_rk.create(root + "/eph", b"e", ephemeral=True)
    same_everywhere([at_rk, at_leader, at_other], root)
    # The Java leader's PROPOSALs carry its tree digest after each txn; the ringkeeper
    # follower compared each with its own at the commit, and all matched.
    mismatches, compared = digest_figures(e, follower)
    assert mismatches == 0 and compared >= 13, (mismatches, compared)

    # The ringkeeper follower counts for the quorum: with the other Java server stopped, a
    # write commits only with its ACK (2 of 3).
    e.stop(other)
    at_rk.create(root + "/quorum-with-ringkeeper", b"1")
    at_leader.create(root + "/quorum-with-ringkeeper-2", b"2")
    at_leader.set(root + "/multi", b"m2")
    assert e.mode(leader) == "leader"
    same_everywhere([at_rk, at_leader], root)
    e.start_server(other)
    wait_until(lambda: e.mode(other) == "follower", SERVE_TIMEOUT_S,
               "the Java server %d to follow again" % other)
    at_other = ensembles.client(e, other)
    same_everywhere([at_rk, at_leader, at_other], root)

    # The ringkeeper follower restarts on its own state: DIFF (a few writes missed).
    e.stop(follower)
    at_leader.create(root + "/while-down", b"diff")
    e.start_server(follower)
    wait_until(lambda: e.mode(follower) == "follower", SERVE_TIMEOUT_S,
               "the restarted ringkeeper follower to serve")
    assert "snapshot from the ZooKeeper leader" not in log_since_last_start(e, follower)
    at_rk = ensembles.client(e, follower)
    same_everywhere([at_rk, at_leader, at_other], root)

    # Further behind than the leader's committed log: SNAP.
    e.stop(follower)
    at_leader.create(root + "/behind", b"")
    pending = [at_leader.create_async(root + "/behind/n-", b"%d" % i, sequence=True)
               for i in range(520)]
    for result in pending:
        result.get(timeout=30)
    e.start_server(follower)
    wait_until(lambda: e.mode(follower) == "follower", SERVE_TIMEOUT_S,
               "the ringkeeper follower to serve after a SNAP")
    assert "snapshot from the ZooKeeper leader" in log_since_last_start(e, follower)
    at_rk = ensembles.client(e, follower)
    at_rk.create(root + "/after-snap", b"s")
    same_everywhere([at_rk, at_leader, at_other], root)
    # After the SNAP (this process's first sync), the txns committed before NEWLEADER are
    # not compared (Learner.syncWithLeader applies them over the fuzzy snapshot without their
    # digest); the later ones are, and match.
    mismatches, compared = digest_figures(e, follower)
    assert mismatches == 0 and compared >= 1, (mismatches, compared)

    # The ringkeeper follower loses its leader alone (paused past syncLimit, the leader drops
    # it): it rejoins through an election round of its own, so its round is now above the
    # Java servers'. FastLeaderElection ignores a notification with zxid -1, round included,
    # so its no-candidate vote must not carry one, or the next election would never reach
    # the Java server (which answers lower rounds only).
    goodbyes = e.members[leader].log.read_text().count("closing socket to learner %d" % follower)
    pid = e.members[follower].proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: e.members[leader].log.read_text().count(
            "closing socket to learner %d" % follower) > goodbyes, SERVE_TIMEOUT_S,
            "the Java leader to drop the paused ringkeeper follower")
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: e.mode(follower) == "follower", SERVE_TIMEOUT_S,
               "the ringkeeper follower to rejoin after its pause")
    at_rk.retry(at_rk.create, root + "/after-pause", b"p")

    # kill -9 of the Java leader: the other Java server can only be elected with the ringkeeper
    # follower's vote. Wait until both hold the leader's last zxid (a candidate behind the
    # ringkeeper follower's log would not get its vote).
    wait_until(lambda: e.zxid(other) == e.zxid(leader) == e.zxid(follower), SERVE_TIMEOUT_S,
               "every member to hold the leader's last zxid")
    killed_at = time.monotonic()
    e.kill(leader)
    new_leader = e.wait_leader(SERVE_TIMEOUT_S, exclude=(leader,))
    assert new_leader == other
    wait_until(lambda: e.mode(follower) == "follower", SERVE_TIMEOUT_S,
               "the ringkeeper follower to follow server %d" % other)
    at_rk.retry(at_rk.create, root + "/after-failover", b"ok")
    print("a write through the ringkeeper follower succeeded %.2f s after the ZooKeeper "
          "leader was killed (new leader %d)" % (time.monotonic() - killed_at, new_leader))
    at_other = ensembles.client(e, other)
    at_other.create(root + "/after-failover-java", b"ok")
    # The ephemeral of the ringkeeper client's session lives on through the new leader.
    assert at_other.exists(root + "/eph") is not None
    same_everywhere([at_rk, at_other], root)


def test_ringkeeper_leader_of_zookeeper_followers_and_an_observer(ensembles):
    """A ringkeeper participant elected leader of two Java followers and a Java observer
    (server 3 wins FastLeaderElection on its id with equal histories): it accepts their
    FOLLOWERINFO / OBSERVERINFO, sends LEADERINFO, syncs them (DIFF, and SNAP with
    ZooKeeper's snapshot stream), NEWLEADER, UPTODATE; PROPOSALs carry ZooKeeper's txn bytes
    and the leader's digest, COMMITs go one per proposal, the observer gets INFORMs; writes
    the Java servers forward (REQUEST) are answered to their clients, sync is answered after
    the commits before it. Then the ringkeeper leader is killed: a Java server leads, and the
    ringkeeper server rejoins as its follower."""
    e = ensembles("zookeeper", cls=MixedEnsemble, participants=3, observers=1,
                  ringkeeper_ids=[3])
    rk, observer = 3, 4
    e.start(e.ids)
    e.wait_serving(SERVE_TIMEOUT_S)
    assert e.leader() == rk, e.modes()
    assert e.mode(observer) == "observer", e.modes()
    root = "/mixed-leader-%s" % uuid.uuid4().hex[:8]
    at_rk = ensembles.client(e, rk)
    at_1 = ensembles.client(e, 1)
    at_2 = ensembles.client(e, 2)
    at_obs = ensembles.client(e, observer)
    at_rk.create(root, b"through the ringkeeper leader")
    # Writes through the Java followers and the Java observer: forwarded REQUESTs, answered
    # when their proposal commits (the txn header names the client's session and cxid).
    for i in range(5):
        at_1.create(root + "/f1-", b"%d" % i, sequence=True)
        at_2.create(root + "/f2-", b"%d" % i, sequence=True)
        at_obs.create(root + "/obs-", b"%d" % i, sequence=True)
        at_rk.create(root + "/rk-", b"%d" % i, sequence=True)
    at_1.set(root, b"set through a Java follower")
    tx = at_2.transaction()
    tx.create(root + "/multi", b"m")
    tx.check(root, 1)
    tx.set_data(root, b"set in a multi")
    results = tx.commit()
    assert results[:2] == [root + "/multi", True], results
    from kazoo.exceptions import BadVersionError, NodeExistsError
    with pytest.raises(NodeExistsError):
        at_1.create(root + "/multi", b"again")
    with pytest.raises(BadVersionError):
        at_obs.set(root, b"stale", version=0)
    failed = at_1.transaction()
    failed.create(root + "/never", b"")
    failed.check(root, 99)
    results = failed.commit()
    assert isinstance(results[1], BadVersionError), results
    # Ephemerals of sessions on each kind of server (Debian's Kazoo makes no containers or
    # TTL nodes; their txns are covered by quorum::zookeeper::txn's tests).
    at_1.create(root + "/eph-1", b"e", ephemeral=True)
    at_rk.create(root + "/eph-rk", b"e", ephemeral=True)
    at_obs.create(root + "/eph-obs", b"e", ephemeral=True)
    at_2.create(root + "/parent", b"")
    at_2.create(root + "/parent/child", b"")
    at_2.delete(root + "/parent/child")
    from kazoo.security import make_acl, make_digest_acl
    at_1.set_acls(root + "/multi", [make_acl("world", "anyone", read=True),
                                    make_digest_acl("u", "p", all=True)])
    at_2.delete(root + "/rk-0000000003")
    view = same_everywhere([at_rk, at_1, at_2, at_obs], root)
    assert view[root][0] == b"set in a multi"
    # The Java learners compared the ringkeeper leader's digest after each txn with their own.
    for sid in (1, 2, observer):
        mismatches, _ = digest_figures(e, sid)
        assert mismatches == 0, (sid, mismatches, e.log_tail(sid))
        assert "Digests are not matching" not in e.members[sid].log.read_text()
    # sync through a Java follower is answered after the commits it follows: a write on the
    # leader, then sync + read on the follower.
    for i in range(20):
        at_rk.set(root, b"v%d" % i)
        at_2.sync(root)
        assert at_2.get(root)[0] == b"v%d" % i

    # A Java follower restarts on its own state (DIFF), then from an empty dataDir (SNAP: the
    # ringkeeper leader streams ZooKeeper's snapshot).
    e.stop(1)
    at_rk.create(root + "/while-1-down", b"diff")
    e.start_server(1)
    wait_until(lambda: e.mode(1) == "follower", SERVE_TIMEOUT_S, "server 1 to follow again")
    at_1 = ensembles.client(e, 1)
    same_everywhere([at_rk, at_1], root)
    e.stop(2)
    for child in (e.members[2].data / "version-2").iterdir():
        if child.name.startswith(("log.", "snapshot.")):
            child.unlink()
    at_rk.create(root + "/while-2-wiped", b"snap")
    # More writes than the leader keeps in memory (500, as ZooKeeper's commitLogCount): a
    # SNAP, not a DIFF from zxid 0.
    at_rk.create(root + "/behind", b"")
    pending = [at_1.create_async(root + "/behind/n-", b"%d" % i, sequence=True)
               for i in range(520)]
    for result in pending:
        result.get(timeout=30)
    e.start_server(2)
    wait_until(lambda: e.mode(2) == "follower", SERVE_TIMEOUT_S, "server 2 to follow after a SNAP")
    assert "Getting a snapshot from leader" in log_since_last_start(e, 2), e.log_tail(2)
    at_2 = ensembles.client(e, 2)
    at_2.create(root + "/after-snap", b"s")
    same_everywhere([at_rk, at_1, at_2, at_obs], root)
    # The ringkeeper leader counts the Java followers for its quorum: with one of them down a
    # write needs the other's ACK.
    e.stop(1)
    at_rk.create(root + "/quorum-with-java", b"q")
    e.start_server(1)
    wait_until(lambda: e.mode(1) == "follower", SERVE_TIMEOUT_S, "server 1 to follow again")

    # kill -9 of the ringkeeper leader: a Java server is elected; the ringkeeper server
    # restarts and follows it, with every write and the Java sessions' ephemerals.
    at_1 = ensembles.client(e, 1)
    wait_until(lambda: e.zxid(1) == e.zxid(2) == e.zxid(rk), SERVE_TIMEOUT_S,
               "every member to hold the leader's last zxid")
    e.kill(rk)
    new_leader = e.wait_leader(SERVE_TIMEOUT_S, exclude=(rk,))
    assert new_leader in (1, 2)
    java = ensembles.client(e, new_leader)
    java.retry(java.create, root + "/after-failover", b"java leads")
    e.start_server(rk)
    wait_until(lambda: e.mode(rk) == "follower", SERVE_TIMEOUT_S,
               "the ringkeeper server to follow the Java leader")
    at_rk = ensembles.client(e, rk)
    at_obs = ensembles.client(e, observer)
    view = same_everywhere([at_rk, java, at_obs], root)
    assert root + "/eph-1" in view and root + "/eph-obs" in view
    assert root + "/after-failover" in view and root + "/quorum-with-java" in view


class WriteLoad:
    """Writes through `client` until stopped, up to `window` requests in flight: creates and
    deletes under `churn`, and sets of the nodes in `targets` (spread across the tree, so a
    leader's walk of its tree meets them before and after it reaches them)."""

    def __init__(self, client, churn, targets, window=64):
        import threading
        self.client, self.churn, self.targets, self.window = client, churn, targets, window
        self.stop_event = threading.Event()
        self.acknowledged = 0
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the write load did not stop"
        assert not self.errors, self.errors[:3]

    def _run(self):
        from collections import deque
        in_flight = deque()
        index = 0
        try:
            while not self.stop_event.is_set():
                index += 1
                if index % 3 == 0:
                    path = self.targets[index % len(self.targets)]
                    in_flight.append(self.client.set_async(path, b"set %d" % index))
                elif index % 3 == 1:
                    in_flight.append(self.client.create_async(
                        "%s/c-%08d" % (self.churn, index), b"churn %d" % index))
                elif index > 31:
                    # The create of 30 requests ago (index - 31 is 1 mod 3).
                    in_flight.append(self.client.delete_async(
                        "%s/c-%08d" % (self.churn, index - 31)))
                while len(in_flight) >= self.window:
                    in_flight.popleft().get(timeout=30)
                    self.acknowledged += 1
            while in_flight:
                in_flight.popleft().get(timeout=30)
                self.acknowledged += 1
        except Exception as error:  # reported by __exit__
            self.errors.append(repr(error))


def settle_at_boundary(e, writer, path, sids):
    """Writes until the leader's zxid is a `hash` boundary (every INTERVAL zxids), waits until
    every member in `sids` holds it, and returns {sid: its newest hash entry}."""
    leader = e.leader()
    while e.zxid(leader) % INTERVAL != 0:
        writer.set(path, b"%d" % e.zxid(leader))
    zxid = e.zxid(leader)
    for sid in sids:
        wait_until(lambda: e.zxid(sid) == zxid, SERVE_TIMEOUT_S,
                   "server %d at zxid %#x" % (sid, zxid))
    return {sid: hash_entries(e.members[sid].client_port)[-1] for sid in sids}


def test_ringkeeper_follower_settles_a_snap_taken_under_write_load(ensembles):
    """A ZooKeeper leader serializes its live tree for a SNAP while it goes on committing
    (LearnerHandler.run; a fuzzy snapshot): the nodes it walks may already hold transactions
    that it also sends after the SNAP, before NEWLEADER. ZooKeeper's learner applies those
    commits to the streamed tree with DataTree's tolerant rules before its snapshot at
    NEWLEADER; the ringkeeper follower does the same before its ZAB core takes the snapshot,
    so it neither stops on "create of an existing node" nor replays that window at restart.
    Shown: the sync absorbed commits of the window and matched the leader's txn digest, every
    member has the same tree digest afterwards, and again after the follower restarts on the
    settled snapshot and its log."""
    e, leader, other = ringkeeper_follower_of_two_java_servers(ensembles)
    follower = 1
    root = "/fuzzy-%s" % uuid.uuid4().hex[:8]
    at_leader = ensembles.client(e, leader)
    at_other = ensembles.client(e, other)
    # A tree the leader takes a while to walk: 20,000 znodes under 20 parents.
    at_leader.create(root, b"")
    at_leader.create(root + "/churn", b"")
    parents = ["%s/p%02d" % (root, p) for p in range(20)]
    for parent in parents:
        at_leader.create(parent, b"")
    leaves = ["%s/n%05d" % (parents[i % 20], i) for i in range(20000)]
    pending = []
    for leaf in leaves:
        pending.append(at_leader.create_async(leaf, b"x" * 64))
        if len(pending) >= 500:
            for result in pending:
                result.get(timeout=30)
            pending = []
    for result in pending:
        result.get(timeout=30)

    absorbed = []
    with WriteLoad(at_other, root + "/churn", leaves[::97]) as load:
        for attempt in range(3):
            # Stopped while the load goes on: more than commitLogCount (500) writes behind,
            # so the leader sends a SNAP, walked while the load's commits go on.
            e.stop(follower)
            stopped_at = e.zxid(leader)
            wait_until(lambda: e.zxid(leader) > stopped_at + 1500, SERVE_TIMEOUT_S,
                       "the load to move the leader 1,500 txns on")
            e.start_server(follower)
            wait_until(lambda: e.mode(follower) == "follower", SERVE_TIMEOUT_S,
                       "the ringkeeper follower to serve after a SNAP under load")
            log = log_since_last_start(e, follower)
            synced = re.findall(r"synced with the ZooKeeper leader at 0x[0-9a-f]+ \((\d+) txns "
                                r"committed during its walk applied\)", log)
            assert len(synced) == 1, log[-3000:]
            assert "does not match the leader's digest" not in log, log[-3000:]
            if int(synced[0]) > 0:
                assert "matches the leader's digest" in log, log[-3000:]
                absorbed.append(int(synced[0]))
                break
        # The follower keeps up with the load after the sync (it would have stopped on the
        # first commit that did not apply to an unsettled tree).
        served_at = e.zxid(follower)
        wait_until(lambda: e.zxid(follower) > served_at + 300, SERVE_TIMEOUT_S,
                   "the ringkeeper follower to apply the load after its sync")
        assert load.acknowledged > 0
    assert absorbed, "no SNAP in 3 tries had commits between SNAP and NEWLEADER"
    print("the ringkeeper follower's SNAP absorbed %d commits of the leader's walk"
          % absorbed[0])

    at_rk = ensembles.client(e, follower)
    ids = [leader, other, follower]
    newest = settle_at_boundary(e, at_leader, root, ids)
    assert len(set(newest.values())) == 1, newest
    same_everywhere([at_rk, at_leader], root + "/churn")

    # Restarted on the settled snapshot and the log after it: the same tree.
    e.stop(follower)
    e.start_server(follower)
    wait_until(lambda: e.mode(follower) == "follower", SERVE_TIMEOUT_S,
               "the restarted ringkeeper follower to serve")
    assert "snapshot from the ZooKeeper leader" not in log_since_last_start(e, follower)
    at_leader.set(root, b"after the restart")
    newest = settle_at_boundary(e, at_leader, root, ids)
    assert len(set(newest.values())) == 1, newest
