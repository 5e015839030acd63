"""A restarted follower catches up with the leader (Zab phase 2, synchronisation; ZooKeeper's
LearnerHandler.syncFollower): by DIFF when it missed a few transactions, by SNAP when it is
further behind than the leader's in-memory committed log (ZKDatabase commitLogCount = 500)."""

import uuid

from .harness import digest_figures, tree_on, wait_until

SERVE_TIMEOUT_S = 60.0
COMMIT_LOG_COUNT = 500  # ZooKeeper's default zookeeper.commitLogCount


def log_since(e, sid, offset):
    with open(e.members[sid].log, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def log_size(e, sid):
    return e.members[sid].log.stat().st_size


def sync_kind_in_zookeeper_log(text, follower):
    """ZooKeeper 3.8's LearnerHandler logs, for each learner it syncs:
    "Synchronizing with Learner sid: N ..." then "Sending DIFF zxid=0x.. for peer sid: N" or
    "Sending snapshot last zxid of peer is ..." (SNAP) or "Sending TRUNC ..."."""
    assert ("Synchronizing with Learner sid: %d" % follower) in text, text[-2000:]
    kinds = [k for k, marker in (("DIFF", "Sending DIFF"), ("SNAP", "Sending snapshot"),
                                 ("TRUNC", "Sending TRUNC")) if marker in text]
    return kinds


def sync_kind_in_ringkeeper_log(text, follower):
    """ringkeeper's leader logs, for each learner it syncs: "Sending DIFF to server N ...",
    "Sending TRUNC to server N ..." or "sending server N a snapshot ..." (SNAP)."""
    markers = (("DIFF", "Sending DIFF to server %d " % follower),
               ("SNAP", "sending server %d a snapshot" % follower),
               ("TRUNC", "Sending TRUNC to server %d " % follower))
    return [k for k, marker in markers if marker in text]


def sync_kind(kind, text, follower):
    if kind == "zookeeper":
        return sync_kind_in_zookeeper_log(text, follower)
    return sync_kind_in_ringkeeper_log(text, follower)


def restart_and_compare(e, follower, root):
    leader = e.leader()
    offset = log_size(e, leader)
    e.start_server(follower)
    modes = e.wait_serving(SERVE_TIMEOUT_S)
    assert modes[follower] == "follower", modes
    assert e.leader() == leader, "the restart of a follower must not change the leader"
    want = tree_on(e, leader, root)
    got = tree_on(e, follower, root)
    assert got == want, "follower %d differs from the leader: %d vs %d znodes, e.g. missing %s" % (
        follower, len(got), len(want), sorted(set(want) - set(got))[:5])
    return want, log_since(e, leader, offset)


def test_restarted_follower_catches_up_by_diff_and_by_snapshot(kind, ensembles):
    extra = {}
    if kind == "zookeeper":
        # ZooKeeper 3.8 otherwise serves a learner behind its committed log with a DIFF read
        # from the on-disk txnlog (LearnerHandler "Use txnlog and committedLog"; observed even
        # for a log larger than snapshotSizeFactor x the snapshot). A negative factor disables
        # that (ZKDatabase: zookeeper.snapshotSizeFactor; unknown zoo.cfg keys become
        # zookeeper.-prefixed properties), so the far-behind case really is a SNAP.
        extra["snapshotSizeFactor"] = "-1"
    e = ensembles(kind, extra_cfg=extra).start()
    e.wait_serving(SERVE_TIMEOUT_S)
    leader = e.leader()
    follower = e.followers()[0]
    root = "/catchup-%s" % uuid.uuid4().hex[:8]
    c = ensembles.client(e, leader)
    c.create(root)
    for i in range(20):
        c.create("%s/before-%02d" % (root, i), b"before %d" % i)

    # DIFF: a few transactions while the follower is down.
    e.kill(follower)
    for i in range(20):
        c.create("%s/diff-%02d" % (root, i), b"diff %d" % i)
    c.set("%s/before-00" % root, b"changed while down")
    c.delete("%s/before-01" % root)
    want, leader_log = restart_and_compare(e, follower, root)
    assert want["%s/before-00" % root] == b"changed while down"
    assert "%s/before-01" % root not in want and "%s/diff-19" % root in want
    assert sync_kind(kind, leader_log, follower) == ["DIFF"], leader_log[-2000:]
    # The DIFF's proposals came with the leader's digests (DataTree.compareDigest on each
    # commit): all 22 compared (ringkeeper counts them), none mismatched.
    mismatches, compared = digest_figures(e, follower)
    assert mismatches == 0, mismatches
    assert kind != "ringkeeper" or compared >= 22, compared

    # SNAP: more transactions than the leader keeps in its committed log, and a log since the
    # follower's zxid larger than a third of the snapshot (ZooKeeper otherwise sends a DIFF read
    # from the txnlog: ZKDatabase snapshotSizeFactor 0.33), so mostly setData of 1 KiB values on
    # a few znodes. Each operation is its own transaction (a multi would be one), pipelined with
    # the async calls to be quick.
    e.kill(follower)
    creates, sets = 100, COMMIT_LOG_COUNT
    pending = [c.create_async("%s/snap-%04d" % (root, i), b"v" * 100) for i in range(creates)]
    pending += [c.set_async("%s/snap-%04d" % (root, i % 10), b"%06d" % i + b"s" * 1018)
                for i in range(sets)]
    for p in pending:
        p.get(timeout=60)
    want, leader_log = restart_and_compare(e, follower, root)
    assert sum(1 for p in want if "/snap-" in p) == creates
    assert want["%s/snap-0009" % root].startswith(b"%06d" % (sets - 1))
    assert sync_kind(kind, leader_log, follower) == ["SNAP"], leader_log[-2000:]
    # After the SNAP the follower compares from the first txn on (a ringkeeper snapshot is a
    # consistent version, not fuzzy), and its tree matches the leader's digest.
    c.create("%s/after-snap" % root, b"")
    wait_until(lambda: e.zxid(follower) >= e.zxid(leader), SERVE_TIMEOUT_S,
               "the follower to apply the write after its SNAP")
    mismatches, compared = digest_figures(e, follower)
    assert mismatches == 0, mismatches
    assert kind != "ringkeeper" or compared >= 1, compared
